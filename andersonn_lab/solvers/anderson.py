"""Anderson extrapolation (type II) with an incrementally updated residual Gram matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .base import REL_EPS, Evaluation, FixedPointSolver, SolverState, maybe_any
from .checks import check_int, check_real


@dataclass(kw_only=True)
class AndersonState(SolverState):
    """The state of an Anderson solve: the shared :class:`SolverState` plus the window.

    Attributes
    ----------
    f_hist, g_hist:
        ``(B, m + 1, d)`` ring buffers of ``f(z_i)`` and the residuals ``g_i``.
    gram:
        ``(B, m + 1, m + 1)`` float64 Gram matrix of the residuals in the window.
    valid:
        ``(B, m + 1)`` bool, the slots each sample may mix.
    slot, filled:
        Ring-buffer slot of the latest evaluation, and how many slots hold one.
    base_slot, base_res:
        ``(B,)`` slot and absolute residual of the last accepted iterate, the one a
        rejected Anderson step falls back to.
    from_mix:
        ``(B,)`` bool, whether the latest iterate came from a mix (and may be rejected).
    alpha:
        ``(B, m + 1)`` latest mixing weights.
    coef_f, coef_g:
        ``(B, filled)`` coefficients of the next iterate
        ``z = Σ coef_f f(z_i) + Σ coef_g g_i``.

    Examples
    --------
    >>> import torch
    >>> state = Anderson(m=2).init(torch.cos, torch.zeros(4, 3))
    >>> tuple(state.f_hist.shape), tuple(state.gram.shape), state.filled
    ((4, 3, 3), (4, 3, 3), 1)
    """

    f_hist: torch.Tensor
    g_hist: torch.Tensor
    gram: torch.Tensor
    valid: torch.Tensor
    slot: int
    filled: int
    base_slot: torch.Tensor
    base_res: torch.Tensor
    from_mix: torch.Tensor
    alpha: torch.Tensor
    coef_f: torch.Tensor
    coef_g: torch.Tensor


@dataclass(frozen=True)
class AndersonEvaluation(Evaluation):
    """An :class:`Evaluation` plus the new row of the Gram matrix it computed.

    Attributes
    ----------
    column:
        ``(B, filled)`` inner products of the new residual with the window's residuals.
    """

    column: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class Anderson(FixedPointSolver[AndersonState]):
    r"""Anderson extrapolation for batched fixed-point problems ``z = f(z)``.

    Each step mixes the last ``m + 1`` iterates. With residuals ``g_i = f(z_i) − z_i``, the
    weights ``α`` solve

    .. math:: \min_\alpha \|\textstyle\sum_i \alpha_i g_i\|^2
              + \lambda \textstyle\sum_i \alpha_i^2 \|g_i\|^2
              \quad\text{subject to}\quad \textstyle\sum_i \alpha_i = 1,

    per sample, and the next iterate is
    ``z = Σ α_i [(1 − β) z_i + β f(z_i)] = Σ α_i f(z_i) − (1 − β) Σ α_i g_i``.
    ``m = 0`` is forward iteration. On a linear map, Anderson with ``β = 1`` and a window
    at least as large as the dimension reproduces GMRES (Walker & Ni 2011).

    Implementation:

    * history of ``f(z_i)`` and ``g_i`` in preallocated ``(B, m + 1, d)`` ring buffers;
    * the Gram matrix ``G Gᵀ`` gains one row and column per step (``O(m·d)``), never rebuilt;
    * the ridge is relative to each residual (the Gram diagonal is scaled by ``1 + lam``,
      as in SciPy's ``anderson``), so ``lam`` means the same at every scale and at tight
      tolerances, and small recent residuals are not swamped by large old ones;
    * the small ``(m + 1)``-square system is solved in float64 for every sample at once;
    * per-sample mixing weights, and optionally a per-sample ``beta``.

    Safeguards, each counted in the result:

    * an Anderson step whose residual is more than ``safeguard`` times that of the iterate
      it started from is rejected: the next iterate is the plain damped step from there;
    * a non-finite evaluation after an Anderson step, or a singular, non-finite or wild
      (``Σ|α| > max_weight``) least-squares solution, restarts that sample's window;
    * a sample whose residual is non-finite after a plain step, or grows by more than
      ``divergence_factor``, stops with status ``"diverged"`` and a :class:`SolverWarning`.

    On piecewise-linear maps such as relu cells, a small window (2 or 3) can beat a larger
    one: where the activation pattern still changes near the fixed point, old iterates
    describe a map that no longer applies and a large window can stall for tens of steps
    (the DEQ study in the README measures this on trained cells).

    Parameters
    ----------
    m:
        Window: number of past residual differences used (``m + 1`` iterates are kept).
    beta:
        Mixing in ``(0, 2]``; a float or a ``(B,)`` tensor.
    lam:
        Relative ridge ``>= 0``.
    safeguard:
        Largest accepted growth factor of the residual after an Anderson step (``>= 1``);
        ``math.inf`` accepts every step.
    max_weight:
        Restart when the mixing weights' absolute sum exceeds this.
    tol, max_iter, stop_mode, divergence_factor, check_every:
        See :class:`~andersonn_lab.solvers.base.FixedPointSolver`.

    The state of a solve is an :class:`AndersonState`.

    Examples
    --------
    >>> import torch
    >>> from andersonn_lab.solvers import Anderson
    >>> result = Anderson(m=3, tol=1e-10).run(torch.cos, torch.zeros(4, 1, dtype=torch.float64))
    >>> result.all_converged, result.nfe < 15
    (True, True)
    """

    method: ClassVar[str] = "anderson"

    m: int = 5
    lam: float = 1e-4
    safeguard: float = 10.0
    max_weight: float = 1e4

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("m", check_int("m", self.m, minimum=0))
        self._set("lam", check_real("lam", self.lam, low=0.0))
        self._set("safeguard", check_real("safeguard", self.safeguard, low=1.0, allow_inf=True))
        self._set("max_weight", check_real("max_weight", self.max_weight, low=1.0, allow_inf=True))

    # ------------------------------------------------------------------ hooks
    def _init_state(self, shared: SolverState, first: Evaluation) -> AndersonState:
        batch, dim = shared.z.shape
        slots = self.m + 1
        like = {"dtype": shared.z.dtype, "device": shared.z.device}
        f_hist = torch.zeros(batch, slots, dim, **like)
        g_hist = torch.zeros(batch, slots, dim, **like)
        finite = torch.isfinite(shared.abs_res)
        f_hist[:, 0] = torch.where(finite[:, None], shared.fz, 0)
        g_hist[:, 0] = torch.where(finite[:, None], first.g, 0)
        gram = torch.zeros(batch, slots, slots, dtype=torch.float64, device=shared.z.device)
        # ‖g‖² from the residual norm already computed: no float64 copy of the whole state.
        gram[:, 0, 0] = torch.where(finite, shared.abs_res, 0).double().square()
        valid = torch.zeros(batch, slots, dtype=torch.bool, device=shared.z.device)
        valid[:, 0] = finite
        zeros = torch.zeros(batch, dtype=torch.long, device=shared.z.device)
        coef_f, coef_g = self._plain_coefficients(shared)
        return AndersonState(
            **shared.shared(),
            f_hist=f_hist,
            g_hist=g_hist,
            gram=gram,
            valid=valid,
            slot=0,
            filled=1,
            base_slot=zeros,
            base_res=shared.abs_res,
            from_mix=torch.zeros(batch, dtype=torch.bool, device=shared.z.device),
            alpha=torch.zeros(batch, slots, **like),
            coef_f=coef_f,
            coef_g=coef_g,
        )

    def _evaluate(
        self, state: AndersonState, z: torch.Tensor, fz: torch.Tensor
    ) -> AndersonEvaluation:
        # The residual goes straight into the next ring-buffer slot.
        slot = (state.slot + 1) % (self.m + 1)
        state.slot = slot
        state.filled = n = min(state.filled + 1, self.m + 1)
        g = state.g_hist[:, slot]
        torch.sub(fz, z, out=g)
        state.f_hist[:, slot].copy_(fz)
        # The new Gram column holds ‖g‖² on its diagonal entry: one pass over g saved.
        # Row-vector times window-transposed: MKL streams this about 4x faster than the
        # equivalent window-times-column product (benchmarks/bench_solvers.py).
        column = torch.bmm(g[:, None, :], state.g_hist[:, :n].transpose(1, 2)).squeeze(1)
        abs_res = column[:, slot].clamp(min=0).sqrt()
        rel_res = abs_res / (torch.linalg.vector_norm(fz, dim=1) + REL_EPS)
        return AndersonEvaluation(g=g, abs_res=abs_res, rel_res=rel_res, column=column)

    def _screen(
        self, state: AndersonState, evaluation: Evaluation, crit: torch.Tensor
    ) -> torch.Tensor:
        abs_res = evaluation.abs_res
        finite = torch.isfinite(abs_res)
        if maybe_any(~finite):  # keep the history finite: 0 · NaN would poison every mix
            for buf in (state.f_hist[:, state.slot], state.g_hist[:, state.slot]):
                buf.copy_(torch.where(finite[:, None], buf, 0))
        bad = ~finite
        if self.safeguard != float("inf"):
            bad = bad | (abs_res > self.safeguard * state.base_res)
        converged = finite & (crit <= self.tol)
        rejected = state.from_mix & state.active & ~converged & bad
        state.n_rejected = state.n_rejected + rejected.long()
        return rejected

    def _prepare(
        self,
        state: AndersonState,
        evaluation: AndersonEvaluation,
        rejected: torch.Tensor | None,
    ) -> None:
        assert rejected is not None  # _screen always answers
        slot, n = state.slot, state.filled
        gram, valid = state.gram, state.valid
        finite = torch.isfinite(state.abs_res)

        # One new row and column of the Gram matrix, O(m·d), computed in _evaluate.
        column = evaluation.column.double()
        gram[:, slot, :n] = column
        gram[:, :n, slot] = column
        valid[:, slot] = finite

        active = state.active
        restart = rejected & ~finite  # non-finite after an Anderson step: keep only the base
        accepted = active & ~rejected
        state.base_slot = torch.where(accepted, slot, state.base_slot)
        state.base_res = torch.where(accepted, state.abs_res, state.base_res)
        base_hot = _one_hot(state.base_slot, self.m + 1)
        valid.copy_(torch.where(restart[:, None], base_hot, valid))

        alpha, solve_ok = self._mixing_weights(gram[:, :n, :n], valid[:, :n])
        enough = valid[:, :n].sum(-1) >= 2
        mixing = accepted & enough & solve_ok
        fresh = accepted & enough & ~solve_ok  # singular or wild system: restart the window
        valid.copy_(torch.where(fresh[:, None], base_hot, valid))
        state.n_restarts = state.n_restarts + (restart | fresh).long()
        state.from_mix = mixing

        dtype = state.z.dtype
        plain = base_hot[:, :n].to(dtype)
        coef_f = torch.where(mixing[:, None], alpha.to(dtype), plain)
        coef_g = -(1 - state.beta) * coef_f
        here = _one_hot(torch.full_like(state.base_slot, slot), n).to(dtype)
        state.coef_f = torch.where(active[:, None], coef_f, here)
        state.coef_g = torch.where(active[:, None], coef_g, -here)  # stopped: z = f(z) − g
        state.alpha[:, :n] = torch.where(mixing[:, None], alpha.to(dtype), state.alpha[:, :n])

    def _propose(self, state: AndersonState) -> torch.Tensor:
        n = state.filled
        z = torch.bmm(state.coef_f[:, None, :], state.f_hist[:, :n])
        if maybe_any(state.coef_g != 0):
            z.baddbmm_(state.coef_g[:, None, :], state.g_hist[:, :n])
        return z.squeeze(1)

    def _result_extra(self, state: AndersonState) -> dict[str, Any]:
        n = state.filled
        gram, valid = state.gram[:, :n, :n].cpu(), state.valid[:, :n].cpu()
        cond = torch.full((gram.shape[0],), float("inf"), dtype=torch.float64)
        for i in range(gram.shape[0]):
            keep = valid[i].nonzero().squeeze(-1)
            if keep.numel() == 0:
                continue
            eig = torch.linalg.eigvalsh(gram[i][keep][:, keep])
            if bool(torch.isfinite(eig).all()) and float(eig[0]) > 0:
                cond[i] = eig[-1] / eig[0]
        return {"alpha": state.alpha.cpu(), "gram_cond": cond}

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _plain_coefficients(state: SolverState) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficients of the plain damped step from slot 0 (stopped samples stay put)."""
        batch = state.z.shape[0]
        hot = torch.zeros(batch, 1, dtype=state.z.dtype, device=state.z.device)
        hot[:, 0] = 1
        active = state.active[:, None]
        return hot, torch.where(active, -(1 - state.beta) * hot, -hot)

    def _mixing_weights(
        self, gram: torch.Tensor, valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Solve the constrained least squares for every sample; return ``(α, ok)``."""
        pair = valid[:, :, None] & valid[:, None, :]
        system = torch.where(pair, gram, 0.0)
        # Relative ridge: each squared residual norm on the diagonal grows by a factor 1 + lam.
        diag = gram.diagonal(dim1=1, dim2=2)
        system = system + torch.diag_embed(torch.where(valid, self.lam * diag, 1.0))
        rhs = valid.double()
        y, info = torch.linalg.solve_ex(system, rhs[..., None], check_errors=False)
        y = y.squeeze(-1)
        alpha = y / y.sum(-1, keepdim=True)
        ok = (info == 0) & torch.isfinite(alpha).all(-1) & (alpha.abs().sum(-1) <= self.max_weight)
        return torch.where(ok[:, None], alpha, 0.0), ok


def _one_hot(index: torch.Tensor, size: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(index, size).bool()
