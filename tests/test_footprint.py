"""What an open, idle connection keeps (SPEC 6 at scale, issue 14): a small read buffer, nothing
of the messages it has delivered, and no Condition of its own behind ``send()``'s promise.

tracemalloc counts the bytes held by objects allocated in ohws's own files, so these tests
look at what is kept, not at timings or at RSS (``scripts/bench scale10k`` measures those).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import tracemalloc
from collections.abc import Iterator
from typing import Any

import ohws
from ohws import WebSocket, webSocket
from ohws._promise import _SETTLED, Promise

from .servers import TIMEOUT, RawPeer, RawServer, echo, websockets_server

_OHWS = tracemalloc.Filter(True, f"{ohws.__path__[0]}/*")


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def held_by_ohws() -> list[tracemalloc.Trace]:
    """Live allocations whose innermost frame is in ohws's code."""
    return list(tracemalloc.take_snapshot().filter_traces([_OHWS]).traces)


def test_an_idle_connection_reads_into_a_small_buffer() -> None:
    """A reader blocked in recv holds the buffer it asked for: 256 bytes after small messages
    (Python's small-object allocator), not the 2 KiB malloc chunk it used to ask for."""
    got: queue.Queue[Any] = queue.Queue()
    sockets: list[WebSocket] = []
    with websockets_server(echo) as url, tracing():
        try:
            for _ in range(10):
                ws = webSocket.createWebSocket()
                ws.on("message", lambda err, data: got.put(data))
                sockets.append(ws)
                ws.connect(url).result(TIMEOUT)
                ws.send("hello").result(TIMEOUT)
                assert got.get(timeout=TIMEOUT) == "hello"
            # Each reader went back to recv once it had emitted the echo; the last one may
            # still be on its way there, so the check is on the other nine.
            largest = sorted(trace.size for trace in held_by_ohws())
            assert largest[-2] <= 512, largest[-5:]
        finally:
            for ws in sockets:
                ws.close().result(TIMEOUT)


def test_an_idle_reader_keeps_nothing_of_a_large_message() -> None:
    """Once a 4 MiB message is delivered, the reader lets go of it: not in the frame parser's
    buffer, not as the last event, not as its last read (at most a 16 KiB buffer stays)."""
    release: queue.Queue[None] = queue.Queue()

    def script(peer: RawPeer) -> None:
        peer.handshake()
        peer.send_frame(0x2, b"\x5a" * (4 << 20))
        release.get(timeout=TIMEOUT)
        peer.send_close(1000)
        peer.recv_until(0x8)

    sizes: queue.Queue[int] = queue.Queue()
    ws = webSocket.createWebSocket()
    ws.on("message", lambda err, data: sizes.put(len(data)))
    with RawServer(script) as server, tracing():
        try:
            ws.connect(server.url).result(TIMEOUT)
            assert sizes.get(timeout=TIMEOUT) == 4 << 20
            held = sum(trace.size for trace in held_by_ohws())
            deadline = TIMEOUT
            while held > 64 << 10 and deadline > 0:  # the reader may not be back in recv yet
                concurrent.futures.wait([], timeout=0.05)
                deadline -= 0.05
                held = sum(trace.size for trace in held_by_ohws())
            assert held <= 64 << 10, f"ohws still holds {held} bytes"
        finally:
            release.put(None)
            ws.close().result(TIMEOUT)


def test_the_promise_of_a_written_send_shares_one_condition() -> None:
    """``send()`` without a callback returns one resolved promise per connection once the frame
    is written; born settled, it shares one Condition instead of carrying ~1.3 KB of its own,
    and still behaves as a promise: result, then, wait."""
    with websockets_server(echo) as url:
        ws = webSocket.createWebSocket()
        try:
            ws.connect(url).result(TIMEOUT)
            promise = ws.send("hello")
            assert promise.result(TIMEOUT) is True
            assert promise._condition is _SETTLED
            assert ws.send("again") is promise
            followed: queue.Queue[Any] = queue.Queue()
            promise.then(followed.put)
            assert followed.get(timeout=TIMEOUT) is True
        finally:
            # wait() hangs a waiter on every future, the settled ones included (two here, which
            # share their lists), until all are done; then takes it off again.
            other = Promise.resolved(True)
            done, pending = concurrent.futures.wait([promise, other, ws.close()], timeout=TIMEOUT)
            assert promise in done and other in done and not pending
            assert promise._waiters == [] and other._waiters == []
