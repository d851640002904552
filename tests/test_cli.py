"""The andersonn-lab command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from andersonn_lab import __version__, cli


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_lab_opens_jupyterlab_on_the_repository_notebooks(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: calls.append(command) or 0)
    assert cli.main(["lab", "--no-browser"]) == 0
    (command,) = calls
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--notebook-dir={cli.REPO_NOTEBOOKS}" in command
    assert command[-1] == "--no-browser"
    assert any(cli.find_notebooks().glob("01_*.ipynb"))


def test_lab_with_a_missing_folder_fails_clearly(tmp_path, capsys):
    assert cli.main(["lab", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_data_build_rejects_options_a_task_does_not_take(capsys):
    assert cli.main(["data", "build", "crystals", "--limit", "3"]) == 2
    assert "limit" in capsys.readouterr().err


def test_data_build_crystals_writes_the_table(tmp_path):
    assert cli.main(["data", "build", "crystals", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "PROVENANCE.md").is_file()


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "andersonn_lab.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "lab" in out.stdout and "data" in out.stdout
