"""The implicit (deep equilibrium) layer: ``z* = f(z*, x)`` with a choice of gradients."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.hooks import RemovableHandle

from andersonn_lab.solvers import (
    SOLVERS,
    FixedPointSolver,
    SolverResult,
    make_solver,
    solver_options,
)

from .gradients import (
    DEFAULT_BACKWARD_SOLVER,
    GRADIENTS,
    Gradient,
    ImplicitGradient,
    OneStepGradient,
    PhantomGradient,
    jacobian_frobenius,
)

__all__ = [
    "DEFAULT_BACKWARD_SOLVER",
    "DEFAULT_FORWARD_SOLVER",
    "SOLVER_KEYS",
    "DEQLayer",
    "DEQStats",
    "SolveStats",
    "check_solver_settings",
    "solver_from_settings",
]

SOLVER_KEYS = ("method", *solver_options())
"""Settings a forward or backward solver accepts: ``method`` and the solvers' options (the
fields of :class:`~andersonn_lab.solvers.Anderson` and
:class:`~andersonn_lab.solvers.ForwardIteration`)."""

SolverSpec = FixedPointSolver | Mapping[str, Any]
"""A solver as an object (``Anderson(m=2)``) or as a dict of settings (``{"m": 2}``)."""

DEFAULT_FORWARD_SOLVER: dict[str, Any] = {"method": "anderson", "tol": 1e-4, "max_iter": 30}
"""Forward-solver settings that apply unless given (Anderson's window defaults to 5)."""


def check_solver_settings(
    name: str, settings: Mapping[str, Any] | None, defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate solver settings and fill in ``defaults``; return a new dict.

    Raises
    ------
    ValueError
        For an unknown key, a setting the chosen method does not use, or a bad value; the
        message names ``name`` and the offending key.

    Examples
    --------
    >>> check_solver_settings("forward_solver", {"m": 3}, DEFAULT_FORWARD_SOLVER)["m"]
    3
    >>> check_solver_settings("forward_solver", {"window": 3}, {})
    Traceback (most recent call last):
    ...
    ValueError: forward_solver: unknown setting 'window'; allowed: method, beta, tol, \
max_iter, stop_mode, divergence_factor, check_every, m, lam, safeguard, max_weight
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ValueError(f"{name} must be a dict of solver settings, got {type(settings).__name__}")
    unknown = [key for key in settings if key not in SOLVER_KEYS]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ValueError(
            f"{name}: unknown setting{plural} {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(SOLVER_KEYS)}"
        )
    merged = {**defaults, **settings}
    if "method" in settings and settings["method"] in SOLVERS:
        # Defaults meant for another method do not follow the caller to this one.
        used = solver_options(settings["method"])
        for key in defaults:
            if key not in settings and key != "method" and key not in used:
                merged.pop(key)
    solver_from_settings(name, merged)
    return merged


def solver_from_settings(name: str, settings: Mapping[str, Any]) -> FixedPointSolver:
    """Build the solver that checked ``settings`` describe; errors name ``name``.

    Examples
    --------
    >>> solver_from_settings("backward_solver", {"method": "anderson", "m": 2})
    Anderson(beta=1.0, tol=0.0001, max_iter=50, stop_mode='rel', divergence_factor=1000000.0, \
check_every=None, m=2, lam=0.0001, safeguard=10.0, max_weight=10000.0)
    """
    try:
        return make_solver(**settings)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: {err}") from None


def _solver_and_settings(
    name: str, spec: SolverSpec, defaults: Mapping[str, Any]
) -> tuple[FixedPointSolver, dict[str, Any]]:
    """A solver object and its settings dict, from an object or from settings."""
    if isinstance(spec, FixedPointSolver):
        return spec, spec.as_dict()
    settings = check_solver_settings(name, spec, defaults)
    return solver_from_settings(name, settings), settings


@dataclass(frozen=True)
class SolveStats:
    """Summary of one fixed-point solve inside a DEQ layer (all tensors on the CPU).

    Attributes
    ----------
    method:
        Solver name.
    nfe:
        Calls of the map on the whole batch (forward: cell calls; backward: vector-Jacobian
        products), the initial one included.
    steps:
        ``(B,)`` steps each sample took before it converged or the solve ended.
    converged:
        ``(B,)`` bool.
    residual:
        ``(B,)`` final stopping residual.
    rel_residuals:
        ``(n_iter + 1, B)`` relative residual trace.
    wall_time:
        Seconds spent in the solve.

    Examples
    --------
    >>> from andersonn_lab.solvers import solve
    >>> result = solve(torch.cos, torch.zeros(2, 1, dtype=torch.float64), tol=1e-8)
    >>> stats = SolveStats.from_result(result, 0.01)
    >>> stats.n_unconverged, stats.max_steps > 0
    (0, True)
    """

    method: str
    nfe: int
    steps: torch.Tensor
    converged: torch.Tensor
    residual: torch.Tensor
    rel_residuals: torch.Tensor
    wall_time: float

    @classmethod
    def from_result(cls, result: SolverResult, wall_time: float) -> SolveStats:
        """Summarise a :class:`~andersonn_lab.solvers.SolverResult`."""
        return cls(
            method=result.method,
            nfe=int(result.nfe),
            steps=result.n_steps.clone(),
            converged=result.converged.clone(),
            residual=result.residual.clone(),
            rel_residuals=result.rel_residuals.clone(),
            wall_time=float(wall_time),
        )

    @property
    def batch_size(self) -> int:
        """Number of samples."""
        return int(self.converged.numel())

    @property
    def n_unconverged(self) -> int:
        """Samples that did not reach the tolerance."""
        return int((~self.converged).sum())

    @property
    def all_converged(self) -> bool:
        """Whether every sample converged."""
        return self.n_unconverged == 0

    @property
    def mean_steps(self) -> float:
        """Mean steps per sample."""
        return float(self.steps.double().mean()) if self.steps.numel() else 0.0

    @property
    def max_steps(self) -> int:
        """Most steps any sample took."""
        return int(self.steps.max()) if self.steps.numel() else 0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly scalars: nfe, mean/max steps, unconverged count, residual, time."""
        return {
            "method": self.method,
            "nfe": self.nfe,
            "mean_steps": self.mean_steps,
            "max_steps": self.max_steps,
            "n_unconverged": self.n_unconverged,
            "max_residual": float(self.residual.max()) if self.residual.numel() else 0.0,
            "wall_time": self.wall_time,
        }


@dataclass
class DEQStats:
    """Statistics of one call of a :class:`DEQLayer`.

    ``backward`` is filled in when the implicit backward pass of this call runs (it stays
    None for the ``"phantom"`` and ``"one_step"`` gradients, and when no backward ran).
    """

    gradient: str
    forward: SolveStats
    backward: SolveStats | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary of both solves."""
        return {
            "gradient": self.gradient,
            "forward": self.forward.summary(),
            "backward": None if self.backward is None else self.backward.summary(),
        }


StatsHook = Callable[["DEQLayer", str, DEQStats], None]


class DEQLayer(nn.Module):
    """Deep equilibrium layer: returns the fixed point ``z*`` of ``z = f(z, x)``.

    The forward solve runs without autograd (a solver from :mod:`andersonn_lab.solvers`);
    the result is then attached to the graph according to ``gradient`` (an object from
    :mod:`andersonn_lab.deq.gradients`, or its name):

    * :class:`~andersonn_lab.deq.gradients.ImplicitGradient` (``"implicit"``, default): one
      more call ``f(z*, x)`` with autograd; its backward pass solves the adjoint fixed point
      ``u = J_f(z*)ᵀ u + g`` with the backward solver.
    * :class:`~andersonn_lab.deq.gradients.PhantomGradient` (``"phantom"``): ``steps``
      damped unrolled steps from ``z*`` (factor ``damping``), backpropagated through.
    * :class:`~andersonn_lab.deq.gradients.OneStepGradient` (``"one_step"``): one call
      ``f(z*, x)`` with ``z*`` detached (Jacobian-free).

    Without gradient tracking (``torch.no_grad()``, or nothing requires grad) the layer
    returns ``z*`` itself. A solve that does not converge never raises: it is recorded in
    the statistics.

    Parameters
    ----------
    cell:
        Module computing ``f(z, x)``; must return a tensor shaped like ``z``.
    solver:
        The forward solver as an object, e.g. ``Anderson(m=2, tol=1e-6)`` (taken as it is);
        or give ``forward_solver`` instead.
    forward_solver, backward_solver:
        Solver objects, or solver settings (keys of :data:`SOLVER_KEYS`) merged over
        :data:`DEFAULT_FORWARD_SOLVER` / :data:`DEFAULT_BACKWARD_SOLVER`.
    gradient:
        A gradient object, e.g. ``PhantomGradient(steps=5, damping=0.8)`` or
        ``ImplicitGradient(Anderson(tol=1e-6))`` (whose solver is then the backward
        solver); or its name, ``"implicit"``, ``"phantom"`` or ``"one_step"``.
    phantom_steps, phantom_damping:
        Steps (default 5) and damping (default 0.8) of the phantom gradient, for the string
        form.

    Attributes
    ----------
    last_stats:
        :class:`DEQStats` of the latest call (None before the first); its ``backward``
        field is filled in by the backward pass of that call.
    track_jacobian:
        When True, every call that builds a graph also computes
        :func:`~andersonn_lab.deq.gradients.jacobian_frobenius` at ``z*`` into
        ``last_jacobian`` (a differentiable scalar) for a Jacobian penalty in the loss;
        :func:`~andersonn_lab.deq.train.train` sets it when ``jacobian_penalty > 0``.
    last_jacobian:
        That estimate from the latest call, or None.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> layer = DEQLayer(TanhCell(4), forward_solver={"tol": 1e-6})
    >>> z = layer(torch.randn(3, 4))
    >>> z.sum().backward()
    >>> layer.last_stats.forward.all_converged, layer.last_stats.backward.nfe > 0
    (True, True)
    >>> from andersonn_lab.solvers import Anderson, ForwardIteration
    >>> layer = DEQLayer(TanhCell(4), solver=Anderson(m=2), backward_solver=ForwardIteration())
    >>> layer.solver.m, layer.forward_solver["method"], layer.backward_solver["method"]
    (2, 'anderson', 'forward')
    >>> from andersonn_lab.deq.gradients import PhantomGradient
    >>> layer = DEQLayer(TanhCell(4), gradient=PhantomGradient(steps=3))
    >>> layer.gradient, layer.gradient_rule
    ('phantom', PhantomGradient(steps=3, damping=0.8))
    """

    def __init__(
        self,
        cell: nn.Module,
        *,
        solver: FixedPointSolver | None = None,
        forward_solver: SolverSpec | None = None,
        backward_solver: SolverSpec | None = None,
        gradient: Gradient | str = "implicit",
        phantom_steps: int | None = None,
        phantom_damping: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(cell, nn.Module):
            raise ValueError(f"cell must be a torch.nn.Module, got {type(cell).__name__}")
        self.cell = cell
        self.last_stats: DEQStats | None = None
        self.track_jacobian = False
        self.last_jacobian: torch.Tensor | None = None
        self._stats_hooks: OrderedDict[int, StatsHook] = OrderedDict()
        self._gradient_name = "implicit"
        self._phantom = PhantomGradient()
        implicit_solver = isinstance(gradient, ImplicitGradient) and gradient.solver is not None
        self.configure(
            solver=solver,
            forward_solver={} if forward_solver is None and solver is None else forward_solver,
            backward_solver={}
            if backward_solver is None and not implicit_solver
            else backward_solver,
            gradient=gradient,
            phantom_steps=phantom_steps,
            phantom_damping=phantom_damping,
        )

    def configure(
        self,
        *,
        solver: FixedPointSolver | None = None,
        forward_solver: SolverSpec | None = None,
        backward_solver: SolverSpec | None = None,
        gradient: Gradient | str | None = None,
        phantom_steps: int | None = None,
        phantom_damping: float | None = None,
    ) -> DEQLayer:
        """Change solvers or gradient mode; arguments left as None are kept.

        New solver settings replace the old ones entirely (merged over the defaults); a
        solver object (``solver`` or ``forward_solver``, ``backward_solver``) is used as is.
        The phantom gradient's settings are kept while another gradient is in use.

        Examples
        --------
        >>> from andersonn_lab.deq.cells import TanhCell
        >>> layer = DEQLayer(TanhCell(2)).configure(forward_solver={"method": "forward"})
        >>> layer.forward_solver["method"]
        'forward'
        """
        if solver is not None:
            if forward_solver is not None:
                raise TypeError("give the forward solver as solver or forward_solver, not both")
            if not isinstance(solver, FixedPointSolver):
                raise TypeError(
                    f"solver must be a FixedPointSolver such as Anderson(m=2), got "
                    f"{type(solver).__name__}; give settings as forward_solver"
                )
            forward_solver = solver
        if forward_solver is not None:
            self._forward, self._forward_solver = _solver_and_settings(
                "forward_solver", forward_solver, DEFAULT_FORWARD_SOLVER
            )
        if isinstance(gradient, ImplicitGradient) and gradient.solver is not None:
            if backward_solver is not None:
                raise TypeError(
                    "give the backward solver as backward_solver or as ImplicitGradient(solver), "
                    "not both"
                )
            backward_solver = gradient.solver
        if backward_solver is not None:
            self._backward, self._backward_solver = _solver_and_settings(
                "backward_solver", backward_solver, DEFAULT_BACKWARD_SOLVER
            )
        if isinstance(gradient, PhantomGradient):
            for name, value in (
                ("phantom_steps", phantom_steps),
                ("phantom_damping", phantom_damping),
            ):
                if value is not None and value != getattr(gradient, name.removeprefix("phantom_")):
                    raise TypeError(f"{name}={value!r} disagrees with gradient={gradient!r}")
            self._phantom = gradient
        elif phantom_steps is not None or phantom_damping is not None:
            steps = self._phantom.steps if phantom_steps is None else phantom_steps
            damping = self._phantom.damping if phantom_damping is None else phantom_damping
            try:
                self._phantom = PhantomGradient(steps=steps, damping=damping)
            except ValueError as err:
                raise ValueError(f"phantom_{err}") from None
        if isinstance(gradient, Gradient):
            self._gradient_name = gradient.name
        elif gradient is not None:
            if gradient not in GRADIENTS:
                raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
            self._gradient_name = gradient
        return self

    @property
    def gradient(self) -> str:
        """The gradient's name: ``"implicit"``, ``"phantom"`` or ``"one_step"``."""
        return self._gradient_name

    @property
    def gradient_rule(self) -> Gradient:
        """The gradient object in use (an implicit one carries the backward solver)."""
        if self._gradient_name == "implicit":
            return ImplicitGradient(self._backward)
        if self._gradient_name == "phantom":
            return self._phantom
        return OneStepGradient()

    @property
    def phantom_steps(self) -> int:
        """Steps of the phantom gradient."""
        return self._phantom.steps

    @property
    def phantom_damping(self) -> float:
        """Damping of the phantom gradient."""
        return self._phantom.damping

    @property
    def solver(self) -> FixedPointSolver:
        """The forward solver object."""
        return self._forward

    @property
    def forward_solver(self) -> dict[str, Any]:
        """The forward solver's settings (a copy)."""
        return dict(self._forward_solver)

    @property
    def backward_solver(self) -> dict[str, Any]:
        """The backward solver's settings (a copy)."""
        return dict(self._backward_solver)

    def register_stats_hook(self, hook: StatsHook) -> RemovableHandle:
        """Call ``hook(layer, phase, stats)`` after every solve; ``phase`` is ``"forward"``
        or ``"backward"`` and ``stats`` the call's :class:`DEQStats`.

        Returns a handle whose ``remove()`` unsubscribes.

        Examples
        --------
        >>> from andersonn_lab.deq.cells import TanhCell
        >>> layer, seen = DEQLayer(TanhCell(2)), []
        >>> handle = layer.register_stats_hook(lambda lay, phase, st: seen.append(phase))
        >>> _ = layer(torch.ones(1, 2)).sum().backward()
        >>> handle.remove()
        >>> seen
        ['forward', 'backward']
        """
        handle = RemovableHandle(self._stats_hooks)
        self._stats_hooks[handle.id] = hook
        return handle

    def _emit(self, phase: str, stats: DEQStats) -> None:
        for hook in list(self._stats_hooks.values()):
            hook(self, phase, stats)

    def solve(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> SolverResult:
        """Run the forward solver only (no gradients, no statistics) and return its result.

        Examples
        --------
        >>> from andersonn_lab.deq.cells import TanhCell
        >>> DEQLayer(TanhCell(2)).solve(torch.ones(3, 2)).converged.shape
        torch.Size([3])
        """
        z0 = torch.zeros_like(x) if z0 is None else z0
        cell = self.cell
        device = x.device.type
        if z0.dtype in (torch.float16, torch.bfloat16) or x.dtype in (
            torch.float16,
            torch.bfloat16,
        ):
            # Mixed precision: the solve runs in float32. A cell evaluated in half precision
            # has a residual floor near 1e-3 (bfloat16) or 5e-4 (float16), above the
            # recipes' tolerances, so the solve would stall at its cap; and CUDA refuses to
            # mix half and float32 in the window's products.
            z0, x = z0.float(), x.float()

        def f(z: torch.Tensor) -> torch.Tensor:
            return cell(z, x).to(z.dtype)

        # Parametrised weights (weight norm) are computed once per solve, not once per step.
        # Autocast is off inside the solve (see above); the stem, head and gradients keep it.
        with torch.no_grad(), parametrize.cached(), torch.autocast(device, enabled=False):
            return self._forward.run(f, z0.detach())

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Solve for ``z*`` from ``z0`` (default zeros shaped like ``x``) and attach gradients."""
        start = time.perf_counter()
        result = self.solve(x, z0)
        stats = DEQStats(
            gradient=self.gradient,
            forward=SolveStats.from_result(result, time.perf_counter() - start),
        )
        self.last_stats = stats
        self._emit("forward", stats)
        z_star = result.z
        self.last_jacobian = None
        if not torch.is_grad_enabled() or not (
            x.requires_grad or any(p.requires_grad for p in self.cell.parameters())
        ):
            return z_star
        if self.track_jacobian:
            self.last_jacobian = jacobian_frobenius(self.cell, z_star, x)

        def report(adjoint: SolverResult, wall_time: float) -> None:
            stats.backward = SolveStats.from_result(adjoint, wall_time)
            self._emit("backward", stats)

        return self.gradient_rule.attach(self.cell, z_star, x, report)

    def extra_repr(self) -> str:
        return (
            f"gradient={self.gradient!r}, forward_solver={self._forward_solver}, "
            f"backward_solver={self._backward_solver}"
        )
