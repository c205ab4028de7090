"""One process-wide timer thread (``ohws-timer``) for deadlines a blocked thread cannot watch.

A reader blocked in ``recv`` or a writer blocked in ``sendall`` is woken by shutting the
socket down; this thread does that when ``closeTimeout`` or ``connectTimeout`` runs out, and
it runs the heartbeat. Jobs must be short and never run user code. Deadlines fire within
``_TICK`` seconds. The thread starts on demand and exits when idle.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["TimerHandle", "call_later"]

logger = logging.getLogger("ohws")
_IDLE_SECONDS = 10.0
_TICK = 0.05  # deadlines fire at most this late


def _nothing() -> None:
    """What a cancelled handle holds instead of its job."""


class TimerHandle:
    __slots__ = ("_fn", "_timer", "cancelled", "when")

    def __init__(self, when: float, fn: Callable[[], None], timer: _Timer) -> None:
        self.when = when
        self._fn = fn
        self._timer: _Timer | None = timer  # None once popped from the heap
        self.cancelled = False

    def cancel(self) -> None:
        """Idempotent; a job already running is not interrupted. The job is dropped at once,
        so what it refers to (a whole connection, for a deadline) is not kept until ``when``."""
        timer = self._timer
        if timer is None:  # already taken out of the heap
            self.cancelled = True
            self._fn = _nothing
        else:
            timer.cancel(self)

    @property
    def pending(self) -> bool:
        """Still waiting for its time (not yet taken to run, not cancelled)."""
        return self._timer is not None and not self.cancelled

    def run(self) -> None:
        if not self.cancelled:
            self._fn()


class _Timer:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._seq = itertools.count()
        self._running = False
        self._cancelled = 0  # cancelled handles still in the heap

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + delay, fn, self)
        with self._lock:
            was_empty = not self._heap
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="ohws-timer", daemon=True).start()
            elif was_empty:
                self._changed.notify()  # the thread sleeps until idle timeout: wake it
            # Otherwise no notify: the thread looks at the heap at least every _TICK seconds, so
            # a new earlier deadline costs the caller nothing (a wake-up per connect and close did).
        return handle

    def cancel(self, handle: TimerHandle) -> None:
        with self._lock:
            if handle.cancelled:
                return
            handle.cancelled = True
            handle._fn = _nothing
            if handle._timer is None:
                return  # popped meanwhile: not in the heap any more
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 4 > len(self._heap):
                # A quarter cancelled (every open cancels its connectTimeout deadline, and a
                # connection that closes its heartbeat's): rebuild rather than keep them.
                for entry in self._heap:
                    if entry[2].cancelled:
                        entry[2]._timer = None
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)[2]._timer = None
                        self._cancelled -= 1
                    if not self._heap:
                        if not self._changed.wait(_IDLE_SECONDS) and not self._heap:
                            self._running = False
                            return
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        handle._timer = None  # a cancel() from now on no longer counts
                        break
                    self._changed.wait(min(delay, _TICK))
            try:
                handle.run()
            except Exception:
                # A bug in a job: logged, and the thread goes on with the other jobs. A job that
                # must keep running (the heartbeat) reschedules itself before it can fail.
                logger.exception("ohws: timer job %r failed", handle._fn)


_timer = _Timer()


def call_later(delay: float, fn: Callable[[], None]) -> TimerHandle:
    """Run ``fn()`` on the timer thread after ``delay`` seconds unless cancelled first."""
    return _timer.call_later(delay, fn)
