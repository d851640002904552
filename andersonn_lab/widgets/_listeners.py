"""Listeners of a controller's events, where a listener that raises never stops the work.

Every controller with listeners (the training dashboard's and the convergence explorer's)
keeps them in a :class:`Listeners`: a listener that raises (a figure that cannot be drawn,
a user's callback with a bug) is skipped for that event, the failure is kept as a short
text, and the controller shows that text in its status line while training or solving goes
on.
"""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str], None]

RAISED_LEVEL = {"info": "warning", "running": "warning"}
"""Status level shown when a drawing failure is added to a status of the given level
(``"warning"`` and ``"error"`` stay as they are)."""


class Listeners:
    """An ordered set of ``listener(event)`` callables, called one after the other.

    Attributes
    ----------
    failure:
        ``"drawing failed on 'event': Type: message"`` for the first listener that raised
        since :meth:`clear_failure`, or None.

    Examples
    --------
    >>> listeners, seen = Listeners(), []
    >>> _ = listeners.add(lambda event: 1 / 0)
    >>> _ = listeners.add(seen.append)
    >>> listeners.emit("batch"), seen
    (True, ['batch'])
    >>> listeners.failure
    "drawing failed on 'batch': ZeroDivisionError: division by zero"
    >>> annotate("info", "done", listeners.failure)[0]
    'warning'
    """

    def __init__(self) -> None:
        self._items: list[Listener] = []
        self.failure: str | None = None

    def add(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every event; returns a function that removes it.

        Raises
        ------
        TypeError
            If ``listener`` is not callable.
        """
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {type(listener).__name__}")
        self._items.append(listener)

        def remove() -> None:
            if listener in self._items:
                self._items.remove(listener)

        return remove

    def emit(self, event: str) -> bool:
        """Call every listener with ``event``; True when one of them raised.

        Every listener is called even after one raised; the failure is kept in
        :attr:`failure`, never raised.
        """
        failed = False
        for listener in list(self._items):
            try:
                listener(event)
            except Exception as exc:  # a drawing failure must never lose a run
                if self.failure is None:  # the first failure is the informative one
                    self.failure = f"drawing failed on {event!r}: {type(exc).__name__}: {exc}"
                failed = True
        return failed

    def clear_failure(self) -> None:
        """Forget the last failure (a new run starts with a clean status)."""
        self.failure = None


def annotate(level: str, text: str, failure: str | None) -> tuple[str, str]:
    """A status ``(level, text)`` with ``failure`` appended, raised to a warning at least.

    Examples
    --------
    >>> annotate("running", "training a…", "drawing failed on 'batch': E: x")
    ('warning', "training a… (drawing failed on 'batch': E: x)")
    >>> annotate("error", "no runs", None)
    ('error', 'no runs')
    """
    if not failure:
        return level, text
    return RAISED_LEVEL.get(level, level), f"{text} ({failure})"
