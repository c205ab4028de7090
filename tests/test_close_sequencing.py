"""SPEC 4.7 on the client: what bounds the wait for the lane before the close reply.

A scripted server sends a message and its close frame at once; the client's message callback
is held, and the test measures when the client's close reply reaches the server.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import Any

from ohws import webSocket

from .recorder import Recorder
from .servers import TIMEOUT, RawPeer, RawServer


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
    sent_close, release = threading.Event(), threading.Event()
    arrived: list[float] = []

    def script(peer: RawPeer) -> bytes:
        _, at, payload = _close_reply_time(peer, sent_close)
        arrived.append(at)
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
        called = time.monotonic()
        closing = ws.close()
        assert raw.result() == struct.pack("!H", 4000)
        assert arrived[0] - called < 1.5
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
