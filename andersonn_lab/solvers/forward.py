"""Forward (Picard) iteration with optional damping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from .base import FixedPointSolver, SolverState


@dataclass(frozen=True, kw_only=True)
class ForwardIteration(FixedPointSolver[SolverState]):
    """Plain fixed-point iteration ``z ← (1 − β) z + β f(z)``.

    With ``beta=1`` this is Picard iteration, the way a deep equilibrium model "unrolls"
    its layer. It converges when ``f`` is a contraction, at the rate of its Lipschitz
    constant. Its options are those of :class:`~andersonn_lab.solvers.base.FixedPointSolver`;
    its state is the shared :class:`~andersonn_lab.solvers.base.SolverState`.

    Examples
    --------
    >>> import torch
    >>> from andersonn_lab.solvers import ForwardIteration
    >>> result = ForwardIteration(tol=1e-8, max_iter=200).run(torch.cos, torch.zeros(1, 1))
    >>> round(float(result.z), 6), bool(result.converged)
    (0.739085, True)
    """

    method: ClassVar[str] = "forward"

    def _propose(self, state: SolverState) -> torch.Tensor:
        weight = state.beta * state.active[:, None].to(state.beta.dtype)
        # lerp is exact at both ends: weight 1 gives f(z), weight 0 keeps a stopped sample.
        return torch.lerp(state.z, state.fz, weight)
