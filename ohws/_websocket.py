"""The ``WebSocket`` facade: ArkTS overloads, listeners and validation in front of a Connection.

``connect``, ``send`` and ``close`` never raise: every failure, 401 included, reaches the
callback or rejects the promise. ``on``/``off`` raise ``BusinessError(401)`` for bad
arguments. Callbacks always run on the connection's lane, never on the caller's thread.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Any, overload

from . import _policy
from ._connection import ClientConnection, EventSink
from ._dispatch import Dispatcher, Lane, logger, run_user_code
from ._errors import MISSING, BusinessError, ErrorCode, parameter_error, unknown_error
from ._events import Listeners, StaticOff, StaticOn, value_only
from ._messages import encode_message
from ._options import DEFAULT_CLOSE_TIMEOUT, parse_close_options, parse_options
from ._promise import Promise
from ._receive import Ended, QueuedSink, ReceiveQueue
from ._reconnect import ReconnectSession, check_reconnect_policy
from ._state import State
from ._tls import check_cert_files, make_ssl_context
from ._types import WebSocketCloseOptions, WebSocketRequestOptions
from ._url import parse_url

__all__ = ["WebSocket", "connect", "createWebSocket"]

#: how much longer than ``closeTimeout`` leaving a ``with`` block waits for CLOSED: the
#: connection aborts at ``closeTimeout``, then tears down.
_CLOSE_GRACE = 1.0

AsyncCallback = Callable[[BusinessError | None, Any], Any]


def _split_overload(
    what: str, names: tuple[str, ...], args: tuple[Any, ...], named: dict[str, Any]
) -> tuple[tuple[Any, ...], AsyncCallback | None, BusinessError | None]:
    """ArkTS overload resolution: a trailing callable is the callback.

    ``names`` are the parameters in order, the callback last; a Python caller may also pass
    them by name (``connect(url, callback=cb)``). Returns the other arguments, the callback
    (None for promise style) and a 401 when the shape matches no overload.
    """
    error = None
    if named:
        args, error = _by_position(what, names, args, named)
    max_positional = len(names) - 1
    callback: AsyncCallback | None = None
    if args and callable(args[-1]):
        callback, args = args[-1], args[:-1]
    elif args and args[-1] is None and len(args) > max_positional:
        args = args[:-1]  # an explicit None callback means promise style
    if error is None and len(args) == max_positional + 1:
        error = parameter_error(f"the callback must be callable, not {type(args[-1]).__name__}")
    elif error is None and len(args) > max_positional:
        error = parameter_error(f"too many arguments: {what}() takes {', '.join(names)}")
    return args, callback, error


def _by_position(
    what: str, names: tuple[str, ...], args: tuple[Any, ...], named: dict[str, Any]
) -> tuple[tuple[Any, ...], BusinessError | None]:
    """``args`` with the arguments passed by name put in their places (MISSING for one left
    out before one given). On a 401, the callback is still found if named."""
    unknown = [name for name in named if name not in names]
    twice = [name for name in named if name in names and names.index(name) < len(args)]
    if unknown or twice:
        if unknown:
            detail = f"{what}() has no parameter {unknown[0]!r} (it takes {', '.join(names)})"
        else:
            detail = f"{what}() got {twice[0]!r} both by position and by name"
        callback = named.get(names[-1])
        return (*args, callback) if callable(callback) else args, parameter_error(detail)
    merged = [*args] + [MISSING] * (1 + max(names.index(name) for name in named) - len(args))
    for name, value in named.items():
        merged[names.index(name)] = value
    return tuple(merged), None


def _given(args: tuple[Any, ...], index: int) -> Any:
    """The optional argument at ``index``; None when left out."""
    value = args[index] if index < len(args) else None
    return None if value is MISSING else value


class _Sink(EventSink):
    """Turns connection events into lane jobs that look listeners up again at delivery time.

    An event nobody listens to when it happens is dropped at once (SPEC 5: never buffered for a
    later listener), which also spares a dispatch thread a wake-up. An ``error`` of an open
    connection that nobody listens to is logged (WARNING) instead: no promise carries it. (An
    error before open rejects the connect promise, which logs it if nobody looks.)
    """

    __slots__ = ("_lane", "_listeners", "_opened", "report_unheard_errors")

    def __init__(self, lane: Lane, listeners: Listeners) -> None:
        self._lane = lane
        self._listeners = listeners
        self._opened = False
        self.report_unheard_errors = True

    def emit(self, event: str, *args: Any) -> None:
        if self._listeners.get(event):
            self._lane.submit(self._deliver, event, args)
        elif event == "error" and self._opened and self.report_unheard_errors:
            logger.warning("ohws: the connection failed and no 'error' listener is registered: %s", args[0])
        if event == "open":
            self._opened = True
        elif event == "close":
            self._opened = False

    def emit_message(self, data: str | bytes) -> None:
        get = self._listeners.get
        if get("message") or get("dataEnd"):
            self._lane.submit(self._deliver_message, data)

    def drain(self, fn: Callable[[], None]) -> None:
        self._lane.submit_barrier(fn)

    def _deliver(self, event: str, args: tuple[Any, ...]) -> None:
        for callback in self._listeners.get(event):
            run_user_code(callback, *args)

    def _deliver_message(self, data: str | bytes) -> None:
        # run_user_code inlined: this runs once per received message.
        get = self._listeners.get
        for callback in get("message"):
            try:
                callback(None, data)
            except Exception:
                logger.exception("ohws: exception in user callback %r", callback)
        for callback in get("dataEnd"):
            try:
                callback()
            except Exception:
                logger.exception("ohws: exception in user callback %r", callback)


class WebSocket:
    """A WebSocket client object, as ``webSocket.createWebSocket()`` returns it.

    One object holds at most one connection at a time; once CLOSED it may connect again.
    """

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._lane = Lane(dispatcher)
        self._listeners = Listeners()
        self._sink: EventSink = _Sink(self._lane, self._listeners)
        self._connection_lock = threading.Lock()
        self._connection: ClientConnection | None = None
        self._session: ReconnectSession | None = None  # with the reconnect option
        self._queue: ReceiveQueue | None = None  # the script style's (SPEC 13), from ohws.connect
        self._close_timeout = DEFAULT_CLOSE_TIMEOUT

    def _enable_queue(self) -> None:
        """Give this (new, never connected) WebSocket a receive queue: ``ohws.connect`` does."""
        assert self._connection is None
        inner = _Sink(self._lane, self._listeners)
        inner.report_unheard_errors = False  # receive() and iteration report them
        self._queue = ReceiveQueue(self._set_reading_paused)
        self._sink = QueuedSink(inner, self._queue)
        self._sink.reconnecting = lambda: self.state is State.CONNECTING

    def _set_reading_paused(self, paused: bool) -> None:
        connection = self._connection
        if connection is not None:
            connection.set_reading_paused(paused)

    def __repr__(self) -> str:
        return f"<ohws.WebSocket state={self.state.name}>"

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> State:
        """``CONNECTING``, ``OPEN``, ``CLOSING`` or ``CLOSED`` (extension)."""
        connection, session = self._connection, self._session
        if connection is None:
            return State.CLOSED
        if session is not None and session.reconnecting(connection):
            return State.CONNECTING  # between connections: never CLOSED on the way (SPEC 14)
        return connection.state

    @property
    def bufferedAmount(self) -> int:
        """Bytes passed to ``send`` and not yet written to the socket (extension)."""
        connection = self._connection
        return 0 if connection is None else connection.buffered_amount

    # ------------------------------------------------------------------ events
    def on(self, type: str = MISSING, callback: Callable[..., Any] = MISSING) -> None:
        """Add ``callback`` for event ``type``; raises BusinessError(401) for bad arguments."""
        self._listeners.add(type, callback)

    def off(self, type: str = MISSING, callback: Callable[..., Any] | None = None) -> None:
        """Remove ``callback`` (or every callback) for ``type``; raises BusinessError(401)."""
        self._listeners.remove(type, callback)

    # ArkTS static names (API 23+, SPEC 5.1): the same listener lists as on/off.
    onOpen = StaticOn("open", value_only)  # cb(OpenResult)
    offOpen = StaticOff("open")
    onOpenInfo = StaticOn("openInfo", value_only)  # cb(WebSocketOpenInfo); extension
    offOpenInfo = StaticOff("openInfo")
    onMessage = StaticOn("message")  # cb(err, data)
    offMessage = StaticOff("message")
    onWebSocketClose = StaticOn("close")  # cb(err, CloseResult)
    offWebSocketClose = StaticOff("close")
    onWebSocketError = StaticOn("error")  # cb(err)
    offWebSocketError = StaticOff("error")
    onDataEnd = StaticOn("dataEnd")  # cb()
    offDataEnd = StaticOff("dataEnd")
    onHeaderReceive = StaticOn("headerReceive")  # cb(headers)
    offHeaderReceive = StaticOff("headerReceive")

    # ------------------------------------------------------------------ helpers
    def _new_promise(self) -> Promise[bool]:
        return Promise(self._lane)

    @functools.cached_property
    def _written(self) -> Promise[bool]:
        """The resolved promise that ``send`` returns for a frame written before it returned."""
        return Promise.resolved(True, self._lane)

    def _outcome(self, callback: AsyncCallback | None, promise: Promise[bool]) -> Promise[bool] | None:
        if callback is None:
            return promise
        promise._deliver(callback)
        return None

    def _failed(self, callback: AsyncCallback | None, error: BusinessError) -> Promise[bool] | None:
        return self._outcome(callback, Promise.rejected(error, self._lane))

    # ------------------------------------------------------------------ connect
    @overload
    def connect(self, url: str, /) -> Promise[bool]: ...
    @overload
    def connect(self, url: str, options: WebSocketRequestOptions | None, /) -> Promise[bool]: ...
    @overload
    def connect(self, url: str, callback: AsyncCallback, /) -> None: ...
    @overload
    def connect(
        self, url: str, options: WebSocketRequestOptions | None, callback: AsyncCallback, /
    ) -> None: ...

    def connect(self, *args: Any, **named: Any) -> Promise[bool] | None:
        """Open a connection; settles once the opening handshake is done (True) or failed.

        Errors: 401 (arguments, options), 201 (policy), 2302001 (URL), 2302998 (domain),
        2302002 (certificate file missing), 2302003 (already connecting or connected),
        2302999 (unusable certificate or key; close() before open), 200 (the attempt failed).
        """
        rest, callback, error = _split_overload("connect", ("url", "options", "callback"), args, named)
        try:
            if error is not None:
                raise error
            url = rest[0] if rest else MISSING
            if url is MISSING:
                raise parameter_error("the url is missing")
            if not isinstance(url, str):
                raise parameter_error(f"url must be a str, not {type(url).__name__}")
            options = parse_options(_given(rest, 1))
            _policy.check_permission()
            target = parse_url(url)
            _policy.check_domain(target.host)
            check_cert_files(options)
            with self._connection_lock:
                state = self.state
                if state is not State.CLOSED:
                    raise BusinessError.of(
                        ErrorCode.CONNECTION_ALREADY_EXISTS,
                        f"this WebSocket is {state.name}; close it or create another",
                    )
                context = make_ssl_context(options) if target.secure else None
                promise: Promise[bool] = Promise(self._lane)
                self._close_timeout = options.close_timeout
                queue = self._queue
                if queue is not None:
                    queue.begin(options.max_queue)
                    if isinstance(self._sink, QueuedSink):
                        self._sink.begin()
                    promise._on_settled(lambda error: _open_failed(queue, error))
                session = None
                if options.reconnect is not None:
                    sink = self._sink

                    def attempt(observer: ReconnectSession) -> ClientConnection:
                        return ClientConnection(target, options, context, sink, None, observer)

                    session = ReconnectSession(
                        options.reconnect,
                        sink,
                        attempt,
                        self._publish,
                        check_reconnect_policy(target.host),
                        on_over=sink.reconnecting_over if isinstance(sink, QueuedSink) else (lambda: None),
                    )
                self._session = session
                self._connection = ClientConnection(target, options, context, self._sink, promise, session)
        except BusinessError as exc:
            return self._failed(callback, exc)
        return self._outcome(callback, promise)

    def _publish(self, connection: ClientConnection) -> None:
        """The reconnecting session's next attempt becomes the current connection, unless a
        connect() since (after a close()) has replaced that session."""
        with self._connection_lock:
            if connection.observer is self._session:
                self._connection = connection

    # ------------------------------------------------------------------ send
    @overload
    def send(self, data: str | bytes | bytearray | memoryview, /) -> Promise[bool]: ...
    @overload
    def send(self, data: str | bytes | bytearray | memoryview, callback: AsyncCallback, /) -> None: ...

    def send(self, *args: Any, **named: Any) -> Promise[bool] | None:
        """Queue one message: ``str`` as a text frame, bytes-like as a binary frame.

        Settles True once the whole frame is written. Errors: 401 (data type), 201,
        2302999 (not CONNECTING or OPEN, or the connection ended before it was written).
        """
        if len(args) == 1 and not named and not callable(args[0]):
            data, callback, error = args[0], None, None  # send(data): the common call
        else:
            rest, callback, error = _split_overload("send", ("data", "callback"), args, named)
            data = rest[0] if rest else MISSING
        try:
            if error is not None:
                raise error
            if data is MISSING:
                raise parameter_error("the data to send is missing")
            opcode, payload = encode_message(data)
            _policy.check_permission()
        except BusinessError as exc:
            return self._failed(callback, exc)
        connection, session = self._connection, self._session
        if connection is None:
            error = unknown_error("the WebSocket is not open (never connected)")
            return self._failed(callback, error)
        if session is None:
            promise = connection.send(opcode, payload, self._new_promise)
        else:
            promise = session.send(connection, opcode, payload, self._new_promise)
        if promise is not None:
            return self._outcome(callback, promise)
        # Written already: no promise object needed for a callback, a shared resolved one otherwise.
        if callback is not None:
            self._lane.submit(run_user_code, callback, None, True)
            return None
        return self._written

    # ------------------------------------------------------------------ close
    @overload
    def close(self, /) -> Promise[bool]: ...
    @overload
    def close(self, options: WebSocketCloseOptions | None, /) -> Promise[bool]: ...
    @overload
    def close(self, callback: AsyncCallback, /) -> None: ...
    @overload
    def close(self, options: WebSocketCloseOptions | None, callback: AsyncCallback, /) -> None: ...

    def close(self, *args: Any, **named: Any) -> Promise[bool] | None:
        """Close the connection; settles True once it is CLOSED.

        OPEN: close handshake (``closeTimeout``, then abort). CONNECTING: the attempt is
        aborted and connect rejects with 2302999. Errors: 401 (options), 201, 2302999
        (never connected or already closed).
        """
        rest, callback, error = _split_overload("close", ("options", "callback"), args, named)
        try:
            if error is not None:
                raise error
            spec = parse_close_options(_given(rest, 0))
            _policy.check_permission()
        except BusinessError as exc:
            return self._failed(callback, exc)
        if self._queue is not None:
            self._queue.discard()
        promise: Promise[bool] = Promise(self._lane)
        connection, session = self._connection, self._session
        if connection is None:
            promise._reject(unknown_error("the WebSocket is not open (never connected)"))
        elif session is not None:
            session.close(connection, spec, promise)
        else:
            connection.close(spec, promise)
        return self._outcome(callback, promise)

    # ------------------------------------------------------------------ script style (SPEC 13)
    def _require_queue(self, what: str) -> ReceiveQueue:
        if self._queue is None:
            raise unknown_error(
                f"{what} needs a WebSocket made by ohws.connect(); one from createWebSocket() has no"
                " receive queue and delivers messages to 'message' listeners only"
            )
        return self._queue

    def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message (``str`` or ``bytes``), in order, blocking up to ``timeout`` seconds.

        ``TimeoutError`` when none came in time (a later one stays queued for the next call).
        Errors: 2302999 once the connection is CLOSED and the queue is empty (the message gives
        the close code and reason), or on a WebSocket not made by ``ohws.connect``; 401 for a bad
        ``timeout``. Any thread, a GUI thread or a callback included: the reader thread fills
        the queue, never the lane, so nothing waits for the caller.
        """
        queue = self._require_queue("receive()")
        try:
            return queue.get(_check_timeout(timeout, "receive(timeout)"))
        except Ended as end:
            raise end.as_receive_error() from None

    def __iter__(self) -> Iterator[str | bytes]:
        """``for message in ws``: every message until CLOSED; raises the ``error`` of an abnormal
        close (1006, 1002, 1007, 1009) at the end instead of stopping."""
        return _iterate(self._require_queue("iteration"))

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """``async for message in ws``: as ``for``, without blocking the event loop."""
        return _aiterate(self._require_queue("async iteration"))

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close with 1000 unless CLOSED, and wait until CLOSED (at most ``closeTimeout``)."""
        if self.state is State.CLOSED:
            return
        closing = self.close()
        assert closing is not None
        with contextlib.suppress(BusinessError, TimeoutError):
            closing.result(self._close_timeout + _CLOSE_GRACE)


def _check_timeout(timeout: object, where: str) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0:
        raise parameter_error(f"{where} must be None or a number of seconds >= 0, not {timeout!r}")
    if timeout > threading.TIMEOUT_MAX:  # inf, or longer than a thread can wait: no limit
        return None
    return float(timeout)


def _open_failed(queue: ReceiveQueue, error: BaseException | None) -> None:
    """The connect promise settled: a failure ends the queue (there is no ``close`` event)."""
    if isinstance(error, BusinessError):
        queue.closed(None, error)


def _iterate(queue: ReceiveQueue) -> Iterator[str | bytes]:
    while True:
        try:
            yield queue.get(None)
        except Ended as end:
            if end.error is not None:
                raise end.error from None
            return


async def _aiterate(queue: ReceiveQueue) -> AsyncIterator[str | bytes]:
    while True:
        try:
            yield await queue.get_async()
        except Ended as end:
            if end.error is not None:
                raise end.error from None
            return


def connect(
    url: str,
    options: WebSocketRequestOptions | None = None,
    *,
    timeout: float | None = None,
    dispatcher: Dispatcher | None = None,
) -> WebSocket:
    """The script style (SPEC 13): a WebSocket with a receive queue, returned once OPEN.

    Raises the ``BusinessError`` the connect promise would reject with (401, 201, 2302001,
    2302002, 2302998, 2302999, 200), or ``TimeoutError`` when it is not open within ``timeout``
    seconds (the attempt is aborted as ``close()`` would). Messages are kept from the handshake
    on, at most ``maxQueue`` (default 64, 0 = no limit) before the reader stops reading.
    """
    limit = _check_timeout(timeout, "ohws.connect(timeout)")
    ws = WebSocket(dispatcher)
    ws._enable_queue()
    opening = ws.connect(url, options)
    try:
        opening.result(limit)
    except BusinessError:
        raise
    except TimeoutError:
        _abort(ws)
        raise TimeoutError(f"ohws.connect: {url} was not open within {limit:g}s") from None
    except BaseException:  # a KeyboardInterrupt: the attempt must not open unseen and stay open
        _abort(ws)
        raise
    return ws


def _abort(ws: WebSocket) -> None:
    """End the opening that ``ohws.connect`` gives up on."""
    closing = ws.close()
    assert closing is not None
    closing._mark_observed()  # the abort is ours; its outcome is no news


def createWebSocket(dispatcher: Dispatcher | None = None) -> WebSocket:
    """A new, CLOSED ``WebSocket``. ``dispatcher`` (extension) runs its callbacks instead of the
    shared pool: any object with ``submit(fn, *args)``, e.g. one that posts to a GUI thread."""
    return WebSocket(dispatcher)
