"""SPEC 4.6 and 13: the heartbeat, and its pause while the reader stops reading on purpose."""

from __future__ import annotations

import queue
import threading
import time

import pytest

import ohws._heartbeat
from ohws._heartbeat import Heartbeat

from .servers import TIMEOUT
from .timing import assert_took


class Probe:
    """Records the heartbeat's pings and its verdict."""

    def __init__(self, interval: int, pong_timeout: int) -> None:
        self.pings: queue.Queue[bytes] = queue.Queue()
        self.lost: queue.Queue[str] = queue.Queue()
        self.heartbeat = Heartbeat(interval, pong_timeout, self.pings.put, self.lost.put)


def test_paused_heartbeat_neither_pings_nor_gives_up() -> None:
    """While paused, no ping goes out and a missing pong never declares the connection lost."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    try:
        probe.heartbeat.pause()
        time.sleep(2.5)  # proves only that nothing happened: two intervals and a pong timeout
        assert probe.pings.empty()
        assert probe.lost.empty()
    finally:
        probe.heartbeat.stop()


def test_paused_heartbeat_with_a_ping_outstanding_does_not_give_up() -> None:
    """A pause after a ping was sent cancels the pong deadline too."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    try:
        probe.pings.get(timeout=TIMEOUT)
        probe.heartbeat.pause()
        time.sleep(1.5)  # proves only that nothing happened: past the pong deadline
        assert probe.lost.empty()
    finally:
        probe.heartbeat.stop()


def test_resumed_heartbeat_counts_afresh_then_pings_and_gives_up() -> None:
    """A pause with a ping outstanding, then resume: the next ping is due one interval after
    the resume (the old ping and its pong deadline are forgotten), then 'lost' when nothing
    answers."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    try:
        probe.pings.get(timeout=TIMEOUT)
        probe.heartbeat.pause()
        resumed = time.monotonic()
        probe.heartbeat.resume()
        probe.pings.get(timeout=TIMEOUT)
        assert_took(time.monotonic() - resumed, 1.0, "the first ping after resume")
        assert probe.lost.empty()
        assert "pong" in probe.lost.get(timeout=TIMEOUT)
    finally:
        probe.heartbeat.stop()


class _SlowFirstCheck:
    """``time`` for ohws._heartbeat whose first reading on the timer thread takes 0.5 s, as
    when that thread is descheduled in the middle of a check."""

    def __init__(self) -> None:
        self.in_check = threading.Event()

    def monotonic(self) -> float:
        if threading.current_thread().name == "ohws-timer" and not self.in_check.is_set():
            self.in_check.set()
            time.sleep(0.5)
        return time.monotonic()


def test_once_pause_returns_no_ping_goes_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause() that comes while a check is under way takes effect for that check too: any
    ping it sends goes out before pause() returns, none after."""
    clock = _SlowFirstCheck()
    monkeypatch.setattr(ohws._heartbeat, "time", clock)
    sent_at: list[float] = []
    heartbeat = Heartbeat(1, 0, lambda payload: sent_at.append(time.monotonic()), lambda why: None)
    heartbeat.start()
    try:
        assert clock.in_check.wait(TIMEOUT)
        heartbeat.pause()
        paused = time.monotonic()
        time.sleep(2.5)  # proves only that nothing happened: two intervals
        assert all(at < paused for at in sent_at), f"a ping {max(sent_at) - paused:.3f}s after pause()"
    finally:
        heartbeat.stop()


def test_stopped_heartbeat_stays_stopped_after_resume() -> None:
    """resume() after stop() schedules nothing."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    probe.heartbeat.pause()
    probe.heartbeat.stop()
    probe.heartbeat.resume()
    time.sleep(1.5)  # proves only that nothing happened
    assert probe.pings.empty()


def test_a_pause_and_resume_around_a_check_leave_one_chain_of_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """pause() and resume() that come after the timer took a check and before it ran: that
    stale check does nothing, and the checks go on once per interval, not twice."""
    calls: list[float] = []
    taken, go_on = threading.Event(), threading.Event()
    check = Heartbeat._check

    def counted(heartbeat: Heartbeat) -> None:
        calls.append(time.monotonic())
        if not taken.is_set():
            taken.set()
            go_on.wait(TIMEOUT)  # the first check waits here, taken off the timer's heap
        check(heartbeat)

    monkeypatch.setattr(Heartbeat, "_check", counted)
    heartbeat = Heartbeat(1, 0, lambda payload: None, lambda why: None)
    heartbeat.start()
    try:
        assert taken.wait(TIMEOUT)
        heartbeat.pause()
        heartbeat.resume()
        resumed = time.monotonic()
        go_on.set()
        time.sleep(2.5)  # the checks due meanwhile: at resume + 1 and + 2 (two chains: twice that)
        later = [at for at in calls if at > resumed]
        assert len(later) <= 2, f"{len(later)} checks in 2.5 s at a 1 s interval"
    finally:
        heartbeat.stop()
