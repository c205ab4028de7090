"""A scripted raw-socket WebSocket client, for tests that make a server face misbehaviour.

It writes the upgrade request and the frames byte for byte (masked unless told otherwise)
and reads the server's frames, asserting that they are unmasked.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct

from .servers import TIMEOUT, RawSocket, frame_bytes

MASK = b"\x11\x22\x33\x44"


def upgrade_request(
    port: int, *, key: str | None = None, extra: str = "", first_line: str = "GET / HTTP/1.1"
) -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    return (
        f"{first_line}\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


class RawClient(RawSocket):
    def __init__(self, port: int) -> None:
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
        self.port = port

    def handshake(self, extra: str = "") -> str:
        """Send an upgrade request; return the response head (asserting a 101)."""
        self.sock.sendall(upgrade_request(self.port, extra=extra))
        head = self.read_head()
        assert head.startswith("HTTP/1.1 101 "), head
        return head

    def read_head(self) -> str:
        while b"\r\n\r\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"server closed before the head ended: {self._buf!r}")
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        return head.decode("latin-1")

    def read_all(self) -> bytes:
        """Everything until the server closes (the head included, if not read yet)."""
        data = self._buf
        with contextlib.suppress(ConnectionResetError):
            while chunk := self.sock.recv(65536):
                data += chunk
        self._buf = b""
        return data

    def send_frame(self, opcode: int, payload: bytes = b"", fin: bool = True, **kwargs: object) -> None:
        kwargs.setdefault("mask", MASK)
        self.sock.sendall(frame_bytes(opcode, payload, fin, **kwargs))  # type: ignore[arg-type]

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(0x8, struct.pack("!H", code) + reason.encode())

    def recv_frame(self) -> tuple[int, bytes]:
        """One server frame: (opcode, payload). Asserts the server did not mask it."""
        b0, b1 = self._read_exact(2)
        assert not b1 & 0x80, "server frames must not be masked"
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        return b0 & 0x0F, self._read_exact(length)

    def frames_until_close(self) -> tuple[list[tuple[int, bytes]], int | None]:
        """Data frames up to the server's close frame, and that frame's code."""
        frames = []
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x8:
                return frames, struct.unpack("!H", payload[:2])[0] if payload else None
            if opcode in (0x1, 0x2):
                frames.append((opcode, payload))
