"""SPEC 4.7: what bounds the wait for the lane before the close reply, and what is delivered.

A scripted server sends a message and its close frame at once; the client's message callback
is held, and the test measures when the client's close reply reaches the server. Then, on
both ends: nothing that arrives after the peer's close frame or its protocol error is
delivered, even when it comes in the same read; and a peer that shuts down its sending side
after its close frame still gets the replies and the close frame.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from ohws import CloseResult, WebSocketServer, webSocket

from .raw_client import MASK, RawClient
from .recorder import Recorder
from .server_support import ServerEvents, echoing_to_a_raw_client, server, start
from .servers import TIMEOUT, RawPeer, RawServer, frame_bytes

__all__ = ["server"]  # the fixture, imported


def _close_reply_time(peer: RawPeer, sent_close: threading.Event) -> tuple[float, float, bytes]:
    """Send a message and a close at once; return when the close was sent, when the client's
    close frame came, and its payload."""
    peer.handshake()
    peer.send_text("hold me")
    sent_at = time.monotonic()  # before the close leaves: the client's clock starts after this
    peer.send_close(4000, "bye")
    sent_close.set()
    while True:
        opcode, _, payload = peer.recv_frame()
        if opcode == 0x8:
            return sent_at, time.monotonic(), payload


def test_a_held_callback_delays_the_close_reply_by_at_most_close_timeout() -> None:
    """closeTimeout 1 s: with the message callback held, the reply leaves within [1, 2.5] s of
    the server's close, and it is the echo of the server's code."""
    sent_close, release = threading.Event(), threading.Event()

    def script(peer: RawPeer) -> tuple[float, float, bytes]:
        result = _close_reply_time(peer, sent_close)
        release.set()
        return result

    with RawServer(script) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.on("message", lambda err, data: release.wait(TIMEOUT))
        ws.connect(raw.url, {"closeTimeout": 1})
        sent_at, arrived, payload = raw.result()
        assert 1.0 <= arrived - sent_at <= 2.5
        assert payload == struct.pack("!H", 4000)
        assert rec.wait_for("close").value.code == 4000


def test_close_called_while_the_reply_waits_answers_at_once() -> None:
    """close() while the held callback keeps the reply waiting: the reply leaves at once, not
    after closeTimeout (5 s by default)."""
    sent_close, release, replied = threading.Event(), threading.Event(), threading.Event()
    arrived: list[float] = []

    def script(peer: RawPeer) -> bytes:
        _, at, payload = _close_reply_time(peer, sent_close)
        arrived.append(at)
        replied.set()
        return payload

    with RawServer(script) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.on("message", lambda err, data: release.wait(TIMEOUT))
        ws.connect(raw.url)
        assert sent_close.wait(TIMEOUT)
        deadline = time.monotonic() + TIMEOUT  # until the reader has read the close frame
        while (connection := ws._connection) is None or connection.unasked_end() != 4000:
            assert time.monotonic() < deadline, "the close frame was never read"
            time.sleep(0.01)
        # Proves only that it did not happen: by default the reply waits up to 5 s.
        assert not replied.wait(0.5), "the reply did not wait for the held callback"
        called = time.monotonic()
        closing = ws.close()
        assert raw.result() == struct.pack("!H", 4000)
        assert called <= arrived[0] < called + 1.5  # at close(), not at closeTimeout
        release.set()
        assert closing.result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("close").value.code == 4000


class RefusingDispatcher:
    """A dispatcher whose loop is gone: every submit raises."""

    def submit(self, fn: Any, /, *args: Any) -> None:
        raise RuntimeError("the loop is closed")


def test_a_refusing_dispatcher_does_not_hold_the_close_reply() -> None:
    """When the dispatcher refuses work, nothing will run the queued callbacks: the reply
    leaves at once instead of after closeTimeout (5 s by default)."""
    sent_close = threading.Event()
    arrived: list[float] = []

    def script(peer: RawPeer) -> bytes:
        sent_at, at, payload = _close_reply_time(peer, sent_close)
        arrived.append(at - sent_at)
        return payload

    with RawServer(script) as raw:
        ws = webSocket.createWebSocket(RefusingDispatcher())
        ws.on("message", lambda err, data: None)
        ws.connect(raw.url)
        assert raw.result() == struct.pack("!H", 4000)
        assert arrived[0] < 1.5


# ---------------------------------------------------------------- nothing after the end is delivered

BEFORE = frame_bytes(0x1, b"before")
AFTER = frame_bytes(0x1, b"after 1") + frame_bytes(0x2, b"after 2")
# A continuation frame with no message to continue: 1002, found after the frame was parsed,
# so the frames behind it are still well-formed and readable.
ORPHAN_CONTINUATION = frame_bytes(0x0, b"orphan")


def _burst_then_wait_for_the_reply(ending: bytes) -> Any:
    """A script that sends a message, ``ending`` and more messages in one write (so the client
    reads them together), then returns the client's close frame payload."""

    def script(peer: RawPeer) -> bytes:
        peer.handshake()
        peer.sock.sendall(BEFORE + ending + AFTER)
        return peer.recv_until(0x8)[2]

    return script


def test_client_delivers_nothing_received_after_the_servers_close_frame() -> None:
    """SPEC 4.7: a message, the server's close frame and two more messages arrive together:
    the first message is delivered, the two after the close are not, and the close is the
    server's (4000, echoed)."""
    with RawServer(_burst_then_wait_for_the_reply(frame_bytes(0x8, struct.pack("!H", 4000) + b"bye"))) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.connect(raw.url)
        assert rec.wait_for("close").value == CloseResult(4000, "bye")
        assert rec.messages() == ["before"]  # every message the reader emitted precedes close
        assert raw.result() == struct.pack("!H", 4000)


def test_client_delivers_nothing_received_after_the_servers_protocol_error() -> None:
    """SPEC 4.7: a message, a protocol error (a continuation frame with nothing to continue)
    and two well-formed messages arrive together: the first message is delivered, the two
    after the error are not; the client fails the connection with 1002."""
    with RawServer(_burst_then_wait_for_the_reply(ORPHAN_CONTINUATION)) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.connect(raw.url)
        assert rec.wait_for("close").value.code == 1002
        assert rec.messages() == ["before"]
        assert "error" in rec.events()
        assert raw.result()[:2] == struct.pack("!H", 1002)


@pytest.mark.parametrize(
    ("ending", "code"),
    [
        (frame_bytes(0x8, struct.pack("!H", 4000) + b"bye", mask=MASK), 4000),
        (frame_bytes(0x0, b"orphan", mask=MASK), 1002),
    ],
    ids=["close frame", "protocol error"],
)
def test_server_delivers_nothing_received_after_the_clients_close_or_protocol_error(
    server: WebSocketServer, ending: bytes, code: int
) -> None:
    """SPEC 4.7 on the server: a client's message, its close frame (or a protocol error) and
    two more messages in one write: one messageReceive, for the first; the close is the
    client's code (or 1002)."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    after = frame_bytes(0x1, b"after 1", mask=MASK) + frame_bytes(0x2, b"after 2", mask=MASK)
    raw.sock.sendall(frame_bytes(0x1, b"before", mask=MASK) + ending + after)
    assert raw.frames_until_close() == ([], code)
    seen = events.collect({"close": 1})
    raw.close()
    assert [args[0].data for name, args in seen if name == "messageReceive"] == ["before"]
    assert [args[1].code for name, args in seen if name == "close"] == [code]


# ---------------------------------------------------------------- a peer that half-closes


def test_client_answers_a_server_that_half_closes_after_its_close_frame() -> None:
    """RFC 6455 5.5.1 and SPEC 4.7: a server that sends a message and its close frame, then
    shuts down only its sending side, still gets the reply the message callback sends and
    then the client's close frame, although EOF reached the client first."""
    received: list[tuple[int, bytes]] = []

    def half_close(peer: RawPeer) -> None:
        peer.handshake()
        peer.sock.sendall(frame_bytes(0x1, b"ping me") + frame_bytes(0x8, struct.pack("!H", 4000) + b"bye"))
        peer.sock.shutdown(socket.SHUT_WR)
        while True:
            opcode, _, payload = peer.recv_frame()
            received.append((opcode, payload))
            if opcode == 0x8:
                return

    with RawServer(half_close) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.on("message", lambda err, data: ws.send(f"reply to {data}"))
        ws.connect(raw.url)
        assert rec.wait_for("close").value == CloseResult(4000, "bye")
        raw.result()
    assert received == [(0x1, b"reply to ping me"), (0x8, struct.pack("!H", 4000))]


def test_server_answers_a_client_that_half_closes_after_its_close_frame(server: WebSocketServer) -> None:
    """The same on the server: a client's message and close frame, then its sending side shut
    down: the server's echo and its close frame still reach the client."""
    events, raw = echoing_to_a_raw_client(server)
    raw.sock.sendall(
        frame_bytes(0x1, b"echo me", mask=MASK) + frame_bytes(0x8, struct.pack("!H", 4000), mask=MASK)
    )
    raw.sock.shutdown(socket.SHUT_WR)
    assert raw.frames_until_close() == ([(0x1, b"echo me")], 4000)
    assert [args[1].code for name, args in events.collect({"close": 1}) if name == "close"] == [4000]
    raw.close()
