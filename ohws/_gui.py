"""Dispatchers that run a connection's callbacks on a GUI main thread (SPEC section 6).

Pass one as ``createWebSocket(dispatcher=...)``: every event callback, callback-style
result and promise handler of that connection then runs on the GUI thread, in order, so
widgets may be touched directly. Neither toolkit is imported until a dispatcher is made.

When the window is destroyed or the application quits, callbacks still pending are dropped
quietly (debug log on ``ohws``); connections can still be closed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from ._dispatch import Lane

__all__ = ["QtDispatcher", "TkDispatcher"]

logger = logging.getLogger("ohws")

Job = tuple[Callable[..., Any], tuple[Any, ...]]


class DispatcherClosed(RuntimeError):
    """The GUI loop is gone; the lane that submitted drops its callbacks."""


class _MainThreadQueue:
    """Jobs from any thread, run by the GUI thread when the toolkit calls ``_drain``.

    Subclasses arrange that call (Tk: ``after`` polling; Qt: a queued signal) and call
    ``_close`` when the loop ends.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._alive = True
        self._alive_lock = threading.Lock()  # submit vs close: no job slips in after close

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        with self._alive_lock:
            if not self._alive:
                raise DispatcherClosed(f"{type(self).__name__}: the GUI loop has ended")
            self._jobs.put((fn, args))
        self._wake()

    def _wake(self) -> None:
        """Tell the GUI thread there is work (default: it polls)."""

    def _drain(self) -> None:
        """GUI thread: run every queued job (lane drains log user exceptions themselves)."""
        while self._alive:
            try:
                fn, args = self._jobs.get_nowait()
            except queue.Empty:
                return
            fn(*args)

    def _close(self) -> None:
        """The loop ended: refuse new jobs, drop the queued ones, reset their lanes."""
        with self._alive_lock:
            self._alive = False
        dropped = 0
        while True:
            try:
                fn, _ = self._jobs.get_nowait()
            except queue.Empty:
                break
            owner = getattr(fn, "__self__", None)
            if isinstance(owner, Lane):
                owner.discard()
            dropped += 1
        if dropped:
            logger.debug(
                "ohws: %s: GUI loop ended; dropped %d pending callback batches", type(self).__name__, dropped
            )


class TkDispatcher(_MainThreadQueue):
    """Runs callbacks on the Tk main loop of ``root``. Create it on the Tk thread.

    Other threads only put jobs on a thread-safe queue; the Tk thread drains it every
    ``interval_ms`` through ``root.after``, so Tk is never called from another thread.
    """

    def __init__(self, root: Any, interval_ms: int = 5) -> None:
        super().__init__()
        self._root = root
        self._interval = interval_ms
        root.bind("<Destroy>", self._on_destroy, add="+")
        root.after(self._interval, self._poll)

    def _poll(self) -> None:
        self._drain()
        if self._alive:
            self._root.after(self._interval, self._poll)

    def _on_destroy(self, event: Any) -> None:
        if event.widget is self._root:  # not a child widget
            self._close()


class QtDispatcher(_MainThreadQueue):
    """Runs callbacks on the Qt main thread. Create it on that thread after ``QApplication``.

    A ``QObject`` living in the main thread carries a queued signal; emitting it from any
    thread makes the main thread drain the queue.
    """

    def __init__(self) -> None:
        super().__init__()
        from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

        app = QCoreApplication.instance()
        if app is None:
            raise RuntimeError("QtDispatcher needs a QApplication (create it first)")

        class _Invoker(QObject):
            wake = Signal()

        # Parented to the application, so that Qt, not Python's garbage collector (which may run
        # on any thread), owns the object; it is deleted on the main thread with deleteLater().
        self._invoker = _Invoker(app)
        self._invoker.wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)
        app.aboutToQuit.connect(self._close)

    def _wake(self) -> None:
        self._invoker.wake.emit()

    def __del__(self) -> None:
        invoker = getattr(self, "_invoker", None)
        if invoker is not None:
            with contextlib.suppress(RuntimeError):  # already deleted with the application
                invoker.deleteLater()
