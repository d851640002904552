"""Argument checks shared by the solvers: each bad value raises a ValueError that names it."""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

STOP_MODES = ("abs", "rel")


def check_int(name: str, value: object, *, minimum: int) -> int:
    """Return ``value`` as an int, or raise ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(
    name: str,
    value: object,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        left = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {left}{low}, {high}], got {value}")
    return value


def check_beta(beta: float | torch.Tensor, batch: int | None = None) -> float | torch.Tensor:
    """Check the mixing parameter: a number or a per-sample tensor, each in (0, 2]."""
    if isinstance(beta, torch.Tensor):
        if beta.ndim > 1 or (beta.ndim == 1 and batch is not None and beta.shape[0] != batch):
            raise ValueError(
                f"beta as a tensor must be a scalar or have one value per sample "
                f"(shape ({batch},)), got shape {tuple(beta.shape)}"
            )
        if not torch.is_floating_point(beta):
            raise ValueError(f"beta must be a floating-point tensor, got {beta.dtype}")
        if not bool(((beta > 0) & (beta <= 2)).all()):
            raise ValueError(f"beta must lie in (0, 2], got values in [{beta.min()}, {beta.max()}]")
        return beta
    return check_real("beta", beta, low=0.0, high=2.0, low_open=True)


def check_stop_mode(stop_mode: object) -> str:
    """Check that ``stop_mode`` is ``"abs"`` or ``"rel"``."""
    if stop_mode not in STOP_MODES:
        raise ValueError(f"stop_mode must be one of {STOP_MODES}, got {stop_mode!r}")
    return str(stop_mode)
