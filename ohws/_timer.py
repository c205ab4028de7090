"""One process-wide timer thread (``ohws-timer``) for deadlines a blocked thread cannot watch.

A reader blocked in ``recv`` or a writer blocked in ``sendall`` is woken by shutting the
socket down; this thread does that when ``closeTimeout`` or ``connectTimeout`` runs out.
Jobs must be short and never run user code. The thread starts on demand and exits when idle.
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


class TimerHandle:
    __slots__ = ("_fn", "cancelled", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self._fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        """Idempotent; a job already running is not interrupted."""
        self.cancelled = True

    def run(self) -> None:
        if not self.cancelled:
            self._fn()


class _Timer:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._changed = threading.Condition(threading.Lock())
        self._seq = itertools.count()
        self._running = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> TimerHandle:
        handle = TimerHandle(time.monotonic() + delay, fn)
        with self._changed:
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            self._changed.notify()
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="ohws-timer", daemon=True).start()
        return handle

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    while self._heap and self._heap[0][2].cancelled:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        if not self._changed.wait(_IDLE_SECONDS) and not self._heap:
                            self._running = False
                            return
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        handle = heapq.heappop(self._heap)[2]
                        break
                    self._changed.wait(delay)
            try:
                handle.run()
            except Exception:  # pragma: no cover - jobs are library code that must not raise
                logger.exception("ohws: timer job failed")


_timer = _Timer()


def call_later(delay: float, fn: Callable[[], None]) -> TimerHandle:
    """Run ``fn()`` on the timer thread after ``delay`` seconds unless cancelled first."""
    return _timer.call_later(delay, fn)
