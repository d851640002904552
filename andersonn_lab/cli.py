"""The ``andersonn-lab`` command line.

Examples
--------
Open JupyterLab on a working copy of the notebooks (``./andersonn_lab_notebooks``)::

    andersonn-lab lab

Rebuild a task's data from its sources::

    andersonn-lab data build mofs

Test accuracy of the crystals recipe over five random splits::

    andersonn-lab bench accuracy --tasks crystals --splits 5

Baselines (logistic regression on the images, a random forest on descriptors) on the same
splits::

    andersonn-lab bench baselines --tasks crystals --splits 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from andersonn_lab import __version__

REPO_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PACKAGED_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"
"""The notebooks shipped inside the installed package (see ``[tool.setuptools]``)."""
WORK_FOLDER = "andersonn_lab_notebooks"
"""Folder (in the current directory) that gets a copy of the packaged notebooks."""


def _has_notebooks(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.ipynb"))


def find_notebooks() -> Path:
    """Return the folder of notebooks: the checkout's ``notebooks/``, else the packaged copy.

    Raises
    ------
    FileNotFoundError
        If neither the repository's ``notebooks/`` folder nor the notebooks shipped in the
        package are there.
    """
    for folder in (REPO_NOTEBOOKS, PACKAGED_NOTEBOOKS):
        if _has_notebooks(folder):
            return folder
    raise FileNotFoundError(
        f"no notebooks found at {REPO_NOTEBOOKS} or {PACKAGED_NOTEBOOKS}; reinstall "
        "andersonn_lab or pass --dir"
    )


def copy_notebooks(source: Path, target: Path) -> list[Path]:
    """Copy the ``*.ipynb`` files of ``source`` into ``target``, never overwriting one.

    Returns the files that were copied; notebooks already in ``target`` (a user's edited
    copies) are left as they are.

    Examples
    --------
    >>> import tempfile
    >>> src, dst = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp()) / "work"
    >>> _ = (src / "a.ipynb").write_text("{}")
    >>> [p.name for p in copy_notebooks(src, dst)], copy_notebooks(src, dst)
    (['a.ipynb'], [])
    """
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in sorted(source.glob("*.ipynb")):
        destination = target / notebook.name
        if not destination.exists():
            shutil.copyfile(notebook, destination)
            copied.append(destination)
    return copied


def _lab_folder(args: argparse.Namespace) -> Path:
    """The folder to open: ``--dir``, else a working copy of the notebooks.

    The notebooks (the checkout's ``notebooks/`` or the ones installed with the package) are
    first copied into ``./andersonn_lab_notebooks``: JupyterLab saves outputs into the
    notebooks it opens, and neither the tracked notebooks of the repository nor
    site-packages should get them. Copies already there are kept, so a user's edits stay.
    """
    if args.dir:
        return Path(args.dir)
    source = find_notebooks()
    target = Path.cwd() / WORK_FOLDER
    copied = copy_notebooks(source, target)
    kept = len(list(source.glob("*.ipynb"))) - len(copied)
    note = f" ({kept} already there, kept: delete one to get the current version)" if kept else ""
    print(
        f"andersonn-lab lab: copied {len(copied)} notebooks from {source} to {target}{note}",
        file=sys.stderr,
    )
    return target


def _cmd_lab(args: argparse.Namespace) -> int:
    try:
        folder = _lab_folder(args)
    except (FileNotFoundError, OSError) as error:
        print(f"andersonn-lab lab: {error}", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"andersonn-lab lab: folder {folder} does not exist", file=sys.stderr)
        return 2
    if shutil.which("jupyter") is None and not _has_module("jupyterlab"):
        print(
            "andersonn-lab lab: JupyterLab is not installed; run pip install 'andersonn_lab[lab]'",
            file=sys.stderr,
        )
        return 2
    command = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={folder}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args.extra:
        command.append("--allow-root")  # containers and CI machines often run as root
    return subprocess.call([*command, *args.extra])


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``andersonn-lab`` command."""
    parser = argparse.ArgumentParser(
        prog="andersonn-lab", description="andersonn_lab: see deep equilibrium models converge."
    )
    parser.add_argument("--version", action="version", version=f"andersonn_lab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on a working copy of the notebooks",
        description="Copy the notebooks into ./andersonn_lab_notebooks (keeping copies already "
        "there) and open JupyterLab on it; other options go to JupyterLab.",
    )
    lab.add_argument(
        "--dir",
        help="open this notebook folder instead (default: ./andersonn_lab_notebooks, a "
        "working copy of the repository's or the installed package's notebooks)",
    )
    lab.set_defaults(handler=_cmd_lab)

    data = sub.add_parser("data", help="build the task data files from their sources")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    build = data_sub.add_parser("build", help="rebuild data/<task>/ (needs the 'data' extra)")
    from andersonn_lab.datasets.build import add_arguments, run

    add_arguments(build)
    build.set_defaults(handler=run)

    from andersonn_lab.deq.cli import (
        add_predict_arguments,
        add_train_arguments,
        run_predict,
        run_train,
    )

    train = sub.add_parser("train", help="train a DEQ classifier on a task")
    add_train_arguments(train)
    train.set_defaults(handler=run_train)
    predict = sub.add_parser("predict", help="classify structures with a trained run")
    add_predict_arguments(predict)
    predict.set_defaults(handler=run_predict)

    from andersonn_lab.deq.pretrained import add_pretrain_arguments, run_pretrain

    pretrain = sub.add_parser(
        "pretrain", help="retrain the shipped models of the default recipes (split seed 0)"
    )
    add_pretrain_arguments(pretrain)
    pretrain.set_defaults(handler=run_pretrain)

    from andersonn_lab.deq.study_cli import add_bench_arguments, run_bench

    bench = sub.add_parser("bench", help="benchmarks")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    deq = bench_sub.add_parser("deq", help="Anderson vs forward iteration on trained DEQs")
    add_bench_arguments(deq)
    deq.set_defaults(handler=run_bench)
    from andersonn_lab.deq.holdout import add_accuracy_arguments, run_accuracy

    accuracy = bench_sub.add_parser(
        "accuracy", help="test accuracy of the default recipes over several random splits"
    )
    add_accuracy_arguments(accuracy)
    accuracy.set_defaults(handler=run_accuracy)
    from andersonn_lab.deq.baselines import add_baseline_arguments, run_baselines_command

    baselines = bench_sub.add_parser(
        "baselines",
        help="scikit-learn baselines on the splits of 'bench accuracy' (needs the bench extra)",
    )
    add_baseline_arguments(baselines)
    baselines.set_defaults(handler=run_baselines_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
