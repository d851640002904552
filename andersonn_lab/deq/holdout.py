"""Test accuracy over several random splits: a steadier figure than one small test split.

The crystal task has about 200 structures, so its test split holds about 30 and one
structure moves the accuracy by three points. :func:`repeated_holdout` trains a recipe once
per split seed (a fresh stratified 70/15/15 split of the same data, and the same seed for the
model's initial weights and data order) and scores each test split; the mean, spread and the
structures that are wrong in several splits describe the recipe better than any single split.

``andersonn-lab bench accuracy --tasks crystals --splits 5`` runs it from the command line,
prints a table and writes ``accuracy.json`` next to the study's results.

Examples
--------
>>> from andersonn_lab.deq.recipe import default_recipe
>>> recipe = default_recipe("crystals", smoke=True)
>>> result = repeated_holdout(recipe, [0, 1], epochs=1)  # doctest: +SKIP
>>> len(result.scores), 0.0 <= result.mean <= 1.0  # doctest: +SKIP
(2, True)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from andersonn_lab.solvers.checks import check_int
from andersonn_lab.structures.images import CHANNELS

from .train import predict

__all__ = [
    "HoldoutResult",
    "SplitScore",
    "add_accuracy_arguments",
    "format_holdout",
    "repeated_holdout",
    "run_accuracy",
]


@dataclass(frozen=True)
class SplitScore:
    """The test score of one split.

    Attributes
    ----------
    split_seed:
        Seed of the stratified split, also used as the training seed.
    accuracy:
        Fraction of the test split classified correctly.
    n_test:
        Size of the (possibly reduced) test split.
    wrong:
        ``(id, true class, predicted class)`` of every misclassified test structure.
    train_seconds:
        Wall time of training.
    """

    split_seed: int
    accuracy: float
    n_test: int
    wrong: tuple[tuple[str, str, str], ...]
    train_seconds: float


class AccuracySummary:
    """Mean and spread of ``self.accuracies``, one test accuracy per split (shared by the
    DEQ's :class:`HoldoutResult` and the baselines' results)."""

    accuracies: list[float]

    @property
    def mean(self) -> float:
        """Mean test accuracy over the splits."""
        return statistics.fmean(self.accuracies)

    @property
    def std(self) -> float:
        """Sample standard deviation of the test accuracies (0 for one split)."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) > 1 else 0.0

    def table_cells(self) -> str:
        """The table cells every accuracy table shares: splits, per-split values, mean ± sd,
        range (``| 2 | 0.900, 0.800 | 0.850 ± 0.071 | 0.800 – 0.900 |``)."""
        per_split = ", ".join(f"{a:.3f}" for a in self.accuracies)
        return (
            f"| {len(self.accuracies)} | {per_split} | {self.mean:.3f} ± {self.std:.3f} | "
            f"{min(self.accuracies):.3f} – {max(self.accuracies):.3f} |"
        )


@dataclass
class HoldoutResult(AccuracySummary):
    """Scores of one recipe over several splits, with their summary."""

    task: str
    encoding: str
    solver: str
    scores: list[SplitScore] = field(default_factory=list)

    @property
    def accuracies(self) -> list[float]:
        return [s.accuracy for s in self.scores]

    def often_wrong(self, at_least: int = 2) -> dict[str, int]:
        """Structures misclassified in at least ``at_least`` splits: ``{id: splits}``."""
        counts = Counter(item[0] for s in self.scores for item in s.wrong)
        return {k: n for k, n in counts.most_common() if n >= at_least}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with every split's score."""
        return {
            "task": self.task,
            "encoding": self.encoding,
            "solver": self.solver,
            "mean": self.mean,
            "std": self.std,
            "min": min(self.accuracies),
            "max": max(self.accuracies),
            "often_wrong": self.often_wrong(),
            "scores": [asdict(s) for s in self.scores],
        }


def repeated_holdout(
    recipe: Any,
    split_seeds: Sequence[int],
    *,
    device: str | torch.device = "auto",
    progress: bool = False,
    on_split: Callable[[SplitScore], None] | None = None,
    load_options: dict[str, Any] | None = None,
    **overrides: Any,
) -> HoldoutResult:
    """Train ``recipe`` once per split seed and score each test split.

    Parameters
    ----------
    recipe:
        A :class:`~andersonn_lab.deq.recipe.Recipe`.
    split_seeds:
        Distinct seeds; each gives a new stratified train/val/test split and is also the
        training seed (initial weights, data order).
    device, progress:
        Passed to :meth:`~andersonn_lab.deq.recipe.Recipe.fit`.
    on_split:
        Called with each :class:`SplitScore` as soon as it is known.
    load_options:
        Passed to :meth:`~andersonn_lab.deq.recipe.Recipe.load` (``cache_dir``...).
    overrides:
        Training settings that replace the recipe's (``epochs=2``...); ``seed`` is refused,
        since the split seed is the training seed.

    Returns
    -------
    HoldoutResult

    Raises
    ------
    ValueError
        If ``split_seeds`` is empty or repeats a seed, or ``overrides`` holds ``seed``.
    """
    seeds = [int(s) for s in split_seeds]
    if not seeds:
        raise ValueError("split_seeds is empty: give at least one split seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"split_seeds repeats a seed: {seeds}")
    if "seed" in overrides:
        raise ValueError("the split seed is the training seed; do not pass seed=")
    solver = str(recipe.forward_solver.get("method", "anderson"))
    result = HoldoutResult(recipe.task, recipe.encoding, solver)
    for seed in seeds:
        dataset = recipe.load(split_seed=seed, **(load_options or {}))
        started = time.perf_counter()
        fit = recipe.fit(dataset, device=device, progress=progress, seed=seed, **overrides)
        seconds = time.perf_counter() - started
        test = fit.subsets[2]
        positions = [int(p) for p in test.indices]
        images = torch.stack([dataset[p][0] for p in positions])
        classes, _, _ = predict(fit.model, images)
        names = dataset.class_names
        wrong = tuple(
            (dataset.ids[p], names[int(dataset.labels[p])], names[int(c)])
            for p, c in zip(positions, classes.tolist(), strict=True)
            if int(c) != int(dataset.labels[p])
        )
        score = SplitScore(seed, 1.0 - len(wrong) / len(positions), len(positions), wrong, seconds)
        result.scores.append(score)
        if on_split is not None:
            on_split(score)
    return result


def format_holdout(results: Sequence[HoldoutResult], *, max_listed: int = 15) -> str:
    """A Markdown table, readable as text: one row per task, then the structures wrong in
    several splits (after a blank line, so that Markdown ends the table there).

    At most ``max_listed`` of those structures are named per task (the most often wrong
    first), followed by how many more there are; :meth:`HoldoutResult.to_dict` keeps them
    all.
    """
    max_listed = check_int("max_listed", max_listed, minimum=0)
    lines = [
        "| task | encoding | solver | splits | test accuracy per split | mean ± sd | min – max |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.task} | {r.encoding} | {r.solver} {r.table_cells()}")
    for r in results:
        often = list(r.often_wrong().items())
        if often:
            named = [f"{k} ({n})" for k, n in often[:max_listed]]
            if len(often) > max_listed:
                named.append(f"and {len(often) - max_listed} more")
            lines.extend(["", f"{r.task}: wrong in two or more splits: {', '.join(named)}"])
    return "\n".join(lines)


def add_accuracy_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``andersonn-lab bench accuracy``."""
    parser.add_argument("--tasks", nargs="+", default=["crystals"], help="default: crystals")
    parser.add_argument("--splits", type=int, default=5, help="number of split seeds (from 0)")
    parser.add_argument("--solver", choices=("anderson", "forward"), default="anderson")
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    parser.add_argument(
        "--encoding",
        default=None,
        choices=sorted(CHANNELS),
        help="image encoding instead of the recipe's (e.g. composition for crystals)",
    )
    parser.add_argument("--smoke", action="store_true", help="the recipes' small CI setting")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda...")
    parser.add_argument("--out", default=None, help="folder for accuracy.json")


def run_accuracy(args: argparse.Namespace) -> int:
    """``andersonn-lab bench accuracy``: train per split, print the table, write JSON."""
    from .recipe import RECIPES, default_recipe

    unknown = [t for t in args.tasks if t not in RECIPES]
    if unknown or args.splits < 1:
        problem = f"unknown task(s) {unknown}" if unknown else "--splits must be at least 1"
        print(f"andersonn-lab bench accuracy: {problem}", file=sys.stderr)
        return 2
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    results = []
    for task in args.tasks:
        recipe = default_recipe(task, smoke=args.smoke).with_solver(args.solver)
        if args.encoding:
            recipe = recipe.replace(encoding=args.encoding)
        try:
            result = repeated_holdout(
                recipe,
                range(args.splits),
                device=args.device,
                on_split=lambda s, t=task: print(
                    f"{t}: split {s.split_seed}: test accuracy {s.accuracy:.3f} "
                    f"(n = {s.n_test}, {s.train_seconds:.0f} s)",
                    flush=True,
                ),
                **overrides,
            )
        except (FileNotFoundError, ImportError) as err:
            print(f"skipping {task}: {err}", file=sys.stderr)
            continue
        results.append(result)
    if not results:
        print("andersonn-lab bench accuracy: no task could be loaded", file=sys.stderr)
        return 2
    path = write_results(results, args, "accuracy.json")
    print(format_holdout(results))
    print(f"wrote {path}")
    return 0


def write_results(results: Sequence[Any], args: argparse.Namespace, file_name: str) -> Path:
    """Write a bench command's per-task results as JSON where ``args.out`` (or
    :func:`~andersonn_lab.deq.study.results_dir`) says; return the file's path.

    ``results`` are objects with ``to_dict()``; the payload also records ``args.splits``
    and ``args.smoke``.
    """
    from .study_cli import results_dir

    out = Path(args.out) if args.out else results_dir()
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "splits": args.splits,
        "smoke": args.smoke,
        "results": [r.to_dict() for r in results],
    }
    path = out / file_name
    path.write_text(json.dumps(payload, indent=2))
    return path
