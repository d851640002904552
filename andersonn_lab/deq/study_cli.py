"""The speed-up and crossover study: Anderson extrapolation against forward iteration.

The command line of the study: ``andersonn-lab bench deq`` (and ``benchmarks/bench_deq.py``)
parse their options with :func:`add_bench_arguments` into a
:class:`~andersonn_lab.deq.study_config.StudyConfig` (:func:`config_from_args`) and run
:func:`~andersonn_lab.deq.study_measure.run_study` (:func:`run_bench`).

Examples
--------
>>> parser = argparse.ArgumentParser()
>>> add_bench_arguments(parser)
>>> config_from_args(parser.parse_args(["--quick", "--channels", "6"])).groups
2
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .study_config import StudyConfig
from .study_measure import run_study

__all__ = ["add_bench_arguments", "config_from_args", "main", "results_dir", "run_bench"]


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``andersonn-lab bench deq`` (and ``benchmarks/bench_deq.py``).

    Examples
    --------
    >>> parser = argparse.ArgumentParser()
    >>> add_bench_arguments(parser)
    >>> args = parser.parse_args(["--quick", "--m-values", "0", "4"])
    >>> args.quick, args.m_values
    (True, [0, 4])
    """
    parser.add_argument("--quick", action="store_true", help="tiny model, crystals, few m values")
    parser.add_argument("--tasks", nargs="+", default=None, help="default: all (quick: crystals)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--channels", type=int, default=None, help="cell channels (= hidden)")
    parser.add_argument(
        "--cell", default=None, choices=("resnet", "contractive"), help="default: the recipe's"
    )
    parser.add_argument(
        "--skip", type=float, default=None, help="contractive cell's skip weight (recipe's)"
    )
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--m", type=int, default=None, help="Anderson window of training and comparison"
    )
    parser.add_argument(
        "--train-max-iter", type=int, default=None, help="training solves' cap (recipe's)"
    )
    parser.add_argument("--m-values", type=int, nargs="+", default=None, help="window sweep")
    parser.add_argument("--betas", type=float, nargs="+", default=None, help="β sweep")
    parser.add_argument("--eval-tol", type=float, default=None, help="default 1e-5")
    parser.add_argument("--eval-max-iter", type=int, default=None, help="generous cap")
    parser.add_argument("--target-acc", type=float, default=None, help="default: reached by both")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto, cpu, cuda...")
    parser.add_argument(
        "--out", default=None, help="output folder (default: benchmarks/results/ or ./)"
    )
    parser.add_argument("--progress", action="store_true", help="show training progress bars")


def config_from_args(args: argparse.Namespace) -> StudyConfig:
    """A :class:`StudyConfig` from parsed :func:`add_bench_arguments` options."""
    overrides: dict[str, Any] = {}
    keys = (
        "epochs",
        "channels",
        "cell",
        "skip",
        "m",
        "train_max_iter",
        "lr",
        "batch_size",
        "eval_tol",
        "eval_max_iter",
        "target_acc",
    )
    for key in (*keys, "repeats", "seed"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    if args.tasks:
        overrides["tasks"] = tuple(args.tasks)
    if args.m_values:
        overrides["m_values"] = tuple(sorted(set(args.m_values)))
    if args.betas:
        overrides["betas"] = tuple(args.betas)
    if args.device:
        overrides["device"] = args.device
    if args.channels is not None:
        overrides["hidden"] = max(args.channels, 1)
    config = StudyConfig.quick(**overrides) if args.quick else replace(StudyConfig(), **overrides)
    if config.channels is not None and config.groups is not None:
        if config.channels % config.groups:
            config = replace(config, groups=math.gcd(config.channels, config.groups))
    elif config.channels is not None:
        config = replace(config, groups=math.gcd(config.channels, 8))
    return config


def results_dir() -> Path:
    """``benchmarks/results`` of a source checkout, else the current directory."""
    repo = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    return repo if repo.parent.is_dir() else Path.cwd()


def run_bench(args: argparse.Namespace) -> int:
    """``andersonn-lab bench deq``: run the study; print the table; return the exit status."""
    try:
        config = config_from_args(args)
    except ValueError as err:
        print(f"andersonn-lab bench deq: {err}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else results_dir()
    study = run_study(config, out, progress=args.progress)
    if not study["tasks"]:
        print("andersonn-lab bench deq: no task could be loaded", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``benchmarks/bench_deq.py``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    return run_bench(parser.parse_args(argv))
