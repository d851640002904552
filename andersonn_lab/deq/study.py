"""The speed-up and crossover study: Anderson extrapolation against forward iteration.

For every task the study

1. trains the same DEQ classifier twice, with the same seed, data order, tolerance and
   iteration cap, once with Anderson and once with forward iteration (forward and backward
   solves use the same method), and reads the training wall time until a target validation
   accuracy is first reached, and the final accuracies;
2. on the Anderson-trained model, solves a fixed batch to a tight tolerance (``eval_tol``,
   default 1e-5 relative) with each solver under the same generous cap, and records
   function evaluations and wall time of the forward solve and of the backward (adjoint)
   solve, and how many samples did not converge;
3. counts the predictions that change when inference uses Anderson at the training
   tolerance instead of a solve to ``reference_tol`` (1e-6);
4. sweeps Anderson's window ``m`` (0 = forward iteration with mixing ``β``) and ``β``,
   recording evaluations, wall time to ``eval_tol`` and memory: the bytes of the solver's
   history buffers computed from their shapes, plus, on CUDA only, the measured peak
   (``torch.cuda.max_memory_allocated`` above the baseline). On the CPU nothing measures one
   solve's peak honestly: torch's CPU allocator keeps no peak counter, ``tracemalloc`` does not
   see tensor memory, and the process's peak resident set never falls (it read 0 for most
   rows), so the CPU rows carry the computed bytes only.

Fairness: both solvers get the same tolerance and cap. When a solver does not converge the
table says so; a speed-up where forward iteration stopped at its cap is labelled
``forward hit cap`` (the true ratio is then at least the printed one for evaluations).

Examples
--------
>>> from torch.utils.data import TensorDataset
>>> gen = torch.Generator().manual_seed(0)
>>> images = torch.rand(16, 3, 6, 6, generator=gen)
>>> data = TensorDataset(images, (images[:, 0].mean((1, 2)) > 0.5).long())
>>> config = StudyConfig.quick(channels=4, hidden=4, groups=2, pool=1, epochs=1,
...                            m_values=(0, 2), betas=(1.0,), eval_samples=8, repeats=1)
>>> study = study_task("toy", data, data, data, num_classes=2, config=config)
>>> [row["solver"] for row in study["solves"]]
['anderson', 'forward']
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from ..solvers import Anderson
from .classifier import DEQClassifier
from .train import SolverStatsCollector, TrainConfig, resolve_device, train

__all__ = [
    "LITERATURE_TRAIN_SPEEDUP",
    "TARGET_NFE_RATIO",
    "TARGET_PREDICTION_CHANGE",
    "StudyConfig",
    "add_bench_arguments",
    "anderson_buffer_bytes",
    "format_table",
    "measure_solve",
    "plot_study",
    "prediction_change",
    "run_bench",
    "run_study",
    "speedup_label",
    "study_task",
    "sweep_window",
    "time_to_target",
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


# --------------------------------------------------------------------------- measurements
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _solver(method: str, *, m: int, beta: float, tol: float, max_iter: int) -> dict[str, Any]:
    settings: dict[str, Any] = {"method": method, "beta": beta, "tol": tol, "max_iter": max_iter}
    if method == "anderson":
        settings["m"] = m
    return settings


def anderson_buffer_bytes(m: int, batch: int, dim: int, itemsize: int = 4) -> int:
    """Bytes of Anderson's history for a ``(batch, dim)`` state: two ``(B, m+1, d)`` ring
    buffers (``f(z_i)`` and residuals), the float64 ``(B, m+1, m+1)`` Gram matrix, the mixing
    weights and validity flags.

    Examples
    --------
    >>> anderson_buffer_bytes(0, 1, 10)
    93
    """
    slots = m + 1
    return (
        2 * batch * slots * dim * itemsize  # f_hist, g_hist
        + batch * slots * slots * 8  # Gram matrix (float64)
        + batch * slots * itemsize  # alpha
        + batch * slots  # valid flags (bool)
    )


def measure_solve(
    model: DEQClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    method: str,
    m: int = 5,
    beta: float = 1.0,
    tol: float = 1e-5,
    max_iter: int = 500,
    repeats: int = 3,
    backward: bool = True,
) -> dict[str, Any]:
    """Forward (and backward) solve of one batch through ``model`` with the given solver.

    Both the forward and the adjoint solve use ``method`` with the same ``tol`` and cap.
    The model's solver settings are restored afterwards.

    Returns
    -------
    dict
        ``solver``, ``m``, ``beta``, ``tol``, ``max_iter``, ``n``; ``fwd_nfe`` (evaluations
        of the batch: the solve runs until its slowest sample stops), ``fwd_steps_mean``
        (steps per sample, averaged), ``fwd_time`` (median seconds), ``fwd_unconverged``,
        ``fwd_hit_cap``; the same with ``bwd_`` (None without ``backward``); memory:
        ``history_bytes`` (analytic) and ``cuda_peak_bytes`` (measured, CUDA only: None on
        the CPU).

    Examples
    --------
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> row = measure_solve(model, torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 0, 1]),
    ...                     method="forward", max_iter=5, tol=1e-12, repeats=1)
    >>> row["fwd_hit_cap"], row["fwd_nfe"] <= 6
    (True, True)
    """
    device = next(model.parameters()).device
    images, labels = images.to(device), labels.to(device)
    layer = model.deq
    saved = (layer.forward_solver, layer.backward_solver)
    settings = _solver(method, m=m, beta=beta, tol=tol, max_iter=max_iter)
    layer.configure(forward_solver=settings, backward_solver=settings)
    was_training = model.training
    model.eval()
    fwd_times, bwd_times = [], []
    cuda_peak = None
    try:
        with torch.set_grad_enabled(backward):  # untimed warm-up (allocator, kernels)
            logits = model(images)
            if backward:
                nn.functional.cross_entropy(logits.float(), labels).backward()
        with SolverStatsCollector(model) as stats:
            for _ in range(max(repeats, 1)):
                stats.reset()
                model.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    _sync(device)
                    base = torch.cuda.memory_allocated(device)
                    torch.cuda.reset_peak_memory_stats(device)
                with torch.set_grad_enabled(backward):
                    logits = model(images)
                    if backward:
                        nn.functional.cross_entropy(logits.float(), labels).backward()
                _sync(device)
                if device.type == "cuda":
                    cuda_peak = max(cuda_peak or 0, torch.cuda.max_memory_allocated(device) - base)
                fwd_times.append(stats.forward_time)
                bwd_times.append(stats.backward_time)
            fwd_steps, bwd_steps = stats.forward_steps, stats.backward_steps
            row = {
                "fwd_nfe": stats.forward_nfe,
                "fwd_steps_mean": float(fwd_steps.double().mean()) if fwd_steps.numel() else 0.0,
                "fwd_time": statistics.median(fwd_times),
                "fwd_unconverged": stats.forward_unconverged,
                "bwd_nfe": stats.backward_nfe if backward else None,
                "bwd_steps_mean": float(bwd_steps.double().mean())
                if backward and bwd_steps.numel()
                else None,
                "bwd_time": statistics.median(bwd_times) if backward else None,
                "bwd_unconverged": stats.backward_unconverged if backward else None,
            }
        model.zero_grad(set_to_none=True)
    finally:
        layer.configure(forward_solver=saved[0], backward_solver=saved[1])
        model.train(was_training)
    channels = model.config["channels"]
    dim = channels * images.shape[-2] * images.shape[-1]
    itemsize = torch.empty((), dtype=torch.get_default_dtype()).element_size()
    return {
        "solver": method,
        "m": m if method == "anderson" else 0,
        "beta": beta,
        "tol": tol,
        "max_iter": max_iter,
        "n": int(labels.numel()),
        **row,
        "fwd_hit_cap": row["fwd_unconverged"] > 0,
        "bwd_hit_cap": None if not backward else row["bwd_unconverged"] > 0,
        "history_bytes": anderson_buffer_bytes(m, len(images), dim, itemsize)
        if method == "anderson"
        else 0,
        "cuda_peak_bytes": cuda_peak,
    }


def speedup_label(
    anderson: Mapping[str, Any], forward: Mapping[str, Any], phase: str = "fwd"
) -> str:
    """How to read the forward / Anderson ratio of one phase (``"fwd"`` or ``"bwd"``).

    Examples
    --------
    >>> speedup_label({"fwd_unconverged": 0}, {"fwd_unconverged": 3})
    'forward hit cap: ratio is a lower bound'
    >>> speedup_label({"fwd_unconverged": 0}, {"fwd_unconverged": 0})
    'both converged'
    """
    a_bad = bool(anderson.get(f"{phase}_unconverged"))
    f_bad = bool(forward.get(f"{phase}_unconverged"))
    if a_bad and f_bad:
        return "neither converged: not comparable"
    if a_bad:
        return "anderson did not converge"
    if f_bad:
        return "forward hit cap: ratio is a lower bound"
    return "both converged"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


def time_to_target(history: Sequence[Mapping[str, Any]], target: float) -> dict[str, Any]:
    """Training seconds (``time_epoch`` summed, validation excluded) until ``val_acc`` first
    reaches ``target``.

    Examples
    --------
    >>> history = [{"epoch": 1, "val_acc": 0.5, "time_epoch": 2.0},
    ...            {"epoch": 2, "val_acc": 0.8, "time_epoch": 3.0}]
    >>> time_to_target(history, 0.7)
    {'reached': True, 'epoch': 2, 'seconds': 5.0}
    >>> time_to_target(history, 0.9)["reached"]
    False
    """
    elapsed = 0.0
    for metrics in history:
        elapsed += float(metrics["time_epoch"])
        acc = metrics.get("val_acc")
        if acc is not None and not math.isnan(acc) and acc >= target - 1e-12:
            return {"reached": True, "epoch": int(metrics["epoch"]), "seconds": elapsed}
    return {"reached": False, "epoch": None, "seconds": elapsed}


@torch.no_grad()
def _predict_with(
    model: DEQClassifier, images: torch.Tensor, settings: Mapping[str, Any], batch: int
):
    layer = model.deq
    saved = layer.forward_solver
    layer.configure(forward_solver=dict(settings))
    model.eval()
    device = next(model.parameters()).device
    classes, unconverged = [], 0
    try:
        with SolverStatsCollector(model) as stats:
            for start in range(0, len(images), batch):
                classes.append(model(images[start : start + batch].to(device)).argmax(1).cpu())
            unconverged = stats.forward_unconverged
    finally:
        layer.configure(forward_solver=saved)
    return torch.cat(classes), unconverged


def prediction_change(
    model: DEQClassifier, images: torch.Tensor, config: StudyConfig
) -> dict[str, Any]:
    """Share of predictions that differ between Anderson at the training tolerance and cap
    and Anderson at ``reference_tol`` with the generous cap.

    Examples
    --------
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> out = prediction_change(model, torch.rand(5, 3, 6, 6), StudyConfig.quick())
    >>> out["n"], 0.0 <= out["changed_fraction"] <= 1.0
    (5, True)
    """
    config = config.for_task(None)  # unset tolerances: the fallback defaults
    fast = _solver(
        "anderson",
        m=config.m,
        beta=config.beta,
        tol=config.train_tol,
        max_iter=config.train_max_iter,
    )
    ref = _solver(
        "anderson",
        m=config.m,
        beta=config.beta,
        tol=config.reference_tol,
        max_iter=config.eval_max_iter,
    )
    fast_cls, fast_unc = _predict_with(model, images, fast, config.batch_size)
    ref_cls, ref_unc = _predict_with(model, images, ref, config.batch_size)
    changed = int((fast_cls != ref_cls).sum())
    n = int(len(images))
    return {
        "n": n,
        "changed": changed,
        "changed_fraction": changed / n if n else math.nan,
        "fast_tol": config.train_tol,
        "reference_tol": config.reference_tol,
        "fast_unconverged": fast_unc,
        "reference_unconverged": ref_unc,
    }


def sweep_window(
    model: DEQClassifier, images: torch.Tensor, labels: torch.Tensor, config: StudyConfig
) -> list[dict[str, Any]]:
    """Anderson forward solves to ``eval_tol`` for every ``m`` in ``m_values`` and ``β`` in
    ``betas`` (``m = 0`` is forward iteration with mixing ``β``), plus plain forward
    iteration, each a :func:`measure_solve` row (forward solve only).

    Examples
    --------
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> config = StudyConfig.quick(m_values=(0, 3), betas=(1.0,), repeats=1)
    >>> rows = sweep_window(model, torch.rand(2, 3, 6, 6), torch.tensor([0, 1]), config)
    >>> [(r["solver"], r["m"]) for r in rows]
    [('anderson', 0), ('anderson', 3), ('forward', 0)]
    """
    rows = []
    common = {"tol": config.eval_tol, "max_iter": config.eval_max_iter, "repeats": config.repeats}
    for beta in config.betas:
        for m in config.m_values:
            rows.append(
                measure_solve(
                    model,
                    images,
                    labels,
                    method="anderson",
                    m=m,
                    beta=beta,
                    backward=False,
                    **common,
                )
            )
    rows.append(measure_solve(model, images, labels, method="forward", backward=False, **common))
    return rows


# --------------------------------------------------------------------------- one task
def _build_model(
    config: StudyConfig, in_channels: int, num_classes: int, method: str, global_channels: int = 0
) -> DEQClassifier:
    settings = _solver(
        method, m=config.m, beta=config.beta, tol=config.train_tol, max_iter=config.train_max_iter
    )
    torch.manual_seed(config.seed)
    return DEQClassifier(
        in_channels,
        num_classes,
        channels=config.channels,
        hidden=config.hidden,
        groups=config.groups,
        pool=config.pool,
        cell=config.cell,
        contraction=config.contraction,
        skip=config.skip,
        weight_std=config.weight_std,
        global_channels=global_channels,
        forward_solver=settings,
        backward_solver=settings,
    )


def _global_channels(dataset: Dataset) -> int:
    """Whole-structure channels of a task dataset's encoding (0 for other datasets)."""
    from andersonn_lab.structures.images import GLOBAL_CHANNELS

    base = getattr(dataset, "dataset", dataset)  # a Subset of a TaskDataset
    return GLOBAL_CHANNELS.get(str(getattr(base, "encoding", "")), 0)


def _stack(dataset: Dataset, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(dataset) if limit is None else min(limit, len(dataset))
    items = [dataset[i] for i in range(n)]
    images = torch.stack([torch.as_tensor(image) for image, _ in items])
    labels = torch.tensor([int(label) for _, label in items], dtype=torch.long)
    return images, labels


def study_task(
    name: str,
    train_set: Dataset,
    val_set: Dataset,
    test_set: Dataset,
    *,
    num_classes: int,
    config: StudyConfig,
    progress: bool = False,
) -> dict[str, Any]:
    """The whole study on one task's splits; returns a JSON-ready dict.

    Keys: ``task``, ``sizes``, ``training`` (per solver: history, final accuracies, time to
    target, unconverged solves), ``target_acc`` and ``target_source``, ``train_time_ratio``,
    ``solves`` (the Anderson and forward rows of :func:`measure_solve` on the
    Anderson-trained model), ``speedup`` (ratios and their labels), ``prediction_change``
    and ``sweep``.
    """
    config = config.for_task(name)
    device = resolve_device(config.device)
    image, _ = train_set[0]
    in_channels = int(torch.as_tensor(image).shape[0])
    global_channels = _global_channels(train_set)
    training: dict[str, Any] = {}
    models: dict[str, DEQClassifier] = {}
    for method in ("anderson", "forward"):
        model = _build_model(config, in_channels, num_classes, method, global_channels)
        result = train(
            model,
            train_set,
            val_set,
            epochs=config.epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            jacobian_penalty=config.jacobian_penalty,
            device=device,
            seed=config.seed,
            progress=progress,
        )
        history = result.history
        test_acc = None
        if len(test_set):
            from .train import evaluate

            test_acc = evaluate(model, test_set, batch_size=config.batch_size)["acc"]
        training[method] = {
            "history": history,
            "final_val_acc": history[-1]["val_acc"],
            "best_val_acc": max(m["val_acc"] for m in history),
            "test_acc": test_acc,
            "train_seconds": sum(m["time_epoch"] for m in history),
            "fwd_unconverged": sum(m["fwd_unconverged"] for m in history),
            "bwd_unconverged": sum(m["bwd_unconverged"] for m in history),
            "fwd_iter_mean_last": history[-1]["fwd_iter_mean"],
        }
        models[method] = model
    if config.target_acc is not None:
        target, source = float(config.target_acc), "given"
    else:
        target = min(training[m]["best_val_acc"] for m in training)
        source = "best validation accuracy reached by both runs"
    for method in training:
        training[method]["to_target"] = time_to_target(training[method]["history"], target)
    a_t, f_t = training["anderson"]["to_target"], training["forward"]["to_target"]
    train_ratio = (
        _ratio(f_t["seconds"], a_t["seconds"]) if a_t["reached"] and f_t["reached"] else None
    )

    model = models["anderson"]
    pool = ConcatDataset([val_set, test_set]) if len(test_set) else val_set
    images, labels = _stack(pool, config.eval_samples)
    common = {"tol": config.eval_tol, "max_iter": config.eval_max_iter, "repeats": config.repeats}
    solves = [
        measure_solve(
            model, images, labels, method="anderson", m=config.m, beta=config.beta, **common
        ),
        measure_solve(model, images, labels, method="forward", **common),
    ]
    a_row, f_row = solves
    speedup = {
        "fwd_nfe_ratio": _ratio(f_row["fwd_nfe"], a_row["fwd_nfe"]),
        "fwd_time_ratio": _ratio(f_row["fwd_time"], a_row["fwd_time"]),
        "fwd_steps_ratio": _ratio(f_row["fwd_steps_mean"], a_row["fwd_steps_mean"]),
        "fwd_label": speedup_label(a_row, f_row, "fwd"),
        "bwd_nfe_ratio": _ratio(f_row["bwd_nfe"], a_row["bwd_nfe"]),
        "bwd_time_ratio": _ratio(f_row["bwd_time"], a_row["bwd_time"]),
        "bwd_steps_ratio": _ratio(f_row["bwd_steps_mean"], a_row["bwd_steps_mean"]),
        "bwd_label": speedup_label(a_row, f_row, "bwd"),
    }
    all_images, _ = _stack(pool)
    change = prediction_change(model, all_images, config)
    sweep = sweep_window(model, images, labels, config)
    return {
        "task": name,
        "settings": asdict(config),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        "training": training,
        "target_acc": target,
        "target_source": source,
        "train_time_ratio": train_ratio,
        "solves": solves,
        "speedup": speedup,
        "prediction_change": change,
        "sweep": sweep,
    }


# --------------------------------------------------------------------------- all tasks
def _device_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
    return info


def run_study(
    config: StudyConfig,
    out_dir: str | Path,
    *,
    datasets: Mapping[str, tuple[Dataset, Dataset, Dataset, int]] | None = None,
    progress: bool = False,
    log: Any = print,
) -> dict[str, Any]:
    """Run :func:`study_task` on every task, print the table, write JSON and a PNG.

    Parameters
    ----------
    config:
        Study settings.
    out_dir:
        Folder for ``deq_study.json`` and ``deq_study.png``.
    datasets:
        ``{name: (train, val, test, num_classes)}``; default: ``config.tasks`` loaded with
        :func:`andersonn_lab.datasets.load_task` (tasks whose data is missing are skipped and
        listed under ``skipped``).
    log:
        Called with progress lines and the final table (None: silent).

    Returns
    -------
    dict
        ``config``, ``device``, ``tasks`` (one :func:`study_task` dict each), ``skipped``,
        ``seconds``, ``json`` and ``png`` paths.
    """
    say = log or (lambda *_: None)
    device = resolve_device(config.device)
    started = time.perf_counter()
    skipped: dict[str, str] = {}
    if datasets is None:
        datasets = {}
        from andersonn_lab.datasets import load_task

        from .recipe import RECIPES, default_recipe

        for name in config.tasks:
            try:
                if name in RECIPES:
                    task = default_recipe(name, smoke=False).load()
                else:
                    task = load_task(name)
            except (FileNotFoundError, ValueError, ImportError) as err:
                skipped[name] = str(err)
                say(f"skipping {name}: {err}")
                continue
            splits = tuple(task.subset(s) for s in ("train", "val", "test"))
            datasets[name] = (*splits, len(task.class_names))
    results = []
    for name, (train_set, val_set, test_set, num_classes) in datasets.items():
        say(f"{name}: training and measuring ({len(train_set)} train samples)...")
        results.append(
            study_task(
                name,
                train_set,
                val_set,
                test_set,
                num_classes=num_classes,
                config=config,
                progress=progress,
            )
        )
    study = {
        "config": asdict(config),
        "device": _device_info(device),
        "tasks": results,
        "skipped": skipped,
        "seconds": time.perf_counter() - started,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study["json"] = str(out / "deq_study.json")
    study["png"] = str(out / "deq_study.png")
    plot_study(study, study["png"])
    Path(study["json"]).write_text(json.dumps(_jsonable(study), indent=2))
    say(format_table(study))
    return study


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- reporting
def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:{spec}}{suffix}")
    )


def _conv(unconverged: int | None, n: int) -> str:
    if unconverged is None:
        return "n/a"
    return "yes" if unconverged == 0 else f"NO ({unconverged}/{n} hit cap)"


def _nfe_verdict(ratio: float | None, anderson_row: Mapping[str, Any]) -> str:
    """'met' when the evaluation ratio reaches the target and Anderson converged everywhere."""
    met = ratio is not None and ratio >= TARGET_NFE_RATIO and anderson_row["fwd_unconverged"] == 0
    return "met" if met else "NOT met"


def format_table(study: Mapping[str, Any]) -> str:
    """The study as text: solver comparison, training, accuracy at speed, window sweep and
    the targets (our numbers next to them; nothing is marked met unless measured so).

    Examples
    --------
    >>> format_table({"device": {"device": "cpu"}, "tasks": [], "skipped": {}}).splitlines()[0]
    'DEQ speed-up study on cpu (torch ?, ? thread(s))'
    """
    dev = study["device"]
    lines = [
        f"DEQ speed-up study on {dev.get('name', dev['device'])} "
        f"(torch {dev.get('torch', '?')}, {dev.get('threads', '?')} thread(s))"
    ]
    for name, reason in study.get("skipped", {}).items():
        lines.append(f"  skipped {name}: {reason}")
    for task in study["tasks"]:
        a, f = task["solves"]
        sp = task["speedup"]
        lines.append("")
        lines.append(
            f"== {task['task']} (train {task['sizes']['train']}, val {task['sizes']['val']}, "
            f"test {task['sizes']['test']}); solves of {a['n']} samples to tol {a['tol']:g}, "
            f"cap {a['max_iter']}, on the Anderson-trained model"
        )
        if "settings" in task:
            st = task["settings"]
            cell = st.get("cell") or "resnet"
            if cell == "contractive":
                cell = f"contractive cell (Lipschitz <= {st['contraction']:g}, skip {st['skip']:g})"
            else:
                cell = f"{cell} cell"
            lines.append(
                f"  model: {cell}, {st['channels']} channels, hidden {st['hidden']}, "
                f"pool {st['pool']}; "
                f"training: {st['epochs']} epochs, batch {st['batch_size']}, lr {st['lr']:g}, "
                f"Jacobian penalty {st['jacobian_penalty']:g}, solver tol {st['train_tol']:g}"
            )
        head = (
            f"  {'solver':<14} {'fwd nfe':>8} {'steps/sample':>12} {'fwd ms':>9} "
            f"{'fwd converged':<22} {'bwd nfe':>8} {'steps/sample':>12} {'bwd ms':>9} "
            f"{'bwd converged':<22}"
        )
        lines.append(head)
        for row in (a, f):
            label = f"anderson m={row['m']}" if row["solver"] == "anderson" else "forward"
            lines.append(
                f"  {label:<14} {row['fwd_nfe']:>8d} {_fmt(row.get('fwd_steps_mean'), '.1f'):>12} "
                f"{row['fwd_time'] * 1e3:>9.1f} "
                f"{_conv(row['fwd_unconverged'], row['n']):<22} "
                f"{row['bwd_nfe'] if row['bwd_nfe'] is not None else 'n/a':>8} "
                f"{_fmt(row.get('bwd_steps_mean'), '.1f'):>12} "
                f"{_fmt(row['bwd_time'] and row['bwd_time'] * 1e3, '.1f'):>9} "
                f"{_conv(row['bwd_unconverged'], row['n']):<22}"
            )
        lines.append(
            f"  forward/anderson: fwd nfe {_fmt(sp['fwd_nfe_ratio'], '.1f', 'x')} per batch, "
            f"{_fmt(sp.get('fwd_steps_ratio'), '.1f', 'x')} per sample, "
            f"fwd time {_fmt(sp['fwd_time_ratio'], '.2f', 'x')} [{sp['fwd_label']}]; "
            f"bwd nfe {_fmt(sp['bwd_nfe_ratio'], '.1f', 'x')} per batch, "
            f"{_fmt(sp.get('bwd_steps_ratio'), '.1f', 'x')} per sample, "
            f"bwd time {_fmt(sp['bwd_time_ratio'], '.2f', 'x')} [{sp['bwd_label']}]"
        )
        tr = task["training"]
        lines.append(
            f"  training ({len(tr['anderson']['history'])} epochs, same seed/data; target val "
            f"acc {task['target_acc']:.3f} = {task['target_source']}):"
        )
        for method in ("anderson", "forward"):
            t = tr[method]
            reach = t["to_target"]
            when = (
                f"{reach['seconds']:.1f} s (epoch {reach['epoch']})"
                if reach["reached"]
                else f"not reached ({reach['seconds']:.1f} s total)"
            )
            lines.append(
                f"    {method:<9} to target {when}; final val acc {t['final_val_acc']:.3f}, "
                f"test acc {_fmt(t['test_acc'], '.3f')}; unconverged solves during training: "
                f"fwd {t['fwd_unconverged']}, bwd {t['bwd_unconverged']}"
            )
        lines.append(
            f"    training-time ratio forward/anderson to target: "
            f"{_fmt(task['train_time_ratio'], '.2f', 'x')} "
            f"(literature: {LITERATURE_TRAIN_SPEEDUP}x, CIFAR-10 on a V100)"
        )
        pc = task["prediction_change"]
        lines.append(
            f"  accuracy at speed: anderson at tol {pc['fast_tol']:g} vs {pc['reference_tol']:g} "
            f"changes {pc['changed']}/{pc['n']} predictions ({100 * pc['changed_fraction']:.2f}%); "
            f"unconverged: {pc['fast_unconverged']} fast, {pc['reference_unconverged']} reference"
        )
        lines.append(f"  window sweep (forward solve to tol {a['tol']:g}):")
        on_cuda = any(row.get("cuda_peak_bytes") is not None for row in task["sweep"])
        lines.append(
            f"    {'solver':<10} {'m':>3} {'beta':>5} {'nfe':>5} {'ms':>9} {'converged':<22} "
            f"{'history KiB':>12}" + (f" {'CUDA peak KiB':>14}" if on_cuda else "")
        )
        for row in task["sweep"]:
            peak = row.get("cuda_peak_bytes")
            lines.append(
                f"    {row['solver']:<10} {row['m']:>3} {row['beta']:>5.2f} {row['fwd_nfe']:>5d} "
                f"{row['fwd_time'] * 1e3:>9.1f} {_conv(row['fwd_unconverged'], row['n']):<22} "
                f"{row['history_bytes'] / 1024:>12.1f}"
                + (f" {(peak or 0) / 1024:>14.0f}" if on_cuda else "")
            )

        time_ok = sp["fwd_time_ratio"] is not None and sp["fwd_time_ratio"] > 1.0
        change_ok = pc["changed_fraction"] < TARGET_PREDICTION_CHANGE
        capped = " (forward hit its cap)" if f["fwd_unconverged"] else ""
        lines.append(
            f"  targets: >= {TARGET_NFE_RATIO:g}x fewer fwd nfe: "
            f"{_nfe_verdict(sp['fwd_nfe_ratio'], a)} per batch, "
            f"{_nfe_verdict(sp.get('fwd_steps_ratio'), a)} per sample{capped}; faster wall time: "
            f"{'met' if time_ok else 'NOT met'}; < {100 * TARGET_PREDICTION_CHANGE:g}% "
            f"predictions changed: {'met' if change_ok else 'NOT met'}"
        )
    lines.append("")
    lines.append(
        "memory: 'history KiB' is Anderson's buffers computed from their shapes; 'CUDA peak "
        "KiB' (on CUDA only) is torch.cuda.max_memory_allocated above the baseline during "
        "the solve. On the CPU no peak is measured: torch's CPU allocator keeps no peak counter."
    )
    if "json" in study:
        lines.append(f"wrote {study['json']} and {study['png']}")
    return "\n".join(lines)


def plot_study(study: Mapping[str, Any], path: str | Path) -> Path:
    """PNG with, per task, wall time to tolerance, evaluations and history memory against
    ``m`` (one line per ``β``; plain forward iteration as a dashed line).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = plot_study({"tasks": []}, pathlib.Path(tempfile.mkdtemp()) / "s.png")
    >>> p.stat().st_size > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(study["tasks"])
    rows = max(len(tasks), 1)
    fig = Figure(figsize=(13, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 3, squeeze=False)
    if not tasks:
        axes[0][0].set_title("no tasks measured")
    for task, (ax_time, ax_nfe, ax_mem) in zip(tasks, axes, strict=False):
        sweep = task["sweep"]
        anderson = [r for r in sweep if r["solver"] == "anderson"]
        forward = [r for r in sweep if r["solver"] == "forward"]
        for beta in sorted({r["beta"] for r in anderson}):
            part = sorted((r for r in anderson if r["beta"] == beta), key=lambda r: r["m"])
            ms = [r["m"] for r in part]
            for axis, key, scale in ((ax_time, "fwd_time", 1e3), (ax_nfe, "fwd_nfe", 1)):
                axis.plot(
                    ms, [r[key] * scale for r in part], marker="o", label=f"anderson β={beta:g}"
                )
                capped = [r for r in part if r["fwd_unconverged"]]
                if capped:
                    axis.scatter(
                        [r["m"] for r in capped],
                        [r[key] * scale for r in capped],
                        marker="x",
                        s=80,
                        color="red",
                        zorder=3,
                    )
            ax_mem.plot(
                ms, [r["history_bytes"] / 2**20 for r in part], marker="o", label=f"β={beta:g}"
            )
        for row in forward:
            label = "forward" + (" (hit cap)" if row["fwd_unconverged"] else "")
            ax_time.axhline(row["fwd_time"] * 1e3, ls="--", color="grey", label=label)
            ax_nfe.axhline(row["fwd_nfe"], ls="--", color="grey", label=label)
        tol = sweep[0]["tol"] if sweep else math.nan
        ax_time.set_title(f"{task['task']}: wall time to tol {tol:g}")
        ax_time.set_ylabel("ms")
        ax_nfe.set_title("function evaluations (x: not converged)")
        ax_mem.set_title("Anderson history buffers")
        ax_mem.set_ylabel("MiB")
        for axis in (ax_time, ax_nfe, ax_mem):
            axis.set_xlabel("window m")
            axis.grid(alpha=0.3)
            if axis.lines:
                axis.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


# --------------------------------------------------------------------------- command line
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
