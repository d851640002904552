"""The contractive cell: its convolution-norm bound, its Lipschitz guarantee, its classifier."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from andersonn_lab.deq import ContractiveCell, DEQClassifier
from andersonn_lab.deq.cells import conv_operator_norm
from andersonn_lab.solvers import solve


def _dense_norm(weight: torch.Tensor, size: int, padding_mode: str) -> float:
    """Exact operator norm of a 3×3 convolution on ``size × size`` maps, from its matrix."""
    channels = weight.shape[1]
    basis = torch.eye(channels * size * size, dtype=weight.dtype)
    basis = basis.reshape(-1, channels, size, size)
    if padding_mode == "circular":
        columns = F.conv2d(F.pad(basis, (1, 1, 1, 1), mode="circular"), weight)
    else:
        columns = F.conv2d(basis, weight, padding=1)
    return float(torch.linalg.matrix_norm(columns.flatten(1), ord=2))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_norm_is_the_circular_norm_and_bounds_the_zero_padded_one(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    weight = torch.randn(*shape, 3, 3, generator=gen, dtype=torch.float64)
    grid = 7
    norm = float(conv_operator_norm(weight, grid))
    assert norm == pytest.approx(_dense_norm(weight, grid, "circular"), rel=1e-9)
    zero_padded = _dense_norm(weight, grid - 1, "zeros")
    assert zero_padded <= norm * (1 + 1e-9)
    assert zero_padded > 0.8 * norm  # a bound, but not a loose one


def test_norm_is_differentiable_and_checks_its_input():
    weight = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    conv_operator_norm(weight, 8).backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="k <= 2"):
        conv_operator_norm(weight.detach(), 2)
    with pytest.raises(ValueError, match="expected a"):
        conv_operator_norm(torch.ones(3, 3), 8)


@pytest.mark.parametrize("skip", [0.0, 0.6])
def test_cell_is_a_contraction_however_large_its_weights(skip):
    torch.manual_seed(0)
    cell = ContractiveCell(channels=6, hidden=5, contraction=0.9, skip=skip, weight_std=5.0)
    bound = (0.9 - skip) ** 0.5
    for conv in (cell.conv1, cell.conv2):
        assert float(conv_operator_norm(conv.weight.detach())) == pytest.approx(bound, rel=1e-5)
    x = torch.randn(4, 6, 12, 12)
    z, z2 = torch.randn(2, 4, 6, 12, 12).unbind(0)
    with torch.no_grad():
        ratios = (cell(z, x) - cell(z2, x)).flatten(1).norm(dim=1) / (z - z2).flatten(1).norm(dim=1)
    assert (ratios <= 0.9 + 1e-5).all()
    with torch.no_grad():
        result = solve(
            lambda v: cell(v, x), torch.zeros_like(x), method="forward", tol=1e-6, max_iter=500
        )
    assert result.all_converged


def test_small_weights_are_left_alone_and_gradients_reach_them():
    torch.manual_seed(0)
    cell = ContractiveCell(channels=4, hidden=4, contraction=0.9, weight_std=1e-3)
    original = cell.conv1.parametrizations.weight.original
    torch.testing.assert_close(cell.conv1.weight, original)
    cell(torch.rand(2, 4, 6, 6), torch.rand(2, 4, 6, 6)).sum().backward()
    assert original.grad is not None and original.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"contraction": 1.0}, "contraction must be in"),
        ({"contraction": 0.0}, "contraction must be in"),
        ({"contraction": 0.8, "skip": 0.8}, "skip must be in"),
        ({"skip": -0.1}, "skip must be in"),
        ({"weight_std": 0.0}, "weight_std"),
        ({"grid": 2}, "grid"),
        ({"channels": 0}, "channels"),
    ],
)
def test_cell_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContractiveCell(**kwargs)


def test_classifier_with_contractive_cell_round_trips_and_refuses_weight_norm():
    torch.manual_seed(0)
    model = DEQClassifier(
        3,
        2,
        channels=8,
        hidden=8,
        groups=4,
        pool=2,
        cell="contractive",
        contraction=0.95,
        skip=0.5,
    )
    assert isinstance(model.deq.cell, ContractiveCell)
    assert model.config["cell"] == "contractive" and model.config["skip"] == 0.5
    clone = DEQClassifier.from_config(model.config)
    clone.load_state_dict(model.state_dict())
    images = torch.rand(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(clone(images), model(images))
    with pytest.raises(ValueError, match="weight_norm=True does not apply"):
        DEQClassifier(3, 2, cell="contractive", weight_norm=True)
    with pytest.raises(ValueError, match="cell must be one of"):
        DEQClassifier(3, 2, cell="lstm")


def test_bounded_weights_are_reused_without_grad_until_the_weights_change():
    torch.manual_seed(0)
    model = DEQClassifier(
        3, 2, channels=8, hidden=8, groups=4, pool=2, cell="contractive", weight_std=1.0
    )
    conv = model.deq.cell.conv1
    with torch.no_grad():
        first = conv.weight
        assert conv.weight is first  # not recomputed
        images = torch.rand(3, 3, 8, 8)
        problem = model.fixed_point_problem(images, device=None)
        solved = problem.solve(method="anderson", m=5, tol=1e-6, max_iter=200)
        model.deq.configure(forward_solver={"method": "anderson", "m": 5, "tol": 1e-6})
        torch.testing.assert_close(solved.z, model.features(images), rtol=1e-4, atol=1e-5)
        conv.parametrizations.weight.original.mul_(0.01)  # in place: the cache must notice
        second = conv.weight
    assert second is not first
    assert float(conv_operator_norm(second)) < float(conv_operator_norm(first))
    torch.testing.assert_close(second, conv.weight.detach())  # with grad: same values
    assert conv.weight.requires_grad  # and a graph back to the weights
