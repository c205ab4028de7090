"""SPEC sections 2, 4, 5, 6 against a real peer: the websockets threaded server on loopback."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection

import ohws._transport
from ohws import BusinessError, CloseResult, OpenResult, State, WebSocket, WebSocketOpenInfo, webSocket

from .breakage import raising_on_call
from .recorder import Recorder
from .servers import TIMEOUT, RawPeer, RawServer, read_line, websockets_server
from .timing import SLACK, takes


def connect(ws: WebSocket, url: str, options: Any = None) -> None:
    promise = ws.connect(url) if options is None else ws.connect(url, options)
    assert promise is not None
    assert promise.result(TIMEOUT) is True


# ---------------------------------------------------------------- connect (SPEC 4.1)


def test_event_order_on_success(ws: WebSocket, echo_url: str) -> None:
    """headerReceive -> open -> openInfo -> connect callback, all on one dispatch lane."""
    order: queue.Queue[tuple[str, Any, str]] = queue.Queue()

    def note(name: str) -> Any:
        return lambda *args: order.put((name, args, threading.current_thread().name))

    for event in ("headerReceive", "open", "openInfo"):
        ws.on(event, note(event))
    assert ws.connect(echo_url, note("connect-callback")) is None
    got = [order.get(timeout=TIMEOUT) for _ in range(4)]
    assert [name for name, _, _ in got] == ["headerReceive", "open", "openInfo", "connect-callback"]
    headers, open_args, info_args, cb_args = (args for _, args, _ in got)
    assert headers[0]["upgrade"].lower() == "websocket"
    assert open_args == (None, OpenResult(101, "Switching Protocols"))
    assert info_args == (None, WebSocketOpenInfo(101, "Switching Protocols", None))
    assert cb_args == (None, True)
    assert all(thread.startswith("ohws-dispatch-") for _, _, thread in got)
    assert ws.state is State.OPEN


def test_promise_settles_after_open_and_state_moves(ws: WebSocket, echo_url: str) -> None:
    """The connect promise resolves True only once the connection is OPEN."""
    assert ws.state is State.CLOSED
    promise = ws.connect(echo_url)
    assert promise is not None
    assert ws.state in (State.CONNECTING, State.OPEN)
    assert promise.result(TIMEOUT) is True
    assert ws.state is State.OPEN


def test_second_connect_is_2302003(ws: WebSocket, echo_url: str) -> None:
    """connect while CONNECTING or OPEN is rejected with 2302003."""
    first = ws.connect(echo_url)
    second = ws.connect(echo_url)
    assert first is not None and second is not None
    with pytest.raises(BusinessError) as info:
        second.result(TIMEOUT)
    assert info.value.code == 2302003
    assert first.result(TIMEOUT) is True
    third = ws.connect(echo_url)
    assert third is not None
    with pytest.raises(BusinessError) as info:
        third.result(TIMEOUT)
    assert info.value.code == 2302003


def test_closed_object_can_connect_again(ws: WebSocket, echo_url: str) -> None:
    """After CLOSED the same object connects again and works."""
    rec = Recorder(ws)
    for round_ in range(3):
        connect(ws, echo_url)
        assert ws.send(f"round {round_}").result(TIMEOUT) is True  # type: ignore[union-attr]
        assert rec.wait_for("message").value == f"round {round_}"
        assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
        assert ws.state is State.CLOSED


def test_reconnect_from_inside_the_close_callback(ws: WebSocket, echo_url: str) -> None:
    """The object is CLOSED when the close event runs, so a callback can reconnect."""
    reconnected: queue.Queue[bool] = queue.Queue()

    def on_close(err: Any, value: CloseResult) -> None:
        ws.off("close")
        ws.connect(echo_url, lambda err, ok: reconnected.put(ok))

    ws.on("close", on_close)
    connect(ws, echo_url)
    ws.close()
    assert reconnected.get(timeout=TIMEOUT) is True
    assert ws.state is State.OPEN


def test_request_carries_headers_path_query_and_protocol() -> None:
    """Custom headers, the path with its query and the offered subprotocols reach the server."""
    seen: queue.Queue[Any] = queue.Queue()

    def handler(connection: ServerConnection) -> None:
        seen.put((connection.request.path, connection.request.headers, connection.subprotocol))
        connection.close()

    with websockets_server(handler, subprotocols=["superchat"]) as url:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        connect(ws, url + "/room?id=7", {"header": {"X-Token": "abc"}, "protocol": "chat, superchat"})
        path, headers, subprotocol = seen.get(timeout=TIMEOUT)
        assert rec.wait_for("openInfo").value.protocol == "superchat"
        rec.wait_for("close")
    assert path == "/room?id=7"
    assert headers["X-Token"] == "abc"
    assert headers["Sec-WebSocket-Protocol"] == "chat, superchat"
    assert subprotocol == "superchat"


def test_refused_connection_is_error_200_and_rejection(ws: WebSocket) -> None:
    """A refused TCP connect gives error(200, data='0') then the connect callback's error (the
    callback style, whose delivery is ordered with events on the lane); no close event."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    order: queue.Queue[tuple[str, Any]] = queue.Queue()
    ws.on("error", lambda err: order.put(("error", err)))
    ws.on("close", lambda err, value: order.put(("close", value)))
    assert ws.connect(f"ws://127.0.0.1:{port}", lambda err, ok: order.put(("callback", (err, ok)))) is None
    name, error = order.get(timeout=TIMEOUT)
    assert name == "error"
    assert (error.code, error.data) == (200, "0")
    name, (err, ok) = order.get(timeout=TIMEOUT)
    assert name == "callback" and ok is None
    assert err.code == 200 and "refused" in err.message
    assert ws.state is State.CLOSED
    time.sleep(0.2)  # proves that no close event follows
    assert order.empty()


def test_a_direct_connection_opens_either_way(ws: WebSocket, echo_url: str, direct_path: None) -> None:
    rec = Recorder(ws)
    assert ws.connect(echo_url, {"proxy": "no-proxy"}).result(TIMEOUT) is True  # type: ignore[union-attr]
    ws.send("round trip")
    assert rec.wait_for("message").value == "round trip"
    assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]


def test_a_host_name_that_does_not_resolve_is_error_200_naming_it(
    ws: WebSocket, direct_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name lookup that fails is error 200 whose message names the host; the attempt ends
    CLOSED. The resolver answers "no such name" here for ".invalid" names (which never
    resolve, RFC 6761) at once: a real lookup's time depends on the machine's DNS."""
    import socket

    lookup = socket.getaddrinfo

    def resolver(host: Any, *args: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return lookup(host, *args)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    promise = ws.connect("ws://ohws-test.invalid:8080/", {"proxy": "no-proxy"})
    assert promise is not None
    with pytest.raises(BusinessError) as info:
        promise.result(TIMEOUT)
    assert info.value.code == 200
    assert "cannot resolve ohws-test.invalid:8080" in info.value.message
    assert ws.state is State.CLOSED


def test_an_ip_literal_is_connected_to_without_a_name_lookup(
    echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A direct connection to an IP literal does not ask the resolver (as asyncio does not);
    a name still goes through it."""
    import socket

    looked_up: list[str] = []
    lookup = socket.getaddrinfo

    def resolver(host: Any, *args: Any) -> Any:
        looked_up.append(str(host))
        return lookup(host, *args)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert "//127.0.0.1:" in echo_url
    for url in (echo_url, echo_url.replace("127.0.0.1", "localhost")):
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        assert ws.connect(url, {"proxy": "no-proxy"}).result(TIMEOUT) is True  # type: ignore[union-attr]
        ws.send("there")
        assert rec.wait_for("message").value == "there"
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert looked_up == ["localhost"]


# ---------------------------------------------------------------- send (SPEC 4.2)


def test_text_binary_and_empty_messages_round_trip(ws: WebSocket, recorder: Recorder, echo_url: str) -> None:
    """str is text, bytes/bytearray/memoryview are binary; empty messages are allowed."""
    connect(ws, echo_url)
    payloads: list[Any] = ["héllo ✓", b"\x00\x01", bytearray(b"ba"), memoryview(b"mv"), "", b""]
    for payload in payloads:
        assert ws.send(payload).result(TIMEOUT) is True  # type: ignore[union-attr]
    got = [recorder.wait_for("message").value for _ in payloads]
    assert got == ["héllo ✓", b"\x00\x01", b"ba", b"mv", "", b""]
    assert [type(v) for v in got] == [str, bytes, bytes, bytes, str, bytes]


def test_data_end_follows_every_message(ws: WebSocket, recorder: Recorder, echo_url: str) -> None:
    """Each message is followed immediately by dataEnd on the same lane."""
    connect(ws, echo_url)
    for i in range(20):
        ws.send(str(i) if i % 2 else bytes([i]))
    for _ in range(20):
        recorder.wait_for("dataEnd")
    events = [e for e in recorder.events() if e in ("message", "dataEnd")]
    assert events == ["message", "dataEnd"] * 20


@pytest.mark.parametrize("bad", [1, 2.5, None, ["x"], {"a": 1}, object()])
def test_send_wrong_type_is_401(ws: WebSocket, bad: Any) -> None:
    """send of anything but str or bytes-like is 401, also via the callback style."""
    promise = ws.send(bad)
    assert promise is not None
    with pytest.raises(BusinessError) as info:
        promise.result(TIMEOUT)
    assert info.value.code == 401
    got: queue.Queue[Any] = queue.Queue()
    assert ws.send(bad, lambda err, value: got.put((err, value, threading.current_thread().name))) is None
    err, value, thread = got.get(timeout=TIMEOUT)
    assert err.code == 401 and value is None
    assert thread.startswith("ohws-dispatch-")


def test_send_lone_surrogate_is_401(ws: WebSocket) -> None:
    """A str that cannot be UTF-8 encoded is refused with 401, not sent."""
    with pytest.raises(BusinessError) as info:
        ws.send("\ud800").result(TIMEOUT)  # type: ignore[union-attr]
    assert info.value.code == 401


def test_send_when_not_open_is_2302999(ws: WebSocket, echo_url: str) -> None:
    """send before any connect, and after close, is rejected with 2302999 'not open'."""
    for when in ("never connected", "closed"):
        if when == "closed":
            connect(ws, echo_url)
            ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        with pytest.raises(BusinessError) as info:
            ws.send("x").result(TIMEOUT)  # type: ignore[union-attr]
        assert info.value.code == 2302999
        assert "not open" in info.value.message


def _close_held_until(release: threading.Event) -> Any:
    """A raw server script that answers the client's close frame only once ``release`` is set."""

    def script(peer: RawPeer) -> None:
        peer.handshake()
        opcode, _, payload = peer.recv_until(0x8)
        release.wait(TIMEOUT)
        peer.send_frame(opcode, payload[:2])
        peer.expect_eof()

    return script


def test_send_while_closing_is_2302999(ws: WebSocket) -> None:
    """A send after close() started (CLOSING) is rejected with 2302999."""
    release = threading.Event()
    with RawServer(_close_held_until(release)) as server:
        connect(ws, server.url)
        closing = ws.close()
        assert ws.state is State.CLOSING
        with pytest.raises(BusinessError) as info:
            ws.send("late").result(TIMEOUT)  # type: ignore[union-attr]
        assert info.value.code == 2302999
        release.set()
        assert closing.result(TIMEOUT) is True  # type: ignore[union-attr]


def test_sends_queued_while_connecting_flush_right_after_open(ws: WebSocket) -> None:
    """Sends made while CONNECTING (the server holds its 101 back until they are made) are
    written in call order right after open, before anything else is asked of the client."""
    sent = threading.Event()
    received: queue.Queue[bytes] = queue.Queue()

    def held_open(peer: RawPeer) -> bool:
        request = peer.read_request()
        sent.wait(TIMEOUT)
        peer.handshake(request=request)
        for _ in range(5):
            received.put(peer.recv_frame()[2])
        return peer.answer_close()

    with RawServer(held_open) as server:
        promise = ws.connect(server.url)
        try:
            assert ws.state is State.CONNECTING
            sends = [ws.send(f"early {i}") for i in range(5)]
            assert ws.state is State.CONNECTING
        finally:
            sent.set()
        assert promise is not None and promise.result(TIMEOUT) is True
        assert all(s is not None and s.result(TIMEOUT) is True for s in sends)
        assert [received.get(timeout=TIMEOUT) for _ in range(5)] == [f"early {i}".encode() for i in range(5)]
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert server.result() is True


def test_three_thousand_messages_keep_their_order(ws: WebSocket, echo_url: str) -> None:
    """3,000 messages come back in order, each exactly once."""
    got: queue.Queue[Any] = queue.Queue()
    ws.on("message", lambda err, value: got.put(value))
    connect(ws, echo_url)
    count = 3000
    for i in range(count):
        ws.send(f"m{i}" if i % 3 else i.to_bytes(4, "big"))
    received = [got.get(timeout=TIMEOUT) for _ in range(count)]
    assert received == [f"m{i}" if i % 3 else i.to_bytes(4, "big") for i in range(count)]


def test_eight_threads_sending_never_interleave(ws: WebSocket) -> None:
    """Concurrent sends from 8 threads arrive whole, each thread's in its own order."""
    received: queue.Queue[Any] = queue.Queue()

    def collect(connection: ServerConnection) -> None:
        for message in connection:
            received.put(message)

    per_thread = 200
    with websockets_server(collect) as url:
        connect(ws, url)
        start = threading.Barrier(8)

        def sender(n: int) -> None:
            start.wait(TIMEOUT)
            for i in range(per_thread):
                ws.send(f"{n}:{i}:" + "x" * (i * 37 % 3000))

        threads = [threading.Thread(target=sender, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        messages = [received.get(timeout=TIMEOUT) for _ in range(8 * per_thread)]
    by_thread: dict[str, list[int]] = {}
    for message in messages:
        n, i, pad = message.split(":")
        assert pad == "x" * (int(i) * 37 % 3000)
        by_thread.setdefault(n, []).append(int(i))
    assert by_thread == {str(n): list(range(per_thread)) for n in range(8)}


def test_send_does_not_block_and_buffered_amount_drains(ws: WebSocket) -> None:
    """send returns at once even while the server reads nothing (more than the socket buffers
    hold); bufferedAmount counts the queued bytes, and drains to 0 once the server reads."""
    chunk, count = b"x" * 1_000_000, 32
    frame_size = len(chunk) + 14  # 2-byte header, 8-byte length, 4-byte mask
    reading = threading.Event()

    def late_reader(peer: RawPeer) -> int:
        peer.handshake()
        reading.wait()  # no timeout: a blocked send would end when the wait did
        remaining = count * frame_size
        while remaining:
            data = peer.sock.recv(min(remaining, 1 << 20))
            assert data, "the client hung up before its messages arrived"
            remaining -= len(data)
        code = peer.recv_until(0x8)[2][:2]
        peer.send_frame(0x8, code)
        peer.expect_eof()
        return int.from_bytes(code, "big")

    with RawServer(late_reader) as server:
        promises: list[Any] = []
        sender = threading.Thread(target=lambda: promises.extend(ws.send(chunk) for _ in range(count)))
        try:
            connect(ws, server.url)
            sender.start()
            sender.join(2.0)  # 32 sends of 1 MB that only queue take far less
            assert not sender.is_alive(), "send blocked on a server that does not read"
            queued = ws.bufferedAmount
            assert 0 < queued <= count * frame_size
        finally:
            reading.set()
        sender.join(TIMEOUT)
        for promise in promises:
            assert promise is None or promise.result(TIMEOUT) is True
        assert ws.bufferedAmount == 0
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        assert server.result() == 1000


# ---------------------------------------------------------------- close (SPEC 4.3, 4.4)


def test_close_sends_code_and_reason_and_reports_them(ws: WebSocket, recorder: Recorder) -> None:
    """close(options) sends its code and reason; the close event carries what was sent."""
    seen: queue.Queue[Any] = queue.Queue()

    def handler(connection: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            for _ in connection:
                pass
        seen.put((connection.close_code, connection.close_reason))

    with websockets_server(handler) as url:
        connect(ws, url)
        assert ws.close({"code": 4000, "reason": "done ✓"}).result(TIMEOUT) is True  # type: ignore[union-attr]
        assert seen.get(timeout=TIMEOUT) == (4000, "done ✓")
    assert recorder.wait_for("close").value == CloseResult(4000, "done ✓")
    assert ws.state is State.CLOSED
    assert "error" not in recorder.events()


def test_close_callback_styles(ws: WebSocket, echo_url: str) -> None:
    """close(callback) and close(options, callback) call back (None, True)."""
    got: queue.Queue[Any] = queue.Queue()
    connect(ws, echo_url)
    assert ws.close(lambda err, ok: got.put((err, ok))) is None
    assert got.get(timeout=TIMEOUT) == (None, True)
    connect(ws, echo_url)
    assert ws.close({"code": 1001}, lambda err, ok: got.put((err, ok))) is None
    assert got.get(timeout=TIMEOUT) == (None, True)


def test_close_when_closed_or_never_connected_is_2302999(ws: WebSocket, echo_url: str) -> None:
    """close on a never-connected or closed object is rejected with 2302999."""
    with pytest.raises(BusinessError) as info:
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert info.value.code == 2302999
    connect(ws, echo_url)
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    with pytest.raises(BusinessError) as info:
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert info.value.code == 2302999


def test_close_while_closing_resolves_with_the_first(ws: WebSocket) -> None:
    """A second close() while CLOSING resolves True when the first completes; one close event."""
    rec = Recorder(ws)
    release = threading.Event()
    with RawServer(_close_held_until(release)) as server:
        connect(ws, server.url)
        first = ws.close({"code": 1000, "reason": "first"})
        second = ws.close({"code": 4001, "reason": "second"})
        assert first is not None and second is not None
        assert not first.done() and not second.done()  # the server holds its close reply
        release.set()
        assert first.result(TIMEOUT) is True and second.result(TIMEOUT) is True
    assert rec.wait_for("close").value == CloseResult(1000, "first")
    time.sleep(0.2)  # proves there is no second close event
    assert rec.events().count("close") == 1


def test_sends_before_close_are_written_first(ws: WebSocket) -> None:
    """The close frame goes after the sends still queued when close() is called: the server
    reads nothing until then, so 32 MB wait in the queue (bufferedAmount > 0)."""
    sizes = [1_000_000 + i for i in range(32)]  # each message known by its length
    closing = threading.Event()

    def late_reader(peer: RawPeer) -> list[tuple[int, int]]:
        peer.handshake()
        closing.wait(TIMEOUT)
        frames = []
        while not frames or frames[-1][0] != 0x8:
            frames.append(peer.recv_frame_size())
        peer.send_close(1000)
        peer.expect_eof()
        return frames

    with RawServer(late_reader) as server:
        connect(ws, server.url)
        for size in sizes:
            ws.send(b"s" * size)
        assert ws.bufferedAmount > 0, "nothing is queued: the test proves nothing"
        promise = ws.close()
        closing.set()
        assert promise is not None and promise.result(TIMEOUT) is True
        assert server.result() == [(0x2, size) for size in sizes] + [(0x8, 2)]


def test_server_close_is_echoed_and_reported(ws: WebSocket, recorder: Recorder) -> None:
    """A server close with code C and reason R is echoed; close(None, CloseResult(C, R))."""
    echoed: queue.Queue[Any] = queue.Queue()

    def closer(connection: ServerConnection) -> None:
        connection.close(4321, "server says bye")
        received = connection.protocol.close_rcvd
        echoed.put(None if received is None else received.code)

    with websockets_server(closer) as url:
        connect(ws, url)
        assert recorder.wait_for("close").value == CloseResult(4321, "server says bye")
        assert echoed.get(timeout=TIMEOUT) == 4321
    assert ws.state is State.CLOSED
    assert "error" not in recorder.events()


def _assert_aborted_at_once(ws: WebSocket, recorder: Recorder, connecting: Any) -> None:
    """close() now: the attempt ends within SLACK (not at the 5 s connectTimeout): connect
    rejects 2302999, close resolves True, no error or close event."""
    started = time.monotonic()
    closing = ws.close()
    assert closing is not None and closing.result(TIMEOUT) is True
    with pytest.raises(BusinessError) as info:
        connecting.result(TIMEOUT)
    assert time.monotonic() - started < SLACK
    assert info.value.code == 2302999 and "before the connection opened" in info.value.message
    assert ws.state is State.CLOSED
    time.sleep(0.2)  # proves that neither error nor close is emitted
    assert recorder.events() == []


def test_close_during_a_tcp_connect_that_stalls_ends_the_attempt_at_once(
    ws: WebSocket, recorder: Recorder
) -> None:
    """A server whose backlog is full drops the SYN: the connect hangs, and nothing of ours can
    interrupt it; close() still ends the attempt at once (the thread ends at connectTimeout)."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        port = full.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):  # fills the backlog
            connecting = ws.connect(f"ws://127.0.0.1:{port}", {"connectTimeout": 5})
            time.sleep(0.3)  # proves only that it is still connecting: a SYN is retried after 1 s
            assert ws.state is State.CONNECTING
            _assert_aborted_at_once(ws, recorder, connecting)


def test_close_during_a_tls_handshake_that_stalls_ends_the_attempt_at_once(
    ws: WebSocket, recorder: Recorder, direct_path: None
) -> None:
    """A server that accepts TCP and never answers the ClientHello: close() ends the attempt at
    once; through the socket opener, it also closes the TCP connection at once."""
    with socket.create_server(("127.0.0.1", 0)) as mute:
        port = mute.getsockname()[1]
        connecting = ws.connect(f"wss://127.0.0.1:{port}", {"connectTimeout": 5})
        peer, _ = mute.accept()
        with peer:
            peer.settimeout(TIMEOUT)
            assert peer.recv(1) == b"\x16"  # the ClientHello has come: the handshake waits
            _assert_aborted_at_once(ws, recorder, connecting)
            if ohws._transport._open_socket is not None:
                peer.settimeout(SLACK)
                with contextlib.suppress(ConnectionResetError):
                    while peer.recv(65536):
                        pass  # the rest of the ClientHello, then EOF


def test_connect_timeout_ends_an_attempt_stuck_in_a_name_lookup_on_time(
    ws: WebSocket, recorder: Recorder, direct_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of ours can interrupt a name lookup, yet connectTimeout bounds the whole opening
    (SPEC 7): the attempt fails on time with error 200 naming connectTimeout, and when the
    lookup returns at last, the opening thread closes the connection it then makes and reports
    nothing more."""
    lookup = socket.getaddrinfo
    release, returned = threading.Event(), threading.Event()

    def resolver(host: Any, *args: Any) -> Any:
        if host != "slow-lookup.test":
            return lookup(host, *args)
        release.wait(TIMEOUT)
        try:
            return lookup("127.0.0.1", *args)
        finally:
            returned.set()

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    # A bare listener, not a server with threads of its own: the process's descriptors then
    # change only by the late connection.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        url, options = f"ws://slow-lookup.test:{port}/", {"proxy": "no-proxy", "connectTimeout": 1}
        descriptors = len(os.listdir("/proc/self/fd"))
        try:
            with takes(1.0, "connect with connectTimeout 1 during a name lookup that does not return"):
                connecting = ws.connect(url, options)
                assert connecting is not None
                with pytest.raises(BusinessError) as info:
                    connecting.result(TIMEOUT)
            assert info.value.code == 200 and "timed out after 1s (connectTimeout)" in info.value.message
            assert ws.state is State.CLOSED
            assert recorder.wait_for("error").value.code == 200
        finally:
            release.set()
        assert returned.wait(TIMEOUT)
        listener.settimeout(TIMEOUT)
        peer, _ = listener.accept()
        with peer:
            peer.settimeout(TIMEOUT)
            assert peer.recv(1024) == b"", "the late connection is shut down before a request"
        deadline = time.monotonic() + TIMEOUT
        while len(os.listdir("/proc/self/fd")) > descriptors and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(os.listdir("/proc/self/fd")) <= descriptors, "the late connection must be closed"
    time.sleep(0.2)  # proves that the late step reports nothing more
    assert recorder.events() == ["error"]


def test_close_while_connecting_aborts(ws: WebSocket, recorder: Recorder) -> None:
    """close() while CONNECTING: connect rejects 2302999, close resolves True, no events."""

    def never_answer(peer: Any) -> bool:
        return peer.expect_eof()  # the abort may even come before the request is written

    with RawServer(never_answer) as server:
        connecting = ws.connect(server.url)
        assert ws.state is State.CONNECTING
        queued = ws.send("queued")
        closing = ws.close()
        assert connecting is not None and closing is not None and queued is not None
        with pytest.raises(BusinessError) as info:
            connecting.result(TIMEOUT)
        assert info.value.code == 2302999
        assert "before the connection opened" in info.value.message
        assert closing.result(TIMEOUT) is True
        with pytest.raises(BusinessError) as info:
            queued.result(TIMEOUT)
        assert info.value.code == 2302999
        # Aborted before its opening thread started, the attempt makes no TCP connection; one
        # it made must be closed (a connection still in the backlog here: leaving the block
        # waits for its script, which ends at EOF).
        if server.accepted:
            assert server.result() is True, "the aborted attempt must close its TCP connection"
    assert ws.state is State.CLOSED
    time.sleep(0.2)  # proves that neither error nor close is emitted
    assert recorder.events() == []


# ---------------------------------------------------------------- events & dispatch (SPEC 5, 6)


def test_no_listener_means_dropped_not_buffered(ws: WebSocket) -> None:
    """Messages that arrive with no listener are dropped; a later listener gets only later ones.
    The listener comes once the client has answered a ping sent after "early" (so its reader
    has read "early")."""
    early_read = threading.Event()

    def push(connection: ServerConnection) -> None:
        connection.send("early")
        if connection.ping().wait(TIMEOUT):
            early_read.set()
        connection.recv()
        connection.send("late")
        connection.recv()

    got: queue.Queue[Any] = queue.Queue()
    with websockets_server(push) as url:
        connect(ws, url)
        assert early_read.wait(TIMEOUT), "no pong after 'early'"
        ws.on("message", lambda err, value: got.put(value))
        ws.send("go")
        assert got.get(timeout=TIMEOUT) == "late"
        ws.send("done")
    assert got.empty()


def test_off_inside_a_callback_takes_effect_for_later_events(ws: WebSocket) -> None:
    """off() from inside a message callback stops delivery of messages already emitted but not
    yet delivered: the first callback returns only once the client has answered a ping sent
    after messages 2 and 3 (read, and emitted while the listener was still registered)."""
    got: list[Any] = []
    running = threading.Event()
    emitted = threading.Event()

    def pusher(connection: ServerConnection) -> None:
        connection.send("1")
        running.wait(TIMEOUT)
        connection.send("2")
        connection.send("3")
        if connection.ping().wait(TIMEOUT):
            emitted.set()
        connection.recv()

    def first_only(err: Any, value: Any) -> None:
        got.append(value)
        running.set()
        emitted.wait(TIMEOUT)
        ws.off("message", first_only)

    ws.on("message", first_only)
    ends = Recorder(ws, ("dataEnd",))
    with websockets_server(pusher) as url:
        connect(ws, url)
        for _ in range(3):
            ends.wait_for("dataEnd")
        assert emitted.is_set(), "no pong after messages 2 and 3"
        assert got == ["1"]
        ws.send("bye")


def test_user_exceptions_are_logged_and_harmless(
    ws: WebSocket, echo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising callback is logged; the connection and later callbacks carry on."""
    got: queue.Queue[Any] = queue.Queue()

    def bad(err: Any, value: Any) -> None:
        raise RuntimeError(f"bad callback {value}")

    ws.on("message", bad)
    ws.on("message", lambda err, value: got.put(value))
    with caplog.at_level(logging.ERROR, logger="ohws"):
        connect(ws, echo_url)
        ws.send("a")
        ws.send("b")
        assert [got.get(timeout=TIMEOUT), got.get(timeout=TIMEOUT)] == ["a", "b"]
    assert "bad callback a" in caplog.text and "bad callback b" in caplog.text
    assert ws.state is State.OPEN


def test_blocking_on_promises_inside_callbacks_does_not_deadlock(ws: WebSocket) -> None:
    """A callback may block on send() and close() promises of its own connection: the open
    callback sends 16 MiB (more than the socket takes at once, so the writer thread writes it
    and settles the promise later) and waits for it; a message callback waits for close()."""
    big = b"b" * (16 * 1024 * 1024)
    results: queue.Queue[Any] = queue.Queue()

    def count(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(f"got {len(message)}")

    def on_open(err: Any, value: Any) -> None:
        sending = ws.send(big)
        assert sending is not None
        results.put(("settled at once", sending.done()))
        results.put(("send", sending.result(TIMEOUT)))

    def on_message(err: Any, value: Any) -> None:
        results.put(("message", value))
        results.put(("close", ws.close().result(TIMEOUT)))  # type: ignore[union-attr]

    ws.on("open", on_open)
    ws.on("message", on_message)
    with websockets_server(count, max_size=None) as url:
        connect(ws, url)
        assert results.get(timeout=TIMEOUT) == ("settled at once", False)
        assert results.get(timeout=TIMEOUT) == ("send", True)
        assert results.get(timeout=TIMEOUT) == ("message", f"got {len(big)}")
        assert results.get(timeout=TIMEOUT) == ("close", True)


def test_slow_callback_does_not_stop_the_reader(ws: WebSocket) -> None:
    """While a message callback blocks, the reader keeps answering pings: each pong comes
    within 2 s, and the callback is held until all three have come."""
    pongs: queue.Queue[bool] = queue.Queue()
    held = threading.Event()
    release = threading.Event()

    def pinger(connection: ServerConnection) -> None:
        connection.send("block")
        held.wait(TIMEOUT)
        for _ in range(3):
            pongs.put(connection.ping().wait(2.0))  # False if no pong within 2 s
        connection.recv()

    def hold(err: Any, value: Any) -> None:
        held.set()
        release.wait(TIMEOUT)

    with websockets_server(pinger) as url:
        ws.on("message", hold)
        connect(ws, url)
        try:
            assert held.wait(TIMEOUT), "the message callback never ran"
            assert [pongs.get(timeout=TIMEOUT) for _ in range(3)] == [True, True, True]
        finally:
            release.set()
        ws.send("bye")


def test_library_threads_are_named_daemons(ws: WebSocket) -> None:
    """ohws-open-<n> opens, then ohws-reader-<n> reads; ohws-writer-<n> once a write cannot go out
    at once; all daemons."""
    from .servers import echo

    with websockets_server(echo, max_size=None) as url:
        connect(ws, url)
        deadline = time.monotonic() + TIMEOUT  # the reader thread takes over just after open
        while not any(t.name.startswith("ohws-reader-") for t in threading.enumerate()):
            assert time.monotonic() < deadline, "no ohws-reader-<n> thread"
            time.sleep(0.01)
        big = ws.send(b"w" * (16 * 1024 * 1024))  # more than a socket buffer takes at once
        assert big is not None and big.result(TIMEOUT) is True  # written by the writer thread, which stays
        assert any(t.name.startswith("ohws-writer-") for t in threading.enumerate())
        assert all(t.daemon for t in threading.enumerate() if t.name.startswith("ohws-"))
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_large_message_round_trip(ws: WebSocket, recorder: Recorder) -> None:
    """A 4 MiB binary message goes out and comes back intact."""
    import os

    payload = os.urandom(4 * 1024 * 1024)

    def echo_big(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    with websockets_server(echo_big, max_size=None) as url:
        connect(ws, url)
        ws.send(payload)
        assert recorder.wait_for("message").value == payload


def test_custom_dispatcher_runs_every_callback_of_the_connection(echo_url: str) -> None:
    """createWebSocket(dispatcher=...) routes events, callbacks and promise handlers through it."""
    from .test_dispatch import ManualDispatcher

    dispatcher = ManualDispatcher()
    ws = webSocket.createWebSocket(dispatcher=dispatcher)
    seen: list[tuple[str, str]] = []
    ws.on("open", lambda err, value: seen.append(("open", threading.current_thread().name)))
    ws.on("message", lambda err, value: seen.append((value, threading.current_thread().name)))
    promise = ws.connect(echo_url)
    assert promise is not None and promise.result(TIMEOUT) is True
    promise.then(lambda ok: seen.append(("then", threading.current_thread().name)))
    ws.send("via dispatcher").result(TIMEOUT)  # type: ignore[union-attr]
    deadline = time.monotonic() + TIMEOUT
    while len(seen) < 3 and time.monotonic() < deadline:
        dispatcher.run_pending()
        time.sleep(0.01)
    me = threading.current_thread().name
    assert seen == [("open", me), ("then", me), ("via dispatcher", me)]
    closing = ws.close()
    assert closing is not None and closing.result(TIMEOUT) is True
    dispatcher.run_pending()


def test_interpreter_exit_is_not_blocked_by_an_open_connection(echo_url: str) -> None:
    """A script that exits with a connection still open ends promptly (daemon threads)."""
    import subprocess
    import sys

    script = (
        "from ohws import webSocket\n"
        "ws = webSocket.createWebSocket()\n"
        f"assert ws.connect({echo_url!r}).result(10)\n"
        "ws.send('left open')\n"
        "print('exiting')\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert read_line(process.stdout).strip() == "exiting"
        # Only the interpreter's shutdown is left; a join on a connection thread would block
        # forever, a close at exit would wait for the handshake (closeTimeout, 5 s).
        try:
            process.wait(3.0)
        except subprocess.TimeoutExpired:
            pytest.fail("the interpreter exit is blocked by the open connection")
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    finally:
        process.kill()
        process.communicate(timeout=TIMEOUT)


def test_ipv6_literal_url(ws: WebSocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """ws://[::1]:port/ connects over IPv6 loopback, without a name lookup."""
    import socket

    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    from websockets.sync.server import serve

    from .servers import echo

    listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    server = serve(echo, sock=listener, compression=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.socket.getsockname()[1]
        rec = Recorder(ws)
        lookup, lookups = raising_on_call(socket.getaddrinfo, 1, "a name lookup")
        monkeypatch.setattr(socket, "getaddrinfo", lookup)
        connect(ws, f"ws://[::1]:{port}/six")
        assert lookups == []
        ws.send("over v6")
        assert rec.wait_for("message").value == "over v6"
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
