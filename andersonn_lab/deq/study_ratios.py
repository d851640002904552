"""Ratios of the speed-up study: forward iteration over Anderson, and how to read them.

Examples
--------
>>> ratio(160, 32)
5.0
>>> speedup_label({"fwd_unconverged": 0}, {"fwd_unconverged": 0})
'both converged'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ratio", "speedup_label", "speedup_ratios", "time_to_target"]


def speedup_label(
    anderson: Mapping[str, Any], forward: Mapping[str, Any], phase: str = "fwd"
) -> str:
    """How to read the forward / Anderson ratio of one phase (``"fwd"`` or ``"bwd"``).

    Examples
    --------
    >>> speedup_label({"fwd_unconverged": 0}, {"fwd_unconverged": 3})
    'forward hit cap: ratio is a lower bound'
    >>> speedup_label({"fwd_unconverged": 0}, {"fwd_unconverged": 0})
    'both converged'
    """
    a_bad = bool(anderson.get(f"{phase}_unconverged"))
    f_bad = bool(forward.get(f"{phase}_unconverged"))
    if a_bad and f_bad:
        return "neither converged: not comparable"
    if a_bad:
        return "anderson did not converge"
    if f_bad:
        return "forward hit cap: ratio is a lower bound"
    return "both converged"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` as a float; None when either is missing or the
    denominator is not positive (a ratio the study cannot state).

    Examples
    --------
    >>> ratio(167, 18)
    9.277777777777779
    >>> ratio(3, 0) is None, ratio(None, 2) is None
    (True, True)
    """
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return float(numerator) / float(denominator)


def speedup_ratios(anderson: Mapping[str, Any], forward: Mapping[str, Any]) -> dict[str, Any]:
    """Forward / Anderson ratios of two :func:`measure_solve` rows, with their labels.

    Returns
    -------
    dict
        ``fwd_nfe_ratio`` (evaluations of the batch), ``fwd_time_ratio`` (median wall time),
        ``fwd_steps_ratio`` (steps per sample), ``fwd_label`` (:func:`speedup_label`), and
        the same with ``bwd_``; a ratio is None where :func:`ratio` gives None.

    Examples
    --------
    >>> a = {"fwd_nfe": 18, "fwd_time": 0.1, "fwd_steps_mean": 12.0, "fwd_unconverged": 0,
    ...      "bwd_nfe": None, "bwd_time": None, "bwd_steps_mean": None, "bwd_unconverged": None}
    >>> f = {**a, "fwd_nfe": 167, "fwd_time": 0.78, "fwd_steps_mean": 166.0}
    >>> out = speedup_ratios(a, f)
    >>> round(out["fwd_nfe_ratio"], 2), out["bwd_nfe_ratio"], out["fwd_label"]
    (9.28, None, 'both converged')
    """
    return {
        "fwd_nfe_ratio": ratio(forward["fwd_nfe"], anderson["fwd_nfe"]),
        "fwd_time_ratio": ratio(forward["fwd_time"], anderson["fwd_time"]),
        "fwd_steps_ratio": ratio(forward["fwd_steps_mean"], anderson["fwd_steps_mean"]),
        "fwd_label": speedup_label(anderson, forward, "fwd"),
        "bwd_nfe_ratio": ratio(forward["bwd_nfe"], anderson["bwd_nfe"]),
        "bwd_time_ratio": ratio(forward["bwd_time"], anderson["bwd_time"]),
        "bwd_steps_ratio": ratio(forward["bwd_steps_mean"], anderson["bwd_steps_mean"]),
        "bwd_label": speedup_label(anderson, forward, "bwd"),
    }


def time_to_target(history: Sequence[Mapping[str, Any]], target: float) -> dict[str, Any]:
    """Training seconds (``time_epoch`` summed, validation excluded) until ``val_acc`` first
    reaches ``target``.

    Examples
    --------
    >>> history = [{"epoch": 1, "val_acc": 0.5, "time_epoch": 2.0},
    ...            {"epoch": 2, "val_acc": 0.8, "time_epoch": 3.0}]
    >>> time_to_target(history, 0.7)
    {'reached': True, 'epoch': 2, 'seconds': 5.0}
    >>> time_to_target(history, 0.9)["reached"]
    False
    """
    elapsed = 0.0
    for metrics in history:
        elapsed += float(metrics["time_epoch"])
        acc = metrics.get("val_acc")
        if acc is not None and not math.isnan(acc) and acc >= target - 1e-12:
            return {"reached": True, "epoch": int(metrics["epoch"]), "seconds": elapsed}
    return {"reached": False, "epoch": None, "seconds": elapsed}
