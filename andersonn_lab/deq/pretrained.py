"""Trained models of the default recipes that ship with the package.

Training a full recipe takes minutes (crystals, MOFs) to about twenty minutes (drugs) on a
laptop CPU. So that a notebook can open the misclassification inspector at once, each
task's default recipe, trained on split seed 0, ships in
``andersonn_lab/pretrained/``: ``<task>.pt`` (the weights, a few hundred kB) and
``<task>.json`` (the recipe it was trained with, its test accuracy, the training history,
the versions and the command that made it). :func:`load_pretrained` rebuilds the model and
refuses a file whose recipe no longer matches :func:`~andersonn_lab.deq.recipe.default_recipe`;
``andersonn-lab pretrain`` (:func:`write_pretrained`) retrains and rewrites the files.

Examples
--------
>>> sorted(available_pretrained())
['crystals', 'drugs', 'mofs']
>>> pretrained_info("crystals")["split_seed"]
0
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, atomic_save, atomic_write_json
from .classifier import DEQClassifier
from .recipe import RECIPES, Fit, Recipe, default_recipe
from .train import TrainResult, resolve_device

__all__ = [
    "PRETRAINED_DIR",
    "PretrainedMismatchError",
    "available_pretrained",
    "load_pretrained",
    "pretrained_info",
    "recipe_settings",
    "split_fingerprint",
    "write_pretrained",
]

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
"""Folder of the shipped models: ``<task>.pt`` and ``<task>.json`` per task."""

FORMAT = "andersonn_lab.pretrained/1"


class PretrainedMismatchError(CheckpointError):
    """A shipped model does not match the current recipe or data (retrain it)."""


def recipe_settings(recipe: Recipe) -> dict[str, Any]:
    """Every field of ``recipe`` as plain JSON values, for comparing recipes.

    Examples
    --------
    >>> recipe_settings(default_recipe("crystals", smoke=False))["encoding"]
    'electrons'
    """
    fields = (
        "task",
        "encoding",
        "image_size",
        "graph_options",
        "model",
        "forward_solver",
        "backward_solver",
        "training",
        "max_train",
        "max_eval",
        "smoke",
    )
    return json.loads(json.dumps({name: getattr(recipe, name) for name in fields}))


def split_fingerprint(dataset: Any, split: str = "test") -> str:
    """A short hash of a split's structure ids and labels (changes when the data change)."""
    positions = [int(p) for p in dataset.split[split]]
    text = "\n".join(f"{dataset.ids[p]}\t{int(dataset.labels[p])}" for p in positions)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _paths(task: str, folder: str | Path | None) -> tuple[Path, Path]:
    base = PRETRAINED_DIR if folder is None else Path(folder)
    return base / f"{task}.pt", base / f"{task}.json"


def available_pretrained(folder: str | Path | None = None) -> list[str]:
    """Tasks that have a shipped model in ``folder`` (default :data:`PRETRAINED_DIR`)."""
    return [task for task in RECIPES if all(p.is_file() for p in _paths(task, folder))]


def pretrained_info(task: str, folder: str | Path | None = None) -> dict[str, Any]:
    """The metadata of ``task``'s shipped model: recipe, test metrics, history, command.

    Raises
    ------
    ValueError
        Unknown task.
    FileNotFoundError
        No shipped model for the task (the message says how to make one).
    """
    if task not in RECIPES:
        raise ValueError(f"unknown task {task!r}; valid tasks are {', '.join(RECIPES)}")
    weights, meta = _paths(task, folder)
    if not (weights.is_file() and meta.is_file()):
        raise FileNotFoundError(
            f"no shipped model for {task!r} in {weights.parent} (expected {weights.name} and "
            f"{meta.name}); make one with: andersonn-lab pretrain --tasks {task}"
        )
    info = json.loads(meta.read_text(encoding="utf-8"))
    if info.get("format") != FORMAT:
        raise CheckpointError(f"{meta}: unsupported format {info.get('format')!r}")
    return info


def _differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{key}.{d}" for d in _differences(a, b)]
        elif a != b:
            out.append(f"{key} ({a!r} shipped, {b!r} now)")
    return out


def load_pretrained(
    task: str,
    *,
    dataset: Any = None,
    device: str | torch.device = "cpu",
    folder: str | Path | None = None,
    smoke: bool = False,
) -> Fit:
    """The shipped trained model of ``task``'s default (full) recipe, as a :class:`Fit`.

    Parameters
    ----------
    task:
        ``"drugs"``, ``"mofs"`` or ``"crystals"``.
    dataset:
        The task's dataset, loaded with the recipe's settings (default: loaded here).
    device:
        Where to put the model (``"auto"``: CUDA when available).
    folder:
        Where the files are (default :data:`PRETRAINED_DIR`).
    smoke:
        Compare with the smoke recipe instead (for models written with ``smoke=True``).

    Returns
    -------
    Fit
        ``fit.model`` in eval mode, ``fit.subsets`` the split it was trained on, ``fit.test``
        the test metrics recorded when it was made, ``fit.result.history`` its training
        history.

    Raises
    ------
    PretrainedMismatchError
        The recipe changed since the model was made, or the test split differs from the
        one it was scored on; the message names the differences and the command to retrain.

    Examples
    --------
    >>> fit = load_pretrained("crystals")  # doctest: +SKIP
    >>> fit.test_accuracy  # doctest: +SKIP
    0.975
    """
    info = pretrained_info(task, folder)
    weights, _ = _paths(task, folder)
    recipe = default_recipe(task, smoke=smoke)
    differ = _differences(info["recipe"], recipe_settings(recipe))
    if differ:
        raise PretrainedMismatchError(
            f"{weights}: the shipped {task} model was trained with a different recipe "
            f"({'; '.join(differ[:4])}); retrain it with: andersonn-lab pretrain --tasks {task}"
        )
    dataset = recipe.load(split_seed=info["split_seed"]) if dataset is None else dataset
    if dataset.split_seed != info["split_seed"] or split_fingerprint(dataset) != info["test_split"]:
        raise PretrainedMismatchError(
            f"{weights}: the {task} test split (seed {dataset.split_seed}) is not the one the "
            f"shipped model was scored on (seed {info['split_seed']}); the data changed? "
            f"Retrain with: andersonn-lab pretrain --tasks {task}"
        )
    try:
        payload = torch.load(weights, map_location="cpu", weights_only=True)
        model = DEQClassifier.from_config(payload["model_config"])
        model.load_state_dict(payload["model"])
    except Exception as err:  # unreadable, truncated, or weights of another model
        raise CheckpointError(
            f"{weights}: not a usable shipped model ({type(err).__name__}: {err}); "
            f"retrain it with: andersonn-lab pretrain --tasks {task}"
        ) from None
    model.to(resolve_device(device)).eval()
    result = TrainResult(history=list(info["history"]), best_epoch=info.get("best_epoch"))
    return Fit(recipe, dataset, model, result, dict(info["test"]), recipe.splits(dataset))


def write_pretrained(
    task: str,
    *,
    folder: str | Path | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
    smoke: bool = False,
) -> Fit:
    """Train ``task``'s default recipe on split seed 0 and write ``<task>.pt`` and ``.json``.

    ``smoke=True`` trains the smoke recipe instead (seconds; for tests). The files are
    replaced atomically, so an interrupted run leaves the old model in place.
    """
    recipe = default_recipe(task, smoke=smoke)
    start = time.perf_counter()
    fit = recipe.fit(device=device, progress=progress)
    seconds = time.perf_counter() - start
    model = fit.model.to("cpu")
    weights, meta = _paths(task, folder)
    weights.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(
        {"format": FORMAT, "model": model.state_dict(), "model_config": model.config}, weights
    )
    info = {
        "format": FORMAT,
        "task": task,
        "recipe": recipe_settings(recipe),
        "split_seed": fit.dataset.split_seed,
        "test_split": split_fingerprint(fit.dataset),
        "test": {k: float(v) for k, v in fit.test.items()},
        "history": fit.result.history,
        "best_epoch": fit.result.best_epoch,
        "train_seconds": round(seconds, 1),
        "device": str(resolve_device(device)),
        "command": f"andersonn-lab pretrain --tasks {task}",
        "made": time.strftime("%Y-%m-%d"),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    atomic_write_json(info, meta)
    return fit


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``andersonn-lab pretrain``."""
    parser.add_argument("--tasks", nargs="+", default=list(RECIPES), help="default: all three")
    parser.add_argument("--out", default=None, help=f"folder (default {PRETRAINED_DIR})")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")


def run_pretrain(args: argparse.Namespace) -> int:
    """``andersonn-lab pretrain``: retrain the shipped models of the default recipes."""
    unknown = [t for t in args.tasks if t not in RECIPES]
    if unknown:
        print(f"andersonn-lab pretrain: unknown task(s) {unknown}", file=sys.stderr)
        return 2
    for task in args.tasks:
        fit = write_pretrained(task, folder=args.out, device=args.device, progress=False)
        print(f"{task}: test accuracy {fit.test_accuracy:.3f} (n = {int(fit.test['n'])})")
    return 0


def _main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - module entry point
    parser = argparse.ArgumentParser(prog="python -m andersonn_lab.deq.pretrained")
    add_pretrain_arguments(parser)
    return run_pretrain(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
