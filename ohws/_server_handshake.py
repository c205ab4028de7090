"""The server's side of the opening handshake, sans I/O (RFC 6455 section 4.2; SPEC section 11).

Parses the client's upgrade request strictly and builds the responses: ``101`` with the
accept key and the chosen subprotocol, or an error response whose status says what was
wrong (426, 400, 431, 503). Pure: no I/O, no threads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

from ._handshake import USER_AGENT, accept_key

__all__ = [
    "MAX_REQUEST_HEAD",
    "Rejection",
    "Request",
    "check_request",
    "error_response",
    "parse_request",
    "select_protocol",
    "switching_protocols",
]

#: a request head larger than this is answered 431.
MAX_REQUEST_HEAD = 16 * 1024
_UPGRADE_HEADERS = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


class Rejection(Exception):
    """The request does not open a WebSocket: answer ``status``; ``detail`` says why."""

    def __init__(self, status: int, detail: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = tuple(headers)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, list[str]] = field(default_factory=dict)  # lower-case name -> values

    def values(self, name: str) -> list[str]:
        return self.headers.get(name, [])

    def tokens(self, name: str) -> list[str]:
        """The comma-separated tokens of every ``name`` header, lower-cased."""
        return [t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()]


def parse_request(head: bytes) -> Request:
    """Parse the request line and headers (``head`` ends before the blank line); 400 if malformed."""
    text = head.decode("iso-8859-1")
    request_line, _, rest = text.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not all(parts) or not parts[2].startswith("HTTP/"):
        raise Rejection(HTTPStatus.BAD_REQUEST, f"malformed request line {request_line[:80]!r}")
    headers: dict[str, list[str]] = {}
    for line in rest.split("\r\n") if rest else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or any(c in name for c in " \t"):
            raise Rejection(HTTPStatus.BAD_REQUEST, f"malformed header line {line[:80]!r}")
        headers.setdefault(name.lower(), []).append(value.strip())
    return Request(parts[0], parts[1], parts[2], headers)


def check_request(request: Request) -> str:
    """Check an upgrade request; return its ``Sec-WebSocket-Key``, or raise Rejection."""
    if "websocket" not in request.tokens("upgrade"):
        raise Rejection(HTTPStatus.UPGRADE_REQUIRED, "not a WebSocket upgrade request", _UPGRADE_HEADERS)
    versions = request.values("sec-websocket-version")
    if versions != ["13"]:
        got = ", ".join(versions) or "none"
        raise Rejection(HTTPStatus.UPGRADE_REQUIRED, f"Sec-WebSocket-Version {got}, not 13", _UPGRADE_HEADERS)
    if request.method != "GET":
        raise Rejection(HTTPStatus.BAD_REQUEST, f"method {request.method[:20]!r}, not GET")
    if request.version not in ("HTTP/1.1",):
        raise Rejection(HTTPStatus.BAD_REQUEST, f"{request.version[:20]}, not HTTP/1.1")
    if len(request.values("host")) != 1:
        raise Rejection(HTTPStatus.BAD_REQUEST, "the request needs exactly one Host header")
    if "upgrade" not in request.tokens("connection"):
        raise Rejection(HTTPStatus.BAD_REQUEST, "Connection header lacks 'Upgrade'")
    keys = request.values("sec-websocket-key")
    if len(keys) != 1:
        raise Rejection(HTTPStatus.BAD_REQUEST, "the request needs exactly one Sec-WebSocket-Key")
    try:
        raw = base64.b64decode(keys[0], validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise Rejection(HTTPStatus.BAD_REQUEST, "Sec-WebSocket-Key is not 16 bytes in base64")
    return keys[0]


def select_protocol(request: Request, supported: Sequence[str]) -> str | None:
    """The first of the server's subprotocols that the client offers, if any."""
    offered = set(request.tokens("sec-websocket-protocol"))
    return next((p for p in supported if p.lower() in offered), None)


def switching_protocols(key: str, protocol: str | None) -> bytes:
    """The ``101`` response (no extension is ever accepted)."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    lines.append(f"Server: {USER_AGENT}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def error_response(status: int, detail: str, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    """A complete error response with a one-line text body; the connection closes after it."""
    body = (detail + "\n").encode("utf-8")
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines += [
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"Server: {USER_AGENT}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
