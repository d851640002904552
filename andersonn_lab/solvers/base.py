"""The machinery every fixed-point solver shares: options, state, stopping, statistics.

A solver is a frozen dataclass of options (:class:`FixedPointSolver`); a solve keeps what
changes in a typed state (:class:`SolverState`, extended by each solver that needs more,
e.g. :class:`~andersonn_lab.solvers.anderson.AndersonState`). A solver subclass supplies its
state (:meth:`FixedPointSolver._init_state`), how to propose the next iterate from it
(:meth:`FixedPointSolver._propose`) and what to do once ``f`` has been evaluated there
(:meth:`FixedPointSolver._evaluate`, :meth:`FixedPointSolver._screen`,
:meth:`FixedPointSolver._prepare`). Values move between these hooks only as typed state
fields or as the :class:`Evaluation` one hook returns to the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Generic, TypeVar

import torch

from andersonn_lab._warnings import warn

from .checks import check_beta, check_int, check_real, check_stop_mode
from .result import SolverResult, SolverWarning, Status

REL_EPS = 1e-5
"""Added to ``‖f(z)‖`` in the relative residual, so that a fixed point at 0 is reachable."""

Fn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class SolverState:
    """Everything a solve carries from one step to the next.

    Flat tensors are ``(B, d)`` views of the caller's ``(B, ...)`` tensors. Attributes
    documented here are stable and may be read by callbacks; others are private. Solvers
    that carry more (Anderson's window) use a subclass with typed fields.

    Attributes
    ----------
    z, fz:
        The latest iterate where ``f`` was evaluated, and ``f`` there (``(B, d)``).
    abs_res, rel_res:
        ``(B,)`` residuals at ``z``.
    active:
        ``(B,)`` bool, samples still iterating.
    status:
        ``(B,)`` :class:`Status` codes.
    iteration, nfe:
        Steps taken and calls to ``f`` so far.
    """

    shape: torch.Size
    z: torch.Tensor
    fz: torch.Tensor
    abs_res: torch.Tensor
    rel_res: torch.Tensor
    beta: torch.Tensor
    active: torch.Tensor
    status: torch.Tensor
    best_z: torch.Tensor
    best_crit: torch.Tensor
    abs0: torch.Tensor
    n_steps: torch.Tensor
    n_rejected: torch.Tensor
    n_restarts: torch.Tensor
    iteration: int = 0
    nfe: int = 0
    abs_trace: list[torch.Tensor] = field(default_factory=list)
    rel_trace: list[torch.Tensor] = field(default_factory=list)
    timer: _StepTimer | None = None
    finished: bool = False
    stop_requested: bool = False

    def shared(self) -> dict[str, Any]:
        """The fields of :class:`SolverState` by name, to build a solver's own state from."""
        return {item.name: getattr(self, item.name) for item in fields(SolverState)}


class _StepTimer:
    """Wall time per step: ``perf_counter`` on the CPU, CUDA events on a GPU (no sync)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def durations(self) -> torch.Tensor:
        if self.cuda:
            if self.marks:
                self.marks[-1].synchronize()
            values = [
                a.elapsed_time(b) / 1000.0
                for a, b in zip(self.marks[:-1], self.marks[1:], strict=True)
            ]
        else:
            values = [b - a for a, b in zip(self.marks[:-1], self.marks[1:], strict=True)]
        return torch.tensor(values, dtype=torch.float64)


_ASYNC_ON_CPU = False
"""Testing switch: when True, solves on the CPU take the code path of an accelerator (no
per-step host synchronisation, :meth:`FixedPointSolver.done` asks every 4 steps by
default), so that the CPU test suite covers that path. Step times still come from
``perf_counter``."""


def syncs_cheaply(device: torch.device) -> bool:
    """Whether reading a value of ``device`` on the host is cheap (the CPU), so that the
    solvers may branch on it every step; False on accelerators (and on the CPU while the
    private ``_ASYNC_ON_CPU`` switch is on)."""
    return device.type == "cpu" and not _ASYNC_ON_CPU


def _host_bool(mask: torch.Tensor) -> bool:
    """``bool`` of a one-element tensor: the host waits for the device here."""
    return bool(mask)


def maybe_any(mask: torch.Tensor) -> bool:
    """Whether any element of ``mask`` is set, without a device synchronisation.

    On the CPU this is exact; elsewhere it answers True, so that callers take the general
    path instead of waiting for the device.
    """
    if syncs_cheaply(mask.device):
        return _host_bool(mask.any())
    return True


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation of ``f`` yields: the residual and its norms.

    Returned by :meth:`FixedPointSolver._evaluate` and handed to ``_screen`` and
    ``_prepare`` of the same step; a solver may return a subclass carrying more (Anderson's
    new Gram row).

    Attributes
    ----------
    g:
        ``(B, d)`` residual ``f(z) − z``.
    abs_res, rel_res:
        ``(B,)`` absolute and relative residual norms.

    Examples
    --------
    >>> g = torch.tensor([[3.0, 4.0]])
    >>> Evaluation(g=g, abs_res=g.norm(dim=1), rel_res=g.norm(dim=1) / 5).abs_res
    tensor([5.])
    """

    g: torch.Tensor
    abs_res: torch.Tensor
    rel_res: torch.Tensor


StateT = TypeVar("StateT", bound=SolverState)


@dataclass(frozen=True, kw_only=True)
class FixedPointSolver(Generic[StateT]):
    """Base class of the batched solvers for ``z = f(z)``: a frozen set of options.

    A solver is a small immutable value: its dataclass fields are its options, checked once
    when it is built (a bad value raises a ``ValueError`` naming it, an unknown one a
    ``TypeError``). Solving goes through ``init`` / ``step`` / ``done`` / ``result`` (or
    :meth:`run`), which keep everything that changes in a typed state (:class:`SolverState`
    or a subclass of it); the solver itself never changes.

    A subclass supplies its state and how to move it: :meth:`_init_state`,
    :meth:`_propose`, :meth:`_evaluate`, :meth:`_screen`, :meth:`_prepare` and
    :meth:`_result_extra`.

    Parameters
    ----------
    beta:
        Mixing (damping) in ``(0, 2]``; a float or one value per sample.
    tol:
        Stopping tolerance on the residual chosen by ``stop_mode``, judged per sample.
    max_iter:
        Largest number of steps (each step calls ``f`` once).
    stop_mode:
        ``"rel"``: ``‖f(z) − z‖ / (‖f(z)‖ + 1e-5)``; ``"abs"``: ``‖f(z) − z‖``.
    divergence_factor:
        A sample whose absolute residual exceeds this multiple of its initial residual, or
        becomes non-finite, is marked diverged and stops.
    check_every:
        How often :meth:`done` asks the device whether all samples have stopped. Default:
        every step on the CPU, every 4 steps on a GPU (avoids a host-device sync per step;
        samples that stopped stay frozen in between).

    Examples
    --------
    >>> from andersonn_lab.solvers import ForwardIteration
    >>> solver = ForwardIteration(tol=1e-6)
    >>> solver.options(), solver.settings()["tol"]
    (('beta', 'tol', 'max_iter', 'stop_mode', 'divergence_factor', 'check_every'), 1e-06)
    >>> ForwardIteration(tol=0)
    Traceback (most recent call last):
    ...
    ValueError: tol must lie in (0.0, inf], got 0.0
    """

    method: ClassVar[str] = "base"

    beta: float | torch.Tensor = 1.0
    tol: float = 1e-4
    max_iter: int = 50
    stop_mode: str = "rel"
    divergence_factor: float = 1e6
    check_every: int | None = None

    def __post_init__(self) -> None:
        self._set("beta", check_beta(self.beta))
        self._set("tol", check_real("tol", self.tol, low=0.0, low_open=True))
        self._set("max_iter", check_int("max_iter", self.max_iter, minimum=1))
        self._set("stop_mode", check_stop_mode(self.stop_mode))
        self._set(
            "divergence_factor",
            check_real(
                "divergence_factor", self.divergence_factor, low=1.0, low_open=True, allow_inf=True
            ),
        )
        if self.check_every is not None:
            self._set("check_every", check_int("check_every", self.check_every, minimum=1))

    def _set(self, name: str, value: Any) -> None:
        """Store a checked (normalised) option on the frozen instance; for ``__post_init__``."""
        object.__setattr__(self, name, value)

    # ----------------------------------------------------------------- public API
    @classmethod
    def options(cls) -> tuple[str, ...]:
        """Names of the solver's options: its dataclass fields.

        Examples
        --------
        >>> from andersonn_lab.solvers import Anderson
        >>> Anderson.options()[-4:]
        ('m', 'lam', 'safeguard', 'max_weight')
        """
        return tuple(item.name for item in fields(cls))

    def as_dict(self) -> dict[str, Any]:
        """The solver as keyword arguments of :func:`~andersonn_lab.solvers.make_solver`.

        Examples
        --------
        >>> from andersonn_lab.solvers import Anderson, make_solver
        >>> solver = Anderson(m=2, tol=1e-6)
        >>> solver.as_dict()["method"], make_solver(**solver.as_dict()) == solver
        ('anderson', True)
        """
        return {"method": self.method, **{name: getattr(self, name) for name in self.options()}}

    def settings(self) -> dict[str, Any]:
        """The solver's options by name (the solver's own first, then the shared ones).

        A per-sample ``beta`` is given as a list.

        Examples
        --------
        >>> from andersonn_lab.solvers import Anderson
        >>> list(Anderson(m=2).settings())[:3]
        ['m', 'lam', 'safeguard']
        """
        shared = FixedPointSolver.options()
        names = [name for name in self.options() if name not in shared] + list(shared)
        values = {name: getattr(self, name) for name in names}
        if isinstance(values["beta"], torch.Tensor):
            values["beta"] = values["beta"].tolist()
        return values

    # ----------------------------------------------------------------- public API
    def init(self, f: Fn, z0: torch.Tensor) -> StateT:
        """Evaluate ``f`` at ``z0`` and return the starting state.

        Parameters
        ----------
        f:
            Batched map taking and returning tensors shaped like ``z0``.
        z0:
            ``(B, ...)`` floating-point starting point; the first dimension is the batch.
        """
        if not isinstance(z0, torch.Tensor):
            raise ValueError(f"z0 must be a torch.Tensor, got {type(z0).__name__}")
        if z0.ndim < 1 or z0.shape[0] == 0 or z0.numel() == 0:
            raise ValueError(
                f"z0 must have a non-empty batch dimension, got shape {tuple(z0.shape)}"
            )
        if not torch.is_floating_point(z0):
            raise ValueError(f"z0 must be a floating-point tensor, got {z0.dtype}")
        if not bool(torch.isfinite(z0).all()):
            raise ValueError("z0 contains NaN or infinite values")
        batch = z0.shape[0]
        beta = check_beta(self.beta, batch)
        beta = torch.as_tensor(beta, dtype=z0.dtype, device=z0.device).reshape(-1, 1)
        beta = beta.expand(batch, 1).contiguous()
        z = z0.detach().reshape(batch, -1).clone()
        timer = _StepTimer(z.device)
        fz = self._call(f, z, z0.shape)
        first = _evaluate_plain(z, fz)
        abs_res, rel_res = first.abs_res, first.rel_res
        crit = rel_res if self.stop_mode == "rel" else abs_res
        finite = torch.isfinite(crit)
        converged = finite & (crit <= self.tol)
        status = torch.full((batch,), int(Status.RUNNING), dtype=torch.int8, device=z.device)
        status = torch.where(converged, int(Status.CONVERGED), status)
        status = torch.where(~finite, int(Status.DIVERGED), status)
        zeros = torch.zeros(batch, dtype=torch.long, device=z.device)
        shared = SolverState(
            shape=z0.shape,
            z=z,
            fz=fz,
            abs_res=abs_res,
            rel_res=rel_res,
            beta=beta,
            active=finite & ~converged,
            status=status,
            best_z=z,
            best_crit=torch.where(finite, crit, torch.inf),
            abs0=abs_res,
            n_steps=zeros,
            n_rejected=zeros.clone(),
            n_restarts=zeros.clone(),
            nfe=1,
            timer=timer,
        )
        shared.abs_trace.append(_finite_or_inf(abs_res))
        shared.rel_trace.append(_finite_or_inf(rel_res))
        state = self._init_state(shared, first)
        timer.mark()
        return state

    def step(self, f: Fn, state: StateT) -> StateT:
        """Take one step: propose an iterate, evaluate ``f`` there, update the state."""
        if state.iteration >= self.max_iter:
            raise RuntimeError(f"max_iter={self.max_iter} steps already taken; call result()")
        z = self._propose(state)
        fz = self._call(f, z, state.shape)
        evaluation = self._evaluate(state, z, fz)
        abs_res, rel_res = evaluation.abs_res, evaluation.rel_res
        crit = rel_res if self.stop_mode == "rel" else abs_res
        state.iteration += 1
        state.nfe += 1
        rejected = self._screen(state, evaluation, crit)
        self._bookkeep(state, z, fz, abs_res, rel_res, crit, rejected)
        self._prepare(state, evaluation, rejected)
        state.finished = False
        state.timer.mark()
        return state

    def done(self, state: StateT) -> bool:
        """Whether the solve is over: every sample stopped, ``max_iter`` reached, or stopped."""
        if state.finished or state.stop_requested or state.iteration >= self.max_iter:
            state.finished = True
            return True
        every = self.check_every or (1 if syncs_cheaply(state.z.device) else 4)
        if state.iteration % every == 0 and not _host_bool(state.active.any()):
            state.finished = True
        return state.finished

    def result(self, state: StateT) -> SolverResult:
        """Package the state as a :class:`SolverResult` (warns if samples diverged)."""
        status = state.status.clone()
        running = status == int(Status.RUNNING)
        if state.iteration >= self.max_iter:
            status[running] = int(Status.MAX_ITER)
        else:
            status[running] = int(Status.STOPPED)
        status = status.cpu()
        diverged = int((status == int(Status.DIVERGED)).sum())
        if diverged:
            warn(
                f"{self.method}: {diverged} of {status.numel()} samples diverged (residual "
                f"non-finite or grown over {self.divergence_factor:g}x its initial value); "
                "their best iterate is returned",
                SolverWarning,
            )
        extra = self._result_extra(state)
        return SolverResult(
            z=state.best_z.reshape(state.shape),
            converged=status == int(Status.CONVERGED),
            status=status,
            nfe=state.nfe,
            n_iter=state.iteration,
            n_steps=state.n_steps.cpu(),
            abs_residuals=torch.stack(state.abs_trace).cpu(),
            rel_residuals=torch.stack(state.rel_trace).cpu(),
            residual=state.best_crit.cpu(),
            times=state.timer.durations()[1:],
            n_rejected=state.n_rejected.cpu(),
            n_restarts=state.n_restarts.cpu(),
            method=self.method,
            settings=self.settings(),
            **extra,
        )

    def run(
        self,
        f: Fn,
        z0: torch.Tensor,
        callback: Callable[[StateT], bool | None] | None = None,
    ) -> SolverResult:
        """Solve ``z = f(z)`` from ``z0``: ``init``, then ``step`` until ``done``, then ``result``.

        Parameters
        ----------
        callback:
            Called with the state after the initial evaluation and after every step; return
            True to stop early (the samples still running get status ``"stopped"``).

        Examples
        --------
        >>> import torch
        >>> from andersonn_lab.solvers import Anderson
        >>> Anderson(m=2, tol=1e-8).run(torch.cos, torch.zeros(2, 1)).all_converged
        True
        """
        state = self.init(f, z0)
        if callback is not None and callback(state):
            state.stop_requested = True
        while not self.done(state):
            self.step(f, state)
            if callback is not None and callback(state):
                state.stop_requested = True
        return self.result(state)

    # ------------------------------------------------------------- subclass hooks
    def _init_state(self, shared: SolverState, first: Evaluation) -> StateT:
        """Return the solver's state after the evaluation ``first`` at ``z0``.

        ``shared`` holds everything every solver tracks; a solver with more to carry
        returns its own state subclass built from ``shared.shared()``.
        """
        return shared  # type: ignore[return-value]

    def _propose(self, state: StateT) -> torch.Tensor:
        """Return the next iterate as a new ``(B, d)`` tensor; stopped samples keep ``z``."""
        raise NotImplementedError

    def _evaluate(self, state: StateT, z: torch.Tensor, fz: torch.Tensor) -> Evaluation:
        """Return the residual ``fz − z`` and its norms (subclasses may keep it in history)."""
        return _evaluate_plain(z, fz)

    def _screen(
        self, state: StateT, evaluation: Evaluation, crit: torch.Tensor
    ) -> torch.Tensor | None:
        """Return a ``(B,)`` mask of evaluations to reject, or None."""
        return None

    def _prepare(
        self, state: StateT, evaluation: Evaluation, rejected: torch.Tensor | None
    ) -> None:
        """Get ready for the next :meth:`_propose` (``state`` is already bookkept)."""

    def _result_extra(self, state: StateT) -> dict[str, Any]:
        """Method-specific fields of the :class:`SolverResult`."""
        return {}

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _call(f: Fn, z: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        out = f(z.reshape(shape))
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"f must return a torch.Tensor, got {type(out).__name__}")
        if out.shape != shape:
            raise ValueError(f"f returned shape {tuple(out.shape)} for z of shape {tuple(shape)}")
        if out.dtype != z.dtype:
            raise ValueError(f"f returned dtype {out.dtype} for z of dtype {z.dtype}")
        return out.detach().reshape(z.shape)

    def _bookkeep(
        self,
        state: SolverState,
        z: torch.Tensor,
        fz: torch.Tensor,
        abs_res: torch.Tensor,
        rel_res: torch.Tensor,
        crit: torch.Tensor,
        rejected: torch.Tensor | None,
    ) -> None:
        active = state.active
        finite = torch.isfinite(crit)
        improved = active & finite & (crit < state.best_crit)
        if maybe_any(improved):
            # Iterates are never modified after they are proposed, so the best one can be
            # kept by reference when every sample improved (the common case on the CPU).
            if syncs_cheaply(z.device) and _host_bool(improved.all()):
                state.best_z = z
            else:
                state.best_z = torch.where(improved[:, None], z, state.best_z)
            state.best_crit = torch.where(improved, crit, state.best_crit)
        converged = active & finite & (crit <= self.tol)
        blown = ~finite | (abs_res > self.divergence_factor * state.abs0)
        if rejected is not None:
            blown = blown & ~rejected
        diverged = active & ~converged & blown
        state.n_steps = state.n_steps + active.long()
        state.status = torch.where(converged, int(Status.CONVERGED), state.status)
        state.status = torch.where(diverged, int(Status.DIVERGED), state.status)
        state.active = active & ~converged & ~diverged
        abs_kept = torch.where(active, _finite_or_inf(abs_res), state.abs_trace[-1])
        rel_kept = torch.where(active, _finite_or_inf(rel_res), state.rel_trace[-1])
        state.abs_trace.append(abs_kept)
        state.rel_trace.append(rel_kept)
        state.z, state.fz, state.abs_res, state.rel_res = z, fz, abs_res, rel_res


def _evaluate_plain(z: torch.Tensor, fz: torch.Tensor) -> Evaluation:
    """The residual ``fz − z`` and its absolute and relative norms per sample."""
    g = fz - z
    abs_res = torch.linalg.vector_norm(g, dim=1)
    rel_res = abs_res / (torch.linalg.vector_norm(fz, dim=1) + REL_EPS)
    return Evaluation(g=g, abs_res=abs_res, rel_res=rel_res)


def _finite_or_inf(x: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(x, nan=torch.inf)
