"""RFC 6455 framing, sans I/O: a frame parser and an encoder, for either end of a connection.

The parser enforces the framing rules a client must (RFC 6455 section 5): unmasked server
frames, no reserved bits (no extension is ever negotiated), known opcodes, short unfragmented
control frames, minimal-form 64-bit lengths, and the receive size limit, which is checked
from the frame header before any payload is buffered. Pure: no I/O (but for masking keys).
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

__all__ = ["CloseCode", "Frame", "FrameParser", "Opcode", "ProtocolError", "encode_frame", "encode_unmasked"]


class Opcode(IntEnum):
    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """Close codes ohws itself produces (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009


class ProtocolError(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to fail the connection with."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(f"{reason} ({int(code)})")
        self.code = code
        self.reason = reason


class Frame(NamedTuple):
    """One parsed frame (a tuple: built and unpacked on the hot path)."""

    fin: bool
    opcode: Opcode
    payload: bytes


_OPCODE_OF: list[Opcode | None] = [None] * 16
for _op in Opcode:
    _OPCODE_OF[_op] = _op
_MAX_CONTROL_PAYLOAD = 125
_BIG_PAYLOAD = 4096  # above this, copy through a memoryview (one copy instead of two)
_LARGE_FRAME = 65536  # a frame with at least this much payload, not all here, is collected apart


class FrameParser:
    """Turns the byte stream from a peer into frames.

    ``feed(data)`` then call ``next_frame()`` until it returns None. ``max_payload`` (0 for
    no limit) rejects a frame whose announced length exceeds it, before reading its payload.
    A client parses server frames (never masked); ``from_client=True`` parses the frames a
    server receives (always masked) and unmasks them.
    """

    __slots__ = ("_buf", "_from_client", "_max_payload", "_parts", "_parts_size", "_pos", "_want")

    def __init__(self, max_payload: int = 0, *, from_client: bool = False) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._max_payload = max_payload
        self._from_client = from_client
        # A large frame's bytes are kept as the reads brought them (from its header on) and
        # joined once it is complete: growing the buffer to the frame's size took fresh memory,
        # page by page, for every such frame, since the buffer is let go of once consumed.
        self._parts: list[bytes] | None = None
        self._parts_size = 0
        # The size of the frame begun, header included, once next_frame() has read its length
        # (0 otherwise): what missing() tells the reader, and a large frame's target.
        self._want = 0

    def feed(self, data: bytes) -> None:
        if self._parts is not None:
            self._parts.append(data if type(data) is bytes else bytes(data))  # kept: not the caller's
            self._parts_size += len(data)
            return
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as frames."""
        return len(self._buf) - self._pos + self._parts_size

    def missing(self) -> int:
        """How many more bytes complete the frame begun in the buffer; 0 when none is begun or
        its length is not all here yet (its size is then unknown)."""
        return self._want - self.buffered if self._want else 0

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None if more bytes are needed. May raise ProtocolError."""
        if self._parts is not None:
            return self._large_frame()
        buf, pos = self._buf, self._pos
        available = len(buf) - pos
        if available < 2:
            if not available and pos:
                buf.clear()  # all consumed: an idle connection keeps none of the bytes it read
                self._pos = 0
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        if b0 & 0x70:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension")
        raw_opcode = b0 & 0x0F
        opcode = _OPCODE_OF[raw_opcode]
        if opcode is None:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode 0x{raw_opcode:x}")
        fin = bool(b0 & 0x80)
        masked = bool(b1 & 0x80)
        if masked != self._from_client:
            what = "frame from the server is masked" if masked else "frame from the client is not masked"
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, what)
        length = b1 & 0x7F
        header = 2
        if raw_opcode >= 8 and (not fin or length > _MAX_CONTROL_PAYLOAD):
            what = "fragmented" if not fin else f"{length}-byte"
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"{what} control frame")
        if length == 126:
            if available < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, pos + 2)
            header = 4
            if length < 126:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "length not in minimal form")
        elif length == 127:
            if available < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, pos + 2)
            header = 10
            if length >> 63:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "64-bit length has its top bit set")
            if length < 65536:
                raise ProtocolError(CloseCode.PROTOCOL_ERROR, "length not in minimal form")
        if self._max_payload and length > self._max_payload:
            raise ProtocolError(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame of {length} bytes exceeds maxMessageSize {self._max_payload}",
            )
        if masked:
            header += 4
        end = pos + header + length
        if len(buf) < end:
            self._want = header + length
            if length >= _LARGE_FRAME and available >= header:
                self._parts, self._parts_size = [bytes(buf[pos:])], len(buf) - pos
                buf.clear()
                self._pos = 0
            return None
        if length > _BIG_PAYLOAD:
            with memoryview(buf) as view:
                payload = view[pos + header : end].tobytes()
        else:
            payload = bytes(buf[pos + header : end])
        if masked:
            payload = apply_mask(payload, bytes(buf[pos + header - 4 : pos + header]))
        self._pos, self._want = end, 0
        return Frame(fin, opcode, payload)

    def _large_frame(self) -> Frame | None:
        """The large frame being collected, once all of it is here (its header is valid)."""
        parts = self._parts
        assert parts is not None
        extra = self._parts_size - self._want
        if extra < 0:
            return None
        first = parts[0]
        b0, b1 = first[0], first[1]
        # A payload this large always has the 64-bit length form (minimal form, RFC 6455 5.2).
        header = self._want - int.from_bytes(first[2:10], "big")
        following: list[bytes] = []  # what came after the frame in the same reads
        while extra:
            last = parts.pop()
            if len(last) <= extra:
                following.append(last)
                extra -= len(last)
            else:
                parts.append(last[: len(last) - extra])
                following.append(last[len(last) - extra :])
                extra = 0
        parts[0] = first[header:]
        payload = b"".join(parts)
        self._parts, self._parts_size, self._want = None, 0, 0
        for data in reversed(following):
            self._buf += data
        if b1 & 0x80:
            payload = apply_mask(payload, first[header - 4 : header])
        opcode = _OPCODE_OF[b0 & 0x0F]
        assert opcode is not None  # checked with the header
        return Frame(bool(b0 & 0x80), opcode, payload)


_NATIVE = sys.byteorder


def py_apply_mask(data: bytes, mask: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` repeated (the same operation masks and unmasks)."""
    n = len(data)
    if not n:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, _NATIVE) ^ int.from_bytes(key, _NATIVE)).to_bytes(n, _NATIVE)


apply_mask: Callable[[bytes, bytes], bytes]
try:  # the C version from the websockets package: ~10x faster on large payloads
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets without its compiled extension
    apply_mask = py_apply_mask


def encode_frame(opcode: Opcode, payload: bytes, fin: bool = True, *, mask: bool = True) -> bytes:
    """One frame: masked as a client sends it, or unmasked (``mask=False``) as a server does."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    bit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack("!BB", b0, bit | n)
    elif n < 65536:
        header = struct.pack("!BBH", b0, bit | 126, n)
    else:
        header = struct.pack("!BBQ", b0, bit | 127, n)
    if not mask:
        return header + payload
    key = _mask_key()
    return b"".join((header, key, apply_mask(payload, key)))


# Masking keys come from the OS's CSPRNG 4 KiB at a time, as Node's ws does (RFC 6455 5.3:
# a strong source of entropy). os.urandom(4) per frame cost a system call that lets go of the
# GIL: with many busy threads the sending thread then queued for it again on every frame.
_KEYS_CHUNK = 4096
_keys_lock = threading.Lock()
_keys = b""
_keys_at = 0


def _mask_key() -> bytes:
    global _keys, _keys_at
    with _keys_lock:
        if _keys_at >= len(_keys):
            _keys, _keys_at = os.urandom(_KEYS_CHUNK), 0
        at = _keys_at
        _keys_at = at + 4
        return _keys[at : at + 4]


def encode_unmasked(opcode: Opcode, payload: bytes) -> bytes:
    """One whole frame as a server sends it."""
    return encode_frame(opcode, payload, mask=False)
