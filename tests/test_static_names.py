"""SPEC 5.1 and 1: the ArkTS static names (API 23+) on the client, and results read both ways."""

from __future__ import annotations

import dataclasses
import queue
import re
import threading
from typing import Any

import pytest

from ohws import (
    BusinessError,
    CloseResult,
    OpenResult,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketOpenInfo,
    webSocket,
)
from ohws._events import Listeners, value_only
from ohws.testing import StubServer

from .servers import TIMEOUT

#: SPEC 5.1, client table: static pair -> dynamic event.
CLIENT_PAIRS = {
    "Open": "open",
    "OpenInfo": "openInfo",
    "Message": "message",
    "WebSocketClose": "close",
    "WebSocketError": "error",
    "DataEnd": "dataEnd",
    "HeaderReceive": "headerReceive",
}


def test_websocket_has_exactly_the_spec_static_pairs() -> None:
    """Every onX/offX of SPEC 5.1's client table exists, and no other."""
    names = {name for name in dir(webSocket.WebSocket) if re.fullmatch(r"(on|off)[A-Z]\w*", name)}
    expected = {f"on{pair}" for pair in CLIENT_PAIRS} | {f"off{pair}" for pair in CLIENT_PAIRS}
    assert names == expected


@pytest.mark.parametrize(("pair", "event"), CLIENT_PAIRS.items())
def test_static_pair_is_the_dynamic_listener_list(pair: str, event: str) -> None:
    """onX(cb) registers on the same list as on(event); offX(cb) removes it."""
    ws = webSocket.createWebSocket()

    def cb(*args: Any) -> None: ...

    getattr(ws, f"on{pair}")(cb)
    assert len(ws._listeners.get(event)) == 1
    getattr(ws, f"off{pair}")(cb)
    assert ws._listeners.get(event) == ()
    getattr(ws, f"on{pair}")(cb)
    getattr(ws, f"off{pair}")()
    assert ws._listeners.get(event) == ()


@pytest.mark.parametrize("pair", CLIENT_PAIRS)
def test_static_on_rejects_a_non_callable(pair: str) -> None:
    """onX(non-callable) is 401, as for on()."""
    ws = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        getattr(ws, f"on{pair}")("not callable")
    assert info.value.code == 401 and "callable" in info.value.message


@pytest.mark.parametrize("pair", CLIENT_PAIRS)
def test_static_on_without_a_callback_is_401(pair: str) -> None:
    """onX() with no callback is 401 naming it, not a TypeError."""
    ws = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        getattr(ws, f"on{pair}")()
    assert info.value.code == 401 and "is missing" in info.value.message


def test_a_registration_is_callable_and_shape() -> None:
    """on('open', cb) and onOpen(cb) are two registrations; off in either dialect removes both."""
    calls: list[tuple[Any, ...]] = []

    def cb(*args: Any) -> None:
        calls.append(args)

    for remove in (lambda ws: ws.off("open", cb), lambda ws: ws.offOpen(cb)):
        ws = webSocket.createWebSocket()
        ws.on("open", cb)
        ws.onOpen(cb)
        ws.onOpen(cb)  # the same callable in the same shape: kept once
        registered = ws._listeners.get("open")
        assert len(registered) == 2
        calls.clear()
        result = OpenResult(101, "Switching Protocols")
        for callback in registered:
            callback(None, result)
        assert calls == [(None, result), (result,)]  # registration order, each in its shape
        remove(ws)
        assert ws._listeners.get("open") == ()


@pytest.mark.parametrize(
    "event, static",
    [
        ("message", "onMessage"),
        ("close", "onWebSocketClose"),
        ("error", "onWebSocketError"),
        ("dataEnd", "onDataEnd"),
        ("headerReceive", "onHeaderReceive"),
    ],
)
def test_same_shape_static_and_dynamic_are_one_registration(event: str, static: str) -> None:
    """A static name whose callback has the dynamic shape (onMessage: cb(err, data)) and
    on(event, cb) are one registration: the callback is kept, and would run, once."""
    ws = webSocket.createWebSocket()

    def cb(*args: Any) -> None: ...

    ws.on(event, cb)  # type: ignore[call-overload]
    getattr(ws, static)(cb)
    assert ws._listeners.get(event) == (cb,)


def test_a_static_name_of_another_shape_is_a_registration_of_its_own() -> None:
    """onOpen(cb) calls cb(result), on('open', cb) calls cb(err, result): two registrations."""
    registry = Listeners()

    def cb(*args: Any) -> None: ...

    registry.add("open", cb)
    registry.add("open", cb, value_only)
    first, second = registry.get("open")
    assert first is cb and "via value_only" in repr(second)


# ---------------------------------------------------------------- results read both ways


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        (OpenResult(101, "Switching Protocols"), {"status": 101, "message": "Switching Protocols"}),
        (WebSocketOpenInfo(101, "OK", "chat"), {"status": 101, "message": "OK", "protocol": "chat"}),
        (CloseResult(1000, "bye"), {"code": 1000, "reason": "bye"}),
        (WebSocketConnection("127.0.0.1", 5000), {"clientIP": "127.0.0.1", "clientPort": 5000}),
        (
            WebSocketMessage(WebSocketConnection("127.0.0.1", 5000), "hi"),
            {"clientConnection": WebSocketConnection("127.0.0.1", 5000), "data": "hi"},
        ),
    ],
)
def test_results_read_as_attributes_and_by_key(value: Any, fields: dict[str, Any]) -> None:
    """value.status and value['status'] agree; an unknown key is a KeyError; still frozen, hashable."""
    for key, expected in fields.items():
        assert getattr(value, key) == expected
        assert value[key] == expected
    with pytest.raises(KeyError):
        value["nope"]
    with pytest.raises(KeyError):
        value[0]
    assert hash(value) == hash(type(value)(*fields.values()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, next(iter(fields)), None)


# ---------------------------------------------------------------- on a live connection


def test_static_callbacks_get_the_static_shapes() -> None:
    """onOpen/onOpenInfo get cb(value); onMessage cb(err, data); onDataEnd cb(); onWebSocketClose
    cb(err, CloseResult); onHeaderReceive cb(headers) — in the SPEC 4.1 order."""
    got: queue.Queue[tuple[Any, ...]] = queue.Queue()
    with StubServer(messages=["hi"], close=(4000, "bye"), echo=False) as stub:
        ws = webSocket.createWebSocket()
        ws.onHeaderReceive(lambda headers: got.put(("headerReceive", headers["upgrade"])))
        ws.onOpen(lambda value: got.put(("open", value["status"], value.message)))
        ws.onOpenInfo(lambda value: got.put(("openInfo", value["status"], value["protocol"])))
        ws.onMessage(lambda err, data: got.put(("message", err, data)))
        ws.onDataEnd(lambda: got.put(("dataEnd",)))
        ws.onWebSocketClose(lambda err, value: got.put(("close", err, value["code"], value["reason"])))
        ws.connect(stub.url).result(TIMEOUT)
        seen = [got.get(timeout=TIMEOUT) for _ in range(6)]
    assert seen == [
        ("headerReceive", "websocket"),
        ("open", 101, "Switching Protocols"),
        ("openInfo", 101, None),
        ("message", None, "hi"),
        ("dataEnd",),
        ("close", None, 4000, "bye"),
    ]


def test_on_web_socket_error_gets_the_error() -> None:
    """onWebSocketError(cb) gets cb(err) for a lost connection; offWebSocketError removes it."""
    errors: queue.Queue[BusinessError] = queue.Queue()
    closed = threading.Event()
    with StubServer(drop=True) as stub:
        ws = webSocket.createWebSocket()
        ws.onWebSocketError(errors.put)
        ws.onWebSocketClose(lambda err, value: closed.set())
        ws.connect(stub.url).result(TIMEOUT)
        assert errors.get(timeout=TIMEOUT).code == 200
        assert closed.wait(TIMEOUT)
        ws.offWebSocketError(errors.put)
        assert ws._listeners.get("error") == ()
