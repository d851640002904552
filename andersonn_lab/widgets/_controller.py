"""What the widget controllers that work in a background thread share.

The training dashboard's and the convergence explorer's controllers both keep listeners
(:class:`~andersonn_lab.widgets._listeners.Listeners`: a listener that raises never stops the
work), a status line that shows a listener's failure, a stop flag checked between batches or
steps, and a worker thread to wait for. :class:`WorkerController` holds that once; each
controller keeps what differs: when it counts as running, what stopping means, and the work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar

from ._listeners import Listener, Listeners, annotate

__all__ = ["WorkerController"]


class WorkerController:
    """Listeners, status, stop flag and worker thread of a widget controller.

    A subclass sets :attr:`status_class` (a ``(level, text)`` dataclass) and calls
    ``super().__init__()`` first in its own ``__init__``.

    Attributes
    ----------
    status:
        The status line: ``status_class(level, text)``, with the first listener failure since
        the last run appended (and the level raised to a warning at least).

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Status:
    ...     level: str = "info"
    ...     text: str = ""
    >>> class Counter(WorkerController):
    ...     status_class = Status
    >>> ctrl, seen = Counter(), []
    >>> _ = ctrl.add_listener(lambda event: 1 / 0)
    >>> _ = ctrl.add_listener(seen.append)
    >>> ctrl._set_status("info", "counted")
    >>> ctrl._emit("done")  # the failing listener turns the status into a warning
    >>> seen, ctrl.status.level, ctrl.status.text.split(" (")[0]
    (['done', 'status'], 'warning', 'counted')
    >>> ctrl.is_running, ctrl.join()
    (False, True)
    """

    status_class: ClassVar[Callable[[str, str], Any]]

    def __init__(self) -> None:
        self._listeners = Listeners()
        self._plain_status = ("info", "ready")
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = self.status_class("info", "ready")

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` on every event; returns a function that removes it.

        A listener that raises does not stop the work: the failure is shown in
        :attr:`status` (as a warning at least) until the next run starts.
        """
        return self._listeners.add(listener)

    def _emit(self, event: str) -> None:
        if self._listeners.emit(event):
            self._set_status(*self._plain_status)
            if event != "status":  # let the status line show the failure now
                self._listeners.emit("status")

    def _set_status(self, level: str, text: str, *, notify: bool = False) -> None:
        self._plain_status = (level, text)
        self.status = self.status_class(*annotate(level, text, self._listeners.failure))
        if notify:
            self._emit("status")

    # ------------------------------------------------------------------ the worker
    @property
    def is_running(self) -> bool:
        """Whether the worker thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread; True when no worker is left running."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return not self.is_running

    def _start_worker(self, target: Callable[..., Any], *args: Any, name: str) -> None:
        """Run ``target(*args)`` in a new daemon worker thread."""
        self._thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._thread.start()
