"""Helpers for the server tests: an event recorder, a server fixture, start/echo shortcuts."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ohws import BusinessError, WebSocketServer, webSocket

from .raw_client import RawClient
from .servers import TIMEOUT


class ServerEvents:
    """Records a server's events as (name, args, thread)."""

    def __init__(self, server: WebSocketServer) -> None:
        self.events: queue.Queue[tuple[str, tuple[Any, ...], str]] = queue.Queue()
        for name in ("connect", "messageReceive", "close", "error"):
            server.on(name, self._listener(name))

    def _listener(self, name: str) -> Any:
        return lambda *args: self.events.put((name, args, threading.current_thread().name))

    def wait_for(self, name: str) -> tuple[Any, ...]:
        while True:
            event, args, _ = self.events.get(timeout=TIMEOUT)
            if event == name:
                return args

    def collect(self, counts: dict[str, int]) -> list[tuple[str, tuple[Any, ...]]]:
        """Every event until each name in ``counts`` was seen that many times."""
        seen: list[tuple[str, tuple[Any, ...]]] = []
        left = dict(counts)
        while any(n > 0 for n in left.values()):
            event, args, _ = self.events.get(timeout=TIMEOUT)
            seen.append((event, args))
            if event in left:
                left[event] -= 1
        return seen


@pytest.fixture
def server() -> Iterator[WebSocketServer]:
    srv = webSocket.createWebSocketServer()
    yield srv
    if srv.port is not None:
        srv.stop().result(TIMEOUT)


def start(srv: WebSocketServer, **config: Any) -> str:
    config.setdefault("serverIP", "127.0.0.1")
    config.setdefault("serverPort", 0)
    assert srv.start(config).result(TIMEOUT) is True
    assert srv.port is not None and srv.port > 0
    return f"ws://127.0.0.1:{srv.port}"


def code_of(promise: Any) -> int:
    with pytest.raises(BusinessError) as info:
        promise.result(TIMEOUT)
    return info.value.code


def echo_on(srv: WebSocketServer) -> None:
    srv.on("messageReceive", lambda message: srv.send(message.data, message.clientConnection))


def echoing_to_a_raw_client(srv: WebSocketServer) -> tuple[ServerEvents, RawClient]:
    """The server started as an echo, its events recorded, and a raw client past its handshake."""
    events = ServerEvents(srv)
    echo_on(srv)
    start(srv)
    assert srv.port is not None
    raw = RawClient(srv.port)
    raw.handshake()
    return events, raw
