"""Faults and floods against live peers: what SPEC 4.4 prescribes, with nothing left hanging."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

from ohws import BusinessError, CloseResult, State, webSocket
from ohws._messages import MessageAssembler

from .breakage import next_crash, ohws_log_records, raising_on_call
from .recorder import Recorder
from .servers import TIMEOUT, RawPeer, RawServer, echo, frame_bytes, read_line, websockets_server
from .timing import takes

PING, PONG, TEXT, BINARY, CONT, CLOSE = 0x9, 0xA, 0x1, 0x2, 0x0, 0x8


def test_hundred_thousand_tiny_fragments() -> None:
    """A message of 100,000 one-byte fragments is reassembled and delivered once."""

    def fragments(peer: RawPeer) -> None:
        peer.handshake()
        frames = [frame_bytes(BINARY, b"a", fin=False)]
        frames += [frame_bytes(CONT, b"b", fin=False)] * 99_998
        frames.append(frame_bytes(CONT, b"c"))
        peer.sock.sendall(b"".join(frames))
        peer.answer_close()

    with RawServer(fragments) as server:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        assert ws.connect(server.url).result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("message").value == b"a" + b"b" * 99_998 + b"c"
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert rec.wait_for("close").value.code == 1000  # the last event: all messages are out
    assert len(rec.messages()) == 1


def test_tiny_fragments_over_the_limit_are_1009() -> None:
    """Fragments adding up past maxMessageSize fail with 1009 before the message completes."""

    def fragments(peer: RawPeer) -> int:
        peer.handshake()
        frames = [frame_bytes(BINARY, b"a", fin=False)] + [frame_bytes(CONT, b"b", fin=False)] * 5000
        peer.sock.sendall(b"".join(frames))
        code = peer.recv_until(CLOSE)[2][:2]
        peer.expect_eof()
        return int.from_bytes(code, "big")

    with RawServer(fragments) as server:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        assert ws.connect(server.url, {"maxMessageSize": 1000}).result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("close").value.code == 1009
        assert server.result() == 1009


def test_ten_thousand_pings_while_the_client_sends() -> None:
    """10,000 server pings all get pongs, and 1,000 client messages still arrive in order."""
    pings = 10_000
    counted: queue.Queue[tuple[int, list[bytes]]] = queue.Queue()

    def pinger(peer: RawPeer) -> None:
        peer.handshake()
        writer = threading.Thread(
            target=lambda: peer.sock.sendall(
                b"".join(frame_bytes(PING, str(i).encode()) for i in range(pings))
            )
        )
        writer.start()
        pongs, messages = 0, []
        while pongs < pings or len(messages) < 1000:
            opcode, _, payload = peer.recv_frame()
            if opcode == PONG:
                assert payload == str(pongs).encode()
                pongs += 1
            elif opcode == TEXT:
                messages.append(payload)
        writer.join(TIMEOUT)
        counted.put((pongs, messages))
        peer.answer_close()

    with RawServer(pinger) as server:
        ws = webSocket.createWebSocket()
        assert ws.connect(server.url).result(TIMEOUT) is True  # type: ignore[union-attr]
        for i in range(1000):
            ws.send(f"{i}")
        pongs, messages = counted.get(timeout=TIMEOUT)
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        server.result()
    assert pongs == pings
    assert messages == [f"{i}".encode() for i in range(1000)]


def test_a_stuck_server_blocks_neither_other_connections_nor_close() -> None:
    """Sends to a server that stopped reading pile up; another connection works; close() ends."""
    release = threading.Event()

    def stuck(peer: RawPeer) -> None:
        peer.handshake()
        release.wait(TIMEOUT)

    with RawServer(stuck) as server, websockets_server(echo) as echo_url:
        blocked = webSocket.createWebSocket()
        assert blocked.connect(server.url, {"closeTimeout": 0.5}).result(TIMEOUT) is True  # type: ignore[union-attr]
        for _ in range(32):
            blocked.send(b"x" * (1 << 20))
        assert blocked.bufferedAmount > 0
        healthy = webSocket.createWebSocket()
        rec = Recorder(healthy)
        assert healthy.connect(echo_url).result(TIMEOUT) is True  # type: ignore[union-attr]
        for i in range(100):
            healthy.send(str(i))
        assert [rec.wait_for("message").value for _ in range(100)] == [str(i) for i in range(100)]
        with takes(0.5, "close with closeTimeout 0.5 behind a stuck write"):
            assert blocked.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        healthy.close().result(TIMEOUT)  # type: ignore[union-attr]
        release.set()


def test_server_process_killed_mid_stream() -> None:
    """kill -9 of the server process: every connection reports error, then close 1006."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ohws", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        url = read_line(process.stdout).split("listening on ")[1].strip()
        sockets = [webSocket.createWebSocket() for _ in range(5)]
        closed: queue.Queue[tuple[int, list[str], Any]] = queue.Queue()
        for n, ws in enumerate(sockets):
            events: list[str] = []
            ws.on("error", lambda err, events=events: events.append(f"error {err.code}"))
            ws.on("close", lambda err, value, n=n, events=events: closed.put((n, events, value)))
            assert ws.connect(url).result(TIMEOUT) is True  # type: ignore[union-attr]
            ws.send("streaming")
        process.send_signal(signal.SIGKILL)
        process.wait(TIMEOUT)
        results = [closed.get(timeout=TIMEOUT) for _ in sockets]
    finally:
        process.kill()
        process.wait(TIMEOUT)
        if process.stdout:
            process.stdout.close()
    assert sorted(n for n, _, _ in results) == list(range(5))
    for _, events, value in results:
        assert events == ["error 200"]
        assert isinstance(value, CloseResult) and value.code == 1006
    assert all(ws.state is State.CLOSED for ws in sockets)


def test_a_crash_in_the_reader_thread_is_reported_as_a_lost_connection(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug that raises in the reader thread (forced here in the message layer): logged on
    'ohws', then error(200) and close(1006) as for a lost connection; the socket is closed and
    no thread is left behind (the autouse leak guard)."""

    def broken_receive(self: MessageAssembler, frame: Any) -> Any:
        raise RuntimeError("bug in the message layer")

    server_saw_end: queue.Queue[str] = queue.Queue()

    def answer_then_wait(connection: ServerConnection) -> None:
        connection.send(connection.recv(TIMEOUT))
        try:
            connection.recv(TIMEOUT)
        except ConnectionClosed:
            server_saw_end.put("closed")

    with websockets_server(answer_then_wait) as url:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        assert ws.connect(url).result(TIMEOUT) is True  # type: ignore[union-attr]
        monkeypatch.setattr(MessageAssembler, "receive", broken_receive)
        # The echo reaches the broken message layer: a message over 125 bytes, which the
        # reader's shortcut for small whole messages leaves to it.
        ws.send("boom" * 40)
        error = rec.wait_for("error").value
        closed = rec.wait_for("close").value
        assert server_saw_end.get(timeout=TIMEOUT) == "closed", "the client must close its socket"
    assert (error.code, error.data) == (200, "0")
    assert closed.code == 1006
    assert ws.state is State.CLOSED
    assert rec.messages() == []
    crashes = [r for r in caplog.records if r.name == "ohws" and "connection thread failed" in r.getMessage()]
    assert crashes and "bug in the message layer" in str(crashes[0].exc_info[1])  # type: ignore[index]


def test_a_crash_during_the_opening_fails_the_connect(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug that raises while the opening runs (forced here in parsing the 101): logged on
    'ohws', then reported as any failed opening (error(200), the connect promise rejected, no
    close event), instead of a promise that never settles; the socket is closed."""
    import ohws._connection

    def broken_parse(head: bytes) -> Any:
        raise RuntimeError("bug in the handshake layer")

    monkeypatch.setattr(ohws._connection, "parse_response", broken_parse)
    with RawServer(lambda peer: (peer.handshake(), peer.expect_eof())[1]) as server:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        with pytest.raises(BusinessError) as info:
            ws.connect(server.url).result(TIMEOUT)  # type: ignore[union-attr]
        assert info.value.code == 200
        assert "internal error in the connection thread" in info.value.message
        assert rec.wait_for("error").value.code == 200
        assert server.result() is True, "the client must close its socket"
    assert ws.state is State.CLOSED
    assert "close" not in rec.events()
    crashes = [r for r in caplog.records if r.name == "ohws" and "connection thread failed" in r.getMessage()]
    assert crashes and "bug in the handshake layer" in str(crashes[0].exc_info[1])  # type: ignore[index]


def test_a_crash_while_reporting_the_open_is_a_failed_opening(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug that raises once OPEN but before the open was reported: a failed opening (error
    200, the connect promise rejected, no open and no close event, the socket closed)."""
    from ohws._connection import ClientConnection

    def broken_opened(connection: ClientConnection) -> None:
        raise RuntimeError("bug in reporting the open")

    monkeypatch.setattr(ClientConnection, "_opened", broken_opened)
    with RawServer(lambda peer: (peer.handshake(), peer.expect_eof())[1]) as server:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        with pytest.raises(BusinessError) as info:
            ws.connect(server.url).result(TIMEOUT)  # type: ignore[union-attr]
        assert info.value.code == 200
        assert ws.state is State.CLOSED
        assert rec.wait_for("error").value.code == 200
        assert server.result() is True, "the client must close its socket"
    assert "open" not in rec.events() and "close" not in rec.events()
    assert any("bug in reporting the open" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_crash_while_reporting_a_reopening_is_not_retried(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A reconnecting WebSocket that was open, lost its connection and crashes while
    reporting the reconnect attempt's open: that attempt fails (error 200, the socket closed)
    and is the last one (the bug would only repeat): CLOSED, no further reconnect or attempt,
    although a lost connection is otherwise retried."""
    from ohws._connection import ClientConnection

    broken_second_opened, calls = raising_on_call(ClientConnection._opened, 2, "bug in reporting the open")

    def drop(peer: RawPeer) -> bool:
        peer.handshake()
        peer.close()
        return True

    def crash_then_end(peer: RawPeer) -> bool:
        peer.handshake()
        return peer.expect_eof()

    scripts = iter([drop, crash_then_end, crash_then_end])
    monkeypatch.setattr(ClientConnection, "_opened", broken_second_opened)
    with RawServer(lambda peer: next(scripts)(peer), connections=3) as server:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws, ("open", "close", "error", "reconnect"))
        spec = {"initialDelay": 0.05, "maxDelay": 0.1, "jitter": 0}
        assert ws.connect(server.url, {"reconnect": spec}).result(TIMEOUT) is True  # type: ignore[union-attr]
        assert server.result() is True
        got = [rec.next() for _ in range(5)]
        assert [r.event for r in got] == ["open", "error", "close", "reconnect", "error"], got
        assert got[2].value.code == 1006 and got[4].value.code == 200
        assert ws.state is State.CLOSED  # a reconnect would be planned (CONNECTING) by now
        assert server.result() is True, "the client must close its socket"
        with pytest.raises(queue.Empty):  # a retry would come 0.1 s after the failed attempt
            rec.next(timeout=1.0)
        assert server.accepted == 2 and len(calls) == 2
    assert any("bug in reporting the open" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_crash_while_ending_still_settles_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that raises while the connection ends (forced here once, in stopping the writer,
    before the events): the close event still comes, once, with the code of the close; the
    close promise settles and the socket is closed; the bug is logged; and the crash is not
    taken for a lost connection (no second ending reporting error and close(1006), although
    stopping would work by then)."""
    from ohws._websocket import _Sink
    from ohws._writer import FrameWriter

    broken_stop, stops = raising_on_call(FrameWriter.stop, 1, "bug in the teardown")

    reported: list[str] = []  # what the connection emitted, on its own thread
    emit = _Sink.emit

    def recorded(sink: _Sink, event: str, *args: Any) -> None:
        reported.append(event)
        emit(sink, event, *args)

    with ohws_log_records() as crashes:
        with RawServer(lambda peer: (peer.handshake(), peer.answer_close())[1]) as server:
            ws = webSocket.createWebSocket()
            rec = Recorder(ws)
            assert ws.connect(server.url).result(TIMEOUT) is True  # type: ignore[union-attr]
            reader = f"ohws-reader-{ws._connection.number}"  # type: ignore[union-attr]
            sock = ws._connection._sock  # type: ignore[union-attr]
            assert sock is not None
            monkeypatch.setattr(FrameWriter, "stop", broken_stop)
            monkeypatch.setattr(_Sink, "emit", recorded)
            assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
            assert server.result() is True, "the client must close its socket"
        assert "bug in the teardown" in str(next_crash(crashes, TIMEOUT))
        deadline = time.monotonic() + TIMEOUT  # the reader's thread is renamed once it is done
        while any(thread.name == reader for thread in threading.enumerate()):
            assert time.monotonic() < deadline, "the crashed reader never finished"
            time.sleep(0.01)
    assert ws.state is State.CLOSED
    assert sock.fileno() == -1, "the socket was left open"
    assert reported == ["close"], reported
    assert rec.wait_for("close").value.code == 1000
    assert stops == [1]
