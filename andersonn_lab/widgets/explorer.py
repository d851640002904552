"""The convergence explorer widget: ipywidgets controls and two plotly figures.

All logic lives in :class:`~andersonn_lab.widgets.explorer_controller.ExplorerController`;
this module only builds the controls, forwards their values to the controller and copies
the controller's plot data into ``go.FigureWidget`` figures inside ``batch_update``.

Examples
--------
>>> from andersonn_lab.widgets import ConvergenceExplorer
>>> explorer = ConvergenceExplorer(threaded=False, dim=20)
>>> explorer.m.value = 3  # re-solves and redraws
>>> explorer.fig.data[-1].name
'anderson m=3 β=1 λ=0.0001'
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from .explorer_controller import (
    METHODS,
    PROBLEM_SPECS,
    SPECTRA,
    ExplorerController,
    ExplorerSettings,
    PlotTrace,
)
from .explorer_spectrum import SpectrumPanel


def wrap() -> w.Layout:
    """Layout of a row of panels that wraps onto the next line where the output is narrow."""
    return w.Layout(flex_flow="row wrap", align_items="flex-start")


LEVEL_STYLE = {
    "info": ("#2e7d32", "✓"),
    "running": ("#1565c0", "…"),
    "warning": ("#e65100", "⚠"),
    "error": ("#c62828", "✗"),
}
"""Colour and symbol of each status level."""

FIRST_RUN_WAIT = 0.5
"""Seconds a threaded explorer's constructor waits for its first solve; a longer solve goes
on in the worker thread after the explorer is displayed (drawn live, and Stop ends it)."""

SLIDER_STYLE = {"description_width": "90px"}
SLIDER_LAYOUT = w.Layout(width="330px")


def slider_range(value: Any, low: float, high: float, *, log: bool = False) -> dict[str, float]:
    """``min`` and ``max`` of a slider, widened to hold ``value``.

    A slider shows a value outside its range at the nearest end (a tolerance of 1e-14 as
    1e-12), so a setting given in code would be shown wrong. ``log``: ``low`` and ``high``
    are powers of ten (a ``FloatLogSlider``). Values that are not finite numbers (or not
    positive, for ``log``) leave the range as it is; the explorer's status reports them.

    Examples
    --------
    >>> slider_range(1e-14, -12, -1, log=True)
    {'min': -14, 'max': -1}
    >>> slider_range(5000, 1, 1000), slider_range(0.5, 0.05, 1.5)
    ({'min': 1, 'max': 5000}, {'min': 0.05, 'max': 1.5})
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return {"min": low, "max": high}
    if log:
        if value <= 0:
            return {"min": low, "max": high}
        power = math.log10(value)
        return {"min": min(low, math.floor(power)), "max": max(high, math.ceil(power))}
    return {"min": min(low, value), "max": max(high, value)}


def sync_traces(fig: go.FigureWidget, traces: Sequence[PlotTrace], drawn: list) -> list:
    """Make ``fig.data`` show ``traces``; returns what is now drawn (pass it back next time).

    Traces are added or removed to match the count; then, in one ``batch_update`` (one
    message to the browser), each trace whose data key differs from ``drawn`` is rewritten,
    and each whose style alone differs gets only its style updated.

    Examples
    --------
    >>> from andersonn_lab.widgets.explorer_controller import PlotTrace
    >>> fig = go.FigureWidget()
    >>> t = PlotTrace("a", (0, 1), (1.0, 0.5), "current", "anderson", "#1f77b4", key=(1,))
    >>> drawn = sync_traces(fig, [t], [])
    >>> fig.data[0].y
    (1.0, 0.5)
    """
    drawn = list(drawn)[: len(traces)]
    if len(fig.data) > len(traces):
        fig.data = fig.data[: len(traces)]
    if len(fig.data) < len(traces):
        fig.add_traces([go.Scatter() for _ in range(len(traces) - len(fig.data))])
    drawn += [(None, {})] * (len(traces) - len(drawn))
    now = []
    with fig.batch_update():
        for trace, scatter, (key, old) in zip(traces, fig.data, drawn, strict=True):
            style = _style(trace)
            changed = {name: value for name, value in style.items() if old.get(name) != value}
            if key is None or key != trace.key:
                changed.update(x=trace.x, y=trace.y)
            if changed:
                scatter.update(changed)
            now.append((trace.key, style))
    return now


def _style(trace: PlotTrace) -> dict[str, Any]:
    return {
        "name": trace.name,
        "mode": trace.mode,
        "opacity": trace.opacity,
        "showlegend": trace.showlegend,
        "yaxis": trace.yaxis,
        "line": {"color": trace.color, "dash": trace.dash, "width": trace.width},
        "marker": {"size": trace.size, "symbol": trace.symbol},
        "meta": trace.role,
    }


class ConvergenceExplorer:
    """See a fixed-point solve converge, and what Anderson's window, β and λ do to it.

    Controls: solver (forward / Anderson), window ``m`` (0–50), mixing β (0.05–2), ridge λ
    (log slider from 1e-10 to 1; the "λ = 0" checkbox turns the ridge off), tolerance (log),
    max iterations, compare mode (forward and Anderson overlaid), and the problem with its
    own knobs (radius / scale, spectrum, dimension). Buttons: Run, Stop, Sweep m (the
    crossover panel: wall time and nfe against ``m``) and Clear history.

    Every change re-solves (in a worker thread when ``threaded``) and redraws live, at most
    about 10 times a second; previous runs stay as faded lines (the last 8). Warnings and
    errors show in the status line; nothing raises into the kernel.

    Parameters
    ----------
    controller:
        The logic; by default a new :class:`ExplorerController` built from ``settings``.
    threaded:
        Solve in a worker thread (the kernel stays responsive; Stop works). False solves in
        the observer itself, which is deterministic (tests, notebook exports).
    auto_run:
        Re-solve on every control change, and solve once now. Unthreaded, that solve ends
        before the constructor returns; threaded, the constructor waits for it at most
        :data:`FIRST_RUN_WAIT` seconds (a short solve's curve is there when the explorer is
        displayed; a long one goes on live in the worker, and Stop ends it).
    spectrum_panel:
        Show the eigenvalues of the Jacobian at the fixed point
        (:class:`~andersonn_lab.widgets.explorer_spectrum.SpectrumPanel`) beside the residual
        panel, and the residual line ``ρ(J)`` predicts for forward iteration on it.
    **settings:
        Fields of :class:`ExplorerSettings` (``m=3``, ``problem="rotation"``, ...).

    Attributes
    ----------
    controls:
        The input widgets by setting name.
    fig, crossover_fig:
        The residual panel and the crossover panel (``go.FigureWidget``).
    eigen:
        The :class:`~andersonn_lab.widgets.explorer_spectrum.SpectrumPanel` (None without).
    status:
        ``HTML`` status line.
    widget:
        The whole explorer, to display.

    Examples
    --------
    >>> explorer = ConvergenceExplorer(threaded=False, problem="rotation", dim=4)
    >>> explorer.compare.value = True
    >>> [trace.name for trace in explorer.fig.data if trace.meta == "current"]
    ['forward β=1', 'anderson m=5 β=1 λ=0.0001']
    """

    def __init__(
        self,
        controller: ExplorerController | None = None,
        *,
        threaded: bool = True,
        auto_run: bool = True,
        spectrum_panel: bool = True,
        **settings: Any,
    ) -> None:
        self.controller = controller or ExplorerController(ExplorerSettings(**settings))
        if controller is not None and settings:
            for name, value in settings.items():
                setattr(controller.settings, name, value)
        self.threaded = threaded
        self.auto_run = auto_run
        self._drawn: list = []
        self._drawn_crossover: list = []
        self._drawn_tol: float | None = None
        self._drawn_shapes: list | None = None
        self.eigen: SpectrumPanel | None = None
        self._muted = False
        self._draw_lock = threading.RLock()  # the worker thread draws too
        self._build_controls()
        self._build_figures()
        if spectrum_panel:
            self.eigen = SpectrumPanel(self)
        self._build_layout()
        self.controller.add_listener(self._on_event)
        self._update_enabled()
        if auto_run:
            # Threaded, the first solve runs in the worker too: a long one (d = 2000, 1000
            # steps) in the constructor would hold the cell, so the page would show nothing
            # of it and a Stop click would wait in the kernel's queue until it ended. A
            # short one is waited for, so that its curve is there when the explorer shows.
            self.controller.run(block=not threaded)
            if threaded:
                self.controller.join(FIRST_RUN_WAIT)
        self.redraw()

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        s = self.controller.settings
        common = {"style": SLIDER_STYLE, "layout": SLIDER_LAYOUT}
        self.method = w.ToggleButtons(options=list(METHODS), value=s.method, description="solver")
        self.m = w.IntSlider(
            value=s.m, **slider_range(s.m, 0, 50), description="window m", **common
        )
        self.beta = w.FloatSlider(
            value=s.beta,
            **slider_range(s.beta, 0.05, 2.0),
            step=0.05,
            description="mixing β",
            **common,
        )
        self.lam = w.FloatLogSlider(
            value=s.lam if s.lam > 0 else 1e-4,
            base=10,
            **slider_range(s.lam, -10, 0, log=True),
            step=0.5,
            description="ridge λ",
            readout_format=".0e",
            **common,
        )
        self.no_ridge = w.Checkbox(value=s.lam == 0, description="λ = 0 (no ridge)", indent=False)
        self.tol = w.FloatLogSlider(
            value=s.tol,
            base=10,
            **slider_range(s.tol, -12, -1, log=True),
            step=1,
            description="tolerance",
            readout_format=".0e",
            **common,
        )
        self.max_iter = w.IntSlider(
            value=s.max_iter,
            **slider_range(s.max_iter, 1, 1000),
            description="max iter",
            **common,
        )
        self.compare = w.Checkbox(
            value=s.compare,
            description="compare forward vs Anderson",
            style={"description_width": "initial"},
        )
        self.problem = w.Dropdown(
            options=self.controller.problem_names, value=s.problem, description="problem"
        )
        self.radius = w.FloatSlider(
            value=s.radius,
            **slider_range(s.radius, 0.05, 1.5),
            step=0.01,
            readout_format=".3g",  # 0.999, not "1.00", where forward iteration need not converge
            description="radius ρ",
            continuous_update=False,
            **common,
        )
        self.spectrum = w.Dropdown(options=list(SPECTRA), value=s.spectrum, description="spectrum")
        self.dim = w.IntSlider(
            value=s.dim,
            **slider_range(s.dim, 2, 2000),
            step=2,
            description="dimension",
            continuous_update=False,
            **common,
        )
        self.controls: dict[str, w.ValueWidget] = {
            "method": self.method,
            "m": self.m,
            "beta": self.beta,
            "lam": self.lam,
            "no_ridge": self.no_ridge,
            "tol": self.tol,
            "max_iter": self.max_iter,
            "compare": self.compare,
            "problem": self.problem,
            "radius": self.radius,
            "spectrum": self.spectrum,
            "dim": self.dim,
        }
        for name, control in self.controls.items():
            control.observe(lambda change, name=name: self._on_control(name, change), "value")
        self.run_button = w.Button(description="Run", icon="play", button_style="primary")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger")
        self.sweep_button = w.Button(description="Sweep m", icon="line-chart")
        self.clear_button = w.Button(description="Clear history", icon="eraser")
        self.run_button.on_click(lambda _: self.run(block=not self.threaded))
        self.stop_button.on_click(lambda _: self.controller.stop())
        self.sweep_button.on_click(lambda _: self.controller.sweep(block=not self.threaded))
        self.clear_button.on_click(lambda _: self._clear())
        self.status = w.HTML(layout=w.Layout(width="auto"))

    def _build_figures(self) -> None:
        margin = {"l": 60, "r": 20, "t": 40, "b": 45}
        self.fig = go.FigureWidget(
            layout={
                "height": 380,
                "width": 620,
                "margin": margin,
                "template": "plotly_white",
                "xaxis": {"title": {"text": "iteration"}},
                "yaxis": {
                    "title": {"text": "relative residual ‖f(z) − z‖ / ‖f(z)‖"},
                    "type": "log",
                    "exponentformat": "power",
                },
                "legend": {"x": 1, "xanchor": "right", "y": 1, "bgcolor": "rgba(255,255,255,0.7)"},
            }
        )
        self.crossover_fig = go.FigureWidget(
            layout={
                "height": 380,
                "width": 480,
                "margin": {**margin, "r": 60},
                "template": "plotly_white",
                "title": {"text": "crossover: cost against window m (press Sweep m)"},
                "xaxis": {"title": {"text": "window m"}, "dtick": 1},
                "yaxis": {"title": {"text": "wall time (ms)"}, "rangemode": "tozero"},
                "yaxis2": {
                    "title": {"text": "nfe"},
                    "overlaying": "y",
                    "side": "right",
                    "rangemode": "tozero",
                    "showgrid": False,
                },
                "legend": {"x": 0.5, "xanchor": "center", "y": 1, "orientation": "h"},
            }
        )

    def _build_layout(self) -> None:
        solver_box = w.VBox(
            [
                self.method,
                self.m,
                self.beta,
                w.HBox([self.lam, self.no_ridge]),
                self.tol,
                self.max_iter,
                self.compare,
            ]
        )
        problem_box = w.VBox([self.problem, self.radius, self.spectrum, self.dim])
        buttons = w.HBox([self.run_button, self.stop_button, self.sweep_button, self.clear_button])
        self.widget = w.VBox(
            [
                w.HBox([solver_box, problem_box], layout=wrap()),
                buttons,
                self.status,
                w.HBox([self.fig, self.crossover_fig], layout=wrap()),
            ]
        )
        if self.eigen is not None:
            self.widget.children = (
                *self.widget.children[:-1],
                w.HBox([self.fig, self.eigen.widget], layout=wrap()),
                self.crossover_fig,
            )

    # ------------------------------------------------------------------ events
    def _on_control(self, name: str, change: dict) -> None:
        if self._muted:
            return
        s, value = self.controller.settings, change["new"]
        if name in ("lam", "no_ridge"):
            s.lam = 0.0 if self.no_ridge.value else float(self.lam.value)
        else:
            setattr(s, name, value)
        self._update_enabled()
        if self.auto_run:
            self.run(block=not self.threaded)

    def _update_enabled(self) -> None:
        s = self.controller.settings
        anderson = s.compare or s.method == "anderson"
        self.m.disabled = not anderson
        self.no_ridge.disabled = not anderson
        self.lam.disabled = not anderson or self.no_ridge.value
        self.method.disabled = s.compare
        spec = PROBLEM_SPECS.get(s.problem)
        uses = spec.uses if spec is not None else ()
        self.radius.disabled = "radius" not in uses
        self.spectrum.disabled = "spectrum" not in uses
        self.dim.disabled = "dim" not in uses
        if spec is not None:
            self.radius.description = spec.radius_label

    def _on_event(self, event: str) -> None:
        # A figure that fails to draw raises on to the controller, which reports it in the
        # status; the status line is drawn whatever happens to the figures.
        try:
            if event == "sweep":
                self.draw_crossover()
            elif event != "start":  # the first "progress" follows at once; draw there
                self.draw_residuals()
        finally:
            self.draw_status()

    def _clear(self) -> None:
        self.controller.clear_history()
        self.redraw()

    # ------------------------------------------------------------------ public
    def run(self, block: bool = True) -> list:
        """Solve with the current settings and draw (see :meth:`ExplorerController.run`)."""
        return self.controller.run(block=block)

    def set_problem(self, problem: Any, label: str | None = None) -> None:
        """Explore a problem with ``f`` and ``z0`` (a trained DEQ, say); then run it."""
        self.controller.set_problem(problem, label)
        self._muted = True
        try:
            self.problem.options = self.controller.problem_names
            self.problem.value = "custom"
        finally:
            self._muted = False
        self._update_enabled()
        if self.auto_run:
            self.run(block=not self.threaded)
        else:
            self.redraw()

    def use_deq(self, model: Any, dataset: Any, item: int | str, *, device: Any = "auto") -> None:
        """Explore the forward solve of a trained DEQ classifier on one structure.

        Parameters
        ----------
        model:
            A :class:`~andersonn_lab.deq.DEQClassifier`.
        dataset:
            A task dataset (:func:`~andersonn_lab.datasets.load_task`) or any dataset of
            ``(image, label)`` pairs.
        item:
            Index into the dataset, or a structure id (when the dataset has ``id_to_index``).
        device:
            ``"auto"`` solves on CUDA when available.
        """
        index = dataset.id_to_index[item] if isinstance(item, str) else int(item)
        image, _ = dataset[index]
        ids = getattr(dataset, "ids", None)
        label = f"DEQ on {ids[index] if ids is not None else f'item {index}'}"
        problem = model.fixed_point_problem(image[None], device=device, name=label)
        self.set_problem(problem, label)

    def redraw(self) -> None:
        """Draw everything from the controller's current state."""
        self.draw_residuals()
        self.draw_crossover()
        self.draw_spectrum()
        self.draw_status()

    def draw_residuals(self) -> None:
        """Copy the residual plot data into :attr:`fig`."""
        with self._draw_lock:
            self._draw_residuals()

    def _draw_residuals(self) -> None:
        data = self.controller.plot_data()
        self._drawn = sync_traces(self.fig, data.traces, self._drawn)
        shapes = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": data.tol,
                "y1": data.tol,
                "line": {"color": "#888888", "dash": "dash", "width": 1},
            }
        ]
        if self.eigen is not None:
            shapes += self.eigen.overlay_shapes(data)
        if shapes != self._drawn_shapes or self.fig.layout.title.text != data.title:
            with self.fig.batch_update():
                self.fig.layout.title.text = data.title
                self.fig.layout.shapes = shapes
            self._drawn_tol, self._drawn_shapes = data.tol, shapes

    def draw_crossover(self) -> None:
        """Copy the sweep's plot data into :attr:`crossover_fig`."""
        traces = self.controller.crossover_data()
        title = "crossover: cost against window m"
        if not any(trace.x for trace in traces):
            title += " (press Sweep m)"
        with self._draw_lock:
            self._drawn_crossover = sync_traces(self.crossover_fig, traces, self._drawn_crossover)
            self.crossover_fig.layout.title.text = title

    def draw_spectrum(self) -> None:
        """Redraw the spectrum panel (if any) from its controller."""
        if self.eigen is not None:
            self.eigen.draw()

    def draw_status(self) -> None:
        """Show the controller's status in :attr:`status`."""
        status = self.controller.status
        color, symbol = LEVEL_STYLE.get(status.level, ("#333333", ""))
        text = html.escape(status.text)
        self.status.value = f'<span style="color:{color}">{symbol} {text}</span>'

    def display(self) -> None:
        """Display the explorer in the notebook."""
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        return self.widget._repr_mimebundle_(**kwargs)
