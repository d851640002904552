"""Store notebooks the way the project commits them.

Every output is stripped except those of cells marked ``# NBVAL_CHECK_OUTPUT``: nbval compares
those in CI, so they keep their (small, text-only) output and execution count. With
``--execute`` the notebooks are first run in smoke mode (``CI=1``) to refresh those outputs.

Usage::

    python scripts/clean_notebooks.py [--execute] notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this cell's output."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARK)


def execute(notebook: nbformat.NotebookNode, folder: Path) -> None:
    """Run the notebook in smoke mode, in place."""
    from nbclient import NotebookClient

    os.environ["CI"] = "1"
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(folder)}}).execute()


def clean(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip outputs (but of checked cells), execution counts and volatile metadata."""
    notebook.metadata.pop("widgets", None)  # saved widget state: megabytes of plot data
    notebook.metadata["kernelspec"] = KERNELSPEC
    notebook.metadata["language_info"] = {"name": "python"}
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if is_checked(cell):
            cell.outputs = [
                nbformat.v4.new_output("stream", name=o["name"], text=o["text"])
                for o in cell.outputs
                if o["output_type"] == "stream"
            ]
        else:
            cell.outputs = []
            cell.execution_count = None
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true", help="run in smoke mode first")
    args = parser.parse_args()
    for path in args.paths:
        notebook = nbformat.read(path, as_version=4)
        if args.execute:
            execute(notebook, path.parent)
        nbformat.write(clean(notebook), path)
        print(f"cleaned {path}")


if __name__ == "__main__":
    main()
