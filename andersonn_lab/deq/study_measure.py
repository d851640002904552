"""Measuring the speed-up study: solves, the window sweep, training both solvers, every task.

:func:`measure_solve` times one batch through a model with one solver;
:func:`compare_solvers` does it for Anderson and forward iteration and returns a
:class:`~andersonn_lab.deq.study_results.SolverComparison`; :func:`study_task` and
:func:`run_study` run the whole study (see :mod:`andersonn_lab.deq.study`) and return a
:class:`~andersonn_lab.deq.study_results.TaskStudy` and a
:class:`~andersonn_lab.deq.study_results.StudyResult`.

Examples
--------
>>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
>>> comparison = compare_solvers(model, torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 0, 1]),
...                              m=2, tol=1e-4, max_iter=100, repeats=1)
>>> comparison.anderson["solver"], comparison.forward["solver"]
('anderson', 'forward')
"""

from __future__ import annotations

import json
import math
import platform
import statistics
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from .classifier import DEQClassifier
from .study_config import StudyConfig
from .study_ratios import ratio, time_to_target
from .study_report import format_table, plot_study
from .study_results import SolverComparison, StudyResult, TaskStudy
from .train import SolverStatsCollector, resolve_device, train

__all__ = [
    "anderson_buffer_bytes",
    "compare_solvers",
    "measure_solve",
    "prediction_change",
    "run_study",
    "study_task",
    "sweep_window",
]


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


def compare_solvers(
    model: DEQClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    m: int = 5,
    beta: float = 1.0,
    tol: float = 1e-5,
    max_iter: int = 500,
    repeats: int = 3,
    backward: bool = True,
) -> SolverComparison:
    """Anderson (window ``m``, mixing ``beta``), then forward iteration, on the same batch
    with the same tolerance and cap: two :func:`measure_solve` rows.

    Examples
    --------
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> out = compare_solvers(model, torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 0, 1]),
    ...                       m=2, tol=1e-4, max_iter=200, repeats=1)
    >>> out.ratios["fwd_nfe_ratio"] == out.forward["fwd_nfe"] / out.anderson["fwd_nfe"]
    True
    """
    common = {"tol": tol, "max_iter": max_iter, "repeats": repeats, "backward": backward}
    anderson = measure_solve(model, images, labels, method="anderson", m=m, beta=beta, **common)
    forward = measure_solve(model, images, labels, method="forward", **common)
    return SolverComparison(anderson, forward)


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
) -> TaskStudy:
    """The whole study on one task's splits.

    Returns
    -------
    TaskStudy
        A read-only mapping over the JSON-ready dict, keys: ``task``, ``sizes``,
        ``training`` (per solver: history, final accuracies, time to target, unconverged
        solves), ``target_acc`` and ``target_source``, ``train_time_ratio``, ``solves`` (the
        Anderson and forward rows of :func:`measure_solve` on the Anderson-trained model),
        ``speedup`` (ratios and their labels, :func:`speedup_ratios`),
        ``prediction_change`` and ``sweep``; ``.models`` holds both trained models,
        ``.table()`` the speed-up rows and ``.plot()`` its figures.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> gen = torch.Generator().manual_seed(0)
    >>> images = torch.rand(16, 3, 6, 6, generator=gen)
    >>> data = TensorDataset(images, (images[:, 0].mean((1, 2)) > 0.5).long())
    >>> config = StudyConfig.quick(channels=4, hidden=4, groups=2, pool=1, epochs=1,
    ...                            m_values=(0, 2), betas=(1.0,), eval_samples=8, repeats=1)
    >>> study = study_task("toy", data, data, data, num_classes=2, config=config)
    >>> sorted(study.models), list(study.table().index)
    (['anderson', 'forward'], ['anderson', 'forward', 'forward / anderson'])
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
        ratio(f_t["seconds"], a_t["seconds"]) if a_t["reached"] and f_t["reached"] else None
    )

    model = models["anderson"]
    pool = ConcatDataset([val_set, test_set]) if len(test_set) else val_set
    images, labels = _stack(pool, config.eval_samples)
    comparison = compare_solvers(
        model,
        images,
        labels,
        m=config.m,
        beta=config.beta,
        tol=config.eval_tol,
        max_iter=config.eval_max_iter,
        repeats=config.repeats,
    )
    all_images, _ = _stack(pool)
    change = prediction_change(model, all_images, config)
    sweep = sweep_window(model, images, labels, config)
    data = {
        "task": name,
        "settings": asdict(config),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        "training": training,
        "target_acc": target,
        "target_source": source,
        "train_time_ratio": train_ratio,
        "solves": comparison.rows,
        "speedup": comparison.ratios,
        "prediction_change": change,
        "sweep": sweep,
    }
    return TaskStudy(data, models)


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
) -> StudyResult:
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
    StudyResult
        A read-only mapping with keys ``config``, ``device``, ``tasks`` (one
        :class:`~andersonn_lab.deq.study_results.TaskStudy` each), ``skipped``, ``seconds``,
        ``json`` and ``png`` paths; ``.table()``, ``.plot()``, ``.models``, ``.report()``.
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
    result = StudyResult(study)
    say(format_table(result))
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
