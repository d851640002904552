"""Cells ``f(z, x)`` for :class:`~andersonn_lab.deq.layer.DEQLayer`.

* :class:`ResNetCell` -- the GroupNorm ResNet-style convolutional cell of the image models.
* :class:`TanhCell` -- a one-layer dense cell ``tanh(W z + U x + b)`` for teaching and tests.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

__all__ = ["ResNetCell", "TanhCell"]


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class ResNetCell(nn.Module):
    """GroupNorm ResNet cell ``f(z, x) = GN(relu(z + GN(x + conv₂(GN(relu(conv₁ z))))))``.

    Two 3×3 convolutions (``channels → hidden → channels``, no bias) with weights drawn from
    ``N(0, weight_std²)``: small weights make the untrained cell strongly contractive, so the
    first fixed-point solves take few iterations.

    Parameters
    ----------
    channels:
        Channels of the state ``z`` and of the injection ``x``.
    hidden:
        Channels between the two convolutions.
    groups:
        GroupNorm groups; must divide ``channels`` and ``hidden``.
    weight_std:
        Standard deviation of the initial convolution weights.
    weight_norm:
        Reparametrise both convolutions with
        :func:`torch.nn.utils.parametrizations.weight_norm`.

    Examples
    --------
    >>> cell = ResNetCell(channels=8, hidden=8, groups=4)
    >>> z = x = torch.zeros(2, 8, 5, 5)
    >>> tuple(cell(z, x).shape)
    (2, 8, 5, 5)
    """

    def __init__(
        self,
        channels: int = 48,
        hidden: int = 64,
        groups: int = 8,
        weight_std: float = 0.01,
        weight_norm: bool = False,
    ) -> None:
        super().__init__()
        channels = _check_positive("channels", channels)
        hidden = _check_positive("hidden", hidden)
        groups = _check_positive("groups", groups)
        if channels % groups or hidden % groups:
            raise ValueError(f"groups={groups} must divide channels={channels} and hidden={hidden}")
        if not weight_std > 0:
            raise ValueError(f"weight_std must be > 0, got {weight_std!r}")
        conv1 = nn.Conv2d(channels, hidden, 3, padding=1, bias=False)
        conv2 = nn.Conv2d(hidden, channels, 3, padding=1, bias=False)
        for conv in (conv1, conv2):
            nn.init.normal_(conv.weight, std=weight_std)
        if weight_norm:
            conv1, conv2 = _weight_norm(conv1), _weight_norm(conv2)
        self.conv1, self.conv2 = conv1, conv2
        self.norm1 = nn.GroupNorm(groups, hidden)
        self.norm2 = nn.GroupNorm(groups, channels)
        self.norm3 = nn.GroupNorm(groups, channels)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(torch.relu(self.conv1(z)))
        return self.norm3(torch.relu(z + self.norm2(x + self.conv2(y))))


class TanhCell(nn.Module):
    """Dense cell ``f(z, x) = tanh(W z + U x + b)`` with ``‖W‖₂`` set to ``contraction``.

    With ``contraction < 1`` the map is a contraction in ``z`` for every ``x``, so the fixed
    point exists, is unique, and forward iteration converges to it.

    Parameters
    ----------
    dim:
        Size of the state ``z``.
    in_dim:
        Size of the injection ``x`` (default ``dim``).
    contraction:
        Spectral norm of the initial ``W``.

    Examples
    --------
    >>> cell = TanhCell(4, 3, contraction=0.5)
    >>> tuple(cell(torch.zeros(2, 4), torch.ones(2, 3)).shape)
    (2, 4)
    """

    def __init__(self, dim: int, in_dim: int | None = None, contraction: float = 0.5) -> None:
        super().__init__()
        dim = _check_positive("dim", dim)
        in_dim = dim if in_dim is None else _check_positive("in_dim", in_dim)
        if not contraction > 0:
            raise ValueError(f"contraction must be > 0, got {contraction!r}")
        self.linear_z = nn.Linear(dim, dim, bias=False)
        self.linear_x = nn.Linear(in_dim, dim)
        with torch.no_grad():
            weight = self.linear_z.weight
            weight.mul_(contraction / torch.linalg.matrix_norm(weight, ord=2))

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear_z(z) + self.linear_x(x))
