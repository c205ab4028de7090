"""The connection engine, for client and server alike (SPEC sections 4, 6 and 11).

* ``ohws-open-<n>`` (a pooled thread) opens the stream and does the opening handshake; then
  ``ohws-reader-<n>`` (another pooled thread) does every read: frames, messages, pings, the
  close handshake. Neither runs user code; events go to the connection's lane through the
  ``EventSink``.
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
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

if sys.platform == "linux":
    import fcntl
    import termios

    _SIOCOUTQ: int | None = termios.TIOCOUTQ  # on a socket: its send queue's unsent bytes
else:  # pragma: no cover - not Linux
    _SIOCOUTQ = None

from ._errors import BusinessError, ErrorCode, unknown_error
from ._frames import CloseCode, FrameParser, Opcode, ProtocolError
from ._handshake import (
    MAX_RESPONSE_HEAD,
    HandshakeError,
    HeadTooLarge,
    Response,
    build_request,
    check_response,
    new_key,
    parse_response,
)
from ._heartbeat import Heartbeat
from ._messages import Close, Event, Message, MessageAssembler, Ping, take_small_messages
from ._options import CloseSpec, ConnectOptions
from ._promise import Promise
from ._proxy import proxy_environment, resolve_proxy
from ._state import State, check_transition
from ._threads import connection_threads, opening_pace, opening_threads, run_named
from ._timer import TimerHandle, call_later
from ._transport import ConnectError, open_stream
from ._types import CloseResult, OpenResult, WebSocketOpenInfo
from ._url import Target
from ._writer import FrameWriter, Outgoing

__all__ = ["ClientConnection", "Connection", "ConnectionObserver", "EventSink", "read_head"]

logger = logging.getLogger("ohws")

# recv() allocates its whole buffer before it blocks, and an idle connection is blocked there.
# After a read that emptied the socket the next one asks for twice what that read brought,
# within [_RECV_IDLE, _RECV_IDLE_MAX]: 256 bytes is a small object for Python's allocator
# where 2 KiB took a malloc chunk per connection (SPEC 6 scale), and messages up to 8 KiB
# still come in one read. While reads come back full the size grows x4, up to _RECV_MAX.
_RECV_IDLE, _RECV_IDLE_MAX, _RECV_MAX = 256, 16 * 1024, 128 * 1024
_thread_numbers = itertools.count(1)


class EventSink:
    """Where a connection sends its events: the facade turns them into lane jobs."""

    def emit(self, event: str, *args: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def emit_message(self, data: str | bytes) -> None:  # pragma: no cover - interface
        """Deliver ``message`` then ``dataEnd``."""
        raise NotImplementedError

    def drain(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the events emitted so far have been delivered (SPEC 4.7).

        ``fn`` may run on any thread, and runs at once when those events will never be
        delivered. The default has nothing to wait for.
        """
        fn()


def _connect_failed(detail: str, status: int = 0) -> BusinessError:
    return BusinessError.of(ErrorCode.CONNECT_FAILED, detail, str(status))


class _Lost(Exception):
    """The connection ended without a close handshake; the message says why."""


class _PeerClosing(Exception):
    """The peer's close frame arrived: nothing after it is read as frames."""

    def __init__(self, close: Close) -> None:
        super().__init__(close)
        self.close = close


class Connection:
    """The connection engine, for either end (SPEC sections 4 and 11).

    A subclass opens the stream and does its side of the opening handshake
    (:meth:`_handshake`); everything after it (frames, messages, heartbeat, close handshake
    and close sequencing) is this class, the same for client and server. ``start()`` runs
    it on its own reader thread.
    """

    #: who is at the other end, for messages; and whether we mask (only a client does).
    _peer = "server"
    _client = True
    #: the pool whose threads run the opening (``_run``)
    _openers = opening_threads
    # Slots, not a __dict__: one of these lives as long as each connection (SPEC 6 scale).
    __slots__ = (
        "_abort_requested",
        "_answered",
        "_claimed",
        "_close_grace",
        "_close_mark",
        "_close_out",
        "_close_received",
        "_close_sent",
        "_close_timer",
        "_close_waiters",
        "_close_when_open",
        "_drain_timer",
        "_failure",
        "_heartbeat",
        "_local_close",
        "_lock",
        "_lost_reason",
        "_open_reported",
        "_open_timed_out",
        "_open_timeout",
        "_open_timer",
        "_options",
        "_reply_queued",
        "_sink",
        "_sock",
        "_status",
        "_writer",
        "number",
        "state",
        "was_open",
    )

    def __init__(self, options: ConnectOptions, sink: EventSink, open_timeout: float) -> None:
        self._options = options
        self._sink = sink
        self._open_timeout = open_timeout
        self.number = next(_thread_numbers)  # names its threads: ohws-open-/reader-/writer-<n>

        self._lock = threading.Lock()
        self.state = State.CONNECTING
        self._writer = FrameWriter(self, mask=self._client)
        self._sock: socket.socket | None = None
        self._abort_requested = False  # close() while CONNECTING
        # A server's 101 is on its way: for the peer the connection is open, so a close() from
        # now on waits for OPEN and closes it properly (SPEC 11: stop() closes with 1001).
        self._answered = False
        self._close_when_open: CloseSpec | None = None
        self._claimed = False  # the opening was taken up by its thread, or given up before
        self._open_timed_out = False
        self._local_close: CloseSpec | None = None  # what our close() sent
        self._failure: ProtocolError | None = None  # what we failed the connection with
        self._close_received: Close | None = None
        self._reply_queued = False  # our answer to the peer's close or to its protocol error
        self._close_sent = False
        # The bytes the peer had taken when the close timer was armed (_taken_by_peer), and
        # whether the timer waits on once more because a slow peer was still reading
        self._close_mark = 0
        self._close_grace = False
        self._close_out: threading.Event | None = None  # the reader waits for our close frame
        self._close_waiters: list[Promise[bool]] | None = None  # made by the first close()
        self._drain_timer: TimerHandle | None = None  # bounds the wait for the lane (SPEC 4.7)
        self._close_timer: TimerHandle | None = None
        self._lost_reason: str | None = None  # set by the heartbeat before it aborts the socket
        self._heartbeat: Heartbeat | None = None  # the running read loop's
        self._status = 0  # the HTTP status of the opening handshake's response, once known
        self.was_open = False
        self._open_reported = False  # the open events are out (a crash after it is a lost connection)
        self._open_timer: TimerHandle | None = None

    def start(self) -> None:
        # The deadline counts from now: a wait for an opening thread is part of the opening.
        self._open_timer = call_later(self._open_timeout, self._on_open_timeout)
        self._openers.submit(run_named, f"ohws-open-{self.number}", self._run)

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

    def close(self, spec: CloseSpec, promise: Promise[bool] | None = None) -> None:
        """Start (or join) the close; ``promise`` resolves True once CLOSED."""
        reply = deferred = False
        with self._lock:
            state = self.state
            if state is State.CLOSED:
                error: BusinessError | None = unknown_error("the connection is already closed")
            else:
                error = None
                if promise is not None:
                    if self._close_waiters is None:
                        self._close_waiters = []
                    self._close_waiters.append(promise)
                if state is State.CONNECTING and self._answered:
                    deferred = True
                    if self._close_when_open is None:
                        self._close_when_open = spec
                elif state is State.CONNECTING:
                    self._abort_requested = True
                    sock = self._sock
                    waiting, self._claimed = not self._claimed, True
                elif state is State.OPEN:
                    # The peer's close (or its protocol error) waiting for the lane: answer now.
                    reply = self._close_received is not None or self._failure is not None
                    if not reply:
                        self._set_state(State.CLOSING)
                        self._local_close = spec
                        self._arm_close_timer()
        if error is not None:
            if promise is not None:
                promise._reject(error)
        elif deferred:
            pass  # _open() closes with it once OPEN
        elif state is State.CONNECTING:
            if waiting:
                self._give_up_waiting()
            elif sock is None:
                self._settle_open_now()
            else:
                _abort(sock)
        elif reply:
            self._send_close_reply()
        elif state is State.OPEN:
            self._stop_heartbeat()
            self._writer.submit(Opcode.CLOSE, _close_payload(spec.code, spec.reason))

    def unasked_end(self) -> int | None:
        """The close code of an end the application did not ask for, once it is known: the
        peer's close code (1005 without one) or 1006 once the connection was lost. None while
        open, and for a close by the application or a failure by us (SPEC 14)."""
        with self._lock:
            if self._local_close is not None or self._failure is not None:
                return None
            if self._close_received is not None:
                return self._close_received.code or int(CloseCode.NO_STATUS)
            if self.state is State.CLOSED and self.was_open:
                return int(CloseCode.ABNORMAL)
        return None

    # ------------------------------------------------------------------ helpers
    def _set_state(self, new: State) -> None:
        assert self._lock.locked(), "state changes happen under _lock"
        check_transition(self.state, new)
        self.state = new

    def close_written(self) -> None:
        """Our close frame is out (writing thread): hang up if the handshake is now complete."""
        with self._lock:
            self._close_sent = True
            hang_up = self._close_received is not None or self._failure is not None
            sock, waiting = self._sock, self._close_out
        if waiting is not None:
            waiting.set()
        if hang_up:
            # Both close frames are exchanged (or we are failing the connection):
            # RFC 6455 7.1.1 lets us close TCP now (a server should be first to).
            _abort(sock)

    def write_failed(self, exc: OSError) -> None:
        """A write failed: make sure the reader notices the broken connection."""
        _abort(self._sock)
        self._stop_waiting_for_the_close_frame()

    def _stop_heartbeat(self) -> None:
        """Our close frame is on its way, and the close timer bounds what follows. No ping can
        be written after that frame, so the heartbeat would take a peer that is still reading
        our queued sends, and sends nothing, for a dead one."""
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.stop()

    def _taken_by_peer(self) -> tuple[int, int]:
        """Bytes of ours the peer's side has taken (written to the socket, less those still in
        its send queue; where that is unknown, all written ones), and those still queued."""
        unsent = _unsent(self._sock)
        return self._writer.bytes_written - unsent, unsent

    def _arm_close_timer(self) -> None:
        assert self._lock.locked()
        if self._close_timer is None:
            self._close_mark, _ = self._taken_by_peer()
            self._close_timer = call_later(self._options.close_timeout, self._on_close_timeout)

    def _on_close_timeout(self) -> None:
        """closeTimeout ran out. A peer that has stopped reading, or has our close frame and
        has not answered, is aborted now. One that took at least ``_CLOSE_PROGRESS`` more bytes
        of what we sent before our close frame since the timer was armed gets another
        closeTimeout, and once it has the close frame one more to answer it (``closeTimeout:
        0`` aborts at once, always)."""
        with self._lock:
            if self.state is State.CLOSED:
                return
            self._close_timer = None
            if self._options.close_timeout > 0:
                taken, unsent = self._taken_by_peer()
                delivered = self._close_sent and unsent == 0
                reading = taken - self._close_mark >= _CLOSE_PROGRESS and not delivered
                if reading or (delivered and self._close_grace):
                    self._close_grace = reading
                    self._arm_close_timer()
                    return
            sock = self._sock
        _abort(sock)
        self._stop_waiting_for_the_close_frame()

    def _stop_waiting_for_the_close_frame(self) -> None:
        """Our close frame will not be written (the socket is aborted, or a write failed): a
        reader waiting for it goes on, and one that comes to wait later does not wait."""
        with self._lock:
            waiting = self._close_out
            if waiting is None:
                self._close_out = _ALREADY_SET
                return
        waiting.set()

    def _await_close_frame(self) -> None:
        """The peer's TCP stream ended after its close frame (or its protocol error) and before
        ours went out. It may have shut down only its sending side and still read: our replies
        and our close frame go out first (SPEC 4.7, RFC 6455 5.5.1). Wait until that frame is
        written, or a failed write or the close timer (always armed by then, after the lane's
        drain timer at the latest) abandons it."""
        with self._lock:
            if self._close_sent:
                return
            if self._close_out is None:
                self._close_out = threading.Event()
            waiting = self._close_out
        waiting.wait()

    def _on_open_timeout(self) -> None:
        with self._lock:
            if self.state is not State.CONNECTING:
                return
            self._open_timed_out = True
            sock = self._sock
            waiting, self._claimed = not self._claimed, True
        if waiting:
            self._give_up_waiting()
        elif sock is None:
            # connectTimeout bounds the whole opening (SPEC 7), also a step nothing of ours can
            # interrupt; the thread ends by that step's own timeout. A reconnecting WebSocket's
            # next attempt waits for it (ReconnectSession.terminated).
            self._settle_open_now()
        else:
            _abort(sock)

    def _settle_open_now(self) -> None:
        """close() or connectTimeout came while the opening thread is in a step that no socket
        of ours can interrupt yet (a name lookup, websocket-client's TCP connect or an HTTP
        proxy's CONNECT, a SOCKS negotiation): the attempt ends here and now; the thread, when
        that step returns, closes its socket."""
        self._fail_open(_connect_failed("aborted during the opening"), on_opening_thread=False)

    def _give_up_waiting(self) -> None:
        """close() or connectTimeout came while the opening still waited for a thread (the
        pool is at its cap): it ends here and now, on the caller's thread, and never starts."""
        try:
            self._fail_open(_connect_failed("timed out waiting for an opening thread"))
        finally:
            self._terminated()

    def _register_socket(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            doomed = self._abort_requested or self._open_timed_out
        if doomed:
            _abort(sock)

    # ------------------------------------------------------------------ opening (per role)
    def _handshake(self) -> bytes:  # pragma: no cover - interface
        """Open the stream and do this side's opening handshake; return the bytes read past it.

        Raise BusinessError on failure.
        """
        raise NotImplementedError

    def _opened(self) -> None:  # pragma: no cover - interface
        """OPEN now: emit the opening events."""
        raise NotImplementedError

    def _report_open_failure(self, error: BusinessError, aborted: bool) -> None:  # pragma: no cover
        """The opening failed (``aborted``: by close()); everything is torn down already."""
        raise NotImplementedError

    # ------------------------------------------------------------------ reader thread
    def _run(self) -> None:
        """The opening, on an ``ohws-open-<n>`` thread; the reading then goes on a reader
        thread that has done nothing else. The handshake's deep call stack (name lookup,
        TLS, HTTP parsing) stays on the few opening threads instead of leaving its pages
        resident on every reader thread: ~3 KB less per open connection."""
        with self._lock:
            given_up, self._claimed = self._claimed, True
        if given_up:
            return  # by close() or connectTimeout while it waited for this thread
        try:
            rest = self._open()
        except Exception:  # a bug; report it rather than hang (tests/test_faults.py forces one)
            self._crashed()
            return
        if rest is None:
            self._terminated()
        else:
            connection_threads.submit(run_named, f"ohws-reader-{self.number}", self._read, rest)

    def _read(self, rest: bytes) -> None:
        try:
            self._read_loop(rest)
        except Exception:
            self._crashed()
        else:
            self._terminated()

    def _crashed(self) -> None:
        """A bug in a connection thread: report it rather than hang. Before the open was
        reported it is a failed opening (never retried: the bug would repeat), after it a lost
        connection; a crash while ending reports nothing twice. The connect promise settles."""
        logger.exception("ohws: connection thread failed")
        error = _connect_failed("internal error in the connection thread")
        try:
            self._crash_is_final()
            with self._lock:
                state, reported = self.state, self._open_reported
            if state is State.CLOSED:
                pass  # it crashed while ending, which reported what it could
            elif reported:
                self._finish(error=error, result=CloseResult(1006, "internal error"))
            else:
                self._fail_open(error)
            self._settle_opening(error)
        finally:
            self._terminated()

    def _crash_is_final(self) -> None:
        """A crash ends the connection for good (a reconnecting client does not retry it)."""

    def _settle_opening(self, error: BusinessError) -> None:
        """Settle what the opening left unsettled (the connect promise): after a crash, or a
        settling that a KeyboardInterrupt cut short."""

    def _terminated(self) -> None:
        """Called last on the connection's own thread, once nothing of it runs any more."""

    def _open(self) -> bytes | None:
        """Handshake; on success emit the open events and return the bytes read past the head."""
        try:
            rest = self._handshake()
        except BusinessError as exc:
            failure: BusinessError | None = exc
        else:
            failure = None
        finally:
            timer, self._open_timer = self._open_timer, None
            if timer is not None:
                timer.cancel()
        with self._lock:
            if failure is None and (self._abort_requested or self._open_timed_out):
                failure = _connect_failed("timed out during the opening handshake", self._status)
            if failure is None:
                assert self._sock is not None
                self._sock.settimeout(None)
                self._set_state(State.OPEN)
                self.was_open = True
                self._writer.attach(self._sock)
            close_spec, self._close_when_open = self._close_when_open, None
        if failure is not None:
            self._fail_open(failure)
            return None
        self._opened()
        self._open_reported = True
        if close_spec is not None:
            self.close(close_spec)
        return rest

    def _fail_open(self, error: BusinessError, on_opening_thread: bool = True) -> None:
        """The attempt failed or was aborted: settle everything, then report it. Off the
        opening thread (``_settle_open_now``) a socket it registered meanwhile is only shut
        down: that thread may be using it, and closes it in its own call, which finds the
        attempt settled and only makes sure the connect promise is (it is, unless a
        KeyboardInterrupt cut the first call short)."""
        with self._lock:
            settled = self.state is State.CLOSED
            sock = self._sock
            if on_opening_thread:
                self._sock = None
            if not settled:
                aborted = self._abort_requested and not self._open_timed_out
                self._set_state(State.CLOSED)
                waiters, self._close_waiters = self._close_waiters or [], None
                timer, self._open_timer = self._open_timer, None
        if not on_opening_thread:
            _abort(sock)  # that thread may be using it: it closes it in its own call
            sock = None
        if settled:
            _abort(sock)
            _close_socket(sock)
            self._settle_opening(error)
            return
        try:
            if timer is not None:
                timer.cancel()
            # The socket is shut down before the writer stops: after a crash once OPEN, a
            # write may be under way.
            pending = self._tear_down(sock)
            self._report_open_failure(error, aborted)
            _reject_all(pending, unknown_error("the connection failed before it opened"))
        finally:
            _settle_ending(sock, waiters)

    def _read_loop(self, rest: bytes) -> None:
        sock = self._sock
        assert sock is not None
        options = self._options
        parser = FrameParser(options.max_message_size, from_client=not self._client)
        assembler = MessageAssembler(options.max_message_size)
        heartbeat = Heartbeat(
            options.ping_interval,
            options.pong_timeout,
            self._send_ping,
            self._on_heartbeat_lost,
        )
        self._heartbeat = heartbeat
        heartbeat.start()
        emit_message, recv, received = self._sink.emit_message, sock.recv, heartbeat.received
        masked, max_size = not self._client, options.max_message_size
        data: bytes = rest
        event: Event | None = None
        size = _RECV_IDLE
        try:
            while True:
                while data:
                    if not parser.buffered and not assembler.in_message:
                        # Whole small messages straight out (the common read); the rest, if
                        # any, goes through the parser.
                        taken = take_small_messages(data, emit_message, masked, max_size)
                        if taken:
                            data = data[taken:]
                            if not data:
                                break
                    # Of a frame begun in an earlier read, only its rest goes to the parser when
                    # its size is known: small whole messages may follow it (a burst of them
                    # seldom ends a read on a frame boundary).
                    missing = parser.missing()
                    if 0 < missing < len(data):
                        parser.feed(data[:missing])
                        after = data[missing:]
                    else:
                        parser.feed(data)
                        after = b""
                    while (frame := parser.next_frame()) is not None:
                        event = assembler.receive(frame)
                        if isinstance(event, Message):
                            # One lane job per message: measured faster than batching a
                            # whole read, since the callbacks start while parsing goes on.
                            emit_message(event.data)
                        elif isinstance(event, Ping):
                            self._writer.submit(Opcode.PONG, event.payload)
                        elif isinstance(event, Close):
                            raise _PeerClosing(event)
                    # The read is let go of only now, after the frames it completed: freed
                    # before a large frame's payload was joined, it made glibc give that
                    # memory back and fault it in again for every 1 MiB message (big1m -22 %).
                    data = after
                # Not kept while blocked in recv: the last message may be large.
                event = None
                data = recv(size)
                got = len(data)
                if got >= size:
                    size = min(size * 4, _RECV_MAX)
                else:
                    size = min(max(got * 2, _RECV_IDLE), _RECV_IDLE_MAX)
                if not data:
                    raise _Lost(
                        self._lost_reason
                        or f"the {self._peer} closed the TCP connection without a close frame"
                    )
                received()
        except _PeerClosing as exc:
            done = self._peer_ending(close=exc.close)
        except ProtocolError as exc:
            done = self._peer_ending(failure=exc)
        except _Lost as exc:
            return self._finish_closed(lost=str(exc))
        except (OSError, ValueError) as exc:
            # ValueError: the socket was closed under us (abort while reading).
            return self._finish_closed(lost=self._lost_reason or f"connection lost ({exc})")
        finally:
            heartbeat.stop()
        if not done:
            _read_until_eof(sock)
            self._await_close_frame()
        return self._finish_closed()

    def _send_ping(self, payload: bytes) -> None:
        self._writer.submit(Opcode.PING, payload)

    def _on_heartbeat_lost(self, why: str) -> None:
        """Timer thread: no sign of life in time; wake the reader, which reports ``why``."""
        self._lost_reason = why
        _abort(self._sock)

    def _peer_ending(self, close: Close | None = None, failure: ProtocolError | None = None) -> bool:
        """The peer's close frame arrived, or it broke the protocol (RFC 6455 7.1.7: we fail
        the connection with ``failure.code``). True when the close handshake is complete.

        Otherwise our close frame is queued once the lane has run the callbacks for what came
        before (SPEC 4.7), at the latest after ``closeTimeout``; the reader meanwhile reads on,
        to see EOF. TCP is closed once our close frame is out.
        """
        with self._lock:
            if close is not None:
                self._close_received = close
            if failure is not None:
                self._failure = failure
            if self._close_sent:
                return True
            if self._local_close is not None:
                return False  # our close frame is on its way; its writer hangs up
            self._drain_timer = call_later(self._options.close_timeout, self._send_close_reply)
        self._sink.drain(self._send_close_reply)
        return False

    def _send_close_reply(self) -> None:
        """Queue our close frame answering the peer's close or protocol error, once."""
        with self._lock:
            if self._reply_queued or self._local_close is not None or self.state is State.CLOSED:
                return
            self._reply_queued = True
            self._set_state(State.CLOSING)
            if self._drain_timer is not None:
                self._drain_timer.cancel()
            self._arm_close_timer()
            failure, received = self._failure, self._close_received
        self._stop_heartbeat()
        if failure is not None:
            payload = _close_payload(failure.code, failure.reason)
        else:
            assert received is not None
            payload = b"" if received.code is None else struct.pack("!H", received.code)
        self._writer.submit(Opcode.CLOSE, payload)

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
            waiters, self._close_waiters = self._close_waiters or [], None
            sock = self._sock
            for timer in (self._close_timer, self._drain_timer):
                if timer is not None:
                    timer.cancel()
        try:
            pending = self._tear_down(sock)
            if pending:
                _reject_all(
                    pending,
                    unknown_error(f"the connection to the {self._peer} closed before the message was sent"),
                )
        finally:  # also after a bug in the teardown (Connection._crashed logs it): CLOSED is news
            try:
                if error is not None:
                    self._sink.emit("error", error)
                self._sink.emit("close", None, result)
            finally:
                _settle_ending(sock, waiters)
                self._ended()

    def _tear_down(self, sock: socket.socket | None) -> list[Outgoing]:
        """The socket shut down, the writer stopped, the socket closed; return the frames never
        written (their promises are the caller's to reject)."""
        _abort(sock)
        pending = self._writer.stop()
        _close_socket(sock)
        return pending

    def _ended(self) -> None:
        """Called last, once the connection that was open has ended and reported it."""


class ConnectionObserver:
    """Told of one client connection's opening and ending (the reconnecting session)."""

    def opened(self, connection: ClientConnection) -> None: ...

    def open_failing(self, connection: ClientConnection) -> None:
        """Before the failed attempt's ``error`` event: a final failure settles the state."""

    def open_failed(self, connection: ClientConnection, error: BusinessError) -> None: ...

    def ended(self, connection: ClientConnection) -> None: ...

    def terminated(self, connection: ClientConnection) -> None:
        """The connection's last thread is done with it (``connection.done`` is set): also
        after an attempt that ``connectTimeout`` settled while a step of it still waited."""


class ClientConnection(Connection):
    """One connect() call's connection: the client side of the opening handshake."""

    __slots__ = (
        "_connect_promise",
        "_observer",
        "_protocol",
        "_response",
        "_ssl_context",
        "_target",
        "done",
        "retryable",
    )

    def __init__(
        self,
        target: Target,
        options: ConnectOptions,
        ssl_context: ssl.SSLContext | None,
        sink: EventSink,
        connect_promise: Promise[bool] | None,
        observer: ConnectionObserver | None = None,
    ) -> None:
        super().__init__(options, sink, options.connect_timeout)
        self._target = target
        self._ssl_context = ssl_context
        self._connect_promise = connect_promise
        self._observer = observer
        self.done = False  # its last thread is done with it
        self._response: Response | None = None  # also kept when it refused the upgrade
        self._protocol: str | None = None
        #: whether another attempt could succeed after this one failed (SPEC 14)
        self.retryable = True
        self.start()

    @property
    def observer(self) -> ConnectionObserver | None:
        """Who is told of this connection's opening and ending (its reconnecting session)."""
        return self._observer

    @property
    def retry_after(self) -> str | None:
        """The ``Retry-After`` header of a 429 or 503 that refused the upgrade, if any: the
        answers whose Retry-After the next attempt honours (SPEC 14)."""
        response = self._response
        if response is None or response.status not in (429, 503):
            return None
        values = response.values("retry-after")
        return values[0] if values else None

    def _handshake(self) -> bytes:
        """Open the stream and do the opening handshake; raise BusinessError(200) on failure."""
        options, target = self._options, self._target
        started = time.monotonic()
        deadline = started + options.connect_timeout
        # The opening's waits on the network (connect, TLS, the server's answer) are measured
        # apart from its CPU work: opening_pace sizes the number of openings at once by them.
        network_wait = None
        try:
            environ = proxy_environment() if options.proxy == "system" else {}  # read only if used
            route = resolve_proxy(options.proxy, target.host, target.secure, environ)
            sock = open_stream(
                target, route, self._ssl_context, options.connect_timeout, self._register_socket
            )
            connected = time.monotonic()
            self._register_socket(sock)
            key = new_key()
            sock.settimeout(max(deadline - connected, 0.001))
            sock.sendall(build_request(target, options, key))
            asked = time.monotonic()
            head, rest = read_head(sock, deadline, MAX_RESPONSE_HEAD)
            network_wait = (connected - started) + (time.monotonic() - asked)
            response = parse_response(head)
            self._status, self._response = response.status, response
            self._protocol = check_response(response, key, options.protocols)
            return rest
        except ConnectError as exc:
            self.retryable = not exc.final
            raise _connect_failed(str(exc)) from None
        except HandshakeError as exc:
            # No response at all (the stream ended first) is a network failure: worth a retry.
            status = exc.status
            self.retryable = self._response is None or status >= 500 or status in (408, 429)
            raise _connect_failed(f"handshake rejected: {exc.detail}", exc.status) from None
        except (TimeoutError, OSError) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({exc})"
            raise _connect_failed(f"{why} during the opening handshake", self._status) from None
        finally:
            # A failed opening counts whole: it waited on the network for most of it.
            opening_pace.record(time.monotonic() - started if network_wait is None else network_wait)

    def _opened(self) -> None:
        response, sink = self._response, self._sink
        assert response is not None
        if self._observer is not None:
            self._observer.opened(self)
        sink.emit("headerReceive", response.headers)
        sink.emit("open", None, OpenResult(response.status, response.reason))
        sink.emit("openInfo", None, WebSocketOpenInfo(response.status, response.reason, self._protocol))
        if self._connect_promise is not None:
            self._connect_promise._resolve(True)
        self._connect_promise = self._response = None  # settled, reported: not kept per connection

    def _ended(self) -> None:
        if self._observer is not None:
            self._observer.ended(self)

    def _on_open_timeout(self) -> None:
        # An opening that outlasts connectTimeout waited on the network, or for a thread behind
        # openings that do: the pace hears of it now, not only once a step nothing can
        # interrupt returns (a name lookup: after the resolver's own timeout), so that the
        # openings after it do not queue behind stuck ones for that long.
        if self.state is State.CONNECTING:
            opening_pace.record(self._options.connect_timeout)
        super()._on_open_timeout()

    def _terminated(self) -> None:
        self.done = True
        if self._observer is not None:
            self._observer.terminated(self)

    def _crash_is_final(self) -> None:
        self.retryable = False

    def _settle_opening(self, error: BusinessError) -> None:
        if self._connect_promise is not None:
            self._connect_promise._reject(error)

    def _report_open_failure(self, error: BusinessError, aborted: bool) -> None:
        if aborted:
            if self._connect_promise is not None:
                self._connect_promise._reject(
                    unknown_error("close() was called before the connection opened")
                )
            return
        if self._open_timed_out and error.code == ErrorCode.CONNECT_FAILED:
            limit = self._options.connect_timeout
            error = _connect_failed(
                f"timed out after {limit:.3g}s (connectTimeout) connecting to {self._target.url}",
                int(error.data or 0),
            )
        if self._observer is not None:
            self._observer.open_failing(self)
        self._sink.emit("error", error)
        if self._connect_promise is not None:
            self._connect_promise._reject(error)
        if self._observer is not None:
            self._observer.open_failed(self, error)


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


#: what a peer must take of our sends in each closeTimeout while we close, not to be taken for
#: one that has stopped reading (16 KiB: 3.2 KB/s at the default 5 s): a peer trickling less
#: would hold a close, and a server's stop(), open for hours
_CLOSE_PROGRESS = 16 * 1024
#: a wait for our close frame that is over before it begins
_ALREADY_SET = threading.Event()
_ALREADY_SET.set()


def _unsent(sock: socket.socket | None) -> int:
    """Bytes in the socket's send queue the peer has not taken yet (Linux ``SIOCOUTQ``; 0
    where unknown: then only the writer's own progress counts)."""
    if sock is None or _SIOCOUTQ is None:
        return 0
    try:
        return int.from_bytes(fcntl.ioctl(sock.fileno(), _SIOCOUTQ, bytes(4)), sys.byteorder, signed=True)
    except (OSError, ValueError):
        return 0


def _settle_ending(sock: socket.socket | None, waiters: list[Promise[bool]]) -> None:
    """The last of an ending, also after a bug raised in it (``Connection._crashed`` reports
    that): the socket is closed (again: a no-op) and nobody waits for CLOSED for ever."""
    _close_socket(sock)
    for waiter in waiters:
        waiter._resolve(True)


def _close_socket(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def _read_until_eof(sock: socket.socket) -> None:
    """Read and drop whatever comes until the peer or a timer ends the stream."""
    with contextlib.suppress(OSError, ValueError):
        while sock.recv(65536):
            pass


def read_head(sock: socket.socket, deadline: float, limit: int, peer: str = "server") -> tuple[bytes, bytes]:
    """Read an HTTP head; return it (without the blank line) and the bytes after it.

    Raises HeadTooLarge past ``limit`` bytes, TimeoutError past ``deadline``, and
    HandshakeError when the peer closes the stream first.
    """
    buf = b""
    while True:
        end = buf.find(b"\r\n\r\n")
        if 0 <= end <= limit:
            return buf[:end], buf[end + 4 :]
        if len(buf) > limit:
            raise HeadTooLarge(f"the HTTP head is larger than {limit} bytes")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("handshake deadline passed")
        sock.settimeout(remaining)
        chunk = sock.recv(16384)
        if not chunk:
            raise HandshakeError(f"the {peer} closed the connection during the handshake")
        buf += chunk
