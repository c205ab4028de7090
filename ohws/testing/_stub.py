"""``StubServer``: a scriptable WebSocket server on loopback for testing apps that use ohws.

It speaks RFC 6455 from raw sockets (with ohws's own frame codec), so it can also misbehave
on request: reject the handshake, drop TCP without a close frame, never answer pings.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._frames import FrameParser, Opcode, ProtocolError, encode_frame
from .._handshake import accept_key
from .._messages import Close, Message, MessageAssembler, Ping
from ._certs import make_loopback_certificate

__all__ = ["Fragmented", "Request", "StubServer"]

Data = str | bytes
_numbers = itertools.count(1)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Fragmented:
    """A message sent as several frames: ``Fragmented(["Hel", "lo"])`` or bytes parts."""

    parts: Sequence[Data]


@dataclass(frozen=True)
class Request:
    """An upgrade request the server received."""

    path: str
    headers: dict[str, str]


@dataclass
class _Peer:
    sock: socket.socket
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    close_sent: bool = False

    def write(self, data: bytes) -> None:
        with self.write_lock:
            if not self.closed:
                self.sock.sendall(data)

    def send_close(self, code: int | None, reason: str = "") -> None:
        payload = b"" if code is None else struct.pack("!H", code) + reason.encode()
        with self.write_lock:
            if not self.closed and not self.close_sent:
                self.close_sent = True
                self.sock.sendall(encode_frame(Opcode.CLOSE, payload, mask=False))


def _frames_of(message: Data | Fragmented) -> bytes:
    if isinstance(message, Fragmented):
        parts = list(message.parts)
        if not parts:
            raise ValueError("Fragmented needs at least one part")
        first = Opcode.TEXT if isinstance(parts[0], str) else Opcode.BINARY
        out = []
        for i, part in enumerate(parts):
            payload = part.encode() if isinstance(part, str) else bytes(part)
            out.append(
                encode_frame(first if i == 0 else Opcode.CONT, payload, i == len(parts) - 1, mask=False)
            )
        return b"".join(out)
    if isinstance(message, str):
        return encode_frame(Opcode.TEXT, message.encode(), mask=False)
    return encode_frame(Opcode.BINARY, bytes(message), mask=False)


class StubServer:
    """A WebSocket server on 127.0.0.1:0 for tests, scripted by its arguments and methods.

    Arguments (all optional):

    * ``echo`` (default True): send every message back.
    * ``messages``: sent right after the handshake (``str``, ``bytes`` or :class:`Fragmented`).
    * ``close``: ``(code, reason)`` sent after ``messages``.
    * ``drop``: close TCP without a close frame after ``messages``.
    * ``reject``: ``(status, headers)`` to answer the handshake with instead of 101.
    * ``headers``: extra response headers (a dict, or pairs to repeat a name).
    * ``subprotocol``: the subprotocol to select, or ``True`` for the client's first offer.
    * ``silent``: never answer pings.
    * ``tls``: serve ``wss://`` with a certificate made on the spot (needs ``trustme``:
      ``pip install ohws[testing]``); pass :attr:`client_options` to ``connect``.

    Everything received is recorded: :attr:`received` (messages), :attr:`requests`,
    :attr:`close_codes`, :attr:`pings` (payloads); :meth:`wait_for_messages` and
    :meth:`wait_for_pings` wait for them. :meth:`send`,
    :meth:`close_all` and :meth:`drop_all` act on the live connections.
    """

    def __init__(
        self,
        *,
        echo: bool = True,
        messages: Iterable[Data | Fragmented] = (),
        close: tuple[int, str] | None = None,
        drop: bool = False,
        reject: tuple[int, Mapping[str, str]] | None = None,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        subprotocol: str | bool | None = None,
        silent: bool = False,
        tls: bool = False,
    ) -> None:
        self.echo = echo
        self.messages = list(messages)
        self.close_with = close
        self.drop = drop
        self.reject = reject
        self.headers = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        self.subprotocol = subprotocol
        self.silent = silent
        self.received: list[Data] = []
        self.requests: list[Request] = []
        self.close_codes: list[int | None] = []
        self.pings: list[bytes] = []
        self._changed = threading.Condition()
        self._peers: list[_Peer] = []
        self._threads: list[threading.Thread] = []
        self._number = next(_numbers)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._context: ssl.SSLContext | None = None
        self.ca_path: str | None = None
        if tls:
            self._context = self._make_tls()
        self.url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}"
        self._accepting = threading.Thread(target=self._accept, name=f"ohws-stub-{self._number}", daemon=True)
        self._accepting.start()

    # ------------------------------------------------------------------ setup
    def _make_tls(self) -> ssl.SSLContext:
        self._tmp = tempfile.TemporaryDirectory(prefix="ohws-stub-")
        try:
            files = make_loopback_certificate(self._tmp.name)
        except ImportError as exc:  # pragma: no cover - the test extra installs trustme
            raise RuntimeError(f"StubServer(tls=True): {exc}") from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert_path, files.key_path)
        self.ca_path = files.ca_path
        return context

    @property
    def client_options(self) -> dict[str, Any]:
        """Options a client needs for this server (``caPath`` when it serves TLS)."""
        return {"caPath": self.ca_path} if self.ca_path else {}

    def __enter__(self) -> StubServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop listening, drop every connection, wait for the threads (bounded)."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        with contextlib.suppress(OSError):
            self._listener.close()
        self.drop_all()
        for thread in [self._accepting, *self._threads]:
            thread.join(10)
        if self.ca_path:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ recording
    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[Data]:
        """The first ``count`` messages received; raises TimeoutError if they do not come."""
        return self._wait_for(self.received, count, "messages", timeout)

    def wait_for_pings(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """The payloads of the first ``count`` pings received (answered unless ``silent``);
        raises TimeoutError if they do not come."""
        return self._wait_for(self.pings, count, "pings", timeout)

    def wait_for_close(self, timeout: float = 10.0) -> int | None:
        """The close code of the first closing handshake (None: closed without a code)."""
        return self._wait_for(self.close_codes, 1, "close frames", timeout)[0]

    def _wait_for(self, items: list[_T], count: int, what: str, timeout: float) -> list[_T]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(items) >= count, timeout):
                raise TimeoutError(f"{len(items)} of {count} {what} after {timeout}s")
            return list(items[:count])

    def _record(self, append: Callable[[Any], None], item: Any) -> None:
        with self._changed:
            append(item)
            self._changed.notify_all()

    # ------------------------------------------------------------------ live control
    def send(self, message: Data | Fragmented) -> None:
        """Send a message (or fragments) to every live connection."""
        for peer in list(self._peers):
            peer.write(_frames_of(message))

    def close_all(self, code: int = 1000, reason: str = "") -> None:
        """Start a closing handshake on every live connection."""
        for peer in list(self._peers):
            peer.send_close(code, reason)

    def drop_all(self) -> None:
        """Close every TCP connection at once, without a close frame."""
        for peer in list(self._peers):
            self._hang_up(peer)

    def _hang_up(self, peer: _Peer) -> None:
        with peer.write_lock:
            peer.closed = True
        with contextlib.suppress(OSError):
            socket.socket.shutdown(peer.sock, socket.SHUT_RDWR)

    # ------------------------------------------------------------------ serving
    def _accept(self) -> None:
        try:
            self._listener.settimeout(0.5)  # where shutdown() does not wake accept(), notice stop anyway
        except OSError:  # stop() came first
            return
        for n in itertools.count(1):
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                if self._listener.fileno() < 0:
                    return
                continue
            except OSError:
                return
            sock.settimeout(None)
            thread = threading.Thread(
                target=self._serve, args=(sock,), name=f"ohws-stub-{self._number}-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        peer: _Peer | None = None
        try:
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_side=True)
            peer = _Peer(sock)
            rest = self._handshake(peer)
            if rest is not None:
                self._run_script(peer)
                self._read_loop(peer, rest)
        except (OSError, ValueError, ProtocolError):
            pass
        finally:
            if peer is not None and peer in self._peers:
                self._peers.remove(peer)
            with contextlib.suppress(OSError):
                sock.close()

    def _handshake(self, peer: _Peer) -> bytes | None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = peer.sock.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        request = Request(lines[0].split(" ")[1] if " " in lines[0] else "/", headers)
        self._record(self.requests.append, request)
        if self.reject is not None:
            status, extra = self.reject
            response = [
                f"HTTP/1.1 {status} Rejected",
                "Content-Length: 0",
                *(f"{k}: {v}" for k, v in extra.items()),
            ]
            peer.write(("\r\n".join(response) + "\r\n\r\n").encode("latin-1"))
            return None
        response = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept_key(headers.get('sec-websocket-key', ''))}",
        ]
        offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        chosen = offered[0] if self.subprotocol is True and offered else self.subprotocol
        if isinstance(chosen, str):
            response.append(f"Sec-WebSocket-Protocol: {chosen}")
        response += [f"{name}: {value}" for name, value in self.headers]
        self._peers.append(peer)  # before the 101: once the client is open, send() reaches it
        peer.write(("\r\n".join(response) + "\r\n\r\n").encode("latin-1"))
        return rest

    def _run_script(self, peer: _Peer) -> None:
        for message in self.messages:
            peer.write(_frames_of(message))
        if self.close_with is not None:
            peer.send_close(*self.close_with)
        if self.drop:
            self._hang_up(peer)

    def _read_loop(self, peer: _Peer, rest: bytes) -> None:
        parser = FrameParser(from_client=True)
        assembler = MessageAssembler()
        data = rest
        while True:
            parser.feed(data)
            while (frame := parser.next_frame()) is not None:
                event = assembler.receive(frame)
                if isinstance(event, Message):
                    self._record(self.received.append, event.data)
                    if self.echo:
                        peer.write(_frames_of(event.data))
                elif isinstance(event, Ping):
                    if not self.silent:
                        peer.write(encode_frame(Opcode.PONG, event.payload, mask=False))
                    self._record(self.pings.append, event.payload)
                elif isinstance(event, Close):
                    self._record(self.close_codes.append, event.code)
                    peer.send_close(event.code)  # the echo, unless this side closed first
                    self._hang_up(peer)
                    return
            data = peer.sock.recv(65536)
            if not data:
                return
