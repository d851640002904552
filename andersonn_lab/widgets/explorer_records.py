"""Plain records of the convergence explorer: status lines, runs, sweep points and the plot
traces a drawing layer copies into a figure (split from the controller, which fills them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..solvers import SolverResult

LEVELS = ("info", "running", "warning", "error")
"""Status levels, least to most severe."""


@dataclass(frozen=True)
class ExplorerStatus:
    """A one-line status for people: a level from :data:`LEVELS` and the text."""

    level: str = "info"
    text: str = ""


@dataclass(frozen=True)
class PlotTrace:
    """One line of a plot, as plain data (no plotting library involved).

    Attributes
    ----------
    name:
        Legend / hover name.
    x, y:
        Coordinates; non-finite ``y`` values are ``None`` (a gap in the line).
    role:
        ``"current"``, ``"previous"`` (faded history), ``"time"``, ``"nfe"``, ``"forward"``
        or ``"unconverged"`` (the crossover panel's lines and its marks of runs that stopped
        before the tolerance).
    method:
        ``"anderson"`` or ``"forward"``.
    color, opacity, dash, width, mode, showlegend, symbol, size:
        Styling (``symbol`` and ``size`` of the markers).
    yaxis:
        ``"y"`` or ``"y2"`` (the crossover panel's right axis).
    key:
        Changes whenever ``x`` or ``y`` change; a drawing layer may skip the data of traces
        whose key it has already drawn.
    """

    name: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]
    role: str
    method: str
    color: str
    opacity: float = 1.0
    dash: str = "solid"
    width: float = 2.0
    mode: str = "lines+markers"
    showlegend: bool = True
    yaxis: str = "y"
    key: tuple[Any, ...] = ()
    symbol: str = "circle"
    size: float = 4.0


@dataclass(frozen=True)
class PlotData:
    """Everything the residual panel shows: traces, the tolerance line and a title."""

    traces: tuple[PlotTrace, ...]
    tol: float
    title: str


@dataclass
class RunRecord:
    """One solve as the explorer keeps it: settings label, residual curve, outcome."""

    run_id: int
    method: str
    label: str
    x: list[int] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    finished: bool = False
    result: SolverResult | None = None
    wall_time: float = math.nan
    slot: int = -1


@dataclass(frozen=True)
class SweepPoint:
    """One point of the crossover sweep: Anderson with window ``m``.

    ``m`` is None for the forward-iteration reference run.
    """

    m: int | None
    wall_time: float
    nfe: int
    status: str


def plain_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def keep_in_history(record: RunRecord) -> bool:
    """Whether a finished run belongs in the history (stopped, partial runs do not)."""
    result = record.result
    return result is not None and "stopped" not in result.status_names


PLOT_POINTS = 250
"""Most points drawn per residual line: a 1,000-step run sends every 5th step (and the last),
so that live redraws stay small and the browser stays free to deliver a Stop click."""


def decimate(
    xs: Sequence[float], ys: Sequence[float], most: int = PLOT_POINTS
) -> tuple[list[float], list[float]]:
    """Every k-th point of a line, first and last kept, at most about ``most`` points.

    Examples
    --------
    >>> xs = list(range(1001))
    >>> small_x, small_y = decimate(xs, [float(x) for x in xs], most=250)
    >>> len(small_x), small_x[:3], small_x[-1], small_y[-1]
    (201, [0, 5, 10], 1000, 1000.0)
    >>> decimate([0, 1], [1.0, 0.5])
    ([0, 1], [1.0, 0.5])
    """
    n = len(xs)
    if n <= most:
        return list(xs), list(ys)
    step = -(-(n - 1) // (most - 1))
    keep = list(range(0, n, step))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def curve_values(residuals: torch.Tensor) -> list[float]:
    """``(n + 1, B)`` residual trace to one value per step: the batch's worst sample."""
    if residuals.shape[1] == 1:
        return residuals[:, 0].tolist()
    return residuals.max(dim=1).values.tolist()
