"""The opening handshake, sans I/O (RFC 6455 section 4; SPEC 4.1).

Builds the upgrade request and checks the response. Unlike websocket-client's handshake,
repeated response headers are kept as lists, the reason phrase is kept, and the negotiated
subprotocol keeps the server's exact case. Pure: no I/O, no threads.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from ._options import ConnectOptions
from ._types import ResponseHeaders
from ._url import Target

__all__ = [
    "HandshakeError",
    "HeadTooLarge",
    "Response",
    "accept_key",
    "build_request",
    "check_response",
    "new_key",
    "parse_response",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_RESPONSE_HEAD = 64 * 1024
USER_AGENT = "ohws"


class HandshakeError(Exception):
    """The server's response does not open a WebSocket; ``status`` is its HTTP status or 0."""

    def __init__(self, detail: str, status: int = 0) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class HeadTooLarge(HandshakeError):
    """The HTTP head went past its size limit."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: ResponseHeaders

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower-case), in the order received."""
        value = self.headers.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def build_request(target: Target, options: ConnectOptions, key: str) -> bytes:
    """The upgrade request; user headers may replace Host, Origin and User-Agent."""
    custom = {name.lower() for name, _ in options.headers}
    lines = [f"GET {target.resource} HTTP/1.1"]
    defaults = (
        ("Host", target.host_header),
        ("Origin", target.origin(options.origin_port)),
        ("User-Agent", USER_AGENT),
    )
    lines += [f"{name}: {value}" for name, value in defaults if name.lower() not in custom]
    lines += [
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if options.protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(options.protocols)}")
    lines += [f"{name}: {value}" for name, value in options.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def parse_response(head: bytes) -> Response:
    """Parse the status line and headers (``head`` ends before the blank line)."""
    text = head.decode("iso-8859-1")  # never fails: every byte is a latin-1 character
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HandshakeError(f"malformed status line {status_line[:80]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers: ResponseHeaders = {}
    for line in rest.split("\r\n") if rest else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HandshakeError(f"malformed header line {line[:80]!r}", status)
        name, value = name.lower(), value.strip()
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            headers[name] = [previous, value]
    return Response(status, reason, headers)


def _tokens(response: Response, name: str) -> list[str]:
    return [t.strip().lower() for v in response.values(name) for t in v.split(",")]


def check_response(response: Response, key: str, offered: tuple[str, ...]) -> str | None:
    """Check an upgrade response; return the negotiated subprotocol (exact case) or None."""
    status = response.status
    if status != 101:
        phrase = f" {response.reason}" if response.reason else ""
        raise HandshakeError(f"server answered HTTP {status}{phrase} instead of 101", status)
    if "websocket" not in _tokens(response, "upgrade"):
        raise HandshakeError("response lacks 'Upgrade: websocket'", status)
    if "upgrade" not in _tokens(response, "connection"):
        raise HandshakeError("response lacks 'Connection: Upgrade'", status)
    accepts = response.values("sec-websocket-accept")
    if len(accepts) != 1 or accepts[0] != accept_key(key):
        raise HandshakeError("Sec-WebSocket-Accept does not match the key sent", status)
    if response.values("sec-websocket-extensions"):
        raise HandshakeError("server selected an extension that was not offered", status)
    selected = response.values("sec-websocket-protocol")
    if not selected:
        return None
    if len(selected) > 1 or selected[0].lower() not in {p.lower() for p in offered}:
        raise HandshakeError(
            f"server selected subprotocol {', '.join(selected)!r}, which was not offered", status
        )
    return selected[0]
