"""Solvers as objects: frozen options checked once, typed states, the string adapter."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from andersonn_lab.solvers import (
    SOLVERS,
    Anderson,
    AndersonState,
    ForwardIteration,
    SolverState,
    make_solver,
    problems,
    solve,
    solver_options,
)

COS_Z0 = torch.zeros(2, 3, dtype=torch.float64)


def test_options_are_the_dataclass_fields():
    for cls in SOLVERS.values():
        assert cls.options() == tuple(f.name for f in dataclasses.fields(cls))
    assert set(solver_options("anderson")) == set(solver_options())
    assert set(solver_options()) - set(solver_options("forward")) == {
        "m",
        "lam",
        "safeguard",
        "max_weight",
    }


def test_solvers_are_frozen_values():
    solver = Anderson(m=2, beta=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        solver.m = 3
    assert solver == Anderson(m=2, beta=0.5) != Anderson(m=3, beta=0.5)
    assert dataclasses.replace(solver, m=4).m == 4
    with pytest.raises(ValueError, match="m must be >= 0"):
        dataclasses.replace(solver, m=-1)  # checked again on every copy
    assert make_solver(**solver.as_dict()) == solver


def test_options_are_normalised_when_built():
    solver = Anderson(lam=0, safeguard=2, tol=1)
    assert isinstance(solver.lam, float) and isinstance(solver.safeguard, float)
    assert isinstance(solver.tol, float)


@pytest.mark.parametrize(
    ("method", "options"),
    [("anderson", {"m": 2, "beta": 0.8, "tol": 1e-10}), ("forward", {"tol": 1e-10})],
)
def test_object_and_string_forms_give_identical_results(method, options):
    problem = problems.tanh_layer(15, spectral_radius=0.8, batch=3)
    by_name = solve(problem.f, problem.z0, method=method, max_iter=300, **options)
    solver = SOLVERS[method](max_iter=300, **options)
    by_object = solve(problem.f, problem.z0, solver=solver)
    assert by_object.nfe == by_name.nfe
    torch.testing.assert_close(by_object.z, by_name.z, rtol=0, atol=0)
    torch.testing.assert_close(by_object.rel_residuals, by_name.rel_residuals, rtol=0, atol=0)
    assert by_object.settings == by_name.settings == solver.settings()


def test_solver_object_excludes_string_options():
    with pytest.raises(TypeError, match="tol"):
        solve(torch.cos, COS_Z0, solver=Anderson(), tol=1e-3)
    with pytest.raises(TypeError, match="method"):
        solve(torch.cos, COS_Z0, solver=Anderson(), method="forward")
    with pytest.raises(TypeError, match="FixedPointSolver"):
        solve(torch.cos, COS_Z0, solver="anderson")


def test_unknown_options_are_named_not_swallowed():
    with pytest.raises(TypeError, match="'window', 'tau'"):
        make_solver("anderson", window=3, tau=1.0)
    with pytest.raises(TypeError, match="window"):
        ForwardIteration(window=3)


def test_states_are_typed():
    problem = problems.cosine(dtype=torch.float64)
    state = Anderson(m=3).init(problem.f, problem.z0)
    assert isinstance(state, AndersonState)
    assert state.f_hist.shape[1] == 4 and state.filled == 1 and state.slot == 0
    Anderson(m=3).step(problem.f, state)
    assert state.filled == 2 and state.slot == 1
    assert not hasattr(state, "extra")
    plain = ForwardIteration().init(problem.f, problem.z0)
    assert type(plain) is SolverState
