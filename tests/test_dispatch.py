"""SPEC section 6: lanes, the shared pool, and the exception rule."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import ohws
from ohws import BusinessError, webSocket
from ohws._dispatch import Lane
from ohws._threads import Pool, run_named
from ohws._timer import call_later

from .servers import TIMEOUT


def test_lane_runs_in_order_off_the_caller_thread() -> None:
    """Jobs run one at a time, in submission order, never on the submitting thread."""
    lane = Lane()
    seen: list[tuple[int, str]] = []
    done = threading.Event()
    for i in range(1000):
        lane.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
    lane.submit(done.set)
    assert done.wait(TIMEOUT)
    assert [i for i, _ in seen] == list(range(1000))
    assert all(name.startswith("ohws-dispatch-") for _, name in seen)


def test_lanes_run_in_parallel_and_a_slow_lane_blocks_only_itself() -> None:
    """A callback blocked on one lane does not stop another lane."""
    slow, fast = Lane(), Lane()
    release = threading.Event()
    fast_ran = threading.Event()
    slow.submit(release.wait, TIMEOUT)
    slow_after = threading.Event()
    slow.submit(slow_after.set)
    fast.submit(fast_ran.set)
    assert fast_ran.wait(TIMEOUT)
    assert not slow_after.is_set()
    release.set()
    assert slow_after.wait(TIMEOUT)


def test_user_exception_is_logged_and_later_jobs_run(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in user code is logged on 'ohws' with its traceback; the lane goes on."""
    lane = Lane()
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("user bug")

    with caplog.at_level(logging.ERROR, logger="ohws"):
        lane.submit(boom)
        lane.submit(done.set)
        assert done.wait(TIMEOUT)
    records = [r for r in caplog.records if r.name == "ohws"]
    assert records and records[0].exc_info is not None
    assert "user bug" in caplog.text


class ManualDispatcher:
    """A dispatcher that runs jobs only when the test says so (like a GUI loop)."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        self.jobs.put((fn, args))

    def run_pending(self) -> int:
        count = 0
        while not self.jobs.empty():
            fn, args = self.jobs.get_nowait()
            fn(*args)
            count += 1
        return count


def test_custom_dispatcher_receives_the_lane() -> None:
    """A lane with its own dispatcher runs there, in order, and only when that dispatcher runs."""
    dispatcher = ManualDispatcher()
    lane = Lane(dispatcher)
    seen: list[int] = []
    for i in range(600):
        lane.submit(seen.append, i)
    assert seen == []
    while dispatcher.run_pending():
        pass
    assert seen == list(range(600))


@pytest.mark.parametrize(
    "make",
    [
        lambda d: webSocket.createWebSocket(d),
        lambda d: webSocket.createWebSocket(dispatcher=d),
        lambda d: webSocket.createWebSocketServer(d),
        lambda d: ohws.connect("ws://127.0.0.1:1", dispatcher=d),
    ],
)
@pytest.mark.parametrize("dispatcher", [5, object(), "main", False])
def test_a_dispatcher_without_submit_is_401(make: Callable[[Any], Any], dispatcher: Any) -> None:
    """Something that cannot run callbacks is refused where it is given, instead of every
    callback of that connection being dropped later without a word."""
    with pytest.raises(BusinessError) as info:
        make(dispatcher)
    assert info.value.code == 401
    assert f"a {type(dispatcher).__name__} has none" in info.value.message


def test_refusing_dispatcher_drops_jobs_quietly(caplog: pytest.LogCaptureFixture) -> None:
    """A dispatcher that raises (a destroyed GUI loop) drops the jobs with a debug log only."""

    class Dead:
        def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
            raise RuntimeError("main loop is gone")

    lane = Lane(Dead())
    with caplog.at_level(logging.DEBUG, logger="ohws"):
        lane.submit(print, "never")
        lane.submit(print, "never either")
    assert "dropped" in caplog.text
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "ohws")


def test_pool_grows_while_busy_and_shrinks_when_idle() -> None:
    """Blocked workers make the pool start more; idle workers exit after the idle time."""
    pool = Pool("test-pool-", max_workers=4, idle_seconds=0.2)
    release = threading.Event()
    started: queue.Queue[str] = queue.Queue()

    def block() -> None:
        started.put(threading.current_thread().name)
        release.wait(TIMEOUT)

    for _ in range(3):
        pool.submit(block)
    names = {started.get(timeout=TIMEOUT) for _ in range(3)}
    assert len(names) == 3
    release.set()
    deadline = threading.Event()
    call_later(TIMEOUT, deadline.set)
    while pool._workers and not deadline.is_set():
        deadline.wait(0.05)
    assert pool._workers == 0


def test_timer_runs_and_cancels() -> None:
    """call_later runs a job after its delay; a cancelled job never runs."""
    ran = threading.Event()
    cancelled = threading.Event()
    handle = call_later(0.05, cancelled.set)
    handle.cancel()
    call_later(0.1, ran.set)
    assert ran.wait(TIMEOUT)
    assert not cancelled.is_set()


def wait_until_idle(pool: Pool, workers: int) -> None:
    """Until ``workers`` of the pool wait for a job (a bounded poll of its counter)."""
    deadline = time.monotonic() + TIMEOUT
    while pool._idle < workers:
        assert time.monotonic() < deadline, f"{pool._idle} of {workers} workers idle after {TIMEOUT}s"
        time.sleep(0.01)


def test_pool_reuses_threads_and_renames_them_back() -> None:
    """A finished job's thread goes back to the pool under its idle name and runs the next job."""
    pool = Pool("test-idle-", max_idle=4)
    names: queue.Queue[tuple[str, int]] = queue.Queue()
    for i in range(3):
        pool.submit(
            run_named,
            f"test-job-{i}",
            lambda: names.put((threading.current_thread().name, threading.get_ident())),
        )
        names_seen = names.get(timeout=TIMEOUT)
        assert names_seen[0] == f"test-job-{i}"
        wait_until_idle(pool, 1)  # else the next job rightly starts a thread of its own
    idle = [t for t in threading.enumerate() if t.name.startswith("test-idle-")]
    assert len(idle) == 1  # one thread served all three jobs, one after the other


def test_pool_keeps_at_most_max_idle_threads() -> None:
    """Beyond max_idle, a worker that finishes exits instead of waiting: 5 become 2 within
    TIMEOUT, long before an idle worker would exit of age (3 * TIMEOUT)."""
    pool = Pool("test-cap-", max_idle=2, idle_seconds=3 * TIMEOUT)
    release = threading.Event()
    started: queue.Queue[int] = queue.Queue()
    for _ in range(5):
        pool.submit(lambda: (started.put(1), release.wait(TIMEOUT)))
    for _ in range(5):
        started.get(timeout=TIMEOUT)
    release.set()
    deadline = time.monotonic() + TIMEOUT
    while pool._workers > 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (pool._workers, pool._idle) == (2, 2)


def test_a_job_submitted_while_a_worker_takes_another_gets_its_own_thread() -> None:
    """A worker that has taken a job but not yet counted itself busy is not idle: a job
    submitted in that moment starts on another thread instead of waiting for the first job
    (a reader that runs for a whole connection) to end."""
    first_taken, go_on = threading.Event(), threading.Event()

    def long_job() -> None:
        go_on.wait(TIMEOUT)

    class HandOffPause(queue.SimpleQueue):  # type: ignore[type-arg]
        """Widens the gap between a worker's get() and its bookkeeping, as a loaded CPU can."""

        def get(self, block: bool = True, timeout: float | None = None) -> Any:
            item = super().get(block, timeout)
            if item[0] is long_job:
                first_taken.set()
                go_on.wait(TIMEOUT)
            return item

    pool = Pool("test-handoff-", idle_seconds=1)
    pool._jobs = HandOffPause()
    warm = threading.Event()
    pool.submit(warm.set)
    assert warm.wait(TIMEOUT)
    wait_until_idle(pool, 1)
    try:
        pool.submit(long_job)
        assert first_taken.wait(TIMEOUT)
        second = threading.Event()
        pool.submit(second.set)
        assert second.wait(TIMEOUT), "the second job waited for the first one's thread"
    finally:
        go_on.set()
