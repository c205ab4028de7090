"""The heartbeat (SPEC 4.6), run by the shared timer thread so the reader can simply block in recv.

A ping goes out after ``interval`` seconds in which nothing was received. If nothing at all
arrives within ``pong_timeout`` after it, the connection is lost. Any received frame proves
liveness (not only a pong). ``pong_timeout`` 0 keeps pinging but never gives up. A ping that
cannot be sent, or a loss report that fails, leaves the heartbeat running: the loss is then
reported (again) one ``pong_timeout`` later.

``pause()`` suspends it while the reader deliberately stops reading (a full receive queue,
SPEC 13): it neither pings nor declares the connection lost then; ``resume()`` starts counting
afresh, as if a frame had just arrived.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

from ._timer import TimerHandle, call_later

__all__ = ["Heartbeat"]


class Heartbeat:
    """``received()`` is called by the reader after every read; the rest runs on the timer."""

    __slots__ = (
        "_interval",
        "_job",
        "_job_lock",
        "_last_received",
        "_on_lost",
        "_paused",
        "_ping_sent_at",
        "_pong_timeout",
        "_send_ping",
        "_stopped",
    )

    def __init__(
        self,
        interval: int,
        pong_timeout: int,
        send_ping: Callable[[bytes], object],
        on_lost: Callable[[str], None],
    ) -> None:
        self._interval = interval
        self._pong_timeout = pong_timeout
        self._send_ping = send_ping
        self._on_lost = on_lost
        self._last_received = time.monotonic()
        self._ping_sent_at: float | None = None
        self._job: TimerHandle | None = None
        self._job_lock = threading.Lock()
        self._stopped = False
        self._paused = False

    def received(self) -> None:
        """Something arrived: the connection is alive (a plain store; no lock on the hot path)."""
        self._last_received = time.monotonic()

    def start(self) -> None:
        with self._job_lock:
            self._schedule(self._interval)

    def stop(self) -> None:
        """Idempotent; a check already under way finishes but schedules nothing more."""
        with self._job_lock:
            self._stopped = True
            if self._job is not None:
                self._job.cancel()

    def pause(self) -> None:
        """Suspend pings and the liveness check until ``resume()``; idempotent."""
        with self._job_lock:
            self._paused = True
            if self._job is not None:
                self._job.cancel()
                self._job = None

    def resume(self) -> None:
        """Count afresh from now: the next ping is due ``interval`` seconds later; idempotent."""
        with self._job_lock:
            if not self._paused:
                return
            self._paused = False
            self._last_received = time.monotonic()
            self._ping_sent_at = None
            self._schedule(self._interval)

    def _schedule(self, delay: float) -> None:
        assert self._job_lock.locked()
        if self._interval and not self._stopped and not self._paused:
            self._job = call_later(max(delay, 0.0), self._check)

    def _check(self) -> None:
        # All of it under the lock, so that once pause() or stop() has returned no ping goes
        # out and no loss is reported (sending a ping and shutting the socket down take no
        # lock of ours). The next check is scheduled before calling out: if send_ping or
        # on_lost raises (the timer logs it), the heartbeat still goes on.
        with self._job_lock:
            job = self._job
            if self._stopped or self._paused or job is None or job.pending:
                return  # stopped, paused, or paused and resumed since: a fresh check is due
            now = time.monotonic()
            sent, last = self._ping_sent_at, self._last_received
            if sent is not None and last < sent and self._pong_timeout:
                deadline = sent + self._pong_timeout
                if now < deadline:
                    self._schedule(deadline - now)
                    return
                self._schedule(self._pong_timeout)  # reports again unless stop() comes first
                self._on_lost(
                    f"no pong or other frame within pongTimeout ({self._pong_timeout}s) after a ping"
                )
                return
            due = max(last, sent or 0.0) + self._interval
            if now < due:
                self._schedule(due - now)
                return
            self._ping_sent_at = now
            self._schedule(self._pong_timeout or self._interval)
            self._send_ping(struct.pack("!d", now))
