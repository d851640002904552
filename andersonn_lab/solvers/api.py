"""One-call entry point: :func:`solve` and :func:`make_solver`."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .anderson import Anderson
from .base import FixedPointSolver, Fn, SolverState
from .forward import ForwardIteration
from .result import SolverResult

SOLVERS: dict[str, type[FixedPointSolver]] = {"anderson": Anderson, "forward": ForwardIteration}
"""Solver classes by method name."""


def make_solver(
    method: str = "anderson",
    *,
    m: int | None = None,
    beta: float | torch.Tensor = 1.0,
    lam: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 50,
    stop_mode: str = "rel",
    safeguard: float | None = None,
    max_weight: float | None = None,
    divergence_factor: float = 1e6,
    check_every: int | None = None,
) -> FixedPointSolver:
    """Build a solver by name; settings a method does not use are an error.

    Anderson's own settings default to ``m=5``, ``lam=1e-4``, ``safeguard=10``,
    ``max_weight=1e4``. See :func:`solve` for the rest.

    Examples
    --------
    >>> make_solver("anderson", m=3).m
    3
    >>> make_solver("forward", m=3)
    Traceback (most recent call last):
    ...
    TypeError: method='forward' does not use m
    """
    if method not in SOLVERS:
        raise ValueError(f"method must be one of {sorted(SOLVERS)}, got {method!r}")
    common = {
        "beta": beta,
        "tol": tol,
        "max_iter": max_iter,
        "stop_mode": stop_mode,
        "divergence_factor": divergence_factor,
        "check_every": check_every,
    }
    given = {"m": m, "lam": lam, "safeguard": safeguard, "max_weight": max_weight}
    options = {name: value for name, value in given.items() if value is not None}
    if method == "forward":
        if options:
            raise TypeError(f"method='forward' does not use {', '.join(options)}")
        return ForwardIteration(**common)
    return Anderson(**options, **common)


def solve(
    f: Fn,
    z0: torch.Tensor,
    *,
    method: str = "anderson",
    m: int | None = None,
    beta: float | torch.Tensor = 1.0,
    lam: float | None = None,
    tol: float = 1e-4,
    max_iter: int = 50,
    stop_mode: str = "rel",
    safeguard: float | None = None,
    max_weight: float | None = None,
    divergence_factor: float = 1e6,
    check_every: int | None = None,
    callback: Callable[[SolverState], bool | None] | None = None,
) -> SolverResult:
    """Find ``z = f(z)`` for a batch of problems at once.

    Parameters
    ----------
    f:
        Batched map; takes and returns tensors shaped like ``z0``. It is called without
        gradient tracking being switched off: wrap the call in ``torch.no_grad()`` if needed.
    z0:
        ``(B, ...)`` starting point; the first dimension is the batch, any shape after it.
    method:
        ``"anderson"`` (default) or ``"forward"``.
    m:
        Anderson window (default 5; 0 is forward iteration).
    beta:
        Mixing / damping in ``(0, 2]``; a float or a ``(B,)`` tensor.
    lam:
        Anderson's relative ridge (default ``1e-4``): the Gram matrix's diagonal, the squared
        residual norms, is scaled by ``1 + lam``.
    tol:
        Stopping tolerance, judged per sample.
    max_iter:
        Largest number of steps (calls to ``f`` after the one at ``z0``).
    stop_mode:
        ``"rel"`` (``‖f(z) − z‖ / (‖f(z)‖ + 1e-5)``) or ``"abs"`` (``‖f(z) − z‖``).
    safeguard, max_weight, divergence_factor, check_every:
        Safeguards and device syncing; see :class:`Anderson` and
        :class:`~andersonn_lab.solvers.base.FixedPointSolver`.
    callback:
        Called with the :class:`~andersonn_lab.solvers.base.SolverState` after every step;
        return True to stop.

    Returns
    -------
    SolverResult
        ``.z`` (best iterate per sample), ``.converged``, ``.nfe``, ``.rel_residuals``,
        ``.abs_residuals``, ``.times``, safeguard counts and, for Anderson, ``.alpha`` and
        ``.gram_cond``.

    Examples
    --------
    >>> import torch
    >>> from andersonn_lab.solvers import solve
    >>> z0 = torch.zeros(3, 1, dtype=torch.float64)
    >>> fast = solve(torch.cos, z0, tol=1e-10)
    >>> slow = solve(torch.cos, z0, method="forward", tol=1e-10, max_iter=200)
    >>> fast.all_converged and slow.all_converged, fast.nfe < slow.nfe
    (True, True)
    """
    solver = make_solver(
        method,
        m=m,
        beta=beta,
        lam=lam,
        tol=tol,
        max_iter=max_iter,
        stop_mode=stop_mode,
        safeguard=safeguard,
        max_weight=max_weight,
        divergence_factor=divergence_factor,
        check_every=check_every,
    )
    return solver.run(f, z0, callback=callback)
