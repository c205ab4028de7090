"""The send side of a connection: whole frames, in call order, control frames only between
frames (RFC 6455 5.4). Driven on a real socket pair; the writer thread's pool is held so that
what the writer thread finds queued is fixed by the test, not by the scheduler."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

import ohws._writer
from ohws._frames import FrameParser, Opcode
from ohws._promise import Promise
from ohws._threads import Pool
from ohws._writer import FrameWriter

from .servers import TIMEOUT


class _Owner:
    """What a connection provides its writer: a number to name the thread, two reports."""

    number = 0

    def __init__(self) -> None:
        self.closes_written = 0

    def close_written(self) -> None:
        self.closes_written += 1

    def write_failed(self, exc: OSError) -> None:
        raise AssertionError(f"a write failed: {exc}")


@pytest.fixture
def held_writer_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[Pool]:
    """The pool writer threads start on, with no thread allowed until ``release`` is called."""
    pool = Pool("test-writer-", max_workers=0)
    monkeypatch.setattr(ohws._writer, "connection_threads", pool)
    yield pool
    pool.max_workers = None


def _release(pool: Pool) -> None:
    """Let the writer thread start (a submit starts a worker, which takes the oldest job)."""
    pool.max_workers = None
    pool.submit(lambda: None)


def _stop(writer: FrameWriter, sock: socket.socket) -> None:
    """As a connection ends: the socket shut down first, then the writer stopped."""
    sock.shutdown(socket.SHUT_RDWR)
    writer.stop()


def _frames(sock: socket.socket, count: int) -> list[tuple[Opcode, bytes]]:
    """The first ``count`` frames a client wrote, read as a server reads them."""
    parser = FrameParser(from_client=True)
    frames: list[tuple[Opcode, bytes]] = []
    sock.settimeout(TIMEOUT)
    while len(frames) < count:
        data = sock.recv(1 << 20)
        assert data, "the writer's end closed"
        parser.feed(data)
        while (frame := parser.next_frame()) is not None:
            frames.append((frame.opcode, frame.payload))
    return frames


def test_a_control_frame_waits_for_the_rest_of_a_frame_already_begun(held_writer_pool: Pool) -> None:
    """A ping (or a pong) queued while a data frame is only partly written goes out after that
    frame's last byte, not inside it; so does a second data frame."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = FrameWriter(_Owner())
        writer.attach(ours)
        try:
            big = os.urandom(8 * 1024 * 1024)  # more than the socket takes at once
            written = writer.submit(Opcode.BINARY, big, Promise)
            assert isinstance(written, Promise), "the frame went out whole: nothing to test"
            writer.submit(Opcode.PING, b"between frames")
            writer.submit(Opcode.TEXT, b"after", Promise)
            _release(held_writer_pool)
            assert _frames(theirs, 3) == [
                (Opcode.BINARY, big),
                (Opcode.PING, b"between frames"),
                (Opcode.TEXT, b"after"),
            ]
            assert written.result(TIMEOUT) is True
        finally:
            _stop(writer, ours)


def test_control_frames_go_ahead_of_queued_data_frames(held_writer_pool: Pool) -> None:
    """Between frames, a pong does not wait behind megabytes of queued messages."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = FrameWriter(_Owner())
        writer.attach(ours)
        try:
            first, second = os.urandom(4 * 1024 * 1024), os.urandom(1024)
            assert isinstance(writer.submit(Opcode.BINARY, first, Promise), Promise)
            writer.submit(Opcode.BINARY, second, Promise)
            writer.submit(Opcode.PONG, b"alive")
            _release(held_writer_pool)
            assert _frames(theirs, 3) == [
                (Opcode.BINARY, first),
                (Opcode.PONG, b"alive"),
                (Opcode.BINARY, second),
            ]
        finally:
            _stop(writer, ours)
