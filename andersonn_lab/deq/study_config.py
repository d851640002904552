"""Settings of the speed-up study: :class:`StudyConfig` and the targets it is measured against.

Part of the study (:mod:`andersonn_lab.deq.study` re-exports every public name): settings
here, measuring in :mod:`~andersonn_lab.deq.study_measure`, result objects and ratios in
:mod:`~andersonn_lab.deq.study_results`, tables and figures in
:mod:`~andersonn_lab.deq.study_report`, the command line in
:mod:`~andersonn_lab.deq.study_cli`.

Examples
--------
>>> StudyConfig.quick(m_values=(0, 2)).m_values
(0, 2)
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..solvers import Anderson
from .classifier import DEQClassifier
from .train import TrainConfig

__all__ = [
    "LITERATURE_TRAIN_SPEEDUP",
    "TARGET_NFE_RATIO",
    "TARGET_PREDICTION_CHANGE",
    "StudyConfig",
]

LITERATURE_TRAIN_SPEEDUP = 8.6
"""Training-time ratio forward / Anderson reported in the literature (CIFAR-10, one V100)."""
TARGET_NFE_RATIO = 5.0
"""Target: forward iteration needs at least this many times more evaluations to ``eval_tol``."""
TARGET_PREDICTION_CHANGE = 0.005
"""Target: fewer than this share of predictions changes between training tolerance and 1e-6."""


@dataclass(frozen=True)
class StudyConfig:
    """Settings of the study; :meth:`quick` gives a tiny variant for a couple of minutes.

    Attributes
    ----------
    tasks:
        Task names for :func:`run_study` (tasks without data are skipped with a note).
    channels, hidden, groups, pool, cell, contraction, skip, weight_std:
        :class:`~andersonn_lab.deq.classifier.DEQClassifier` architecture; None: the task's
        default recipe (:func:`~andersonn_lab.deq.recipe.default_recipe`).
    epochs, batch_size, lr, jacobian_penalty, seed:
        Training settings, identical for both solvers; None: the task's default recipe.
    m:
        Anderson window for training and the solver comparison; None: the task's default
        recipe.
    beta:
        Anderson mixing for training and the solver comparison.
    train_tol, train_max_iter:
        Tolerance and cap of both solvers during training (and of "inference at the
        training tolerance"); None: the task's default recipe.
    eval_tol, eval_max_iter:
        Tolerance and (generous) cap of the solver comparison and the window sweep.
    reference_tol:
        Tolerance of the reference inference for the prediction-change count.
    m_values, betas:
        The window sweep.
    target_acc:
        Validation accuracy whose first attainment stops the training clock; None: the best
        validation accuracy that both runs reached (the lower of the two bests).
    eval_samples:
        Samples (validation then test set) in the batch that solves are timed on.
    repeats:
        Timed repeats per measurement, after one untimed warm-up (the median is reported).
    device:
        ``"auto"``, ``"cpu"``, ``"cuda"``...

    Examples
    --------
    >>> StudyConfig.quick().tasks
    ('crystals',)
    >>> max(StudyConfig().m_values)
    10
    """

    tasks: tuple[str, ...] = ("crystals", "mofs", "drugs")
    channels: int | None = None
    hidden: int | None = None
    groups: int | None = None
    pool: int | None = None
    cell: str | None = None
    contraction: float | None = None
    skip: float | None = None
    weight_std: float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    jacobian_penalty: float | None = None
    seed: int = 0
    m: int | None = None
    beta: float = 1.0
    train_tol: float | None = None
    train_max_iter: int | None = None
    eval_tol: float = 1e-5
    eval_max_iter: int = 500
    reference_tol: float = 1e-6
    m_values: tuple[int, ...] = tuple(range(11))
    betas: tuple[float, ...] = (0.5, 1.0)
    target_acc: float | None = None
    eval_samples: int = 64
    repeats: int = 3
    device: str = "auto"

    @classmethod
    def quick(cls, **overrides: Any) -> StudyConfig:
        """A tiny model on the crystals task: a couple of minutes on one CPU thread."""
        base = cls(
            tasks=("crystals",),
            channels=16,
            hidden=16,
            groups=4,
            pool=2,
            epochs=4,
            lr=3e-3,
            m_values=(0, 1, 2, 3, 5, 10),
            betas=(0.5, 1.0),
            eval_samples=16,
            repeats=3,
            eval_max_iter=300,
        )
        return replace(base, **overrides)

    def for_task(self, task: str | None) -> StudyConfig:
        """This configuration with every None setting taken from ``task``'s default recipe.

        Settings of a task without a recipe (or ``task=None``) fall back to fixed defaults;
        settings already given are kept, so calling it again changes nothing.

        Examples
        --------
        >>> from andersonn_lab.deq.recipe import default_recipe
        >>> StudyConfig().for_task("mofs").lr == default_recipe("mofs", smoke=False).training["lr"]
        True
        >>> StudyConfig.quick().for_task("mofs").channels
        16
        """
        from .recipe import RECIPES, default_recipe

        if task not in RECIPES:
            return replace(self, **{k: v for k, v in _FALLBACK.items() if getattr(self, k) is None})
        recipe = default_recipe(task, smoke=False)
        solver = {
            "m": recipe.forward_solver["m"],
            "train_tol": recipe.forward_solver["tol"],
            "train_max_iter": recipe.forward_solver["max_iter"],
        }
        values = {**_FALLBACK, **dict(recipe.model), **dict(recipe.training), **solver}
        filled = {k: values[k] for k in _FALLBACK if getattr(self, k) is None}
        return replace(self, **filled)


def _defaults(function: Any, names: Sequence[str]) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters
    return {name: parameters[name].default for name in names}


_FALLBACK: dict[str, Any] = {
    **_defaults(
        DEQClassifier,
        ("channels", "hidden", "groups", "pool", "cell", "contraction", "skip", "weight_std"),
    ),
    **_defaults(TrainConfig, ("epochs", "batch_size", "lr", "jacobian_penalty")),
    **_defaults(Anderson, ("m",)),
    "train_tol": 1e-4,
    "train_max_iter": 100,
}
"""Settings for a task without a default recipe (datasets passed in by the caller): the
model's, ``train``'s and :class:`~andersonn_lab.solvers.Anderson`'s own defaults, and the
training solver's tolerance and cap."""
