"""The Jacobian spectrum at a fixed point: against dense eigenvalues and measured rates."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from andersonn_lab.solvers import (
    FixedPointSpectrum,
    SpectrumWarning,
    fit_rate,
    forward_rate,
    jacobian_spectrum,
    problems,
    solve,
)
from andersonn_lab.solvers.spectrum import dense_jacobian, jvp


def _nearest_distance(values: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest distance from a computed eigenvalue to the nearest reference eigenvalue."""
    return float((values[:, None] - reference[None, :]).abs().min(dim=1).values.max())


def _linear_matrix(problem) -> torch.Tensor:
    p = problem.params
    return problems.spectrum_matrix(p["dim"], p["spectrum"], p["radius"], seed=p["seed"])


def _tanh_jacobian(problem) -> torch.Tensor:
    """``diag(1 − f(z*)²) W`` per sample, from the problem's own weight (independent of JVPs)."""
    p = problem.params
    weight = problems.spectrum_matrix(
        p["dim"], "real" if p["symmetric"] else "disk", p["spectral_radius"], seed=p["seed"]
    )
    fz = problem.f(problem.z_star)
    return (1 - fz**2)[:, :, None] * weight


@pytest.mark.parametrize("spectrum", ["clustered", "real", "disk"])
def test_arnoldi_matches_dense_eigvals_on_linear_maps(spectrum):
    problem = problems.linear_map(120, spectrum=spectrum, radius=0.95, seed=2)
    reference = torch.linalg.eigvals(_linear_matrix(problem))
    reference = reference[torch.argsort(reference.abs(), descending=True)]
    result = jacobian_spectrum(problem.f, problem.z_star, k=6, method="arnoldi")
    assert result.method == "arnoldi" and result.eigenvalues.shape == (1, 6)
    values = result.eigenvalues[0]
    assert _nearest_distance(values, reference) < 1e-6
    # they are the six of largest modulus
    torch.testing.assert_close(values.abs(), reference[:6].abs(), rtol=0, atol=1e-6)
    assert abs(float(result.spectral_radius[0]) - float(reference.abs().max())) < 1e-6


@pytest.mark.parametrize(
    "make",
    [
        lambda: problems.linear_map(40, spectrum="disk", radius=0.9, seed=1),
        lambda: problems.affine_contraction(0.8, dim=30, batch=2),
        lambda: problems.rotation(0.7, scale=0.9, dim=6, batch=1),
        lambda: problems.cosine(dim=3, batch=2),
    ],
)
def test_dense_method_matches_eigvals_of_known_jacobian(make):
    problem = make()
    z = problem.z_star
    result = jacobian_spectrum(problem.f, z, method="dense")
    d = z[0].numel()
    assert result.method == "dense" and result.eigenvalues.shape == (z.shape[0], d)
    if problem.name == "cosine":
        jac = torch.diag_embed(-torch.sin(z))
    elif problem.name == "rotation":
        # the map's matrix, read off f at unit vectors around the centre
        jac = (problem.f(z + torch.eye(d, dtype=z.dtype)) - z).T[None]
    else:
        jac = dense_jacobian(problem.f, z)  # checked against the matrix below
        matrix = _linear_matrix(problem) if problem.name == "linear" else None
        if matrix is not None:
            torch.testing.assert_close(jac[0], matrix)
    for b in range(z.shape[0]):
        reference = torch.linalg.eigvals(jac[min(b, jac.shape[0] - 1)])
        assert _nearest_distance(result.eigenvalues[b], reference) < 1e-10


def test_affine_dense_jacobian_is_the_matrix():
    problem = problems.affine_contraction(0.8, dim=12, batch=2, seed=4)
    z = problem.z_star
    eye = torch.eye(12, dtype=z.dtype)
    # an affine map's differences are exact: column j is f(z* + e_j) − f(z*)
    columns = torch.stack([problem.f(z + eye[j]) - problem.f(z) for j in range(12)], dim=-1)
    torch.testing.assert_close(dense_jacobian(problem.f, z), columns)


@pytest.mark.parametrize("symmetric", [True, False])
def test_batched_arnoldi_matches_each_sample_dense(symmetric):
    problem = problems.tanh_layer(80, spectral_radius=0.95, symmetric=symmetric, batch=3)
    jac = _tanh_jacobian(problem)
    result = jacobian_spectrum(problem.f, problem.z_star, k=5, method="arnoldi")
    assert result.eigenvalues.shape == (3, 5)
    radii = []
    for b in range(3):
        reference = torch.linalg.eigvals(jac[b])
        reference = reference[torch.argsort(reference.abs(), descending=True)]
        assert _nearest_distance(result.eigenvalues[b], reference) < 1e-6
        torch.testing.assert_close(
            result.eigenvalues[b].abs(), reference[:5].abs(), rtol=0, atol=1e-6
        )
        radii.append(float(reference.abs()[0]))
    # the samples' Jacobians differ, so the lockstep really kept them apart
    assert max(radii) - min(radii) > 1e-3
    # each product was one batched JVP: fewer than three separate runs would need
    z = problem.z_star

    def alone(b):
        return lambda t: problem.f(torch.cat([z[:b], t, z[b + 1 :]]))[b : b + 1]

    single = [jacobian_spectrum(alone(b), z[b : b + 1], k=5, method="arnoldi") for b in range(3)]
    for b in range(3):
        torch.testing.assert_close(single[b].eigenvalues[0], result.eigenvalues[b])
    assert result.n_jvp == max(s.n_jvp for s in single) < sum(s.n_jvp for s in single)


@pytest.mark.parametrize("spectrum", ["clustered", "real", "disk"])
def test_spectral_radius_predicts_forward_rate_on_linear_maps(spectrum):
    problem = problems.linear_map(100, spectrum=spectrum, radius=0.9, seed=0)
    result = jacobian_spectrum(problem.f, problem.z_star, k=4, method="arnoldi")
    rho = float(result.spectral_radius[0])
    run = solve(problem.f, problem.z0, method="forward", tol=1e-13, max_iter=400)
    measured = fit_rate(run.abs_residuals[:, 0])
    assert abs(measured - rho) / rho < 0.05
    # the same through measure_rate (started near z*)
    near = jacobian_spectrum(problem.f, problem.z_star, k=4, measure_rate=True, rate_steps=300)
    assert float(near.rate_mismatch()[0]) < 0.05


def test_damped_rate_predicted_by_all_eigenvalues():
    problem = problems.linear_map(60, spectrum="real", radius=0.95)
    result = jacobian_spectrum(problem.f, problem.z_star, method="dense")
    beta = 0.5
    predicted = float(result.predicted_rate(beta)[0])
    assert predicted == pytest.approx(0.975, abs=1e-9)  # 1 − β + β · 0.95
    run = solve(problem.f, problem.z0, method="forward", beta=beta, tol=1e-13, max_iter=2000)
    assert abs(fit_rate(run.abs_residuals[:, 0]) - predicted) / predicted < 0.05
    assert float(result.predicted_rate(1.0)[0]) == pytest.approx(0.95, abs=1e-9)


def test_rate_of_a_nonlinear_map_matches_its_jacobian():
    problem = problems.cosine(dim=1, batch=1)
    result = jacobian_spectrum(problem.f, problem.z_star, measure_rate=True)
    slope = float(np.sin(problems.DOTTIE))  # |f'(z*)|
    assert float(result.spectral_radius[0]) == pytest.approx(slope, rel=1e-12)
    assert float(result.observed_rate[0]) == pytest.approx(slope, rel=1e-3)


def test_float32_conv_cell_arnoldi_matches_dense():
    problem = problems.conv_cell(channels=8, hidden=8, size=4, batch=2, weight_std=0.1)
    run = solve(problem.f, problem.z0, method="anderson", m=5, tol=1e-6, max_iter=300)
    assert run.all_converged
    z = run.z
    dense = jacobian_spectrum(problem.f, z, method="dense")
    arnoldi = jacobian_spectrum(problem.f, z, k=4, method="arnoldi", tol=1e-6)
    for b in range(2):
        assert _nearest_distance(arnoldi.eigenvalues[b], dense.eigenvalues[b]) < 1e-4
        assert abs(float(arnoldi.spectral_radius[b] - dense.spectral_radius[b])) < 1e-4


def test_fit_rate():
    assert fit_rate([0.8**n for n in range(40)]) == pytest.approx(0.8, rel=1e-12)
    # a transient and a round-off floor are left out
    history = [10.0, 1.0] + [0.5**n for n in range(30)] + [1e-20] * 20
    assert fit_rate(history, floor=1e-15) == pytest.approx(0.5, rel=1e-9)
    assert np.isnan(fit_rate([1.0, 0.5]))
    assert np.isnan(fit_rate([]))
    with pytest.raises(ValueError, match="one-dimensional"):
        fit_rate(np.ones((3, 3)))


def test_forward_rate_of_geometric_decay():
    problem = problems.geometric_decay(0.6, dim=5, batch=3)
    rates, residuals = forward_rate(problem.f, problem.z_star, steps=30)
    assert residuals.shape == (31, 3)
    torch.testing.assert_close(rates, torch.full((3,), 0.6, dtype=torch.float64), rtol=1e-4, atol=0)


def test_bad_input_is_named():
    problem = problems.linear_map(10)
    z = problem.z_star
    with pytest.raises(ValueError, match="not finite"):
        jacobian_spectrum(problem.f, torch.full_like(z, float("nan")))
    with pytest.raises(ValueError, match=r"batched, shaped \(B, ...\)"):
        jacobian_spectrum(problem.f, z[0])
    with pytest.raises(ValueError, match="shaped like z"):
        jacobian_spectrum(lambda t: t[:, :3], z)
    with pytest.raises(ValueError, match="f\\(z_star\\) is not finite"):
        jacobian_spectrum(lambda t: t / 0.0, z)
    with pytest.raises(ValueError, match="method must be one of"):
        jacobian_spectrum(problem.f, z, method="lanczos")
    with pytest.raises(ValueError, match="k must be"):
        jacobian_spectrum(problem.f, z, k=0)
    with pytest.raises(ValueError, match="k < d - 1"):
        jacobian_spectrum(problem.f, z, k=9, method="arnoldi")
    with pytest.raises(ValueError, match="floating-point"):
        jacobian_spectrum(problem.f, torch.zeros(1, 10, dtype=torch.long))
    with pytest.raises(TypeError, match="callable"):
        jacobian_spectrum(None, z)


def test_warns_away_from_a_fixed_point():
    problem = problems.linear_map(10)
    with pytest.warns(SpectrumWarning, match="not a fixed point"):
        result = jacobian_spectrum(problem.f, problem.z0 + 5.0)
    assert float(result.residual[0]) > 1e-3


def test_failing_product_in_a_batch_raises_and_does_not_hang():
    problem = problems.tanh_layer(60, batch=3)
    z = problem.z_star
    calls = [0]

    def flaky(t: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] > 5:
            raise RuntimeError("boom")
        return problem.f(t)

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"):
        jacobian_spectrum(flaky, z, k=3, method="arnoldi")
    assert threading.active_count() == before


def test_result_type_and_jvp():
    problem = problems.geometric_decay(0.25, dim=3, batch=2)
    result = jacobian_spectrum(problem.f, problem.z_star)
    assert isinstance(result, FixedPointSpectrum)
    assert result.batch == 2 and result.dim == 3 and result.observed_rate is None
    assert torch.isnan(result.rate_mismatch()).all()
    torch.testing.assert_close(result.spectral_radius, torch.full((2,), 0.25, dtype=torch.float64))
    v = torch.ones(2, 3, dtype=torch.float64)
    torch.testing.assert_close(jvp(problem.f, problem.z_star, v), 0.25 * v)
    # a map that leaves autograd is named, not given a silent zero Jacobian
    with pytest.raises(ValueError, match="no derivative"):
        jvp(lambda t: torch.from_numpy(np.cos(t.detach().numpy())), v, v)
    with pytest.raises(ValueError, match="no derivative"):
        jacobian_spectrum(lambda t: torch.from_numpy(np.cos(t.detach().numpy())), 0 * v + 0.739)


def test_arpack_stopping_early_warns_and_leaves_nan():
    problem = problems.linear_map(300, spectrum="clustered", radius=0.95)
    with pytest.warns(SpectrumWarning, match="did not converge"):
        result = jacobian_spectrum(problem.f, problem.z_star, k=20, method="arnoldi", maxiter=1)
    values = result.eigenvalues[0]
    found = ~torch.isnan(values.real)
    assert int(found.sum()) < 20
    assert torch.isnan(values[~found].real).all() and not torch.isnan(values[found].real).any()
    if found.any():  # the found ones come first, and ρ(J) ignores the missing ones
        assert bool(found[: int(found.sum())].all())
        assert float(result.spectral_radius[0]) == pytest.approx(float(values[found].abs().max()))


def test_jvp_from_several_threads_at_once():
    # PyTorch's forward-mode level is process-wide: without the module's lock a second thread
    # fails with "Nested forward mode AD is not supported" (an explorer's spectrum panel and
    # an inspector computing spectra in the same kernel did).
    errors: list[BaseException] = []
    weight = torch.randn(64, 64, dtype=torch.float64) / 8

    def deep(z: torch.Tensor) -> torch.Tensor:
        for _ in range(20):
            z = torch.tanh(z @ weight)
        return z

    def work() -> None:
        try:
            z = torch.randn(4, 64, dtype=torch.float64)
            for _ in range(30):
                jvp(deep, z, torch.ones_like(z))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
