"""SPEC section 5: on/off and the listener registry."""

from __future__ import annotations

from typing import Any

import pytest

from ohws import BusinessError, webSocket
from ohws._events import EVENT_TYPES, Listeners


def test_event_types_are_the_spec_table() -> None:
    """The client knows exactly the seven SPEC events and the extension 'reconnect' (SPEC 14)."""
    assert set(EVENT_TYPES) == {
        "open",
        "openInfo",
        "message",
        "dataEnd",
        "close",
        "error",
        "headerReceive",
        "reconnect",
    }


def test_several_listeners_in_order_without_duplicates() -> None:
    """Several callbacks per type, in registration order; the same callable twice is kept once."""
    registry = Listeners()

    def a() -> None: ...
    def b() -> None: ...

    registry.add("message", a)
    registry.add("message", b)
    registry.add("message", a)
    assert registry.get("message") == (a, b)


def test_off_one_or_all() -> None:
    """off(type, cb) removes that callable; off(type) removes every callable of the type."""
    registry = Listeners()

    def a() -> None: ...
    def b() -> None: ...

    registry.add("close", a)
    registry.add("close", b)
    registry.add("open", a)
    registry.remove("close", a)
    assert registry.get("close") == (b,)
    registry.remove("close")
    assert registry.get("close") == ()
    assert registry.get("open") == (a,)
    registry.remove("message")  # nothing registered: fine


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("opne", print), "unknown event type 'opne'"),
        ((5, print), "event type must be a str"),
        (("open", "not callable"), "must be callable"),
        (("open", None), "must be callable"),
        (("headersReceive", print), "unknown event type"),
        (("open",), "the callback for 'open' is missing"),
        ((), "the event type is missing"),
    ],
)
def test_on_raises_401_synchronously(args: tuple[Any, ...], word: str) -> None:
    """on() raises BusinessError(401) at once for a bad type or callback."""
    ws = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        ws.on(*args)
    assert info.value.code == 401
    assert word in info.value.message


@pytest.mark.parametrize(
    ("args", "word"),
    [(("nope",), "unknown event type"), (("open", 3), "must be callable"), ((), "the event type is missing")],
)
def test_off_raises_401_synchronously(args: tuple[Any, ...], word: str) -> None:
    """off() raises BusinessError(401) at once for a bad type or callback."""
    ws = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        ws.off(*args)
    assert info.value.code == 401
    assert word in info.value.message
