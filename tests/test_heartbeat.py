"""SPEC 4.6 and 13: the heartbeat, and its pause while the reader stops reading on purpose."""

from __future__ import annotations

import queue
import time

from ohws._heartbeat import Heartbeat

from .servers import TIMEOUT


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
    """After resume the heartbeat works again: a ping, then 'lost' when nothing answers."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    try:
        probe.heartbeat.pause()
        probe.heartbeat.resume()
        probe.pings.get(timeout=TIMEOUT)
        assert "pong" in probe.lost.get(timeout=TIMEOUT)
    finally:
        probe.heartbeat.stop()


def test_stopped_heartbeat_stays_stopped_after_resume() -> None:
    """resume() after stop() schedules nothing."""
    probe = Probe(1, 1)
    probe.heartbeat.start()
    probe.heartbeat.pause()
    probe.heartbeat.stop()
    probe.heartbeat.resume()
    time.sleep(1.5)  # proves only that nothing happened
    assert probe.pings.empty()
