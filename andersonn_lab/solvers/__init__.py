"""Batched fixed-point solvers on torch tensors.

Examples
--------
>>> import torch
>>> from andersonn_lab.solvers import solve
>>> result = solve(torch.cos, torch.zeros(2, 3, dtype=torch.float64), tol=1e-8)
>>> result.all_converged
True
>>> from andersonn_lab.solvers import Anderson
>>> solve(torch.cos, torch.zeros(2, 3), solver=Anderson(m=2, tol=1e-6)).all_converged
True
"""

from . import problems
from .anderson import Anderson, AndersonState
from .api import SOLVERS, make_solver, solve, solver_options
from .base import Evaluation, FixedPointSolver, SolverState
from .forward import ForwardIteration
from .result import SolverResult, SolverWarning, Status
from .spectrum import (
    FixedPointSpectrum,
    SpectrumWarning,
    fit_rate,
    forward_rate,
    jacobian_spectrum,
)

__all__ = [
    "SOLVERS",
    "Anderson",
    "AndersonState",
    "Evaluation",
    "FixedPointSolver",
    "FixedPointSpectrum",
    "ForwardIteration",
    "SolverResult",
    "SolverState",
    "SolverWarning",
    "SpectrumWarning",
    "Status",
    "fit_rate",
    "forward_rate",
    "jacobian_spectrum",
    "make_solver",
    "problems",
    "solve",
    "solver_options",
]
