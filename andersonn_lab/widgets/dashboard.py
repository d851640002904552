"""The training dashboard: live loss, accuracy, solver iterations and time split of DEQ runs.

All logic lives in :class:`~andersonn_lab.widgets.dashboard_controller.DashboardController`;
this module builds the buttons and four ``go.FigureWidget`` panels and copies the
controller's plot data into them (inside ``batch_update``, at most about 10 times a second).

Examples
--------
>>> import torch
>>> from torch.utils.data import TensorDataset
>>> data = TensorDataset(torch.rand(8, 3, 6, 6), torch.tensor([0, 1] * 4))
>>> tiny = {"channels": 4, "hidden": 4, "groups": 2, "pool": 1}
>>> board = TrainingDashboard.compare(
...     {"anderson": {"model": tiny}, "forward": {"model": {**tiny,
...      "forward_solver": {"method": "forward", "max_iter": 10}}}},
...     data, epochs=1, batch_size=4, threaded=False)
>>> _ = board.run()
>>> [t.name for t in board.loss_fig.data][:2]
['anderson', 'forward']
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go
from torch import nn
from torch.utils.data import Dataset

from ._throttle import Throttle
from .dashboard_controller import DashboardController, RunRecord, TraceData


def wrap() -> w.Layout:
    """Layout of a row of panels that wraps onto the next line where the output is narrow."""
    return w.Layout(flex_flow="row wrap", align_items="flex-start")


__all__ = ["TrainingDashboard"]

LEVEL_STYLE = {
    "info": ("#2e7d32", "✓"),
    "running": ("#1565c0", "…"),
    "warning": ("#e65100", "⚠"),
    "error": ("#c62828", "✗"),
}

PANELS = {
    "loss": ("loss", "cross-entropy", "linear"),
    "accuracy": ("accuracy", "accuracy", "linear"),
    "iterations": (
        "solver iterations per sample (solid: forward, dash: backward)",
        "steps",
        "linear",
    ),
    "time": ("where the time goes", "seconds", "linear"),
}
"""Title, y-axis label and y-axis type of each panel."""

PER_BATCH_PANELS = {"loss", "accuracy"}
"""Panels of per-batch lines, with a dot per epoch where there is a validation set."""


def _plain(values: Sequence[Any]) -> list[Any]:
    return [None if isinstance(v, float) and not math.isfinite(v) else v for v in values]


def sync_panel(fig: go.FigureWidget, traces: Sequence[TraceData]) -> None:
    """Make ``fig.data`` show ``traces`` (one message to the browser).

    Examples
    --------
    >>> fig = go.FigureWidget()
    >>> sync_panel(fig, [TraceData("a", (1, 2), (0.5, 0.25), "#000000")])
    >>> fig.data[0].y
    (0.5, 0.25)
    """
    with fig.batch_update():
        if len(fig.data) != len(traces):
            fig.data = ()
            fig.add_traces([go.Bar() if t.kind == "bar" else go.Scatter() for t in traces])
        for trace, drawn in zip(traces, fig.data, strict=True):
            update: dict[str, Any] = {
                "name": trace.name,
                "x": list(trace.x),
                "y": _plain(trace.y),
                "marker": {"color": trace.color},
                "legendgroup": trace.group or None,
            }
            if trace.kind != "bar":
                update["mode"] = "markers" if trace.kind == "markers" else "lines"
                update["line"] = {"color": trace.color, "dash": trace.dash, "width": 2}
            drawn.update(update)


def step_dtick(fig: go.FigureWidget, few: int = 10) -> int | None:
    """Tick spacing of a step axis: 1 while it shows at most ``few`` steps, else plotly's own.

    Plotly's automatic ticks put a short run's steps at 0.5, 1.5, 2.5...; from about ten
    steps on they are whole numbers by themselves.

    Examples
    --------
    >>> step_dtick(go.Figure(go.Scatter(x=[1, 2, 3], y=[0, 1, 0]))), step_dtick(go.Figure())
    (1, 1)
    >>> step_dtick(go.Figure(go.Scatter(x=list(range(50)), y=list(range(50))))) is None
    True
    """
    largest = max((max(t.x) for t in fig.data if t.x is not None and len(t.x)), default=0)
    return 1 if largest <= few else None


class TrainingDashboard:
    """Watch DEQ trainings live, stop them cleanly, and compare solvers side by side.

    Panels: loss and accuracy per batch (validation per epoch as dots), forward and backward
    solver iterations per batch, and a stacked bar of the time spent in the forward solve,
    the backward solve and everything else. One colour per run. Buttons: Run and Stop (the
    run ends at the next batch boundary; with a ``run_dir`` the weights are saved to
    ``checkpoints/stopped.pt``, and ``checkpoints/last.pt`` of the last full epoch stays).

    Parameters
    ----------
    controller:
        The logic (see :meth:`compare` and :meth:`single` to build one).
    threaded:
        Train in a worker thread so the kernel stays responsive; False trains in the caller.
    interval:
        Smallest time between redraws in seconds (0.1: about 10 Hz).

    Attributes
    ----------
    loss_fig, accuracy_fig, iterations_fig, time_fig:
        The panels (``go.FigureWidget``).
    run_button, stop_button:
        The buttons.
    status, table:
        ``HTML`` status line and per-run summary table.
    widget:
        The whole dashboard, to display.

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.rand(8, 3, 6, 6), torch.tensor([0, 1] * 4))
    >>> board = TrainingDashboard.single({"channels": 4, "hidden": 4, "groups": 2}, data,
    ...                                  epochs=1, batch_size=4, threaded=False)
    >>> board.run_button.click()
    >>> len(board.loss_fig.data[0].y)
    2
    """

    def __init__(
        self, controller: DashboardController, *, threaded: bool = True, interval: float = 0.1
    ) -> None:
        self.controller = controller
        self.threaded = threaded
        self._throttle = Throttle(interval)
        self._draw_lock = threading.RLock()
        self.run_button = w.Button(description="Run", icon="play", button_style="primary")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger")
        self.run_button.on_click(lambda _: self.run(block=not self.threaded))
        self.stop_button.on_click(lambda _: self.stop())
        self.status = w.HTML(layout=w.Layout(width="auto"))
        self.table = w.HTML()
        self.figs: dict[str, go.FigureWidget] = {}
        for name, (title, ylabel, ytype) in PANELS.items():
            if name in PER_BATCH_PANELS:
                validated = self.controller.validated
                title += " (lines: batches, dots: validation)" if validated else " per batch"
            layout: dict[str, Any] = {
                "height": 300,
                "width": 520,
                "template": "plotly_white",
                "margin": {"l": 55, "r": 15, "t": 40, "b": 40},
                "title": {"text": title, "font": {"size": 13}},
                "xaxis": {"title": {"text": "run" if name == "time" else "step"}},
                "yaxis": {"title": {"text": ylabel}, "type": ytype},
            }
            if name == "time":
                layout["barmode"] = "stack"
            self.figs[name] = go.FigureWidget(layout=layout)
        self.loss_fig = self.figs["loss"]
        self.accuracy_fig = self.figs["accuracy"]
        self.iterations_fig = self.figs["iterations"]
        self.time_fig = self.figs["time"]
        self.widget = w.VBox(
            [
                w.HBox([self.run_button, self.stop_button]),
                self.status,
                w.HBox([self.loss_fig, self.accuracy_fig], layout=wrap()),
                w.HBox([self.iterations_fig, self.time_fig], layout=wrap()),
                self.table,
            ]
        )
        self.controller.add_listener(self._on_event)
        self.redraw()

    # ------------------------------------------------------------------ builders
    @classmethod
    def compare(
        cls,
        runs: Mapping[str, Any],
        train_set: Dataset,
        val_set: Dataset | None = None,
        *,
        threaded: bool = True,
        interval: float = 0.1,
        **common: Any,
    ) -> TrainingDashboard:
        """A dashboard training several named configurations one after the other.

        Parameters
        ----------
        runs:
            Name → configuration, e.g. ``{"anderson": cfg_a, "forward": cfg_f}`` where a
            configuration is ``{"model": module_or_settings, "epochs": ..., ...}`` (see
            :class:`DashboardController`).
        train_set, val_set:
            The data, shared by every run.
        threaded, interval:
            See the class.
        **common:
            Training settings shared by every run (``epochs``, ``batch_size``, ``lr``...).
        """
        controller = DashboardController(runs, train_set, val_set, **common)
        return cls(controller, threaded=threaded, interval=interval)

    @classmethod
    def single(
        cls,
        model: nn.Module | Mapping[str, Any],
        train_set: Dataset,
        val_set: Dataset | None = None,
        *,
        name: str = "run",
        threaded: bool = True,
        interval: float = 0.1,
        **train_kwargs: Any,
    ) -> TrainingDashboard:
        """A dashboard for one model (a module or DEQClassifier settings)."""
        runs = {name: {"model": model}}
        controller = DashboardController(runs, train_set, val_set, **train_kwargs)
        return cls(controller, threaded=threaded, interval=interval)

    # ------------------------------------------------------------------ actions
    def run(self, block: bool = True) -> dict[str, RunRecord]:
        """Start training (``block=False``: in a worker thread); returns the records."""
        self._throttle.reset()
        return self.controller.run(block=block)

    def stop(self) -> None:
        """End the current run at the next batch boundary."""
        self.controller.stop()
        self.draw_status()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread (see :meth:`DashboardController.join`)."""
        return self.controller.join(timeout)

    @property
    def records(self) -> dict[str, RunRecord]:
        """Run name → :class:`RunRecord`."""
        return self.controller.records

    # ------------------------------------------------------------------ drawing
    def _on_event(self, event: str) -> None:
        # A figure that fails to draw raises on to the controller, which reports it in the
        # status (and sends "status" to show it); the status line and buttons are drawn
        # whatever happens to the figures.
        try:
            if event in ("batch", "epoch"):
                if self._throttle.ready():
                    self.redraw()
            else:  # start, run, done, status: always drawn
                self.redraw()
        finally:
            self.draw_status()
            self.run_button.disabled = self.controller.current is not None

    def redraw(self) -> None:
        """Draw every panel, the status line and the table from the controller."""
        with self._draw_lock:
            for name, traces in self.controller.panels().items():
                sync_panel(self.figs[name], traces)
                if name != "time":  # the others count steps: whole numbers on the axis
                    dtick = step_dtick(self.figs[name])
                    if self.figs[name].layout.xaxis.dtick != dtick:
                        self.figs[name].layout.xaxis.dtick = dtick
            self.draw_status()
            self.table.value = self._table_html()

    def draw_status(self) -> None:
        """Show the controller's status."""
        status = self.controller.status
        color, symbol = LEVEL_STYLE.get(status.level, ("#333333", ""))
        self.status.value = (
            f'<span style="color:{color}">{symbol} {html.escape(status.text)}</span>'
        )

    def _table_html(self) -> str:
        rows = self.controller.summary_rows()
        if not rows:
            return ""
        heads = (
            ("run", "run", "{}"),
            ("state", "state", "{}"),
            ("batches", "batches", "{}"),
            ("loss", "last loss", "{:.3f}"),
            ("val_acc", "val acc", "{:.3f}"),
            ("fwd_iter", "mean fwd iter", "{:.1f}"),
            ("bwd_iter", "mean bwd iter", "{:.1f}"),
            ("time_forward", "fwd solve s", "{:.2f}"),
            ("time_backward", "bwd solve s", "{:.2f}"),
            ("time_other", "other s", "{:.2f}"),
        )
        if not self.controller.validated:  # a column of dashes says nothing
            heads = tuple(h for h in heads if h[0] != "val_acc")
        head = "".join(f"<th style='padding:2px 8px'>{label}</th>" for _, label, _ in heads)
        body = ""
        for row in rows:
            cells = ""
            for key, _, fmt in heads:
                value = row[key]
                text = "–" if isinstance(value, float) and math.isnan(value) else fmt.format(value)
                cells += f"<td style='padding:2px 8px'>{html.escape(str(text))}</td>"
            body += f"<tr>{cells}</tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def display(self) -> None:
        """Display the dashboard in the notebook."""
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)
