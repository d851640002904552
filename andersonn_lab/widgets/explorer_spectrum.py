"""The convergence explorer's spectrum panel: ``J = ∂f/∂z`` at the fixed point.

:class:`SpectrumController` follows an :class:`~andersonn_lab.widgets.explorer_controller.
ExplorerController`: whenever the explored problem changes it finds the fixed point and the
leading eigenvalues of the Jacobian there (:func:`~andersonn_lab.solvers.jacobian_spectrum`,
in its own worker thread so the kernel and the solves go on), and turns them into plain
plot data: the eigenvalues in the complex plane with the unit circle and the circle of radius
``ρ(J)``, and, for the residual panel, the line ``r₀ · rate^n`` that ``ρ(J)`` predicts for
forward iteration (``rate = max |1 − β + βλ|``, which is ``ρ(J)`` at ``β = 1``).
:class:`SpectrumPanel` draws that data into a plotly figure beside the explorer's.

Why it matters: forward iteration contracts at ``ρ(J)`` per step whatever the shape of the
spectrum; Anderson, like GMRES, gains a lot when the eigenvalues cluster on a few points or
lie on a segment of the real line, and little when they fill a disk.

Examples
--------
>>> from andersonn_lab.widgets.explorer_controller import ExplorerController, ExplorerSettings
>>> explorer = ExplorerController(ExplorerSettings(problem="linear", dim=40, radius=0.9))
>>> spectrum = SpectrumController(explorer, threaded=False)
>>> _ = explorer.run()
>>> round(spectrum.snapshot.spectral_radius, 6)
0.9
"""

from __future__ import annotations

import html
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..solvers import FixedPointSpectrum, jacobian_spectrum, solve
from .explorer_controller import ExplorerController, PlotData, PlotTrace

__all__ = ["SpectrumController", "SpectrumPanel", "SpectrumSnapshot"]

EIGEN_COLOR = "#6a1b9a"
PREDICTED_COLOR = "#ff7f0e"


@dataclass(frozen=True)
class SpectrumSnapshot:
    """The spectrum of one problem, or why there is none.

    Attributes
    ----------
    key:
        The problem it belongs to (settings' problem key, or the custom problem's id).
    label:
        The problem's title.
    spectrum:
        The result, or None while computing or after a failure.
    error:
        Why there is no spectrum ("" when there is one).
    fixed_point_residual:
        Relative residual of the point the spectrum was computed at.
    seconds:
        Wall time, fixed-point solve included.
    """

    key: Any
    label: str
    spectrum: FixedPointSpectrum | None = None
    error: str = ""
    fixed_point_residual: float = math.nan
    seconds: float = math.nan

    @property
    def spectral_radius(self) -> float:
        """``ρ(J)`` of the first sample (NaN without a spectrum)."""
        if self.spectrum is None:
            return math.nan
        return float(self.spectrum.spectral_radius[0])


class _LatestJobWorker:
    """One daemon thread running submitted jobs; a job submitted while one runs replaces any
    job still waiting (a burst of problem changes costs one computation after the current)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._pending: Callable[[], None] | None = None
        self._alive = False
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending = job
            if self._alive:
                return
            self._alive = True
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._alive = False
                    return
            job()

    @property
    def busy(self) -> bool:
        return self._alive

    def join(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self._alive


class SpectrumController:
    """Keep the Jacobian spectrum of the explorer's problem up to date, as plot data.

    Parameters
    ----------
    explorer:
        The convergence explorer's controller to follow (a listener is added to it).
    k:
        Eigenvalues of largest modulus to compute where the state is too large for a dense
        Jacobian.
    dense_max:
        Up to this state size per sample every eigenvalue is computed (dense Jacobian and
        :func:`torch.linalg.eigvals`).
    threaded:
        Compute in a worker thread (True) or in the listener itself (tests, exports).
    fixed_point_tol:
        Relative tolerance of the Anderson solve that finds ``z*`` when the problem does not
        know it; default ``1e-10`` in float64 and ``1e-5`` otherwise.
    arnoldi_options:
        ``tol``, ``ncv``, ``maxiter`` for :func:`~andersonn_lab.solvers.jacobian_spectrum`
        (default ``maxiter=20`` and ``tol`` ``1e-6`` in float64, ``1e-5`` otherwise: a
        picture in a few seconds; where ARPACK stops early the eigenvalues it found are
        shown, and the status says so).

    Attributes
    ----------
    snapshot:
        The latest :class:`SpectrumSnapshot` (None before the first).
    status:
        One line for people.

    Examples
    --------
    >>> from andersonn_lab.widgets.explorer_controller import ExplorerSettings
    >>> explorer = ExplorerController(ExplorerSettings(problem="rotation", dim=2, radius=0.8))
    >>> spectrum = SpectrumController(explorer, threaded=False)
    >>> _ = explorer.run()
    >>> eigen = spectrum.plane_data()[0]
    >>> [round(abs(complex(x, y)), 6) for x, y in zip(eigen.x, eigen.y)]
    [0.8, 0.8]
    """

    def __init__(
        self,
        explorer: ExplorerController,
        *,
        k: int = 20,
        dense_max: int = 1000,
        threaded: bool = True,
        fixed_point_tol: float | None = None,
        arnoldi_options: dict[str, Any] | None = None,
    ) -> None:
        self.explorer = explorer
        self.k = int(k)
        self.dense_max = int(dense_max)
        self.threaded = threaded
        self.fixed_point_tol = fixed_point_tol
        self.arnoldi_options = {"maxiter": 20, **(arnoldi_options or {})}
        self.snapshot: SpectrumSnapshot | None = None
        self.status = "spectrum: not computed yet"
        self._listeners: list[Callable[[], None]] = []
        self._worker = _LatestJobWorker("andersonn-spectrum")
        self._wanted: Any = None
        self._lock = threading.Lock()
        self._remove = explorer.add_listener(self._on_explorer)

    # ------------------------------------------------------------------ following
    def problem_key(self) -> Any:
        """Identifies the explorer's current problem."""
        settings = self.explorer.settings
        if settings.problem == "custom":
            try:
                return ("custom", id(self.explorer.problem))
            except ValueError:  # "custom" selected before a problem was set
                return ("custom", None)
        return settings.problem_key()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever :attr:`snapshot` or :attr:`status` changes."""
        self._listeners.append(listener)

    def detach(self) -> None:
        """Stop following the explorer."""
        self._remove()

    def _notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception as exc:  # drawing must not break the computation
                self.status = f"spectrum: drawing failed: {exc!r}"

    def _on_explorer(self, event: str) -> None:
        if event in ("start", "finished"):
            self.update(block=not self.threaded)

    def update(self, block: bool = True) -> SpectrumSnapshot | None:
        """Compute the spectrum of the current problem unless it is already there.

        Never raises: a failure lands in :attr:`status` and in the snapshot's ``error``.
        """
        key = self.problem_key()
        with self._lock:
            current = self.snapshot is not None and self.snapshot.key == key
            if current or self._wanted == key:
                return self.snapshot if current else None
            self._wanted = key
        self.status = "spectrum: computing…"
        self._notify()
        if block:
            return self._compute(key)
        self._worker.submit(lambda: self._compute(key))
        return None

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread; True when it is idle."""
        return self._worker.join(timeout)

    def _compute(self, key: Any) -> SpectrumSnapshot | None:
        if key != self.problem_key():  # the problem moved on while this waited
            with self._lock:
                if self._wanted == key:
                    self._wanted = None
            return None
        start = time.perf_counter()
        label = self.explorer.problem_title()
        try:
            problem = self.explorer.problem
            z_star, residual = self._fixed_point(problem)
            d = z_star[0].numel()
            method = "dense" if d <= self.dense_max or self.k >= d - 1 else "arnoldi"
            options = dict(self.arnoldi_options) if method == "arnoldi" else {}
            if method == "arnoldi" and "tol" not in options:
                options["tol"] = 1e-6 if z_star.dtype == torch.float64 else 1e-5
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                spectrum = jacobian_spectrum(problem.f, z_star, k=self.k, method=method, **options)
            snapshot = SpectrumSnapshot(
                key, label, spectrum, "", residual, time.perf_counter() - start
            )
        except Exception as exc:
            snapshot = SpectrumSnapshot(key, label, None, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.snapshot = snapshot
            if self._wanted == key:
                self._wanted = None
        self.status = self.describe()
        self._notify()
        return snapshot

    def _fixed_point(self, problem: Any) -> tuple[torch.Tensor, float]:
        z_star = getattr(problem, "z_star", None)
        if z_star is None:
            dtype = problem.z0.dtype
            tol = self.fixed_point_tol or (1e-10 if dtype == torch.float64 else 1e-5)
            with torch.no_grad():
                result = solve(problem.f, problem.z0, method="anderson", m=5, tol=tol, max_iter=500)
            z_star = result.z
        with torch.no_grad():
            fz = problem.f(z_star)
        diff = torch.linalg.vector_norm((fz - z_star).flatten(1).double(), dim=1)
        residual = diff / (torch.linalg.vector_norm(fz.flatten(1).double(), dim=1) + 1e-5)
        return z_star, float(residual.max())

    # ------------------------------------------------------------------ words
    def current(self) -> SpectrumSnapshot | None:
        """The snapshot if it belongs to the explorer's current problem, else None."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.key != self.problem_key():
            return None
        return snapshot

    def predicted_rate(self) -> float:
        """The rate of (damped) forward iteration the spectrum predicts at the current β."""
        snapshot = self.current()
        if snapshot is None or snapshot.spectrum is None:
            return math.nan
        beta = float(self.explorer.settings.beta)
        return float(snapshot.spectrum.predicted_rate(beta)[0])

    def describe(self) -> str:
        """One line: ρ(J), how it was computed, and what it predicts."""
        snapshot = self.current()
        if snapshot is None:
            return "spectrum: computing…" if self._wanted is not None else "spectrum: —"
        if snapshot.spectrum is None:
            return f"spectrum failed: {snapshot.error}"
        s = snapshot.spectrum
        found = int((~torch.isnan(s.eigenvalues[0].real)).sum())
        how = f"all {s.dim}" if s.method == "dense" else f"{found} leading"
        if s.method == "arnoldi" and found < s.eigenvalues.shape[1]:
            how += f" (ARPACK stopped early; {s.eigenvalues.shape[1]} asked)"
        text = (
            f"ρ(J) = {snapshot.spectral_radius:.4f} ({how} eigenvalues, {s.method}, "
            f"{snapshot.seconds:.2f} s)"
        )
        rate, tol = self.predicted_rate(), float(self.explorer.settings.tol)
        beta = float(self.explorer.settings.beta)
        if rate < 1:
            steps = math.ceil(math.log(tol) / math.log(rate)) if rate > 0 else 1
            text += f"; forward iteration (β = {beta:g}) contracts by {rate:.4f} per step: "
            text += f"about {steps} steps to shrink the residual {1 / tol:.0e}-fold"
        else:
            text += f"; rate {rate:.4f} ≥ 1 at β = {beta:g}: forward iteration need not converge"
        if snapshot.fixed_point_residual > 1e-3:
            text += f" (not at a fixed point: residual {snapshot.fixed_point_residual:.1e})"
        return text

    # ------------------------------------------------------------------ plot data
    def plane_data(self) -> tuple[PlotTrace, ...]:
        """The complex plane: eigenvalues, the unit circle, and the circle of radius ρ(J)."""
        angles = np.linspace(0, 2 * np.pi, 121)
        circle_x, circle_y = tuple(np.cos(angles).tolist()), tuple(np.sin(angles).tolist())
        unit = PlotTrace(
            name="unit circle",
            x=circle_x,
            y=circle_y,
            role="circle",
            method="",
            color="#888888",
            dash="dash",
            width=1,
            mode="lines",
            key=("unit",),
        )
        snapshot = self.current()
        if snapshot is None or snapshot.spectrum is None:
            return (
                PlotTrace("eigenvalues", (), (), "eigenvalues", "", EIGEN_COLOR, mode="markers"),
                unit,
                PlotTrace(
                    "ρ(J)", (), (), "circle", "", EIGEN_COLOR, dash="dot", width=1, mode="lines"
                ),
            )
        values = snapshot.spectrum.eigenvalues.flatten()
        values = values[~torch.isnan(values.real)]
        rho = snapshot.spectral_radius
        key = (snapshot.key, id(snapshot))
        return (
            PlotTrace(
                name=f"eigenvalues of J ({len(values)})",
                x=tuple(values.real.tolist()),
                y=tuple(values.imag.tolist()),
                role="eigenvalues",
                method="",
                color=EIGEN_COLOR,
                mode="markers",
                key=("eig", *key),
            ),
            unit,
            PlotTrace(
                name=f"ρ(J) = {rho:.4f}",
                x=tuple((rho * np.cos(angles)).tolist()),
                y=tuple((rho * np.sin(angles)).tolist()),
                role="circle",
                method="",
                color=EIGEN_COLOR,
                dash="dot",
                width=1,
                mode="lines",
                key=("rho", *key),
            ),
        )

    def rate_trace(self, data: PlotData) -> PlotTrace | None:
        """The residual line ``r₀ · rate^n`` the spectrum predicts for forward iteration.

        It starts at the first residual of the current run and spans as many iterations as
        the longest current run (at least 10; a thinned curve's last iteration counts, not its
        number of points); None without a spectrum or a run.
        """
        rate = self.predicted_rate()
        current = [t for t in data.traces if t.role == "current" and t.y and t.y[0] is not None]
        if not math.isfinite(rate) or not current:
            return None
        r0 = float(current[0].y[0])
        # as many iterations as the longest run (its drawn points may be thinned)
        length = max(10, *(int(t.x[-1]) + 1 if t.x else len(t.y) for t in current))
        beta = float(self.explorer.settings.beta)
        xs = tuple(float(n) for n in range(length))
        with np.errstate(over="ignore", under="ignore"):
            ys = tuple(_finite(r0 * rate**n) for n in range(length))
        return PlotTrace(
            name=f"predicted forward rate {rate:.4f}" + ("" if beta == 1 else f" (β = {beta:g})"),
            x=xs,
            y=ys,
            role="predicted",
            method="forward",
            color=PREDICTED_COLOR,
            dash="dashdot",
            width=1.5,
            mode="lines",
            key=("predicted", rate, r0, length),
        )


def replace_traces(fig: Any, traces: Sequence[PlotTrace], drawn: list) -> list:
    """Draw ``traces`` into ``fig`` (as many traces as before), every property of every
    trace in one update; nothing is sent when the traces' keys are those in ``drawn``.

    Unlike a diff per trace, each update sets the same properties on all traces, so no
    trace's property is left out of a batched restyle. Returns the keys drawn.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> fig = go.FigureWidget()
    >>> t = PlotTrace("a", (0.0,), (1.0,), "eigenvalues", "", "#000000", mode="markers")
    >>> drawn = replace_traces(fig, [t], [])
    >>> fig.data[0].mode, replace_traces(fig, [t], drawn) is drawn
    ('markers', True)
    """
    import plotly.graph_objects as go

    keys = [(trace.key, trace.name, trace.mode) for trace in traces]
    if keys == drawn and len(fig.data) == len(traces):
        return drawn
    scatters = [
        go.Scatter(
            x=trace.x,
            y=trace.y,
            name=trace.name,
            mode=trace.mode,
            opacity=trace.opacity,
            showlegend=trace.showlegend,
            line={"color": trace.color, "dash": trace.dash, "width": trace.width},
            marker={"size": 5, "color": trace.color},
            meta=trace.role,
        )
        for trace in traces
    ]
    with fig.batch_update():
        if len(fig.data) != len(traces):
            fig.data = ()
            fig.add_traces(scatters)
        else:
            for old, new in zip(fig.data, scatters, strict=True):
                old.update(new.to_plotly_json())
    return keys


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


class SpectrumPanel:
    """The spectrum panel of a :class:`~andersonn_lab.widgets.ConvergenceExplorer`.

    Draws the eigenvalues of ``J`` at the fixed point in the complex plane (with the unit
    circle and the circle of radius ``ρ(J)``) and a status line, and lends the explorer the
    predicted forward-iteration line for its residual panel. The explorer builds one itself;
    use ``ConvergenceExplorer(spectrum_panel=False)`` to go without.

    Parameters
    ----------
    explorer:
        The :class:`~andersonn_lab.widgets.ConvergenceExplorer` (its controller is followed;
        its residual panel is redrawn when a spectrum arrives).
    **options:
        Passed to :class:`SpectrumController` (``k``, ``dense_max``, ...).

    Attributes
    ----------
    controller:
        The :class:`SpectrumController`.
    fig:
        The complex-plane figure (``go.FigureWidget``).
    status:
        ``HTML`` line under it.
    widget:
        Figure and status, to place in a layout.
    """

    def __init__(self, explorer: Any, **options: Any) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go

        options.setdefault("threaded", explorer.threaded)
        self.explorer = explorer
        self.controller = SpectrumController(explorer.controller, **options)
        self._drawn: list = []
        self._lock = threading.RLock()
        self.fig = go.FigureWidget(
            layout={
                "height": 380,
                "width": 420,
                "margin": {"l": 50, "r": 20, "t": 40, "b": 45},
                "template": "plotly_white",
                "title": {"text": "eigenvalues of J = ∂f/∂z at z*"},
                "xaxis": {"title": {"text": "Re λ"}, "zeroline": True},
                "yaxis": {
                    "title": {"text": "Im λ"},
                    "scaleanchor": "x",
                    "scaleratio": 1,
                    "zeroline": True,
                },
                "legend": {"x": 0.5, "xanchor": "center", "y": -0.2, "orientation": "h"},
                "showlegend": True,
            }
        )
        self.status = w.HTML(layout=w.Layout(width="100%"))
        self.widget = w.VBox([self.fig, self.status], layout=w.Layout(width="440px"))
        self.controller.add_listener(self._on_change)
        self.draw()

    def _on_change(self) -> None:
        self.draw()
        self.explorer.draw_residuals()

    def overlay_shapes(self, data: PlotData) -> list[dict[str, Any]]:
        """The predicted forward-iteration line as a plotly shape for the residual panel.

        A geometric decay is a straight line on the log axis, so one line shape between its
        end points draws it without adding a trace.
        """
        trace = self.controller.rate_trace(data)
        if trace is None or trace.y[0] is None or trace.y[-1] is None:
            return []
        return [
            {
                "type": "line",
                "xref": "x",
                "yref": "y",
                "x0": trace.x[0],
                "x1": trace.x[-1],
                "y0": trace.y[0],  # data values: plotly places shapes on log axes by them
                "y1": trace.y[-1],
                "line": {"color": trace.color, "dash": "dashdot", "width": trace.width},
                "name": trace.name,
                "showlegend": True,
            }
        ]

    def draw(self) -> None:
        """Copy the plane data and status into the figure."""
        with self._lock:
            self._drawn = replace_traces(self.fig, self.controller.plane_data(), self._drawn)
            snapshot = self.controller.current()
            title = "eigenvalues of J = ∂f/∂z at z*"
            if snapshot is not None:
                title += f"<br><sup>{html.escape(snapshot.label)}</sup>"
            self.fig.layout.title.text = title
            self.status.value = (
                f'<span style="color:#4a148c">{html.escape(self.controller.describe())}</span>'
            )
