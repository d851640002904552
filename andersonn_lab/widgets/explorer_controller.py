"""The convergence explorer's logic, free of any widget library.

:class:`ExplorerController` holds the settings, builds (and caches) the problem, runs the
solvers with a per-step callback that records the residual curve while it grows, keeps a
capped history of previous runs, runs the sweep over the Anderson window ``m``, and turns
everything into plain :class:`PlotTrace` records that a drawing layer copies into a figure.
It never raises into its caller for bad settings or failing solves: those become a
:class:`ExplorerStatus` message. Tests and notebooks drive it without a browser.

Examples
--------
>>> from andersonn_lab.widgets.explorer_controller import ExplorerController, ExplorerSettings
>>> ctrl = ExplorerController(ExplorerSettings(problem="linear", dim=20, tol=1e-10))
>>> [result] = ctrl.run()
>>> trace = ctrl.plot_data().traces[-1]
>>> list(trace.y) == result.rel_residuals[:, 0].tolist()
True
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..solvers import SolverResult, SolverWarning, make_solver
from ..solvers.base import SolverState
from ._controller import WorkerController
from ._throttle import Throttle
from .explorer_problems import PROBLEM_SPECS, Problem
from .explorer_records import (
    ExplorerStatus,
    PlotData,
    PlotTrace,
    RunRecord,
    SweepPoint,
    curve_values,
    decimate,
    keep_in_history,
    plain_float,
)

METHODS = ("anderson", "forward")
"""Solver choices."""

SPECTRA = ("clustered", "real", "disk")
"""Spectrum shapes of the linear and tanh problems (tanh: ``"disk"`` is non-symmetric)."""

COLORS = {"anderson": "#1f77b4", "forward": "#d62728"}
"""Line colour of each method; previous runs use the same colour, faded."""


Listener = Callable[[str], None]


@dataclass
class ExplorerSettings:
    """Every setting of the explorer: the solver's and the teaching problem's.

    Attributes
    ----------
    method:
        ``"anderson"`` or ``"forward"`` (ignored when ``compare`` is set: both run).
    m, beta, lam, tol, max_iter:
        Solver settings, passed to :func:`andersonn_lab.solvers.make_solver` (``m`` and
        ``lam`` only to Anderson). ``lam = 0`` means no ridge.
    compare:
        Run forward iteration and Anderson on the same problem and overlay them.
    problem:
        A name from :data:`PROBLEM_SPECS`, or ``"custom"`` after
        :meth:`ExplorerController.set_problem`.
    radius:
        The problem's contraction knob: spectral radius (``linear``, ``tanh``), ``scale``
        (``rotation``), ``‖A‖₂`` (``affine``), ``rate`` (``geometric``), or the weight scale
        (``conv``: ``weight_std = 0.05 · radius``).
    spectrum:
        ``"clustered"``, ``"real"`` or ``"disk"`` (``tanh``: ``"disk"`` means a
        non-symmetric ``W``, the others a symmetric one).
    dim:
        Problem dimension (``rotation`` rounds it down to even; ``conv`` uses an
        ``8 × s × s`` state with ``8 s² ≈ dim``).
    seed:
        Seed of the random problems.

    Examples
    --------
    >>> ExplorerSettings(m=3).m
    3
    """

    method: str = "anderson"
    m: int = 5
    beta: float = 1.0
    lam: float = 1e-4
    tol: float = 1e-8
    max_iter: int = 50
    compare: bool = False
    problem: str = "linear"
    radius: float = 0.95
    spectrum: str = "clustered"
    dim: int = 200
    seed: int = 0

    def problem_key(self) -> tuple[Any, ...]:
        """The settings that define the problem (the cache key)."""
        return (self.problem, self.radius, self.spectrum, self.dim, self.seed)


class ExplorerController(WorkerController):
    """Settings, solves, history, sweeps and plot data of the convergence explorer.

    Parameters
    ----------
    settings:
        Initial settings (defaults: Anderson ``m = 5`` on a 200-dimensional linear problem).
    history_size:
        How many previous runs stay on the plot as faded traces.
    min_interval:
        Smallest wall time between two live ``"progress"`` notifications, in seconds
        (0.1: about 10 redraws per second). The final state is always notified.
    sweep_ms:
        Windows ``m`` of the crossover sweep.
    sweep_repeats:
        Each sweep point's wall time is the best of this many solves.

    Notes
    -----
    Listeners added with :meth:`add_listener` are called with an event name:
    ``"start"``, ``"progress"`` (throttled, during a solve), ``"finished"``, ``"sweep"``
    (after each sweep point and at its end) and ``"status"`` (status changed, nothing ran).
    During a threaded run they are called from the worker thread. A listener that raises
    never stops a solve: the failure is reported in :attr:`status`, and the listeners get a
    ``"status"`` event to show it.

    The residual plotted is the relative residual ``‖f(z) − z‖ / (‖f(z)‖ + 1e-5)`` of
    :attr:`SolverResult.rel_residuals`; for a problem with a batch of several samples,
    the worst sample at each step.

    Examples
    --------
    >>> ctrl = ExplorerController(ExplorerSettings(problem="rotation", dim=4, compare=True))
    >>> [r.method for r in ctrl.run()]
    ['forward', 'anderson']
    >>> ctrl.status.level
    'warning'
    """

    status_class = ExplorerStatus

    def __init__(
        self,
        settings: ExplorerSettings | None = None,
        *,
        history_size: int = 8,
        min_interval: float = 0.1,
        sweep_ms: Iterable[int] = range(11),
        sweep_repeats: int = 3,
    ) -> None:
        super().__init__()
        if history_size < 0:
            raise ValueError(f"history_size must be >= 0, got {history_size}")
        if sweep_repeats < 1:
            raise ValueError(f"sweep_repeats must be >= 1, got {sweep_repeats}")
        self.settings = settings if settings is not None else ExplorerSettings()
        self.history: deque[RunRecord] = deque(maxlen=history_size)
        self.current: list[RunRecord] = []
        self.sweep_points: list[SweepPoint] = []
        self.sweep_ms: list[int] = list(sweep_ms)
        self.sweep_repeats = sweep_repeats
        self.last_results: list[SolverResult] = []
        self.throttle = Throttle(min_interval)
        self._lock = threading.RLock()
        self._launch_lock = threading.Lock()
        self._pending: Callable[[], Any] | None = None
        self._worker_alive = False
        self._next_id = 0
        self._archived = 0
        self._sweep_id = 0
        self._problems: OrderedDict[tuple[Any, ...], Problem] = OrderedDict()
        self._custom: Problem | None = None
        self._custom_label = "custom"

    # ------------------------------------------------------------------ problems
    @property
    def problem_names(self) -> list[str]:
        """Problems to choose from: the teaching problems, and ``"custom"`` once set."""
        names = list(PROBLEM_SPECS)
        return [*names, "custom"] if self._custom is not None else names

    def set_problem(self, problem: Problem, label: str | None = None) -> None:
        """Explore any problem that has a batched map ``f`` and a start ``z0``.

        This is how a trained DEQ applied to a structure is plugged in. It selects the
        problem (``settings.problem = "custom"``); the history is kept.

        Parameters
        ----------
        problem:
            Object with ``f`` (taking and returning tensors shaped like ``z0``) and ``z0``
            (``(B, ...)``), such as a :class:`~andersonn_lab.solvers.problems.FixedPointProblem`.
        label:
            Name shown in the title; default ``problem.name`` or ``"custom"``.

        Examples
        --------
        >>> from types import SimpleNamespace
        >>> ctrl = ExplorerController()
        >>> z0 = torch.zeros(1, 3, dtype=torch.float64)
        >>> ctrl.set_problem(SimpleNamespace(f=torch.cos, z0=z0))
        >>> ctrl.run()[0].all_converged
        True
        """
        if not callable(getattr(problem, "f", None)) or not isinstance(
            getattr(problem, "z0", None), torch.Tensor
        ):
            raise TypeError("problem needs a callable attribute f and a tensor attribute z0")
        self._custom = problem
        self._custom_label = label or str(getattr(problem, "name", "custom"))
        self.settings.problem = "custom"

    @property
    def problem(self) -> Problem:
        """The selected problem, built from the settings on first use and cached.

        Raises ValueError for an unknown problem or bad problem settings (:meth:`run`
        turns that into a status message).
        """
        name = self.settings.problem
        if name == "custom":
            if self._custom is None:
                raise ValueError("no custom problem set; call set_problem(problem) first")
            return self._custom
        if name not in PROBLEM_SPECS:
            raise ValueError(f"problem must be one of {sorted(PROBLEM_SPECS)}, got {name!r}")
        key = self.settings.problem_key()
        with self._lock:
            if key in self._problems:
                self._problems.move_to_end(key)
                return self._problems[key]
        problem = PROBLEM_SPECS[name].build(self.settings)
        with self._lock:
            self._problems[key] = problem
            while len(self._problems) > 4:
                self._problems.popitem(last=False)
        return problem

    def _get_problem(self) -> Problem:
        """:attr:`problem`, saying so in the status first when it has to be built."""
        name = self.settings.problem
        with self._lock:
            cached = name == "custom" or self.settings.problem_key() in self._problems
        if not cached and name in PROBLEM_SPECS:
            self._set_status("running", f"building the {name} problem…", notify=True)
        return self.problem

    def problem_title(self) -> str:
        """A short description of the selected problem and its dimension."""
        name = self.settings.problem
        if name == "custom":
            label = self._custom_label
        else:
            spec = PROBLEM_SPECS.get(name)
            if spec is None:
                return f"unknown problem {name!r}"
            s = self.settings
            parts = [name]
            if "spectrum" in spec.uses:
                parts.append(s.spectrum)
            if "radius" in spec.uses:
                parts.append(f"{spec.radius_label} = {s.radius:g}")
            label = ", ".join(parts)
        with self._lock:
            built = (
                self._custom
                if name == "custom"
                else self._problems.get(self.settings.problem_key())
            )
        if built is not None:
            label += f", d = {built.z0[0].numel()}"
        return label

    # ------------------------------------------------------------------ advice
    def methods(self) -> list[str]:
        """Methods the next run uses: both in compare mode (forward first)."""
        if self.settings.compare:
            return ["forward", "anderson"]
        return [self.settings.method]

    def advice(self) -> list[str]:
        """Warnings about extreme settings, before anything runs.

        Examples
        --------
        >>> ExplorerController(ExplorerSettings(m=0)).advice()
        ['m = 0: Anderson keeps no history; this is plain (damped) forward iteration']
        """
        s, notes = self.settings, []
        methods = self.methods()
        if "anderson" in methods:
            if s.m == 0:
                notes.append(
                    "m = 0: Anderson keeps no history; this is plain (damped) forward iteration"
                )
            elif isinstance(s.m, int) and s.m >= 30:
                notes.append(
                    f"m = {s.m}: a very wide window; each step solves a {s.m + 1}×{s.m + 1} "
                    "system whose old residuals make it ill-conditioned and slow"
                )
            if s.lam == 0:
                notes.append(
                    "λ = 0: no ridge; a near-singular residual Gram matrix can give "
                    "wild weights (the safeguards restart the window)"
                )
        if isinstance(s.beta, float | int) and s.beta >= 1.5:
            notes.append(f"β = {s.beta:g}: over-relaxed steps may oscillate or diverge")
        spec = PROBLEM_SPECS.get(s.problem)
        if (
            "forward" in methods
            and spec is not None
            and s.problem in ("linear", "rotation", "tanh")
            and isinstance(s.radius, float | int)
            and s.radius >= 1
        ):
            notes.append(
                f"{spec.radius_label} = {s.radius:g} ≥ 1: forward iteration is not a "
                "contraction here and need not converge"
            )
        return notes

    # ------------------------------------------------------------------ running
    @property
    def is_running(self) -> bool:
        """Whether the worker thread is solving or sweeping (or has a job queued)."""
        return self._worker_alive

    def stop(self) -> None:
        """Ask the running solve or sweep to stop after its current step; drop queued jobs."""
        with self._launch_lock:
            self._pending = None
            self._stop_event.set()

    def _launch(self, job: Callable[[], Any], block: bool) -> Any:
        """Run ``job`` here (after stopping the worker) or queue it for the worker.

        The worker runs one job at a time. A job queued while another runs stops that one
        and replaces any job still waiting, so a burst of slider moves costs one solve, and
        the caller never waits for the worker (even while it builds a large problem).
        """
        if block:
            self.stop()
            self.join()
            self._stop_event.clear()
            return job()
        with self._launch_lock:
            self._pending = job
            if self._worker_alive:
                self._stop_event.set()
                return None
            self._worker_alive = True
            self._start_worker(self._work, name="andersonn-explorer")
        return None

    def _work(self) -> None:
        while True:
            with self._launch_lock:
                job, self._pending = self._pending, None
                if job is None:
                    self._worker_alive = False
                    return
                self._stop_event.clear()
            try:
                job()
            except Exception as exc:  # the jobs catch their own; this is a last resort
                self._set_status("error", f"{type(exc).__name__}: {exc}", notify=True)

    def run(self, block: bool = True) -> list[SolverResult]:
        """Solve the selected problem with the current settings.

        A run still going is stopped first. The previous run's curves move to the faded
        history, unless it was stopped early (by :meth:`stop` or by a newer run). Never
        raises for bad settings or failing solves; see :attr:`status`.

        Parameters
        ----------
        block:
            True: solve here and return the results. False: solve in a worker thread and
            return ``[]`` at once (results land in :attr:`last_results`; see :meth:`join`).

        Returns
        -------
        list of SolverResult
            One per method run (compare mode: forward, then Anderson); empty when the
            settings were invalid or the run is threaded.
        """
        return self._launch(self._run_job, block) or []

    def _make_solver(self, method: str):
        s = self.settings
        if method == "forward":
            return make_solver("forward", beta=s.beta, tol=s.tol, max_iter=s.max_iter)
        return make_solver(method, m=s.m, beta=s.beta, lam=s.lam, tol=s.tol, max_iter=s.max_iter)

    def _label(self, method: str) -> str:
        s = self.settings
        if method == "forward":
            return f"forward β={s.beta:g}"
        return f"anderson m={s.m} β={s.beta:g} λ={s.lam:g}"

    def _run_job(self) -> list[SolverResult]:
        self._listeners.clear_failure()
        try:
            problem = self._get_problem()
            solvers = [(method, self._make_solver(method)) for method in self.methods()]
        except Exception as exc:
            self._set_status("error", f"not run: {exc}", notify=True)
            return []
        records = []
        with self._lock:
            for record in self.current:
                if keep_in_history(record) and self.history.maxlen:
                    record.slot = self._archived % self.history.maxlen
                    self._archived += 1
                    self.history.append(record)
            for method, _ in solvers:
                records.append(RunRecord(self._next_id, method, self._label(method)))
                self._next_id += 1
            self.current = records
        notes = self.advice()
        level = "warning" if notes else "info"
        self._set_status("running", "solving…")
        self._emit("start")
        results: list[SolverResult] = []
        for record, (_, solver) in zip(records, solvers, strict=True):
            if self._stop_event.is_set():
                break
            try:
                result, caught = self._solve_one(problem, solver, record)
            except Exception as exc:
                level = "error"
                notes.append(f"{record.method} failed: {type(exc).__name__}: {exc}")
                break
            results.append(result)
            outcome, worse = self._describe(result, record.wall_time)
            notes.append(outcome)
            notes.extend(caught)
            if worse and level == "info":
                level = "warning"
        with self._lock:
            self.current = [record for record in records if record.x]
        self.last_results = results
        self._set_status(level, "; ".join(notes))
        self._emit("finished")
        return results

    def _solve_one(self, problem: Problem, solver, record: RunRecord):
        """Run one solver with a recording callback; returns the result and warning texts."""
        self.throttle.reset()
        stop_event = self._stop_event

        def callback(state: SolverState) -> bool:
            res = state.rel_res
            value = float(res[0]) if res.numel() == 1 else float(res.max())
            with self._lock:
                record.x.append(state.iteration)
                record.y.append(value)
            if self.throttle.ready():
                self._emit("progress")
            return stop_event.is_set()

        with warnings.catch_warnings(record=True) as caught, torch.no_grad():
            warnings.simplefilter("always")
            start = time.perf_counter()
            result = solver.run(problem.f, problem.z0, callback=callback)
            elapsed = time.perf_counter() - start
        curve = curve_values(result.rel_residuals)
        with self._lock:
            record.x = list(range(len(curve)))
            record.y = curve
            record.result = result
            record.wall_time = elapsed
            record.finished = True
        texts = [
            f"{record.method}: {w.message}"
            for w in caught
            # a library's deprecation notice (torch.jit.script) says nothing about the solve
            if not issubclass(w.category, SolverWarning | DeprecationWarning)
        ]
        return result, list(dict.fromkeys(texts))

    def _describe(self, result: SolverResult, wall_time: float) -> tuple[str, bool]:
        """One phrase about a result, and whether it deserves a warning."""
        names = result.status_names
        worst = float(result.residual.max())
        timing = f"{result.nfe} nfe, {1000 * wall_time:.1f} ms"
        if "diverged" in names:
            text, bad = f"{result.method} diverged ({timing})", True
        elif "stopped" in names:
            text, bad = f"{result.method} stopped by the user after {result.n_iter} steps", False
        elif "max_iter" in names:
            text = f"{result.method} did not reach tol in {result.n_iter} steps "
            text += f"(residual {worst:.2e}, {timing})"
            bad = True
        else:
            text, bad = f"{result.method} converged: residual {worst:.2e}, {timing}", False
        rejected, restarts = int(result.n_rejected.sum()), int(result.n_restarts.sum())
        if rejected or restarts:
            text += f" [safeguard: {rejected} rejected steps, {restarts} restarts]"
        return text, bad

    # ------------------------------------------------------------------ sweep
    def sweep(self, ms: Sequence[int] | None = None, block: bool = True) -> list[SweepPoint]:
        """Time Anderson over a range of windows ``m`` (and forward iteration once).

        Uses the current problem, β, λ, tol and max_iter. Never raises for bad settings.

        Parameters
        ----------
        ms:
            Windows to try; default :attr:`sweep_ms` (0..10).
        block:
            False: sweep in a worker thread and return ``[]`` at once.

        Returns
        -------
        list of SweepPoint
            One per ``m``, then the forward reference (``m = None``).

        Examples
        --------
        >>> ctrl = ExplorerController(ExplorerSettings(dim=20), sweep_repeats=1)
        >>> [p.m for p in ctrl.sweep([0, 2])]
        [0, 2, None]
        """
        if ms is not None:
            self.sweep_ms = list(ms)
        return self._launch(self._sweep_job, block) or []

    def _sweep_job(self) -> list[SweepPoint]:
        self._listeners.clear_failure()
        s = self.settings
        try:
            problem = self._get_problem()
            jobs: list[tuple[int | None, Any]] = [
                (
                    m,
                    make_solver(
                        "anderson", m=m, beta=s.beta, lam=s.lam, tol=s.tol, max_iter=s.max_iter
                    ),
                )
                for m in self.sweep_ms
            ]
            jobs.append((None, make_solver("forward", beta=s.beta, tol=s.tol, max_iter=s.max_iter)))
        except Exception as exc:
            self._set_status("error", f"sweep not run: {exc}", notify=True)
            return []
        stop_event = self._stop_event

        def stop_requested(state: SolverState) -> bool:
            return stop_event.is_set()

        with self._lock:
            self.sweep_points = []
            self._sweep_id += 1
        self._set_status("running", "sweeping m…")
        self.throttle.reset()
        try:
            for m, solver in jobs:
                if self._stop_event.is_set():
                    break
                best, result = math.inf, None
                for _ in range(self.sweep_repeats):
                    with warnings.catch_warnings(), torch.no_grad():
                        warnings.simplefilter("ignore")
                        start = time.perf_counter()
                        result = solver.run(problem.f, problem.z0, callback=stop_requested)
                        best = min(best, time.perf_counter() - start)
                if self._stop_event.is_set():
                    break
                status = "converged" if result.all_converged else result.status_names[0]
                with self._lock:
                    self.sweep_points.append(SweepPoint(m, best, result.nfe, status))
                if self.throttle.ready():
                    self._emit("sweep")
        except Exception as exc:
            self._set_status("error", f"sweep failed: {type(exc).__name__}: {exc}")
            self._emit("sweep")
            return list(self.sweep_points)
        self._set_status(*self._sweep_summary())
        self._emit("sweep")
        return list(self.sweep_points)

    def _sweep_summary(self) -> tuple[str, str]:
        points = [p for p in self.sweep_points if p.m is not None]
        if not points:
            return "info", "sweep stopped before the first point"
        fastest = min(points, key=lambda p: p.wall_time)
        text = f"sweep: fastest Anderson m = {fastest.m} ({1000 * fastest.wall_time:.1f} ms, "
        text += f"{fastest.nfe} nfe)"
        forward = [p for p in self.sweep_points if p.m is None]
        if forward:
            ref = forward[0]
            text += f"; forward {1000 * ref.wall_time:.1f} ms, {ref.nfe} nfe ({ref.status})"
        failed = [p.m for p in points if p.status != "converged"]
        if failed:
            return "warning", text + f"; not converged for m in {failed}"
        return "info", text

    # ------------------------------------------------------------------ plot data
    def clear_history(self) -> None:
        """Forget the previous runs (the current curves stay)."""
        with self._lock:
            self.history.clear()
            self._archived = 0

    def plot_data(self) -> PlotData:
        """The residual panel: faded previous runs, then the current ones.

        Lines longer than :data:`PLOT_POINTS` are thinned (:func:`decimate`); the records
        keep every step.

        Previous runs come in the order of their ring slot (a new run replaces the oldest
        run's slot, so a drawing layer updates one trace's data and the others' opacity);
        the more recent a run, the less faded.
        """
        with self._lock:
            history = list(self.history)
            current = [(r, len(r.y), *decimate(r.x, r.y)) for r in self.current]
        traces = []
        n = len(history)
        age = {record.run_id: i for i, record in enumerate(history)}
        for record in sorted(history, key=lambda r: r.slot):
            opacity = round(0.12 + 0.33 * (age[record.run_id] + 1) / n, 3)
            xs, ys = decimate(record.x, record.y)
            traces.append(
                PlotTrace(
                    name=f"previous: {record.label}",
                    x=tuple(xs),
                    y=tuple(plain_float(v) for v in ys),
                    role="previous",
                    method=record.method,
                    color=COLORS.get(record.method, "#555555"),
                    opacity=opacity,
                    width=1.5,
                    mode="lines",
                    showlegend=False,
                    key=(record.run_id, "previous"),
                )
            )
        for record, n_points, xs, ys in current:
            traces.append(
                PlotTrace(
                    name=record.label,
                    x=tuple(xs),
                    y=tuple(plain_float(v) for v in ys),
                    role="current",
                    method=record.method,
                    color=COLORS.get(record.method, "#555555"),
                    key=(record.run_id, "current", n_points, record.finished),
                )
            )
        return PlotData(tuple(traces), float(self.settings.tol), self.problem_title())

    def crossover_data(self) -> tuple[PlotTrace, ...]:
        """The crossover panel: wall time and nfe against ``m``, and forward's wall time.

        Only converged runs give a wall time to tolerance: a run that stopped at the cap (or
        diverged) leaves a gap in the time line and is marked with a red x at the time it
        ran, named as such; a forward reference that did not converge says so in its name.
        """
        with self._lock:
            points = [p for p in self.sweep_points if p.m is not None]
            forward = [p for p in self.sweep_points if p.m is None]
            key = (self._sweep_id, len(self.sweep_points))
        ms = tuple(float(p.m) for p in points)
        traces = [
            PlotTrace(
                name="Anderson wall time to tolerance (ms)",
                x=ms,
                y=tuple(1000 * p.wall_time if p.status == "converged" else None for p in points),
                role="time",
                method="anderson",
                color=COLORS["anderson"],
                key=("time", *key),
            ),
            PlotTrace(
                name="Anderson nfe",
                x=ms,
                y=tuple(float(p.nfe) for p in points),
                role="nfe",
                method="anderson",
                color="#2ca02c",
                dash="dot",
                yaxis="y2",
                key=("nfe", *key),
            ),
        ]
        if forward and ms:
            ref = 1000 * forward[0].wall_time
            name = f"forward wall time ({forward[0].nfe} nfe)"
            if forward[0].status != "converged":
                name = f"forward did not converge ({forward[0].status}): ran {ref:.1f} ms"
            traces.append(
                PlotTrace(
                    name=name,
                    x=(min(ms), max(ms)),
                    y=(ref, ref),
                    role="forward",
                    method="forward",
                    color=COLORS["forward"],
                    dash="dash",
                    mode="lines",
                    key=("forward", *key),
                )
            )
        failed = [p for p in points if p.status != "converged"]
        if failed:
            traces.append(
                PlotTrace(
                    name="not converged (time until it stopped, not to tolerance)",
                    x=tuple(float(p.m) for p in failed),
                    y=tuple(1000 * p.wall_time for p in failed),
                    role="unconverged",
                    method="anderson",
                    color="#d62728",
                    mode="markers",
                    symbol="x",
                    size=10,
                    key=("unconverged", *key),
                )
            )
        return tuple(traces)
