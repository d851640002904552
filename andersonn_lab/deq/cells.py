"""Cells ``f(z, x)`` for :class:`~andersonn_lab.deq.layer.DEQLayer`.

* :class:`ResNetCell` -- the GroupNorm ResNet-style convolutional cell of the image models.
* :class:`ContractiveCell` -- a convolutional cell whose Lipschitz constant in ``z`` is at most
  ``contraction < 1`` by construction, so forward iteration always converges.
* :class:`TanhCell` -- a one-layer dense cell ``tanh(W z + U x + b)`` for teaching and tests.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _weight_norm

__all__ = ["ContractiveCell", "ResNetCell", "TanhCell", "conv_operator_norm"]


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


def conv_operator_norm(weight: torch.Tensor, grid: int = 33) -> torch.Tensor:
    """Spectral norm of a stride-1 convolution on a ``grid × grid`` torus (differentiable).

    A convolution with circular padding is diagonalised by the 2-D Fourier transform: its norm
    is the largest singular value of the ``out × in`` kernel symbol over the ``grid²``
    frequencies (Sedghi, Gupta & Long, ICLR 2019). A "same" convolution with zero padding on a
    map of up to ``grid - k + 2`` rows and columns (``k``: kernel side) is a restriction of it,
    so this is an upper bound of its norm; for larger maps it is the norm up to the sampling
    of the frequencies.

    Parameters
    ----------
    weight:
        Convolution weight ``(out_channels, in_channels, k, k)`` with ``k <= grid``.
    grid:
        Number of frequencies per dimension.

    Examples
    --------
    >>> weight = torch.zeros(1, 1, 3, 3)
    >>> weight[0, 0, 1, 1] = 2.0                      # identity times 2
    >>> round(float(conv_operator_norm(weight)), 6)
    2.0
    """
    if weight.ndim != 4 or max(weight.shape[-2:]) > grid:
        raise ValueError(
            f"expected a (out, in, k, k) weight with k <= {grid}, got {tuple(weight.shape)}"
        )
    symbol = torch.fft.rfft2(weight, s=(grid, grid)).permute(2, 3, 0, 1)
    gram = symbol.mH @ symbol if symbol.shape[-1] <= symbol.shape[-2] else symbol @ symbol.mH
    return torch.linalg.eigvalsh(gram)[..., -1].max().clamp_min(0).sqrt()


class _NormBound(nn.Module):
    """Parametrisation ``W ↦ W · bound / max(‖W‖, bound)`` with the convolution norm ``‖W‖``.

    Without gradient tracking the result is kept until ``W`` changes (its storage or its
    version counter, which every in-place update such as an optimiser step bumps), so
    solves outside the layer (the convergence explorer, traces) do not recompute the norm
    at every evaluation.
    """

    def __init__(self, bound: float, grid: int) -> None:
        super().__init__()
        self.bound, self.grid = float(bound), int(grid)
        self._key: tuple[Any, ...] | None = None
        self._value: torch.Tensor | None = None

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self._scaled(weight)
        key = (weight.data_ptr(), weight._version, weight.device, weight.dtype, weight.shape)
        if key != self._key or self._value is None:
            self._value, self._key = self._scaled(weight), key
        return self._value

    def _scaled(self, weight: torch.Tensor) -> torch.Tensor:
        norm = conv_operator_norm(weight, self.grid)
        return weight * (self.bound / torch.clamp(norm, min=self.bound))


class ContractiveCell(nn.Module):
    """Cell ``f(z, x) = relu(x + s·z + conv₂(relu(conv₁ z + b)))``, contractive in ``z``.

    ``s`` is ``skip``. Each 3×3 convolution is rescaled, whenever its operator norm
    (:func:`conv_operator_norm`) exceeds ``√(contraction − skip)``, to have exactly that norm.
    ReLU is 1-Lipschitz, so
    ``‖f(z, x) − f(z', x)‖ ≤ contraction · ‖z − z'‖`` for every ``x``: the fixed point exists,
    is unique, and forward iteration reaches it from any start, however training moves the
    weights. The closer ``contraction`` is to 1, the more steps forward iteration may need,
    which is where Anderson extrapolation pays off. The skip term plays the part of the
    ResNet cell's residual connection: it keeps the Jacobian near ``skip · I`` on active units,
    so forward iteration contracts slowly while the convolutions stay free to learn. There is
    no normalisation inside the cell (GroupNorm has no Lipschitz bound); the stem normalises
    ``x``.

    Parameters
    ----------
    channels:
        Channels of the state ``z`` and of the injection ``x``.
    hidden:
        Channels between the two convolutions.
    contraction:
        Bound on the Lipschitz constant in ``z``, in ``(0, 1)``.
    skip:
        Weight of the identity term, in ``[0, contraction)``.
    weight_std:
        Standard deviation of the initial convolution weights.
    grid:
        Frequencies per dimension of the norm computation: the bound is exact for feature
        maps of up to ``grid - 1`` rows and columns.

    Examples
    --------
    >>> cell = ContractiveCell(channels=4, hidden=4, contraction=0.9, skip=0.5)
    >>> z, z2, x = torch.rand(3, 1, 4, 8, 8).unbind(0)
    >>> ratio = (cell(z, x) - cell(z2, x)).norm() / (z - z2).norm()
    >>> bool(ratio <= 0.9)
    True
    """

    def __init__(
        self,
        channels: int = 48,
        hidden: int = 64,
        contraction: float = 0.9,
        skip: float = 0.0,
        weight_std: float = 0.01,
        grid: int = 33,
    ) -> None:
        super().__init__()
        channels = _check_positive("channels", channels)
        hidden = _check_positive("hidden", hidden)
        if not 0 < contraction < 1:
            raise ValueError(f"contraction must be in (0, 1), got {contraction!r}")
        if not 0 <= skip < contraction:
            raise ValueError(f"skip must be in [0, contraction={contraction}), got {skip!r}")
        if not weight_std > 0:
            raise ValueError(f"weight_std must be > 0, got {weight_std!r}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 3:
            raise ValueError(f"grid must be an integer >= 3, got {grid!r}")
        self.contraction, self.skip = float(contraction), float(skip)
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=1, bias=False)
        nn.init.zeros_(self.conv1.bias)
        for conv in (self.conv1, self.conv2):
            nn.init.normal_(conv.weight, std=weight_std)
            parametrize.register_parametrization(
                conv, "weight", _NormBound((self.contraction - self.skip) ** 0.5, grid)
            )

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv2(torch.relu(self.conv1(z)))
        return torch.relu(x + branch + self.skip * z if self.skip else x + branch)

    def extra_repr(self) -> str:
        return f"contraction={self.contraction}, skip={self.skip}"


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
