"""Warnings name the user's line (here: this file), however deep in the package they start."""

from __future__ import annotations

import warnings

import pytest
import torch

from andersonn_lab._warnings import external_stacklevel
from andersonn_lab.datasets import load_task
from andersonn_lab.deq.recipe import default_recipe
from andersonn_lab.solvers import SolverWarning, make_solver, solve
from andersonn_lab.structures import ImageOverflowWarning, from_smiles, node_neighbor_image


def _caught(category: type[Warning], call) -> warnings.WarningMessage:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    matching = [w for w in caught if issubclass(w.category, category)]
    assert matching, [str(w.message) for w in caught]
    return matching[0]


def test_image_overflow_names_the_callers_line():
    graph = from_smiles("CCCCCCCCCC")
    warning = _caught(ImageOverflowWarning, lambda: node_neighbor_image(graph, size=4))
    assert warning.filename == __file__
    assert "dropped" in str(warning.message)


def test_solver_divergence_names_the_callers_line():
    z0 = torch.zeros(2, 3, dtype=torch.float64)
    warning = _caught(
        SolverWarning, lambda: solve(lambda z: z * z + 1.0, z0, method="forward", max_iter=50)
    )
    assert warning.filename == __file__


def test_step_api_divergence_names_the_line_that_asks_for_the_result():
    solver = make_solver("forward", max_iter=50)
    state = solver.init(lambda z: z * z + 1.0, torch.zeros(1, 2, dtype=torch.float64))
    while not solver.done(state):
        solver.step(lambda z: z * z + 1.0, state)
    warning = _caught(SolverWarning, lambda: solver.result(state))
    assert warning.filename == __file__


def test_load_task_cropping_names_the_callers_line(tmp_path):
    """Two package calls deep (load_task → image building), as recipe.load() is three."""
    warning = _caught(
        ImageOverflowWarning, lambda: load_task("crystals", image_size=4, cache_dir=tmp_path)
    )
    assert warning.filename == __file__
    assert "cropped" in str(warning.message)


def test_recipe_load_cropping_names_the_callers_line(tmp_path):
    """Three package calls deep: recipe.load → load_task → the cropping report."""
    recipe = default_recipe("crystals").replace(image_size=4)
    warning = _caught(ImageOverflowWarning, lambda: recipe.load(cache_dir=tmp_path))
    assert warning.filename == __file__


def test_external_stacklevel_stops_at_the_outermost_frame():
    level = external_stacklevel()
    assert level == 1  # this test function is already outside the package
    with pytest.warns(UserWarning) as record:
        warnings.warn("here", stacklevel=level)
    assert record[0].filename == __file__


def test_spectrum_at_a_point_that_is_not_fixed_names_the_callers_line():
    from andersonn_lab.solvers import SpectrumWarning, jacobian_spectrum

    z = torch.ones(1, 3, dtype=torch.float64)
    warning = _caught(
        SpectrumWarning, lambda: jacobian_spectrum(lambda v: 0.5 * v, z, method="dense")
    )
    assert warning.filename == __file__ and "not a fixed point" in str(warning.message)
