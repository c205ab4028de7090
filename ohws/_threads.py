"""Elastic pools of daemon threads: the dispatch pool and the pool of connection threads.

Starting a thread costs ~110 µs here, handing a job to a waiting one ~20 µs, so threads are
reused. A pool starts a worker when jobs outnumber the workers waiting for one, up to
``max_workers``; an idle worker exits after ``idle_seconds``, or at once when ``max_idle``
workers already wait. Jobs go through a C ``SimpleQueue``; a job must not raise.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "OpeningPace",
    "Pool",
    "connection_threads",
    "dispatch_threads",
    "handshake_threads",
    "opening_pace",
    "opening_threads",
]


class Pool:
    def __init__(
        self,
        prefix: str,
        max_workers: int | None = None,
        idle_seconds: float = 10.0,
        max_idle: int | None = None,
    ) -> None:
        self._prefix = prefix
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
        self._count_lock = threading.Lock()  # guards _idle, _pending and _workers
        self._idle = 0  # workers waiting in get()
        # Jobs submitted and not yet counted as taken. Not _jobs.qsize(): get() takes a job at
        # once but the worker leaves _idle only later, under the lock; comparing _idle with
        # qsize() in that gap took the busy worker for an idle one and left the new job
        # waiting for it (a reader runs for a whole connection).
        self._pending = 0
        self._workers = 0
        #: the most workers; may be changed at any time (a new job looks at it)
        self.max_workers = max_workers
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._names = itertools.count(1)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        with self._count_lock:
            self._pending += 1
            start = self._pending > self._idle and (
                self.max_workers is None or self._workers < self.max_workers
            )
            if start:
                self._workers += 1
        self._jobs.put((fn, args))
        if start:
            name = f"{self._prefix}{next(self._names)}"
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        get, count_lock = self._jobs.get, self._count_lock
        me = threading.current_thread()
        idle_name = me.name
        while True:
            with count_lock:
                unserved = self._pending > self._idle  # a job no waiting worker will take
                if self._max_idle is not None and self._idle >= self._max_idle and not unserved:
                    self._workers -= 1
                    return
                self._idle += 1
            try:
                fn, args = get(timeout=self._idle_seconds)
            except queue.Empty:
                with count_lock:
                    self._idle -= 1
                    if self._pending <= self._idle:
                        self._workers -= 1
                        return
                continue
            with count_lock:
                self._idle -= 1
                self._pending -= 1
            fn(*args)
            del fn, args  # an idle worker must not keep its last job's objects alive
            if me.name != idle_name:
                me.name = idle_name


def run_named(name: str, fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(*args)`` on a connection thread that carries ``name`` while it runs."""
    threading.current_thread().name = name
    fn(*args)


#: where callbacks run: one lane per connection drains here (SPEC section 6)
dispatch_threads = Pool("ohws-dispatch-", max_workers=64)
#: reader and writer threads, reused across connections; idle ones are named ohws-idle-<k>
connection_threads = Pool("ohws-idle-", max_idle=16)


class OpeningPace:
    """How many client openings may run at once: few while they finish quickly (they are then
    CPU work, and more threads only contend for the GIL), more while they wait on the network
    (a distant server: more at once overlap those waits). The measure is a moving average of
    the time openings spend waiting on the network: connecting (TCP, proxy, TLS) and waiting
    for the server's answer, not their CPU work (issue 14); an opening that outlasts its
    connectTimeout counts that much when it runs out, also while its thread is still stuck in
    a step nothing can interrupt (a name lookup).

    Measured on loopback (2 cores, 10,000 connects, 3 interleaved rounds): 4 at once took
    7.1-7.7 s, 8 took 7.7-8.2 s, 16 took 8.5-9.8 s (4 lost one pair of three in a later
    sitting); contention also fragmented memory. Whole durations were the measure before: they
    grow with the number at once (each opening queues for the GIL behind the others), so once
    lifted the cap kept itself up; network waits grow little with it."""

    #: (the longest average network wait, in seconds, for this many openings at once)
    TIERS = ((0.01, 4), (0.04, 16))
    SLOW = 64  # openings at once when the average network wait is longer than all the tiers
    _WEIGHT = 0.1  # of the newest wait in the average

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.average = 0.0
        pool.max_workers = self.TIERS[0][1]

    def record(self, seconds: float) -> None:
        """One opening waited ``seconds`` on the network (all of it, if it failed); any thread."""
        self.average += (seconds - self.average) * self._WEIGHT  # a lost update costs nothing
        self._pool.max_workers = next(
            (count for longest, count in self.TIERS if self.average <= longest), self.SLOW
        )


#: where client connections open (connect, TLS, handshake) before a reader thread takes over:
#: at most OpeningPace's number at once, the others wait their turn (their connectTimeout
#: runs meanwhile)
opening_threads = Pool("ohws-idle-open-", max_idle=16)
opening_pace = OpeningPace(opening_threads)
#: where a server reads an accepted client's opening handshake; its admission limits bound these
handshake_threads = Pool("ohws-idle-accept-", max_idle=16)
