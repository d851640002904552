"""Notebooks are committed clean: outputs only where nbval checks them, and small."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from clean_notebooks import clean, is_checked  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    notebook = nbformat.read(path, as_version=4)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert path.stat().st_size < 100_000
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            assert cell.execution_count is not None, "a checked cell needs its execution count"
            assert cell.outputs, "a checked cell needs its reference output"
            assert all(o["output_type"] == "stream" for o in cell.outputs)
        else:
            assert not cell.outputs, f"stored output in: {cell.source[:60]!r}"
            assert cell.execution_count is None
    original = nbformat.writes(notebook)
    assert nbformat.writes(clean(notebook)) == original, "run scripts/clean_notebooks.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_states_its_goal_and_smoke_mode(path):
    notebook = nbformat.read(path, as_version=4)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "**Goal.**" in first.source
    text = "\n".join(c.source for c in notebook.cells)
    if "SMOKE" in text:
        assert "Smoke mode" in first.source
