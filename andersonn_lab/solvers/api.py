"""One-call entry point: :func:`solve`, and :func:`make_solver` to build a solver by name.

The solvers' options are the fields of their dataclasses (:class:`Anderson`,
:class:`ForwardIteration`); everything here derives from them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .anderson import Anderson
from .base import FixedPointSolver, Fn, SolverState
from .forward import ForwardIteration
from .result import SolverResult

SOLVERS: dict[str, type[FixedPointSolver]] = {"anderson": Anderson, "forward": ForwardIteration}
"""Solver classes by method name."""


def solver_options(method: str | None = None) -> tuple[str, ...]:
    """Names of the options of solver ``method``, or of any solver when None.

    Examples
    --------
    >>> solver_options("forward")
    ('beta', 'tol', 'max_iter', 'stop_mode', 'divergence_factor', 'check_every')
    >>> "m" in solver_options()
    True
    """
    if method is not None:
        return _solver_class(method).options()
    names: dict[str, None] = {}
    for cls in SOLVERS.values():
        names.update(dict.fromkeys(cls.options()))
    return tuple(names)


def make_solver(method: str = "anderson", **options: Any) -> FixedPointSolver:
    """Build a solver by name from keyword options; the adapter behind the string API.

    ``make_solver("anderson", m=3)`` is ``Anderson(m=3)``. An option given as None takes
    its default. An unknown option, or one the method does not use, raises a
    ``TypeError`` naming it; a bad value a ``ValueError`` naming it.

    Examples
    --------
    >>> make_solver("anderson", m=3).m
    3
    >>> make_solver("forward", m=3)
    Traceback (most recent call last):
    ...
    TypeError: method='forward' does not use m
    """
    cls = _solver_class(method)
    given = {name: value for name, value in options.items() if value is not None}
    unknown = [name for name in options if name not in solver_options()]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise TypeError(
            f"unknown solver option{plural} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(solver_options())}"
        )
    unused = [name for name in given if name not in cls.options()]
    if unused:
        raise TypeError(f"method={method!r} does not use {', '.join(unused)}")
    return cls(**given)


def solve(
    f: Fn,
    z0: torch.Tensor,
    *,
    solver: FixedPointSolver | None = None,
    method: str | None = None,
    callback: Callable[[SolverState], bool | None] | None = None,
    **options: Any,
) -> SolverResult:
    """Find ``z = f(z)`` for a batch of problems at once.

    Parameters
    ----------
    f:
        Batched map; takes and returns tensors shaped like ``z0``. It is called without
        gradient tracking being switched off: wrap the call in ``torch.no_grad()`` if needed.
    z0:
        ``(B, ...)`` starting point; the first dimension is the batch, any shape after it.
    solver:
        A solver object, e.g. ``Anderson(m=2)`` or ``ForwardIteration(tol=1e-8)``. When it
        is given, ``method`` and ``**options`` must not be.
    method:
        Or the solver by name: ``"anderson"`` (the default) or ``"forward"``, built by
        :func:`make_solver` from ``**options``.
    callback:
        Called with the :class:`~andersonn_lab.solvers.base.SolverState` after every step;
        return True to stop.
    **options:
        The options of the chosen solver class (see :class:`Anderson` and
        :class:`ForwardIteration`): ``m`` (Anderson window, default 5), ``beta`` (mixing in
        ``(0, 2]``, a float or a ``(B,)`` tensor), ``lam`` (relative ridge, ``1e-4``),
        ``tol`` (per-sample stopping tolerance), ``max_iter`` (steps after the evaluation at
        ``z0``), ``stop_mode`` (``"rel"``: ``‖f(z) − z‖ / (‖f(z)‖ + 1e-5)``, or ``"abs"``),
        ``safeguard``, ``max_weight``, ``divergence_factor``, ``check_every``.

    Returns
    -------
    SolverResult
        ``.z`` (best iterate per sample), ``.converged``, ``.nfe``, ``.rel_residuals``,
        ``.abs_residuals``, ``.times``, safeguard counts and, for Anderson, ``.alpha`` and
        ``.gram_cond``.

    Examples
    --------
    >>> import torch
    >>> from andersonn_lab.solvers import Anderson, solve
    >>> z0 = torch.zeros(3, 1, dtype=torch.float64)
    >>> fast = solve(torch.cos, z0, solver=Anderson(m=2, tol=1e-10))
    >>> slow = solve(torch.cos, z0, method="forward", tol=1e-10, max_iter=200)
    >>> fast.all_converged and slow.all_converged, fast.nfe < slow.nfe
    (True, True)
    """
    if solver is None:
        solver = make_solver("anderson" if method is None else method, **options)
    elif not isinstance(solver, FixedPointSolver):
        raise TypeError(f"solver must be a FixedPointSolver, got {type(solver).__name__}")
    elif method is not None or options:
        given = ", ".join(["method"] * (method is not None) + list(options))
        raise TypeError(f"solve() got a solver object and also {given}; give one or the other")
    return solver.run(f, z0, callback=callback)


def _solver_class(method: str) -> type[FixedPointSolver]:
    if method not in SOLVERS:
        raise ValueError(f"method must be one of {sorted(SOLVERS)}, got {method!r}")
    return SOLVERS[method]
