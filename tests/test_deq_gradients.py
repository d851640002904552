"""Gradients as objects: the same numbers as the string form, clear errors for conflicts."""

from __future__ import annotations

import pytest
import torch

from andersonn_lab.deq import (
    DEQLayer,
    ImplicitGradient,
    OneStepGradient,
    PhantomGradient,
    TanhCell,
    make_gradient,
)
from andersonn_lab.solvers import Anderson, ForwardIteration

F64 = torch.float64


def _grads(layer, x):
    layer.cell.zero_grad()
    x = x.detach().clone().requires_grad_()
    (layer(x) ** 2).sum().backward()
    return [p.grad.clone() for p in layer.cell.parameters()] + [x.grad.clone()]


@pytest.mark.parametrize(
    ("by_name", "by_object"),
    [
        (
            {"gradient": "implicit", "backward_solver": {"m": 2, "tol": 1e-10, "max_iter": 80}},
            {"gradient": ImplicitGradient(Anderson(m=2, tol=1e-10, max_iter=80))},
        ),
        (
            {"gradient": "phantom", "phantom_steps": 4, "phantom_damping": 0.6},
            {"gradient": PhantomGradient(steps=4, damping=0.6)},
        ),
        ({"gradient": "one_step"}, {"gradient": OneStepGradient()}),
    ],
    ids=["implicit", "phantom", "one_step"],
)
def test_object_and_string_forms_give_identical_gradients(by_name, by_object):
    torch.manual_seed(0)
    cell = TanhCell(5, contraction=0.7).to(F64)
    x = torch.randn(3, 5, dtype=F64)
    solver = {"tol": 1e-10, "m": 3}
    named = DEQLayer(cell, forward_solver=solver, **by_name)
    objected = DEQLayer(cell, solver=Anderson(m=3, tol=1e-10, max_iter=30), **by_object)
    assert named.gradient == objected.gradient == objected.gradient_rule.name
    for a, b in zip(_grads(named, x), _grads(objected, x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert named.last_stats.summary()["gradient"] == objected.last_stats.summary()["gradient"]


def test_implicit_gradient_solver_is_the_backward_solver():
    layer = DEQLayer(TanhCell(3), gradient=ImplicitGradient(ForwardIteration(tol=1e-6)))
    assert layer.backward_solver["method"] == "forward"
    assert layer.gradient_rule == ImplicitGradient(ForwardIteration(tol=1e-6))
    layer(torch.ones(2, 3)).sum().backward()
    assert layer.last_stats.backward.method == "forward"
    with pytest.raises(TypeError, match="not both"):
        DEQLayer(TanhCell(3), gradient=ImplicitGradient(Anderson()), backward_solver={"m": 2})
    with pytest.raises(TypeError, match="not both"):
        DEQLayer(TanhCell(3), solver=Anderson(), forward_solver={"m": 2})


def test_phantom_settings_survive_a_switch_and_conflicts_are_named():
    layer = DEQLayer(TanhCell(3), gradient=PhantomGradient(steps=3, damping=0.5))
    layer.configure(gradient="implicit").configure(gradient="phantom")
    assert layer.gradient_rule == PhantomGradient(steps=3, damping=0.5)
    assert (layer.phantom_steps, layer.phantom_damping) == (3, 0.5)
    with pytest.raises(TypeError, match="phantom_steps=4 disagrees"):
        layer.configure(gradient=PhantomGradient(steps=3), phantom_steps=4)
    with pytest.raises(ValueError, match="phantom_steps must be >= 1"):
        layer.configure(phantom_steps=0)
    with pytest.raises(ValueError, match="steps must be an integer"):
        PhantomGradient(steps=2.5)


def test_make_gradient_builds_by_name():
    assert make_gradient("one_step") == OneStepGradient()
    assert make_gradient("implicit", solver=Anderson(m=1)).solver == Anderson(m=1)
    with pytest.raises(TypeError):
        make_gradient("phantom", window=3)
    with pytest.raises(TypeError, match="solver"):
        ImplicitGradient({"m": 2})
