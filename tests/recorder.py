"""Records every event of a WebSocket, with the thread it ran on, for assertions."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from ohws import BusinessError, WebSocket, webSocket

from .servers import TIMEOUT

EVENTS = ("headerReceive", "open", "openInfo", "message", "dataEnd", "close", "error")


@dataclass(frozen=True)
class Record:
    event: str
    args: tuple[Any, ...]
    thread: str

    @property
    def value(self) -> Any:
        """The payload: the second argument of AsyncCallbacks, the first otherwise."""
        if self.event in ("open", "openInfo", "message", "close"):
            return self.args[1]
        return self.args[0] if self.args else None


class Recorder:
    """Listens to every event of ``ws``; ``next()`` and ``wait_for()`` are bounded waits."""

    def __init__(self, ws: WebSocket, events: tuple[str, ...] = EVENTS) -> None:
        self.records: queue.Queue[Record] = queue.Queue()
        self.seen: list[Record] = []
        self._lock = threading.Lock()
        for event in events:
            ws.on(event, self._listener(event))

    def _listener(self, event: str) -> Any:
        def listener(*args: Any) -> None:
            record = Record(event, args, threading.current_thread().name)
            with self._lock:
                self.seen.append(record)
            self.records.put(record)

        return listener

    def next(self, timeout: float = TIMEOUT) -> Record:
        return self.records.get(timeout=timeout)

    def wait_for(self, event: str, timeout: float = TIMEOUT) -> Record:
        """The next record of ``event``, skipping (but keeping in ``seen``) the others."""
        while True:
            record = self.records.get(timeout=timeout)
            if record.event == event:
                return record

    def events(self) -> list[str]:
        with self._lock:
            return [r.event for r in self.seen]

    def messages(self) -> list[Any]:
        with self._lock:
            return [r.value for r in self.seen if r.event == "message"]


def round_trip(url: str, options: dict[str, Any], text: str = "round trip") -> None:
    """Connect with ``options``, exchange one message, close; fail the test otherwise."""
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    promise = ws.connect(url, options)
    assert promise is not None and promise.result(TIMEOUT) is True
    ws.send(text)
    assert rec.wait_for("message").value == text
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def refused(url: str, options: dict[str, Any]) -> tuple[BusinessError, BusinessError]:
    """Connect with ``options`` and expect failure: the rejection, and the error event (or the
    rejection again when the failure came before any I/O, which emits no event)."""
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    promise = ws.connect(url, options)
    assert promise is not None
    with pytest.raises(BusinessError) as info:
        promise.result(TIMEOUT)
    if info.value.code != 200:
        return info.value, info.value
    return info.value, rec.wait_for("error").value
