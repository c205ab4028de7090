"""Client openings run on a bounded pool (issue 14): past its cap, an opening waits its turn,
and ``connectTimeout`` counts that wait. ohws's cap is 4 while openings finish quickly, 16 or 64
while they wait on the network (OpeningPace); most tests here put a pool of 1 or 2 threads in
its place to see the behaviour with a few connections."""

from __future__ import annotations

import queue
import socket
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

    yield install


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


def test_openings_stuck_past_their_connect_timeout_do_not_hold_up_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four openings stuck in name lookups fill a cap of 4; their connectTimeout (0.5 s) runs
    out while the lookups still wait, and the pace hears of it then: a fifth connection opens at
    once instead of waiting for a stuck thread until its own connectTimeout."""
    pool = Pool("test-open-", max_idle=2)
    monkeypatch.setattr(ClientConnection, "_openers", pool)
    monkeypatch.setattr(ohws._connection, "opening_pace", OpeningPace(pool))
    lookup = socket.getaddrinfo
    release = threading.Event()
    stuck_lookups: queue.Queue[None] = queue.Queue()

    def resolver(host: Any, *args: Any) -> Any:
        if host == "slow-lookup.test":
            stuck_lookups.put(None)
            release.wait(TIMEOUT)
            host = "127.0.0.1"
        return lookup(host, *args)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    stuck = [webSocket.createWebSocket() for _ in range(4)]
    other = webSocket.createWebSocket()
    # The stuck openings' late connections go to a bare listener, never to the server.
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        RawServer(lambda peer: answer_and_close(peer, peer.read_request())) as server,
    ):
        url = f"ws://slow-lookup.test:{listener.getsockname()[1]}/"
        try:
            promises = [ws.connect(url, {"proxy": "no-proxy", "connectTimeout": 0.5}) for ws in stuck]
            for _ in stuck:
                stuck_lookups.get(timeout=TIMEOUT)
            for promise in promises:
                with pytest.raises(BusinessError) as info:
                    promise.result(TIMEOUT)
                assert "timed out after 0.5s (connectTimeout)" in info.value.message
            assert pool.max_workers == 64
            assert other.connect(server.url, {"connectTimeout": 1}).result(TIMEOUT) is True
        finally:
            release.set()
            other.close().result(TIMEOUT)
