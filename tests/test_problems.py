"""The teaching problems are what they say they are."""

from __future__ import annotations

import pytest
import torch

from andersonn_lab.solvers import problems


@pytest.mark.parametrize(
    "make",
    [
        lambda: problems.geometric_decay(0.7),
        lambda: problems.cosine(),
        lambda: problems.affine_contraction(0.9),
        lambda: problems.linear_map(20, spectrum="disk"),
        lambda: problems.tanh_layer(15, spectral_radius=0.95),
        lambda: problems.tanh_layer(15, spectral_radius=1.5, symmetric=True),
        lambda: problems.rotation(angle=0.3, scale=1.1, dim=6),
    ],
)
def test_z_star_is_a_fixed_point(make):
    problem = make()
    z_star = problem.z_star
    assert z_star.shape == problem.z0.shape
    torch.testing.assert_close(problem.f(z_star), z_star, rtol=1e-10, atol=1e-12)
    assert float(problem.error(z_star).max()) == 0.0


@pytest.mark.parametrize("spectrum", problems.SPECTRA)
def test_spectrum_matrix_has_the_requested_radius(spectrum):
    matrix = problems.spectrum_matrix(30, spectrum, 0.8, seed=4)
    eigenvalues = torch.linalg.eigvals(matrix)
    assert float(eigenvalues.abs().max()) == pytest.approx(0.8, rel=1e-9)
    is_real = bool((eigenvalues.imag.abs() < 1e-9).all())
    assert is_real == (spectrum != "disk")


def test_clustered_spectrum_has_few_clusters():
    eigenvalues = torch.linalg.eigvalsh(problems.spectrum_matrix(40, "clustered", 0.9))
    rounded = torch.unique(torch.round(eigenvalues * 10))
    assert len(rounded) <= 5


def test_seeds_reproduce_and_differ():
    a = problems.linear_map(10, seed=1).f(torch.ones(1, 10, dtype=torch.float64))
    b = problems.linear_map(10, seed=1).f(torch.ones(1, 10, dtype=torch.float64))
    c = problems.linear_map(10, seed=2).f(torch.ones(1, 10, dtype=torch.float64))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_conv_cell_is_a_batched_image_map():
    problem = problems.conv_cell(channels=8, hidden=8, size=6, batch=3)
    z = problem.f(problem.z0)
    assert z.shape == (3, 8, 6, 6) and z.dtype == torch.float32
    assert not z.requires_grad
    assert problem.z_star is None
    with pytest.raises(ValueError, match="no known fixed point"):
        problem.error(z)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("linear", {"spectrum": "round"}, "spectrum"),
        ("linear", {"radius": 0.0}, "radius"),
        ("rotation", {"dim": 3}, "dim"),
        ("geometric", {"rate": 1.5}, "rate"),
        ("affine", {"contraction": 1.2}, "contraction"),
        ("nope", {}, "problem"),
    ],
)
def test_bad_problem_parameters_are_named(name, params, match):
    with pytest.raises(ValueError, match=match):
        problems.make_problem(name, **params)


def test_make_problem_knows_every_constructor():
    for name in problems.PROBLEMS:
        assert problems.make_problem(name).name == name


def test_conv_cell_leaves_the_global_random_state_alone():
    before = torch.random.get_rng_state()
    problems.conv_cell(channels=8, hidden=8, size=4, batch=1, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())
