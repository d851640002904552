"""Anderson step by step in the plane: the controller against the solver, the view's wiring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from andersonn_lab.solvers import problems
from andersonn_lab.widgets import AndersonStepController, AndersonStepper
from andersonn_lab.widgets.anderson_steps import mixing_weights


@pytest.mark.parametrize(
    "settings",
    [
        {"problem": "rotation", "m": 2, "scale": 1.0},
        {"problem": "rotation", "m": 1, "scale": 0.95, "beta": 0.7},
        {"problem": "rotation", "m": 0, "scale": 0.9, "steps": 15},
        {"problem": "rotation", "m": 4, "scale": 1.1, "beta": 1.3, "lam": 1e-3},
        {"problem": "cosine", "m": 3},
    ],
)
def test_iterates_match_the_projects_anderson(settings):
    ctrl = AndersonStepController(**settings)
    ours = ctrl.iterates
    solver = ctrl.solver_iterates()
    assert ours.shape == solver.shape and len(ours) >= 2
    np.testing.assert_allclose(ours, solver, rtol=0, atol=1e-9)


def test_frames_are_consistent():
    ctrl = AndersonStepController("rotation", m=2, scale=0.9, lam=1e-3, steps=12)
    problem = problems.rotation(1.0, scale=0.9, dim=2, batch=1)
    for k, frame in enumerate(ctrl.frames):
        assert frame.iteration == k and frame.window[-1] == k
        assert len(frame.window) == min(k, 2) + 1
        assert frame.alpha.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(frame.z, ctrl.iterates[list(frame.window)])
        fz = problem.f(torch.as_tensor(frame.z)).numpy()
        np.testing.assert_allclose(frame.fz, fz, atol=1e-12)
        np.testing.assert_allclose(frame.g, frame.fz - frame.z)
        # β = 1: the extrapolated point is the α-mix of the images
        np.testing.assert_allclose(frame.next_z, frame.alpha @ frame.fz, atol=1e-12)
        if k + 1 < len(ctrl.iterates):
            np.testing.assert_allclose(ctrl.iterates[k + 1], frame.next_z)


def test_weights_solve_the_constrained_least_squares():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((3, 5))
    alpha = mixing_weights(g, 0.0)
    assert alpha.sum() == pytest.approx(1.0)
    # any other weights summing to one leave a larger combined residual
    best = np.linalg.norm(alpha @ g)
    for _ in range(200):
        other = alpha + rng.standard_normal(3) * 0.1
        other += (1 - other.sum()) / 3
        assert np.linalg.norm(other @ g) >= best - 1e-12
    # linearly dependent residuals without a ridge: still the minimiser
    np.testing.assert_allclose(
        mixing_weights(np.array([[2.0, 0.0], [-1.0, 0.0]]), 0.0), [1 / 3, 2 / 3]
    )


def test_gmres_property_and_forward_circling():
    anderson = AndersonStepController("rotation", m=2, scale=1.0, lam=0.0)
    forward = AndersonStepController("rotation", m=0, scale=1.0, steps=40)
    assert len(anderson.frames) <= 4 and anderson.frames[-1].residual < 1e-12
    residuals = [f.residual for f in forward.frames]
    assert min(residuals) == pytest.approx(max(residuals))  # a rotation keeps |g| fixed


def test_cursor_and_settings():
    ctrl = AndersonStepController("rotation", m=2, scale=0.95)
    seen = []
    ctrl.add_listener(lambda: seen.append(ctrl.index))
    assert ctrl.previous() == 0
    assert ctrl.next() == 1 and ctrl.next() == 2
    ctrl.set(m=1)
    assert ctrl.index == 2 and ctrl.frame.window == (1, 2)
    for _ in range(100):
        ctrl.next()
    assert ctrl.index == len(ctrl.frames) - 1
    with pytest.raises(ValueError, match="beta"):
        ctrl.set(beta=3.0)
    assert ctrl.beta == 1.0 and ctrl.m == 1  # unchanged after a bad value
    with pytest.raises(ValueError, match="problem must be"):
        ctrl.set(problem="tanh")
    with pytest.raises(TypeError, match="unknown setting"):
        ctrl.set(window=3)
    assert seen


def test_stepper_widget_draws_the_frame():
    stepper = AndersonStepper(problem="rotation", m=2, scale=0.95)
    assert stepper.prev_button.disabled
    stepper.next_button.click()
    stepper.next_button.click()
    frame = stepper.controller.frame
    roles = [t.meta for t in stepper.fig.data]
    assert roles == ["path", "window", "residual", "plain", "next", "fixed"]
    window = stepper.fig.data[1]
    np.testing.assert_allclose(window.x, frame.z[:, 0])
    next_point = stepper.fig.data[4]
    assert (next_point.x[0], next_point.y[0]) == pytest.approx(tuple(frame.next_z))
    bars = stepper.alpha_fig.data[0]
    assert bars.x == ("z_0", "z_1", "z_2")
    np.testing.assert_allclose(bars.y, frame.alpha)
    assert "step 3" in stepper.status.value
    stepper.m.value = 0  # forward iteration: one weight, 1
    assert stepper.alpha_fig.data[0].y == (1.0,)
    stepper.beta.value = 2.0
    stepper.problem.value = "cosine"
    assert stepper.scale.disabled
    assert stepper.fig.data[-1].x == pytest.approx((problems.DOTTIE,))
    stepper.prev_button.click()
    assert stepper.controller.index == 1
