"""The Jacobian spectrum of a fixed-point map at its fixed point.

Near a fixed point ``z*`` the map behaves like its Jacobian ``J = ∂f/∂z (z*)``: forward
iteration shrinks the error by about the spectral radius ``ρ(J)`` per step, whatever the
other eigenvalues do, while Anderson extrapolation (GMRES on a linear map) profits when the
eigenvalues cluster and gains little when they fill a disk. This module computes those
eigenvalues for any batched map ``f``:

* ``method="dense"``: the full Jacobian of each sample from Jacobian-vector products, then
  :func:`torch.linalg.eigvals` (exact; for small teaching problems);
* ``method="arnoldi"``: the ``k`` eigenvalues of largest modulus from ARPACK's implicitly
  restarted Arnoldi method (:func:`scipy.sparse.linalg.eigs`) on a
  :class:`~scipy.sparse.linalg.LinearOperator` whose product is one Jacobian-vector product
  (forward-mode autograd). The samples of a batch run their Arnoldi iterations in lockstep,
  so each product is one batched JVP for all of them.

It also measures what forward iteration actually does (:func:`forward_rate`,
:func:`fit_rate`), so the two can be compared.

Examples
--------
>>> from andersonn_lab.solvers import problems
>>> from andersonn_lab.solvers.spectrum import jacobian_spectrum
>>> p = problems.linear_map(40, spectrum="real", radius=0.9)
>>> s = jacobian_spectrum(p.f, p.z_star, k=4, method="arnoldi", measure_rate=True)
>>> round(float(s.spectral_radius[0]), 6)
0.9
>>> abs(float(s.observed_rate[0]) - 0.9) < 0.02
True
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from andersonn_lab._warnings import warn

from .checks import check_int, check_real

__all__ = [
    "FixedPointSpectrum",
    "SpectrumWarning",
    "dense_jacobian",
    "fit_rate",
    "forward_rate",
    "jacobian_spectrum",
    "jvp",
]

METHODS = ("auto", "dense", "arnoldi")
"""Eigensolver choices of :func:`jacobian_spectrum`."""

DENSE_MAX_DIM = 512
"""``method="auto"`` computes the dense Jacobian up to this state size per sample."""


class SpectrumWarning(UserWarning):
    """The eigensolver did not converge, or the point is not a fixed point."""


Map = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FixedPointSpectrum:
    """Leading eigenvalues of ``J = ∂f/∂z`` at a fixed point, per sample of a batch.

    Attributes
    ----------
    eigenvalues:
        ``(B, k)`` complex128, each row sorted by decreasing modulus (``k = d`` for
        ``method="dense"``); NaN for eigenvalues an unconverged Arnoldi run did not find.
    spectral_radius:
        ``(B,)`` float64: ``ρ(J)``, the largest modulus found.
    observed_rate:
        ``(B,)`` float64: the contraction per step of forward iteration measured near the
        point (:func:`forward_rate`), or None when not measured. NaN where it could not be
        fitted.
    residual:
        ``(B,)`` float64: ``‖f(z) − z‖ / ‖f(z)‖`` at the point given, to judge whether it is
        a fixed point at all.
    method:
        ``"dense"`` or ``"arnoldi"``.
    dim:
        State size ``d`` per sample.
    n_jvp:
        Batched Jacobian-vector products computed.
    seconds:
        Wall time of the eigenvalue computation (without the rate measurement).

    Examples
    --------
    >>> from andersonn_lab.solvers import problems
    >>> p = problems.geometric_decay(0.5, dim=3, batch=1)
    >>> s = jacobian_spectrum(p.f, p.z_star)
    >>> s.eigenvalues.real.tolist()
    [[0.5, 0.5, 0.5]]
    """

    eigenvalues: torch.Tensor
    spectral_radius: torch.Tensor
    observed_rate: torch.Tensor | None
    residual: torch.Tensor
    method: str
    dim: int
    n_jvp: int
    seconds: float

    @property
    def batch(self) -> int:
        """Number of samples."""
        return int(self.eigenvalues.shape[0])

    def predicted_rate(self, beta: float = 1.0) -> torch.Tensor:
        """Per-sample rate of damped forward iteration ``z ← (1 − β) z + β f(z)``.

        The damped map's Jacobian is ``(1 − β) I + β J``, so the rate is the largest
        ``|1 − β + β λ|``. For ``β = 1`` this is ``ρ(J)``; for ``β < 1`` it is exact only when
        all eigenvalues are known (``method="dense"``), otherwise a lower bound from the
        ``k`` computed ones.

        Examples
        --------
        >>> s = FixedPointSpectrum(torch.tensor([[-0.8 + 0j, 0.5 + 0j]]),
        ...     torch.tensor([0.8]), None, torch.zeros(1), "dense", 2, 2, 0.0)
        >>> [round(v, 6) for v in s.predicted_rate(0.5).tolist()]
        [0.75]
        """
        beta = check_real("beta", beta, low=0.0, high=2.0, low_open=True)
        return _nanmax_abs(1 - beta + beta * self.eigenvalues)

    def rate_mismatch(self) -> torch.Tensor:
        """``|observed rate − ρ(J)| / ρ(J)`` per sample (NaN where no rate was measured)."""
        if self.observed_rate is None:
            return torch.full_like(self.spectral_radius, math.nan)
        return (self.observed_rate - self.spectral_radius).abs() / self.spectral_radius.clamp(
            min=1e-300
        )


# ---------------------------------------------------------------------------- checks
def _check_point(f: Map, z_star: torch.Tensor) -> torch.Tensor:
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not isinstance(z_star, torch.Tensor):
        raise TypeError(f"z_star must be a torch.Tensor, got {type(z_star).__name__}")
    if z_star.ndim < 2 or z_star.shape[0] < 1 or z_star[0].numel() < 1:
        raise ValueError(
            "z_star must be batched, shaped (B, ...) with B >= 1 and a non-empty state, got "
            f"shape {tuple(z_star.shape)}"
        )
    if not torch.is_floating_point(z_star):
        raise ValueError(f"z_star must be a floating-point tensor, got {z_star.dtype}")
    if not bool(torch.isfinite(z_star).all()):
        bad = (~torch.isfinite(z_star.flatten(1))).any(1).nonzero().flatten().tolist()
        raise ValueError(f"z_star is not finite (samples {bad[:10]})")
    return z_star.detach()


def _evaluate(f: Map, z: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        fz = f(z)
    if not isinstance(fz, torch.Tensor) or fz.shape != z.shape:
        shape = tuple(fz.shape) if isinstance(fz, torch.Tensor) else type(fz).__name__
        raise ValueError(f"f must return a tensor shaped like z {tuple(z.shape)}, got {shape}")
    if not bool(torch.isfinite(fz).all()):
        raise ValueError("f(z_star) is not finite")
    return fz


def _relative_residual(z: torch.Tensor, fz: torch.Tensor) -> torch.Tensor:
    diff = torch.linalg.vector_norm((fz - z).flatten(1).double(), dim=1)
    return diff / (torch.linalg.vector_norm(fz.flatten(1).double(), dim=1) + 1e-5)


# ---------------------------------------------------------------------------- products
_FORWARD_AD_LOCK = threading.RLock()
"""PyTorch's forward-mode level is process-wide, not per thread: a second thread entering
``dual_level`` while another is inside fails with "Nested forward mode AD is not supported".
Widgets compute spectra in worker threads (the explorer's spectrum panel while an inspector
computes its own), so every forward-mode product here takes this lock."""


def jvp(f: Map, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The Jacobian-vector product ``J_f(z) v`` by forward-mode autograd (batched).

    Works through ``torch.no_grad()`` inside ``f`` (forward mode ignores it). For a batched
    ``f`` whose samples do not interact, sample ``b`` of the result is ``J_b v_b``. Safe to
    call from several threads at once (they take turns). Raises ValueError when ``f``'s
    output does not depend on ``z`` through torch (a map through numpy, say), rather than
    returning a silent zero.

    Examples
    --------
    >>> z = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    >>> jvp(torch.sin, z, torch.ones_like(z))
    tensor([[1.0000, 0.5403]], dtype=torch.float64)
    """
    import torch.autograd.forward_ad as fwad

    # Plain forward-mode dual tensors rather than torch.func.jvp: the functional transform
    # defeats caches inside modules (the contractive cell's weight rescaling) and was 50x
    # slower on a DEQ cell.
    with _FORWARD_AD_LOCK, fwad.dual_level():
        out = f(fwad.make_dual(z, v.to(z.dtype)))
        tangent = fwad.unpack_dual(out).tangent
    if tangent is None:
        raise ValueError(
            "f's output carries no derivative with respect to z: f leaves torch autograd "
            "(numpy, .detach(), .item(), torch.inference_mode) or does not depend on z"
        )
    return tangent


def _functional_jvp(f: Map, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    with _FORWARD_AD_LOCK:
        _, tangent = torch.func.jvp(f, (z,), (v,))
    return tangent


def dense_jacobian(f: Map, z_star: torch.Tensor, *, chunk: int = 64) -> torch.Tensor:
    """Per-sample Jacobians ``(B, d, d)`` of a batched map, from ``d`` batched JVPs.

    Column ``j`` of every sample's Jacobian comes from one JVP with the ``j``-th unit vector
    in each sample; ``chunk`` columns are computed together with :func:`torch.vmap` (one JVP
    at a time where ``f`` cannot be vmapped).

    Examples
    --------
    >>> z = torch.zeros(2, 3, dtype=torch.float64)
    >>> dense_jacobian(lambda z: 2 * z, z)[1].diagonal().tolist()
    [2.0, 2.0, 2.0]
    """
    z = _check_point(f, z_star)
    batch, shape, d = z.shape[0], z.shape[1:], z[0].numel()
    chunk = check_int("chunk", chunk, minimum=1)
    columns = []
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    vmapped = torch.func.vmap(lambda v: _functional_jvp(f, z, v))
    use_vmap = True
    for start in range(0, d, chunk):
        basis = eye[start : start + chunk]  # (c, d)
        tangents = basis[:, None, :].expand(-1, batch, -1).reshape(-1, batch, *shape)
        out = None
        if use_vmap:
            try:
                out = vmapped(tangents)
            except Exception:  # some maps cannot be vmapped (data-dependent control flow)
                use_vmap = False
        if out is None:
            out = torch.stack([jvp(f, z, t) for t in tangents])
        columns.append(out.reshape(out.shape[0], batch, d))
    return torch.cat(columns).permute(1, 2, 0)  # (B, d_out, d_in)


class _Lockstep:
    """Collect one matrix-vector request per active sample, answer all with one JVP.

    Each sample's ARPACK runs in its own thread and calls :meth:`matvec`; the last request
    to arrive computes the batched JVP (zero tangents for samples that are done) and wakes
    the others. A sample whose ARPACK ends calls :meth:`finish`.
    """

    def __init__(self, product: Callable[[torch.Tensor], torch.Tensor], batch: int, d: int):
        self.product = product
        self.batch, self.d = batch, d
        self.active = set(range(batch))
        self.pending: dict[int, np.ndarray] = {}
        self.results: dict[int, np.ndarray] = {}
        self.error: BaseException | None = None
        self.count = 0
        self.cond = threading.Condition()

    def _compute(self) -> None:
        tangents = np.zeros((self.batch, self.d))
        for b, vector in self.pending.items():
            tangents[b] = vector
        try:
            out = self.product(torch.from_numpy(tangents)).numpy()
            self.count += 1
            for b in self.pending:
                self.results[b] = out[b]
        except BaseException as exc:  # hand it to every waiting sample
            self.error = exc
        self.pending.clear()
        self.cond.notify_all()

    def matvec(self, b: int, vector: np.ndarray) -> np.ndarray:
        with self.cond:
            if self.error is not None:
                raise RuntimeError("a Jacobian-vector product failed") from self.error
            self.pending[b] = np.asarray(vector, dtype=np.float64).ravel()
            if self.pending.keys() >= self.active:
                self._compute()
            while b not in self.results and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise RuntimeError("a Jacobian-vector product failed") from self.error
            return self.results.pop(b)

    def finish(self, b: int) -> None:
        with self.cond:
            self.active.discard(b)
            if self.pending and self.pending.keys() >= self.active:
                self._compute()


def _arnoldi_one(
    matvec: Callable[[np.ndarray], np.ndarray],
    d: int,
    k: int,
    tol: float,
    ncv: int | None,
    maxiter: int | None,
    v0: np.ndarray,
) -> tuple[np.ndarray, bool]:
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

    operator = LinearOperator((d, d), matvec=matvec, dtype=np.float64)
    ncv = min(d, ncv if ncv is not None else max(2 * k + 1, 20))
    try:
        values = eigs(
            operator, k=k, which="LM", tol=tol, ncv=ncv, maxiter=maxiter, v0=v0,
            return_eigenvectors=False,
        )  # fmt: skip
        return np.asarray(values), True
    except ArpackNoConvergence as exc:
        return np.asarray(exc.eigenvalues), False


def _sorted(values: torch.Tensor) -> torch.Tensor:
    """Sort each row by decreasing modulus (then by imaginary part, for stable pairs)."""
    by_imag = torch.gather(values, -1, torch.argsort(values.imag, dim=-1, descending=True))
    modulus = by_imag.abs()
    modulus = torch.where(torch.isnan(modulus), torch.full_like(modulus, -1.0), modulus)
    order = torch.argsort(modulus, dim=-1, descending=True, stable=True)
    return torch.gather(by_imag, -1, order)


def _nanmax_abs(values: torch.Tensor) -> torch.Tensor:
    """Largest modulus per row, ignoring NaN entries (NaN for a row of NaN only)."""
    modulus = values.abs()
    best = torch.where(torch.isnan(modulus), torch.full_like(modulus, -1.0), modulus).max(-1)
    return torch.where(best.values < 0, torch.full_like(best.values, math.nan), best.values)


def _arnoldi(
    f: Map,
    z: torch.Tensor,
    k: int,
    tol: float,
    ncv: int | None,
    maxiter: int | None,
    seed: int,
) -> tuple[torch.Tensor, int, list[int]]:
    batch, d = z.shape[0], z[0].numel()

    def product(tangents: torch.Tensor) -> torch.Tensor:
        v = tangents.to(device=z.device, dtype=z.dtype).reshape(z.shape)
        return jvp(f, z, v).reshape(batch, d).detach().double().cpu()

    # one start vector for every sample: a sample's eigenvalues do not depend on the batch
    start = np.random.default_rng(seed).standard_normal(d)
    starts = [start] * batch
    results: list[tuple[np.ndarray, bool] | None] = [None] * batch
    if batch == 1:
        count = [0]

        def single(vector: np.ndarray) -> np.ndarray:
            count[0] += 1
            return product(torch.from_numpy(np.asarray(vector, dtype=np.float64)[None]))[0].numpy()

        results[0] = _arnoldi_one(single, d, k, tol, ncv, maxiter, starts[0])
        n_jvp = count[0]
    else:
        lockstep = _Lockstep(product, batch, d)
        errors: list[BaseException] = []

        def worker(b: int) -> None:
            try:
                results[b] = _arnoldi_one(
                    lambda v: lockstep.matvec(b, v), d, k, tol, ncv, maxiter, starts[b]
                )
            except BaseException as exc:
                errors.append(exc)
            finally:
                lockstep.finish(b)

        threads = [
            threading.Thread(target=worker, args=(b,), name=f"arnoldi-{b}", daemon=True)
            for b in range(batch)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            cause = lockstep.error or errors[0]
            raise RuntimeError(f"Arnoldi iteration failed: {cause}") from cause
        n_jvp = lockstep.count
    unconverged = [b for b, r in enumerate(results) if r is None or not r[1]]
    rows = torch.full((batch, k), complex(math.nan, math.nan), dtype=torch.complex128)
    for b, r in enumerate(results):
        if r is not None and len(r[0]):
            values = torch.from_numpy(r[0].astype(np.complex128))
            rows[b, : len(values)] = values
    return _sorted(rows), n_jvp, unconverged


# ---------------------------------------------------------------------------- rates
def fit_rate(
    residuals: Sequence[float] | np.ndarray | torch.Tensor,
    *,
    floor: float | None = None,
    tail: float = 0.5,
) -> float:
    """The geometric rate of a residual history: ``exp`` of the slope of ``log r`` per step.

    Values at or below ``floor`` (default: ``1e3`` times the float64 machine epsilon times the
    first value) and anything after the first of them are dropped as round-off; the line is
    fitted by least squares to the last ``tail`` fraction of what is left (the asymptotic
    part, after transients). NaN when fewer than three points remain.

    Parameters
    ----------
    residuals:
        One residual per iteration (1-D), e.g. ``result.rel_residuals[:, 0]``.
    floor:
        Residuals at or below it end the history.
    tail:
        Fraction of the usable history to fit, in ``(0, 1]``.

    Examples
    --------
    >>> round(fit_rate([0.9**n for n in range(60)]), 12)
    0.9
    """
    r = np.asarray(torch.as_tensor(residuals, dtype=torch.float64).cpu(), dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"residuals must be one-dimensional, got shape {r.shape}")
    tail = check_real("tail", tail, low=0.0, high=1.0, low_open=True)
    if len(r) == 0 or not np.isfinite(r[0]) or r[0] <= 0:
        return math.nan
    if floor is None:
        floor = 1e3 * np.finfo(np.float64).eps * float(r[0])
    bad = np.flatnonzero(~np.isfinite(r) | (r <= floor))
    usable = r[: bad[0]] if len(bad) else r
    start = int(len(usable) * (1 - tail))
    part = usable[start:]
    if len(part) < 3:
        return math.nan
    steps = np.arange(len(part), dtype=np.float64)
    slope = np.polyfit(steps, np.log(part), 1)[0]
    return float(np.exp(slope))


def forward_rate(
    f: Map,
    z_star: torch.Tensor,
    *,
    steps: int = 200,
    size: float | None = None,
    seed: int = 0,
    tail: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Measure forward iteration's contraction per step near a fixed point.

    Starts at ``z* + δ`` (``δ`` random, of relative size ``size``: default ``1e-6`` in
    float64 and ``1e-2`` in lower precision, small enough to stay in the linear regime and
    large enough to leave room above round-off), applies ``f`` ``steps`` times, records the
    residual ``‖f(z) − z‖`` per sample and fits its rate with :func:`fit_rate` (the floor
    is the residual at ``z*`` itself, times 10, plus round-off).

    Returns
    -------
    (rates, residuals)
        ``(B,)`` float64 rates (NaN where not fittable) and the ``(steps + 1, B)`` residuals.

    Examples
    --------
    >>> from andersonn_lab.solvers import problems
    >>> p = problems.geometric_decay(0.7, dim=3, batch=2)
    >>> rates, _ = forward_rate(p.f, p.z_star, steps=40)
    >>> [round(r, 4) for r in rates.tolist()]
    [0.7, 0.7]
    """
    z_star = _check_point(f, z_star)
    steps = check_int("steps", steps, minimum=3)
    if size is None:
        size = 1e-6 if z_star.dtype == torch.float64 else 1e-2
    size = check_real("size", size, low=0.0, low_open=True)
    batch = z_star.shape[0]
    gen = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    delta = torch.randn(z_star.shape, generator=gen, dtype=torch.float64)
    delta = delta.to(device=z_star.device, dtype=z_star.dtype)
    scale = torch.linalg.vector_norm(z_star.flatten(1), dim=1).clamp(min=1.0)
    norm = torch.linalg.vector_norm(delta.flatten(1), dim=1)
    delta = delta * (size * scale / norm).view(batch, *([1] * (z_star.ndim - 1)))
    fz_star = _evaluate(f, z_star)
    base = torch.linalg.vector_norm((fz_star - z_star).flatten(1).double(), dim=1)
    eps = torch.finfo(z_star.dtype).eps
    floor = 10 * base + 100 * eps * scale.double()
    z = z_star + delta
    history = []
    with torch.no_grad():
        for _ in range(steps + 1):
            fz = f(z)
            history.append(torch.linalg.vector_norm((fz - z).flatten(1).double(), dim=1).cpu())
            z = fz
    residuals = torch.stack(history)
    rates = torch.tensor(
        [fit_rate(residuals[:, b], floor=float(floor[b]), tail=tail) for b in range(batch)],
        dtype=torch.float64,
    )
    return rates, residuals


# ---------------------------------------------------------------------------- spectrum
def jacobian_spectrum(
    f: Map,
    z_star: torch.Tensor,
    *,
    k: int = 10,
    method: str = "auto",
    tol: float | None = None,
    ncv: int | None = None,
    maxiter: int | None = None,
    measure_rate: bool = False,
    rate_steps: int = 200,
    seed: int = 0,
) -> FixedPointSpectrum:
    """Eigenvalues of the Jacobian ``∂f/∂z`` at a fixed point, per sample.

    Parameters
    ----------
    f:
        Batched map, taking and returning ``(B, ...)`` tensors shaped like ``z_star``;
        samples must not interact (sample ``b`` of ``f(z)`` depends on sample ``b`` of ``z``
        only), as for the solvers. It may run under ``torch.no_grad()``.
    z_star:
        ``(B, ...)`` fixed point, finite. The spectrum is computed at whatever point is given;
        :attr:`FixedPointSpectrum.residual` says how far from a fixed point it is, and a
        :class:`SpectrumWarning` is issued above a relative residual of ``1e-3``.
    k:
        Number of eigenvalues of largest modulus (Arnoldi). ``"dense"`` returns all ``d``.
    method:
        ``"dense"`` (full Jacobian and :func:`torch.linalg.eigvals`), ``"arnoldi"``
        (:func:`scipy.sparse.linalg.eigs` on Jacobian-vector products) or ``"auto"``
        (dense up to :data:`DENSE_MAX_DIM` per sample, or when ``k >= d - 1``).
    tol:
        ARPACK's relative accuracy of the eigenvalues; default ``1e-10`` for float64 states
        and ``1e-5`` otherwise.
    ncv, maxiter:
        ARPACK's Krylov subspace size (default ``max(2k + 1, 20)``) and restart limit.
    measure_rate:
        Also measure forward iteration's rate near the point (:func:`forward_rate`, with
        ``rate_steps`` steps); it lands in :attr:`FixedPointSpectrum.observed_rate`.
    seed:
        Seeds Arnoldi's start vectors and the rate measurement's perturbation.

    Notes
    -----
    Arnoldi runs one ARPACK iteration per sample, each in its own thread (the threads only
    wait for each other; every product is one batched JVP in whichever thread asks last),
    so memory grows with ``B · ncv · d``: split very large batches into chunks.

    Returns
    -------
    FixedPointSpectrum

    Raises
    ------
    ValueError
        Bad shapes (``z_star`` not ``(B, ...)``, ``f(z_star)`` shaped differently),
        non-finite ``z_star`` or ``f(z_star)``, bad ``k``, ``method`` or ``tol``.

    Warns
    -----
    SpectrumWarning
        When ARPACK did not converge for some samples (their eigenvalues are those it
        found; missing ones are NaN), or the point is far from a fixed point.

    Examples
    --------
    >>> from andersonn_lab.solvers import problems
    >>> p = problems.rotation(0.5, scale=0.9, dim=2, batch=1)
    >>> s = jacobian_spectrum(p.f, p.z_star)
    >>> [round(abs(v), 6) for v in s.eigenvalues[0].tolist()], s.method
    ([0.9, 0.9], 'dense')
    """
    z = _check_point(f, z_star)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    k = check_int("k", k, minimum=1)
    d = z[0].numel()
    if tol is None:
        tol = 1e-10 if z.dtype == torch.float64 else 1e-5
    tol = check_real("tol", tol, low=0.0)
    fz = _evaluate(f, z)
    residual = _relative_residual(z, fz).cpu()
    if bool((residual > 1e-3).any()):
        worst = float(residual.max())
        warn(
            f"z_star is not a fixed point (relative residual up to {worst:.2e}); the spectrum "
            "describes the map's linearisation there",
            SpectrumWarning,
        )
    if method == "auto":
        method = "dense" if d <= DENSE_MAX_DIM or k >= d - 1 else "arnoldi"
    elif method == "arnoldi" and k >= d - 1:
        raise ValueError(f"Arnoldi needs k < d - 1 = {d - 1}; use method='dense' for k = {k}")
    start = time.perf_counter()
    if method == "dense":
        jac = dense_jacobian(f, z).double().cpu()
        values = _sorted(torch.linalg.eigvals(jac).to(torch.complex128))
        n_jvp = d
    else:
        values, n_jvp, unconverged = _arnoldi(f, z, k, tol, ncv, maxiter, seed)
        if unconverged:
            warn(
                f"ARPACK did not converge for samples {unconverged[:10]}; their eigenvalues "
                "are the ones it found (increase maxiter or ncv, or loosen tol)",
                SpectrumWarning,
            )
    seconds = time.perf_counter() - start
    rate = None
    if measure_rate:
        rate, _ = forward_rate(f, z, steps=rate_steps, seed=seed)
    return FixedPointSpectrum(
        eigenvalues=values,
        spectral_radius=_nanmax_abs(values),
        observed_rate=rate,
        residual=residual,
        method=method,
        dim=d,
        n_jvp=n_jvp,
        seconds=seconds,
    )
