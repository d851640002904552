"""A deep equilibrium image classifier for node-neighbour images."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from andersonn_lab.solvers.problems import FixedPointProblem

from .cells import ContractiveCell, ResNetCell
from .layer import DEQLayer

__all__ = ["CELLS", "INITS", "DEQClassifier"]

INITS = ("zeros", "x")
"""Initial states of the fixed-point solve: zeros, or the injection ``x`` itself."""

CELLS = ("resnet", "contractive")
"""Cells of the DEQ: :class:`~andersonn_lab.deq.cells.ResNetCell` (GroupNorm ResNet) or
:class:`~andersonn_lab.deq.cells.ContractiveCell` (Lipschitz constant ≤ ``contraction``)."""


class DEQClassifier(nn.Module):
    """Stem → DEQ with a convolutional cell → pooled linear head → class logits.

    * stem: 3×3 convolution ``in_channels → channels`` and GroupNorm, giving the injection
      ``x``;
    * DEQ: ``z* = f(z*, x)`` with :class:`~andersonn_lab.deq.cells.ResNetCell` (``cell=
      "resnet"``) or :class:`~andersonn_lab.deq.cells.ContractiveCell` (``"contractive"``),
      solved from zeros or from ``x`` (``init``);
    * head: average pooling to ``pool × pool``, flatten, linear layer to ``num_classes``.

    **Whole-structure scalars** (``global_channels = G > 0``): the last ``G`` image channels
    hold one number per structure (density, volume per atom...; the ``"framework"``
    encoding), read at pixel ``(0, 0)``, which always holds an atom. They skip the stem, so
    its per-sample GroupNorm cannot erase their magnitude, and enter twice: a linear map of
    them is added to the injection after the GroupNorm (one bias per channel, so the
    fixed-point solve ``z* = f(z*, x + W g)`` sees them), and they are concatenated to the
    pooled equilibrium features before the linear head.

    Parameters
    ----------
    in_channels:
        Image channels (3 for node-neighbour images).
    num_classes:
        Number of classes.
    channels, hidden, groups, weight_std, weight_norm:
        Cell architecture, see :class:`~andersonn_lab.deq.cells.ResNetCell`; ``groups`` also
        sets the stem's GroupNorm. The contractive cell uses neither ``groups`` nor
        ``weight_norm`` (which it refuses).
    cell:
        One of :data:`CELLS`.
    contraction, skip:
        Lipschitz bound and identity weight of the contractive cell (ignored by the ResNet
        cell).
    init:
        ``"zeros"`` or ``"x"``: where the forward solve starts.
    global_channels:
        Number of trailing image channels that hold whole-structure scalars (0: none; see
        above). Must be smaller than ``in_channels``. :attr:`config` lists it only when it
        is not 0, so configurations and checkpoints of older models stay valid.
    pool:
        Side of the pooled feature map fed to the linear head (keeps coarse row/column
        position, which in a node-neighbour image means atom rank).
    forward_solver, backward_solver, gradient, phantom_steps, phantom_damping:
        Passed to :class:`~andersonn_lab.deq.layer.DEQLayer`.

    Examples
    --------
    >>> model = DEQClassifier(3, 2, channels=8, hidden=8, groups=4, pool=2)
    >>> logits = model(torch.rand(5, 3, 8, 8))
    >>> tuple(logits.shape), model.deq.last_stats.forward.batch_size
    ((5, 2), 5)
    >>> DEQClassifier.from_config(model.config).config == model.config
    True
    >>> with_globals = DEQClassifier(5, 2, channels=8, hidden=8, groups=4, global_channels=2)
    >>> tuple(with_globals(torch.rand(3, 5, 8, 8)).shape)
    (3, 2)
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        *,
        channels: int = 48,
        hidden: int = 64,
        groups: int = 8,
        weight_std: float = 0.01,
        weight_norm: bool = False,
        cell: str = "resnet",
        contraction: float = 0.9,
        skip: float = 0.0,
        init: str = "zeros",
        pool: int = 4,
        global_channels: int = 0,
        forward_solver: Mapping[str, Any] | None = None,
        backward_solver: Mapping[str, Any] | None = None,
        gradient: str = "implicit",
        phantom_steps: int = 5,
        phantom_damping: float = 0.8,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a positive integer, got {pool!r}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        if (
            isinstance(global_channels, bool)
            or not isinstance(global_channels, int)
            or not 0 <= global_channels < in_channels
        ):
            raise ValueError(
                f"global_channels must be an integer from 0 to in_channels - 1 = "
                f"{in_channels - 1}, got {global_channels!r}"
            )
        if cell == "contractive":
            if weight_norm:
                raise ValueError("weight_norm=True does not apply to cell='contractive'")
            module: nn.Module = ContractiveCell(channels, hidden, contraction, skip, weight_std)
        else:
            module = ResNetCell(channels, hidden, groups, weight_std, weight_norm)
        self._arch = {
            "in_channels": in_channels,
            "num_classes": num_classes,
            "channels": channels,
            "hidden": hidden,
            "groups": groups,
            "weight_std": float(weight_std),
            "weight_norm": bool(weight_norm),
            "cell": cell,
            "contraction": float(contraction),
            "skip": float(skip),
            "init": init,
            "pool": pool,
        }
        if global_channels:
            self._arch["global_channels"] = global_channels
        self.n_global = global_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels - global_channels, channels, 3, padding=1, bias=False),
            nn.GroupNorm(groups, channels),
        )
        self.deq = DEQLayer(
            module,
            forward_solver=forward_solver,
            backward_solver=backward_solver,
            gradient=gradient,
            phantom_steps=phantom_steps,
            phantom_damping=phantom_damping,
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(pool),
            nn.Flatten(),
            nn.Linear(channels * pool * pool + global_channels, num_classes),
        )
        self.global_injection = nn.Linear(global_channels, channels) if global_channels else None

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this model (JSON-serialisable), current solvers included."""
        return {
            **self._arch,
            "forward_solver": self.deq.forward_solver,
            "backward_solver": self.deq.backward_solver,
            "gradient": self.deq.gradient,
            "phantom_steps": self.deq.phantom_steps,
            "phantom_damping": self.deq.phantom_damping,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DEQClassifier:
        """Build a model from :attr:`config` (unknown keys raise ValueError)."""
        config = dict(config)
        known = {
            "in_channels",
            "num_classes",
            "channels",
            "hidden",
            "groups",
            "weight_std",
            "weight_norm",
            "cell",
            "contraction",
            "skip",
            "init",
            "pool",
            "global_channels",
            "forward_solver",
            "backward_solver",
            "gradient",
            "phantom_steps",
            "phantom_damping",
        }
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown DEQClassifier config keys: {', '.join(unknown)}")
        return cls(config.pop("in_channels", 3), config.pop("num_classes", 2), **config)

    def global_features(self, images: torch.Tensor) -> torch.Tensor:
        """The whole-structure scalars of each image, ``(B, global_channels)``.

        They are the last ``global_channels`` channels at pixel ``(0, 0)``; ``(B, 0)`` for a
        model without global channels.
        """
        self._check_images(images)
        return images[:, images.shape[1] - self.n_global :, 0, 0]

    def injection(self, images: torch.Tensor) -> torch.Tensor:
        """The injection ``x`` of the fixed-point problem, ``(B, channels, H, W)``.

        The stem applied to the per-atom channels, plus (with global channels) a linear map
        of the whole-structure scalars added to every pixel of each channel.
        """
        self._check_images(images)
        x = self.stem(images[:, : images.shape[1] - self.n_global])
        if self.global_injection is not None:
            x = x + self.global_injection(self.global_features(images))[:, :, None, None]
        return x

    def _check_images(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self._arch["in_channels"]:
            raise ValueError(
                f"expected images of shape (B, {self._arch['in_channels']}, H, W), "
                f"got {tuple(images.shape)}"
            )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The equilibrium state ``z*`` of each image, ``(B, channels, H, W)``."""
        x = self.injection(images)
        z0 = x.detach() if self._arch["init"] == "x" else torch.zeros_like(x)
        return self.deq(x, z0)

    def fixed_point_problem(
        self,
        images: torch.Tensor,
        *,
        device: str | torch.device | None = "auto",
        name: str = "deq",
    ) -> FixedPointProblem:
        """The forward fixed-point problem ``z = f(z, x)`` of some images, for any solver.

        Parameters
        ----------
        images:
            ``(B, C, H, W)`` node-neighbor images.
        device:
            ``"auto"``: CUDA when available, else the model's device; None: the model's device.
            A model on another device is copied there; the model itself is not moved.
        name:
            The problem's name, shown by the convergence explorer.

        Examples
        --------
        >>> model = DEQClassifier(3, 2, channels=8, hidden=8, groups=4)
        >>> problem = model.fixed_point_problem(torch.rand(2, 3, 8, 8), device=None)
        >>> problem.z0.shape, problem.solve(tol=1e-3).all_converged
        (torch.Size([2, 8, 8, 8]), True)
        """
        here = next(self.parameters()).device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else here
        target = torch.device(device) if device is not None else here
        model, cell = self, self.deq.cell
        if target != here:
            model = copy.deepcopy(self).to(target)
            cell = model.deq.cell
        with torch.no_grad():
            x = model.injection(images.to(target))
        z0 = x.clone() if self._arch["init"] == "x" else torch.zeros_like(x)

        def f(z: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return cell(z, x)

        return FixedPointProblem(
            name=name,
            f=f,
            z0=z0,
            params={"device": str(target), **self._arch},
            description=f"DEQ forward solve of {images.shape[0]} image(s) on {target}",
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)`` of a batch of ``(B, C, H, W)`` images."""
        pooled = self.head[1](self.head[0](self.features(images)))
        if self.n_global:
            pooled = torch.cat([pooled, self.global_features(images)], dim=1)
        return self.head[2](pooled)
