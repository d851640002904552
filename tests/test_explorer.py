"""Tests of the convergence explorer: controller logic, widget wiring, threads, throttling."""

from __future__ import annotations

import os
import threading
import time
import warnings
from types import SimpleNamespace

import pytest
import torch

from andersonn_lab.solvers.problems import make_problem
from andersonn_lab.widgets import ConvergenceExplorer, ExplorerController, ExplorerSettings
from andersonn_lab.widgets._throttle import Throttle
from andersonn_lab.widgets.explorer_controller import PROBLEM_SPECS

os.environ.setdefault("PLOTLY_RENDERER", "json")

SMALL = {"problem": "linear", "dim": 24, "tol": 1e-10, "max_iter": 40}


def controller(**settings) -> ExplorerController:
    return ExplorerController(ExplorerSettings(**{**SMALL, **settings}), sweep_repeats=1)


def explorer(**settings) -> ConvergenceExplorer:
    ctrl = ExplorerController(ExplorerSettings(**{**SMALL, **settings}), sweep_repeats=1)
    ctrl.sweep_ms = [0, 1, 2, 3]
    return ConvergenceExplorer(ctrl, threaded=False)


def current(fig) -> list:
    return [trace for trace in fig.data if trace.meta == "current"]


def previous(fig) -> list:
    return [trace for trace in fig.data if trace.meta == "previous"]


def slow_problem(delay: float = 0.002):
    """A rotation that never converges under forward iteration, slowed down per call."""
    base = make_problem("rotation", scale=1.0, dim=4, batch=1)

    def f(z: torch.Tensor) -> torch.Tensor:
        time.sleep(delay)
        return base.f(z)

    return SimpleNamespace(f=f, z0=base.z0)


# ---------------------------------------------------------------------- throttle
def test_throttle_lets_one_call_per_interval_through():
    ticks = iter([0.0, 0.05, 0.099, 0.1, 0.15, 0.25])
    throttle = Throttle(0.1, clock=lambda: next(ticks))
    assert [throttle.ready() for _ in range(6)] == [True, False, False, True, False, True]
    throttle.reset()
    assert Throttle(0.0).ready() and Throttle(0.0).ready()
    with pytest.raises(ValueError, match="interval"):
        Throttle(-1)


# ---------------------------------------------------------------------- controller
def test_run_returns_results_and_plot_matches_residuals_exactly():
    ctrl = controller()
    [result] = ctrl.run(block=True)
    data = ctrl.plot_data()
    [trace] = data.traces
    assert trace.role == "current" and trace.method == "anderson"
    assert list(trace.y) == result.rel_residuals[:, 0].tolist()
    assert list(trace.x) == list(range(result.n_iter + 1))
    assert data.tol == 1e-10 and "linear" in data.title and "d = 24" in data.title
    assert ctrl.status.level == "info" and "converged" in ctrl.status.text


def test_previous_runs_fade_and_history_is_capped():
    ctrl = ExplorerController(ExplorerSettings(**SMALL), history_size=3)
    for m in range(1, 6):
        ctrl.settings.m = m
        ctrl.run()
    traces = ctrl.plot_data().traces
    faded = sorted((t for t in traces if t.role == "previous"), key=lambda t: t.opacity)
    assert len(faded) == 3 and len(traces) == 4
    assert [t.name for t in faded] == [f"previous: anderson m={m} β=1 λ=0.0001" for m in (2, 3, 4)]
    assert len({t.opacity for t in faded}) == 3 and max(t.opacity for t in faded) < 1.0
    assert traces[-1].opacity == 1.0
    ctrl.clear_history()
    assert len(ctrl.plot_data().traces) == 1


def test_compare_mode_runs_both_methods_on_the_same_problem():
    ctrl = controller(compare=True)
    results = ctrl.run()
    assert [r.method for r in results] == ["forward", "anderson"]
    traces = ctrl.plot_data().traces
    assert [t.method for t in traces] == ["forward", "anderson"]
    for trace, result in zip(traces, results, strict=True):
        assert list(trace.y) == result.rel_residuals[:, 0].tolist()
    assert results[1].nfe < results[0].nfe


def test_live_updates_grow_the_curve_during_a_run():
    ctrl = ExplorerController(ExplorerSettings(**{**SMALL, "method": "forward"}), min_interval=0)
    lengths, events = [], []

    def record(event: str) -> None:
        events.append(event)
        if event == "progress":
            lengths.append(len(ctrl.plot_data().traces[-1].y))

    ctrl.add_listener(record)
    [result] = ctrl.run()
    assert events[0] == "status"  # building the problem
    assert events[1] == "start" and events[-1] == "finished"
    assert lengths == list(range(1, result.n_iter + 2))
    assert len(ctrl.plot_data().traces[-1].y) == result.n_iter + 1


def test_throttled_run_still_draws_the_final_state():
    ctrl = ExplorerController(ExplorerSettings(**{**SMALL, "method": "forward"}), min_interval=60)
    events = []
    ctrl.add_listener(events.append)
    [result] = ctrl.run()
    assert events.count("progress") == 1  # the first point only, then the interval blocks
    assert events.count("finished") == 1
    assert events[-1] == "finished"
    assert list(ctrl.plot_data().traces[-1].y) == result.rel_residuals[:, 0].tolist()


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ({"m": 0}, "m = 0"),
        ({"m": 50}, "m = 50"),
        ({"beta": 2.0}, "β = 2"),
        ({"lam": 0.0}, "λ = 0"),
        (
            {"problem": "rotation", "radius": 1.2, "dim": 4, "method": "forward"},
            "not a contraction",
        ),
        (
            {"problem": "rotation", "radius": 1.2, "dim": 4, "method": "forward", "max_iter": 100},
            "forward diverged",
        ),
    ],
)
def test_extreme_settings_warn_in_the_status_and_never_raise(settings, phrase):
    ctrl = controller(**settings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may escape to the kernel
        results = ctrl.run()
    assert len(results) == 1
    assert ctrl.status.level == "warning"
    assert phrase in ctrl.status.text


@pytest.mark.parametrize(
    ("settings", "name", "sweep_fails"),
    [
        ({"beta": 0.0}, "beta", True),
        ({"m": -1}, "m", False),  # the sweep sets its own m
        ({"tol": 0.0}, "tol", True),
        ({"max_iter": 0}, "max_iter", True),
        ({"lam": -1.0}, "lam", True),
        ({"method": "newton"}, "method", False),  # the sweep always runs both methods
        ({"problem": "affine", "radius": 1.3}, "contraction", True),
        ({"problem": "nope"}, "problem", True),
        ({"problem": "custom"}, "set_problem", True),
    ],
)
def test_invalid_settings_give_an_error_status_not_an_exception(settings, name, sweep_fails):
    ctrl = controller(**settings)
    events = []
    ctrl.add_listener(events.append)
    assert ctrl.run() == []
    assert ctrl.status.level == "error" and name in ctrl.status.text
    assert set(events) == {"status"}  # nothing ran, nothing to draw but the status
    if sweep_fails:
        assert ctrl.sweep([0, 1]) == []
        assert ctrl.status.level == "error" and name in ctrl.status.text


def test_custom_problem_with_a_batch_plots_the_worst_sample():
    ctrl = controller()
    z0 = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2)
    ctrl.set_problem(SimpleNamespace(f=torch.cos, z0=z0), label="cos batch")
    assert ctrl.settings.problem == "custom" and "custom" in ctrl.problem_names
    [result] = ctrl.run()
    trace = ctrl.plot_data().traces[-1]
    assert list(trace.y) == result.rel_residuals.max(dim=1).values.tolist()
    assert ctrl.problem_title() == "cos batch, d = 2"
    with pytest.raises(TypeError):
        ctrl.set_problem(SimpleNamespace(f=None, z0=z0))


def test_every_teaching_problem_runs():
    for name in PROBLEM_SPECS:
        ctrl = controller(problem=name, dim=16, radius=0.8, max_iter=15)
        [result] = ctrl.run()
        assert ctrl.status.level in ("info", "warning"), (name, ctrl.status)
        assert result.rel_residuals.shape[0] == result.n_iter + 1


def test_sweep_gives_one_point_per_m_and_a_forward_reference():
    ctrl = controller(max_iter=2000)  # every run converges (at 40 steps none does)
    points = ctrl.sweep([0, 1, 2, 4])
    assert [p.m for p in points] == [0, 1, 2, 4, None]
    assert all(p.status == "converged" for p in points)
    time_trace, nfe_trace, forward = ctrl.crossover_data()
    assert time_trace.x == (0.0, 1.0, 2.0, 4.0) and len(time_trace.y) == 4
    assert nfe_trace.y == tuple(float(p.nfe) for p in points[:4])
    assert nfe_trace.yaxis == "y2" and forward.role == "forward"
    assert all(t > 0 for t in time_trace.y)
    assert "fastest Anderson m =" in ctrl.status.text


def test_crossover_panel_never_plots_an_unconverged_run_as_a_time_to_tolerance():
    ctrl = controller(problem="rotation", max_iter=8, tol=1e-12)  # too few steps for anyone
    points = ctrl.sweep([0, 2])
    assert [p.status for p in points] == ["max_iter"] * 3
    time_trace, _nfe, forward, marks = ctrl.crossover_data()
    assert time_trace.y == (None, None)
    assert marks.role == "unconverged" and marks.x == (0.0, 2.0) and marks.symbol == "x"
    assert marks.y == tuple(1000 * p.wall_time for p in points[:2])
    assert "not to tolerance" in marks.name and "did not converge" in forward.name
    assert "not converged for m in [0, 2]" in ctrl.status.text


def test_worker_thread_starts_and_stops_cleanly():
    ctrl = ExplorerController(ExplorerSettings(method="forward", max_iter=1000, tol=1e-12))
    ctrl.set_problem(slow_problem())
    progressed = threading.Event()
    ctrl.add_listener(lambda event: progressed.set() if event == "progress" else None)
    assert ctrl.run(block=False) == []
    assert progressed.wait(5) and ctrl.is_running
    ctrl.stop()
    assert ctrl.join(timeout=5) and not ctrl.is_running
    [result] = ctrl.last_results
    assert result.status_names == ["stopped"] and result.n_iter < 1000
    assert "stopped by the user" in ctrl.status.text
    # a sweep queued while a run is going stops it; the Stop button drops queued jobs
    ctrl.run(block=False)
    assert ctrl.sweep([0, 1], block=False) == []
    ctrl.stop()
    assert ctrl.join(timeout=5)
    # a burst of changes while a run is going: the old run stops, the last settings win
    ctrl.run(block=False)
    for max_iter in (7, 6, 5):
        ctrl.settings.max_iter = max_iter
        ctrl.run(block=False)
    assert ctrl.join(timeout=5)
    assert [r.n_iter for r in ctrl.last_results] == [5]
    assert not ctrl.history  # stopped, partial runs stay out of the faded history


# ---------------------------------------------------------------------- widget
def test_widget_draws_the_controllers_residuals():
    ex = explorer()
    [trace] = current(ex.fig)
    result = ex.controller.last_results[0]
    assert list(trace.y) == result.rel_residuals[:, 0].tolist()
    assert ex.fig.layout.yaxis.type == "log"
    assert ex.fig.layout.shapes[0].y0 == 1e-10
    assert "✓" in ex.status.value
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_every_control_redraws_and_faded_traces_pile_up():
    ex = explorer()
    changes = [
        ("m", 3),
        ("beta", 0.7),
        ("lam", 1e-6),
        ("no_ridge", True),
        ("no_ridge", False),
        ("tol", 1e-6),
        ("max_iter", 30),
        ("method", "forward"),
        ("method", "anderson"),
        ("spectrum", "real"),
        ("radius", 0.8),
        ("dim", 30),
        ("problem", "tanh"),
    ]
    for n, (name, value) in enumerate(changes, start=1):
        ex.controls[name].value = value
        results = ex.controller.last_results
        [trace] = current(ex.fig)
        assert list(trace.y) == results[0].rel_residuals[:, 0].tolist(), name
        assert len(previous(ex.fig)) == min(n, 8)
        assert len(ex.fig.data) == min(n, 8) + 1
    s = ex.controller.settings
    assert (s.m, s.beta, s.lam, s.tol, s.max_iter) == (3, 0.7, 1e-6, 1e-6, 30)
    assert (s.spectrum, s.radius, s.dim, s.problem) == ("real", 0.8, 30, "tanh")
    assert all(0 < t.opacity < 1 for t in previous(ex.fig))
    ex.controls["method"].value = "forward"
    assert ex.m.disabled and ex.lam.disabled
    ex.controls["problem"].value = "cosine"
    assert ex.radius.disabled and ex.spectrum.disabled and not ex.dim.disabled
    ex.clear_button.click()
    assert len(ex.fig.data) == 1


def test_compare_checkbox_overlays_both_methods():
    ex = explorer()
    ex.compare.value = True
    names = [trace.name for trace in current(ex.fig)]
    assert names == ["forward β=1", "anderson m=5 β=1 λ=0.0001"]
    for trace, result in zip(current(ex.fig), ex.controller.last_results, strict=True):
        assert list(trace.y) == result.rel_residuals[:, 0].tolist()
    assert ex.method.disabled


def test_sweep_button_fills_the_crossover_panel():
    ex = explorer()
    ex.sweep_button.click()
    time_trace, nfe_trace, forward, marks = ex.crossover_fig.data
    assert time_trace.x == (0.0, 1.0, 2.0, 3.0) and len(time_trace.y) == 4
    assert len(nfe_trace.y) == 4 and nfe_trace.yaxis == "y2"
    assert forward.line.dash == "dash"
    # 40 steps to 1e-10: no run converges, so no time to tolerance, a red x at each m
    assert time_trace.y == (None,) * 4
    assert marks.mode == "markers" and marks.marker.symbol == "x" and len(marks.x) == 4


def test_sliders_show_the_settings_given_in_code_not_their_range_ends():
    ex = ConvergenceExplorer(
        threaded=False,
        auto_run=False,
        spectrum_panel=False,
        problem="linear",
        dim=24,
        tol=1e-14,
        max_iter=5000,
        radius=0.999,
        lam=1e-12,
        m=64,
    )
    assert ex.tol.value == pytest.approx(1e-14, rel=1e-9, abs=0) and ex.tol.min == -14
    assert ex.lam.value == pytest.approx(1e-12, rel=1e-9, abs=0)
    assert ex.max_iter.value == 5000 and ex.m.value == 64
    assert ex.radius.value == 0.999
    # the readout (a d3 format; Python's reads ".3g" the same) tells 0.999 from 1
    assert format(ex.radius.value, ex.radius.readout_format) == "0.999"
    assert ex.controller.settings.tol == 1e-14  # the controller's value, unclamped


def test_crossover_title_asks_for_a_sweep_until_one_ran():
    ex = explorer()
    assert ex.crossover_fig.layout.title.text.endswith("(press Sweep m)")
    ex.sweep_button.click()
    assert ex.crossover_fig.layout.title.text == "crossover: cost against window m"


def test_extreme_and_invalid_widget_values_show_in_the_status_line():
    ex = explorer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ex.m.value = 50
        assert "⚠" in ex.status.value and "m = 50" in ex.status.value
        ex.m.value = 0
        assert "m = 0" in ex.status.value
        ex.beta.value = 2.0
        assert "β = 2" in ex.status.value
        ex.no_ridge.value = True
        assert "λ = 0" in ex.status.value
        ex.problem.value = "affine"
        ex.radius.value = 1.4
        assert "✗" in ex.status.value and "contraction" in ex.status.value
        ex.problem.value = "rotation"
        ex.method.value = "forward"
        assert "diverged" in ex.status.value
        ex.run_button.click()
        ex.stop_button.click()  # idle: nothing to stop, no error


def test_widget_threaded_run_and_stop_button():
    ex = ConvergenceExplorer(threaded=True, auto_run=False, method="forward", max_iter=1000)
    ex.set_problem(slow_problem(), label="slow rotation")
    assert ex.problem.value == "custom"
    ex.run_button.click()
    deadline = time.perf_counter() + 5
    while not current(ex.fig) or len(current(ex.fig)[0].y) < 3:
        assert time.perf_counter() < deadline
        time.sleep(0.01)
    ex.stop_button.click()
    assert ex.controller.join(timeout=5)
    [result] = ex.controller.last_results
    assert result.status_names == ["stopped"]
    assert list(current(ex.fig)[0].y) == result.rel_residuals[:, 0].tolist()
    assert "stopped by the user" in ex.status.value


def test_stop_is_checked_at_every_step_of_a_run():
    """A stop asked for during a run ends it at the next step, not at the end."""
    ctrl = ExplorerController(
        ExplorerSettings(problem="rotation", radius=1.0, dim=4, method="forward", max_iter=1000),
        min_interval=0,  # a "progress" event at every step
    )
    steps: list[int] = []

    def stop_at_the_third_step(event: str) -> None:
        if event == "progress":
            steps.append(len(ctrl.current[0].y))
            if len(steps) == 3:
                ctrl.stop()

    ctrl.add_listener(stop_at_the_third_step)
    [result] = ctrl.run()
    assert result.status_names == ["stopped"]
    assert result.n_iter <= 3, f"the run went on for {result.n_iter} steps after Stop"
    assert "stopped by the user" in ctrl.status.text


def test_stop_ends_a_threaded_run_within_half_a_second():
    ctrl = ExplorerController(ExplorerSettings(method="forward", max_iter=1000))
    ctrl.set_problem(slow_problem(0.005), label="slow rotation")  # a 5 s run
    ctrl.run(block=False)
    deadline = time.perf_counter() + 5
    while not ctrl.current or len(ctrl.current[0].y) < 5:
        assert time.perf_counter() < deadline
        time.sleep(0.005)
    start = time.perf_counter()
    ctrl.stop()
    assert ctrl.join(timeout=5)
    elapsed = time.perf_counter() - start
    assert ctrl.last_results[0].status_names == ["stopped"]
    assert elapsed < 0.5, f"stopping took {elapsed:.3f} s"


def test_a_threaded_explorer_does_not_hold_the_cell_for_a_long_first_solve():
    """The constructor's first solve goes on in the worker (drawn live, and Stop ends it)."""
    from andersonn_lab.widgets.explorer import FIRST_RUN_WAIT

    ctrl = ExplorerController(ExplorerSettings(method="forward", max_iter=1000))
    ctrl.set_problem(slow_problem(0.005), label="slow rotation")
    start = time.perf_counter()
    ex = ConvergenceExplorer(ctrl, threaded=True, spectrum_panel=False)
    assert time.perf_counter() - start < FIRST_RUN_WAIT + 1.0
    assert ctrl.is_running and "solving" in ex.status.value
    ex.stop_button.click()
    assert ctrl.join(timeout=5)
    assert "stopped by the user" in ex.status.value
    short = ConvergenceExplorer(threaded=True, dim=20, spectrum_panel=False)
    assert not short.controller.is_running and current(short.fig)  # drawn at display


def test_long_runs_are_drawn_thinned_with_their_last_step():
    """1,000 forward steps at d = 2,000: each redraw sends at most PLOT_POINTS points."""
    from andersonn_lab.widgets.explorer_records import PLOT_POINTS

    ex = explorer(problem="linear", dim=2000, method="forward", tol=1e-20, max_iter=1000)
    ex.run_button.click()
    [record] = ex.controller.current
    assert len(record.y) == 1001  # the record keeps every step
    [line] = current(ex.fig)
    assert len(line.y) <= PLOT_POINTS and line.x[-1] == 1000
    assert line.y[-1] == pytest.approx(record.y[-1])
    ex.run_button.click()  # the first run is now history, thinned the same way
    assert all(len(trace.y) <= PLOT_POINTS for trace in ex.fig.data)


def test_the_predicted_rate_spans_a_thinned_run_to_its_last_iteration():
    ex = explorer(problem="linear", dim=200, method="forward", tol=1e-20, max_iter=1000)
    ex.eigen.controller.update(block=True)
    data = ex.controller.plot_data()
    [line] = [t for t in data.traces if t.role == "current"]
    assert len(line.x) < 1000 and line.x[-1] == 1000  # thinned
    [shape] = ex.eigen.overlay_shapes(data)
    assert shape["x1"] == 1000


def _broken(event: str) -> None:
    if event in ("progress", "sweep"):
        raise RuntimeError("plot backend gone")


def test_a_failing_listener_is_reported_in_the_status_and_the_solve_goes_on():
    ctrl = controller(compare=True)
    ctrl.add_listener(_broken)
    seen: list[str] = []
    ctrl.add_listener(seen.append)  # later listeners still get every event
    results = ctrl.run()
    assert [r.method for r in results] == ["forward", "anderson"]
    assert "progress" in seen and seen[-1] == "finished"
    assert ctrl.status.level == "warning"
    assert "converged" in ctrl.status.text  # the run's own summary is kept
    assert "drawing failed on 'progress': RuntimeError: plot backend gone" in ctrl.status.text
    points = ctrl.sweep([0, 1])
    assert [p.m for p in points] == [0, 1, None]
    assert "sweep" in ctrl.status.text and "drawing failed on 'sweep'" in ctrl.status.text


def test_a_failing_figure_shows_in_the_explorer_status_line(monkeypatch):
    ex = explorer()

    def no_drawing() -> None:
        raise ValueError("figure cannot be drawn")

    monkeypatch.setattr(ex, "draw_residuals", no_drawing)
    results = ex.run()
    assert results and results[0].all_converged
    assert ex.controller.status.level == "warning"
    assert "figure cannot be drawn" in ex.status.value
    monkeypatch.undo()
    ex.run()  # drawing works again: a clean status
    assert ex.controller.status.level == "info" and "drawing" not in ex.status.value
