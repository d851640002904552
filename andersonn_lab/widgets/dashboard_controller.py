"""Logic of the training dashboard: run one or more DEQ trainings and record their metrics.

No ipywidgets here: :class:`DashboardController` runs :func:`andersonn_lab.deq.train` for
each named run (one after the other, in the caller's thread or a worker thread), keeps every
batch's and epoch's metrics, stops cleanly at a batch boundary on request, and turns the
records into plot data for :mod:`andersonn_lab.widgets.dashboard`.

Stopping: a batch callback raises :class:`TrainingStopped` once :meth:`stop` was called;
``train()`` lets it through, leaving ``checkpoints/last.pt`` of the last completed epoch.
The controller then writes ``checkpoints/stopped.pt`` (the weights after the last completed
batch, loadable with :func:`andersonn_lab.deq.load_checkpoint`) when the run has a
``run_dir``.

Examples
--------
>>> import torch
>>> from torch.utils.data import TensorDataset
>>> data = TensorDataset(torch.rand(8, 3, 6, 6), torch.tensor([0, 1] * 4))
>>> tiny = {"channels": 4, "hidden": 4, "groups": 2, "pool": 1}
>>> ctrl = DashboardController({"a": {"model": tiny}}, data, epochs=1, batch_size=4)
>>> _ = ctrl.run(block=True)
>>> len(ctrl.records["a"].batches), ctrl.status.level
(2, 'info')
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from andersonn_lab.deq import DEQClassifier, save_checkpoint, train

from ._controller import WorkerController

__all__ = [
    "PALETTE",
    "DashboardController",
    "DashboardStatus",
    "RunRecord",
    "TrainingStopped",
    "TraceData",
]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
"""One colour per run, in run order."""

TRAIN_KEYS = {
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "scheduler",
    "grad_clip",
    "amp",
    "device",
    "seed",
    "run_dir",
    "resume",
    "config",
    "num_workers",
}
"""Keyword arguments of :func:`andersonn_lab.deq.train` a run configuration may set."""

Listener = Callable[[str], None]  # the type of Listeners' items, kept for callers


class TrainingStopped(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the dashboard's batch callback to end a run at a batch boundary."""


@dataclass
class DashboardStatus:
    """What the status line says: ``level`` is info, running, warning or error."""

    level: str = "info"
    text: str = "ready"


@dataclass
class RunRecord:
    """Metrics of one named run.

    Attributes
    ----------
    name, color:
        Label and plot colour.
    batches, epochs:
        Metrics dicts as passed to the training callbacks, in order.
    state:
        ``"pending"``, ``"running"``, ``"done"``, ``"stopped"`` or ``"failed"``.
    result:
        The :class:`~andersonn_lab.deq.TrainResult` of a finished run.
    checkpoint:
        Path of the run's latest usable checkpoint (``stopped.pt`` after a stop), or None.
    error:
        Message of a failed run.
    """

    name: str
    color: str
    batches: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    state: str = "pending"
    result: Any = None
    checkpoint: Path | None = None
    error: str = ""

    def series(self, key: str) -> list[float]:
        """Values of a batch metric, NaN where missing."""
        return [float(b.get(key, math.nan)) for b in self.batches]

    def time_split(self) -> dict[str, float]:
        """Seconds spent in forward solves, backward solves and everything else (batches)."""
        fwd = sum(b.get("time_forward_solve", 0.0) for b in self.batches)
        bwd = sum(b.get("time_backward_solve", 0.0) for b in self.batches)
        total = sum(b.get("time_batch", 0.0) for b in self.batches)
        return {"forward": fwd, "backward": bwd, "other": max(total - fwd - bwd, 0.0)}


@dataclass(frozen=True)
class TraceData:
    """One line or bar series of a dashboard panel."""

    name: str
    x: tuple
    y: tuple
    color: str
    kind: str = "line"  # "line", "markers" or "bar"
    dash: str = "solid"
    group: str = ""


@dataclass
class _Run:
    name: str
    model: nn.Module
    kwargs: dict[str, Any]


def _build_model(spec: Any, train_set: Dataset) -> nn.Module:
    if isinstance(spec, nn.Module):
        return spec
    if isinstance(spec, Mapping):
        options = dict(spec)
        if "in_channels" not in options or "num_classes" not in options:
            image, _ = train_set[0]
            options.setdefault("in_channels", int(image.shape[0]))
            names = getattr(train_set, "class_names", None)
            if names is None:
                names = getattr(getattr(train_set, "dataset", None), "class_names", None)
            options.setdefault("num_classes", len(names) if names is not None else 2)
        return DEQClassifier.from_config(options)
    raise ValueError(
        f"'model' must be a torch module or a dict of DEQClassifier settings, got {spec!r}"
    )


class DashboardController(WorkerController):
    """Train one or more configurations and record their metrics for live plots.

    Parameters
    ----------
    runs:
        Run name → configuration: a mapping with ``"model"`` (a module, or a dict of
        :class:`~andersonn_lab.deq.DEQClassifier` settings, ``forward_solver`` included;
        ``in_channels``/``num_classes`` default from the data) and any of :data:`TRAIN_KEYS`.
        A bare module is taken as ``{"model": module}``.
    train_set, val_set:
        Labelled datasets of ``(image, label)``.
    **common:
        Training settings shared by every run (a run's own settings win).

    Attributes
    ----------
    records:
        Run name → :class:`RunRecord`.
    status:
        :class:`DashboardStatus`.

    Notes
    -----
    Listeners (:meth:`add_listener`) get ``"start"``, ``"batch"``, ``"epoch"``, ``"run"`` (a
    run ended), ``"done"`` and ``"status"``; during a threaded run they are called from the
    worker thread. A listener that raises never stops training: the failure is reported in
    :attr:`status`, and the listeners get a ``"status"`` event to show it.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.rand(4, 3, 6, 6), torch.tensor([0, 1, 0, 1]))
    >>> ctrl = DashboardController({"x": {"model": {"channels": 4, "groups": 2}}}, data)
    >>> ctrl.status.text
    'ready: 1 run (x)'
    """

    status_class = DashboardStatus

    def __init__(
        self,
        runs: Mapping[str, Any],
        train_set: Dataset,
        val_set: Dataset | None = None,
        **common: Any,
    ) -> None:
        self.train_set = train_set
        self.val_set = val_set
        self.common = {"epochs": 1, "batch_size": 32, "progress": False, **common}
        super().__init__()
        self.records: dict[str, RunRecord] = {}
        self._runs: list[_Run] = []
        self._lock = threading.RLock()
        self.current: str | None = None
        try:
            self._prepare(runs)
        except (ValueError, TypeError, IndexError) as err:
            self._set_status("error", f"invalid run configuration: {err}")
        else:
            names = ", ".join(self.records)
            plural = "s" if len(self.records) != 1 else ""
            self._set_status("info", f"ready: {len(self.records)} run{plural} ({names})")

    # ------------------------------------------------------------------ setup
    def _prepare(self, runs: Mapping[str, Any]) -> None:
        if not isinstance(runs, Mapping) or not runs:
            raise ValueError("runs must be a non-empty dict of name -> configuration")
        if len(self.train_set) == 0:
            raise ValueError("train_set is empty")
        unknown = sorted(set(self.common) - TRAIN_KEYS - {"progress"})
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        prepared = []
        for index, (name, spec) in enumerate(runs.items()):
            if isinstance(spec, nn.Module):
                spec = {"model": spec}
            if not isinstance(spec, Mapping) or "model" not in spec:
                raise ValueError(f"run {name!r}: configuration needs a 'model'")
            extra = sorted(set(spec) - TRAIN_KEYS - {"model"})
            if extra:
                raise ValueError(f"run {name!r}: unknown settings {', '.join(extra)}")
            kwargs = {**self.common, **{k: v for k, v in spec.items() if k != "model"}}
            kwargs["progress"] = False
            model = _build_model(spec["model"], self.train_set)
            prepared.append(_Run(str(name), model, kwargs))
            self.records[str(name)] = RunRecord(str(name), PALETTE[index % len(PALETTE)])
        self._runs = prepared

    @property
    def validated(self) -> bool:
        """Whether the runs are scored on a validation set (a dot per epoch, a "val acc")."""
        return self.val_set is not None

    @property
    def models(self) -> dict[str, nn.Module]:
        """Run name → its model (trained in place)."""
        return {run.name: run.model for run in self._runs}

    # ------------------------------------------------------------------ running
    def stop(self) -> None:
        """Ask the current run to end at the next batch boundary (later runs are skipped)."""
        if self.is_running or self.current is not None:
            self._stop_event.set()
            self._set_status("running", "stopping at the end of this batch…")
            self._emit("status")

    def run(self, block: bool = True) -> dict[str, RunRecord]:
        """Train every pending run, one after the other.

        Parameters
        ----------
        block:
            True: train here and return when done. False: train in a worker thread and
            return at once (use :meth:`join` or the listeners).

        Returns
        -------
        dict
            :attr:`records`.
        """
        if not self._runs:
            self._set_status(
                "error", self._plain_status[1] if self.status.level == "error" else "no runs"
            )
            self._emit("status")
            return self.records
        with self._lock:
            if self.is_running or self.current is not None:
                self._set_status("warning", "a run is already in progress")
                self._emit("status")
                return self.records
            self._stop_event.clear()
            self._listeners.clear_failure()
            pending = [r for r in self._runs if self.records[r.name].state == "pending"]
            if not pending:
                self._set_status(
                    "warning", "every run has finished; build a new dashboard to rerun"
                )
                self._emit("status")
                return self.records
            self.current = pending[0].name  # marks "busy" before the thread starts
            if block:
                self._work(pending)
            else:
                self._start_worker(self._work, pending, name="dashboard-train")
        return self.records

    def _work(self, pending: list[_Run]) -> None:
        self._emit("start")
        try:
            for run in pending:
                if self._stop_event.is_set():
                    break
                self._train_one(run)
        finally:
            self.current = None
            self._finish_status()
            self._emit("done")

    def _train_one(self, run: _Run) -> None:
        record = self.records[run.name]
        record.state, self.current = "running", run.name
        self._set_status("running", f"training {run.name}…")
        self._emit("run")
        stop_event = self._stop_event

        def callback(event: str, metrics: dict[str, Any]) -> None:
            metrics["time"] = time.time()
            if event == "batch":
                record.batches.append(metrics)
                text = (
                    f"{run.name}: epoch {metrics['epoch']} batch {metrics['batch']}, "
                    f"loss {metrics['loss']:.3f}"
                )
                self._set_status("running", text)
            else:
                record.epochs.append(metrics)
            self._emit(event)
            if stop_event.is_set():
                raise TrainingStopped(run.name)

        kwargs = dict(run.kwargs)
        kwargs["callbacks"] = (*tuple(kwargs.get("callbacks", ())), callback)
        try:
            record.result = train(run.model, self.train_set, self.val_set, **kwargs)
        except TrainingStopped:
            record.state = "stopped"
            record.checkpoint = self._save_stopped(run, record)
        except Exception as err:  # reported in the status line, never raised into the kernel
            # NonFiniteLossError among them: train() keeps the last good epoch's checkpoint.
            record.state, record.error = "failed", f"{type(err).__name__}: {err}"
            run_dir = run.kwargs.get("run_dir")
            last = Path(run_dir) / "checkpoints" / "last.pt" if run_dir is not None else None
            if last is not None and last.is_file() and not isinstance(err, FileExistsError):
                record.checkpoint = last
        else:
            record.state = "done"
            record.checkpoint = record.result.last_checkpoint
        self._emit("run")

    def _save_stopped(self, run: _Run, record: RunRecord) -> Path | None:
        run_dir = run.kwargs.get("run_dir")
        if run_dir is None:
            return None
        path = Path(run_dir) / "checkpoints" / "stopped.pt"
        last = record.batches[-1] if record.batches else {}
        epochs_done = max(int(last.get("epoch", 1)) - 1, 0)
        config = {
            "stopped_at": {k: last.get(k) for k in ("epoch", "batch", "step")},
            "train": {k: v for k, v in run.kwargs.items() if k in TRAIN_KEYS and k != "run_dir"},
        }
        save_checkpoint(
            path, model=run.model, epoch=epochs_done, history=record.epochs, config=config
        )
        return path

    def _finish_status(self) -> None:
        states = {name: rec.state for name, rec in self.records.items()}
        failed = [f"{n}: {r.error}" for n, r in self.records.items() if r.state == "failed"]
        stopped = [n for n, s in states.items() if s == "stopped"]
        if failed:
            self._set_status("error", "; ".join(failed))
        elif stopped:
            where = self.records[stopped[0]].batches[-1:] or [{}]
            at = f"epoch {where[0].get('epoch', '?')} batch {where[0].get('batch', '?')}"
            ckpt = self.records[stopped[0]].checkpoint
            saved = f"; checkpoint {ckpt}" if ckpt is not None else ""
            self._set_status("warning", f"stopped {stopped[0]} after {at}{saved}")
        else:
            summary = ", ".join(
                f"{n}: loss {r.batches[-1]['loss']:.3f}" if r.batches else f"{n}: {r.state}"
                for n, r in self.records.items()
            )
            self._set_status("info", f"done ({summary})")

    # ------------------------------------------------------------------ plot data
    def curves(self, key: str, *, max_points: int = 2000) -> list[TraceData]:
        """One line per run of a batch metric against the global step.

        Long histories are thinned by striding to at most ``max_points`` points.
        """
        traces = []
        for record in self.records.values():
            batches = list(record.batches)
            stride = max(1, math.ceil(len(batches) / max_points))
            picked = batches[::stride]
            x = tuple(int(b["step"]) for b in picked)
            y = tuple(float(b.get(key, math.nan)) for b in picked)
            traces.append(TraceData(record.name, x, y, record.color, group=record.name))
        return traces

    def epoch_points(self, key: str) -> list[TraceData]:
        """Per-epoch metric (e.g. ``val_acc``) of each run at the step that ended the epoch."""
        traces = []
        for record in self.records.values():
            ends: dict[int, int] = {}
            for b in record.batches:
                ends[int(b["epoch"])] = int(b["step"])
            points = [
                (ends.get(int(e["epoch"]), 0), float(e.get(key, math.nan))) for e in record.epochs
            ]
            x = tuple(p[0] for p in points)
            y = tuple(p[1] for p in points)
            traces.append(
                TraceData(
                    f"{record.name} ({key})", x, y, record.color, "markers", "dot", record.name
                )
            )
        return traces

    def time_split(self) -> list[TraceData]:
        """Stacked-bar data: seconds in forward solve, backward solve and the rest, per run."""
        names = tuple(self.records)
        splits = [self.records[n].time_split() for n in names]
        colors = {"forward": "#1f77b4", "backward": "#ff7f0e", "other": "#9e9e9e"}
        return [
            TraceData(
                f"{part} solve" if part != "other" else "other",
                names,
                tuple(s[part] for s in splits),
                colors[part],
                "bar",
            )
            for part in ("forward", "backward", "other")
        ]

    def panels(self) -> dict[str, list[TraceData]]:
        """Everything the dashboard draws, by panel: loss, accuracy, iterations, time.

        The loss and accuracy panels have validation points only when there is a
        validation set.
        """
        iterations = []
        for fwd, bwd in zip(
            self.curves("fwd_iter_mean"), self.curves("bwd_iter_mean"), strict=True
        ):
            iterations.append(
                TraceData(f"{fwd.name} forward", fwd.x, fwd.y, fwd.color, group=fwd.name)
            )
            iterations.append(
                TraceData(
                    f"{bwd.name} backward", bwd.x, bwd.y, bwd.color, dash="dash", group=bwd.name
                )
            )
        validated = self.validated  # without validation data, no empty legend rows
        return {
            "loss": self.curves("loss") + (self.epoch_points("val_loss") if validated else []),
            "accuracy": self.curves("acc") + (self.epoch_points("val_acc") if validated else []),
            "iterations": iterations,
            "time": self.time_split(),
        }

    def summary_rows(self) -> list[dict[str, Any]]:
        """One row per run: state, batches, last loss, mean iterations, time split."""
        rows = []
        for record in self.records.values():
            split = record.time_split()
            fwd, bwd = record.series("fwd_iter_mean"), record.series("bwd_iter_mean")
            rows.append(
                {
                    "run": record.name,
                    "state": record.state,
                    "batches": len(record.batches),
                    "loss": record.batches[-1]["loss"] if record.batches else math.nan,
                    "val_acc": record.epochs[-1].get("val_acc", math.nan)
                    if record.epochs
                    else math.nan,
                    "fwd_iter": sum(fwd) / len(fwd) if fwd else math.nan,
                    "bwd_iter": sum(bwd) / len(bwd) if bwd else math.nan,
                    **{f"time_{k}": v for k, v in split.items()},
                }
            )
        return rows
