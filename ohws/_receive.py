"""The script style's receive queue (SPEC 13): messages a blocking or asyncio script pulls.

The connection's **reader thread** fills the queue (never the lane: ``receive()`` on a GUI
thread cannot deadlock with a GUI dispatcher), from the handshake on and in order. When it
holds ``limit`` messages the reader waits in :meth:`ReceiveQueue.put` and so stops reading the
socket: TCP backpressure instead of loss or unbounded memory; the heartbeat is paused meanwhile
(``pause_reading``). ``discard()`` (the application's ``close()``) empties it and lets the
reader run on, so the close handshake can complete.

Pure threading: no socket I/O, no user code. ``_lock`` guards the counters and flags; the
reader's condition shares it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from queue import Empty, SimpleQueue
from threading import Condition, Lock
from typing import Any

from ._connection import EventSink
from ._errors import BusinessError, unknown_error
from ._types import CloseResult

__all__ = ["Ended", "QueuedSink", "ReceiveQueue"]

Data = str | bytes


class Ended(Exception):
    """The connection is CLOSED and the queue is empty.

    ``error`` is the failure to raise from iteration (the ``error`` event of a 1006 or a
    protocol failure, or the rejected connect), None after a clean close.
    """

    def __init__(self, error: BusinessError | None, result: CloseResult | None) -> None:
        super().__init__(error, result)
        self.error = error
        self.result = result

    def as_receive_error(self) -> BusinessError:
        """What ``receive()`` raises: 2302999 giving the close code and reason, and the error
        that ended it, if any."""
        why = f" ({self.error.message})" if self.error is not None else ""
        if self.result is None:
            return unknown_error(f"the connection is closed and no message is left{why}")
        return unknown_error(
            f"the connection is closed (code {self.result.code}, reason {self.result.reason!r})"
            f" and no message is left{why}"
        )


class ReceiveQueue:
    """Messages of one WebSocket, across its connections; see the module docstring.

    The messages travel through a C ``SimpleQueue`` (the cheapest hand-over between two
    threads); the end of a connection is an :class:`Ended` marker queued after its last message,
    which a getter puts back so that every later call sees it too. ``_count`` (messages queued,
    markers excluded) decides when the reader must wait.
    """

    def __init__(self, pause_reading: Callable[[bool], None]) -> None:
        self._pause_reading = pause_reading
        self._items: SimpleQueue[Data | Ended] = SimpleQueue()
        self._lock = Lock()
        self._not_full = Condition(self._lock)  # the reader waits here
        self._count = 0
        self._limit = 0
        self._discarding = False
        self._error: BusinessError | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ library side
    def begin(self, limit: int) -> None:
        """A new connection starts (``connect`` passed validation): take messages again."""
        with self._lock:
            self._limit = limit
            self._discarding = False
            self._error = None
            # The previous connection's end marker must not end this one: keep only messages.
            kept = [item for item in self._drain() if not isinstance(item, Ended)]
            for item in kept:
                self._items.put(item)

    def put(self, data: Data) -> None:
        """Reader thread: append, waiting while the queue is full (``limit`` 0: never)."""
        with self._lock:
            if self._discarding:
                return
            limit = self._limit
            if limit and self._count >= limit:
                self._pause_reading(True)
                try:
                    while self._count >= limit and not self._discarding:
                        self._not_full.wait()
                finally:
                    self._pause_reading(False)
                if self._discarding:
                    return
            self._count += 1
            self._items.put(data)
            if self._async_waiters:
                self._wake_async()

    def failed(self, error: BusinessError) -> None:
        """An ``error`` event: iteration raises it once the queue is drained."""
        with self._lock:
            self._error = error

    def closed(self, result: CloseResult | None, error: BusinessError | None = None) -> None:
        """The connection is CLOSED (``result`` None: it never opened, ``error`` says why)."""
        with self._lock:
            if error is not None:
                self._error = error
            self._items.put(Ended(self._error, result))
            self._wake_async()

    def discard(self) -> None:
        """The application closes: drop what is queued, never wait again until ``begin``."""
        with self._lock:
            self._discarding = True
            for item in self._drain():
                if isinstance(item, Ended):
                    self._items.put(item)
            self._count = 0
            self._not_full.notify_all()

    def _drain(self) -> list[Data | Ended]:
        assert self._lock.locked()
        items = []
        with contextlib.suppress(Empty):
            while True:
                items.append(self._items.get_nowait())
        return items

    def _wake_async(self) -> None:
        assert self._lock.locked()
        for loop, future in self._async_waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_set_done, future)
        self._async_waiters.clear()

    # ------------------------------------------------------------------ script side
    def _taken(self, item: Data | Ended) -> Data:
        """Account for ``item`` just taken: a message makes room; an end marker goes back."""
        if isinstance(item, Ended):
            self._items.put(item)
            raise Ended(item.error, item.result)
        with self._lock:
            self._count -= 1
            if self._count == self._limit - 1:
                self._not_full.notify()
        return item

    def get(self, timeout: float | None) -> Data:
        """The next message; ``TimeoutError`` after ``timeout`` s; ``Ended`` once closed and empty."""
        try:
            item = self._items.get(timeout=timeout)
        except Empty:
            raise TimeoutError(f"no message within {timeout:g}s") from None
        return self._taken(item)

    async def get_async(self) -> Data:
        """As ``get(None)`` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                item = self._items.get_nowait()
            except Empty:
                with self._lock:  # put() queues under the lock: no wake-up is lost
                    ready = not self._items.empty()
                    if not ready:
                        waiter: asyncio.Future[None] = loop.create_future()
                        self._async_waiters.append((loop, waiter))
                if not ready:
                    try:
                        await waiter
                    finally:
                        with self._lock, contextlib.suppress(ValueError):
                            self._async_waiters.remove((loop, waiter))
                continue
            return self._taken(item)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class QueuedSink(EventSink):
    """An ``EventSink`` in front of the facade's: every message also goes to the queue.

    Listeners still run as before (the inner sink is called first, so a full queue never
    delays a ``message`` callback of a message already read).
    """

    __slots__ = ("_inner", "_queue", "_went_by", "reconnecting")

    def __init__(self, inner: EventSink, queue: ReceiveQueue) -> None:
        self._inner = inner
        self._queue = queue
        #: whether another connection follows this end (the reconnect option): then the
        #: queue goes on, one queue across reconnects (SPEC 14)
        self.reconnecting: Callable[[], bool] = lambda: False
        # The close of a connection that dropped while reconnecting, which did not end the
        # queue; until another connection opens, or the queue ends
        self._went_by: CloseResult | None = None

    def emit(self, event: str, *args: Any) -> None:
        self._inner.emit(event, *args)
        if event in ("error", "close") and self.reconnecting():
            if event == "close":
                self._went_by = args[1]
            return
        if event == "error":
            self._queue.failed(args[0])
        elif event == "close":
            self._went_by = None
            self._queue.closed(args[1])
        elif event == "open":
            self._went_by = None

    def emit_message(self, data: Data) -> None:
        self._inner.emit_message(data)
        self._queue.put(data)

    def begin(self) -> None:
        """A new ``connect()``: a close that went by in an earlier one is no longer news."""
        self._went_by = None

    def reconnecting_over(self) -> None:
        """Reconnecting gave up, or close() ended it between connections: the queue ends with
        the close of the connection that dropped last, if that close went by without ending
        it (otherwise it has ended, or a close event still to come ends it)."""
        went_by, self._went_by = self._went_by, None
        if went_by is not None:
            self._queue.closed(went_by)
