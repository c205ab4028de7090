"""The script style's receive queue (SPEC 13): messages a blocking or asyncio script pulls.

The connection's **reader thread** fills the queue (never the lane: ``receive()`` on a GUI
thread cannot deadlock with a GUI dispatcher), from the handshake on and in order. When it
holds ``limit`` messages the reader waits in :meth:`ReceiveQueue.put` and so stops reading the
socket: TCP backpressure instead of loss or unbounded memory; the heartbeat is paused meanwhile
(``pause_reading``). ``discard()`` (the application's ``close()``) empties it and lets the
reader run on, so the close handshake can complete.

Pure threading: no socket I/O, no user code. ``_lock`` guards everything below it; the two
conditions share it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
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
        """What ``receive()`` raises: 2302999 giving the close code and reason."""
        if self.result is None:
            why = f" ({self.error.message})" if self.error is not None else ""
            return unknown_error(f"the connection is closed and no message is left{why}")
        return unknown_error(
            f"the connection is closed (code {self.result.code}, reason {self.result.reason!r})"
            " and no message is left"
        )


class ReceiveQueue:
    """Messages of one WebSocket, across its connections; see the module docstring."""

    def __init__(self, pause_reading: Callable[[bool], None]) -> None:
        self._pause_reading = pause_reading
        self._lock = Lock()
        self._not_empty = Condition(self._lock)  # getters wait here
        self._not_full = Condition(self._lock)  # the reader waits here
        self._items: deque[Data] = deque()
        self._limit = 0
        self._discarding = False
        self._ended: Ended | None = None
        self._error: BusinessError | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # ------------------------------------------------------------------ library side
    def begin(self, limit: int) -> None:
        """A new connection starts (``connect`` passed validation): take messages again."""
        with self._lock:
            self._limit = limit
            self._discarding = False
            self._ended = None
            self._error = None

    def put(self, data: Data) -> None:
        """Reader thread: append, waiting while the queue is full (``limit`` 0: never)."""
        with self._lock:
            if self._discarding:
                return
            limit = self._limit
            if limit and len(self._items) >= limit:
                self._pause_reading(True)
                try:
                    while len(self._items) >= limit and not self._discarding:
                        self._not_full.wait()
                finally:
                    self._pause_reading(False)
                if self._discarding:
                    return
            self._items.append(data)
            self._wake_getters()

    def failed(self, error: BusinessError) -> None:
        """An ``error`` event: iteration raises it once the queue is drained."""
        with self._lock:
            self._error = error

    def closed(self, result: CloseResult | None, error: BusinessError | None = None) -> None:
        """The connection is CLOSED (``result`` None: it never opened, ``error`` says why)."""
        with self._lock:
            if error is not None:
                self._error = error
            self._ended = Ended(self._error, result)
            self._wake_getters()

    def discard(self) -> None:
        """The application closes: drop what is queued, never wait again until ``begin``."""
        with self._lock:
            self._discarding = True
            self._items.clear()
            self._not_full.notify_all()

    def _wake_getters(self) -> None:
        assert self._lock.locked()
        self._not_empty.notify()
        if self._async_waiters:
            for loop, future in self._async_waiters:
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_set_done, future)
            self._async_waiters.clear()

    # ------------------------------------------------------------------ script side
    def _take(self) -> Data:
        assert self._lock.locked()
        item = self._items.popleft()
        if self._limit and len(self._items) == self._limit - 1:
            self._not_full.notify()
        return item

    def get(self, timeout: float | None) -> Data:
        """The next message; ``TimeoutError`` after ``timeout`` s; ``Ended`` once closed and empty."""
        with self._lock:
            if not self._not_empty.wait_for(self._ready, timeout):
                raise TimeoutError(f"no message within {timeout:g}s")
            if self._items:
                return self._take()
            assert self._ended is not None
            raise Ended(self._ended.error, self._ended.result)

    async def get_async(self) -> Data:
        """As ``get(None)`` without blocking the event loop."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._items:
                    return self._take()
                if self._ended is not None:
                    raise Ended(self._ended.error, self._ended.result)
                waiter: asyncio.Future[None] = loop.create_future()
                self._async_waiters.append((loop, waiter))
            try:
                await waiter
            finally:
                with self._lock, contextlib.suppress(ValueError):
                    self._async_waiters.remove((loop, waiter))

    def _ready(self) -> bool:
        return bool(self._items) or self._ended is not None


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class QueuedSink(EventSink):
    """An ``EventSink`` in front of the facade's: every message also goes to the queue.

    Listeners still run as before (the inner sink is called first, so a full queue never
    delays a ``message`` callback of a message already read).
    """

    __slots__ = ("_inner", "_queue")

    def __init__(self, inner: EventSink, queue: ReceiveQueue) -> None:
        self._inner = inner
        self._queue = queue

    def emit(self, event: str, *args: Any) -> None:
        self._inner.emit(event, *args)
        if event == "error":
            self._queue.failed(args[0])
        elif event == "close":
            self._queue.closed(args[1])

    def emit_message(self, data: Data) -> None:
        self._inner.emit_message(data)
        self._queue.put(data)
