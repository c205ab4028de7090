"""SPEC 11 and 4.7: the server on the client's engine, facing clients that misbehave or hurry.

Every accepted connection ends as connect … close or as one error naming the client; replies
sent from callbacks go out before the close, on both ends; the opening handshake is
answered strictly.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from typing import Any

import pytest
import websocket  # websocket-client, as an independent client

from ohws import BusinessError, CloseResult, State, WebSocketServer, webSocket
from ohws import _server as server_module
from ohws._options import ConnectOptions

from .certs import Certs
from .raw_client import MASK, RawClient, upgrade_request
from .recorder import Recorder
from .server_support import ServerEvents, code_of, echo_on, echoing_to_a_raw_client, server, start
from .servers import TIMEOUT, RawPeer, RawServer, frame_bytes

__all__ = ["server"]  # the fixture, imported


def test_clients_that_close_at_once_are_each_accounted_for_and_get_their_echo(
    server: WebSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    """50 clients connect, send one message and close at once: 50 connect, messageReceive and
    close events each (connect first, per client), no error, and every echo sent from the
    messageReceive callback reaches its client before the server's close frame."""
    count = 50
    events = ServerEvents(server)
    echo_on(server)
    url = start(server, maxConcurrentClientsNumber=count, maxConnectionsForOneClient=count)
    echoes: list[Any] = []

    def client(i: int) -> None:
        ws = websocket.create_connection(url, timeout=TIMEOUT)
        ws.send(f"x{i}")
        ws.send_close()
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            echoes.append(data.decode())
        ws.shutdown()  # the close handshake is done: just close the socket

    with caplog.at_level(logging.INFO, logger="ohws"):
        threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        seen = events.collect({"close": count})
    assert sorted(echoes) == sorted(f"x{i}" for i in range(count))
    assert [name for name, _ in seen].count("connect") == count
    assert [name for name, _ in seen].count("messageReceive") == count
    assert "error" not in [name for name, _ in seen]
    for name, args in seen:
        if name == "close":
            assert args[1] == CloseResult(1000, "")
            assert ("connect", (args[0],)) in seen[: seen.index((name, args))]
    assert not [r for r in caplog.records if r.levelno > logging.INFO]


def test_client_replies_from_message_callbacks_go_out_before_its_close_reply() -> None:
    """SPEC 4.7, client side, 30 times: a server sends a message and its close at once; the
    reply the client's message callback sends is written before the client's close reply."""

    def script(peer: RawPeer) -> list[tuple[int, bytes]]:
        peer.handshake()
        # One write, so the close frame is read before the reply could be sent.
        peer.sock.sendall(frame_bytes(0x1, b"question") + frame_bytes(0x8, struct.pack("!H", 4000) + b"bye"))
        frames = []
        while True:
            opcode, _, payload = peer.recv_frame()
            frames.append((opcode, payload))
            if opcode == 0x8:
                return frames

    rounds = 30
    with RawServer(script, connections=rounds) as raw:
        for _ in range(rounds):
            ws = webSocket.createWebSocket()
            rec = Recorder(ws)
            ws.on("message", lambda err, data, ws=ws: ws.send(f"reply to {data}"))
            ws.connect(raw.url)
            assert rec.wait_for("close").value == CloseResult(4000, "bye")
            assert raw.result() == [(0x1, b"reply to question"), (0x8, struct.pack("!H", 4000))]


def test_server_reply_goes_out_before_the_1002_it_fails_the_connection_with(
    server: WebSocketServer,
) -> None:
    """SPEC 4.7 on a protocol error: a message then a frame with reserved bits; the echo of
    the message is written before the server's 1002 close; then error and close(1002)."""
    events, raw = echoing_to_a_raw_client(server)
    # One write, so the bad frame is read before the echo could be sent.
    raw.sock.sendall(
        frame_bytes(0x1, b"before the bad frame", mask=MASK) + frame_bytes(0x1, b"bad", rsv=0b100, mask=MASK)
    )
    frames, code = raw.frames_until_close()
    assert frames == [(0x1, b"before the bad frame")]
    assert code == 1002
    assert raw.expect_eof()
    raw.close()
    (error,) = events.wait_for("error")
    assert error.code == 200 and "reserved bits" in str(error)
    assert events.wait_for("close")[1].code == 1002


def test_client_reply_goes_out_before_the_1002_it_fails_the_connection_with() -> None:
    """SPEC 4.7, client side: the reply to the message that came just before a bad frame is
    written before the client's 1002 close (Autobahn 3.2's NON-STRICT until now)."""

    def script(peer: RawPeer) -> list[tuple[int, bytes]]:
        peer.handshake()
        # One write, so the bad frame is read before the reply could be sent.
        peer.sock.sendall(frame_bytes(0x1, b"question") + frame_bytes(0x1, b"bad", rsv=0b010))
        frames = []
        while True:
            opcode, _, payload = peer.recv_frame()
            frames.append((opcode, payload[:2]))
            if opcode == 0x8:
                return frames

    with RawServer(script) as raw:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        ws.on("message", lambda err, data: ws.send(f"reply to {data}"))
        ws.connect(raw.url)
        assert rec.wait_for("close").value.code == 1002
        assert raw.result() == [(0x1, b"re"), (0x8, struct.pack("!H", 1002))]


# The server's close handshake waits at most 5 s (closeTimeout's default): an end that waited
# for the client to hang up, or for that timer, comes far later than this.
AT_ONCE = 2.0


def test_server_closes_tcp_first_once_it_has_answered_the_clients_close(server: WebSocketServer) -> None:
    """SPEC 11 (RFC 6455 7.1.1): a client sends its close frame, reads the server's reply and
    keeps its socket open: the server closes TCP within 2 s of the reply (not after its 5 s
    closeTimeout), and its close event comes while the client still holds its socket."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    raw.send_close(4000, "bye")
    assert raw.frames_until_close() == ([], 4000)
    replied = time.monotonic()
    assert raw.expect_eof()
    assert time.monotonic() - replied < AT_ONCE
    assert events.wait_for("close")[1] == CloseResult(4000, "bye")
    raw.close()


def test_server_closes_tcp_first_once_the_client_has_answered_its_close(server: WebSocketServer) -> None:
    """SPEC 11 (RFC 6455 7.1.1), the other way: server.close(conn), the client replies with
    its close frame and keeps its socket open: the server closes TCP within 2 s of the reply
    (not after its 5 s closeTimeout), close(conn) resolves and the close event comes."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    (client,) = events.wait_for("connect")
    closing = server.close(client, {"code": 4001, "reason": "done"})
    assert raw.frames_until_close() == ([], 4001)
    raw.send_close(4001)
    replied = time.monotonic()
    assert raw.expect_eof()
    assert time.monotonic() - replied < AT_ONCE
    assert closing.result(TIMEOUT) is True
    assert events.wait_for("close")[1] == CloseResult(4001, "done")
    raw.close()


def test_stop_writes_queued_sends_before_1001(server: WebSocketServer) -> None:
    """stop() while 32 sends of 1 MB are still queued (the client reads nothing until then):
    the client gets all 32, in order, then close 1001."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    (client,) = events.wait_for("connect")
    payloads = [bytes([i]) * 1_000_000 for i in range(32)]
    sends = [server.send(payload, client) for payload in payloads]
    assert not sends[-1].done(), "nothing is queued: the test proves nothing"
    stopping = server.stop()
    frames, code = raw.frames_until_close()
    assert [payload for _, payload in frames] == payloads
    assert code == 1001
    raw.send_close(1001)
    assert raw.expect_eof()
    raw.close()
    assert stopping.result(TIMEOUT) is True
    assert all(send.result(TIMEOUT) is True for send in sends)


def test_start_again_on_the_same_port_right_after_stop(server: WebSocketServer) -> None:
    """A stopped server (which had a client) starts again on the same port at once."""
    url = start(server)
    port = server.port
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    ws.send("x").result(TIMEOUT)  # type: ignore[union-attr]
    server.stop().result(TIMEOUT)
    assert rec.wait_for("close").value.code == 1001  # the client is CLOSED before it reconnects
    assert server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(TIMEOUT) is True
    assert server.port == port
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_a_start_right_after_stop_keeps_its_port_and_its_clients(server: WebSocketServer) -> None:
    """start() may follow stop() before stop()'s promise settles: when it does, the old stop
    neither clears the new port nor closes the new server's clients."""
    old = webSocket.createWebSocket()
    old.connect(start(server)).result(TIMEOUT)  # type: ignore[union-attr]
    stopping = server.stop()
    url = start(server)
    port = server.port
    new = webSocket.createWebSocket()
    rec = Recorder(new)
    new.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    assert stopping.result(TIMEOUT) is True
    assert server.port == port
    assert new.send("still open").result(TIMEOUT) is True  # type: ignore[union-attr]
    assert new.state is State.OPEN and "close" not in rec.events()
    new.close().result(TIMEOUT)  # type: ignore[union-attr]


def _key(n: int) -> str:
    import base64

    return base64.b64encode(b"k" * n).decode()


@pytest.mark.parametrize(
    ("request_bytes", "status", "why"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 426, "not a WebSocket upgrade"),
        (upgrade_request(1).replace(b"Version: 13", b"Version: 8"), 426, "Sec-WebSocket-Version 8"),
        (upgrade_request(1, first_line="POST / HTTP/1.1"), 400, "not GET"),
        (upgrade_request(1, first_line="GET / HTTP/1.0"), 400, "not HTTP/1.1"),
        (upgrade_request(1, key=_key(15)), 400, "not 16 bytes"),
        (upgrade_request(1).replace(b"Sec-WebSocket-Key", b"X-Key"), 400, "Sec-WebSocket-Key"),
        (upgrade_request(1).replace(b"Connection: Upgrade", b"Connection: close"), 400, "Upgrade"),
        (b"\x16\x03\x01 garbage\r\n\r\n", 400, "malformed request line"),
        (upgrade_request(1, extra="X-Big: " + "a" * 17_000 + "\r\n"), 431, "larger than 16384"),
    ],
)
def test_handshake_refusals(server: WebSocketServer, request_bytes: bytes, status: int, why: str) -> None:
    """Each bad upgrade request gets its status (426 names the version) and one error event
    naming the client's address; no connect event."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.sock.sendall(request_bytes)
    answer = raw.read_all().decode("latin-1")
    local_port = raw.sock.getsockname()[1]
    raw.close()
    assert answer.startswith(f"HTTP/1.1 {status} "), answer[:200]
    if status == 426:
        assert "\r\nSec-WebSocket-Version: 13\r\n" in answer
        assert "\r\nUpgrade: websocket\r\n" in answer
    seen = events.collect({"error": 1})
    assert [name for name, _ in seen] == ["error"]  # and no connect event before it
    ((error,),) = [args for _, args in seen]
    assert error.code == 200 and error.data == str(status)
    assert f"client 127.0.0.1:{local_port}" in str(error) and why in str(error)
    assert events.events.empty() and server.listAllConnections() == []


def test_client_over_the_limit_gets_503(server: WebSocketServer) -> None:
    """maxConnectionsForOneClient 1: a second connection gets HTTP 503 and one error event."""
    events = ServerEvents(server)
    start(server, maxConnectionsForOneClient=1)
    assert server.port is not None
    first = RawClient(server.port)
    first.handshake()
    events.wait_for("connect")
    second = RawClient(server.port)
    second.sock.sendall(upgrade_request(server.port))
    assert second.read_all().startswith(b"HTTP/1.1 503 ")
    (error,) = events.wait_for("error")
    assert "maxConnectionsForOneClient (1)" in str(error) and error.data == "503"
    first.close()
    second.close()


def test_client_that_never_finishes_its_request_is_dropped(
    server: WebSocketServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: a client that sends half a request is dropped when the handshake time
    (10 s, made 1 s here) runs out, with one error event that says so."""
    monkeypatch.setattr(server_module, "HANDSHAKE_TIMEOUT", 1.0)
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    began = time.monotonic()  # before the connection: the server's clock starts after this
    raw = RawClient(server.port)
    raw.sock.sendall(upgrade_request(server.port)[:40])
    assert raw.expect_eof()
    elapsed = time.monotonic() - began
    raw.close()
    assert 1.0 <= elapsed <= 2.5
    (error,) = events.wait_for("error")
    assert "did not complete the opening handshake within 1 s" in str(error)


def test_client_that_hangs_up_before_its_request_is_one_error(server: WebSocketServer) -> None:
    """A TCP connection closed before any request: one error event, nothing else."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    local_port = raw.sock.getsockname()[1]
    raw.close()
    (error,) = events.wait_for("error")
    assert f"client 127.0.0.1:{local_port}" in str(error)
    assert "closed the connection during the handshake" in str(error)


def test_message_over_64_mib_is_1009_before_its_payload_arrives(server: WebSocketServer) -> None:
    """A frame announcing 64 MiB + 1 bytes: the server answers 1009 at once (no payload sent)."""
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    raw.send_frame(0x2, b"", length=64 * 1024 * 1024 + 1)
    frames, code = raw.frames_until_close()
    assert (frames, code) == ([], 1009)
    raw.close()
    events.wait_for("error")
    assert events.wait_for("close")[1].code == 1009


def test_idle_client_is_pinged_and_dropped_without_a_pong(
    server: WebSocketServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's heartbeat (30 s + 30 s by default, 1 s + 1 s here): a ping to an idle
    client, then error and close(1006) when nothing comes back."""
    monkeypatch.setattr(server_module, "_SERVER_OPTIONS", ConnectOptions(ping_interval=1, pong_timeout=1))
    events = ServerEvents(server)
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    began = time.monotonic()  # before the handshake: the heartbeat starts after it
    raw.handshake()
    assert raw.recv_frame()[0] == 0x9
    assert raw.expect_eof()
    elapsed = time.monotonic() - began
    raw.close()
    assert 2.0 <= elapsed <= 3.5
    (error,) = events.wait_for("error")
    assert "pongTimeout" in str(error)
    assert events.wait_for("close")[1].code == 1006


def test_frames_from_the_client_must_be_masked(server: WebSocketServer) -> None:
    """An unmasked client frame fails the connection with 1002."""
    start(server)
    assert server.port is not None
    raw = RawClient(server.port)
    raw.handshake()
    raw.send_frame(0x1, b"plain", mask=None)
    assert raw.frames_until_close() == ([], 1002)
    raw.close()


def test_subprotocol_is_chosen_from_the_servers_list(server: WebSocketServer) -> None:
    """The 101 names the server's protocol the client offered; no extension is accepted."""
    start(server, protocol="chat")
    assert server.port is not None
    raw = RawClient(server.port)
    head = raw.handshake(
        "Sec-WebSocket-Protocol: other, CHAT\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"
    )
    assert "\r\nSec-WebSocket-Protocol: chat" in head
    assert "Extensions" not in head
    raw.send_frame(0x1, b"hi", mask=MASK)
    raw.send_close()
    assert raw.frames_until_close() == ([], 1000)
    raw.close()


def test_tls_server_facing_a_plain_client_and_a_distrusting_one(
    server: WebSocketServer, certs: Certs, tmp_path: Any
) -> None:
    """wss server: a plain ws client and a client that rejects the certificate each produce
    one error event naming the client and the TLS failure; a trusting client still works."""
    events = ServerEvents(server)
    cert, key = certs.server_files(tmp_path)
    start(server, serverCert={"certPath": cert, "keyPath": key})
    assert server.port is not None
    plain = webSocket.createWebSocket()
    assert code_of(plain.connect(f"ws://127.0.0.1:{server.port}", {"connectTimeout": 5})) == 200
    (error,) = events.wait_for("error")
    assert "TLS handshake failed" in str(error) and "client 127.0.0.1:" in str(error)
    distrusting = webSocket.createWebSocket()
    assert code_of(distrusting.connect(f"wss://localhost:{server.port}")) == 200
    (error,) = events.wait_for("error")
    assert "TLS handshake failed" in str(error)
    trusting = webSocket.createWebSocket()
    options = {"caPath": str(certs.ca_pem)}
    assert trusting.connect(f"wss://localhost:{server.port}", options).result(TIMEOUT)  # type: ignore[union-attr]
    events.wait_for("connect")
    trusting.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_encrypted_server_key_is_2302999(server: WebSocketServer, certs: Certs, tmp_path: Any) -> None:
    """serverCert with a password-protected key (no password can be given): start() rejects
    with 2302999 naming serverCert, and nothing listens."""
    cert, key = certs.server_files(tmp_path, key_password=b"secret")
    config = {"serverIP": "127.0.0.1", "serverPort": 0, "serverCert": {"certPath": cert, "keyPath": key}}
    with pytest.raises(BusinessError) as info:
        server.start(config).result(TIMEOUT)
    assert info.value.code == 2302999 and "serverCert" in str(info.value)
    assert server.port is None


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_threads_and_descriptors_end_with_their_clients(server: WebSocketServer) -> None:
    """No thread or fd outlives its connection: after 20 clients that hang up mid-request,
    20 that complete a close handshake, and stop(), no ohws-reader-*/ohws-writer-* thread is
    left and the process has the descriptors it had before start()."""
    fds_before = _open_fds()
    url = start(server)
    assert server.port is not None
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(upgrade_request(server.port)[:30])
        ws = websocket.create_connection(url, timeout=TIMEOUT)
        ws.close()
    server.stop().result(TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        alive = [
            t.name
            for t in threading.enumerate()
            if t.name.startswith("ohws-")
            and not t.name.startswith(("ohws-dispatch-", "ohws-idle-", "ohws-timer"))
        ]
        if not alive and _open_fds() <= fds_before:
            break
        time.sleep(0.05)
    assert not alive
    assert _open_fds() <= fds_before


def test_a_client_gone_while_its_reply_is_written_logs_nothing_above_info(
    server: WebSocketServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SPEC 11: a client that hangs up while a 4 MB reply to it is being written ends with its
    close event; the echo's unread, rejected send promise logs nothing above INFO."""
    import gc

    events = ServerEvents(server)
    server.on("messageReceive", lambda message: server.send(b"y" * 4_000_000, message.clientConnection))
    start(server)
    assert server.port is not None
    with caplog.at_level(logging.INFO, logger="ohws"):
        for _ in range(3):
            raw = RawClient(server.port)
            raw.handshake()
            raw.send_frame(0x1, b"x")
            assert raw.sock.recv(1024)  # the reply has started; most of it is still to be written
            raw.close()
            events.wait_for("close")
        gc.collect()
    assert not [r for r in caplog.records if r.levelno > logging.INFO]
