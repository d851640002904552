"""How a DEQ layer's output is attached to the autograd graph after the fixed-point solve.

A gradient is an object: :class:`ImplicitGradient` (with its adjoint solver),
:class:`PhantomGradient` (steps, damping) or :class:`OneStepGradient`; its ``attach`` method
wraps one of the functions below. :func:`make_gradient` builds one from its name (the
string form ``DEQLayer(cell, gradient="phantom")``).

Given the equilibrium ``z*`` (found without autograd), each function here returns a tensor
whose value is (close to) ``z*`` and whose backward pass gives one kind of gradient:

* :func:`implicit_attach` -- exact implicit differentiation: the backward pass solves the
  adjoint fixed point ``u = J_f(z*)ᵀ u + g`` with a fixed-point solver, then backpropagates
  ``u`` through one call ``f(z*, x)``.
* :func:`phantom_attach` -- ``k`` damped unrolled steps from ``z*``, backpropagated through
  (Geng et al. 2021, "phantom gradients"); ``k = 1``, damping 1 is :func:`one_step_attach`.
* :func:`one_step_attach` -- Jacobian-free: ``f(z*, x)`` with ``z*`` detached, i.e. the
  inverse Jacobian ``(I − J)⁻¹`` replaced by the identity (Fung et al. 2022).

:func:`jacobian_frobenius` estimates ``‖J_f(z*)‖_F² / d``, the training penalty that keeps a
cell contractive at its equilibrium (Bai, Koltun & Kolter 2021, "Stabilizing equilibrium
models by Jacobian regularization").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from andersonn_lab.solvers import FixedPointSolver, SolverResult, make_solver

__all__ = [
    "DEFAULT_BACKWARD_SOLVER",
    "DOUBLE_BACKWARD_MESSAGE",
    "GRADIENTS",
    "Gradient",
    "ImplicitGradient",
    "OneStepGradient",
    "PhantomGradient",
    "implicit_attach",
    "jacobian_frobenius",
    "make_gradient",
    "one_step_attach",
    "phantom_attach",
]

Cell = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Report = Callable[[SolverResult, float], None]


DOUBLE_BACKWARD_MESSAGE = (
    "gradient='implicit' cannot be differentiated twice: its backward pass solves the "
    "adjoint fixed point without autograd, so a second derivative (create_graph=True, "
    "e.g. a gradient penalty) would be silently wrong. Use gradient='phantom' (unrolled "
    "damped steps from z*, differentiable twice) or 'one_step' for such losses"
)
"""The error raised when a graph through an implicit backward pass is requested."""


class _AdjointSolve(torch.autograd.Function):
    """Identity forward; backward replaces the incoming gradient ``g`` by ``solve(g)``.

    A non-finite ``g`` (an overflow under ``torch.amp.GradScaler``) passes through
    unchanged, without a solve, so that the non-finite values reach the parameters and the
    scaler skips the step. A backward pass with ``create_graph=True`` raises a
    ``RuntimeError`` (:data:`DOUBLE_BACKWARD_MESSAGE`).
    """

    @staticmethod
    def forward(ctx: Any, fz: torch.Tensor, solve: Callable[[torch.Tensor], torch.Tensor]):
        ctx.solve = solve
        return fz.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        if torch.is_grad_enabled():  # only under create_graph=True
            raise RuntimeError(DOUBLE_BACKWARD_MESSAGE)
        if not bool(torch.isfinite(grad).all()):
            return grad.clone(), None
        return ctx.solve(grad), None


def implicit_attach(
    cell: Cell,
    z_star: torch.Tensor,
    x: torch.Tensor,
    solver: Mapping[str, Any],
    report: Report | None = None,
) -> torch.Tensor:
    """Return ``f(z*, x)`` with an implicit-differentiation backward pass.

    The backward pass receives ``g = ∂L/∂z`` and solves ``u = J_f(z*)ᵀ u + g`` (so that
    ``u = (I − J_f)⁻ᵀ g``) with the solver built from ``solver``, starting at ``u = g``;
    each solver step is one vector-Jacobian product through the retained graph of the call
    ``f(z*, x)``. Then ``u`` flows on through that call into the parameters and ``x``.
    A ``g`` with a NaN or infinite entry is passed on as it is, without a solve (and without
    a report), so that ``torch.amp.GradScaler`` sees the overflow and skips the step. The
    backward pass cannot itself be differentiated: ``create_graph=True`` through it raises
    a ``RuntimeError`` that names the gradient modes to use instead.
    Everything the backward pass needs lives in this call's closure, so one layer can be
    used several times in one graph.

    Parameters
    ----------
    cell:
        ``f(z, x)``.
    z_star:
        The equilibrium (no graph).
    x:
        The injection, possibly carrying a graph.
    solver:
        Keyword arguments of :func:`andersonn_lab.solvers.make_solver` for the adjoint solve.
    report:
        Called with the adjoint :class:`~andersonn_lab.solvers.SolverResult` and its wall time
        in seconds after every backward pass.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> cell = TanhCell(3, contraction=0.5).double()
    >>> x = torch.randn(2, 3, dtype=torch.float64)
    >>> z = implicit_attach(cell, torch.zeros(2, 3, dtype=torch.float64), x, {"tol": 1e-8})
    >>> z.sum().backward()
    >>> cell.linear_x.bias.grad.shape
    torch.Size([3])
    """
    z_in = z_star.detach().requires_grad_()
    with torch.enable_grad():
        fz = cell(z_in, x).to(z_star.dtype)
    settings = dict(solver)

    def solve(grad: torch.Tensor) -> torch.Tensor:
        def adjoint(u: torch.Tensor) -> torch.Tensor:
            (vjp,) = torch.autograd.grad(fz, z_in, u, retain_graph=True)
            return vjp + grad

        start = time.perf_counter()
        result = make_solver(**settings).run(adjoint, grad.detach())
        if report is not None:
            report(result, time.perf_counter() - start)
        return result.z

    return _AdjointSolve.apply(fz, solve)


def phantom_attach(
    cell: Cell, z_star: torch.Tensor, x: torch.Tensor, steps: int = 5, damping: float = 0.8
) -> torch.Tensor:
    """Return ``z_k`` after ``k`` damped steps ``z ← (1 − λ) z + λ f(z, x)`` from ``z*``.

    Gradients flow through the ``k`` unrolled steps only (``z*`` is detached); as ``k``
    grows they approach the implicit gradient.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> cell = TanhCell(3)
    >>> tuple(phantom_attach(cell, torch.zeros(2, 3), torch.ones(2, 3), steps=2).shape)
    (2, 3)
    """
    z = z_star.detach()
    for _ in range(steps):
        z = (1.0 - damping) * z + damping * cell(z, x).to(z_star.dtype)
    return z


def one_step_attach(cell: Cell, z_star: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Return ``f(z*, x)`` with ``z*`` detached: the Jacobian-free (one-step) gradient.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> cell = TanhCell(3)
    >>> one_step_attach(cell, torch.zeros(2, 3), torch.ones(2, 3)).requires_grad
    True
    """
    return cell(z_star.detach(), x).to(z_star.dtype)


def jacobian_frobenius(
    cell: Cell, z_star: torch.Tensor, x: torch.Tensor, samples: int = 1
) -> torch.Tensor:
    """Hutchinson estimate of ``‖J_f(z*)‖_F² / d``, averaged over the batch; differentiable.

    ``J_f = ∂f/∂z`` at the equilibrium, ``d`` the size of one sample's state. With
    ``ε ~ N(0, I)``, ``E‖εᵀ J‖² = ‖J‖_F²``, so each sample costs one vector-Jacobian product
    built with ``create_graph=True``: adding the value to the loss pushes the mean squared
    singular value of ``J`` down, which keeps forward and adjoint solves short. A value
    near or above 1 warns that the cell is close to losing contractivity.

    Parameters
    ----------
    cell:
        ``f(z, x)``.
    z_star:
        The equilibrium (its graph, if any, is cut).
    x:
        The injection, possibly carrying a graph.
    samples:
        Random probes ``ε`` averaged.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> _ = torch.manual_seed(0)
    >>> cell = TanhCell(200, contraction=0.5)
    >>> penalty = jacobian_frobenius(cell, torch.zeros(8, 200), torch.zeros(8, 200), samples=4)
    >>> 0.0 < float(penalty.detach()) < 0.25, penalty.requires_grad
    (True, True)
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    z_in = z_star.detach().requires_grad_()
    with torch.enable_grad():
        fz = cell(z_in, x).to(z_star.dtype)
        total = fz.new_zeros(fz.shape[0])
        for _ in range(samples):
            probe = torch.randn_like(fz)
            (vjp,) = torch.autograd.grad(fz, z_in, probe, create_graph=True)
            total = total + vjp.pow(2).flatten(1).sum(1)
    return (total / (samples * fz[0].numel())).mean()


DEFAULT_BACKWARD_SOLVER: dict[str, Any] = {"method": "anderson", "tol": 1e-4, "max_iter": 30}
"""Backward (adjoint) solver settings that apply unless given."""


class Gradient:
    """Base class of the gradients of a DEQ layer: how ``z*`` joins the autograd graph.

    A subclass is a frozen dataclass of the gradient's settings with a ``name`` and an
    :meth:`attach` method.

    Examples
    --------
    >>> [cls.name for cls in (ImplicitGradient, PhantomGradient, OneStepGradient)]
    ['implicit', 'phantom', 'one_step']
    """

    name: ClassVar[str] = "base"

    def attach(
        self, cell: Cell, z_star: torch.Tensor, x: torch.Tensor, report: Report | None = None
    ) -> torch.Tensor:
        """Return ``z*`` (or a tensor close to it) carrying this gradient's backward pass.

        ``report`` is called with the adjoint solve's result and wall time by gradients
        that solve one.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class ImplicitGradient(Gradient):
    """Exact implicit differentiation: the backward pass solves the adjoint fixed point.

    Parameters
    ----------
    solver:
        The adjoint solver, e.g. ``Anderson(tol=1e-6)``; None takes the layer's backward
        solver (by default :data:`DEFAULT_BACKWARD_SOLVER`).

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> from andersonn_lab.solvers import Anderson
    >>> cell = TanhCell(3, contraction=0.5).double()
    >>> x = torch.randn(2, 3, dtype=torch.float64)
    >>> rule = ImplicitGradient(Anderson(m=2, tol=1e-8))
    >>> rule.attach(cell, torch.zeros(2, 3, dtype=torch.float64), x).sum().backward()
    >>> cell.linear_x.bias.grad.shape
    torch.Size([3])
    """

    solver: FixedPointSolver | None = None

    name: ClassVar[str] = "implicit"

    def __post_init__(self) -> None:
        if self.solver is not None and not isinstance(self.solver, FixedPointSolver):
            raise TypeError(
                f"ImplicitGradient(solver=...) takes a solver such as Anderson(tol=1e-6), got "
                f"{type(self.solver).__name__}"
            )

    def attach(
        self, cell: Cell, z_star: torch.Tensor, x: torch.Tensor, report: Report | None = None
    ) -> torch.Tensor:
        """:func:`implicit_attach` with this gradient's adjoint solver."""
        settings = DEFAULT_BACKWARD_SOLVER if self.solver is None else self.solver.as_dict()
        return implicit_attach(cell, z_star, x, settings, report)


@dataclass(frozen=True)
class PhantomGradient(Gradient):
    """Phantom gradient: ``steps`` damped unrolled steps from ``z*``, backpropagated through.

    Parameters
    ----------
    steps:
        Unrolled steps, ``>= 1``.
    damping:
        Damping ``λ`` in ``(0, 1]`` of each step ``z ← (1 − λ) z + λ f(z, x)``.

    Examples
    --------
    >>> PhantomGradient(steps=3, damping=0.5)
    PhantomGradient(steps=3, damping=0.5)
    >>> PhantomGradient(damping=0.0)
    Traceback (most recent call last):
    ...
    ValueError: damping must be in (0, 1], got 0.0
    """

    steps: int = 5
    damping: float = 0.8

    name: ClassVar[str] = "phantom"

    def __post_init__(self) -> None:
        steps, damping = self.steps, self.damping
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not 0.0 < float(damping) <= 1.0:
            raise ValueError(f"damping must be in (0, 1], got {damping!r}")
        object.__setattr__(self, "damping", float(damping))

    def attach(
        self, cell: Cell, z_star: torch.Tensor, x: torch.Tensor, report: Report | None = None
    ) -> torch.Tensor:
        """:func:`phantom_attach` with this gradient's steps and damping."""
        return phantom_attach(cell, z_star, x, steps=self.steps, damping=self.damping)


@dataclass(frozen=True)
class OneStepGradient(Gradient):
    """Jacobian-free gradient: one call ``f(z*, x)`` with ``z*`` detached.

    Examples
    --------
    >>> from andersonn_lab.deq.cells import TanhCell
    >>> OneStepGradient().attach(TanhCell(3), torch.zeros(2, 3), torch.ones(2, 3)).requires_grad
    True
    """

    name: ClassVar[str] = "one_step"

    def attach(
        self, cell: Cell, z_star: torch.Tensor, x: torch.Tensor, report: Report | None = None
    ) -> torch.Tensor:
        """:func:`one_step_attach`."""
        return one_step_attach(cell, z_star, x)


GRADIENT_CLASSES: dict[str, type[Gradient]] = {
    cls.name: cls for cls in (ImplicitGradient, PhantomGradient, OneStepGradient)
}
"""Gradient classes by name."""

GRADIENTS = tuple(GRADIENT_CLASSES)
"""Names of the gradient modes of :class:`~andersonn_lab.deq.layer.DEQLayer`."""


def make_gradient(name: str, **options: Any) -> Gradient:
    """Build a gradient by name: the adapter behind ``gradient="phantom"`` and friends.

    Examples
    --------
    >>> make_gradient("phantom", steps=3)
    PhantomGradient(steps=3, damping=0.8)
    >>> make_gradient("exact")
    Traceback (most recent call last):
    ...
    ValueError: gradient must be one of ('implicit', 'phantom', 'one_step'), got 'exact'
    """
    if name not in GRADIENT_CLASSES:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {name!r}")
    return GRADIENT_CLASSES[name](**options)
