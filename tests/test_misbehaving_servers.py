"""SPEC 4.1, 4.4, 4.5, 4.6 against scripted raw-socket servers that misbehave on purpose."""

from __future__ import annotations

import functools
import itertools
import queue
import select
import socket
import struct
import threading
import time
from typing import Any

import pytest

import ohws._options
from ohws import BusinessError, CloseResult, State, WebSocket, webSocket

from .recorder import Recorder
from .servers import TIMEOUT, RawPeer, RawServer, frame_bytes
from .timing import assert_took, takes

CLOSE, PING, PONG, TEXT, BINARY, CONT = 0x8, 0x9, 0xA, 0x1, 0x2, 0x0


def open_ws(url: str, options: Any = None) -> tuple[WebSocket, Recorder]:
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    promise = ws.connect(url, options or {})
    assert promise is not None
    assert promise.result(TIMEOUT) is True
    return ws, rec


def failed_connect(url: str, options: Any = None) -> tuple[BusinessError, Recorder]:
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    promise = ws.connect(url, options or {})
    assert promise is not None
    with pytest.raises(BusinessError) as info:
        promise.result(TIMEOUT)
    assert ws.state is State.CLOSED
    return info.value, rec


def close_code(payload: bytes) -> int | None:
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def sends_then_reports_close(raw: bytes) -> Any:
    """A server script: handshake, send ``raw`` bytes, return the close code the client sends."""

    def script(peer: RawPeer) -> int | None:
        peer.handshake()
        peer.sock.sendall(raw)
        sent = close_code(peer.recv_until(CLOSE)[2])
        peer.expect_eof()
        return sent

    return script


def assert_failed_with(rec: Recorder, code: int, word: str) -> None:
    """error(200) then close(code) naming the problem, in that order."""
    error = rec.wait_for("error").value
    assert error.code == 200
    assert word in error.message
    closed = rec.wait_for("close").value
    assert closed.code == code
    assert word in closed.reason
    events = rec.events()
    assert events.index("error") < events.index("close")


# ---------------------------------------------------------------- handshake failures


def test_handshake_403_is_error_200_with_status_data() -> None:
    """A 403 answer: error(200, data='403') and a rejection naming the status; no close event."""

    def forbid(peer: RawPeer) -> None:
        peer.handshake(status="403 Forbidden")

    with RawServer(forbid) as server:
        error, rec = failed_connect(server.url)
    assert error.code == 200
    assert error.data == "403"
    assert "403 Forbidden" in error.message
    event = rec.wait_for("error").value
    assert (event.code, event.data) == (200, "403")
    time.sleep(0.2)  # proves that no close event follows a failed connect
    assert "close" not in rec.events() and "open" not in rec.events()


def test_sends_queued_while_connecting_are_rejected_when_the_handshake_fails() -> None:
    """send() while CONNECTING is queued; a failed handshake rejects it with 2302999 (the
    server answers only once send() has returned)."""
    sent = threading.Event()

    def forbid(peer: RawPeer) -> None:
        request = peer.read_request()
        assert sent.wait(TIMEOUT)
        peer.handshake(status="403 Forbidden", request=request)

    with RawServer(forbid) as server:
        ws = webSocket.createWebSocket()
        connecting = ws.connect(server.url)
        queued = ws.send("too early")
        sent.set()
        assert connecting is not None and queued is not None
        with pytest.raises(BusinessError) as info:
            queued.result(TIMEOUT)
        assert info.value.code == 2302999
        assert "failed before it opened" in info.value.message
        with pytest.raises(BusinessError) as info:
            connecting.result(TIMEOUT)
        assert (info.value.code, info.value.data) == (200, "403")


def test_bad_accept_key_is_rejected() -> None:
    """A wrong Sec-WebSocket-Accept fails the connect with 200, data '101'."""

    def wrong_accept(peer: RawPeer) -> None:
        peer.handshake(accept="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        peer.expect_eof()

    with RawServer(wrong_accept) as server:
        error, _ = failed_connect(server.url)
    assert (error.code, error.data) == (200, "101")
    assert "Sec-WebSocket-Accept" in error.message


def test_unoffered_subprotocol_is_rejected() -> None:
    """A server selecting a subprotocol that was not offered fails the connect."""

    def pick_other(peer: RawPeer) -> None:
        peer.handshake(extra=[("Sec-WebSocket-Protocol", "mqtt")])
        peer.expect_eof()

    with RawServer(pick_other) as server:
        error, _ = failed_connect(server.url, {"protocol": "chat"})
    assert "'mqtt'" in error.message


def test_headers_keep_duplicates_reason_phrase_and_protocol_case() -> None:
    """headerReceive keeps repeated headers as lists; open/openInfo keep the phrase and case."""

    def fancy(peer: RawPeer) -> None:
        peer.handshake(
            status="101 Web Socket Protocol Handshake",
            extra=[
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Trace", "t"),
                ("Sec-WebSocket-Protocol", "SuperChat"),
            ],
        )
        peer.answer_close()

    with RawServer(fancy) as server:
        ws, rec = open_ws(server.url, {"protocol": "chat, superchat"})
        headers = rec.wait_for("headerReceive").value
        assert headers["set-cookie"] == ["a=1", "b=2"]
        assert headers["x-trace"] == "t"
        opened = rec.wait_for("open").value
        assert (opened.status, opened.message) == (101, "Web Socket Protocol Handshake")
        assert rec.wait_for("openInfo").value.protocol == "SuperChat"
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_server_selecting_no_subprotocol_is_accepted() -> None:
    """Offering subprotocols and getting none back opens with protocol None."""

    def plain(peer: RawPeer) -> None:
        peer.handshake()
        peer.answer_close()

    with RawServer(plain) as server:
        ws, rec = open_ws(server.url, {"protocol": "chat"})
        assert rec.wait_for("openInfo").value.protocol is None
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_connect_timeout_when_handshake_never_answers() -> None:
    """A server that never answers: the connect fails after connectTimeout (not before, not
    much later) with error 200, and the rejection says timed out."""

    def silent(peer: RawPeer) -> bool:
        peer.read_request()
        return peer.expect_eof()

    with RawServer(silent) as server:
        with takes(1.0, "connect with connectTimeout 1"):
            error, rec = failed_connect(server.url, {"connectTimeout": 1.0})
        assert server.result() is True, "the client must hang up when connectTimeout runs out"
    assert error.code == 200 and error.data == "0"
    assert "timed out" in error.message
    assert rec.wait_for("error").value.code == 200


def test_connect_timeout_with_trickling_handshake() -> None:
    """Bytes trickling in do not extend connectTimeout: it bounds the whole handshake."""

    def trickle(peer: RawPeer) -> bool:
        peer.read_request()
        peer.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                peer.sock.sendall(b"a")
            except OSError:
                return True  # the client hung up
            time.sleep(0.05)  # the trickle's pace: far below any per-read timeout
        return False

    with RawServer(trickle) as server:
        with takes(1.0, "connect with connectTimeout 1 against a trickle"):
            error, _ = failed_connect(server.url, {"connectTimeout": 1.0})
        assert server.result() is True, "the client must hang up when connectTimeout runs out"
    assert "timed out" in error.message


# ---------------------------------------------------------------- message layer


def test_fragmented_message_with_pings_between_fragments() -> None:
    """Fragments reassemble into one message; each ping gets a pong with its payload."""

    def fragments(peer: RawPeer) -> list[bytes]:
        peer.handshake()
        peer.send_frame(TEXT, b"frag", fin=False)
        peer.send_frame(PING, b"ping-1")
        peer.send_frame(CONT, " é".encode()[:2], fin=False)
        peer.send_frame(PING, b"ping-2")
        peer.send_frame(CONT, " é".encode()[2:] + b"nd", fin=True)
        pongs = [peer.recv_until(PONG)[2], peer.recv_until(PONG)[2]]
        peer.answer_close()
        return pongs

    with RawServer(fragments) as server:
        ws, rec = open_ws(server.url)
        assert rec.wait_for("message").value == "frag énd"
        ws.close()
        assert server.result() == [b"ping-1", b"ping-2"]
    assert rec.messages() == ["frag énd"]


@pytest.mark.parametrize(
    ("frames", "code", "word"),
    [
        ([(TEXT, b"ok \xe2\x82", True)], 1007, "UTF-8"),
        ([(TEXT, b"ok \xe2", False), (CONT, b"\x82", True)], 1007, "UTF-8"),
        ([(PING, b"x" * 126, True)], 1002, "126-byte control frame"),
        ([(CONT, b"x", True)], 1002, "continuation"),
        ([(TEXT, b"a", False), (TEXT, b"b", True)], 1002, "inside a fragmented"),
        ([(0x3, b"", True)], 1002, "unknown opcode"),
        ([(BINARY, b"y" * 2000, True)], 1009, "maxMessageSize"),
    ],
)
def test_protocol_violations_fail_the_connection(
    frames: list[tuple[int, bytes, bool]], code: int, word: str
) -> None:
    """Each violation: the client sends close(code), then error(200) and close(code)."""

    raw = b"".join(frame_bytes(opcode, payload, fin=fin) for opcode, payload, fin in frames)
    with RawServer(sends_then_reports_close(raw)) as server:
        ws, rec = open_ws(server.url, {"maxMessageSize": 1000})
        assert_failed_with(rec, code, word)
        assert server.result() == code
    assert ws.state is State.CLOSED


def test_a_small_whole_message_over_max_message_size_is_1009() -> None:
    """maxMessageSize applies to the small whole messages the reader takes straight from a
    read (at most 125 bytes, one frame) as to any other."""
    raw = frame_bytes(TEXT, b"fits") + frame_bytes(BINARY, b"z" * 50)
    with RawServer(sends_then_reports_close(raw)) as server:
        ws, rec = open_ws(server.url, {"maxMessageSize": 10})
        assert_failed_with(rec, 1009, "maxMessageSize")
        assert server.result() == 1009
    assert rec.messages() == ["fits"]
    assert ws.state is State.CLOSED


def test_a_whole_text_frame_read_while_a_message_is_fragmented_is_1002() -> None:
    """A read that holds only a whole small text frame, coming while a fragmented message is
    unfinished (from an earlier read), is still the protocol error it is: the reader's
    shortcut for small messages does not take it. The pong proves that the first fragment
    was read before the frame is sent."""

    def script(peer: RawPeer) -> int | None:
        peer.handshake()
        peer.sock.sendall(frame_bytes(TEXT, b"a", fin=False) + frame_bytes(PING, b"read?"))
        peer.recv_until(PONG)
        peer.send_frame(TEXT, b"b")
        return close_code(peer.recv_until(CLOSE)[2])

    with RawServer(script) as server:
        _, rec = open_ws(server.url)
        assert_failed_with(rec, 1002, "inside a fragmented")
        assert server.result() == 1002
    assert rec.messages() == []


def test_the_rest_of_a_frame_that_looks_like_small_frames_is_payload() -> None:
    """The rest of a frame begun in an earlier read is payload, even when it starts like a
    small whole frame: the reader's shortcut does not take it. The pong proves that the
    first part was read (in the same read as the ping before it) before the rest is sent."""
    payload = frame_bytes(TEXT, b"ok") * 50  # 200 bytes that parse as 50 small frames

    def script(peer: RawPeer) -> bool:
        peer.handshake()
        peer.sock.sendall(frame_bytes(PING, b"read?") + frame_bytes(BINARY, payload)[:8])
        peer.recv_until(PONG)
        peer.sock.sendall(frame_bytes(BINARY, payload)[8:])
        return peer.answer_close()

    with RawServer(script) as server:
        ws, rec = open_ws(server.url)
        assert rec.wait_for("message").value == payload
        ws.close()
        assert server.result() is True
    assert rec.messages() == [payload]


def test_small_messages_after_the_rest_of_a_frame_keep_their_order() -> None:
    """A read that brings the rest of a frame begun earlier and then small whole messages, a
    ping among them: every message in order, the ping answered. (Whether those messages take
    the reader's shortcut is a matter of speed, which FrameParser.missing's test covers.)"""
    payload = b"p" * 200

    def script(peer: RawPeer) -> bytes:
        peer.handshake()
        peer.sock.sendall(frame_bytes(PING, b"read?") + frame_bytes(BINARY, payload)[:50])
        peer.recv_until(PONG)
        rest = frame_bytes(BINARY, payload)[50:] + frame_bytes(TEXT, b"a") + frame_bytes(TEXT, b"b")
        peer.sock.sendall(rest + frame_bytes(PING, b"again") + frame_bytes(TEXT, b"c"))
        pong = peer.recv_until(PONG)[2]
        peer.answer_close()
        return pong

    with RawServer(script) as server:
        ws, rec = open_ws(server.url)
        assert [rec.wait_for("message").value for _ in range(4)] == [payload, "a", "b", "c"]
        ws.close()
        assert server.result() == b"again"


def test_masked_frame_and_reserved_bits_are_1002() -> None:
    """A masked server frame and a frame with RSV bits both fail with 1002."""
    for raw, word in (
        (frame_bytes(TEXT, b"x", mask=b"abcd"), "masked"),
        (frame_bytes(TEXT, b"x", rsv=2), "reserved bits"),
    ):
        with RawServer(sends_then_reports_close(raw)) as server:
            _, rec = open_ws(server.url)
            assert_failed_with(rec, 1002, word)
            assert server.result() == 1002


def test_invalid_utf8_close_reason_is_1007() -> None:
    """A close frame whose reason is not UTF-8 fails with 1007."""

    bad_reason = frame_bytes(CLOSE, struct.pack("!H", 1000) + b"\xff")
    with RawServer(sends_then_reports_close(bad_reason)) as server:
        _, rec = open_ws(server.url)
        assert_failed_with(rec, 1007, "UTF-8")
        assert server.result() == 1007


def test_huge_announced_length_fails_at_once_with_1009() -> None:
    """A frame header announcing 2^62 bytes fails with 1009 without waiting for the payload."""

    huge = bytes([0x82, 127]) + struct.pack("!Q", 2**62)
    with RawServer(sends_then_reports_close(huge)) as server:
        _, rec = open_ws(server.url)
        assert_failed_with(rec, 1009, "maxMessageSize")
        assert server.result() == 1009


# ---------------------------------------------------------------- closing


def test_server_close_without_code_is_1005_and_echoed_empty() -> None:
    """A close frame with no payload: echoed empty; close event CloseResult(1005, '')."""

    def bare_close(peer: RawPeer) -> bytes:
        peer.handshake()
        peer.send_close(None)
        echo = peer.recv_until(CLOSE)[2]
        peer.close()
        return echo

    with RawServer(bare_close) as server:
        _, rec = open_ws(server.url)
        assert rec.wait_for("close").value == CloseResult(1005, "")
        assert server.result() == b""
    assert "error" not in rec.events()


def test_server_close_code_is_echoed() -> None:
    """The client echoes the server's close code; the event has code and reason."""

    def close_first(peer: RawPeer) -> int | None:
        peer.handshake()
        peer.send_close(4004, "going")
        echo = close_code(peer.recv_until(CLOSE)[2])
        peer.expect_eof()
        return echo

    with RawServer(close_first) as server:
        _, rec = open_ws(server.url)
        assert rec.wait_for("close").value == CloseResult(4004, "going")
        assert server.result() == 4004


def test_close_timeout_when_server_never_answers_close() -> None:
    """No close reply: after closeTimeout TCP is closed; close() resolves True with the sent code."""

    with RawServer(sends_then_reports_close(b"")) as server:  # never answers the close
        ws, rec = open_ws(server.url, {"closeTimeout": 0.5})
        with takes(0.5, "close with closeTimeout 0.5 and no reply"):
            assert ws.close({"code": 3001, "reason": "r"}).result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("close").value == CloseResult(3001, "r")
        assert server.result() == 3001
    assert "error" not in rec.events()


def test_close_aborts_when_server_stops_reading() -> None:
    """With the server not reading, queued sends pile up; close() still ends after closeTimeout."""

    done = threading.Event()

    def stop_reading(peer: RawPeer) -> None:
        peer.handshake()
        done.wait(TIMEOUT)

    with RawServer(stop_reading) as server:
        ws, rec = open_ws(server.url, {"closeTimeout": 0.5})
        pending = [ws.send(b"z" * (1 << 20)) for _ in range(64)]
        assert ws.bufferedAmount > 0
        with takes(0.5, "close with closeTimeout 0.5 behind a stuck write"):
            assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("close").value == CloseResult(1000, "")
        outcomes = []
        for promise in pending:
            assert promise is not None
            try:
                outcomes.append(promise.result(TIMEOUT))
            except BusinessError as exc:
                outcomes.append(exc.code)
        assert 2302999 in outcomes
        assert ws.bufferedAmount == 0
        done.set()


def test_a_server_that_closes_and_stops_reading_is_aborted_after_close_timeout() -> None:
    """The server sends its close frame and reads nothing more, with the client's writes
    blocked behind 16 MiB: the close reply cannot go out, and closeTimeout (0.5 s) after the
    server's close the client aborts and reports the close, not later (the reader, woken by
    the abort, goes on at once instead of waiting for a close frame that will never go out)."""
    queued, done = threading.Event(), threading.Event()

    def close_and_stop_reading(peer: RawPeer) -> float:
        peer.handshake()
        queued.wait(TIMEOUT)  # until the client's send is queued behind a full socket
        closed_at = time.monotonic()  # before the close leaves: the client's clock starts after
        peer.send_close(1000, "bye")
        done.wait(TIMEOUT)
        return closed_at

    with RawServer(close_and_stop_reading, receive_buffer=65536) as server:
        ws, rec = open_ws(server.url, {"closeTimeout": 0.5})
        pending = ws.send(b"z" * (16 << 20))
        assert ws.bufferedAmount > 0
        queued.set()
        rec.wait_for("close")
        reported_at = time.monotonic()
        done.set()
        closed_at = server.result()
    assert 0.5 <= reported_at - closed_at < 1.5
    assert pending is not None
    with pytest.raises(BusinessError):
        pending.result(TIMEOUT)


def test_close_does_not_wait_for_a_server_that_only_trickles() -> None:
    """A server that takes ~4 KB/s of the sends queued before the close (less than 16 KiB per
    closeTimeout) counts as one that has stopped reading: aborted after closeTimeout, not
    waited for until the 4 MiB have trickled through (SPEC 4.3, and 11 for stop())."""
    done = threading.Event()

    def trickle(peer: RawPeer) -> None:
        peer.handshake()
        while not done.wait(0.25):
            peer.sock.recv(1024)

    with RawServer(trickle, receive_buffer=65536) as server:
        ws, rec = open_ws(server.url, {"closeTimeout": 0.5})
        pending = ws.send(b"z" * (4 << 20))
        with takes(0.5, "close with closeTimeout 0.5 to a server taking ~4 KB/s"):
            assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        done.set()
        assert rec.wait_for("close").value == CloseResult(1000, "")
        assert pending is not None
        with pytest.raises(BusinessError):
            pending.result(TIMEOUT)


def test_close_waits_while_a_slow_server_still_reads_the_sends_before_it() -> None:
    """closeTimeout bounds a close whose writing stalls, not one whose writing goes on: a
    server that reads the 12 MiB queued before the close at ~4 MB/s (longer than closeTimeout,
    1 s) gets all of it, then the close frame; and it has closeTimeout from then on to answer
    (it answers after 0.8 s), not what was left of the first closeTimeout. It sends nothing
    meanwhile, and the heartbeat (1 s + 1 s here) does not take it for a dead peer."""
    size = 12 << 20

    def read_slowly(peer: RawPeer) -> tuple[int, bool]:
        peer.handshake()
        received = 0
        while received < size:
            received += len(peer.sock.recv(min(65536, size - received)))
            time.sleep(0.015)  # the slow reader: ~4 MB/s
        peer.recv_until(CLOSE)
        time.sleep(0.8)  # a slow answer, within closeTimeout of the close frame
        readable, _, _ = select.select([peer.sock], [], [], 0)  # EOF already, if it hung up
        hung_up = bool(readable) and peer.sock.recv(1, socket.MSG_PEEK) == b""
        peer.send_close(1000)
        peer.expect_eof()
        return received, hung_up

    with RawServer(read_slowly, receive_buffer=65536) as server:
        ws, rec = open_ws(server.url, {"closeTimeout": 1.0, "pingInterval": 1, "pongTimeout": 1})
        sent = ws.send(b"z" * (size - 14))  # with its 14-byte header: exactly `size` on the wire
        started = time.monotonic()
        closing = ws.close()
        assert closing is not None and closing.result(TIMEOUT) is True
        assert time.monotonic() - started > 2.0  # the writing outlasted closeTimeout twice
        assert sent is not None and sent.result(TIMEOUT) is True
        assert rec.wait_for("close").value == CloseResult(1000, "")
        assert server.result() == (size, False)


# ---------------------------------------------------------------- connection loss


def test_abrupt_drop_is_error_then_close_1006() -> None:
    """TCP closed without a close frame: error(200, data='0') then close(1006, why)."""

    def drop(peer: RawPeer) -> None:
        peer.handshake()
        peer.send_text("last words")

    with RawServer(drop) as server:
        ws, rec = open_ws(server.url)
        error = rec.wait_for("error").value
        assert (error.code, error.data) == (200, "0")
        closed = rec.wait_for("close").value
        assert closed.code == 1006
        assert "without a close frame" in closed.reason
    assert rec.messages() == ["last words"]
    assert ws.state is State.CLOSED


def test_drop_mid_frame_is_1006() -> None:
    """The server vanishing in the middle of a frame is a connection loss (1006)."""

    def half_frame(peer: RawPeer) -> None:
        peer.handshake()
        peer.sock.sendall(bytes([0x82, 100]) + b"only part")

    with RawServer(half_frame) as server:
        _, rec = open_ws(server.url)
        assert rec.wait_for("close").value.code == 1006
    assert rec.messages() == []


# ---------------------------------------------------------------- heartbeat (SPEC 4.6)


def answer_pings(pings: queue.Queue[float], pong: bool = True) -> Any:
    """A server script: put into ``pings`` the time before the handshake, then the time of
    each ping, taken before answering it unless ``pong`` is False (so the client cannot have
    seen the pong earlier); at the close, answer and return the client's code."""

    def script(peer: RawPeer) -> int | None:
        pings.put(time.monotonic())  # the client's heartbeat starts after this
        peer.handshake()
        while True:
            opcode, _, payload = peer.recv_frame()
            if opcode == PING:
                pings.put(time.monotonic())
                if pong:
                    peer.send_frame(PONG, payload)
            elif opcode == CLOSE:
                peer.send_close(1000)
                peer.expect_eof()
                return close_code(payload)

    return script


def test_idle_connection_sends_ping_and_pong_keeps_it() -> None:
    """After pingInterval idle seconds a ping goes out, and again pingInterval after each
    pong: every gap (from the handshake, then from each ping) lasts pingInterval, give or take
    SLACK; each pong keeps the connection for another round (without it the client drops the
    link pongTimeout after the ping). 2 s settings: SLACK cannot swallow a whole interval."""
    pings: queue.Queue[float] = queue.Queue()
    with RawServer(answer_pings(pings)) as server:
        ws, rec = open_ws(server.url, {"pingInterval": 2, "pongTimeout": 2})
        times = [pings.get(timeout=TIMEOUT) for _ in range(4)]  # a third ping: two pongs counted
        assert ws.state is State.OPEN
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert server.result() == 1000
    for n, (earlier, later) in enumerate(itertools.pairwise(times)):
        assert_took(later - earlier, 2.0, f"the wait for ping {n + 1}")
    assert rec.wait_for("close").value == CloseResult(1000, "")
    assert "error" not in rec.events()


def test_missing_pong_loses_the_connection() -> None:
    """A server that never answers pings: error(200) and close(1006) naming the pong, once
    pingInterval then pongTimeout have passed (2 s after the handshake, give or take SLACK)."""
    handshake: queue.Queue[float] = queue.Queue()

    def never_pong(peer: RawPeer) -> bool:
        handshake.put(time.monotonic())  # the heartbeat starts after this
        peer.handshake()
        peer.recv_until(PING)
        return peer.expect_eof()

    with RawServer(never_pong) as server:
        _, rec = open_ws(server.url, {"pingInterval": 1, "pongTimeout": 1})
        error = rec.wait_for("error").value
        assert_took(time.monotonic() - handshake.get(timeout=TIMEOUT), 2.0, "ping then pong wait")
        assert (error.code, error.data) == (200, "0")
        closed = rec.wait_for("close").value
        assert closed.code == 1006
        assert "pong" in closed.reason
        assert server.result() is True


def test_any_frame_proves_liveness() -> None:
    """Data from the server counts as liveness: while messages flow for longer than
    pingInterval + pongTimeout, no ping is needed and the link stays up; close() then ends
    with the close handshake. The server ticks until the close frame comes, however late."""
    ticks = 15  # 3 s of messages at 0.2 s: pingInterval + pongTimeout (2 s) and a margin

    def chatty(peer: RawPeer) -> list[int]:
        peer.handshake()
        opcodes: list[int] = []
        closed = threading.Event()

        def read_until_close() -> None:
            try:
                while not opcodes or opcodes[-1] != CLOSE:
                    opcodes.append(peer.recv_frame()[0])
            except OSError:  # the client dropped the link: the test sees it as events
                pass
            finally:
                closed.set()

        reader = threading.Thread(target=read_until_close, name="test-chatty-reader", daemon=True)
        reader.start()
        deadline = time.monotonic() + TIMEOUT
        while not closed.wait(0.2):  # the pace of the messages, well inside pingInterval
            assert time.monotonic() < deadline, "no close frame"
            peer.send_text("tick")
        reader.join(TIMEOUT)
        if opcodes[-1:] == [CLOSE]:
            peer.send_close(1000)
            peer.expect_eof()
        return opcodes

    with RawServer(chatty) as server:
        ws, rec = open_ws(server.url, {"pingInterval": 1, "pongTimeout": 1})
        rec.wait_for("openInfo")
        got: list[Any] = []
        while len(got) < ticks and (not got or got[-1].event == "message"):  # or up to an error
            record = rec.next()
            if record.event != "dataEnd":
                got.append(record)
        assert [(r.event, r.value) for r in got] == [("message", "tick")] * ticks
        assert ws.state is State.OPEN
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert server.result() == [CLOSE], "no ping while messages arrive; then the close frame"
    assert rec.wait_for("close").value == CloseResult(1000, "")
    assert "error" not in rec.events()


def test_pong_timeout_zero_pings_but_never_drops() -> None:
    """pongTimeout 0: pings are still sent every pingInterval, and a missing pong never ends
    the connection (with pongTimeout 1 it would end 1 s after the first ping)."""
    pings: queue.Queue[float] = queue.Queue()
    with RawServer(answer_pings(pings, pong=False)) as server:
        ws, rec = open_ws(server.url, {"pingInterval": 1, "pongTimeout": 0})
        pings.get(timeout=TIMEOUT)  # the handshake
        for _ in range(3):
            pings.get(timeout=TIMEOUT)
        assert ws.state is State.OPEN
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert server.result() == 1000
    assert "error" not in rec.events()


def test_ping_interval_zero_sends_no_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """pingInterval 0 disables the heartbeat: with the default interval shortened to 1 s, a
    default connection pings twice while one with pingInterval 0 sends nothing."""
    monkeypatch.setattr(ohws._options, "DEFAULT_PING_INTERVAL", 1)  # a window the default fills
    # Parsed options are cached (shared by the connections that pass the same ones): a fresh
    # cache for this test, so that neither it nor later tests see the other default.
    fresh = functools.lru_cache(maxsize=64)(ohws._options._parse_plain.__wrapped__)
    monkeypatch.setattr(ohws._options, "_parse_plain", fresh)
    default_pings: queue.Queue[float] = queue.Queue()
    silent_pings: queue.Queue[float] = queue.Queue()
    with RawServer(answer_pings(default_pings)) as default, RawServer(answer_pings(silent_pings)) as off:
        disabled, _ = open_ws(off.url, {"pingInterval": 0})
        control, _ = open_ws(default.url)
        for _ in range(3):  # the handshake, then two pings
            default_pings.get(timeout=TIMEOUT)
        assert silent_pings.get(timeout=TIMEOUT)  # the handshake
        assert silent_pings.empty(), "pingInterval 0 sent a ping"
        control.close().result(TIMEOUT)  # type: ignore[union-attr]
        disabled.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert (default.result(), off.result()) == (1000, 1000)
