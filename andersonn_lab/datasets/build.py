"""Rebuild a task's shipped data files: ``andersonn-lab data build mofs|drugs|crystals``.

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> parser.parse_args(["mofs", "--limit", "30"]).limit
30
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

from andersonn_lab.datasets.tasks import TASKS

__all__ = ["add_arguments", "build", "run"]


def build(task: str, **options: Any) -> Path:
    """Run the task's ``build(**options)`` and return the written file.

    The build is ``andersonn_lab.datasets.<task>_build.build`` where that module exists
    (drugs), else ``andersonn_lab.datasets.<task>.build``.

    Parameters
    ----------
    task:
        One of :data:`~andersonn_lab.datasets.tasks.TASKS`.
    **options:
        Keyword arguments of that task's ``build`` (``out_dir``, ``limit``, ``seed``, ...).

    Raises
    ------
    ValueError
        For an unknown task, or an option that the task's ``build`` does not take.

    Examples
    --------
    >>> build("mofs", limit=30, out_dir="/tmp/mofs")  # doctest: +SKIP
    PosixPath('/tmp/mofs/mofs.npz')
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks are {', '.join(TASKS)}")
    try:  # a task whose build pipeline lives apart from its loader
        module = importlib.import_module(f"andersonn_lab.datasets.{task}_build")
    except ModuleNotFoundError:
        module = importlib.import_module(f"andersonn_lab.datasets.{task}")
    accepted = inspect.signature(module.build).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"the {task} build does not take option(s) {', '.join(unknown)}")
    return Path(module.build(**options))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``data build`` arguments (task, ``--limit``, ``--out``, ``--seed``) to ``parser``."""
    parser.add_argument("task", choices=TASKS, help="which task's data to rebuild")
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="build a small set of about N entries"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="output folder (default data/TASK)"
    )
    parser.add_argument("--seed", type=int, default=None, help="sampling seed (default 0)")


def run(args: argparse.Namespace) -> int:
    """Run the build described by parsed ``args``; return a process exit status."""
    if args.limit is not None and args.limit < 1:
        print(f"andersonn-lab data build: --limit must be >= 1, got {args.limit}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {}
    if args.limit is not None:
        options["limit"] = args.limit
    if args.out is not None:
        options["out_dir"] = args.out
    if args.seed is not None:
        options["seed"] = args.seed
    try:
        path = build(args.task, **options)
    except ValueError as error:
        print(f"andersonn-lab data build {args.task}: {error}", file=sys.stderr)
        return 2
    except (ImportError, FileNotFoundError) as error:
        print(f"andersonn-lab data build {args.task}: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0
