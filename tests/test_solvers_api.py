"""The solver API: validation, the step-wise interface, callbacks, results, devices."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from andersonn_lab.solvers import (
    Anderson,
    ForwardIteration,
    SolverResult,
    Status,
    make_solver,
    problems,
    solve,
)

COS_Z0 = torch.zeros(2, 3, dtype=torch.float64)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("m", -1),
        ("m", 2.5),
        ("m", True),
        ("beta", 0.0),
        ("beta", 2.5),
        ("beta", math.nan),
        ("lam", -1e-3),
        ("tol", 0.0),
        ("tol", -1.0),
        ("max_iter", 0),
        ("max_iter", "10"),
        ("stop_mode", "relative"),
        ("safeguard", 0.5),
        ("max_weight", 0.1),
        ("divergence_factor", 1.0),
        ("check_every", 0),
    ],
)
def test_bad_value_raises_value_error_naming_it(name, value):
    with pytest.raises(ValueError, match=name):
        solve(torch.cos, COS_Z0, **{name: value})


def test_bad_method_is_named():
    with pytest.raises(ValueError, match="method"):
        solve(torch.cos, COS_Z0, method="broyden-ish")


def test_unknown_keyword_is_an_error():
    with pytest.raises(TypeError, match="window"):
        solve(torch.cos, COS_Z0, window=5)
    with pytest.raises(TypeError):
        Anderson(tau=0.5)


@pytest.mark.parametrize("name", ["m", "lam", "safeguard", "max_weight"])
def test_anderson_settings_are_not_silently_ignored_by_forward(name):
    with pytest.raises(TypeError, match=name):
        solve(torch.cos, COS_Z0, method="forward", **{name: 3.0 if name != "m" else 3})


def test_per_sample_beta_checks():
    with pytest.raises(ValueError, match="beta"):
        solve(torch.cos, COS_Z0, beta=torch.tensor([0.5, 3.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="beta"):
        solve(torch.cos, COS_Z0, beta=torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64))


@pytest.mark.parametrize(
    ("z0", "f", "match"),
    [
        ([0.0, 1.0], torch.cos, "z0 must be a torch.Tensor"),
        (torch.zeros(2, 2, dtype=torch.long), torch.cos, "floating-point"),
        (torch.tensor([[0.0, math.nan]]), torch.cos, "NaN"),
        (torch.zeros(0, 3), torch.cos, "non-empty"),
        (torch.zeros(2, 3), lambda z: z[:, :2], "shape"),
        (torch.zeros(2, 3), lambda z: z.double(), "dtype"),
        (torch.zeros(2, 3), lambda z: z.tolist(), "torch.Tensor"),
    ],
)
def test_bad_inputs_are_named(z0, f, match):
    with pytest.raises(ValueError, match=match):
        solve(f, z0)


@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_step_wise_interface_matches_run(method):
    problem = problems.tanh_layer(12, spectral_radius=0.8, batch=3)
    solver = make_solver(method, tol=1e-9, max_iter=200)
    state = solver.init(problem.f, problem.z0)
    residuals = [state.rel_res.clone()]
    while not solver.done(state):
        solver.step(problem.f, state)
        residuals.append(state.rel_res.clone())
    stepped = solver.result(state)
    ran = solver.run(problem.f, problem.z0)
    assert stepped.nfe == ran.nfe == state.nfe
    torch.testing.assert_close(stepped.z, ran.z, rtol=0, atol=0)
    torch.testing.assert_close(stepped.rel_residuals, ran.rel_residuals, rtol=0, atol=0)
    assert len(residuals) == stepped.n_iter + 1


def test_step_past_max_iter_raises():
    solver = ForwardIteration(max_iter=2, tol=1e-12)
    state = solver.init(torch.cos, COS_Z0)
    solver.step(torch.cos, state)
    solver.step(torch.cos, state)
    assert solver.done(state)
    with pytest.raises(RuntimeError, match="max_iter"):
        solver.step(torch.cos, state)
    assert solver.result(state).status_names == ["max_iter", "max_iter"]


def test_callback_sees_every_step_and_can_stop():
    seen = []

    def callback(state):
        seen.append((state.iteration, state.rel_res.max().item()))
        return state.iteration >= 3

    result = solve(torch.cos, COS_Z0, method="forward", tol=1e-12, max_iter=100, callback=callback)
    assert [it for it, _ in seen] == [0, 1, 2, 3]
    assert result.n_iter == 3
    assert result.status_names == ["stopped", "stopped"]
    assert [value for _, value in seen] == pytest.approx(result.rel_residuals.max(dim=1).values)


def test_result_carries_full_statistics():
    problem = problems.linear_map(40, spectrum="real", radius=0.9, batch=3)
    result = problem.solve(method="anderson", m=4, tol=1e-8, max_iter=200)
    assert isinstance(result, SolverResult)
    steps = result.n_iter
    assert result.nfe == steps + 1
    assert result.rel_residuals.shape == result.abs_residuals.shape == (steps + 1, 3)
    assert result.times.shape == (steps,) and bool((result.times > 0).all())
    assert result.wall_time == pytest.approx(float(result.times.sum()))
    assert result.alpha.shape == (3, 5)
    torch.testing.assert_close(result.alpha.sum(-1), torch.ones(3, dtype=torch.float64))
    assert result.gram_cond.shape == (3,) and bool((result.gram_cond >= 1).all())
    assert result.status.dtype == torch.int8
    assert result.status_names == ["converged"] * 3
    assert result.settings["m"] == 4 and result.settings["tol"] == 1e-8
    assert "anderson" in repr(result) and "converged" in repr(result)
    assert Status.CONVERGED.name.lower() == "converged"


def test_forward_result_has_no_anderson_fields():
    result = solve(torch.cos, COS_Z0, method="forward")
    assert result.alpha is None and result.gram_cond is None
    assert result.method == "forward"


def test_float32_tensors_stay_float32():
    problem = problems.tanh_layer(10, batch=2, dtype=torch.float32)
    result = problem.solve(tol=1e-5)
    assert result.z.dtype == torch.float32 and result.all_converged


@settings(max_examples=25, deadline=None)
@given(
    dim=st.integers(1, 12),
    contraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 10_000),
    m=st.integers(0, 8),
    beta=st.floats(0.3, 1.0),
)
def test_anderson_finds_the_fixed_point_of_any_contraction(dim, contraction, seed, m, beta):
    problem = problems.affine_contraction(contraction, dim=dim, batch=2, seed=seed)
    result = problem.solve(method="anderson", m=m, beta=beta, tol=1e-10, max_iter=3000)
    assert result.all_converged
    assert float(problem.error(result.z).max()) < 1e-7


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_cuda_matches_cpu(method):
    cpu = problems.tanh_layer(64, batch=4, dtype=torch.float64)
    gpu = problems.tanh_layer(64, batch=4, dtype=torch.float64, device="cuda")
    on_cpu = cpu.solve(method=method, tol=1e-10, max_iter=300)
    on_gpu = gpu.solve(method=method, tol=1e-10, max_iter=300)
    assert on_gpu.z.device.type == "cuda" and on_gpu.all_converged
    assert on_gpu.rel_residuals.device.type == "cpu"
    torch.testing.assert_close(on_gpu.z.cpu(), on_cpu.z, rtol=1e-8, atol=1e-10)
    assert abs(on_gpu.nfe - on_cpu.nfe) <= 4  # CUDA checks for the end every 4 steps
