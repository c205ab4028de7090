"""Where user code runs (SPEC section 6): a shared thread pool and one ordered lane per connection.

A lane runs its jobs one at a time, in submission order, on whatever its dispatcher provides:
by default the shared pool of ``ohws-dispatch-<n>`` daemon threads, which grows while every
worker is busy (so a slow callback holds up only its own lane) and shrinks when idle.
Exceptions from user code are logged on the ``ohws`` logger and go no further.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ._errors import parameter_error
from ._threads import dispatch_threads

__all__ = ["Dispatcher", "Lane", "shared_pool"]

logger = logging.getLogger("ohws")

#: jobs a lane runs before it yields its worker to other lanes.
_LANE_BATCH = 256


class Dispatcher(Protocol):
    """Anything that can run ``fn(*args)`` later, e.g. on a GUI thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


_shared_pool = dispatch_threads


def shared_pool() -> Dispatcher:
    """The process-wide pool that runs every lane without a dispatcher of its own."""
    return _shared_pool


def run_user_code(fn: Callable[..., Any], *args: Any) -> None:
    """Call user code; log and swallow whatever it raises."""
    try:
        fn(*args)
    except Exception:
        logger.exception("ohws: exception in user callback %r", fn)


class _Barrier:
    """A lane job that only releases whoever waits for the jobs ahead of it."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn

    def __call__(self) -> None:
        self._fn()


class Lane:
    """An ordered queue of jobs for one connection; at most one runs at a time.

    ``submit`` may be called from any thread and never runs the job itself.
    """

    __slots__ = ("_dispatcher", "_head", "_jobs", "_jobs_lock", "_scheduled")

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        if dispatcher is None:
            dispatcher = _shared_pool
        elif not callable(getattr(dispatcher, "submit", None)):
            raise parameter_error(
                f"dispatcher must have a submit(fn, *args) method; a {type(dispatcher).__name__} has none"
            )
        self._dispatcher = dispatcher
        # The oldest job waits in _head, the later ones in _jobs. The deque is made by the
        # second job and freed when it runs empty: an idle lane (most of them, at scale)
        # holds none (~600 bytes even when empty), and a lane that gets one job at a time
        # (a message now and then) never makes one.
        self._head: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
        self._jobs: deque[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None
        self._jobs_lock = threading.Lock()
        self._scheduled = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        with self._jobs_lock:
            if self._head is None:
                self._head = (fn, args)
            else:
                jobs = self._jobs
                if jobs is None:
                    jobs = self._jobs = deque()
                jobs.append((fn, args))
            if self._scheduled:
                return
            self._scheduled = True
        self._schedule()

    def submit_barrier(self, fn: Callable[[], None], /) -> None:
        """Call ``fn`` once every job submitted before it has run.

        ``fn`` is ohws's own code (it must not raise, and may run on any thread): it also runs
        at once when the jobs ahead of it are dropped, because the dispatcher refused work or
        :meth:`discard` was called, so a close never waits for callbacks that will not run.
        """
        self.submit(_Barrier(fn))

    def _schedule(self) -> None:
        try:
            self._dispatcher.submit(self._drain)
        except Exception:
            # A dispatcher that refuses work (a destroyed GUI loop) drops this lane's jobs.
            dropped = self._drop_all()
            logger.debug("ohws: dispatcher refused work; dropped %d callbacks", dropped, exc_info=True)

    def discard(self) -> None:
        """Drop every pending job (its dispatcher will never run them); the lane stays usable."""
        self._drop_all()

    def _drop_all(self) -> int:
        with self._jobs_lock:
            jobs = [] if self._head is None else [self._head, *(self._jobs or ())]
            self._head = self._jobs = None
            self._scheduled = False
        for fn, _ in jobs:
            if isinstance(fn, _Barrier):
                fn()
        return len(jobs)

    def _drain(self) -> None:
        for _ in range(_LANE_BATCH):
            with self._jobs_lock:
                job = self._head
                if job is None:
                    self._scheduled = False
                    return
                jobs = self._jobs
                if jobs:
                    self._head = jobs.popleft()
                else:
                    self._head = self._jobs = None
            fn, args = job
            run_user_code(fn, *args)
        self._schedule()  # more work waits: yield the worker, keep our place in line
