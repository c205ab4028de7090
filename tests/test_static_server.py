"""SPEC 5.1 and 11: the ArkTS static names (API 23+) on the server, and its examples in that dialect.

These pass once ``WebSocketServer`` declares its pairs with ``ohws._events.StaticOn`` /
``StaticOff`` (same callback shapes as the dynamic events: ``onConnect(cb)`` calls
``cb(WebSocketConnection)``, ``onMessageReceive(cb)`` ``cb(WebSocketMessage)``,
``onWebSocketServerClose(cb)`` ``cb(connection, CloseResult)``, ``onWebSocketServerError(cb)``
``cb(err)``).
"""

from __future__ import annotations

import queue
import re
from typing import Any

import pytest

import ohws
from ohws import BusinessError, WebSocketServer, webSocket

from .server_support import server
from .servers import TIMEOUT

__all__ = ["server"]  # the fixture, imported

#: SPEC 5.1, server table: static pair -> dynamic event.
SERVER_PAIRS = {
    "Connect": "connect",
    "MessageReceive": "messageReceive",
    "WebSocketServerClose": "close",
    "WebSocketServerError": "error",
}


def start(srv: WebSocketServer) -> str:
    assert srv.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(TIMEOUT) is True
    return f"ws://127.0.0.1:{srv.port}"


def test_server_has_exactly_the_spec_static_pairs() -> None:
    """Every onX/offX of SPEC 5.1's server table exists, and no other."""
    names = {name for name in dir(WebSocketServer) if re.fullmatch(r"(on|off)[A-Z]\w*", name)}
    assert names == {f"on{p}" for p in SERVER_PAIRS} | {f"off{p}" for p in SERVER_PAIRS}


@pytest.mark.parametrize(("pair", "event"), SERVER_PAIRS.items())
def test_static_pair_is_the_dynamic_listener_list(pair: str, event: str) -> None:
    """onX(cb) is on(event, cb) (one registration: same shape); offX(cb) and off(event, cb) remove it."""
    srv = webSocket.createWebSocketServer()

    def cb(*args: Any) -> None: ...

    getattr(srv, f"on{pair}")(cb)
    srv.on(event, cb)
    assert srv._listeners.get(event) == (cb,)
    getattr(srv, f"off{pair}")(cb)
    assert srv._listeners.get(event) == ()
    getattr(srv, f"on{pair}")(cb)
    srv.off(event, cb)
    assert srv._listeners.get(event) == ()
    getattr(srv, f"on{pair}")(cb)
    getattr(srv, f"off{pair}")()
    assert srv._listeners.get(event) == ()


@pytest.mark.parametrize("pair", SERVER_PAIRS)
def test_static_on_rejects_a_non_callable(pair: str) -> None:
    """onX(non-callable) is 401, as for on()."""
    srv = webSocket.createWebSocketServer()
    with pytest.raises(BusinessError) as info:
        getattr(srv, f"on{pair}")(42)
    assert info.value.code == 401 and "callable" in info.value.message


def test_server_example_static(server: WebSocketServer) -> None:
    """The README's echo server in the static dialect: connect, messageReceive, close, with
    results read both ways (value.code and value['code'])."""
    log: queue.Queue[tuple[Any, ...]] = queue.Queue()
    server.onConnect(lambda conn: log.put(("connect", conn["clientIP"], conn.clientPort)))
    server.onMessageReceive(lambda msg: server.send(msg["data"], msg.clientConnection))
    server.onWebSocketServerClose(lambda conn, result: log.put(("close", result.code, result["reason"])))
    server.onWebSocketServerError(lambda err: log.put(("error", err)))
    url = start(server)
    with ohws.connect(url, timeout=TIMEOUT) as ws:
        ws.send("echo me")
        assert ws.receive(TIMEOUT) == "echo me"
        ws.close({"code": 4000, "reason": "done"}).result(TIMEOUT)
    kind, ip, port = log.get(timeout=TIMEOUT)
    assert (kind, ip) == ("connect", "127.0.0.1") and isinstance(port, int)
    assert log.get(timeout=TIMEOUT) == ("close", 4000, "done")


def test_server_error_static(server: WebSocketServer) -> None:
    """onWebSocketServerError(cb) gets cb(err) for a client refused over a limit (SPEC 11: 503)."""
    errors: queue.Queue[BusinessError] = queue.Queue()
    server.onWebSocketServerError(errors.put)
    config: ohws.WebSocketServerConfig = {
        "serverIP": "127.0.0.1",
        "serverPort": 0,
        "maxConnectionsForOneClient": 1,
    }
    assert server.start(config).result(TIMEOUT) is True
    url = f"ws://127.0.0.1:{server.port}"
    with ohws.connect(url, timeout=TIMEOUT), pytest.raises(BusinessError) as refused:
        ohws.connect(url, timeout=TIMEOUT)
    assert (refused.value.code, refused.value.data) == (200, "503")
    error = errors.get(timeout=TIMEOUT)
    assert isinstance(error, BusinessError) and "maxConnectionsForOneClient" in error.message
    server.offWebSocketServerError(errors.put)
    assert server._listeners.get("error") == ()


def test_off_connect_stops_the_callback(server: WebSocketServer) -> None:
    """offConnect(cb) before a client arrives: cb never runs; the remaining listener does."""
    seen: queue.Queue[str] = queue.Queue()

    def cb(conn: Any) -> None:
        seen.put("removed one ran")

    server.onConnect(cb)
    server.onConnect(lambda conn: seen.put("kept"))
    server.offConnect(cb)
    url = start(server)
    with ohws.connect(url, timeout=TIMEOUT):
        assert seen.get(timeout=TIMEOUT) == "kept"
    assert seen.empty()
