"""What a fixed-point solve returns: the answer and how it got there."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import torch


class Status(IntEnum):
    """Per-sample outcome of a solve."""

    RUNNING = 0
    """Still iterating (only seen on a state that is not finished)."""
    CONVERGED = 1
    """The stopping residual fell to ``tol`` or below."""
    MAX_ITER = 2
    """``max_iter`` steps were taken without converging."""
    DIVERGED = 3
    """The residual became non-finite or grew by more than ``divergence_factor``."""
    STOPPED = 4
    """The caller stopped the solve early (a callback returned True, or stepping ended)."""


class SolverWarning(UserWarning):
    """Issued when a solve diverges for some samples."""


@dataclass
class SolverResult:
    """The outcome of a batched fixed-point solve.

    All per-sample tensors live on the CPU; ``z`` stays on the device of ``z0``.

    Attributes
    ----------
    z:
        The best iterate of each sample (lowest stopping residual), shaped like ``z0``.
    converged:
        ``(B,)`` bool, whether each sample reached ``tol``.
    status:
        ``(B,)`` int codes of :class:`Status`; see :attr:`status_names`.
    nfe:
        Number of calls to ``f`` on the batch, the initial evaluation at ``z0`` included.
    n_iter:
        Steps taken (``nfe - 1``).
    n_steps:
        ``(B,)`` steps each sample took before it converged, diverged or the solve ended.
    abs_residuals, rel_residuals:
        ``(n_iter + 1, B)`` residual traces ``‖f(z) − z‖`` and
        ``‖f(z) − z‖ / (‖f(z)‖ + 1e-5)``; row 0 is at ``z0``. After a sample stops, its
        last value is repeated.
    residual:
        ``(B,)`` stopping residual (``stop_mode``) at the returned ``z``.
    times:
        ``(n_iter,)`` wall time of each step in seconds (on CUDA, measured with events).
    n_rejected, n_restarts:
        ``(B,)`` safeguard counts: steps that fell back to the plain step, and window restarts.
    alpha:
        Anderson only: ``(B, m + 1)`` last mixing weights (zero for unused slots).
    gram_cond:
        Anderson only: ``(B,)`` condition number of the last residual Gram matrix over the
        window's valid entries (``inf`` when singular).
    method, settings:
        The solver's name and its settings.
    """

    z: torch.Tensor
    converged: torch.Tensor
    status: torch.Tensor
    nfe: int
    n_iter: int
    n_steps: torch.Tensor
    abs_residuals: torch.Tensor
    rel_residuals: torch.Tensor
    residual: torch.Tensor
    times: torch.Tensor
    n_rejected: torch.Tensor
    n_restarts: torch.Tensor
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    alpha: torch.Tensor | None = None
    gram_cond: torch.Tensor | None = None

    @property
    def status_names(self) -> list[str]:
        """Status of each sample as lower-case names (``"converged"``, ``"max_iter"``, ...)."""
        return [Status(int(code)).name.lower() for code in self.status]

    @property
    def all_converged(self) -> bool:
        """Whether every sample converged."""
        return bool(self.converged.all())

    @property
    def wall_time(self) -> float:
        """Total wall time of the steps, in seconds."""
        return float(self.times.sum())

    def __repr__(self) -> str:
        counts = {name: self.status_names.count(name) for name in dict.fromkeys(self.status_names)}
        worst = float(self.residual.max()) if self.residual.numel() else float("nan")
        return (
            f"SolverResult(method={self.method!r}, batch={self.converged.numel()}, "
            f"nfe={self.nfe}, status={counts}, max_residual={worst:.3g})"
        )
