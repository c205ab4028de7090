"""Real loopback peers for the tests.

* :func:`websockets_server` — the ``websockets`` threaded server with a handler, for normal
  behaviour (a well-kept, independent RFC 6455 implementation).
* :class:`RawServer` — a scripted raw-socket server for misbehaviour: the script gets a
  :class:`RawPeer` and does the handshake and the framing by hand, byte for byte.

Both listen on 127.0.0.1 port 0 and signal readiness before the test goes on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import queue
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from websockets.sync.server import ServerConnection, serve

TIMEOUT = 10.0  # every wait in the tests is bounded by this
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@contextlib.contextmanager
def websockets_server(handler: Callable[[ServerConnection], None], **kwargs: Any) -> Iterator[str]:
    """Run ``handler`` per connection; yield the ``ws://`` URL (``wss://`` with ``ssl=``)."""
    kwargs.setdefault("compression", None)
    scheme = "wss" if kwargs.get("ssl") is not None else "ws"
    server = serve(handler, "127.0.0.1", 0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, name="test-websockets-server", daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()
        thread.join(TIMEOUT)


def die_with_parent() -> None:
    """``preexec_fn`` for helper processes: SIGTERM them when the test process dies, even
    abruptly, so that no server or proxy outlives a crashed test run (Linux only)."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def interruptible_child() -> None:
    """``preexec_fn`` for a command a test interrupts with SIGINT, as Ctrl-C would: SIGINT at
    its default (a test run started in the background by a shell ignores it, and so would its
    children, and Python then installs no KeyboardInterrupt handler), and dying with the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    die_with_parent()


def read_line(stream: IO[str], timeout: float = TIMEOUT) -> str:
    """One line of a helper process's output, failing the test after ``timeout`` seconds
    (``readline()`` alone waits forever for a child that hangs before printing)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), name="test-read-line", daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line of output within {timeout}s") from None


def echo(connection: ServerConnection) -> None:
    """Echo every message back, text as text and binary as binary."""
    for message in connection:
        connection.send(message)


class RawSocket:
    """One end of a raw TCP connection in a test: buffered exact reads, waiting for EOF."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(TIMEOUT)
        self._buf = b""

    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the peer closed the connection")
            self._buf += chunk
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def expect_eof(self) -> bool:
        """True when the peer closes TCP within TIMEOUT (data before EOF is discarded)."""
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:  # a reset is a close too
            return True
        return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class RawPeer(RawSocket):
    """The server side of one accepted TCP connection, driven by a test script."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.request_head = b""

    # -- handshake -------------------------------------------------------------------
    def read_request(self) -> dict[str, str]:
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("client closed before sending its request")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        self.request_head = head
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        headers[":request-line"] = lines[0]
        return headers

    def handshake(
        self,
        status: str = "101 Switching Protocols",
        extra: list[tuple[str, str]] | None = None,
        accept: str | None = None,
        request: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """Read the request (unless given, already read) and answer it; a 101 carries the
        right accept key unless given."""
        request = request or self.read_request()
        lines = [f"HTTP/1.1 {status}"]
        if status.startswith("101"):
            key = request["sec-websocket-key"].encode()
            good = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept or good}"]
        else:
            lines += ["Content-Length: 0"]
        lines += [f"{name}: {value}" for name, value in extra or []]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return request

    # -- frames ----------------------------------------------------------------------
    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        fin: bool = True,
        rsv: int = 0,
        mask: bytes | None = None,
        length: int | None = None,
    ) -> None:
        """Send one frame exactly as described (``length`` may lie about the payload)."""
        self.sock.sendall(frame_bytes(opcode, payload, fin, rsv, mask, length))

    def send_text(self, text: str) -> None:
        self.send_frame(0x1, text.encode())

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        self.send_frame(0x8, payload)

    def _recv_header(self) -> tuple[int, int, bytes]:
        """A client frame's first byte, payload length and mask. Asserts the client masked it."""
        b0, b1 = self._read_exact(2)
        assert b1 & 0x80, "client frames must be masked"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        return b0, length, self._read_exact(4)

    def recv_frame(self) -> tuple[int, bool, bytes]:
        """One client frame, unmasked: (opcode, fin, payload). Asserts the client masked it."""
        b0, length, mask = self._recv_header()
        data = self._read_exact(length)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        return b0 & 0x0F, bool(b0 & 0x80), payload

    def recv_frame_size(self) -> tuple[int, int]:
        """One client frame with its payload skipped: (opcode, payload length), for frames too
        big for :meth:`recv_frame` to unmask in good time."""
        b0, length, _ = self._recv_header()
        self._read_exact(length)
        return b0 & 0x0F, length

    def recv_until(self, opcode: int) -> tuple[int, bool, bytes]:
        """Skip frames until one with ``opcode`` (e.g. skip pings while waiting for a close)."""
        while True:
            frame = self.recv_frame()
            if frame[0] == opcode:
                return frame

    def answer_close(self, code: int = 1000) -> bool:
        """Wait for the client's close frame (skipping what comes before it) and answer it;
        True once the client then closes TCP."""
        self.recv_until(0x8)
        self.send_close(code)
        return self.expect_eof()


def frame_bytes(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
    length: int | None = None,
) -> bytes:
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack("!BB", b0, mask_bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", b0, mask_bit | 126, n)
    else:
        header = struct.pack("!BBQ", b0, mask_bit | 127, n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        header += mask
    return header + payload


class RawServer:
    """Accepts connections on 127.0.0.1:0 and runs ``script(peer)`` for each, in a thread.

    Whatever the script returns goes to ``results``; an exception it raises goes there too,
    so a test can assert on the server side with :meth:`result`. Leaving the ``with`` block
    waits for the scripts and re-raises the first exception no :meth:`result` call took, so
    a server-side assertion (e.g. "client frames must be masked") is never lost.
    """

    def __init__(
        self, script: Callable[[RawPeer], Any], connections: int = 1, receive_buffer: int | None = None
    ) -> None:
        self._script = script
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if receive_buffer is not None:  # inherited by the accepted sockets: a small TCP window
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(TIMEOUT)
        self.port = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.results: queue.Queue[Any] = queue.Queue()
        self.accepted = 0  # connections accepted so far
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, args=(connections,), daemon=True)
        self._accepting.start()

    def _accept(self, connections: int) -> None:
        for _ in range(connections):
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(RawPeer(sock),), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, peer: RawPeer) -> None:
        try:
            self.results.put(self._script(peer))
        except BaseException as exc:
            self.results.put(exc)
        finally:
            peer.close()

    def result(self) -> Any:
        """The script's return value; re-raises what the script raised."""
        outcome = self.results.get(timeout=TIMEOUT)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._listener.close()
        for thread in self._threads:
            thread.join(TIMEOUT)
        if exc_type is not None:
            return  # the block's own failure comes first
        running = [thread for thread in self._threads if thread.is_alive()]
        assert not running, f"a server script still runs {TIMEOUT}s after the block"
        while not self.results.empty():
            outcome = self.results.get_nowait()
            if isinstance(outcome, BaseException):
                raise outcome
