"""Safeguards: divergence, non-finite values, rejected steps, restarts, frozen samples."""

from __future__ import annotations

import warnings

import pytest
import torch

from andersonn_lab.solvers import SolverWarning, problems, solve


def _faulty(f, *, call: int, value: float, sample: int = 0):
    """Wrap ``f`` so that its ``call``-th evaluation returns ``value`` for one sample."""
    count = {"n": 0}

    def wrapped(z: torch.Tensor) -> torch.Tensor:
        count["n"] += 1
        out = f(z)
        if count["n"] == call:
            out = out.clone()
            out[sample] = value
        return out

    return wrapped


@pytest.mark.parametrize(
    ("method", "options"),
    [("forward", {}), ("anderson", {"divergence_factor": 3.0})],
)
def test_diverging_map_ends_with_status_and_warning(method, options):
    # z = z² + 1 has no real fixed point; plain iteration explodes.
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.warns(SolverWarning, match="diverged"):
        result = solve(lambda z: z * z + 1.0, z0, method=method, max_iter=200, **options)
    assert result.status_names == ["diverged", "diverged"]
    assert not result.converged.any()
    assert bool(torch.isfinite(result.z).all())
    assert not torch.isnan(result.rel_residuals).any()
    assert result.nfe < 200  # it stopped early instead of running to max_iter


def test_anderson_solves_an_expanding_linear_map_that_forward_iteration_cannot():
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.warns(SolverWarning):
        forward = solve(lambda z: 3.0 * z + 1.0, z0, method="forward", max_iter=100)
    anderson = solve(lambda z: 3.0 * z + 1.0, z0, method="anderson", tol=1e-12)
    assert set(forward.status_names) == {"diverged"}
    assert anderson.all_converged
    torch.testing.assert_close(anderson.z, torch.full_like(z0, -0.5))


@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_non_finite_values_from_f_never_leak(method):
    # f is finite only at the start: the first step yields NaN and the sample stops there.
    def f(z: torch.Tensor) -> torch.Tensor:
        return torch.where(z == 0, torch.ones_like(z), torch.full_like(z, torch.nan))

    z0 = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.warns(SolverWarning):
        result = solve(f, z0, method=method, max_iter=100)
    assert result.status_names == ["diverged", "diverged"]
    assert torch.equal(result.z, z0)
    assert not torch.isnan(result.rel_residuals).any()
    assert result.nfe == 2


def test_non_finite_start_is_reported_not_raised():
    def f(z: torch.Tensor) -> torch.Tensor:
        out = torch.cos(z)
        out[1] = torch.inf
        return out

    with pytest.warns(SolverWarning):
        result = solve(f, torch.zeros(2, 1, dtype=torch.float64), tol=1e-8)
    assert result.status_names[1] == "diverged"


def test_non_finite_after_an_anderson_step_restarts_the_window():
    problem = problems.linear_map(20, spectrum="clustered", radius=0.9, batch=3)
    clean = problem.solve(method="anderson", m=5, tol=1e-10, max_iter=200)
    f = _faulty(problem.f, call=5, value=float("nan"), sample=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SolverWarning)
        result = solve(f, problem.z0, method="anderson", m=5, tol=1e-10, max_iter=200)
    assert result.all_converged
    assert result.n_restarts.tolist() == [0, 1, 0]
    assert result.n_rejected.tolist() == [0, 1, 0]
    torch.testing.assert_close(result.z[0], clean.z[0], rtol=0, atol=0)
    assert float(problem.error(result.z).max()) < 1e-8


def test_residual_spike_is_rejected_and_solve_recovers():
    problem = problems.tanh_layer(20, spectral_radius=0.8, batch=2)
    f = _faulty(problem.f, call=6, value=1e3, sample=0)
    result = solve(f, problem.z0, method="anderson", m=4, tol=1e-10, max_iter=200)
    assert result.all_converged
    assert result.n_rejected.tolist() == [1, 0]
    assert float(problem.error(result.z).max()) < 1e-8


def test_safeguard_off_accepts_every_step():
    problem = problems.tanh_layer(20, spectral_radius=0.8, batch=2)
    f = _faulty(problem.f, call=6, value=1e3, sample=0)
    result = solve(
        f, problem.z0, method="anderson", m=4, tol=1e-10, max_iter=200, safeguard=float("inf")
    )
    assert result.n_rejected.sum() == 0


def test_singular_least_squares_restarts_instead_of_raising():
    # Residuals of c + r (z − c) are all parallel: with no ridge the Gram matrix is singular.
    problem = problems.geometric_decay(0.9, dim=6)
    result = problem.solve(method="anderson", m=3, lam=0.0, tol=1e-12, max_iter=100)
    assert result.all_converged
    assert float(problem.error(result.z).max()) < 1e-10


def test_best_iterate_is_returned():
    # Forward iteration on a rotation never converges; the residual oscillates and the best
    # iterate is generally not the last.
    problem = problems.rotation(angle=2.5, scale=1.0, dim=4, batch=2)
    result = problem.solve(method="forward", tol=1e-12, max_iter=30)
    best = result.rel_residuals.min(dim=0).values
    torch.testing.assert_close(result.residual, best)
    _, rel = _residuals(problem.f, result.z)
    torch.testing.assert_close(rel, best, rtol=1e-10, atol=0)


def _sample_map(problem, i):
    """``f`` for sample ``i`` alone (the other rows are held at ``z0``)."""

    def f(z: torch.Tensor) -> torch.Tensor:
        full = problem.z0.clone()
        full[i : i + 1] = z
        return problem.f(full)[i : i + 1]

    return f


def _residuals(f, z):
    from andersonn_lab.solvers.base import REL_EPS

    fz = f(z)
    diff = torch.linalg.vector_norm((fz - z).flatten(1), dim=1)
    return diff, diff / (torch.linalg.vector_norm(fz.flatten(1), dim=1) + REL_EPS)


@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_converged_samples_are_frozen(method):
    # Sample 0 starts at its fixed point; sample 1 has a long way to go.
    problem = problems.affine_contraction(0.9, dim=8, batch=2)
    z0 = problem.z0.clone()
    z0[0] = problem.z_star[0]
    result = solve(problem.f, z0, method=method, tol=1e-9, max_iter=500)
    assert result.all_converged
    assert result.n_steps[0] == 0 and result.n_steps[1] > 5
    assert torch.equal(result.z[0], z0[0])
    trace = result.rel_residuals[:, 0]
    assert bool((trace == trace[0]).all())


@pytest.mark.parametrize("method", ["forward", "anderson"])
def test_batched_equals_one_by_one(method):
    problem = problems.tanh_layer(15, spectral_radius=0.9, batch=4, seed=2)
    batched = problem.solve(method=method, tol=1e-10, max_iter=300)
    for i in range(4):
        single = solve(
            _sample_map(problem, i), problem.z0[i : i + 1], method=method, tol=1e-10, max_iter=300
        )
        assert int(single.n_steps[0]) == int(batched.n_steps[i])
        torch.testing.assert_close(single.z[0], batched.z[i], rtol=1e-12, atol=1e-13)


def test_max_weight_cap_restarts():
    problem = problems.linear_map(30, spectrum="disk", radius=0.95, batch=2)
    result = problem.solve(method="anderson", m=8, lam=0.0, max_weight=1.0, tol=1e-8, max_iter=400)
    # Σ|α| > 1 means some negative weight: every such step restarts the window.
    assert int(result.n_restarts.sum()) > 0
    assert result.all_converged
