"""DEQ layer: implicit gradients against unrolled autograd, gradient modes, statistics."""

from __future__ import annotations

import pytest
import torch

from andersonn_lab.deq import ContractiveCell, DEQLayer, ResNetCell, TanhCell

F64 = torch.float64
TIGHT = {"tol": 1e-13, "max_iter": 200, "stop_mode": "abs"}


def _unrolled(cell, x, steps=300):
    """Plain forward iteration from zeros, differentiated by autograd through every step."""
    z = torch.zeros_like(x)
    for _ in range(steps):
        z = cell(z, x)
    return z


def _grads(cell, x, run, weight):
    """Gradients of ``sum(weight * run(x))`` w.r.t. the cell's parameters and ``x``."""
    cell.zero_grad()
    x = x.detach().clone().requires_grad_()
    (run(x) * weight).sum().backward()
    return [p.grad.clone() for p in cell.parameters()] + [x.grad.clone()]


def _max_rel_error(got, want):
    return max(float((a - b).norm() / b.norm()) for a, b in zip(got, want, strict=True))


def _tanh_case():
    torch.manual_seed(0)
    return TanhCell(6, contraction=0.7).to(F64), torch.randn(3, 6, dtype=F64)


def _conv_case():
    torch.manual_seed(1)
    cell = ResNetCell(channels=4, hidden=4, groups=2, weight_std=0.05).to(F64)
    return cell, torch.randn(2, 4, 5, 5, dtype=F64)


def _weight_norm_case():
    torch.manual_seed(1)
    cell = ResNetCell(channels=4, hidden=4, groups=2, weight_std=0.05, weight_norm=True)
    return cell.to(F64), torch.randn(2, 4, 5, 5, dtype=F64)


def _contractive_case():
    torch.manual_seed(2)
    cell = ContractiveCell(channels=4, hidden=4, contraction=0.9, skip=0.5, weight_std=0.3)
    return cell.to(F64), torch.randn(2, 4, 5, 5, dtype=F64)


@pytest.mark.parametrize(
    "make",
    [_tanh_case, _conv_case, _weight_norm_case, _contractive_case],
    ids=["tanh", "resnet-groupnorm", "resnet-weight-norm", "contractive"],
)
@pytest.mark.parametrize("method", ["anderson", "forward"])
def test_implicit_gradient_matches_unrolled_autograd(make, method):
    cell, x = make()
    weight = torch.randn_like(x)
    settings = dict(TIGHT, method=method, max_iter=400)
    layer = DEQLayer(cell, forward_solver=settings, backward_solver=settings)
    implicit = _grads(cell, x, layer, weight)
    stats = layer.last_stats
    assert stats.forward.all_converged and stats.backward.all_converged
    assert stats.forward.method == stats.backward.method == method
    reference = _grads(cell, x, lambda x: _unrolled(cell, x), weight)
    assert _max_rel_error(implicit, reference) < 1e-6


def test_layer_used_twice_and_two_layers_in_one_graph():
    torch.manual_seed(2)
    cell_a, cell_b = TanhCell(5, contraction=0.6).to(F64), TanhCell(5, contraction=0.8).to(F64)
    layer_a = DEQLayer(cell_a, forward_solver=TIGHT, backward_solver=TIGHT)
    layer_b = DEQLayer(cell_b, forward_solver=TIGHT, backward_solver={**TIGHT, "m": 2})
    seen = []
    for layer in (layer_a, layer_b):
        layer.register_stats_hook(lambda lay, phase, stats: seen.append((lay, phase, stats)))
    x = torch.randn(4, 5, dtype=F64)
    weight = torch.randn_like(x)
    params = [*cell_a.parameters(), *cell_b.parameters()]

    def grads(run):
        for p in params:
            p.grad = None
        xx = x.clone().requires_grad_()
        (run(xx) * weight).sum().backward()
        return [p.grad.clone() for p in params] + [xx.grad.clone()]

    # a(x) feeds a second call of a, whose output and b's both reach the loss.
    implicit = grads(lambda x: layer_a(torch.sin(layer_a(x))) * layer_b(x))
    reference = grads(
        lambda x: _unrolled(cell_a, torch.sin(_unrolled(cell_a, x))) * _unrolled(cell_b, x)
    )
    assert _max_rel_error(implicit, reference) < 1e-6
    phases = [(lay is layer_a, phase) for lay, phase, _ in seen]
    assert sorted(phases) == sorted(
        [(True, "forward"), (True, "forward"), (False, "forward")]
        + [(True, "backward"), (True, "backward"), (False, "backward")]
    )
    # Each call's statistics object got its own backward summary.
    a_stats = {id(stats) for lay, _, stats in seen if lay is layer_a}
    assert len(a_stats) == 2
    assert all(stats.backward is not None for _, _, stats in seen)


def test_phantom_gradient_approaches_implicit_and_one_step_is_one_unrolled_step():
    cell, x = _tanh_case()
    weight = torch.randn_like(x)
    layer = DEQLayer(cell, forward_solver=TIGHT, backward_solver=TIGHT)
    implicit = _grads(cell, x, layer, weight)

    layer.configure(gradient="phantom", phantom_steps=150, phantom_damping=1.0)
    phantom = _grads(cell, x, layer, weight)
    assert layer.last_stats.backward is None  # no adjoint solve in phantom mode
    assert _max_rel_error(phantom, implicit) < 1e-8

    layer.configure(phantom_steps=3, phantom_damping=0.5)
    short = _grads(cell, x, layer, weight)
    assert _max_rel_error(short, implicit) > 1e-3

    layer.configure(gradient="one_step")
    one_step = _grads(cell, x, layer, weight)
    z_star = layer.solve(x).z
    by_hand = _grads(cell, x, lambda x: cell(z_star, x), weight)
    assert _max_rel_error(one_step, by_hand) < 1e-12
    assert _max_rel_error(one_step, implicit) > 1e-3


def test_unconverged_solves_are_counted_not_raised():
    cell, x = _tanh_case()
    layer = DEQLayer(
        cell,
        forward_solver={"method": "forward", "tol": 1e-12, "max_iter": 2},
        backward_solver={"tol": 1e-12, "max_iter": 1},
    )
    z = layer(x)
    stats = layer.last_stats
    assert stats.forward.n_unconverged == x.shape[0]
    assert stats.forward.converged.tolist() == [False] * 3
    assert stats.forward.steps.tolist() == [2, 2, 2] and stats.forward.nfe == 3
    assert stats.forward.rel_residuals.shape == (3, 3) and stats.forward.wall_time > 0
    assert stats.backward is None
    z.sum().backward()
    assert stats.backward.n_unconverged == 3 and stats.backward.nfe == 2
    assert stats.summary()["backward"]["max_steps"] == 1


def test_no_grad_returns_the_fixed_point_without_graph_or_backward():
    cell, x = _tanh_case()
    layer = DEQLayer(cell, forward_solver=TIGHT)
    with torch.no_grad():
        z = layer(x)
    assert not z.requires_grad
    torch.testing.assert_close(cell(z, x), z, rtol=0, atol=1e-12)
    z_grad = layer(x)
    assert z_grad.requires_grad
    torch.testing.assert_close(z_grad.detach(), z, rtol=0, atol=1e-12)


def test_hooks_can_be_removed():
    cell, x = _tanh_case()
    layer = DEQLayer(cell)
    seen = []
    handle = layer.register_stats_hook(lambda lay, phase, stats: seen.append(phase))
    layer(x).sum().backward()
    handle.remove()
    layer(x).sum().backward()
    assert seen == ["forward", "backward"]


def test_solver_settings_are_validated_and_kept_separate():
    cell = TanhCell(3)
    with pytest.raises(ValueError, match="forward_solver: unknown setting 'window'"):
        DEQLayer(cell, forward_solver={"window": 5})
    with pytest.raises(ValueError, match="backward_solver: .*does not use m"):
        DEQLayer(cell, backward_solver={"method": "forward", "m": 3})
    with pytest.raises(ValueError, match="forward_solver: .*tol"):
        DEQLayer(cell, forward_solver={"tol": -1.0})
    with pytest.raises(ValueError, match="gradient must be one of"):
        DEQLayer(cell, gradient="exact")
    with pytest.raises(ValueError, match="phantom_damping"):
        DEQLayer(cell, phantom_damping=0.0)
    layer = DEQLayer(
        cell, forward_solver={"method": "forward", "beta": 0.5}, backward_solver={"m": 2}
    )
    assert layer.forward_solver == {"method": "forward", "beta": 0.5, "tol": 1e-4, "max_iter": 30}
    assert layer.backward_solver["method"] == "anderson" and layer.backward_solver["m"] == 2
    layer(torch.ones(2, 3)).sum().backward()
    assert layer.last_stats.forward.method == "forward"
    assert layer.last_stats.backward.method == "anderson"


def _bad_gradient(z: torch.Tensor, value: float) -> torch.Tensor:
    grad = torch.ones_like(z)
    grad[0, 0] = value
    return grad


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_incoming_gradient_passes_through_without_a_solve(value):
    cell, x = _tanh_case()
    layer = DEQLayer(cell, forward_solver=TIGHT, backward_solver=TIGHT)
    x = x.clone().requires_grad_()
    z = layer(x)
    z.backward(_bad_gradient(z, value))  # used to raise "z0 contains NaN or infinite values"
    assert layer.last_stats.backward is None  # no adjoint solve ran
    for grad in [p.grad for p in cell.parameters()] + [x.grad]:
        assert grad is not None and not bool(torch.isfinite(grad).all())
    # A finite gradient afterwards is solved as usual.
    cell.zero_grad()
    layer(x).sum().backward()
    assert layer.last_stats.backward is not None
    assert all(bool(torch.isfinite(p.grad).all()) for p in cell.parameters())


def test_grad_scaler_skips_the_step_after_an_overflow_in_the_implicit_backward():
    torch.manual_seed(0)
    cell = TanhCell(6, contraction=0.7)  # float32, as under autocast
    layer = DEQLayer(cell, forward_solver={"tol": 1e-6}, backward_solver={"tol": 1e-6})
    optimizer = torch.optim.SGD(cell.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    before = {k: v.clone() for k, v in cell.state_dict().items()}
    x = torch.randn(3, 6)
    weight = torch.ones(3, 6)
    weight[0, 0] = 1e10  # 2**100 * 1e10 overflows float32: the incoming gradient is inf
    loss = (layer(x) * weight).sum()
    scaler.scale(loss).backward()
    scaler.step(optimizer)  # must skip the step, not raise
    scaler.update()
    assert scaler.get_scale() < 2.0**100  # the scaler saw the overflow and backed off
    for key, value in cell.state_dict().items():
        assert torch.equal(value, before[key]), key
    # With a sane scale the next step trains.
    optimizer.zero_grad()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    scaler.scale((layer(x) ** 2).sum()).backward()
    scaler.step(optimizer)
    scaler.update()
    assert any(not torch.equal(v, before[k]) for k, v in cell.state_dict().items())


def test_second_derivative_through_implicit_gradient_raises_a_clear_error():
    cell, x = _tanh_case()
    layer = DEQLayer(cell, forward_solver=TIGHT, backward_solver=TIGHT)
    x = x.clone().requires_grad_()
    loss = (layer(x) ** 2).sum()
    # A gradient penalty ‖∂L/∂x‖² needs the backward pass to be differentiable: the
    # implicit one is not, and used to return a silently wrong second derivative.
    with pytest.raises(RuntimeError, match="gradient='phantom'"):
        torch.autograd.grad(loss, x, create_graph=True)
    # The same penalty through phantom gradients is the penalty of the unrolled steps.
    layer.configure(gradient="phantom", phantom_steps=4, phantom_damping=1.0)
    (gx,) = torch.autograd.grad((layer(x) ** 2).sum(), x, create_graph=True)
    cell.zero_grad()
    (gx**2).sum().backward()
    phantom = [p.grad.clone() for p in cell.parameters()]
    z_star = layer.solve(x).z
    cell.zero_grad()
    z = z_star
    for _ in range(4):
        z = cell(z, x)
    (gx_ref,) = torch.autograd.grad((z**2).sum(), x, create_graph=True)
    (gx_ref**2).sum().backward()
    reference = [p.grad.clone() for p in cell.parameters()]
    assert _max_rel_error(phantom, reference) < 1e-12
