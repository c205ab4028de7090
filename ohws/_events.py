"""Event names, callback shapes and the listener registry (SPEC sections 5 and 5.1).

Pure: no I/O, no threads started; a lock guards the registry.

Both ArkTS dialects share one registry. A registration is (callable, shape): the dynamic
``on('open', cb)`` stores ``cb`` itself, called with the dynamic arguments; a static name
whose callback shape differs (``onOpen(cb)`` calls ``cb(OpenResult)``, no ``err``) stores a
:class:`Reshaped` wrapper that adapts the call. ``off`` removes a callable in every shape.
The static names are declared on a class with :class:`StaticOn` / :class:`StaticOff`:

    class WebSocketServer:
        onConnect = StaticOn("connect")          # same shape as on('connect', cb)
        offConnect = StaticOff("connect")
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, overload

from ._errors import MISSING, parameter_error

__all__ = ["ASYNC_EVENTS", "EVENT_TYPES", "Listeners", "Reshaped", "StaticOff", "StaticOn", "value_only"]

#: adapts a call: ``shape(target, *dynamic_args)`` calls ``target`` as its dialect wants.
Shape = Callable[..., Any]


def value_only(target: Callable[..., Any], err: object, value: object) -> Any:
    """AsyncCallback arguments ``(None, value)`` to a static ``Callback<T>``: ``target(value)``."""
    return target(value)


class Reshaped:
    """A callable registered in a static shape; equal to another only for the same (target, shape)."""

    __slots__ = ("shape", "target")

    def __init__(self, target: Callable[..., Any], shape: Shape) -> None:
        self.target = target
        self.shape = shape

    def __call__(self, *args: Any) -> Any:
        return self.shape(self.target, *args)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reshaped) and other.target == self.target and other.shape is self.shape

    def __hash__(self) -> int:
        return hash((self.target, self.shape))

    def __repr__(self) -> str:
        return f"{self.target!r} (via {self.shape.__name__})"


def _target(registered: Callable[..., Any]) -> Callable[..., Any]:
    return registered.target if isinstance(registered, Reshaped) else registered


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
        if event_type is MISSING:
            raise parameter_error("the event type is missing")
        if not isinstance(event_type, str):
            raise parameter_error(f"event type must be a str, not {type(event_type).__name__}")
        if event_type not in self._event_types:
            known = ", ".join(repr(t) for t in self._event_types)
            raise parameter_error(f"unknown event type {event_type!r} (expected one of {known})")
        return event_type

    def add(self, event_type: object, callback: object, shape: Shape | None = None) -> None:
        """Register ``callback`` (called through ``shape`` when given); registering the same
        callable in the same shape twice keeps one registration."""
        name = self._check_type(event_type)
        if callback is MISSING:
            raise parameter_error(f"the callback for {name!r} is missing")
        if not callable(callback):
            raise parameter_error(f"callback for {name!r} must be callable, not {type(callback).__name__}")
        entry = callback if shape is None else Reshaped(callback, shape)
        with self._registry_lock:
            current = self._by_type.get(name, ())
            if entry not in current:
                self._by_type[name] = (*current, entry)

    def remove(self, event_type: object, callback: object = None) -> None:
        """Remove ``callback`` (in every shape) from ``event_type``, or every callback when None."""
        name = self._check_type(event_type)
        if callback is not None and not callable(callback):
            raise parameter_error(f"callback for {name!r} must be callable, not {type(callback).__name__}")
        with self._registry_lock:
            if callback is None:
                self._by_type.pop(name, None)
            else:
                kept = tuple(cb for cb in self._by_type.get(name, ()) if _target(cb) != callback)
                self._by_type[name] = kept

    def get(self, event_type: str) -> tuple[Callable[..., Any], ...]:
        """A snapshot of the callbacks for ``event_type`` (safe to iterate while others change it)."""
        return self._by_type.get(event_type, ())


class _StaticName:
    """A descriptor naming one ArkTS static method; ``_bind`` makes it for one registry."""

    dynamic = ""  # the dynamic twin: "on" or "off"

    def __init__(self, event: str) -> None:
        self.event = event
        self.name = ""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self.name = name

    def _bind(self, listeners: Listeners) -> Callable[..., None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        method = self._bind(obj._listeners)
        method.__name__ = method.__qualname__ = self.name
        method.__doc__ = f"ArkTS static name of {self.dynamic}({self.event!r}, callback)."
        return method


class StaticOn(_StaticName):
    """Declares an ArkTS static ``onX(callback)`` for ``event`` on a class with ``_listeners``.

    ``shape`` (e.g. :func:`value_only`) adapts the call when the static callback shape differs
    from the dynamic one; None: the same shape, so ``onX(cb)`` and ``on(event, cb)`` are one
    registration. A non-callable is 401, as for ``on``.
    """

    dynamic = "on"

    def __init__(self, event: str, shape: Shape | None = None) -> None:
        super().__init__(event)
        self.shape = shape

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> StaticOn: ...
    @overload
    def __get__(self, obj: Any, owner: type[Any]) -> Callable[[Callable[..., Any]], None]: ...

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        return super().__get__(obj, owner)

    def _bind(self, listeners: Listeners) -> Callable[..., None]:
        event, shape = self.event, self.shape

        def on(callback: Callable[..., Any] = MISSING) -> None:
            listeners.add(event, callback, shape)

        return on


class StaticOff(_StaticName):
    """Declares an ArkTS static ``offX(callback=None)``: ``off(event, callback)``, every shape."""

    dynamic = "off"

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> StaticOff: ...
    @overload
    def __get__(self, obj: Any, owner: type[Any]) -> Callable[..., None]: ...

    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        return super().__get__(obj, owner)

    def _bind(self, listeners: Listeners) -> Callable[..., None]:
        event = self.event

        def off(callback: Callable[..., Any] | None = None) -> None:
            listeners.remove(event, callback)

        return off
