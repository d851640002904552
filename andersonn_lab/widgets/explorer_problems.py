"""The convergence explorer's problem catalogue: which fixed-point problems it offers and how
each is built from the explorer's settings (split from the controller, which runs them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..solvers.problems import make_problem


class Problem(Protocol):
    """Anything the explorer can solve: a batched map ``f`` and a start ``z0`` (``(B, ...)``)."""

    f: Callable[[torch.Tensor], torch.Tensor]
    z0: torch.Tensor


@dataclass(frozen=True)
class ProblemSpec:
    """How the explorer builds one teaching problem from :class:`ExplorerSettings`.

    Attributes
    ----------
    name:
        Problem name (a key of :data:`andersonn_lab.solvers.problems.PROBLEMS`).
    uses:
        Which of ``"radius"``, ``"spectrum"``, ``"dim"`` the problem reads.
    radius_label:
        What ``radius`` means for this problem (shown on the slider).
    build:
        Settings to problem.
    """

    name: str
    uses: tuple[str, ...]
    radius_label: str
    build: Callable[[Any], Problem]


def conv_side(dim: int) -> int:
    return max(2, round(math.sqrt(dim / 8)))


PROBLEM_SPECS: dict[str, ProblemSpec] = {
    spec.name: spec
    for spec in (
        ProblemSpec(
            "linear",
            ("radius", "spectrum", "dim"),
            "radius ρ",
            lambda s: make_problem(
                "linear", dim=s.dim, spectrum=s.spectrum, radius=s.radius, batch=1, seed=s.seed
            ),
        ),
        ProblemSpec(
            "tanh",
            ("radius", "spectrum", "dim"),
            "ρ(W)",
            lambda s: make_problem(
                "tanh",
                dim=s.dim,
                spectral_radius=s.radius,
                symmetric=s.spectrum != "disk",
                batch=1,
                seed=s.seed,
            ),
        ),
        ProblemSpec(
            "rotation",
            ("radius", "dim"),
            "scale",
            lambda s: make_problem(
                "rotation", angle=1.0, scale=s.radius, dim=max(2, s.dim - s.dim % 2), batch=1
            ),
        ),
        ProblemSpec(
            "affine",
            ("radius", "dim"),
            "‖A‖₂",
            lambda s: make_problem("affine", contraction=s.radius, dim=s.dim, batch=1, seed=s.seed),
        ),
        ProblemSpec(
            "geometric",
            ("radius", "dim"),
            "rate",
            lambda s: make_problem("geometric", rate=s.radius, dim=s.dim, batch=1),
        ),
        ProblemSpec("cosine", ("dim",), "—", lambda s: make_problem("cosine", dim=s.dim, batch=1)),
        ProblemSpec(
            "conv",
            ("radius", "dim"),
            "weight ×0.05",
            lambda s: make_problem(
                "conv",
                channels=8,
                hidden=16,
                size=conv_side(s.dim),
                batch=1,
                weight_std=0.05 * s.radius,
                seed=s.seed,
            ),
        ),
    )
}
"""The teaching problems offered by the explorer, by name."""
