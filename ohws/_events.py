"""Event names, callback shapes and the listener registry (SPEC section 5).

Pure: no I/O, no threads started; a lock guards the registry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ._errors import parameter_error

__all__ = ["ASYNC_EVENTS", "EVENT_TYPES", "Listeners"]

#: events whose callbacks are AsyncCallback: ``cb(None, value)``.
ASYNC_EVENTS = frozenset({"open", "openInfo", "message", "close"})
#: every event of a client WebSocket; the others are called as ``cb(value)`` / ``cb()``.
EVENT_TYPES = ("open", "openInfo", "message", "dataEnd", "close", "error", "headerReceive", "reconnect")


class Listeners:
    """Callbacks per event type: several per type, in registration order, no duplicates."""

    def __init__(self, event_types: tuple[str, ...] = EVENT_TYPES) -> None:
        self._event_types = event_types
        self._by_type: dict[str, tuple[Callable[..., Any], ...]] = {}
        self._registry_lock = threading.Lock()

    def _check_type(self, event_type: object) -> str:
        if not isinstance(event_type, str):
            raise parameter_error(f"event type must be a str, not {type(event_type).__name__}")
        if event_type not in self._event_types:
            known = ", ".join(repr(t) for t in self._event_types)
            raise parameter_error(f"unknown event type {event_type!r} (expected one of {known})")
        return event_type

    def add(self, event_type: object, callback: object) -> None:
        """Register ``callback``; registering the same callable twice keeps one registration."""
        name = self._check_type(event_type)
        if not callable(callback):
            raise parameter_error(f"callback for {name!r} must be callable, not {type(callback).__name__}")
        with self._registry_lock:
            current = self._by_type.get(name, ())
            if callback not in current:
                self._by_type[name] = (*current, callback)

    def remove(self, event_type: object, callback: object = None) -> None:
        """Remove ``callback`` from ``event_type``, or every callback when it is None."""
        name = self._check_type(event_type)
        if callback is not None and not callable(callback):
            raise parameter_error(f"callback for {name!r} must be callable, not {type(callback).__name__}")
        with self._registry_lock:
            if callback is None:
                self._by_type.pop(name, None)
            else:
                self._by_type[name] = tuple(cb for cb in self._by_type.get(name, ()) if cb != callback)

    def get(self, event_type: str) -> tuple[Callable[..., Any], ...]:
        """A snapshot of the callbacks for ``event_type`` (safe to iterate while others change it)."""
        return self._by_type.get(event_type, ())
