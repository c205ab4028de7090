"""Where client openings run. While few connections are open, the reader opens its own
connection (SPEC 6). Beyond that, openings run on a bounded pool (issue 14): past its cap, an
opening waits its turn, and ``connectTimeout`` counts that wait. ohws's cap is 4 while openings
finish quickly, 16 or 64 while they wait on the network (OpeningPace); most tests here put a
pool of 1 or 2 threads in its place, and have every opening go through it, to see the
behaviour with a few connections."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import ohws._connection
from ohws import BusinessError, State, webSocket
from ohws._connection import ClientConnection
from ohws._threads import OpeningPace, Pool

from .servers import TIMEOUT, RawPeer, RawServer
from .timing import takes


@pytest.fixture
def openers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Installs a pool of ``n`` opening threads for client connections: ``openers(n)``."""

    def install(n: int) -> None:
        monkeypatch.setattr(ClientConnection, "_openers", Pool("test-open-", max_workers=n, max_idle=n))
        monkeypatch.setattr(ClientConnection, "_reader_opens_below", 0)

    yield install


@pytest.fixture
def opening_threads(monkeypatch: pytest.MonkeyPatch) -> queue.Queue[tuple[threading.Thread, str]]:
    """The thread that builds each client opening's request, and its name then, in order."""
    seen: queue.Queue[tuple[threading.Thread, str]] = queue.Queue()
    build = ohws._connection.build_request

    def recorded(*args: Any) -> bytes:
        thread = threading.current_thread()
        seen.put((thread, thread.name))
        return build(*args)

    monkeypatch.setattr(ohws._connection, "build_request", recorded)
    return seen


def reader_of(ws: Any) -> threading.Thread:
    """The thread reading ``ws``'s connection: the one thread under its reader's name once a
    message has come through it (a thread that only opened it is back in its pool by then)."""
    replies: queue.Queue[object] = queue.Queue()
    ws.on("message", lambda err, data: replies.put(data))
    ws.send("round trip")
    assert replies.get(timeout=TIMEOUT) == "round trip"
    name = f"ohws-reader-{ws._connection.number}"
    (reader,) = [thread for thread in threading.enumerate() if thread.name == name]
    return reader


def test_while_few_are_open_the_reader_opens_its_connection(
    opening_threads: queue.Queue[tuple[threading.Thread, str]], echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC 6: the reader thread does the connect, the handshake and every read (the number of
    connection threads other tests left busy does not matter here)."""
    monkeypatch.setattr(ClientConnection, "_reader_opens_below", 1_000_000)
    ws = webSocket.createWebSocket()
    assert ws.connect(echo_url).result(TIMEOUT) is True
    opener, name = opening_threads.get(timeout=TIMEOUT)
    assert opener is reader_of(ws) and name == f"ohws-reader-{ws._connection.number}"  # type: ignore[attr-defined]
    ws.close().result(TIMEOUT)


def test_beyond_the_few_an_opening_thread_opens_and_hands_over(
    opening_threads: queue.Queue[tuple[threading.Thread, str]], echo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With as many busy connection threads as ``_reader_opens_below`` (here 0), an
    ``ohws-open-<n>`` thread opens, and a reader that has done nothing else reads."""
    monkeypatch.setattr(ClientConnection, "_reader_opens_below", 0)
    ws = webSocket.createWebSocket()
    assert ws.connect(echo_url).result(TIMEOUT) is True
    opener, name = opening_threads.get(timeout=TIMEOUT)
    assert name == f"ohws-open-{ws._connection.number}"  # type: ignore[attr-defined]
    assert opener is not reader_of(ws)
    ws.close().result(TIMEOUT)


def test_by_default_a_lone_connection_is_opened_by_its_reader(
    opening_threads: queue.Queue[tuple[threading.Thread, str]], echo_url: str
) -> None:
    """The default lets the reader open while few connection threads are busy (up to 16): a
    test leaves none busy, so here it does."""
    ws = webSocket.createWebSocket()
    assert ws.connect(echo_url).result(TIMEOUT) is True
    opener, _ = opening_threads.get(timeout=TIMEOUT)
    assert opener is reader_of(ws)
    ws.close().result(TIMEOUT)


def answer_and_close(peer: RawPeer, request: dict[str, str]) -> bool:
    """Answer a request already read, then the client's close; True at the client's EOF."""
    peer.handshake(request=request)
    return peer.answer_close()


def test_openings_beyond_the_cap_wait_their_turn(openers: Any) -> None:
    openers(2)
    arrived: queue.Queue[str] = queue.Queue()
    release = threading.Event()

    def held(peer: RawPeer) -> bool:
        request = peer.read_request()
        arrived.put(request[":request-line"].split()[1])
        release.wait(TIMEOUT)
        return answer_and_close(peer, request)

    sockets = [webSocket.createWebSocket() for _ in range(3)]
    with RawServer(held, connections=3) as server:
        try:
            promises = [ws.connect(f"{server.url}/{i}") for i, ws in enumerate(sockets)]
            first = {arrived.get(timeout=TIMEOUT), arrived.get(timeout=TIMEOUT)}
            assert first == {"/0", "/1"}
            # Without the cap the third request arrives within milliseconds.
            with pytest.raises(queue.Empty):
                arrived.get(timeout=0.5)
            assert sockets[2].state is State.CONNECTING
            release.set()
            assert arrived.get(timeout=TIMEOUT) == "/2"
            assert all(promise.result(TIMEOUT) is True for promise in promises)
        finally:
            release.set()
            for ws in sockets:
                ws.close().result(TIMEOUT)


def silent(peer: RawPeer) -> bool:
    return peer.expect_eof()


def test_connect_timeout_counts_the_wait_for_an_opening_thread(
    openers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    openers(1)
    stuck, waiting = webSocket.createWebSocket(), webSocket.createWebSocket()
    with RawServer(silent, connections=2) as server:
        try:
            stuck.connect(server.url)  # holds the only opening thread for its 30 s
            with takes(1.0, "connectTimeout while waiting for an opening thread"):
                promise = waiting.connect(server.url, {"connectTimeout": 1})
                with pytest.raises(BusinessError) as info:
                    promise.result(TIMEOUT)
            assert info.value.code == 200
            assert "timed out after 1s (connectTimeout)" in info.value.message
            assert waiting.state is State.CLOSED
        finally:
            stuck.close().result(TIMEOUT)
        # The freed thread would take the abandoned opening up within milliseconds.
        time.sleep(0.5)
        assert server.accepted == 1, "the attempt that timed out while waiting never connects"
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]


def test_close_while_waiting_for_an_opening_thread_ends_at_once(openers: Any) -> None:
    openers(1)
    stuck, waiting = webSocket.createWebSocket(), webSocket.createWebSocket()
    with RawServer(silent, connections=2) as server:
        try:
            stuck.connect(server.url)
            connecting = waiting.connect(server.url)
            started = time.monotonic()
            assert waiting.close().result(TIMEOUT) is True
            assert time.monotonic() - started < 1.0  # not when the opening thread frees up
            with pytest.raises(BusinessError) as info:
                connecting.result(TIMEOUT)
            assert info.value.code == 2302999
            assert "close() was called before the connection opened" in info.value.message
        finally:
            stuck.close().result(TIMEOUT)
        time.sleep(0.5)
        assert server.accepted == 1


def test_the_pace_allows_more_openings_while_they_wait_on_the_network() -> None:
    """4 at once while openings wait on the network up to 10 ms on average, 16 up to 40 ms,
    64 beyond; and back down."""
    pool = Pool("test-pace-")
    pace = OpeningPace(pool)
    assert pool.max_workers == 4
    for wait, expected in ((0.0099, 4), (0.0101, 16), (0.0399, 16), (0.0401, 64), (0.0099, 4)):
        for _ in range(300):
            pace.record(wait)
        assert pool.max_workers == expected, wait


def test_the_pace_counts_network_waits_not_cpu_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an opening does between its waits on the network (here 60 ms spent building the
    request, as a slow CPU or a crowded GIL would) does not raise the cap: whole durations grow
    with the number of openings at once, and kept a raised cap up."""
    pace = OpeningPace(Pool("test-pace-"))
    monkeypatch.setattr(ohws._connection, "opening_pace", pace)
    build = ohws._connection.build_request

    def slow_build(*args: Any) -> bytes:
        time.sleep(0.06)
        return build(*args)

    monkeypatch.setattr(ohws._connection, "build_request", slow_build)
    with RawServer(lambda peer: answer_and_close(peer, peer.read_request()), connections=5) as server:
        for _ in range(5):
            ws = webSocket.createWebSocket()
            started = time.monotonic()
            assert ws.connect(server.url).result(TIMEOUT) is True
            assert time.monotonic() - started >= 0.06
            ws.close().result(TIMEOUT)
    assert 0 < pace.average < 0.01


def test_slow_openings_raise_the_number_that_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Openings that take 0.2 s (a distant server) lift the cap from 4 to 64: then 30 held
    openings all reach the server at once, not 4."""
    pool = Pool("test-open-", max_idle=2)
    monkeypatch.setattr(ClientConnection, "_openers", pool)
    monkeypatch.setattr(ClientConnection, "_reader_opens_below", 0)
    monkeypatch.setattr(ohws._connection, "opening_pace", OpeningPace(pool))
    arrived: queue.Queue[None] = queue.Queue()
    release = threading.Event()

    def slow(peer: RawPeer) -> bool:
        request = peer.read_request()
        time.sleep(0.2)  # the distant server's round trips
        return answer_and_close(peer, request)

    def held(peer: RawPeer) -> bool:
        request = peer.read_request()
        arrived.put(None)
        release.wait(TIMEOUT)
        return answer_and_close(peer, request)

    first = [webSocket.createWebSocket() for _ in range(16)]
    later = [webSocket.createWebSocket() for _ in range(30)]
    with RawServer(slow, connections=16) as distant, RawServer(held, connections=30) as server:
        try:
            for promise in [ws.connect(distant.url) for ws in first]:
                assert promise.result(TIMEOUT) is True
            promises = [ws.connect(server.url) for ws in later]
            for _ in range(30):  # with the cap still at 4 (or 16), the 5th (17th) never arrives
                arrived.get(timeout=TIMEOUT)
            release.set()
            assert all(promise.result(TIMEOUT) is True for promise in promises)
        finally:
            release.set()
            for ws in first + later:
                ws.close().result(TIMEOUT)
