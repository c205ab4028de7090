"""The shared timer thread and the heartbeat it runs (SPEC 4.6), without sockets."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ohws._heartbeat import Heartbeat
from ohws._timer import call_later

from .servers import TIMEOUT


@contextlib.contextmanager
def running(heartbeat: Heartbeat) -> Iterator[None]:
    """The heartbeat started for the block, stopped after it (even when the test fails)."""
    heartbeat.start()
    try:
        yield
    finally:
        heartbeat.stop()


def fails_first(calls: queue.Queue[Any], error: Exception) -> Callable[[Any], None]:
    """A callback that puts each argument into ``calls`` and raises ``error`` on the first call."""

    def callback(arg: Any) -> None:
        calls.put(arg)
        if calls.qsize() == 1:
            raise error

    return callback


def test_a_failing_job_is_logged_and_later_jobs_still_run(caplog: pytest.LogCaptureFixture) -> None:
    """A job that raises is logged on logger 'ohws'; the timer thread runs the next job."""
    ran = threading.Event()

    def broken() -> None:
        raise RuntimeError("bug in a job")

    call_later(0, broken)
    call_later(0.05, ran.set)
    assert ran.wait(TIMEOUT)
    failures = [r for r in caplog.records if r.name == "ohws" and "timer job" in r.getMessage()]
    assert failures and failures[0].exc_info is not None
    assert "bug in a job" in str(failures[0].exc_info[1])


def test_a_ping_that_cannot_be_sent_does_not_stop_the_heartbeat(caplog: pytest.LogCaptureFixture) -> None:
    """send_ping raising (the job fails) is logged, and the heartbeat goes on: the ping is
    still unanswered pongTimeout later, so the connection is declared lost."""
    attempts: queue.Queue[bytes] = queue.Queue()
    lost: queue.Queue[str] = queue.Queue()

    def send_ping(payload: bytes) -> None:
        attempts.put(payload)
        raise OSError("the socket is gone")

    with running(Heartbeat(1, 1, send_ping, lost.put)):
        attempts.get(timeout=TIMEOUT)
        assert "pong" in lost.get(timeout=TIMEOUT)
    assert "the socket is gone" in caplog.text


def test_pings_go_on_after_a_failed_one_with_pong_timeout_zero() -> None:
    """pongTimeout 0: a ping whose sending failed is followed by the next one a pingInterval later."""
    attempts: queue.Queue[bytes] = queue.Queue()
    send_ping = fails_first(attempts, OSError("first ping lost"))
    with running(Heartbeat(1, 0, send_ping, lambda why: None)):
        first, second = attempts.get(timeout=TIMEOUT), attempts.get(timeout=TIMEOUT)
    assert first != second


def test_a_failing_loss_report_is_retried() -> None:
    """on_lost raising (the job fails) does not end the heartbeat: the loss is reported again."""
    reports: queue.Queue[str] = queue.Queue()
    on_lost = fails_first(reports, RuntimeError("could not abort the socket"))
    with running(Heartbeat(1, 1, lambda payload: None, on_lost)):
        assert reports.get(timeout=TIMEOUT) == reports.get(timeout=TIMEOUT)


def test_stop_ends_the_heartbeat() -> None:
    """After stop() no ping goes out, even one that was due (the check is cancelled)."""
    attempts: queue.Queue[bytes] = queue.Queue()
    heartbeat = Heartbeat(1, 1, attempts.put, lambda why: None)
    heartbeat.start()
    heartbeat.stop()
    with pytest.raises(queue.Empty):
        attempts.get(timeout=2.0)  # proves no ping: an active heartbeat pings after 1 s


def test_a_cancelled_handle_lets_go_of_its_job() -> None:
    """cancel() drops the job at once: what it refers to is not kept alive until its deadline
    (a cancelled 30 s connectTimeout used to keep its whole connection, and so a rejected
    promise's warning, alive for 30 s)."""
    import gc
    import weakref

    from ohws._timer import call_later

    class Job:
        def __call__(self) -> None: ...

    job = Job()
    alive = weakref.ref(job)
    handle = call_later(30, job)
    del job
    handle.cancel()
    gc.collect()
    assert alive() is None


def test_cancelled_deadlines_do_not_pile_up_in_the_heap() -> None:
    """Every open cancels its connectTimeout deadline while the heartbeat's stays: at 10,000
    connections, cancelled entries kept until their far deadlines cost ~170 bytes each (SPEC 6
    scale). Once more than a quarter of the heap is cancelled, it is rebuilt without them."""
    from ohws._timer import _timer

    with _timer._lock:
        before = len(_timer._heap)
    live = [call_later(3600, lambda: None) for _ in range(600)]
    doomed = [call_later(3600, lambda: None) for _ in range(400)]
    try:
        for handle in doomed:
            handle.cancel()
        with _timer._lock:
            left = len(_timer._heap) - before
        # 400 of 1,000 cancelled: rebuilt as the cancelled count passed a quarter (~200), so
        # what stays is the 600 live ones and the few cancelled since that rebuild (<= 1/4).
        assert 600 <= left <= 600 + 600 // 3, left
    finally:
        for handle in live:
            handle.cancel()
