"""Training, evaluation and prediction for DEQ classifiers, with solver statistics.

:func:`train` runs a seeded, resumable training loop that writes a run folder::

    run_dir/
        config.json          run configuration (training, model, anything passed as config)
        metrics.json         {"history": [per-epoch metrics, ...]}
        checkpoints/last.pt  written atomically after every epoch
        checkpoints/best.pt  the epoch with the best validation accuracy (or lowest loss)

Per-epoch metrics (keys of each ``history`` entry): ``epoch``, ``lr``, ``train_loss``,
``train_acc``, ``val_loss``, ``val_acc``, ``fwd_iter_mean``, ``fwd_iter_max``,
``bwd_iter_mean``, ``bwd_iter_max``, ``fwd_unconverged``, ``bwd_unconverged``,
``val_fwd_iter_mean``, ``val_fwd_iter_max``, ``val_fwd_unconverged``,
``time_forward_solve``, ``time_backward_solve``, ``time_other``, ``time_epoch`` (the
training part of the epoch; ``time_other = time_epoch - forward - backward``) and
``time_val`` (seconds), ``n_train``, ``steps`` (batches), and ``jacobian`` when the
Jacobian penalty is on. Iterations are solver steps per sample, summed over the model's DEQ
layers. Under DistributedDataParallel the training metrics combine every process (sums and
counts added, maxima taken, solve times averaged per process), so they describe the global
batch; ``steps`` counts this process's batches.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from andersonn_lab._warnings import warn

from .checkpoint import (
    CheckpointError,
    atomic_write_json,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from .layer import DEQLayer, DEQStats

__all__ = [
    "NonFiniteLossError",
    "SolverStatsCollector",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "plot_history",
    "predict",
    "resolve_device",
    "train",
]

SCHEDULERS = ("cosine", "none")
_RESUME_KEYS = (
    "batch_size",
    "lr",
    "weight_decay",
    "scheduler",
    "grad_clip",
    "jacobian_penalty",
    "seed",
    "amp",
    "n_train",
)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped, checkpoints kept."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other values are checked and returned.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return device


class SolverStatsCollector:
    """Subscribes to every :class:`~andersonn_lab.deq.layer.DEQLayer` in a model and sums
    their solver statistics until :meth:`reset`.

    Use as a context manager (hooks are removed on exit).

    Examples
    --------
    >>> from andersonn_lab.deq import DEQLayer, TanhCell
    >>> model = torch.nn.Sequential(DEQLayer(TanhCell(3)))
    >>> with SolverStatsCollector(model) as stats:
    ...     model(torch.ones(4, 3)).sum().backward()
    >>> stats.forward_steps.shape, stats.backward_nfe > 0
    (torch.Size([4]), True)
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, DEQLayer)]
        self._handles = [layer.register_stats_hook(self._record) for layer in self.layers]
        self.reset()

    def reset(self) -> None:
        """Forget everything recorded so far."""
        self.forward: list[DEQStats] = []
        self.backward: list[DEQStats] = []

    def _record(self, layer: DEQLayer, phase: str, stats: DEQStats) -> None:
        (self.forward if phase == "forward" else self.backward).append(stats)

    @staticmethod
    def _steps(parts: list[torch.Tensor]) -> torch.Tensor:
        if not parts:
            return torch.zeros(0, dtype=torch.long)
        if all(p.shape == parts[0].shape for p in parts):
            return torch.stack(parts).sum(0)
        return torch.cat(parts)

    @property
    def forward_steps(self) -> torch.Tensor:
        """Forward solver steps per sample, summed over layers and calls."""
        return self._steps([s.forward.steps for s in self.forward])

    @property
    def backward_steps(self) -> torch.Tensor:
        """Backward solver steps per sample, summed over layers and calls."""
        return self._steps([s.backward.steps for s in self.backward if s.backward is not None])

    @property
    def forward_nfe(self) -> int:
        return sum(s.forward.nfe for s in self.forward)

    @property
    def backward_nfe(self) -> int:
        return sum(s.backward.nfe for s in self.backward if s.backward is not None)

    @property
    def forward_unconverged(self) -> int:
        """Samples whose forward solve did not converge (counted per layer call)."""
        return sum(s.forward.n_unconverged for s in self.forward)

    @property
    def backward_unconverged(self) -> int:
        return sum(s.backward.n_unconverged for s in self.backward if s.backward is not None)

    @property
    def forward_time(self) -> float:
        return sum(s.forward.wall_time for s in self.forward)

    @property
    def backward_time(self) -> float:
        return sum(s.backward.wall_time for s in self.backward if s.backward is not None)

    def close(self) -> None:
        """Unsubscribe from the layers."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> SolverStatsCollector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Accumulator:
    """Running sums over the batches of one epoch."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.correct = 0
        self.count = 0
        self.fwd_sum = 0.0
        self.fwd_n = 0
        self.fwd_max = 0
        self.bwd_sum = 0.0
        self.bwd_n = 0
        self.bwd_max = 0
        self.fwd_unconverged = 0
        self.bwd_unconverged = 0
        self.fwd_time = 0.0
        self.bwd_time = 0.0

    def add(self, loss: float, correct: int, size: int, stats: SolverStatsCollector) -> None:
        self.loss += loss * size
        self.correct += correct
        self.count += size
        fwd, bwd = stats.forward_steps, stats.backward_steps
        if fwd.numel():
            self.fwd_sum += float(fwd.sum())
            self.fwd_n += fwd.numel()
            self.fwd_max = max(self.fwd_max, int(fwd.max()))
        if bwd.numel():
            self.bwd_sum += float(bwd.sum())
            self.bwd_n += bwd.numel()
            self.bwd_max = max(self.bwd_max, int(bwd.max()))
        self.fwd_unconverged += stats.forward_unconverged
        self.bwd_unconverged += stats.backward_unconverged
        self.fwd_time += stats.forward_time
        self.bwd_time += stats.backward_time

    def all_reduce(self) -> None:
        """Combine the sums of every process of the default process group (DDP training)."""
        import torch.distributed as dist

        sums = torch.tensor(
            [
                self.loss,
                self.correct,
                self.count,
                self.fwd_sum,
                self.fwd_n,
                self.bwd_sum,
                self.bwd_n,
                self.fwd_unconverged,
                self.bwd_unconverged,
                self.fwd_time,
                self.bwd_time,
            ],
            dtype=torch.float64,
        )
        peaks = torch.tensor([self.fwd_max, self.bwd_max], dtype=torch.float64)
        dist.all_reduce(sums)
        dist.all_reduce(peaks, op=dist.ReduceOp.MAX)
        values = sums.tolist()
        self.loss, self.fwd_sum, self.bwd_sum = values[0], values[3], values[5]
        self.correct, self.count = int(values[1]), int(values[2])
        self.fwd_n, self.bwd_n = int(values[4]), int(values[6])
        self.fwd_unconverged, self.bwd_unconverged = int(values[7]), int(values[8])
        world = dist.get_world_size()
        self.fwd_time, self.bwd_time = values[9] / world, values[10] / world  # mean per rank
        self.fwd_max, self.bwd_max = int(peaks[0]), int(peaks[1])

    def mean_loss(self) -> float:
        return self.loss / self.count if self.count else math.nan

    def accuracy(self) -> float:
        return self.correct / self.count if self.count else math.nan

    def fwd_mean(self) -> float:
        return self.fwd_sum / self.fwd_n if self.fwd_n else 0.0

    def bwd_mean(self) -> float:
        return self.bwd_sum / self.bwd_n if self.bwd_n else 0.0


def _loader(dataset: Dataset, batch_size: int, order: Sequence[int] | None, workers: int):
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=order,
        shuffle=False,
        num_workers=workers,
        drop_last=False,
    )


def _to_device(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = batch
    return images.to(device, non_blocking=True), torch.as_tensor(labels).to(device)


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    amp: bool = False,
) -> dict[str, float]:
    """Loss, accuracy and forward-solver iterations of ``model`` on a labelled dataset.

    Runs in eval mode without gradients; the model's train/eval mode is restored after.

    Returns
    -------
    dict
        ``loss``, ``acc``, ``fwd_iter_mean``, ``fwd_iter_max``, ``fwd_unconverged``, ``n``.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from andersonn_lab.deq.classifier import DEQClassifier
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> data = TensorDataset(torch.rand(6, 3, 4, 4), torch.tensor([0, 1] * 3))
    >>> sorted(evaluate(model, data, batch_size=4))[:3]
    ['acc', 'fwd_iter_max', 'fwd_iter_mean']
    """
    device = _model_device(model) if device is None else resolve_device(device)
    was_training = model.training
    model.eval()
    acc = _Accumulator()
    try:
        with SolverStatsCollector(model) as stats, torch.no_grad():
            for batch in _loader(dataset, batch_size, None, 0):
                images, labels = _to_device(batch, device)
                stats.reset()
                with torch.autocast(device.type, enabled=amp and device.type == "cuda"):
                    logits = model(images)
                loss = nn.functional.cross_entropy(logits.float(), labels)
                correct = int((logits.argmax(1) == labels).sum())
                acc.add(float(loss), correct, labels.numel(), stats)
    finally:
        model.train(was_training)
    return {
        "loss": acc.mean_loss(),
        "acc": acc.accuracy(),
        "fwd_iter_mean": acc.fwd_mean(),
        "fwd_iter_max": acc.fwd_max,
        "fwd_unconverged": acc.fwd_unconverged,
        "n": acc.count,
    }


def _model_device(model: nn.Module) -> torch.device:
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def predict(
    model: nn.Module,
    images: torch.Tensor | Iterable[torch.Tensor],
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Classify images: ``(classes, probabilities, forward iterations)``.

    Parameters
    ----------
    model:
        A classifier returning logits; its DEQ layers' forward steps are reported.
    images:
        ``(N, C, H, W)`` or one ``(C, H, W)`` tensor, or an iterable of ``(C, H, W)`` tensors.

    Returns
    -------
    classes:
        ``(N,)`` long, the most probable class.
    probabilities:
        ``(N, K)`` softmax probabilities (float32, CPU).
    iterations:
        ``(N,)`` long, forward-solver steps per image (summed over DEQ layers).

    Examples
    --------
    >>> from andersonn_lab.deq.classifier import DEQClassifier
    >>> model = DEQClassifier(3, 4, channels=4, hidden=4, groups=2, pool=1)
    >>> classes, probs, iters = predict(model, torch.rand(3, 3, 6, 6))
    >>> classes.shape, probs.shape, iters.shape
    (torch.Size([3]), torch.Size([3, 4]), torch.Size([3]))
    """
    if isinstance(images, torch.Tensor):
        batch = images.unsqueeze(0) if images.ndim == 3 else images
    else:
        batch = torch.stack(list(images))
    if batch.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W) or (C, H, W), got {tuple(batch.shape)}")
    device = _model_device(model) if device is None else resolve_device(device)
    was_training = model.training
    model.eval()
    probs, iters = [], []
    try:
        with SolverStatsCollector(model) as stats, torch.no_grad():
            for start in range(0, batch.shape[0], batch_size):
                chunk = batch[start : start + batch_size].to(device)
                stats.reset()
                logits = model(chunk)
                probs.append(torch.softmax(logits.float(), dim=1).cpu())
                steps = stats.forward_steps
                iters.append(steps if steps.numel() else torch.zeros(len(chunk), dtype=torch.long))
    finally:
        model.train(was_training)
    probabilities = torch.cat(probs) if probs else torch.zeros(0, 0)
    return probabilities.argmax(1), probabilities, torch.cat(iters).long()


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history:
        Per-epoch metrics (see the module docstring).
    run_dir:
        The run folder, or None.
    last_checkpoint, best_checkpoint:
        Paths of ``checkpoints/last.pt`` and ``checkpoints/best.pt`` (None without run_dir).
    best_epoch:
        Epoch (1-based) with the best validation accuracy (or train loss without val set).
    resumed_from:
        Epochs already completed when a resumed run started (0 for a fresh run).
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None
    last_checkpoint: Path | None = None
    best_checkpoint: Path | None = None
    best_epoch: int | None = None
    resumed_from: int = 0


def _dispatch(callbacks: Sequence[Any], event: str, metrics: dict[str, Any]) -> None:
    for callback in callbacks:
        method = getattr(callback, f"on_{event}_end", None)
        if method is not None:
            method(dict(metrics))
        elif callable(callback):
            callback(event, dict(metrics))


def _score(metrics: Mapping[str, Any]) -> float:
    """Larger is better: validation accuracy, else minus the training loss."""
    val = metrics.get("val_acc")
    if val is not None and not math.isnan(val):
        return float(val)
    return -float(metrics["train_loss"])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - seeds the global generator users may rely on
    torch.manual_seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Shuffled sample order of ``epoch``, a function of the seed and the epoch only.

    :func:`train` visits the training set in this order; the distributed trainer cuts it
    into per-rank slices.

    Examples
    --------
    >>> epoch_order(5, seed=0, epoch=1) == epoch_order(5, seed=0, epoch=1)
    True
    >>> sorted(epoch_order(5, seed=0, epoch=1))
    [0, 1, 2, 3, 4]
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator).tolist()


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How :func:`train` trains: a frozen set of settings, checked when built.

    Parameters
    ----------
    epochs, batch_size, lr, weight_decay:
        The usual. ``epochs`` is the total, including epochs done before a resume.
    scheduler:
        ``"cosine"`` (cosine annealing of the learning rate over ``epochs``) or ``"none"``.
    grad_clip:
        Clip the gradient norm to this value (None: no clipping).
    jacobian_penalty:
        Weight ``γ`` of the Jacobian regulariser: the loss becomes cross-entropy
        ``+ γ · ‖J_f(z*)‖_F² / d`` summed over the DEQ layers (one random probe per batch, see
        :func:`~andersonn_lab.deq.gradients.jacobian_frobenius`). It keeps trained cells
        contractive so solves stay short; 0 turns it off. The per-epoch mean of the
        estimate is reported as ``jacobian`` when the penalty is on.
    device:
        ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    amp:
        Mixed precision (float16 autocast + gradient scaling); CUDA only, ignored with a
        warning on the CPU.
    seed:
        Seeds python, numpy and torch at the start of a fresh run; the sample order of each
        epoch depends only on ``seed`` and the epoch. Runs on the CPU are deterministic.
    run_dir:
        Folder for ``config.json``, ``metrics.json`` and ``checkpoints/`` (None: nothing
        written, no resuming).
    resume:
        Continue from ``run_dir/checkpoints/last.pt`` if it exists (model, optimiser,
        scheduler, RNG states, history); the result equals an uninterrupted run.
    progress:
        Show a ``tqdm`` progress bar per epoch.
    num_workers:
        ``DataLoader`` worker processes.

    Examples
    --------
    >>> TrainConfig(epochs=3, lr=3e-3).epochs
    3
    >>> TrainConfig(scheduler="step")
    Traceback (most recent call last):
    ...
    ValueError: scheduler must be one of ('cosine', 'none'), got 'step'
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    scheduler: str = "cosine"
    grad_clip: float | None = None
    jacobian_penalty: float = 0.0
    device: str | torch.device = "auto"
    amp: bool = False
    seed: int = 0
    run_dir: str | Path | None = None
    resume: bool = False
    progress: bool = True
    num_workers: int = 0

    def __post_init__(self) -> None:
        _check_positive_int("epochs", self.epochs)
        _check_positive_int("batch_size", self.batch_size)
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        penalty = self.jacobian_penalty
        if not (isinstance(penalty, int | float) and 0 <= penalty < math.inf):
            raise ValueError(f"jacobian_penalty must be a finite number >= 0, got {penalty!r}")
        object.__setattr__(self, "jacobian_penalty", float(penalty))


@dataclass
class _Run:
    """What one call of :func:`train` carries from epoch to epoch."""

    config: TrainConfig
    device: torch.device
    amp: bool
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any
    full_config: dict[str, Any]
    result: TrainResult = field(default_factory=lambda: TrainResult())
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0
    step: int = 0
    best_score: float = -math.inf
    run_path: Path | None = None
    last_path: Path | None = None
    best_path: Path | None = None
    collector: SolverStatsCollector | None = None


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset | None = None,
    train_config: TrainConfig | None = None,
    *,
    callbacks: Sequence[Any] = (),
    config: Mapping[str, Any] | None = None,
    **options: Any,
) -> TrainResult:
    """Train a classifier (logits out) with Adam and cross-entropy, epoch by epoch.

    Parameters
    ----------
    model:
        The model, e.g. :class:`~andersonn_lab.deq.classifier.DEQClassifier`; moved to
        the device. Solver statistics are gathered from every DEQ layer inside it.
    train_set, val_set:
        Datasets of ``(image, label)``.
    train_config:
        The settings, a :class:`TrainConfig` (default: its defaults).
    callbacks:
        Objects with optional ``on_batch_end(metrics)`` / ``on_epoch_end(metrics)``, or
        callables ``callback(event, metrics)`` with ``event`` ``"batch"`` or ``"epoch"``.
        The epoch checkpoint is written before the epoch callbacks run.
    config:
        Extra JSON-like information stored in ``config.json`` and checkpoints (task name,
        image encoding, class names...).
    **options:
        Fields of :class:`TrainConfig` (``epochs=3, lr=1e-3, ...``), replacing those of
        ``train_config``; an unknown name raises a ``TypeError``.

    Returns
    -------
    TrainResult

    Raises
    ------
    NonFiniteLossError
        If a training loss is NaN or infinite; the last good checkpoint is kept.
    CheckpointError
        If resuming from a corrupt checkpoint or one written with different settings.

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> from andersonn_lab.deq.classifier import DEQClassifier
    >>> _ = torch.manual_seed(0)
    >>> model = DEQClassifier(3, 2, channels=4, hidden=4, groups=2, pool=1)
    >>> data = TensorDataset(torch.rand(8, 3, 4, 4), torch.tensor([0, 1] * 4))
    >>> settings = TrainConfig(epochs=2, batch_size=4, device="cpu", progress=False)
    >>> result = train(model, data, data, settings)
    >>> [round(m["epoch"]) for m in result.history]
    [1, 2]
    """
    cfg = train_config if train_config is not None else TrainConfig()
    if options:
        cfg = replace(cfg, **options)
    if len(train_set) == 0:
        raise ValueError("train_set is empty")
    device = resolve_device(cfg.device)
    amp = cfg.amp
    if amp and device.type != "cuda":
        warn("amp=True needs CUDA; training in full precision on the CPU")
        amp = False
    run = _start_run(model, train_set, cfg, device, amp, config)
    run.collector = SolverStatsCollector(model)
    try:
        for epoch in range(run.start_epoch + 1, cfg.epochs + 1):
            metrics = _train_epoch(model, train_set, run, epoch, callbacks)
            metrics.update(_validate(model, val_set, run))
            if run.scheduler is not None:
                run.scheduler.step()
            run.history.append(metrics)
            _finish_epoch(model, run, epoch, metrics)
            _dispatch(callbacks, "epoch", metrics)
    finally:
        run.collector.close()
    run.result.history = run.history
    return run.result


def _start_run(
    model: nn.Module,
    train_set: Dataset,
    cfg: TrainConfig,
    device: torch.device,
    amp: bool,
    extra: Mapping[str, Any] | None,
) -> _Run:
    """Optimiser, scheduler and run folder; the state of a resumed run, or a fresh seed."""
    train_config = {
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "weight_decay": cfg.weight_decay,
        "scheduler": cfg.scheduler,
        "grad_clip": cfg.grad_clip,
        "jacobian_penalty": cfg.jacobian_penalty,
        "seed": cfg.seed,
        "amp": amp,
        "device": str(device),
        "n_train": len(train_set),
    }
    model_config = getattr(model, "config", None)
    full_config = {
        "train": train_config,
        "model": dict(model_config) if isinstance(model_config, Mapping) else None,
        **dict(extra or {}),
    }

    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.scheduler == "cosine"
        else None
    )
    scaler = torch.amp.GradScaler("cuda") if amp else None
    run = _Run(cfg, device, amp, optimizer, sched, scaler, full_config)

    if cfg.run_dir is not None:
        run.run_path = Path(cfg.run_dir)
        run.last_path = run.run_path / "checkpoints" / "last.pt"
        run.best_path = run.run_path / "checkpoints" / "best.pt"
        run.result.run_dir, run.result.last_checkpoint = run.run_path, run.last_path
        if run.last_path.exists() and not cfg.resume:
            raise FileExistsError(
                f"{run.run_path} already holds a checkpoint ({run.last_path}); pass "
                "resume=True to continue that run, or choose another run_dir"
            )
    if cfg.resume and run.last_path is not None and run.last_path.exists():
        saved = read_checkpoint(run.last_path)
        _check_resume_config(run.last_path, saved.get("config", {}).get("train"), train_config)
        payload = load_checkpoint(
            run.last_path,
            model,
            optimizer=optimizer,
            scheduler=sched,
            scaler=scaler,
            restore_rng=True,
        )
        run.start_epoch = payload["epoch"]
        run.history = list(payload["history"])
        run.result.resumed_from = run.start_epoch
        if run.best_path is not None and run.best_path.exists():
            run.result.best_checkpoint = run.best_path
    else:
        _seed_everything(cfg.seed)
    if run.run_path is not None:
        run.run_path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(full_config, run.run_path / "config.json")

    history = run.history
    run.best_score = max((_score(m) for m in history), default=-math.inf)
    run.result.best_epoch = next(
        (int(m["epoch"]) for m in history if _score(m) == run.best_score), None
    )
    run.step = sum(
        int(m.get("steps", math.ceil(int(m.get("n_train", len(train_set))) / cfg.batch_size)))
        for m in history
    )
    return run


def _validate(model: nn.Module, val_set: Dataset | None, run: _Run) -> dict[str, Any]:
    """The epoch's validation metrics (NaN without a validation set) and their time."""
    val_start = time.perf_counter()
    if val_set is not None and len(val_set) > 0:
        val = evaluate(
            model, val_set, batch_size=run.config.batch_size, device=run.device, amp=run.amp
        )
        metrics = {
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "val_fwd_iter_mean": val["fwd_iter_mean"],
            "val_fwd_iter_max": val["fwd_iter_max"],
            "val_fwd_unconverged": val["fwd_unconverged"],
        }
    else:
        metrics = {
            "val_loss": math.nan,
            "val_acc": math.nan,
            "val_fwd_iter_mean": math.nan,
            "val_fwd_iter_max": math.nan,
            "val_fwd_unconverged": 0,
        }
    metrics["time_val"] = time.perf_counter() - val_start
    return metrics


def _finish_epoch(model: nn.Module, run: _Run, epoch: int, metrics: dict[str, Any]) -> None:
    """Write the epoch's checkpoints and metrics, and track the best epoch."""
    if run.run_path is not None:
        save_checkpoint(
            run.last_path,
            model=model,
            epoch=epoch,
            history=run.history,
            config=run.full_config,
            optimizer=run.optimizer,
            scheduler=run.scheduler,
            scaler=run.scaler,
        )
        if _score(metrics) > run.best_score:
            save_checkpoint(
                run.best_path,
                model=model,
                epoch=epoch,
                history=run.history,
                config=run.full_config,
            )
            run.result.best_checkpoint = run.best_path
        atomic_write_json({"history": run.history}, run.run_path / "metrics.json")
    if _score(metrics) > run.best_score:
        run.best_score, run.result.best_epoch = _score(metrics), epoch


def _check_resume_config(path: Path, saved: Any, current: Mapping[str, Any]) -> None:
    if not isinstance(saved, Mapping):
        raise CheckpointError(f"{path}: the checkpoint records no training configuration")
    differ = [key for key in _RESUME_KEYS if saved.get(key) != current.get(key)]
    if saved.get("epochs") != current["epochs"] and current["scheduler"] != "none":
        differ.append("epochs")
    if differ:
        details = ", ".join(
            f"{key}: checkpoint {saved.get(key)!r} vs now {current.get(key)!r}" for key in differ
        )
        raise CheckpointError(f"{path}: cannot resume with different training settings ({details})")


def _train_epoch(
    model: nn.Module,
    train_set: Dataset,
    run: _Run,
    epoch: int,
    callbacks: Sequence[Any],
) -> dict[str, Any]:
    """One pass over the training set in this epoch's order; returns the epoch's metrics."""
    from tqdm.auto import tqdm

    cfg = run.config
    model.train()
    acc = _Accumulator()
    layers = [module for module in model.modules() if isinstance(module, DEQLayer)]
    for layer in layers:
        layer.track_jacobian = cfg.jacobian_penalty > 0
    jacobian_sum, jacobian_count = 0.0, 0
    order = epoch_order(len(train_set), cfg.seed, epoch)
    loader = _loader(train_set, cfg.batch_size, order, cfg.num_workers)
    bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=not cfg.progress)
    lr = float(run.optimizer.param_groups[0]["lr"])
    epoch_start = time.perf_counter()
    try:
        for index, batch in enumerate(bar, start=1):
            metrics = _train_batch(model, batch, layers, run, acc, epoch=epoch, index=index, lr=lr)
            if "jacobian" in metrics:
                jacobian_sum += metrics["jacobian"] * metrics["batch_size"]
                jacobian_count += metrics["batch_size"]
            bar.set_postfix(
                loss=f"{metrics['loss']:.3f}",
                fwd=f"{metrics['fwd_iter_mean']:.1f}",
                bwd=f"{metrics['bwd_iter_mean']:.1f}",
                unconv=acc.fwd_unconverged,
            )
            _dispatch(callbacks, "batch", metrics)
    finally:
        bar.close()
        for layer in layers:
            layer.track_jacobian, layer.last_jacobian = False, None
    elapsed = time.perf_counter() - epoch_start
    if _is_data_parallel(model):
        acc.all_reduce()
        jacobian_sum, jacobian_count = _all_reduce_pair(jacobian_sum, jacobian_count)
    metrics = {
        "epoch": epoch,
        "lr": lr,
        "steps": len(loader),
        "n_train": acc.count,
        "train_loss": acc.mean_loss(),
        "train_acc": acc.accuracy(),
        "fwd_iter_mean": acc.fwd_mean(),
        "fwd_iter_max": acc.fwd_max,
        "bwd_iter_mean": acc.bwd_mean(),
        "bwd_iter_max": acc.bwd_max,
        "fwd_unconverged": acc.fwd_unconverged,
        "bwd_unconverged": acc.bwd_unconverged,
        "time_forward_solve": acc.fwd_time,
        "time_backward_solve": acc.bwd_time,
        "time_other": max(elapsed - acc.fwd_time - acc.bwd_time, 0.0),
        "time_epoch": elapsed,
    }
    if jacobian_count:
        metrics["jacobian"] = jacobian_sum / jacobian_count
    return metrics


def _train_batch(
    model: nn.Module,
    batch: Any,
    layers: Sequence[DEQLayer],
    run: _Run,
    acc: _Accumulator,
    *,
    epoch: int,
    index: int,
    lr: float,
) -> dict[str, Any]:
    """One optimiser step on ``batch``; returns the batch's metrics."""
    batch_start = time.perf_counter()
    collector = run.collector
    images, labels = _to_device(batch, run.device)
    collector.reset()
    with torch.autocast(run.device.type, enabled=run.amp):
        logits = model(images)
    loss = nn.functional.cross_entropy(logits.float(), labels)
    jacobians = [layer.last_jacobian for layer in layers if layer.last_jacobian is not None]
    jacobian = torch.stack(jacobians).sum().float() if jacobians else None
    if jacobian is not None:
        loss = loss + run.config.jacobian_penalty * jacobian
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        kept = (
            f"the last good checkpoint is {run.last_path} (epoch {len(run.history)})"
            if run.last_path is not None and run.history
            else "no checkpoint had been written yet"
        )
        raise NonFiniteLossError(
            f"training loss became {loss_value} at epoch {epoch}, batch {index}; "
            f"training stopped ({kept}). Try a lower learning rate, gradient "
            "clipping or tighter solver settings."
        )
    _optimizer_step(model, loss, run)
    run.step += 1
    size = labels.numel()
    correct = int((logits.detach().argmax(1) == labels).sum())
    acc.add(loss_value, correct, size, collector)
    fwd, bwd = collector.forward_steps, collector.backward_steps
    metrics = {
        "epoch": epoch,
        "batch": index,
        "step": run.step,
        "batch_size": size,
        "lr": lr,
        "loss": loss_value,
        "acc": correct / size,
        "fwd_iter_mean": float(fwd.double().mean()) if fwd.numel() else 0.0,
        "fwd_iter_max": int(fwd.max()) if fwd.numel() else 0,
        "fwd_nfe": collector.forward_nfe,
        "fwd_unconverged": collector.forward_unconverged,
        "bwd_iter_mean": float(bwd.double().mean()) if bwd.numel() else 0.0,
        "bwd_iter_max": int(bwd.max()) if bwd.numel() else 0,
        "bwd_nfe": collector.backward_nfe,
        "bwd_unconverged": collector.backward_unconverged,
        "time_forward_solve": collector.forward_time,
        "time_backward_solve": collector.backward_time,
        "time_batch": time.perf_counter() - batch_start,
    }
    if jacobian is not None:
        metrics["jacobian"] = float(jacobian.detach())
    return metrics


def _optimizer_step(model: nn.Module, loss: torch.Tensor, run: _Run) -> None:
    """Backward pass, optional gradient clipping (and loss scaling) and the Adam step."""
    optimizer, scaler, clip = run.optimizer, run.scaler, run.config.grad_clip
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()


def _is_data_parallel(model: nn.Module) -> bool:
    """Whether ``model`` is wrapped for DistributedDataParallel in a live process group."""
    import torch.distributed as dist

    ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    return ddp and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_pair(total: float, count: int) -> tuple[float, int]:
    import torch.distributed as dist

    both = torch.tensor([total, count], dtype=torch.float64)
    dist.all_reduce(both)
    return float(both[0]), int(both[1])


def plot_history(history: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Save a PNG of loss, accuracy and solver iterations per epoch (matplotlib Agg).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> history = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "train_acc": 0.5,
    ...             "val_acc": 0.6, "fwd_iter_mean": 8, "fwd_iter_max": 12,
    ...             "bwd_iter_mean": 6, "bwd_iter_max": 9}]
    >>> plot_history(history, pathlib.Path(tempfile.mkdtemp()) / "h.png").stat().st_size > 0
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [m["epoch"] for m in history]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    panels = (
        ("loss", (("train_loss", "train"), ("val_loss", "val"))),
        ("accuracy", (("train_acc", "train"), ("val_acc", "val"))),
        (
            "solver steps per sample",
            (
                ("fwd_iter_mean", "forward mean"),
                ("fwd_iter_max", "forward max"),
                ("bwd_iter_mean", "backward mean"),
                ("bwd_iter_max", "backward max"),
            ),
        ),
    )
    for axis, (title, series) in zip(fig.subplots(1, 3), panels, strict=True):
        for key, label in series:
            values = [m.get(key, math.nan) for m in history]
            values = [math.nan if v is None else float(v) for v in values]
            if not all(math.isnan(v) for v in values):
                axis.plot(epochs, values, marker="o", label=label)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
