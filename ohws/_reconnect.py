"""Reconnecting (SPEC 14, extension option ``reconnect``): the rules, and the session that
keeps one WebSocket connected across drops.

The rules are pure functions: which endings reconnect, how long to wait before attempt *k*
(exponential backoff with jitter, ``Retry-After`` honoured up to ``maxDelay``). The
:class:`ReconnectSession` owns the attempts: it watches each :class:`ClientConnection` (as its
``ConnectionObserver``), schedules the next one on the shared timer, keeps sends made while
no connection is open and flushes them after the next ``open``.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import _policy
from ._connection import ClientConnection, ConnectionObserver, EventSink
from ._errors import BusinessError, ErrorCode, unknown_error
from ._frames import Opcode
from ._options import CloseSpec, ReconnectSpec
from ._promise import Promise
from ._state import State
from ._timer import TimerHandle, call_later
from ._types import ReconnectInfo

__all__ = ["RECONNECTING_CODES", "ReconnectSession", "backoff_delay", "parse_retry_after"]

#: the ends the application did not ask for that reconnect: a lost connection and the peer's
#: going away, internal error, restart, try again later and bad gateway.
RECONNECTING_CODES = frozenset({1006, 1001, 1011, 1012, 1013, 1014})


def backoff_delay(spec: ReconnectSpec, attempt: int, draw: Callable[[float, float], float]) -> float:
    """The wait before attempt ``attempt`` (from 1): exponential, capped, then jittered."""
    try:
        grown = spec.initial_delay * spec.factor ** (attempt - 1)
    except OverflowError:  # past a float's range (attempt ~1,025 at factor 2): maxDelay long since
        grown = spec.max_delay if spec.initial_delay else 0.0
    return min(spec.max_delay, grown) * draw(1 - spec.jitter, 1 + spec.jitter)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or an HTTP date), None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


@dataclass(slots=True)
class _Pending:
    opcode: Opcode
    payload: bytes
    promise: Promise[bool]


class ReconnectSession(ConnectionObserver):
    """One WebSocket's connection across reconnects.

    ``connect(observer)`` makes a new ClientConnection (no connect promise: that settles once,
    for the first attempt); ``publish`` tells the facade which connection is current. Events go
    to ``sink``: the connections' own, plus ``reconnect`` and the final ``error``.
    """

    def __init__(
        self,
        spec: ReconnectSpec,
        sink: EventSink,
        connect: Callable[[ReconnectSession], ClientConnection],
        publish: Callable[[ClientConnection], None],
        check_policy: Callable[[], None],
        on_over: Callable[[], None] = lambda: None,
    ) -> None:
        self._spec = spec
        self._sink = sink
        self._connect = connect
        self._publish = publish
        self._check_policy = check_policy
        # Reconnecting is over, given up or closed between connections: the receive queue ends
        # unless a close event still will end it
        self._on_over = on_over
        self._lock = threading.Lock()
        self._attempt = 0  # attempts since the connection was last open
        self._gap = False  # no open connection, and another attempt is planned or running
        self._over = False  # closed by the application, or reconnecting gave up
        self._ever_opened = False  # a first connect that fails is not retried
        self._timer: TimerHandle | None = None
        self._pending: list[_Pending] = []
        self._stopped: list[_Pending] | None = None  # a final failed attempt's, until it is reported
        # The session's latest connection (None: the facade's first one), which close() acts
        # on and the next attempt follows; and whether that attempt waits for its thread:
        # connectTimeout settles an attempt whose step nothing can interrupt (a name lookup)
        # before that step returns, and one WebSocket holds one such thread at most.
        self._current: ClientConnection | None = None
        self._deferred = False
        self._draw = random.uniform

    # ------------------------------------------------------------------ facade side
    def reconnecting(self, connection: ClientConnection) -> bool:
        """Whether the facade should read CONNECTING: an end that reconnects is known."""
        with self._lock:
            if self._over:
                return False
            if self._gap:
                return True
        return connection.unasked_end() in RECONNECTING_CODES

    def send(
        self,
        connection: ClientConnection,
        opcode: Opcode,
        payload: bytes,
        make_promise: Callable[[], Promise[bool]],
    ) -> Promise[bool] | None:
        """``ClientConnection.send`` for the session: a send made once a reconnecting end is
        known is kept for the next connection; otherwise the session's latest connection takes
        it (``connection``, the one the caller read, may have been replaced since: a send to
        it would be rejected, or kept for a reconnect that already happened)."""
        with self._lock:
            latest = self._current or connection
            # One lock section with the append: an opened() between the check and the append
            # flushed the kept sends without this one, which then waited for the next drop.
            if not self._over and (self._gap or latest.unasked_end() in RECONNECTING_CODES):
                promise = make_promise()
                self._pending.append(_Pending(opcode, payload, promise))
                return promise
        return latest.send(opcode, payload, make_promise)

    def close(self, connection: ClientConnection, spec: CloseSpec, promise: Promise[bool]) -> None:
        """The application's close(): no more attempts; a wait is cancelled at once. It acts on
        the session's latest connection: an attempt started since the caller looked is closed."""
        with self._lock:
            seen = self._current or connection
        reconnecting = self.reconnecting(seen)
        with self._lock:
            # A drop since the look above has reached ended() if the gap has begun.
            reconnecting = reconnecting or self._gap
            self._over = True
            self._gap = False
            current = self._current or connection
            timer, self._timer = self._timer, None
            pending, self._pending = self._pending, []
        if timer is not None:
            timer.cancel()
        _reject(pending, "close() was called before the connection reopened")
        if current.state is State.CLOSED and (reconnecting or current is not seen):
            promise._resolve(True)  # between attempts, or an attempt that failed meanwhile
        else:
            current.close(spec, promise)
        if reconnecting:
            # The dropped connection's close event went by while reconnecting (the receive
            # queue went on), and an attempt that never opened has none: the queue ends now
            # (on_over does nothing if that close event is still to come; and a connection
            # that has reopened since is not reconnecting: its own close event ends it).
            self._on_over()

    # ------------------------------------------------------------------ ConnectionObserver
    def opened(self, connection: ClientConnection) -> None:
        """Reader thread, before the open events: flush what was sent meanwhile, in order."""
        with self._lock:
            self._ever_opened = True
            self._attempt = 0
            self._gap = False
            pending, self._pending = self._pending, []
            for item in pending:
                outcome = connection.send(item.opcode, item.payload, lambda: Promise(None))
                if outcome is None:
                    item.promise._resolve(True)
                else:
                    item.promise._adopt(outcome)

    def open_failing(self, connection: ClientConnection) -> None:
        """An attempt failed, its ``error`` not out yet: if it is final, CLOSED before it."""
        if not self._ever_opened or not connection.retryable:
            self._stopped = self._stop()  # the attempt's error is the final one

    def open_failed(self, connection: ClientConnection, error: BusinessError) -> None:
        """An attempt failed (its ``error`` is out): plan the next one, unless it was final."""
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            self._end(stopped, None)
        else:
            self._plan(parse_retry_after(connection.retry_after, time.time()), error, connection)

    def ended(self, connection: ClientConnection) -> None:
        """A connection that was open has ended (its ``close`` is out): reconnect if asked."""
        if connection.unasked_end() in RECONNECTING_CODES:
            with self._lock:
                over = self._over
                self._gap = not over
            if over:
                # close() came while this close event went by the receive queue as a
                # reconnecting one (after the queue looked, before this call): it ends here.
                self._on_over()
                return
            self._plan(None, None, connection)

    def terminated(self, connection: ClientConnection) -> None:
        """The thread of the connection the next attempt follows is done: a deferred attempt
        starts now."""
        with self._lock:
            if not self._deferred or connection is not self._current or self._over:
                return
            self._deferred = False
            self._timer = call_later(0, self._try)

    # ------------------------------------------------------------------ attempts
    def _plan(
        self, retry_after: float | None, last_error: BusinessError | None, previous: ClientConnection
    ) -> None:
        spec = self._spec
        with self._lock:
            if self._over:
                return
            self._current = previous
            self._attempt += 1
            attempt = self._attempt
            if 0 <= spec.max_retries < attempt:
                exhausted = True
            else:
                exhausted = False
                delay = backoff_delay(spec, attempt, self._draw)
                if retry_after is not None:
                    delay = min(max(delay, retry_after), spec.max_delay)
        if exhausted:
            tried = attempt - 1
            cause = f": {last_error}" if last_error is not None else ""
            self._give_up(
                BusinessError.of(
                    ErrorCode.CONNECT_FAILED, f"gave up reconnecting after {tried} attempt(s){cause}"
                )
            )
            return
        self._sink.emit("reconnect", ReconnectInfo(attempt, delay))
        with self._lock:
            if not self._over:
                self._timer = call_later(delay, self._try)

    def _try(self) -> None:
        """Timer thread: the next attempt, once the previous connection's thread is done."""
        with self._lock:
            self._timer = None
            if self._over:
                return
            previous = self._current
            if previous is not None and not previous.done:
                self._deferred = True  # terminated() starts it
                return
        try:
            self._check_policy()
        except BusinessError as exc:
            self._give_up(exc)
            return
        with self._lock:
            # Under the lock close() takes: a close() since the check ends it here, a later
            # one finds the new connection. (Not the publish: the facade's lock comes first.)
            if self._over:
                return
            connection = self._current = self._connect(self)
        self._publish(connection)

    def _give_up(self, error: BusinessError | None) -> None:
        stopped = self._stop()
        if stopped is not None:
            self._end(stopped, error)

    def _stop(self) -> list[_Pending] | None:
        """Over (state CLOSED): return the sends still kept, or None if it was over already."""
        with self._lock:
            if self._over:
                return None
            self._over = True
            self._gap = False
            pending, self._pending = self._pending, []
            return pending

    def _end(self, pending: list[_Pending], error: BusinessError | None) -> None:
        """Report the end of reconnecting: the final error, the sends that will never go."""
        if error is not None:
            self._sink.emit("error", error)
        _reject(pending, "reconnecting stopped before the message was sent")
        if self._ever_opened:
            self._on_over()


def _reject(pending: list[_Pending], why: str) -> None:
    for item in pending:
        item.promise._reject(unknown_error(why))


def check_reconnect_policy(host: str) -> Callable[[], None]:
    """The network policy, checked again before every attempt (201, 2302998)."""

    def check() -> None:
        _policy.check_permission()
        _policy.check_domain(host)

    return check
