"""A new user's install: the data and notebooks ship in the wheel, and both work from it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from andersonn_lab.datasets import entry, load_task

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "README.md", "andersonn_lab", "notebooks", "data")
"""What ``pip wheel`` needs from the repository (copied, so the build leaves no trace)."""
NOTEBOOK = "01_fixed_points_and_anderson.ipynb"
"""The notebook run from the working copy: the quickest in smoke mode (about 30 s)."""


def test_data_dir_is_the_repository_data_in_a_checkout(monkeypatch):
    monkeypatch.delenv(entry.DATA_ENV, raising=False)
    assert not entry.PACKAGED_DATA.exists()
    assert entry.find_data_dir() == ROOT / "data"
    assert (entry.find_data_dir() / "crystals" / "references.csv").is_file()


def test_data_dir_prefers_the_packaged_data_of_an_installed_wheel(tmp_path, monkeypatch):
    monkeypatch.delenv(entry.DATA_ENV, raising=False)
    packaged = tmp_path / "site-packages" / "andersonn_lab" / "data"
    packaged.mkdir(parents=True)
    monkeypatch.setattr(entry, "PACKAGED_DATA", packaged)
    assert entry.find_data_dir() == packaged
    monkeypatch.setenv(entry.DATA_ENV, str(tmp_path / "mine"))
    assert entry.find_data_dir() == tmp_path / "mine"


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(entry.DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as info:
        load_task("crystals", data_dir=tmp_path / "crystals", cache_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "crystals") in message
    assert "reinstall andersonn_lab" in message and entry.DATA_ENV in message
    monkeypatch.setenv(entry.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"unset {entry.DATA_ENV}"):
        load_task("mofs", data_dir=tmp_path / "mofs", cache_dir=tmp_path)


def _run(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> str:
    """Run ``command``; fail the test with its output if it fails."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the repository's build inputs; return its path."""
    source = tmp_path / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".ipynb_checkpoints")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist")]
    if importlib.util.find_spec("setuptools") is not None:
        command.append("--no-build-isolation")  # quicker: this environment's setuptools
    _run([*command, str(source)], cwd=tmp_path, env=dict(os.environ), timeout=300)
    (wheel,) = (tmp_path / "dist").glob("andersonn_lab-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_installs_into_an_empty_venv_and_works_without_the_repository(tmp_path):
    """Build the wheel, install it as the README says, load every task, run a notebook.

    Everything runs in a folder outside the repository with a clean environment, so only
    the installed wheel can answer. About three minutes, mostly pip installing the
    dependencies; ``-m "not slow"`` leaves it out.
    """
    started = time.perf_counter()
    wheel = _build_wheel(tmp_path)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=dict(os.environ), timeout=120)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", entry.DATA_ENV)}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),  # no user-level kernels
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        OMP_NUM_THREADS="1",
        CI="1",  # the notebook's smoke mode
    )
    user = tmp_path / "user"
    user.mkdir()
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--quiet"]
    # The build of torch this environment has (a CPU build in CI), first, as the README says.
    _run([*pip, f"torch=={torch.__version__}"], cwd=user, env=env, timeout=600)
    _run([*pip, f"{wheel}[lab]"], cwd=user, env=env, timeout=900)

    script = (
        "import json, warnings, andersonn_lab\n"
        "from andersonn_lab.datasets import DATA_DIR, load_task\n"
        "warnings.simplefilter('ignore')\n"
        "from andersonn_lab.deq.pretrained import load_pretrained\n"
        "sizes = {name: len(load_task(name)) for name in ('crystals', 'drugs', 'mofs')}\n"
        "provenance = all((DATA_DIR / n / 'PROVENANCE.md').is_file() for n in sizes)\n"
        "shipped = load_pretrained('crystals').test_accuracy\n"
        "print(json.dumps({'package': andersonn_lab.__file__, 'data': str(DATA_DIR),\n"
        "                  'sizes': sizes, 'provenance': provenance, 'shipped': shipped}))\n"
    )
    out = _run([str(bin_dir / "python"), "-c", script], cwd=user, env=env, timeout=600)
    report = json.loads(out.strip().splitlines()[-1])
    site = venv / "lib"
    assert Path(report["package"]).is_relative_to(site), report
    assert Path(report["data"]) == Path(report["package"]).parent / "data"
    assert all(size > 100 for size in report["sizes"].values()), report
    assert report["provenance"]
    assert report["shipped"] > 0.7  # the shipped crystals model came with the wheel

    # andersonn-lab lab makes the working copy, then hands --version to JupyterLab.
    out = _run([str(bin_dir / "andersonn-lab"), "lab", "--version"], cwd=user, env=env, timeout=120)
    work = user / "andersonn_lab_notebooks"
    shipped = len(list((ROOT / "notebooks").glob("*.ipynb")))
    assert f"copied {shipped} notebooks" in out and (work / NOTEBOOK).is_file()
    execute = [str(bin_dir / "jupyter"), "nbconvert", "--to", "notebook", "--execute"]
    _run(
        [*execute, "--ExecutePreprocessor.kernel_name=python3", "--output-dir", "ran", NOTEBOOK],
        cwd=work,
        env=env,
        timeout=600,
    )
    ran = json.loads((work / "ran" / NOTEBOOK).read_text())
    errors = [o for c in ran["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    assert shutil.which("python", path=env["PATH"]) == str(bin_dir / "python")
    print(f"wheel install test: {time.perf_counter() - started:.0f} s")
