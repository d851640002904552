"""The ``andersonn-lab`` command line.

Examples
--------
Open JupyterLab on the notebooks::

    andersonn-lab lab
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from andersonn_lab import __version__

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def find_notebooks() -> Path:
    """Return the folder of notebooks shipped with this checkout.

    Raises
    ------
    FileNotFoundError
        If the package was installed without its repository's ``notebooks/`` folder.
    """
    if REPO_NOTEBOOKS.is_dir() and any(REPO_NOTEBOOKS.glob("*.ipynb")):
        return REPO_NOTEBOOKS
    raise FileNotFoundError(
        f"no notebooks found at {REPO_NOTEBOOKS}; install andersonn_lab from its repository "
        "(pip install -e .) or pass --dir"
    )


def _cmd_lab(args: argparse.Namespace) -> int:
    folder = Path(args.dir) if args.dir else find_notebooks()
    if not folder.is_dir():
        print(f"andersonn-lab lab: folder {folder} does not exist", file=sys.stderr)
        return 2
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print(
            "andersonn-lab lab: JupyterLab is not installed; run pip install 'andersonn_lab[lab]'",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={folder}", *args.extra]
    return subprocess.call(command)


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``andersonn-lab`` command."""
    parser = argparse.ArgumentParser(prog="andersonn-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"andersonn_lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="open JupyterLab on the notebooks")
    lab.add_argument("--dir", help="notebook folder (default: the repository's notebooks/)")
    lab.add_argument("extra", nargs=argparse.REMAINDER, help="arguments passed on to JupyterLab")
    lab.set_defaults(handler=_cmd_lab)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
