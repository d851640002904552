"""Anderson extrapolation one step at a time on a 2-D problem, as plain data (no widgets).

:class:`AndersonStepController` runs Anderson (type II, mixing ``β``, relative ridge ``λ``)
on a two-dimensional fixed-point problem and keeps, for every step, what the step used: the
window's iterates ``z_i``, their images ``f(z_i)`` and residuals ``g_i = f(z_i) − z_i``, the
mixing weights ``α`` (``Σ α_i = 1``, minimising ``‖Σ α_i g_i‖²`` plus the ridge) and the
extrapolated point ``Σ α_i f(z_i) − (1 − β) Σ α_i g_i``. Its least squares is its own,
written for two dimensions and checked against the project's
:class:`~andersonn_lab.solvers.Anderson` (:meth:`AndersonStepController.solver_iterates`).

Examples
--------
>>> ctrl = AndersonStepController("rotation", m=2, scale=1.0)
>>> forward = AndersonStepController("rotation", m=0, scale=1.0)
>>> ctrl.frames[-1].residual < 1e-12, forward.frames[-1].residual > 0.1
(True, True)
>>> [round(a, 6) for a in ctrl.frames[1].alpha.tolist()]  # two iterates in the window
[0.5, 0.5]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..solvers import make_solver
from ..solvers.problems import DOTTIE, FixedPointProblem, cosine, rotation
from .explorer_controller import PlotTrace

__all__ = ["PROBLEMS_2D", "AndersonStepController", "StepFrame"]

PROBLEMS_2D = ("rotation", "cosine")
"""The 2-D problems: a scaled rotation about (1, 2) and ``z = cos z`` in two coordinates."""

WINDOW_COLOR = "#1f77b4"
RESIDUAL_COLOR = "#2ca02c"
NEXT_COLOR = "#d62728"
PATH_COLOR = "#9e9e9e"


@dataclass(frozen=True)
class StepFrame:
    """One Anderson step: what the window held and where it went.

    Attributes
    ----------
    iteration:
        ``k``: the step computes ``z_{k+1}`` from the window ending at ``z_k``.
    window:
        Iteration indices of the window's iterates, oldest first.
    z, fz, g:
        ``(n, 2)``: the window's iterates, their images and residuals ``f(z) − z``.
    alpha:
        ``(n,)`` mixing weights (``1`` on the newest iterate when the window holds one).
    next_z:
        The extrapolated point ``z_{k+1}``.
    plain_z:
        Where a plain damped step from ``z_k`` would go: ``z_k + β g_k``.
    residual:
        ``‖g_k‖``, the residual at ``z_k``.
    """

    iteration: int
    window: tuple[int, ...]
    z: np.ndarray
    fz: np.ndarray
    g: np.ndarray
    alpha: np.ndarray
    next_z: np.ndarray
    plain_z: np.ndarray
    residual: float


def mixing_weights(g: np.ndarray, lam: float) -> np.ndarray:
    """``α`` minimising ``‖Σ α_i g_i‖² + λ Σ α_i² ‖g_i‖²`` subject to ``Σ α_i = 1``.

    The Lagrange conditions give ``(G + λ diag G) y = 1``, ``α = y / Σ y`` with ``G`` the
    Gram matrix of the residuals (the ridge relative to each residual, as the solver's).
    A singular system (residuals that are linearly dependent, without a ridge) is solved
    as ``min ‖g_n + Σ c_i (g_i − g_n)‖`` by minimum-norm least squares instead.

    Examples
    --------
    >>> mixing_weights(np.array([[1.0, 0.0], [-1.0, 0.0]]), 0.0).tolist()
    [0.5, 0.5]
    """
    gram = g @ g.T
    system = gram + lam * np.diag(np.diag(gram))
    try:
        y = np.linalg.solve(system, np.ones(len(g)))
        total = y.sum()
        if np.isfinite(total) and abs(total) > 1e-300:
            return y / total
    except np.linalg.LinAlgError:
        pass
    # Singular: the same problem without the constraint, in differences to the newest
    # residual, by minimum-norm least squares.
    diffs = (g[:-1] - g[-1]).T
    c = np.linalg.lstsq(diffs, -g[-1], rcond=None)[0]
    return np.append(c, 1.0 - c.sum())


class AndersonStepController:
    """Anderson on a 2-D problem, step by step: frames, a cursor, plot data.

    Parameters
    ----------
    problem:
        ``"rotation"`` (``f(z) = c + s R(θ)(z − c)``, every eigenvalue of modulus ``s``:
        forward iteration circles forever at ``s = 1``) or ``"cosine"`` (``z = cos z`` in
        each coordinate, from ``(−1, 1)``), or any 2-D
        :class:`~andersonn_lab.solvers.problems.FixedPointProblem` (``z0`` shaped ``(1, 2)``).
    m:
        Window: the last ``m + 1`` iterates are mixed (``m = 0``: forward iteration).
    beta:
        Mixing ``β`` in ``(0, 2]``.
    lam:
        Relative ridge ``λ >= 0`` (a little keeps the 2-D least squares well posed once the
        window holds more than two residuals).
    scale, angle:
        The rotation's contraction ``s`` and angle ``θ`` (radians).
    steps:
        Most steps computed; stops earlier at a residual below ``1e-13``.

    Attributes
    ----------
    frames:
        One :class:`StepFrame` per step.
    index:
        The frame shown (see :meth:`next`, :meth:`previous`).
    iterates:
        ``(n, 2)``: ``z_0, z_1, ...``.
    """

    def __init__(
        self,
        problem: str | FixedPointProblem = "rotation",
        *,
        m: int = 2,
        beta: float = 1.0,
        lam: float = 1e-10,
        scale: float = 0.95,
        angle: float = 1.0,
        steps: int = 30,
    ) -> None:
        self.problem_name = problem if isinstance(problem, str) else problem.name
        self._custom = None if isinstance(problem, str) else problem
        self.m, self.beta, self.lam = m, beta, lam
        self.scale, self.angle, self.steps = scale, angle, steps
        self.index = 0
        self.frames: list[StepFrame] = []
        self.iterates = np.zeros((0, 2))
        self._listeners: list[Callable[[], None]] = []
        self.recompute()

    # ------------------------------------------------------------------ settings
    def _check(self) -> None:
        if self.problem_name not in PROBLEMS_2D and self._custom is None:
            raise ValueError(f"problem must be one of {PROBLEMS_2D}, got {self.problem_name!r}")
        if isinstance(self.m, bool) or not isinstance(self.m, int) or self.m < 0:
            raise ValueError(f"m must be an integer >= 0, got {self.m!r}")
        if not 0 < self.beta <= 2:
            raise ValueError(f"beta must lie in (0, 2], got {self.beta}")
        if not self.lam >= 0:
            raise ValueError(f"lam must be >= 0, got {self.lam}")
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {self.steps!r}")

    @property
    def problem(self) -> FixedPointProblem:
        """The 2-D problem (batch of one)."""
        if self._custom is not None:
            return self._custom
        if self.problem_name == "rotation":
            return rotation(self.angle, scale=self.scale, dim=2, batch=1)
        return cosine(dim=2, batch=1)

    def fixed_point(self) -> np.ndarray | None:
        """``z*`` where known."""
        if self.problem_name == "cosine" and self._custom is None:
            return np.full(2, DOTTIE)
        z_star = self.problem.z_star
        return None if z_star is None else z_star[0].double().numpy()

    def set(self, **settings: float | int | str) -> None:
        """Change settings (``m``, ``beta``, ``lam``, ``scale``, ``angle``, ``steps``,
        ``problem``) and recompute; the cursor stays on the same step where it exists.
        A bad value raises ValueError and leaves the settings as they were."""
        old = {name: getattr(self, name) for name in ("m", "beta", "lam", "scale", "angle")}
        old.update(steps=self.steps, problem_name=self.problem_name)
        for name, value in settings.items():
            attr = "problem_name" if name == "problem" else name
            if attr not in old:
                raise TypeError(f"unknown setting {name!r}")
            setattr(self, attr, value)
        try:
            self.recompute()
        except ValueError:
            for name, value in old.items():
                setattr(self, name, value)
            self.recompute()
            raise

    # ------------------------------------------------------------------ computing
    def recompute(self) -> None:
        """Run the steps with the current settings."""
        self._check()
        problem = self.problem

        def f(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = problem.f(torch.as_tensor(z, dtype=torch.float64)[None])
            return out[0].double().numpy()

        z = problem.z0[0].double().numpy().copy()
        zs, fzs = [z], [f(z)]
        frames = []
        for k in range(self.steps):
            first = max(0, k - self.m)
            window_z = np.array(zs[first : k + 1])
            window_f = np.array(fzs[first : k + 1])
            window_g = window_f - window_z
            residual = float(np.linalg.norm(window_g[-1]))
            if len(window_z) == 1:
                alpha = np.ones(1)
            else:
                alpha = mixing_weights(window_g, self.lam)
            next_z = alpha @ window_f - (1 - self.beta) * (alpha @ window_g)
            plain = window_z[-1] + self.beta * window_g[-1]
            frames.append(
                StepFrame(
                    k,
                    tuple(range(first, k + 1)),
                    window_z,
                    window_f,
                    window_g,
                    alpha,
                    next_z,
                    plain,
                    residual,
                )
            )
            if residual < 1e-13 or not np.all(np.isfinite(next_z)):
                break
            zs.append(next_z)
            fzs.append(f(next_z))
        self.frames = frames
        self.iterates = np.array(zs)
        self.index = min(self.index, len(frames) - 1)
        self._notify()

    def solver_iterates(self) -> np.ndarray:
        """The iterates of the project's :class:`~andersonn_lab.solvers.Anderson` (or
        forward iteration for ``m = 0``) with the same settings, step by step; the safeguard
        is off so that the two follow the same algorithm."""
        problem = self.problem
        solver = make_solver(
            "anderson",
            m=self.m,
            beta=self.beta,
            lam=self.lam,
            tol=1e-300,
            max_iter=len(self.iterates) - 1 or 1,
            safeguard=math.inf,
            max_weight=math.inf,
        )
        state = solver.init(problem.f, problem.z0)
        out = [state.z[0].double().numpy().copy()]
        while len(out) < len(self.iterates) and not solver.done(state):
            solver.step(problem.f, state)
            out.append(state.z[0].double().numpy().copy())
        return np.array(out)

    # ------------------------------------------------------------------ cursor
    @property
    def frame(self) -> StepFrame:
        """The frame shown."""
        return self.frames[self.index]

    def next(self) -> int:
        """Show the next step (stays on the last); returns the index."""
        self.index = min(self.index + 1, len(self.frames) - 1)
        self._notify()
        return self.index

    def previous(self) -> int:
        """Show the previous step (stays on the first); returns the index."""
        self.index = max(self.index - 1, 0)
        self._notify()
        return self.index

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of frames or cursor."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    # ------------------------------------------------------------------ plot data
    def describe(self) -> str:
        """One line about the frame shown."""
        fr = self.frame
        weights = ", ".join(f"{a:+.3f}" for a in fr.alpha)
        return (
            f"step {fr.iteration + 1} of {len(self.frames)}: residual ‖g_{fr.iteration}‖ = "
            f"{fr.residual:.2e}; window z_{fr.window[0]}…z_{fr.window[-1]}; α = [{weights}] "
            f"(Σ α = {fr.alpha.sum():.3f})"
        )

    def plane_data(self) -> tuple[PlotTrace, ...]:
        """The plane: path so far, the window, its residual arrows, the plain and the
        extrapolated next point, and the fixed point."""
        fr = self.frame
        path = self.iterates[: fr.iteration + 1]
        arrows_x: list[float | None] = []
        arrows_y: list[float | None] = []
        for z, fz in zip(fr.z, fr.fz, strict=True):
            arrows_x += [float(z[0]), float(fz[0]), None]
            arrows_y += [float(z[1]), float(fz[1]), None]
        key = (self.problem_name, self.m, self.beta, self.lam, self.scale, self.angle, fr.iteration)
        traces = [
            PlotTrace(
                "iterates z_0…z_k",
                tuple(path[:, 0].tolist()),
                tuple(path[:, 1].tolist()),
                "path",
                "anderson",
                PATH_COLOR,
                width=1,
                key=("path", *key),
            ),
            PlotTrace(
                f"window ({len(fr.window)} iterates)",
                tuple(fr.z[:, 0].tolist()),
                tuple(fr.z[:, 1].tolist()),
                "window",
                "anderson",
                WINDOW_COLOR,
                mode="markers",
                key=("window", *key),
            ),
            PlotTrace(
                "residuals g_i = f(z_i) − z_i",
                tuple(arrows_x),
                tuple(arrows_y),
                "residual",
                "anderson",
                RESIDUAL_COLOR,
                mode="lines",
                width=2,
                key=("residual", *key),
            ),
            PlotTrace(
                "plain step z_k + β g_k",
                (float(fr.plain_z[0]),),
                (float(fr.plain_z[1]),),
                "plain",
                "forward",
                "#ff7f0e",
                mode="markers",
                key=("plain", *key),
            ),
            PlotTrace(
                "extrapolated z_{k+1}",
                (float(fr.next_z[0]),),
                (float(fr.next_z[1]),),
                "next",
                "anderson",
                NEXT_COLOR,
                mode="markers",
                key=("next", *key),
            ),
        ]
        z_star = self.fixed_point()
        if z_star is not None:
            traces.append(
                PlotTrace(
                    "fixed point z*",
                    (float(z_star[0]),),
                    (float(z_star[1]),),
                    "fixed",
                    "",
                    "#000000",
                    mode="markers",
                    key=("fixed", self.problem_name, self.scale, self.angle),
                )
            )
        return tuple(traces)

    def alpha_data(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Bar labels (``α_i`` of iterate ``z_i``) and the weights of the frame shown."""
        fr = self.frame
        return tuple(f"z_{i}" for i in fr.window), tuple(float(a) for a in fr.alpha)
