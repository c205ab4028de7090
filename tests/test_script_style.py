"""SPEC 13: the script style, ``ohws.connect`` / ``receive`` / iteration / ``with``, on loopback."""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

import ohws
from ohws import BusinessError, State, webSocket

from .servers import TIMEOUT, RawPeer, RawServer, die_with_parent, read_line, websockets_server
from .timing import takes


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------- connect


def test_connect_returns_an_open_websocket(ohws_stub_server_factory: Any) -> None:
    """ohws.connect returns the same WebSocket class, OPEN; send/on/close work on it."""
    stub = ohws_stub_server_factory()
    ws = ohws.connect(stub.url, timeout=TIMEOUT)
    try:
        assert isinstance(ws, webSocket.WebSocket)
        assert ws.state is State.OPEN
        ws.send("hello").result(TIMEOUT)
        assert ws.receive(TIMEOUT) == "hello"
    finally:
        ws.close().result(TIMEOUT)


def test_connect_raises_what_the_promise_rejects_with() -> None:
    """A refused connection raises BusinessError(200); a bad URL 2302001; a bad option 401."""
    with pytest.raises(BusinessError) as refused:
        ohws.connect(f"ws://127.0.0.1:{closed_port()}", timeout=TIMEOUT)
    assert refused.value.code == 200
    with pytest.raises(BusinessError) as bad_url:
        ohws.connect("http://127.0.0.1:1")
    assert bad_url.value.code == 2302001
    with pytest.raises(BusinessError) as bad_option:
        ohws.connect("ws://127.0.0.1:1", {"maxQueue": -1})
    assert bad_option.value.code == 401
    assert "options.maxQueue" in bad_option.value.message


def test_connect_timeout_aborts_and_raises_timeout_error() -> None:
    """Past ``timeout`` the attempt is aborted and TimeoutError raised (a server that never answers)."""
    with socket.create_server(("127.0.0.1", 0)) as mute:  # the kernel accepts; nobody answers
        url = f"ws://127.0.0.1:{mute.getsockname()[1]}"
        # aborted at 0.3 s, not left to connectTimeout (30 s)
        with (
            takes(0.3, "ohws.connect(timeout=0.3) to a mute server"),
            pytest.raises(TimeoutError, match="not open within"),
        ):
            ohws.connect(url, timeout=0.3)


@pytest.mark.parametrize("timeout", [-1, "5", True, float("nan")])
def test_bad_timeouts_are_401(timeout: Any) -> None:
    """ohws.connect(timeout=...) and receive(timeout) reject a timeout that is not seconds >= 0."""
    with pytest.raises(BusinessError) as info:
        ohws.connect("ws://127.0.0.1:1", timeout=timeout)
    assert info.value.code == 401 and "timeout" in info.value.message


@pytest.mark.parametrize("timeout", [float("inf"), 1e12])
def test_a_timeout_longer_than_a_thread_can_wait_is_no_limit(
    ohws_stub_server_factory: Any, timeout: float
) -> None:
    """timeout=inf (or longer than threading.TIMEOUT_MAX) waits as None does, where the
    thread's wait would raise OverflowError (after the attempt had started, leaving it open)."""
    stub = ohws_stub_server_factory(echo=False)
    with ohws.connect(stub.url, timeout=timeout) as ws:
        stub.send("worth the wait")
        assert ws.receive(timeout) == "worth the wait"


def test_an_interrupted_connect_leaves_no_connection_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt while ohws.connect waits for the opening ends the attempt: the server
    sees the connection go, instead of it opening unseen behind the interrupted script."""
    from ohws._promise import Promise

    accepted, ended = threading.Event(), threading.Event()

    def answer_late(peer: RawPeer) -> None:
        peer.read_request()
        accepted.set()
        if peer.expect_eof():
            ended.set()

    def interrupted(self: Any, timeout: float | None = None) -> Any:
        accepted.wait(TIMEOUT)
        raise KeyboardInterrupt

    with RawServer(answer_late) as raw:
        monkeypatch.setattr(Promise, "result", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ohws.connect(raw.url, timeout=TIMEOUT)
        monkeypatch.undo()
        assert ended.wait(TIMEOUT)


def test_receive_timeout_is_validated(ohws_stub_server_factory: Any) -> None:
    """receive(timeout="x") is 401 naming the argument."""
    with (
        ohws.connect(ohws_stub_server_factory().url, timeout=TIMEOUT) as ws,
        pytest.raises(BusinessError) as info,
    ):
        ws.receive("x")  # type: ignore[arg-type]
    assert info.value.code == 401 and "receive(timeout)" in info.value.message


# ---------------------------------------------------------------- receiving


def test_greeting_sent_right_after_the_101_is_received(ohws_stub_server_factory: Any) -> None:
    """A message the server sends in the same breath as its 101 is queued, not lost."""
    stub = ohws_stub_server_factory(messages=["welcome", b"\x00\x01"], echo=False)
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        assert ws.receive(TIMEOUT) == "welcome"
        assert ws.receive(TIMEOUT) == b"\x00\x01"


def test_order_over_ten_thousand_messages() -> None:
    """10,000 messages pushed at once come out of the queue in order, none missing."""
    count = 10_000

    def push(connection: ServerConnection) -> None:
        for n in range(count):
            connection.send(str(n))
        connection.close(1000, "done")

    with websockets_server(push) as url, ohws.connect(url, timeout=TIMEOUT) as ws:
        assert list(ws) == [str(n) for n in range(count)]


def test_timeout_error_leaves_the_later_message_queued(ohws_stub_server_factory: Any) -> None:
    """receive(timeout) raises TimeoutError; the message that comes later is the next one returned."""
    stub = ohws_stub_server_factory(echo=False)
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        with takes(0.2, "receive(timeout=0.2)"), pytest.raises(TimeoutError):
            ws.receive(timeout=0.2)
        stub.send("late")
        assert ws.receive(TIMEOUT) == "late"
        stub.send("next")
        assert ws.receive(TIMEOUT) == "next"


def test_iteration_ends_on_a_clean_close(ohws_stub_server_factory: Any) -> None:
    """``for message in ws`` yields every message then stops when the server closes cleanly."""
    stub = ohws_stub_server_factory(messages=["a", "b"], close=(1000, "done"), echo=False)
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        assert list(ws) == ["a", "b"]
        assert ws.state is State.CLOSED
        with pytest.raises(BusinessError) as info:
            ws.receive(TIMEOUT)
    assert info.value.code == 2302999
    assert "code 1000" in info.value.message and "'done'" in info.value.message


def test_iteration_raises_the_error_of_an_abnormal_close(ohws_stub_server_factory: Any) -> None:
    """A dropped connection (1006): iteration yields what came, then raises the error event's error."""
    stub = ohws_stub_server_factory(messages=["a"], drop=True, echo=False)
    seen = []
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        with pytest.raises(BusinessError) as info:
            for message in ws:
                seen.append(message)
        with pytest.raises(BusinessError) as after:
            ws.receive(TIMEOUT)
    assert seen == ["a"]
    assert info.value.code == 200
    assert after.value.code == 2302999 and "code 1006" in after.value.message


def test_queue_serves_a_new_connect_of_the_same_websocket(ohws_stub_server_factory: Any) -> None:
    """After a clean close, connect() again on the same WebSocket: receive() works anew."""
    stub = ohws_stub_server_factory(messages=["first"], close=(1000, ""), echo=False)
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        assert list(ws) == ["first"]
        ws.connect(stub.url).result(TIMEOUT)
        assert list(ws) == ["first"]  # the first connection's end does not end the second


def test_message_listeners_still_run_beside_the_queue(ohws_stub_server_factory: Any) -> None:
    """'message' listeners get every message too; the queue keeps its own copy."""
    stub = ohws_stub_server_factory(messages=["x", "y"], echo=False)
    heard: queue.Queue[Any] = queue.Queue()
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        ws.on("message", lambda err, data: heard.put(data))
        assert [ws.receive(TIMEOUT) for _ in range(2)] == ["x", "y"]
        stub.send("z")  # after the scripted ones are out, so the order is known
        assert ws.receive(TIMEOUT) == "z"
        # The listener came after connect: it may or may not have heard x and y, but z surely.
        heard_list = [heard.get(timeout=TIMEOUT)]
        while heard_list[-1] != "z":
            heard_list.append(heard.get(timeout=TIMEOUT))
        assert heard_list in (["x", "y", "z"], ["y", "z"], ["z"])


def test_async_for_inside_asyncio_run(ohws_stub_server_factory: Any) -> None:
    """``async for`` in asyncio.run yields the messages and does not block the loop while waiting."""
    stub = ohws_stub_server_factory(echo=False)

    async def main() -> list[str | bytes]:
        ws = await asyncio.to_thread(ohws.connect, stub.url, timeout=TIMEOUT)
        messages = aiter(ws)
        first = asyncio.ensure_future(anext(messages))
        await asyncio.sleep(0)  # let it start waiting: the loop must stay free meanwhile
        assert not first.done()
        stub.send("one")
        got = [await asyncio.wait_for(first, TIMEOUT)]
        stub.send("two")
        stub.close_all(1000, "bye")
        async for message in messages:
            got.append(message)
        assert ws.state is State.CLOSED
        return got

    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(asyncio.run(main())), daemon=True)
    runner.start()
    runner.join(TIMEOUT)
    assert not runner.is_alive(), "the event loop was blocked by async iteration"
    assert outcome == [["one", "two"]]


def test_async_iteration_raises_the_error_of_an_abnormal_close(ohws_stub_server_factory: Any) -> None:
    """``async for`` ends with the error of a dropped connection, as ``for`` does."""
    stub = ohws_stub_server_factory(messages=["a"], drop=True, echo=False)

    async def main() -> list[str | bytes]:
        ws = await asyncio.to_thread(ohws.connect, stub.url, timeout=TIMEOUT)
        return [message async for message in ws]

    with pytest.raises(BusinessError) as info:
        asyncio.run(asyncio.wait_for(main(), TIMEOUT))
    assert info.value.code == 200


# ---------------------------------------------------------------- with / close


def test_with_closes_with_1000_and_waits_until_closed(ohws_stub_server_factory: Any) -> None:
    """Leaving the ``with`` block closes with 1000 and returns once CLOSED."""
    stub = ohws_stub_server_factory()
    with ohws.connect(stub.url, timeout=TIMEOUT) as ws:
        ws.send("hi")
    assert ws.state is State.CLOSED
    assert stub.wait_for_close(TIMEOUT) == 1000


def test_with_works_on_any_websocket(ohws_stub_server_factory: Any) -> None:
    """A createWebSocket() WebSocket closes on leaving ``with`` too."""
    stub = ohws_stub_server_factory()
    with webSocket.createWebSocket() as ws:
        ws.connect(stub.url).result(TIMEOUT)
    assert ws.state is State.CLOSED
    assert stub.wait_for_close(TIMEOUT) == 1000
    with webSocket.createWebSocket() as never_connected:
        pass
    assert never_connected.state is State.CLOSED


def test_with_gives_up_after_close_timeout_on_a_mute_peer() -> None:
    """A peer that never answers the close: leaving ``with`` still ends CLOSED (abort at closeTimeout)."""
    got_close = threading.Event()

    def mute(peer: RawPeer) -> None:
        peer.handshake()
        peer.recv_until(0x8)  # our close frame; never answered
        got_close.set()
        peer.expect_eof()

    with RawServer(mute) as server:
        ws = ohws.connect(server.url, {"closeTimeout": 0.5}, timeout=TIMEOUT)
        with takes(0.5, "leaving `with` on a mute peer"), ws:
            pass
        assert ws.state is State.CLOSED
        assert got_close.wait(TIMEOUT)


class HeldDispatcher:
    """A dispatcher that never runs anything (a GUI loop that is busy in receive())."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def submit(self, fn: Any, /, *args: Any) -> None:
        self.jobs.append((fn, args))


def test_queue_does_not_depend_on_the_lane(ohws_stub_server_factory: Any) -> None:
    """With a dispatcher that runs nothing, receive() still gets every message: the reader fills it."""
    stub = ohws_stub_server_factory(messages=["a", "b"], echo=False)
    held = HeldDispatcher()
    ws = ohws.connect(stub.url, timeout=TIMEOUT, dispatcher=held)
    ws.on("message", lambda err, data: None)  # its jobs pile up in the held dispatcher
    assert ws.receive(TIMEOUT) == "a"
    assert ws.receive(TIMEOUT) == "b"  # the scripted messages first: then a live one
    stub.send("c")
    assert ws.receive(TIMEOUT) == "c"
    assert held.jobs  # the lane had work ('c' for the listener); nobody ran it
    closing = ws.close()
    assert closing is not None
    closing.result(TIMEOUT)  # settled by library threads, not by the held lane
    assert ws.state is State.CLOSED


def test_close_discards_the_queue_and_unblocks_the_reader(ohws_stub_server_factory: Any) -> None:
    """close() on a full queue empties it and lets the reader see the close reply at once."""
    stub = ohws_stub_server_factory(echo=False)
    ws = ohws.connect(stub.url, {"maxQueue": 2, "closeTimeout": 60}, timeout=TIMEOUT)
    heard: queue.Queue[Any] = queue.Queue()
    ws.on("message", lambda err, data: heard.put(data))
    for n in range(20):
        stub.send(f"m{n}")
    # Listeners hear a message just before the reader queues it: once m2 is heard, the
    # reader holds m2 and waits for room (m0 and m1 fill the queue).
    while heard.get(timeout=TIMEOUT) != "m2":
        pass
    ws.close().result(TIMEOUT)  # a reader left waiting would need closeTimeout (60 s)
    assert ws.state is State.CLOSED
    with pytest.raises(BusinessError) as info:
        ws.receive(0)
    assert info.value.code == 2302999 and "code 1000" in info.value.message


def test_receive_on_a_callback_websocket_names_ohws_connect() -> None:
    """createWebSocket() objects have no queue: receive/iteration are 2302999 naming ohws.connect."""
    ws = webSocket.createWebSocket()
    for attempt in (lambda: ws.receive(0), lambda: iter(ws), lambda: aiter(ws)):
        with pytest.raises(BusinessError) as info:
            attempt()
        assert info.value.code == 2302999 and "ohws.connect" in info.value.message


# ---------------------------------------------------------------- flow control


def test_full_queue_suspends_the_heartbeat(ohws_stub_server_factory: Any) -> None:
    """While the reader waits on a full queue no ping goes out, so a silent peer is not 'lost'."""
    stub = ohws_stub_server_factory(messages=["a", "b", "c"], echo=False, silent=True)
    options: ohws.WebSocketRequestOptions = {"maxQueue": 1, "pingInterval": 1, "pongTimeout": 1}
    with ohws.connect(stub.url, options, timeout=TIMEOUT) as ws:
        errors: queue.Queue[BusinessError] = queue.Queue()
        ws.on("error", errors.put)
        time.sleep(3)  # proves only that nothing happened: a ping and a pong timeout would fit
        assert ws.state is State.OPEN and errors.empty()
        assert stub.pings == []
        assert [ws.receive(TIMEOUT) for _ in range(3)] == ["a", "b", "c"]
        stub.send("still there")  # the connection was not given up meanwhile
        assert ws.receive(TIMEOUT) == "still there"


_PUSHER = """
import sys
from websockets.sync.server import serve

COUNT, SIZE = int(sys.argv[1]), int(sys.argv[2])

def push(connection):
    connection.recv()  # "go": the client has measured its idle RSS
    for n in range(COUNT):
        connection.send(n.to_bytes(4, "big") * (SIZE // 4))
    connection.close(1000, "all sent")

with serve(push, "127.0.0.1", 0, compression=None, max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_backpressure_bounds_memory_and_loses_nothing() -> None:
    """A server pushing 100 MiB into a slow reader: RSS stays within 2 x maxQueue x size of idle."""
    count, size, max_queue = 100, 1024 * 1024, 16
    bound = 2 * max_queue * size
    server = subprocess.Popen(
        [sys.executable, "-c", _PUSHER, str(count), str(size)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert server.stdout is not None
        port = int(read_line(server.stdout))
        with ohws.connect(f"ws://127.0.0.1:{port}", {"maxQueue": max_queue}, timeout=TIMEOUT) as ws:
            idle = rss_bytes()
            ws.send("go")
            time.sleep(1.0)  # proves only that nothing happened: no reading past a full queue
            peak = rss_bytes()
            received = 0
            for message in ws:
                assert isinstance(message, bytes) and len(message) == size
                assert message == received.to_bytes(4, "big") * (size // 4)
                received += 1
                peak = max(peak, rss_bytes())
        assert received == count
        assert peak - idle <= bound, f"RSS grew {(peak - idle) / 2**20:.1f} MiB over idle"
    finally:
        server.kill()
        server.wait(TIMEOUT)
        assert server.stdout is not None
        server.stdout.close()
