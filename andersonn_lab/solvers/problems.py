"""Fixed-point problems for teaching, testing and benchmarking.

Every constructor returns a :class:`FixedPointProblem`: a batched map ``f``, a starting point
``z0`` of shape ``(B, d)`` (or ``(B, C, H, W)`` for :func:`conv_cell`) and, where it is
known, the fixed point ``z_star``. The same problems drive the tests, the notebooks and the
convergence explorer.

=================  ==============================================  =========================
constructor        map                                             what it shows
=================  ==============================================  =========================
geometric_decay    ``c + r (z − c)``                               linear rate ``r``
cosine             ``cos z``                                       a scalar classic
affine_contraction ``A z + b``, ``‖A‖₂ = q``                       any contraction converges
linear_map         ``A z + b`` with a chosen spectrum              Anderson ≈ GMRES: helps a
                                                                   lot on a real, clustered
                                                                   spectrum, little on a disk
tanh_layer         ``tanh(W z + x)``, spectral radius ``ρ(W)``      a one-layer DEQ
rotation           ``c + s R (z − c)``, ``R`` a rotation           forward iteration fails,
                                                                   Anderson converges
conv_cell          GroupNorm-ResNet cell on ``(B, C, H, W)``       the DEQ image cell
=================  ==============================================  =========================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .checks import check_int, check_real

DOTTIE = 0.7390851332151607
"""The fixed point of ``cos``."""

SPECTRA = ("clustered", "real", "disk")


@dataclass
class FixedPointProblem:
    """A batched fixed-point problem ``z = f(z)``.

    Attributes
    ----------
    name:
        Short name, e.g. ``"linear"``.
    f:
        Batched map taking and returning tensors shaped like ``z0``.
    z0:
        Starting point.
    params:
        The constructor's arguments.
    description:
        One line for people.
    """

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    z0: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    _reference: Callable[[], torch.Tensor] | None = field(default=None, repr=False)
    _z_star: torch.Tensor | None = field(default=None, repr=False)

    @property
    def z_star(self) -> torch.Tensor | None:
        """The fixed point (computed on first use), or None where none is known."""
        if self._z_star is None and self._reference is not None:
            self._z_star = self._reference()
        return self._z_star

    def error(self, z: torch.Tensor) -> torch.Tensor:
        """Per-sample relative distance ``‖z − z*‖ / ‖z*‖`` to the fixed point."""
        if self.z_star is None:
            raise ValueError(f"problem {self.name!r} has no known fixed point")
        diff = (z - self.z_star).flatten(1)
        return torch.linalg.vector_norm(diff, dim=1) / torch.linalg.vector_norm(
            self.z_star.flatten(1), dim=1
        ).clamp(min=1e-30)

    def solve(self, **options: Any):
        """Solve this problem with :func:`andersonn_lab.solvers.solve` (same options)."""
        from .api import solve

        return solve(self.f, self.z0, **options)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(check_int("seed", seed, minimum=0))


def _finish(z0: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    return z0.to(device) if device is not None else z0


def geometric_decay(
    rate: float = 0.9,
    *,
    dim: int = 4,
    batch: int = 2,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = c + rate · (z − c)``: the residual shrinks by ``rate`` each plain step.

    Examples
    --------
    >>> p = geometric_decay(0.5)
    >>> bool(torch.allclose(p.f(p.z_star), p.z_star))
    True
    """
    rate = check_real("rate", rate, low=-1.0, high=1.0, low_open=True)
    dim, batch = check_int("dim", dim, minimum=1), check_int("batch", batch, minimum=1)
    center = torch.linspace(1.0, 2.0, dim, dtype=dtype).expand(batch, dim).clone()
    center = _finish(center, device)
    z0 = torch.zeros_like(center)
    return FixedPointProblem(
        name="geometric",
        f=lambda z: center + rate * (z - center),
        z0=z0,
        params={"rate": rate, "dim": dim, "batch": batch},
        description=f"geometric decay at rate {rate}",
        _z_star=center,
    )


def cosine(
    *,
    dim: int = 1,
    batch: int = 4,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = cos(z)`` elementwise, started from a spread of points in ``[-1, 1]``."""
    dim, batch = check_int("dim", dim, minimum=1), check_int("batch", batch, minimum=1)
    z0 = torch.linspace(-1.0, 1.0, batch * dim, dtype=dtype).reshape(batch, dim)
    z0 = _finish(z0, device)
    return FixedPointProblem(
        name="cosine",
        f=torch.cos,
        z0=z0,
        params={"dim": dim, "batch": batch},
        description="z = cos(z): the Dottie number 0.739085...",
        _z_star=torch.full_like(z0, DOTTIE),
    )


def _affine(
    name: str,
    matrix: torch.Tensor,
    batch: int,
    gen: torch.Generator,
    dtype: torch.dtype,
    device: torch.device | str | None,
    params: dict[str, Any],
    description: str,
) -> FixedPointProblem:
    dim = matrix.shape[0]
    offset = torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    eye = torch.eye(dim, dtype=torch.float64)
    z_star = torch.linalg.solve(eye - matrix, offset.T).T
    a = _finish(matrix.to(dtype), device)
    b = _finish(offset.to(dtype), device)
    return FixedPointProblem(
        name=name,
        f=lambda z: z @ a.T + b,
        z0=torch.zeros_like(b),
        params=params,
        description=description,
        _z_star=_finish(z_star.to(dtype), device),
    )


def affine_contraction(
    contraction: float = 0.9,
    *,
    dim: int = 20,
    batch: int = 3,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = A z + b`` with a random ``A`` of operator norm ``contraction``."""
    contraction = check_real("contraction", contraction, low=0.0, high=1.0, low_open=True)
    dim, batch = check_int("dim", dim, minimum=1), check_int("batch", batch, minimum=1)
    gen = _generator(seed)
    raw = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    matrix = contraction * raw / torch.linalg.matrix_norm(raw, ord=2)
    params = {"contraction": contraction, "dim": dim, "batch": batch, "seed": seed}
    return _affine(
        "affine", matrix, batch, gen, dtype, device, params, f"affine map with ‖A‖₂ = {contraction}"
    )


def spectrum_matrix(
    dim: int, spectrum: str = "clustered", radius: float = 0.9, *, seed: int = 0
) -> torch.Tensor:
    """A ``dim × dim`` float64 matrix with spectral radius ``radius`` and a chosen spectrum.

    ``"clustered"``: symmetric, eigenvalues in four tight clusters (at ``radius`` times
    1, 0.6, 0.1 and −0.4); ``"real"``: symmetric, eigenvalues spread evenly over
    ``[−radius, radius]``; ``"disk"``: a scaled Gaussian matrix whose eigenvalues fill the
    disk of that radius (non-normal).
    """
    dim = check_int("dim", dim, minimum=1)
    radius = check_real("radius", radius, low=0.0, low_open=True)
    if spectrum not in SPECTRA:
        raise ValueError(f"spectrum must be one of {SPECTRA}, got {spectrum!r}")
    gen = _generator(seed)
    if spectrum == "disk":
        raw = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
        rho = torch.linalg.eigvals(raw).abs().max()
        return raw * (radius / rho)
    if spectrum == "real":
        eigenvalues = torch.linspace(-radius, radius, dim, dtype=torch.float64)
    else:
        centers = torch.tensor([1.0, 0.6, 0.1, -0.4], dtype=torch.float64) * radius
        eigenvalues = centers[torch.arange(dim) % 4]
        jitter = torch.rand(dim, generator=gen, dtype=torch.float64) * 0.01 * radius
        eigenvalues = torch.where(eigenvalues > 0, eigenvalues - jitter, eigenvalues + jitter)
        eigenvalues[0] = radius
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
    return (q * eigenvalues) @ q.T


def linear_map(
    dim: int = 100,
    *,
    spectrum: str = "clustered",
    radius: float = 0.9,
    batch: int = 1,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = A z + b`` with ``A`` from :func:`spectrum_matrix`.

    Forward iteration converges at the rate ``radius`` whatever the spectrum's shape;
    Anderson (like GMRES) exploits its shape: fast on ``"clustered"``, slower on
    ``"disk"``. With ``radius >= 1`` forward iteration does not converge at all.
    """
    matrix = spectrum_matrix(dim, spectrum, radius, seed=seed)
    batch = check_int("batch", batch, minimum=1)
    params = {"dim": dim, "spectrum": spectrum, "radius": radius, "batch": batch, "seed": seed}
    description = f"linear map, {spectrum} spectrum of radius {radius}"
    return _affine(
        "linear", matrix, batch, _generator(seed + 1), dtype, device, params, description
    )


def tanh_layer(
    dim: int = 50,
    *,
    spectral_radius: float = 0.9,
    symmetric: bool = False,
    batch: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = tanh(W z + x)``: a one-layer DEQ with ``ρ(W) = spectral_radius``.

    ``W`` is symmetric with a real spectrum spread over ``[−ρ, ρ]``, or a non-symmetric
    Gaussian matrix whose spectrum fills a disk. The fixed point is computed on first use by
    Newton's method in float64.
    """
    spectrum = "real" if symmetric else "disk"
    weight64 = spectrum_matrix(dim, spectrum, spectral_radius, seed=seed)
    batch = check_int("batch", batch, minimum=1)
    x64 = torch.randn(batch, dim, generator=_generator(seed + 1), dtype=torch.float64)
    weight, x = _finish(weight64.to(dtype), device), _finish(x64.to(dtype), device)

    def reference() -> torch.Tensor:
        z = torch.zeros_like(x64)
        eye = torch.eye(dim, dtype=torch.float64)
        for _ in range(100):
            fz = torch.tanh(z @ weight64.T + x64)
            residual = fz - z
            if float(residual.abs().max()) < 1e-14:
                break
            slope = 1 - fz**2
            jac = eye - slope[:, :, None] * weight64
            # Newton on z − f(z) = 0, whose Jacobian is I − diag(1 − f²) W.
            z = z + torch.linalg.solve(jac, residual[..., None]).squeeze(-1)
        return _finish(z.to(dtype), device)

    return FixedPointProblem(
        name="tanh",
        f=lambda z: torch.tanh(z @ weight.T + x),
        z0=torch.zeros_like(x),
        params={
            "dim": dim,
            "spectral_radius": spectral_radius,
            "symmetric": symmetric,
            "batch": batch,
            "seed": seed,
        },
        description=f"tanh layer, {'symmetric' if symmetric else 'non-symmetric'} W, ρ = "
        f"{spectral_radius}",
        _reference=reference,
    )


def rotation(
    angle: float = 1.0,
    *,
    scale: float = 1.0,
    dim: int = 2,
    batch: int = 2,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """``f(z) = c + scale · R (z − c)`` with ``R`` a rotation in ``dim / 2`` planes.

    Every eigenvalue has modulus ``scale``: with ``scale >= 1`` forward iteration circles or
    spirals away forever, while Anderson (GMRES on a small linear problem) converges within
    ``dim + 1`` steps.
    """
    dim = check_int("dim", dim, minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even for a rotation, got {dim}")
    scale = check_real("scale", scale, low=0.0, low_open=True)
    batch = check_int("batch", batch, minimum=1)
    matrix = torch.zeros(dim, dim, dtype=torch.float64)
    for block in range(dim // 2):
        theta = angle * (block + 1) / (dim // 2)
        c, s = math.cos(theta), math.sin(theta)
        i = 2 * block
        matrix[i : i + 2, i : i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    matrix = _finish((scale * matrix).to(dtype), device)
    center = _finish(torch.linspace(1.0, 2.0, batch * dim, dtype=dtype).reshape(batch, dim), device)
    return FixedPointProblem(
        name="rotation",
        f=lambda z: center + (z - center) @ matrix.T,
        z0=torch.zeros_like(center),
        params={"angle": angle, "scale": scale, "dim": dim, "batch": batch},
        description=f"rotation by {angle} rad scaled by {scale}",
        _z_star=center,
    )


class ConvCell(torch.nn.Module):
    """The DEQ image cell: ``f(z, x) = GN(relu(z + GN(x + conv₂(GN(relu(conv₁ z))))))``.

    Two 3×3 convolutions (``channels → hidden → channels``) with GroupNorm, weights drawn
    from ``N(0, weight_std²)``, as in the implicit-layers tutorial's CIFAR-10 model.
    """

    def __init__(
        self, channels: int = 48, hidden: int = 64, groups: int = 8, weight_std: float = 0.01
    ) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(channels, hidden, 3, padding=1, bias=False)
        self.conv2 = torch.nn.Conv2d(hidden, channels, 3, padding=1, bias=False)
        self.norm1 = torch.nn.GroupNorm(groups, hidden)
        self.norm2 = torch.nn.GroupNorm(groups, channels)
        self.norm3 = torch.nn.GroupNorm(groups, channels)
        for conv in (self.conv1, self.conv2):
            torch.nn.init.normal_(conv.weight, std=weight_std)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(torch.relu(self.conv1(z)))
        return self.norm3(torch.relu(z + self.norm2(x + self.conv2(y))))


def conv_cell(
    *,
    channels: int = 48,
    hidden: int = 64,
    size: int = 32,
    batch: int = 32,
    weight_std: float = 0.01,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> FixedPointProblem:
    """A DEQ-style convolutional cell on ``(batch, channels, size, size)`` states.

    ``weight_std`` sets how contractive the untrained cell is: the default 0.01 is very
    contractive (few iterations); larger values (for example 0.05) behave more like a
    trained cell and need many more. ``f`` runs under ``torch.no_grad()``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_int("seed", seed, minimum=0))
        cell = ConvCell(channels, hidden, weight_std=weight_std).to(dtype=dtype, device=device)
    cell.eval()
    gen = _generator(seed + 1)
    x = torch.randn(batch, channels, size, size, generator=gen, dtype=dtype).to(device)

    def f(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return cell(z, x)

    return FixedPointProblem(
        name="conv",
        f=f,
        z0=torch.zeros_like(x),
        params={
            "channels": channels,
            "hidden": hidden,
            "size": size,
            "batch": batch,
            "weight_std": weight_std,
            "seed": seed,
        },
        description=f"GroupNorm ResNet cell, {channels}x{size}x{size}, batch {batch}",
    )


PROBLEMS: dict[str, Callable[..., FixedPointProblem]] = {
    "geometric": geometric_decay,
    "cosine": cosine,
    "affine": affine_contraction,
    "linear": linear_map,
    "tanh": tanh_layer,
    "rotation": rotation,
    "conv": conv_cell,
}
"""Problem constructors by name."""


def make_problem(name: str, **params: Any) -> FixedPointProblem:
    """Build a teaching problem by name (see :data:`PROBLEMS`)."""
    if name not in PROBLEMS:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {name!r}")
    return PROBLEMS[name](**params)
