"""A wall-clock throttle: let an action through at most once per interval."""

from __future__ import annotations

import time
from collections.abc import Callable


class Throttle:
    """Decide whether enough wall time has passed to act again.

    The first call to :meth:`ready` after construction or :meth:`reset` lets the action
    through, so that a fresh run shows its first point at once; after that, at most one
    call per ``interval`` seconds does. An interval of 0 lets every call through.

    Parameters
    ----------
    interval:
        Smallest time between two accepted calls, in seconds (``>= 0``).
    clock:
        Monotonic clock returning seconds; :func:`time.perf_counter` by default.

    Examples
    --------
    >>> ticks = iter([0.0, 0.05, 0.12, 0.13])
    >>> throttle = Throttle(0.1, clock=lambda: next(ticks))
    >>> [throttle.ready() for _ in range(4)]
    [True, False, True, False]
    """

    def __init__(self, interval: float = 0.1, *, clock: Callable[[], float] | None = None) -> None:
        if not interval >= 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval!r}")
        self.interval = float(interval)
        self._clock = clock or time.perf_counter
        self._last: float | None = None

    def ready(self) -> bool:
        """Return True (and restart the interval) when the action may run now."""
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True

    def reset(self) -> None:
        """Forget the last accepted call: the next :meth:`ready` answers True."""
        self._last = None
