"""SPEC 14: the reconnect option, against a server that is stopped and restarted on its port
(ohws's own server) and scripted raw servers for the HTTP answers and close codes."""

from __future__ import annotations

import contextlib
import email.utils
import itertools
import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ohws import BusinessError, ReconnectInfo, State, WebSocket, WebSocketServer, webSocket
from ohws._options import ReconnectSpec, parse_options
from ohws._reconnect import backoff_delay, parse_retry_after

from .breakage import next_crash, ohws_log_records, raising_on_call
from .certs import Certs
from .proxies import PROXY_PASSWORD, PROXY_USER, Pproxy
from .server_support import ServerEvents, code_of, server, start
from .servers import TIMEOUT, RawPeer, RawServer
from .timing import assert_took

EVENTS = ("open", "message", "close", "error", "reconnect")
__all__ = ["server"]  # the fixture, imported


class Timeline:
    """Every event of a WebSocket with the time it was delivered; bounded waits."""

    def __init__(self, ws: WebSocket) -> None:
        self.queue: queue.Queue[tuple[str, Any, float]] = queue.Queue()
        for event in EVENTS:
            ws.on(event, self._listener(event))

    def _listener(self, event: str) -> Any:
        def listener(*args: Any) -> None:
            value = args[1] if event in ("open", "message", "close") else args[0]
            self.queue.put((event, value, time.monotonic()))

        return listener

    def next(self, timeout: float = TIMEOUT) -> tuple[str, Any, float]:
        return self.queue.get(timeout=timeout)

    def expect(self, *events: str) -> list[tuple[str, Any, float]]:
        """The next events, which must be exactly ``events``, in order."""
        got = [self.next() for _ in events]
        assert [event for event, _, _ in got] == list(events), got
        return got

    def quiet_for(self, seconds: float) -> bool:
        """True when no event comes within ``seconds`` (proves only that none did)."""
        try:
            event = self.queue.get(timeout=seconds)
        except queue.Empty:
            return True
        pytest.fail(f"unexpected event {event}")


@pytest.fixture
def ws() -> Iterator[WebSocket]:
    client = webSocket.createWebSocket()
    yield client
    if client.state is not State.CLOSED:
        client.close().result(TIMEOUT)  # type: ignore[union-attr]


FAST = {"initialDelay": 0.2, "maxDelay": 1.0, "factor": 2, "jitter": 0.25}


# ---------------------------------------------------------------- the rules


def test_reconnect_option_parsing() -> None:
    """True gives the defaults; each setting is checked, with a 401 naming it."""
    assert parse_options({"reconnect": True}).reconnect == ReconnectSpec(1.0, 30.0, 2.0, 0.2, -1)
    assert parse_options({"reconnect": False}).reconnect is None
    assert parse_options({}).reconnect is None
    custom = parse_options({"reconnect": {"initialDelay": 0, "maxDelay": 5, "maxRetries": 3}}).reconnect
    assert custom == ReconnectSpec(0.0, 5.0, 2.0, 0.2, 3)
    for bad, names in [
        ("yes", "options.reconnect must be a bool or a dict"),
        ({"delay": 1}, "unknown key 'delay'"),
        ({"initialDelay": -1}, "initialDelay must be >= 0"),
        ({"factor": 0.5}, "factor must be >= 1"),
        ({"jitter": 1.5}, "jitter must be in 0..1"),
        ({"maxRetries": -2}, "maxRetries must be >= 0"),
        ({"maxRetries": 1.5}, "maxRetries must be an int"),
        ({"initialDelay": 10, "maxDelay": 5}, "maxDelay (5) must not be less than initialDelay (10)"),
    ]:
        with pytest.raises(BusinessError) as info:
            parse_options({"reconnect": bad})
        assert info.value.code == 401 and names in str(info.value), bad


def test_backoff_grows_by_factor_up_to_max_delay_within_the_jitter() -> None:
    """Attempt k waits min(maxDelay, initialDelay * factor**(k-1)) times a draw in [1-j, 1+j]."""
    spec = ReconnectSpec(initial_delay=1, max_delay=30, factor=2, jitter=0.2)
    low, high = (lambda a, b: a), (lambda a, b: b)
    assert [backoff_delay(spec, k, low) for k in (1, 2, 3, 6, 9)] == [0.8, 1.6, 3.2, 24.0, 24.0]
    assert [backoff_delay(spec, k, high) for k in (1, 2, 6)] == [1.2, 2.4, 36.0]


@pytest.mark.parametrize("factor", [2, 1.5, 10])
def test_backoff_stays_at_max_delay_however_many_attempts(factor: float) -> None:
    """maxRetries -1 retries for ever: attempt 100,000 (days of outage) still waits maxDelay,
    where initialDelay * factor**(k-1) has long left a float's range."""
    options = {"initialDelay": 1, "maxDelay": 30, "factor": factor, "jitter": 0}
    spec = parse_options({"reconnect": options}).reconnect
    assert spec is not None
    same = lambda a, b: a  # noqa: E731
    assert [backoff_delay(spec, k, same) for k in (1025, 100_000)] == [30.0, 30.0]
    spec = parse_options({"reconnect": {**options, "initialDelay": 0}}).reconnect
    assert spec is not None and backoff_delay(spec, 100_000, same) == 0.0


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = time.time()
    assert parse_retry_after("2", now) == 2.0
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("soon", now) is None
    later = email.utils.formatdate(now + 10, usegmt=True)
    assert 8.0 <= (parse_retry_after(later, now) or 0) <= 10.0


# ---------------------------------------------------------------- a server that restarts


def test_server_restart_reconnects_with_events_in_order(server: WebSocketServer, ws: WebSocket) -> None:
    """stop(): close 1001, state CONNECTING (never CLOSED), then per failed attempt
    reconnect(k, delay within the jitter) and error; start() again on the same port: open, and
    messages flow. (How long each wait really is: the next test, timed by the server.)"""
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    url = start(server)
    port = server.port
    timeline = Timeline(ws)
    ws.connect(url, {"reconnect": FAST}).result(TIMEOUT)  # type: ignore[union-attr]
    timeline.expect("open")
    server.stop().result(TIMEOUT)
    (_, result, _), (_, info, _) = timeline.expect("close", "reconnect")
    assert result.code == 1001
    assert ws.state is State.CONNECTING
    for attempt in (1, 2):
        assert isinstance(info, ReconnectInfo) and info.attempt == attempt
        bounds = FAST["initialDelay"] * 2 ** (attempt - 1)
        assert bounds * 0.75 <= info.delay <= bounds * 1.25
        ((_, error, _),) = timeline.expect("error")
        assert error.code == 200 and "refused" in str(error)
        ((_, info, _),) = timeline.expect("reconnect")
        assert ws.state is State.CONNECTING
    assert server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(TIMEOUT)
    while (event := timeline.next())[0] != "open":
        assert event[0] in ("error", "reconnect")
    assert ws.state is State.OPEN
    ws.send("after the restart")
    assert timeline.expect("message")[0][1] == "after the restart"


def test_attempts_are_spaced_by_the_jittered_backoff(ws: WebSocket) -> None:
    """Timed by the server: after a 1012 close, attempt k comes delay_k after the previous one
    (delay_k as announced by reconnect(k, delay_k), within initialDelay * factor**(k-1) +- jitter),
    well below maxDelay (5 s). Attempts 1-2 are dropped at once (a network failure)."""
    spec = {"initialDelay": 0.4, "maxDelay": 5.0, "factor": 2, "jitter": 0.25}
    times: list[float] = []

    def first(peer: RawPeer) -> None:
        peer.handshake()
        times.append(time.monotonic())  # before the close leaves: the client's wait starts after
        peer.send_close(1012, "restart")
        peer.recv_until(0x8)

    def dropped(peer: RawPeer) -> None:
        times.append(time.monotonic())

    def welcome(peer: RawPeer) -> None:
        times.append(time.monotonic())
        peer.handshake()
        peer.recv_until(0x8)

    with RawServer(_scripts(first, dropped, dropped, welcome), connections=4) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": spec})
        got = timeline.expect(
            "open", "close", "reconnect", "error", "reconnect", "error", "reconnect", "open"
        )
        delays = [value.delay for event, value, _ in got if event == "reconnect"]
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert [value.attempt for event, value, _ in got if event == "reconnect"] == [1, 2, 3]
    for k, delay in enumerate(delays, start=1):
        nominal = 0.4 * 2 ** (k - 1)
        assert nominal * 0.75 <= delay <= nominal * 1.25
        assert delay <= times[k] - times[k - 1] <= delay + 0.5  # connect and refusal on a loaded machine


def test_sends_during_the_gap_arrive_after_the_next_open_in_order(
    server: WebSocketServer, ws: WebSocket
) -> None:
    """Sends made while reconnecting are kept, then written in order once open again."""
    events = ServerEvents(server)
    url = start(server)
    port = server.port
    timeline = Timeline(ws)
    ws.connect(url, {"reconnect": FAST}).result(TIMEOUT)  # type: ignore[union-attr]
    events.wait_for("connect")
    server.stop().result(TIMEOUT)
    timeline.expect("open", "close", "reconnect")
    promises = [ws.send(text) for text in ("a", "b", "c")]
    assert server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(TIMEOUT)
    assert [p.result(TIMEOUT) for p in promises] == [True, True, True]  # type: ignore[union-attr]
    received = [events.wait_for("messageReceive")[0].data for _ in range(3)]
    assert received == ["a", "b", "c"]


def test_a_send_overtaken_by_the_reopen_is_still_written(
    ws: WebSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send begun during the gap (it has read the dropped connection as the current one)
    and overtaken by the next open (and its flush of the kept sends) is still written, on the
    new connection, not kept for the next drop. The window is forced by holding the sending
    thread between its read of the connection and the session's handling of the send."""
    from ohws._reconnect import ReconnectSession

    reopened, listening = threading.Event(), threading.Event()
    sending: list[threading.Thread] = []
    handle = ReconnectSession.send

    def wait_then_handle(self: ReconnectSession, connection: Any, *args: Any) -> Any:
        if threading.current_thread() in sending:
            reopened.wait(TIMEOUT)
        return handle(self, connection, *args)

    monkeypatch.setattr(ReconnectSession, "send", wait_then_handle)
    frames: queue.Queue[tuple[int, bool, bytes]] = queue.Queue()

    first = _close_once_listened_to(listening, 1012, "restart")

    def second(peer: RawPeer) -> None:
        peer.handshake()
        frames.put(peer.recv_frame())
        peer.recv_until(0x8)

    with RawServer(_scripts(first, second), connections=2) as raw:
        timeline = Timeline(ws)
        opens = itertools.count(1)
        ws.on("open", lambda err, value: next(opens) == 2 and reopened.set())
        ws.connect(raw.url, {"reconnect": {"initialDelay": 0.5, "jitter": 0}})
        timeline.expect("open")
        listening.set()
        timeline.expect("close", "reconnect")
        outcome: queue.Queue[Any] = queue.Queue()
        sender = threading.Thread(target=lambda: outcome.put(ws.send("raced")))
        sending.append(sender)
        sender.start()
        sent = outcome.get(timeout=TIMEOUT)
        assert sent.result(TIMEOUT) is True
        assert frames.get(timeout=TIMEOUT) == (0x1, True, b"raced")
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_frames_not_written_at_a_drop_are_rejected_and_sends_after_it_wait_for_the_next_open(
    ws: WebSocket,
) -> None:
    """SPEC 14: the server stops reading, so the client's frames pile up (one partly written,
    two queued behind it); then it resets the connection. Those three sends are rejected with
    2302999 while the session reconnects; a send made during the wait is kept (still pending
    while the next server holds back its handshake) and written once that connection opens."""
    mib = 1 << 20
    reset, let_in = threading.Event(), threading.Event()

    def stalled(peer: RawPeer) -> None:
        peer.handshake()
        assert reset.wait(TIMEOUT)  # reads nothing meanwhile
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close: RST

    def next_connection(peer: RawPeer) -> bytes:
        assert let_in.wait(TIMEOUT)
        peer.handshake()
        payload = peer.recv_frame()[2]
        peer.recv_until(0x8)
        return payload

    with RawServer(_scripts(stalled, next_connection), connections=2) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": FAST}).result(TIMEOUT)  # type: ignore[union-attr]
        timeline.expect("open")
        sent = []
        while ws.bufferedAmount == 0:  # until a frame no longer fits in the socket buffers
            assert len(sent) < 64, "64 MiB written to a server that reads nothing"
            sent.append(ws.send(b"x" * mib))
        writer = ws._connection._writer  # type: ignore[union-attr]
        deadline = time.monotonic() + TIMEOUT
        while not writer._writing:  # the writer thread has taken that frame and is blocked on it
            assert time.monotonic() < deadline, "the writer thread never started"
            time.sleep(0.01)
        unwritten = [sent[-1], *(ws.send(bytes([i]) * mib) for i in range(2))]  # two queued behind
        assert not any(promise.done() for promise in unwritten)  # type: ignore[union-attr]
        reset.set()
        for promise in unwritten:
            with pytest.raises(BusinessError) as info:
                promise.result(TIMEOUT)  # type: ignore[union-attr]
            assert info.value.code == 2302999
        (_, error, _), (_, result, _), _ = timeline.expect("error", "close", "reconnect")
        assert error.code == 200 and result.code == 1006
        assert ws.state is State.CONNECTING
        kept = ws.send("sent while reconnecting")
        assert not kept.done()  # type: ignore[union-attr]  # the next connection is not open yet
        let_in.set()
        timeline.expect("open")
        assert kept.result(TIMEOUT) is True  # type: ignore[union-attr]
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert raw.result() is None  # the stalled connection's script
        assert raw.result() == b"sent while reconnecting"


def test_first_connect_failure_is_not_retried(ws: WebSocket) -> None:
    """If the first connect fails, it fails as usual: rejected, one error, no reconnect."""
    with socket.socket() as unused:  # bound, never listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    timeline = Timeline(ws)
    assert code_of(ws.connect(f"ws://127.0.0.1:{port}", {"reconnect": FAST})) == 200
    timeline.expect("error")
    assert ws.state is State.CLOSED
    assert timeline.quiet_for(0.5)  # a reconnect event would come at once


def test_max_retries_gives_up_with_a_final_error(server: WebSocketServer, ws: WebSocket) -> None:
    """maxRetries 2: two failed attempts, then a final error naming them; state CLOSED."""
    url = start(server)
    timeline = Timeline(ws)
    ws.connect(url, {"reconnect": {**FAST, "maxRetries": 2}}).result(TIMEOUT)  # type: ignore[union-attr]
    timeline.expect("open")
    server.stop().result(TIMEOUT)
    timeline.expect("close", "reconnect", "error", "reconnect", "error")
    ((_, final, _),) = timeline.expect("error")
    assert "gave up reconnecting after 2 attempt(s)" in str(final)
    assert ws.state is State.CLOSED
    assert code_of(ws.close()) == 2302999


# ---------------------------------------------------------------- close codes and HTTP answers


def _open_then_close(code: int) -> Any:
    def script(peer: RawPeer) -> None:
        peer.handshake()
        peer.send_close(code, "see you")
        peer.recv_until(0x8)

    return script


def _stay_open(peer: RawPeer) -> None:
    """Handshake, then stay until the client closes (the fixture's close at the end)."""
    peer.handshake()
    peer.recv_until(0x8)


def _open_unless_dropped(peer: RawPeer) -> None:
    """``_stay_open`` for an attempt that may be aborted: one dropped before or during the
    handshake ends the script quietly; only a completed handshake opens."""
    with contextlib.suppress(OSError):
        _stay_open(peer)


def _close_once_listened_to(listening: threading.Event, code: int, reason: str) -> Any:
    """A script that opens, then closes with ``code`` once the test has set ``listening``
    (its listeners are on: an event before that would be missed)."""

    def script(peer: RawPeer) -> None:
        peer.handshake()
        listening.wait(TIMEOUT)
        peer.send_close(code, reason)
        peer.recv_until(0x8)

    return script


def _scripts(*scripts: Any) -> Any:
    """One RawServer script that plays ``scripts`` for its successive connections."""
    order: queue.Queue[Any] = queue.Queue()
    for script in scripts:
        order.put(script)
    return lambda peer: order.get_nowait()(peer)


@pytest.mark.parametrize("code", [1001, 1011, 1012, 1013, 1014])
def test_reconnecting_close_codes(code: int, ws: WebSocket) -> None:
    """A peer close with 1001, 1011, 1012, 1013 or 1014 reconnects."""
    with RawServer(_scripts(_open_then_close(code), _stay_open), connections=2) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": FAST})
        timeline.expect("open", "close", "reconnect", "open")
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]  # lets the second script end


@pytest.mark.parametrize("code", [1000, 1003, 4000])
def test_other_close_codes_do_not_reconnect(code: int, ws: WebSocket) -> None:
    """Any other peer close code ends the connection for good: CLOSED, no reconnect event."""
    with RawServer(_open_then_close(code)) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": FAST})
        timeline.expect("open", "close")
        assert timeline.quiet_for(0.5)  # a reconnect event would come right after the close
        assert ws.state is State.CLOSED


def _wait_after_503(
    ws: WebSocket, retry_after: str, max_delay: float, status: str = "503 Service Unavailable"
) -> float:
    """Seconds between a 503 (or ``status``) with ``Retry-After`` and the next attempt
    (initialDelay 0.2 s, so attempt 2 waits 0.3-0.5 s by itself)."""
    answered: list[float] = []
    accepted: list[float] = []

    def busy(peer: RawPeer) -> None:
        answered.append(time.monotonic())  # before the answer: the client's wait starts after
        peer.handshake(status, [("Retry-After", retry_after)])

    def welcome(peer: RawPeer) -> None:
        accepted.append(time.monotonic())
        _stay_open(peer)

    with RawServer(_scripts(_open_then_close(1012), busy, welcome), connections=3) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": {**FAST, "maxDelay": max_delay}})
        timeline.expect("open", "close", "reconnect", "error", "reconnect", "open")
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    return accepted[0] - answered[0]


@pytest.mark.parametrize("status", ["503 Service Unavailable", "429 Too Many Requests"])
def test_503_with_retry_after_waits_at_least_that_long(ws: WebSocket, status: str) -> None:
    """A 503 (or 429) with Retry-After: 2 makes the next wait 2 s although initialDelay is
    0.2 s (and maxDelay 5 s: Retry-After is honoured up to maxDelay)."""
    assert 2.0 <= _wait_after_503(ws, "2", max_delay=5.0, status=status) <= 3.5


@pytest.mark.parametrize("status", ["500 Internal Server Error", "408 Request Timeout"])
def test_retry_after_on_another_retried_status_is_not_honoured(ws: WebSocket, status: str) -> None:
    """SPEC 14 honours Retry-After on a 429 or 503 only: a 500 or 408 that carries one (both
    retried) is followed by the backoff's own wait (0.3-0.5 s here), not Retry-After's 2 s."""
    assert 0.3 <= _wait_after_503(ws, "2", max_delay=5.0, status=status) <= 1.5


def test_retry_after_is_capped_at_max_delay(ws: WebSocket) -> None:
    """Retry-After: 30 with maxDelay 1: the next attempt comes after 1 s, not 30."""
    assert_took(_wait_after_503(ws, "30", max_delay=1.0), 1.0, "the wait after Retry-After: 30")


def test_403_stops_reconnecting(ws: WebSocket) -> None:
    """An attempt answered 403 is final: its error, state CLOSED, no further attempt."""
    with RawServer(
        _scripts(_open_then_close(1012), lambda peer: peer.handshake("403 Forbidden")), connections=2
    ) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": FAST})
        (*_, (_, error, _)) = timeline.expect("open", "close", "reconnect", "error")
        assert "403" in str(error)
        assert timeline.quiet_for(0.5)  # a retry would announce itself with a reconnect event at once
        assert ws.state is State.CLOSED


def test_close_during_the_wait_cancels_it(ws: WebSocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() while waiting for the next attempt resolves at once, cancels the wait's timer,
    and no attempt follows."""
    from ohws import _reconnect

    handles: list[Any] = []
    real_call_later = _reconnect.call_later

    def recording_call_later(delay: float, fn: Any) -> Any:
        handles.append(real_call_later(delay, fn))
        return handles[-1]

    monkeypatch.setattr(_reconnect, "call_later", recording_call_later)
    connections: list[int] = []

    def counted(peer: RawPeer) -> None:
        connections.append(1)
        _open_then_close(1012)(peer)

    with RawServer(counted, connections=2) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": {"initialDelay": 1.0, "jitter": 0}})
        (*_, (_, info, _)) = timeline.expect("open", "close", "reconnect")
        assert info.delay == 1.0
        began = time.monotonic()
        assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        assert time.monotonic() - began < 0.5
        assert ws.state is State.CLOSED
        assert len(handles) == 1 and handles[0].cancelled
        assert timeline.quiet_for(2.0)  # twice the delay the attempt would have waited
        assert connections == [1]


def test_an_attempt_stuck_in_a_name_lookup_fails_on_time_and_holds_back_the_next(
    ws: WebSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connectTimeout ends a reconnect attempt whose name lookup does not return, on time; the
    next attempt then waits for that lookup's thread (one WebSocket holds one such thread at
    most, not one per attempt), and starts once the lookup returns and its thread has shut
    down the connection it made late."""
    lookup = socket.getaddrinfo
    lookups: queue.Queue[float] = queue.Queue()
    calls = itertools.count(1)
    release = threading.Event()

    def resolver(host: Any, *args: Any) -> Any:
        if host != "slow-lookup.test":
            return lookup(host, *args)
        lookups.put(time.monotonic())
        if next(calls) == 2:  # the first reconnect attempt's
            release.wait(TIMEOUT)
        return lookup("127.0.0.1", *args)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    closing: list[float] = []  # when the server closed: attempt 1 starts 0.1 s after, or later

    def open_then_close(peer: RawPeer) -> None:
        peer.handshake()
        closing.append(time.monotonic())
        peer.send_close(1012, "see you")
        peer.recv_until(0x8)

    late = _scripts(open_then_close, lambda peer: peer.expect_eof(), _stay_open)
    with RawServer(late, connections=3) as raw:
        timeline = Timeline(ws)
        options = {"proxy": "no-proxy", "connectTimeout": 1, "reconnect": {"initialDelay": 0.1, "jitter": 0}}
        ws.connect(f"ws://slow-lookup.test:{raw.port}/", options)
        timeline.expect("open", "close", "reconnect")
        lookups.get(timeout=TIMEOUT)  # the first connect's
        try:
            lookups.get(timeout=TIMEOUT)  # attempt 1's, which does not return
            (_, error, failed), (_, info, _) = timeline.expect("error", "reconnect")
            assert error.code == 200 and "connectTimeout" in error.message
            assert_took(failed - closing[0], 1.1, "the wait for attempt 1, then its connectTimeout")
            assert info.attempt == 2 and info.delay == pytest.approx(0.2)
            with pytest.raises(queue.Empty):
                lookups.get(timeout=1.0)  # five times the delay: attempt 2 waits for attempt 1's thread
        finally:
            release.set()
        lookups.get(timeout=TIMEOUT)  # attempt 2's, after the late connection was shut down
        timeline.expect("open")
        assert raw.accepted == 3
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]  # lets the last script end


def _close_mid_attempt(ws: WebSocket, closing: queue.Queue[Any], second: Any) -> int:
    """Open, the server's 1012, then the close() the test makes while the next attempt starts
    (its promise comes through ``closing``): it resolves True, nothing opens after it, the
    WebSocket ends CLOSED. ``second`` serves a connection of the attempt; returns how many
    connections the server accepted."""
    with RawServer(_scripts(_open_then_close(1012), second), connections=2) as raw:
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": {"initialDelay": 0.1, "jitter": 0}})
        timeline.expect("open", "close", "reconnect")
        assert closing.get(timeout=TIMEOUT).result(TIMEOUT) is True
        assert timeline.quiet_for(1.0)  # the attempt's open would come within milliseconds
        assert ws.state is State.CLOSED
        return raw.accepted


def test_close_while_an_attempt_starts_ends_it(ws: WebSocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """close() that lands while the next attempt is being started (here: during its network
    policy check, on the timer thread, after the wait) resolves True, and no connection is made
    or opened after it: the attempt is not started behind the close's back."""
    from ohws import _policy

    checks = itertools.count(1)
    closing: queue.Queue[Any] = queue.Queue()
    real_check = _policy.check_domain

    def check_domain(host: str) -> None:
        if next(checks) == 2:  # the first reconnect attempt's (the first is connect()'s)
            closing.put(ws.close())
        real_check(host)

    monkeypatch.setattr(_policy, "check_domain", check_domain)
    assert _close_mid_attempt(ws, closing, _stay_open) == 1


def test_close_just_before_an_attempt_is_published_ends_it(
    ws: WebSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() that lands after the next attempt started but before the WebSocket made it its
    current connection (here: just before the publish) closes that attempt, not the connection
    that already ended: it resolves True and nothing opens after it."""
    closing: queue.Queue[Any] = queue.Queue()
    real_publish = WebSocket._publish

    def publish(self: WebSocket, connection: Any) -> None:
        closing.put(self.close())
        real_publish(self, connection)

    monkeypatch.setattr(WebSocket, "_publish", publish)
    _close_mid_attempt(ws, closing, _open_unless_dropped)


def test_a_connect_after_such_a_close_is_not_replaced_by_the_late_attempt(
    ws: WebSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() and then connect() both land after the next attempt started but before it was
    published: the late publish leaves the new connection in place, which opens and closes as
    the WebSocket's own."""
    opened: queue.Queue[Any] = queue.Queue()
    real_publish = WebSocket._publish

    def publish(self: WebSocket, connection: Any) -> None:
        if opened.empty():
            assert self.close().result(TIMEOUT) is True
            opened.put(self.connect(raw.url))
        real_publish(self, connection)

    monkeypatch.setattr(WebSocket, "_publish", publish)
    scripts = _scripts(_open_then_close(1012), _open_unless_dropped, _open_unless_dropped)
    with RawServer(scripts, connections=3) as raw:
        ws.connect(raw.url, {"reconnect": {"initialDelay": 0.1, "jitter": 0}})
        assert opened.get(timeout=TIMEOUT).result(TIMEOUT) is True
        assert ws.state is State.OPEN
        assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        assert ws.state is State.CLOSED


def _hold_then_close(code: int) -> Any:
    """Send a message (whose callback holds the lane) and then a close with ``code``."""

    def script(peer: RawPeer) -> None:
        peer.handshake()
        peer.send_text("hold the lane")
        peer.send_close(code, "restarting")
        peer.recv_until(0x8)

    return script


def test_close_while_the_peer_close_is_answered_does_not_reconnect(ws: WebSocket) -> None:
    """The application's close() wins over a reconnecting peer close (1012) whose reply is
    still waiting for the lane: the connection ends, no reconnect event, state CLOSED."""
    held, release = threading.Event(), threading.Event()
    with RawServer(_hold_then_close(1012)) as raw:
        timeline = Timeline(ws)
        ws.on("message", lambda err, data: (held.set(), release.wait(TIMEOUT)))
        ws.connect(raw.url, {"reconnect": FAST}).result(TIMEOUT)  # type: ignore[union-attr]
        assert held.wait(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT  # until the reader has read the 1012 close frame
        while ws.state is not State.CONNECTING:
            assert time.monotonic() < deadline, "the close frame was never read"
            time.sleep(0.01)
        closing = ws.close()
        release.set()
        assert closing.result(TIMEOUT) is True  # type: ignore[union-attr]
        timeline.expect("open", "message", "close")
        assert timeline.quiet_for(0.5)  # a reconnect event would come right after the close
        assert ws.state is State.CLOSED


def test_state_is_connecting_from_the_peers_reconnecting_close_frame_on(ws: WebSocket) -> None:
    """While the lane still runs the callbacks queued before a 1012 close frame (so our close
    reply waits), the state already reads CONNECTING, connect() is 2302003, and a send is kept
    for the next connection."""
    held, release = threading.Event(), threading.Event()
    script = _hold_then_close(1012)

    def next_connection(peer: RawPeer) -> bytes:
        peer.handshake()
        return peer.recv_frame()[2]

    with RawServer(_scripts(script, next_connection), connections=2) as raw:
        ws.on("message", lambda err, data: (held.set(), release.wait(TIMEOUT)))
        # closeTimeout past TIMEOUT: the reply waits for the held lane for the whole test
        ws.connect(raw.url, {"reconnect": FAST, "closeTimeout": 30}).result(TIMEOUT)  # type: ignore[union-attr]
        assert held.wait(TIMEOUT)
        # Not TIMEOUT: at TIMEOUT the raw server gives up, and the end it causes would also
        # read CONNECTING; the reader sees the close frame within milliseconds.
        deadline = time.monotonic() + 2.0
        while ws.state is not State.CONNECTING and time.monotonic() < deadline:
            time.sleep(0.01)  # until the reader has seen the close frame
        assert ws.state is State.CONNECTING
        assert code_of(ws.connect(raw.url)) == 2302003
        kept = ws.send("for the next connection")  # not written to the closing one
        release.set()
        assert kept.result(TIMEOUT) is True  # type: ignore[union-attr]
        raw.result()  # the first connection's script
        assert raw.result() == b"for the next connection"


def test_script_style_keeps_one_queue_across_reconnects(server: WebSocketServer) -> None:
    """ohws.connect with reconnect: messages before and after a server restart come through
    the same receive queue; iteration does not end at the drop."""
    import ohws

    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    url = start(server)
    port = server.port
    got: queue.Queue[Any] = queue.Queue()

    def iterate(client: WebSocket) -> None:
        try:
            for message in client:  # one loop, started before the drop
                got.put(message)
        except BusinessError as exc:
            got.put(exc)
        got.put("<iteration ended>")

    with ohws.connect(url, {"reconnect": FAST}, timeout=TIMEOUT) as client:
        reader = threading.Thread(target=iterate, args=(client,), daemon=True)
        reader.start()
        client.send("before")
        assert got.get(timeout=TIMEOUT) == "before"
        reconnecting = threading.Event()
        client.on("reconnect", lambda info: reconnecting.set())
        server.stop().result(TIMEOUT)
        assert reconnecting.wait(TIMEOUT)
        assert server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(TIMEOUT)
        client.send("after")  # kept until the next open, then written
        assert got.get(timeout=TIMEOUT) == "after"  # the same loop, still running
    reader.join(TIMEOUT)
    assert got.get(timeout=TIMEOUT) == "<iteration ended>"  # leaving the with block ended it


def test_script_style_iteration_ends_with_the_error_when_reconnecting_gives_up(
    server: WebSocketServer,
) -> None:
    """When reconnecting gives up, receive() (bounded here) and then iteration raise the final
    error instead of waiting for a connection that will not come."""
    import ohws

    url = start(server)
    client = ohws.connect(url, {"reconnect": {**FAST, "maxRetries": 1}}, timeout=TIMEOUT)
    server.stop().result(TIMEOUT)
    with pytest.raises(BusinessError) as info:
        client.receive(TIMEOUT)
    assert "gave up reconnecting after 1 attempt(s)" in str(info.value)
    assert "(code 1001, reason " in str(info.value)  # the drop's close (SPEC 13), from stop()
    with pytest.raises(BusinessError):
        for _ in client:
            pass
    assert client.state is State.CLOSED


@pytest.mark.parametrize("phase", ["waiting", "attempting"])
def test_script_style_close_between_connections_ends_receive(phase: str) -> None:
    """close() while reconnecting, during the wait or during an attempt that has not opened
    yet, ends the receive queue: a receive() blocked meanwhile raises 2302999 at once instead
    of waiting for a connection that will not come."""
    import ohws

    attempting, listening = threading.Event(), threading.Event()

    drop_when_listened_to = _close_once_listened_to(listening, 1001, "going away")

    def stalled(peer: RawPeer) -> None:
        peer.read_request()  # the attempt is under way; no answer until the client gives up
        attempting.set()
        peer.expect_eof()

    spec = {"initialDelay": 0.05 if phase == "attempting" else 60.0, "maxDelay": 60.0, "jitter": 0}
    with RawServer(_scripts(drop_when_listened_to, stalled), connections=2) as raw:
        client = ohws.connect(raw.url, {"reconnect": spec}, timeout=TIMEOUT)
        waiting = threading.Event()
        client.on("reconnect", lambda info: waiting.set())
        listening.set()
        outcome: queue.Queue[Any] = queue.Queue()

        def receive() -> None:
            try:
                outcome.put(client.receive(TIMEOUT))
            except BaseException as exc:  # the outcome is the test's
                outcome.put(exc)

        reader = threading.Thread(target=receive)
        reader.start()
        assert (attempting if phase == "attempting" else waiting).wait(TIMEOUT)
        assert client.state is State.CONNECTING
        closed_at = time.monotonic()
        assert client.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        error = outcome.get(timeout=TIMEOUT)
        reader.join(TIMEOUT)
    assert time.monotonic() - closed_at < TIMEOUT / 2  # not receive()'s own timeout
    assert isinstance(error, BusinessError) and error.code == 2302999, error
    assert "(code 1001, reason 'going away')" in error.message  # the drop's close (SPEC 13)
    assert client.state is State.CLOSED


def test_a_certificate_that_no_longer_verifies_stops_reconnecting(
    server: WebSocketServer, ws: WebSocket, certs: Certs, tmp_path: Any
) -> None:
    """Each attempt verifies the server's certificate again: after a restart with a certificate
    for another host name, the attempt fails with the verification error, which is final
    (SPEC 14): state CLOSED, no further reconnect event."""
    cert, key = certs.server_files(tmp_path)
    start(server, serverCert={"certPath": cert, "keyPath": key})
    port = server.port
    timeline = Timeline(ws)
    ws.connect(f"wss://localhost:{port}", {"reconnect": FAST, "caPath": str(certs.ca_pem)}).result(TIMEOUT)  # type: ignore[union-attr]
    timeline.expect("open")
    server.stop().result(TIMEOUT)
    timeline.expect("close", "reconnect")
    other = tmp_path / "other"
    other.mkdir()
    cert, key = certs.server_files(other, leaf=certs.wrong_host)
    config = {"serverIP": "127.0.0.1", "serverPort": port, "serverCert": {"certPath": cert, "keyPath": key}}
    assert server.start(config).result(TIMEOUT)
    while (event := timeline.next())[0] == "reconnect" or "refused" in str(event[1]):
        pass  # attempts made before the restart
    assert event[0] == "error" and "certificate verification failed" in str(event[1])
    assert ws.state is State.CLOSED
    assert timeline.quiet_for(0.5)  # a retry would announce itself with a reconnect event at once


def test_wss_through_an_http_proxy_reconnects(
    server: WebSocketServer, ws: WebSocket, certs: Certs, proxy: Pproxy, tmp_path: Any
) -> None:
    """wss:// through an authenticating HTTP CONNECT proxy: after a server restart the attempt
    opens a new tunnel through the proxy, and the connection carries on. (That each attempt
    verifies the certificate again: the test before.)"""
    cert, key = certs.server_files(tmp_path)
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    start(server, serverCert={"certPath": cert, "keyPath": key})
    port = server.port
    assert port is not None
    timeline = Timeline(ws)
    options = {
        "reconnect": FAST,
        "caPath": str(certs.ca_pem),
        "proxy": {
            "host": "127.0.0.1",
            "port": proxy.port,
            "username": PROXY_USER,
            "password": PROXY_PASSWORD,
        },
    }
    ws.connect(f"wss://localhost:{port}", options).result(TIMEOUT)  # type: ignore[union-attr]
    timeline.expect("open")
    tunnels = proxy.log.read_text(errors="replace").count(f"-> localhost:{port}")
    server.stop().result(TIMEOUT)
    timeline.expect("close", "reconnect")
    assert server.start(
        {"serverIP": "127.0.0.1", "serverPort": port, "serverCert": {"certPath": cert, "keyPath": key}}
    ).result(TIMEOUT)
    while (event := timeline.next())[0] != "open":
        assert event[0] in ("error", "reconnect")
    assert proxy.log.read_text(errors="replace").count(f"-> localhost:{port}") > tunnels
    ws.send("through the tunnel again")
    assert timeline.expect("message")[0][1] == "through the tunnel again"


def test_a_crash_while_an_end_is_torn_down_still_reconnects(
    ws: WebSocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug that raises while the connection that was open is torn down (forced once, in
    stopping its writer): the close event still comes, and the server's 1012 still brings the
    reconnect (the end is reported to the reconnecting WebSocket, not lost with the crash).
    The writer is broken before the connect: the server closes at once, and only a teardown
    stops a writer, so the first stop is that connection's."""
    from ohws._writer import FrameWriter

    broken_once, _ = raising_on_call(FrameWriter.stop, 1, "bug in the teardown")
    monkeypatch.setattr(FrameWriter, "stop", broken_once)

    with (
        ohws_log_records() as records,
        RawServer(_scripts(_open_then_close(1012), _stay_open), connections=2) as raw,
    ):
        timeline = Timeline(ws)
        ws.connect(raw.url, {"reconnect": FAST})
        got = timeline.expect("open", "close", "reconnect", "open")
        assert got[1][1].code == 1012
        assert ws.state is State.OPEN
        assert "bug in the teardown" in str(next_crash(records, TIMEOUT))
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
