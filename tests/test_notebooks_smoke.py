"""The test command runs notebooks in their smoke setting with no variable set by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from andersonn_lab.deq import recipe

ROOT = Path(__file__).resolve().parents[1]


def _load_conftest():
    import importlib.util

    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conftest_sets_the_variable_the_recipes_read():
    assert _load_conftest().SMOKE_VARIABLE == recipe.SMOKE_VARIABLE


def test_notebook_kernels_under_pytest_see_smoke_mode_and_unit_tests_do_not(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "from andersonn_lab.deq.recipe import smoke_mode\nassert smoke_mode()"
        )
    ]
    nbformat.write(notebook, tmp_path / "a_notebook.ipynb")
    (tmp_path / "test_after.py").write_text(
        "import os\n\n\ndef test_unit_tests_see_the_users_environment():\n"
        "    assert 'ANDERSONN_LAB_SMOKE' not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ANDERSONN_LAB_SMOKE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "conftest",  # the repository's conftest.py, as pytest loads it for notebooks/
        "-p",
        "no:cacheprovider",
        "--nbval-lax",
        "--nbval-current-env",
        "a_notebook.ipynb",
        "test_after.py",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
