"""One connection attempt: its reader thread and its message layer (SPEC sections 4 and 6).

* ``ohws-reader-<n>`` (a pooled connection thread) opens the stream, does the handshake,
  then does every read: frames, messages, pings, the close handshake. It never runs user
  code; events go to the connection's lane through the ``EventSink``.
* the ``FrameWriter`` (``_writer.py``) sends frames in call order, from the sending thread
  when the socket takes them at once, else from ``ohws-writer-<n>``.
* the shared ``ohws-timer`` runs the heartbeat and shuts the socket down when
  ``closeTimeout`` or ``connectTimeout`` runs out, which wakes whichever thread is blocked.

``_lock`` guards the state and the close bookkeeping; no user code and no socket I/O run
while it is held.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from ._errors import BusinessError, ErrorCode, unknown_error
from ._frames import CloseCode, FrameParser, Opcode, ProtocolError
from ._handshake import (
    MAX_RESPONSE_HEAD,
    HandshakeError,
    Response,
    build_request,
    check_response,
    new_key,
    parse_response,
)
from ._heartbeat import Heartbeat
from ._messages import Close, Message, MessageAssembler, Ping
from ._options import CloseSpec, ConnectOptions
from ._promise import Promise
from ._proxy import proxy_environment, resolve_proxy
from ._state import State, check_transition
from ._threads import connection_threads, run_named
from ._timer import TimerHandle, call_later
from ._transport import ConnectError, open_stream
from ._types import CloseResult, OpenResult, WebSocketOpenInfo
from ._url import Target
from ._writer import FrameWriter, Outgoing

__all__ = ["Connection", "EventSink"]

logger = logging.getLogger("ohws")

# recv() allocates its whole buffer before blocking, so an idle connection should ask for
# little; the size grows (x4) while reads come back full and shrinks when they do not.
_RECV_MIN, _RECV_MAX = 2048, 128 * 1024
_thread_numbers = itertools.count(1)


class EventSink:
    """Where a connection sends its events: the facade turns them into lane jobs."""

    def emit(self, event: str, *args: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def emit_message(self, data: str | bytes) -> None:  # pragma: no cover - interface
        """Deliver ``message`` then ``dataEnd``."""
        raise NotImplementedError


def _connect_failed(detail: str, status: int = 0) -> BusinessError:
    return BusinessError.of(ErrorCode.CONNECT_FAILED, detail, str(status))


class _Lost(Exception):
    """The connection ended without a close handshake; the message says why."""


class Connection:
    """One connect() call's connection. Created by the facade, driven by its own threads."""

    def __init__(
        self,
        target: Target,
        options: ConnectOptions,
        ssl_context: ssl.SSLContext | None,
        sink: EventSink,
        connect_promise: Promise[bool],
    ) -> None:
        self._target = target
        self._options = options
        self._ssl_context = ssl_context
        self._sink = sink
        self._connect_promise = connect_promise
        self._number = next(_thread_numbers)

        self._lock = threading.Lock()
        self.state = State.CONNECTING
        self._writer = FrameWriter(self._number, self._on_close_written, self._on_write_failure)
        self._sock: socket.socket | None = None
        self._abort_requested = False  # close() while CONNECTING
        self._connect_timed_out = False
        self._local_close: CloseSpec | None = None  # what our close() sent
        self._failure: ProtocolError | None = None  # what we failed the connection with
        self._close_received: Close | None = None
        self._close_sent = False
        self._close_waiters: list[Promise[bool]] = []
        self._close_timer: TimerHandle | None = None
        self._lost_reason: str | None = None  # set by the heartbeat before it aborts the socket
        self._heartbeat: Heartbeat | None = None  # the running read loop's

        connection_threads.submit(run_named, f"ohws-reader-{self._number}", self._run)

    # ------------------------------------------------------------------ public side
    @property
    def buffered_amount(self) -> int:
        return self._writer.buffered_amount

    def send(
        self, opcode: Opcode, payload: bytes, make_promise: Callable[[], Promise[bool]]
    ) -> Promise[bool] | None:
        """Write or queue a data frame (CONNECTING or OPEN).

        Returns None when the frame is already written, else a promise (made by
        ``make_promise``) that settles when it is, or is rejected with 2302999.
        """
        if self.state in (State.CONNECTING, State.OPEN):
            outcome = self._writer.submit(opcode, payload, make_promise)
            if outcome is True:
                return None
            if outcome is not False:
                return outcome
        promise = make_promise()
        promise._reject(unknown_error(f"the connection is not open (state {self.state.name})"))
        return promise

    def set_reading_paused(self, paused: bool) -> None:
        """The reader stops (or resumes) reading on purpose (a full receive queue, SPEC 13):
        the heartbeat is suspended meanwhile and counts afresh after. Any thread; idempotent."""
        heartbeat = self._heartbeat
        if heartbeat is not None:
            if paused:
                heartbeat.pause()
            else:
                heartbeat.resume()

    def close(self, spec: CloseSpec, promise: Promise[bool]) -> None:
        """Start (or join) the close; ``promise`` resolves True once CLOSED."""
        with self._lock:
            state = self.state
            if state is State.CLOSED:
                error: BusinessError | None = unknown_error("the connection is already closed")
            else:
                error = None
                self._close_waiters.append(promise)
                if state is State.CONNECTING:
                    self._abort_requested = True
                    sock = self._sock
                elif state is State.OPEN:
                    self._set_state(State.CLOSING)
                    self._local_close = spec
                    self._arm_close_timer()
        if error is not None:
            promise._reject(error)
        elif state is State.CONNECTING:
            _abort(sock)
        elif state is State.OPEN:
            self._writer.submit(Opcode.CLOSE, _close_payload(spec.code, spec.reason))

    # ------------------------------------------------------------------ helpers
    def _set_state(self, new: State) -> None:
        assert self._lock.locked(), "state changes happen under _lock"
        check_transition(self.state, new)
        self.state = new

    def _on_close_written(self) -> None:
        """Our close frame is out (writing thread): hang up if the handshake is now complete."""
        with self._lock:
            self._close_sent = True
            hang_up = self._close_received is not None or self._failure is not None
            sock = self._sock
        if hang_up:
            # Both close frames are exchanged (or we are failing the connection):
            # RFC 6455 7.1.1 lets the client close TCP now.
            _abort(sock)

    def _on_write_failure(self, exc: OSError) -> None:
        """A write failed: make sure the reader notices the broken connection."""
        _abort(self._sock)

    def _arm_close_timer(self) -> None:
        assert self._lock.locked()
        if self._close_timer is None:
            self._close_timer = call_later(self._options.close_timeout, self._on_close_timeout)

    def _on_close_timeout(self) -> None:
        with self._lock:
            if self.state is State.CLOSED:
                return
            sock = self._sock
        _abort(sock)

    def _on_connect_timeout(self) -> None:
        with self._lock:
            if self.state is not State.CONNECTING:
                return
            self._connect_timed_out = True
            sock = self._sock
        _abort(sock)

    def _register_socket(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            doomed = self._abort_requested or self._connect_timed_out
        if doomed:
            _abort(sock)

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        try:
            rest = self._open()
            if rest is not None:
                self._read_loop(rest)
        except Exception:  # pragma: no cover - a bug; report it rather than hang
            logger.exception("ohws: reader thread failed")
            self._finish(
                error=_connect_failed("internal error in the reader thread"),
                result=CloseResult(1006, "internal error"),
            )

    def _open(self) -> bytes | None:
        """Connect and handshake; on success emit the open events and return bytes read past the head."""
        timer = call_later(self._options.connect_timeout, self._on_connect_timeout)
        try:
            response, protocol, rest = self._handshake()
        except BusinessError as exc:
            failure: BusinessError | None = exc
        else:
            failure = None
        finally:
            timer.cancel()
        with self._lock:
            if failure is None and (self._abort_requested or self._connect_timed_out):
                failure = _connect_failed("timed out during the opening handshake", response.status)
            if failure is None:
                assert self._sock is not None
                self._sock.settimeout(None)
                self._set_state(State.OPEN)
                self._writer.attach(self._sock)
        if failure is not None:
            self._fail_open(failure)
            return None
        sink = self._sink
        sink.emit("headerReceive", response.headers)
        sink.emit("open", None, OpenResult(response.status, response.reason))
        sink.emit("openInfo", None, WebSocketOpenInfo(response.status, response.reason, protocol))
        self._connect_promise._resolve(True)
        return rest

    def _handshake(self) -> tuple[Response, str | None, bytes]:
        """Open the stream and do the opening handshake; raise BusinessError(200) on failure."""
        options, target = self._options, self._target
        deadline = time.monotonic() + options.connect_timeout
        status = 0
        try:
            route = resolve_proxy(options.proxy, target.host, target.secure, proxy_environment())
            sock = open_stream(
                target, route, self._ssl_context, options.connect_timeout, self._register_socket
            )
            self._register_socket(sock)
            key = new_key()
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(build_request(target, options, key))
            head, rest = _read_head(sock, deadline)
            response = parse_response(head)
            status = response.status
            return response, check_response(response, key, options.protocols), rest
        except ConnectError as exc:
            raise _connect_failed(str(exc)) from None
        except HandshakeError as exc:
            raise _connect_failed(f"handshake rejected: {exc.detail}", exc.status) from None
        except (TimeoutError, OSError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({exc})"
            raise _connect_failed(f"{why} during the opening handshake", status) from None

    def _fail_open(self, error: BusinessError) -> None:
        """The attempt failed or was aborted: settle everything, emit ``error`` unless aborted."""
        with self._lock:
            aborted = self._abort_requested and not self._connect_timed_out
            if self._connect_timed_out and error.code == ErrorCode.CONNECT_FAILED:
                limit = self._options.connect_timeout
                error = _connect_failed(
                    f"timed out after {limit:.3g}s (connectTimeout) connecting to {self._target.url}",
                    int(error.data or 0),
                )
            self._set_state(State.CLOSED)
            waiters, self._close_waiters = self._close_waiters, []
            sock, self._sock = self._sock, None
        pending = self._writer.stop()
        _close_socket(sock)
        if aborted:
            reason = unknown_error("close() was called before the connection opened")
            self._connect_promise._reject(reason)
        else:
            self._sink.emit("error", error)
            self._connect_promise._reject(error)
        _reject_all(pending, unknown_error("the connection failed before it opened"))
        for waiter in waiters:
            waiter._resolve(True)

    def _read_loop(self, rest: bytes) -> None:
        sock = self._sock
        assert sock is not None
        options = self._options
        parser = FrameParser(options.max_message_size)
        assembler = MessageAssembler(options.max_message_size)
        heartbeat = Heartbeat(
            options.ping_interval,
            options.pong_timeout,
            lambda payload: self._writer.submit(Opcode.PING, payload),
            self._on_heartbeat_lost,
        )
        self._heartbeat = heartbeat
        heartbeat.start()
        emit_message, recv, received = self._sink.emit_message, sock.recv, heartbeat.received
        data, size = rest, _RECV_MIN
        try:
            while True:
                if data:
                    parser.feed(data)
                    while (frame := parser.next_frame()) is not None:
                        event = assembler.receive(frame)
                        if isinstance(event, Message):
                            if self._close_received is None:
                                # One lane job per message: measured faster than batching a
                                # whole read, since the callbacks start while parsing goes on.
                                emit_message(event.data)
                        elif isinstance(event, Ping):
                            self._writer.submit(Opcode.PONG, event.payload)
                        elif isinstance(event, Close) and self._on_close_frame(event):
                            return self._finish_closed()
                data = recv(size)
                if len(data) >= size:
                    size = min(size * 4, _RECV_MAX)
                elif len(data) < size // 16:
                    size = max(size // 2, _RECV_MIN)
                if not data:
                    raise _Lost(
                        self._lost_reason or "the server closed the TCP connection without a close frame"
                    )
                received()
        except ProtocolError as exc:
            self._fail_connection(exc)
            return self._finish_closed()
        except _Lost as exc:
            return self._finish_closed(lost=str(exc))
        except (OSError, ValueError) as exc:
            # ValueError: the socket was closed under us (abort while reading).
            return self._finish_closed(lost=self._lost_reason or f"connection lost ({exc})")
        finally:
            heartbeat.stop()

    def _on_heartbeat_lost(self, why: str) -> None:
        """Timer thread: no sign of life in time; wake the reader, which reports ``why``."""
        self._lost_reason = why
        _abort(self._sock)

    def _on_close_frame(self, close: Close) -> bool:
        """Handle the server's close frame; True when the close handshake is complete."""
        with self._lock:
            if self._close_received is not None:
                return False
            self._close_received = close
            if self._close_sent:
                return True
            echo = self._local_close is None
            if echo and self.state is State.OPEN:
                self._set_state(State.CLOSING)
            self._arm_close_timer()
        if echo:
            # Server-initiated: echo its code; data frames not yet written are dropped.
            _reject_all(
                self._writer.drop_data(),
                unknown_error("the server closed the connection before the message was sent"),
            )
            self._writer.submit(Opcode.CLOSE, b"" if close.code is None else struct.pack("!H", close.code))
        return False

    def _fail_connection(self, error: ProtocolError) -> None:
        """RFC 6455 7.1.7: send a close frame with ``error.code``; TCP is closed once it is out."""
        with self._lock:
            self._failure = error
            if self._close_sent:
                return
            if self.state is State.OPEN:
                self._set_state(State.CLOSING)
            self._arm_close_timer()
        _reject_all(self._writer.drop_data(), unknown_error(f"the connection failed: {error.reason}"))
        self._writer.submit(Opcode.CLOSE, _close_payload(error.code, error.reason))
        self._writer.wait_close_written(self._options.close_timeout)  # the timer aborts a stuck write

    def _finish_closed(self, lost: str | None = None) -> None:
        with self._lock:
            failure, local, received = self._failure, self._local_close, self._close_received
        if failure is not None:
            error: BusinessError | None = _connect_failed(f"protocol error: {failure.reason}")
            result = CloseResult(int(failure.code), failure.reason)
        elif local is not None:
            error, result = None, CloseResult(local.code, local.reason)
        elif received is not None:
            code = CloseCode.NO_STATUS if received.code is None else received.code
            error, result = None, CloseResult(int(code), received.reason)
        else:
            why = lost or "connection lost"
            error, result = _connect_failed(why), CloseResult(int(CloseCode.ABNORMAL), why)
        self._finish(error, result)

    def _finish(self, error: BusinessError | None, result: CloseResult) -> None:
        """Tear down: CLOSED, socket closed, writer gone, leftovers rejected, events out."""
        with self._lock:
            if self.state is not State.CLOSED:
                self._set_state(State.CLOSED)
            waiters, self._close_waiters = self._close_waiters, []
            sock = self._sock
            if self._close_timer is not None:
                self._close_timer.cancel()
        _abort(sock)
        pending = self._writer.stop()
        _close_socket(sock)
        if pending:
            _reject_all(pending, unknown_error("the connection closed before the message was sent"))
        if error is not None:
            self._sink.emit("error", error)
        self._sink.emit("close", None, result)
        for waiter in waiters:
            waiter._resolve(True)


def _close_payload(code: int, reason: str) -> bytes:
    return struct.pack("!H", code) + reason.encode("utf-8")[:123]


def _reject_all(items: list[Outgoing], error: BusinessError) -> None:
    for item in items:
        if item.promise is not None:
            item.promise._reject(error)


def _abort(sock: socket.socket | None) -> None:
    """Shut the socket down in both directions: wakes any thread blocked on it."""
    if sock is None:
        return
    with contextlib.suppress(OSError, ValueError):
        # socket.socket.shutdown, not SSLSocket.shutdown: the TLS object stays usable
        # by a thread that is inside a read or write right now.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _close_socket(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _read_head(sock: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """Read the response head; return it (without the blank line) and the bytes after it."""
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            return buf[:end], buf[end + 4 :]
        if len(buf) > MAX_RESPONSE_HEAD:
            raise HandshakeError(f"response head is larger than {MAX_RESPONSE_HEAD} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("handshake deadline passed")
        sock.settimeout(remaining)
        chunk = sock.recv(16384)
        if not chunk:
            raise HandshakeError("the server closed the connection during the handshake")
        buf += chunk
