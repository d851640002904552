"""The andersonn-lab command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from andersonn_lab import __version__, cli


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_lab_opens_jupyterlab_on_a_working_copy_of_the_repository_notebooks(
    tmp_path, monkeypatch, capsys
):
    """JupyterLab saves outputs into what it opens: never the tracked notebooks."""
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: calls.append(command) or 0)
    assert cli.main(["lab", "--no-browser"]) == 0
    (command,) = calls
    assert command[:3] == [sys.executable, "-m", "jupyterlab"]
    target = tmp_path / cli.WORK_FOLDER
    assert f"--notebook-dir={target}" in command
    assert not any(str(cli.REPO_NOTEBOOKS) in part for part in command)
    assert command[-1] == "--no-browser"
    assert ("--allow-root" in command) == (os.geteuid() == 0)
    tracked = sorted(cli.REPO_NOTEBOOKS.glob("*.ipynb"))
    assert tracked and cli.find_notebooks() == cli.REPO_NOTEBOOKS
    assert [p.name for p in sorted(target.glob("*.ipynb"))] == [p.name for p in tracked]
    assert (target / tracked[0].name).read_bytes() == tracked[0].read_bytes()
    assert f"copied {len(tracked)} notebooks" in capsys.readouterr().err


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


def test_lab_copies_packaged_notebooks_when_installed_without_the_repository(
    tmp_path, monkeypatch, capsys
):
    packaged = tmp_path / "site-packages" / "andersonn_lab" / "notebooks"
    packaged.mkdir(parents=True)
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (packaged / name).write_text('{"cells": []}')
    work = tmp_path / "cwd"
    (work / cli.WORK_FOLDER).mkdir(parents=True)
    (work / cli.WORK_FOLDER / "01_a.ipynb").write_text("my edits")
    monkeypatch.setattr(cli, "REPO_NOTEBOOKS", tmp_path / "no-repo" / "notebooks")
    monkeypatch.setattr(cli, "PACKAGED_NOTEBOOKS", packaged)
    monkeypatch.chdir(work)
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command: calls.append(command) or 0)
    assert cli.main(["lab"]) == 0
    target = work / cli.WORK_FOLDER
    assert f"--notebook-dir={target}" in calls[0]
    assert (target / "01_a.ipynb").read_text() == "my edits"  # never overwritten
    assert (target / "02_b.ipynb").read_text() == '{"cells": []}'
    assert "copied 1 notebooks" in capsys.readouterr().err


def test_lab_without_any_notebooks_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "REPO_NOTEBOOKS", tmp_path / "a")
    monkeypatch.setattr(cli, "PACKAGED_NOTEBOOKS", tmp_path / "b")
    assert cli.main(["lab"]) == 2
    assert "no notebooks found" in capsys.readouterr().err


def test_pyproject_ships_every_package_and_the_notebooks():
    """The explicit package list of pyproject.toml misses no subpackage; notebooks ship."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    root = Path(cli.__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "andersonn_lab").rglob("__init__.py")
    }
    listed = set(setuptools["packages"])
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert setuptools["package-dir"]["andersonn_lab.notebooks"] == "notebooks"
    assert "*.ipynb" in setuptools["package-data"]["andersonn_lab.notebooks"]
    assert any((root / "notebooks").glob("*.ipynb"))


def test_pyproject_ships_every_data_folder():
    """data/ ships as andersonn_lab/data: every task folder listed, every file matched."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    root = Path(cli.__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["andersonn_lab.data"] == "data"
    assert setuptools["package-data"]["andersonn_lab.data"] == ["**/*"]
    folders = {
        ".".join(("andersonn_lab", *folder.relative_to(root).parts))
        for folder in (root / "data").rglob("*")
        if folder.is_dir() and folder.name != "__pycache__"
    }
    assert folders, "no task folders in data/"
    missing = sorted(folders - set(setuptools["packages"]))
    assert not missing, f"add to [tool.setuptools] packages: {missing}"
