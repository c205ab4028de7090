"""Records every event of a WebSocket, with the thread it ran on, for assertions."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

from ohws import WebSocket

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
