"""Solvers × problems × dtypes: answers, iteration counts and the Krylov property."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from solver_cases import PROBLEM_CASES, SOLVER_CASES, TOL

from andersonn_lab.solvers import Anderson, ForwardIteration, problems, solve


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("problem_name", sorted(PROBLEM_CASES))
@pytest.mark.parametrize("solver_name", sorted(SOLVER_CASES))
def test_answer_matches_direct_solution(solver_name, problem_name, dtype):
    problem = PROBLEM_CASES[problem_name](dtype)
    tol = TOL[dtype]
    result = problem.solve(**SOLVER_CASES[solver_name], tol=tol, max_iter=2000)
    assert result.all_converged, result.status_names
    assert result.z.dtype == dtype and result.z.shape == problem.z0.shape
    # A relative residual r bounds the error by about r / (1 − Lipschitz constant).
    assert float(problem.error(result.z).max()) < 200 * tol
    assert bool((result.residual <= tol).all())


@pytest.mark.parametrize(
    "make",
    [
        lambda: problems.cosine(),
        lambda: problems.linear_map(50, spectrum="clustered", radius=0.95),
        lambda: problems.linear_map(50, spectrum="real", radius=0.95),
        lambda: problems.tanh_layer(40, spectral_radius=0.9, symmetric=True),
    ],
    ids=["cosine", "linear-clustered", "linear-real", "tanh-symmetric"],
)
def test_anderson_needs_fewer_evaluations_than_forward(make):
    problem = make()
    forward = problem.solve(method="forward", tol=1e-10, max_iter=3000)
    anderson = problem.solve(method="anderson", m=5, tol=1e-10, max_iter=3000)
    assert forward.all_converged and anderson.all_converged
    assert anderson.nfe * 2 <= forward.nfe, (anderson.nfe, forward.nfe)


def test_disk_spectrum_helps_less_than_clustered():
    def ratio(spectrum: str) -> float:
        problem = problems.linear_map(100, spectrum=spectrum, radius=0.9)
        forward = problem.solve(method="forward", tol=1e-8, max_iter=3000)
        anderson = problem.solve(method="anderson", m=5, tol=1e-8, max_iter=3000)
        assert forward.all_converged and anderson.all_converged
        return forward.nfe / anderson.nfe

    assert ratio("clustered") > 2 * ratio("disk")


def test_rotation_defeats_forward_iteration_but_not_anderson():
    problem = problems.rotation(angle=1.0, scale=1.0)
    forward = problem.solve(method="forward", tol=1e-8, max_iter=300)
    anderson = problem.solve(method="anderson", m=3, tol=1e-8, max_iter=300)
    assert not forward.converged.any()
    assert forward.status_names == ["max_iter"] * 2
    assert anderson.all_converged and anderson.nfe < 30
    assert float(problem.error(anderson.z).max()) < 1e-6


def test_damping_rescues_forward_iteration_on_a_rotation():
    problem = problems.rotation(angle=1.0, scale=1.0)
    result = problem.solve(method="forward", beta=0.5, tol=1e-8, max_iter=500)
    assert result.all_converged


def test_overrelaxation_solves_geometric_decay_in_one_step():
    # z + β (f(z) − z) with f(z) = c + r (z − c) and β = 1 / (1 − r) lands on c exactly.
    problem = problems.geometric_decay(0.5)
    result = problem.solve(method="forward", beta=2.0, tol=1e-12)
    assert result.all_converged and result.n_iter == 1


@pytest.mark.parametrize("spectrum", ["disk", "clustered", "real"])
@pytest.mark.parametrize("dim", [4, 8])
def test_anderson_with_full_window_converges_within_dim_plus_one_steps(dim, spectrum):
    problem = problems.linear_map(dim, spectrum=spectrum, radius=0.95, batch=2, seed=dim)
    result = problem.solve(method="anderson", m=dim, lam=0.0, tol=1e-9, max_iter=dim + 1)
    assert result.all_converged, result.abs_residuals[:, 0]
    assert int(result.n_steps.max()) <= dim + 1


def _gmres_iterates(matrix: np.ndarray, offset: np.ndarray, steps: int) -> list[np.ndarray]:
    """GMRES on (I − A) x = b from x = 0, by least squares over an orthonormal Krylov basis."""
    system = np.eye(len(offset)) - matrix
    basis = [offset / np.linalg.norm(offset)]
    iterates = [np.zeros_like(offset)]
    for k in range(1, steps + 1):
        q, _ = np.linalg.qr(np.stack(basis, axis=1))
        y, *_ = np.linalg.lstsq(system @ q, offset, rcond=None)
        iterates.append(q @ y)
        basis.append(system @ basis[-1])
        if k == steps:
            break
    return iterates


def test_anderson_iterates_match_gmres_on_a_linear_map():
    # Walker & Ni (2011): undamped Anderson with an unlimited window satisfies
    # z_{k+1} = f(x_k) where x_k is the k-th GMRES iterate for (I − A) x = b.
    dim = 6
    problem = problems.linear_map(dim, spectrum="disk", radius=0.8, batch=1, seed=3)
    matrix = problems.spectrum_matrix(dim, "disk", 0.8, seed=3).numpy()
    offset = problem.f(torch.zeros_like(problem.z0))[0].numpy()
    gmres = _gmres_iterates(matrix, offset, dim - 1)

    solver = Anderson(m=dim, lam=0.0, tol=1e-14, max_iter=dim, stop_mode="abs", safeguard=np.inf)
    state = solver.init(problem.f, problem.z0)
    for k in range(1, dim):
        solver.step(problem.f, state)
        expected = matrix @ gmres[k - 1] + offset
        np.testing.assert_allclose(state.z[0].numpy(), expected, rtol=1e-8, atol=1e-10)


def test_tight_tolerance_on_a_non_symmetric_linear_contraction():
    # Where an absolute ridge made Anderson lose to plain iteration (shared notes), ours wins.
    problem = problems.linear_map(300, spectrum="disk", radius=0.95, seed=1)
    forward = problem.solve(method="forward", tol=1e-10, max_iter=2000)
    anderson = problem.solve(method="anderson", m=10, tol=1e-10, max_iter=2000)
    assert forward.all_converged and anderson.all_converged
    assert anderson.nfe < forward.nfe


def test_m_zero_is_forward_iteration():
    problem = problems.tanh_layer(10, spectral_radius=0.8, batch=2)
    forward = ForwardIteration(beta=0.9, tol=1e-10, max_iter=500).run(problem.f, problem.z0)
    anderson0 = Anderson(m=0, beta=0.9, tol=1e-10, max_iter=500).run(problem.f, problem.z0)
    assert forward.nfe == anderson0.nfe
    torch.testing.assert_close(forward.rel_residuals, anderson0.rel_residuals, rtol=1e-9, atol=0)
    torch.testing.assert_close(forward.z, anderson0.z, rtol=1e-12, atol=1e-14)
    assert anderson0.n_restarts.sum() == 0 and anderson0.n_rejected.sum() == 0


def test_window_larger_than_iteration_count():
    problem = problems.cosine()
    result = problem.solve(method="anderson", m=50, tol=1e-12, max_iter=40)
    assert result.all_converged
    assert result.alpha.shape == (problem.z0.shape[0], 51)


def test_abs_and_rel_stopping():
    problem = problems.affine_contraction(0.8, dim=10)
    for mode, trace in (("abs", "abs_residuals"), ("rel", "rel_residuals")):
        result = problem.solve(method="forward", tol=1e-6, stop_mode=mode, max_iter=500)
        final = getattr(result, trace)[-1]
        assert bool((final <= 1e-6).all()) and bool((getattr(result, trace)[-2] > 1e-6).any())


def test_solve_accepts_any_trailing_shape():
    z0 = torch.zeros(3, 2, 4, 5, dtype=torch.float64)
    result = solve(torch.cos, z0, tol=1e-10)
    assert result.z.shape == z0.shape and result.all_converged
    assert torch.allclose(result.z, torch.full_like(z0, problems.DOTTIE), atol=1e-9)
