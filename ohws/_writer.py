"""Writing one connection's frames: in call order, whole frames only, never blocking the caller.

A frame is written by the thread that submits it when nothing is queued ahead of it and the
socket takes it at once (``MSG_DONTWAIT``): no thread hand-off and no promise object on the
common path. Whatever cannot go out at once (a full socket buffer, TLS, frames queued before
the connection opened, frames behind others) is queued and written by the connection's
``ohws-writer-<n>`` thread, which starts only when first needed. Pings and pongs go before
queued data frames (but after the rest of a frame already begun); nothing goes after the
close frame.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ._errors import unknown_error
from ._frames import Opcode, encode_frame, encode_unmasked
from ._promise import Promise
from ._threads import connection_threads, run_named

__all__ = ["FrameWriter", "Outgoing", "WriterOwner"]

_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
_PIECE = 64 * 1024  # the most the writer thread hands to one blocking send
_CONTROL = (Opcode.PING, Opcode.PONG)


class WriterOwner(Protocol):
    """The connection a writer reports to (one reference, not two bound methods each)."""

    number: int  # names the writer thread: ohws-writer-<number>

    def close_written(self) -> None:
        """Our close frame is out (on the writing thread)."""

    def write_failed(self, exc: OSError) -> None:
        """A write failed: the connection is broken."""


@dataclass(slots=True)
class Outgoing:
    opcode: Opcode
    payload: bytes
    promise: Promise[bool] | None  # None for control and close frames
    rest: bytes | None = None  # what is left of an encoded frame after a partial write


class FrameWriter:
    """The send side of one connection. ``submit`` may be called from any thread.

    ``_lock`` guards everything below it; ``_changed()`` (a condition on the same lock, made
    when first waited on) wakes the writer thread and the rare waiters of ``stop``.
    """

    __slots__ = (
        "_close_submitted",
        "_condition",
        "_control",
        "_direct",
        "_encode",
        "_lock",
        "_owner",
        "_queue",
        "_sock",
        "_stopped",
        "_thread_done",
        "_waiters",
        "_writing",
        "buffered_amount",
        "bytes_written",
        "close_written",
    )

    def __init__(
        self,
        owner: WriterOwner,
        *,
        mask: bool = True,
    ) -> None:
        self._owner = owner
        # A client masks what it sends, a server does not (RFC 6455 5.1).
        self._encode: Callable[[Opcode, bytes], bytes] = encode_frame if mask else encode_unmasked
        self._lock = threading.Lock()
        self._condition: threading.Condition | None = None  # see _changed()
        # Lists, not deques: usually empty, and an empty deque costs ~700 bytes per connection.
        self._queue: list[Outgoing] = []  # data frames, then the close frame
        self._control: list[Outgoing] = []  # pings and pongs
        self._sock: socket.socket | None = None
        self._direct = False
        self._writing = False  # a thread is writing to the socket right now
        self._stopped = False
        self._close_submitted = False
        self._waiters = 0  # threads in stop()
        self.close_written = False
        self.buffered_amount = 0
        #: bytes written to the socket so far (the close timer's measure of a slow peer)
        self.bytes_written = 0
        self._thread_done: threading.Event | None = None  # set when the writer thread's job ends

    # ------------------------------------------------------------------ submitting
    def submit(
        self, opcode: Opcode, payload: bytes, make_promise: Callable[[], Promise[bool]] | None = None
    ) -> bool | Promise[bool]:
        """Write a frame now, or queue it.

        Returns False if refused (a close frame was already submitted, or the writer stopped),
        True once written, or, for a queued data frame, the promise made by ``make_promise``
        that settles when it is written. Control and close frames return True when queued.
        """
        with self._lock:
            if self._stopped or self._close_submitted:
                return False
            if opcode is Opcode.CLOSE:
                self._close_submitted = True
            if make_promise is not None:
                self.buffered_amount += len(payload)
            if self._writing or self._queue or self._control or not self._direct:
                queued = _outgoing(opcode, payload, make_promise)
                (self._control if opcode in _CONTROL else self._queue).append(queued)
                self._wake_locked()
                return queued.promise or True
            self._writing = True
            sock = self._sock
        assert sock is not None
        frame = self._encode(opcode, payload)
        try:
            sent = _send_nowait(sock, frame)
        except OSError as exc:
            failed = _outgoing(opcode, payload, make_promise)
            self._failed([failed], exc)
            return failed.promise or True
        with self._lock:
            self._writing = False
            self.bytes_written += sent
            if sent < len(frame):
                partial = _outgoing(opcode, payload, make_promise, frame[sent:])
                self._queue.insert(0, partial)
                self._wake_locked()
                return partial.promise or True
            if make_promise is not None:
                self.buffered_amount -= len(payload)
            if opcode is Opcode.CLOSE:
                self.close_written = True
            if self._queue or self._control or self._waiters:
                self._wake_locked()
        if opcode is Opcode.CLOSE:
            self._owner.close_written()
        return True

    def attach(self, sock: socket.socket) -> None:
        """The connection is open: frames may go out; what was queued meanwhile is flushed."""
        with self._lock:
            self._sock = sock
            self._direct = bool(_DONTWAIT) and not isinstance(sock, ssl.SSLSocket)
            if not self._direct or self._queue or self._control:
                self._wake_locked()

    def drop_data(self) -> list[Outgoing]:
        """Remove queued data frames (not yet started); their bytes stop counting as buffered."""
        with self._lock:
            dropped = [item for item in self._queue if item.promise is not None and item.rest is None]
            for item in dropped:
                self._queue.remove(item)
            self.buffered_amount -= sum(len(item.payload) for item in dropped)
            return dropped

    def stop(self) -> list[Outgoing]:
        """Stop writing; return frames never written. Call after the socket was shut down."""
        with self._lock:
            self._stopped = True
            self._notify_locked()
            if self._writing:
                self._waiters += 1
                # The socket is shut down (see above), so a write under way ends soon; after
                # it nobody touches the socket.
                self._changed().wait_for(lambda: not self._writing, 5.0)
                self._waiters -= 1
            done = self._thread_done
        if done is not None and threading.current_thread().name != f"ohws-writer-{self._owner.number}":
            done.wait()
        with self._lock:
            left = [*self._queue, *self._control]
            self._queue.clear()
            self._control.clear()
            self.buffered_amount = 0
        return left

    # ------------------------------------------------------------------ bookkeeping
    def _changed(self) -> threading.Condition:
        """The condition waiters wait on (under ``_lock``); made by the first waiter, so a
        connection that never waits (most of them) holds none."""
        if self._condition is None:
            self._condition = threading.Condition(self._lock)
        return self._condition

    def _notify_locked(self) -> None:
        if self._condition is not None:
            self._condition.notify_all()

    def _wake_locked(self) -> None:
        if self._sock is None:
            return  # not open yet: attach() flushes
        if self._thread_done is None:
            self._thread_done = threading.Event()
            connection_threads.submit(run_named, f"ohws-writer-{self._owner.number}", self._run)
        self._notify_locked()

    def _failed(self, items: list[Outgoing], exc: OSError) -> None:
        with self._lock:
            self._writing = False
            self.buffered_amount -= sum(len(item.payload) for item in items if item.promise is not None)
            self._notify_locked()
        self._owner.write_failed(exc)
        error = unknown_error(f"the message could not be written ({exc})")
        for item in items:
            if item.promise is not None:
                item.promise._reject(error)

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        try:
            self._write_until_done()
        finally:
            assert self._thread_done is not None
            self._thread_done.set()

    def _write_until_done(self) -> None:
        sock = self._sock
        assert sock is not None
        while True:
            with self._lock:
                while not self._stopped and (self._writing or not (self._queue or self._control)):
                    self._changed().wait()
                if self._stopped:
                    return
                self._writing = True
                queue = self._queue
                if queue and queue[0].rest is not None:
                    # The rest of a frame a direct send began goes first: control frames go
                    # between frames, never inside one (RFC 6455 5.4).
                    batch = [queue[0], *self._control, *queue[1:]]
                else:
                    batch = [*self._control, *queue]
                self._control.clear()
                queue.clear()
            frames = [
                item.rest if item.rest is not None else self._encode(item.opcode, item.payload)
                for item in batch
            ]
            try:
                _write_all_of(self, sock, frames[0] if len(frames) == 1 else b"".join(frames))
            except (OSError, ValueError) as exc:
                self._failed(batch, exc if isinstance(exc, OSError) else OSError(str(exc)))
                return
            with self._lock:
                self._writing = False
                self.buffered_amount -= sum(len(item.payload) for item in batch if item.promise is not None)
                close_written = any(item.opcode is Opcode.CLOSE for item in batch)
                self.close_written = self.close_written or close_written
                self._notify_locked()
            for item in batch:
                if item.promise is not None:
                    item.promise._resolve(True)
            if close_written:
                self._owner.close_written()
                return  # nothing may follow a close frame


def _write_all_of(writer: FrameWriter, sock: socket.socket, data: bytes) -> None:
    """``sock.sendall(data)`` in pieces of at most ``_PIECE`` bytes, each counted in
    ``bytes_written`` as they go: a blocking send returns only once all it was given is
    queued, so a slow peer's progress shows piece by piece (the close timer looks at it)."""
    if len(data) <= _PIECE:
        sock.sendall(data)
        writer.bytes_written += len(data)
        return
    with memoryview(data) as view:
        for start in range(0, len(data), _PIECE):
            piece = view[start : start + _PIECE]
            sock.sendall(piece)
            writer.bytes_written += len(piece)


def _outgoing(
    opcode: Opcode,
    payload: bytes,
    make_promise: Callable[[], Promise[bool]] | None,
    rest: bytes | None = None,
) -> Outgoing:
    return Outgoing(opcode, payload, None if make_promise is None else make_promise(), rest)


def _send_nowait(sock: socket.socket, frame: bytes) -> int:
    """Write what the socket takes without blocking; return the byte count."""
    try:
        sent = sock.send(frame, _DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return 0
    if sent < len(frame):
        view = memoryview(frame)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while sent < len(frame):
                sent += sock.send(view[sent:], _DONTWAIT)
    return sent
