"""The opening handshake, sans I/O (RFC 6455 section 4; SPEC 4.1)."""

from __future__ import annotations

import pytest

from ohws._handshake import (
    HandshakeError,
    Response,
    accept_key,
    build_request,
    check_response,
    new_key,
    parse_response,
)
from ohws._options import parse_options
from ohws._url import parse_url


def test_accept_key_matches_rfc_example() -> None:
    """The accept key of RFC 6455's example key is the RFC's value."""
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert len(new_key()) == 24 and new_key() != new_key()


def test_request_lines() -> None:
    """The request carries the resource, Host, Origin, the WebSocket headers and user headers."""
    options = parse_options({"header": {"X-One": "1"}, "protocol": "chat, Super"})
    text = build_request(parse_url("ws://h:81/p?q=1"), options, "KEY").decode()
    lines = text.split("\r\n")
    assert lines[0] == "GET /p?q=1 HTTP/1.1"
    assert "Host: h:81" in lines
    assert "Origin: http://h:81" in lines  # RFC 6454: a non-default port is part of the origin
    assert "Upgrade: websocket" in lines
    assert "Connection: Upgrade" in lines
    assert "Sec-WebSocket-Key: KEY" in lines
    assert "Sec-WebSocket-Version: 13" in lines
    assert "Sec-WebSocket-Protocol: chat, Super" in lines
    assert "X-One: 1" in lines
    assert text.endswith("\r\n\r\n")


def test_user_header_replaces_host_and_origin() -> None:
    """A user Host or Origin header replaces the default instead of doubling it."""
    options = parse_options(
        {"header": {"Host": "virtual", "origin": "https://app"}, "supportOriginPort": True}
    )
    text = build_request(parse_url("ws://h:81"), options, "K").decode()
    assert text.count("Host:") + text.count("host:") == 1
    assert "Host: virtual" in text
    assert "origin: https://app" in text and "Origin: http" not in text


@pytest.mark.parametrize(
    ("url", "support_origin_port", "origin"),
    [
        ("wss://h:8443", None, "https://h:8443"),  # RFC 6454: a non-default port is kept
        ("ws://h", None, "http://h"),
        ("wss://h:8443", True, "https://h:8443"),
        ("wss://h", True, "https://h:443"),
        ("wss://h:8443", False, "https://h"),  # the native form
    ],
)
def test_origin_port_option(url: str, support_origin_port: bool | None, origin: str) -> None:
    """Origin as supportOriginPort says: not given -> RFC 6454, True -> always the port,
    False -> never."""
    options = {} if support_origin_port is None else {"supportOriginPort": support_origin_port}
    text = build_request(parse_url(url), parse_options(options), "K").decode()
    assert f"\r\nOrigin: {origin}\r\n" in text


def response(*headers: str, status: str = "101 Switching Protocols") -> Response:
    return parse_response(("\r\n".join([f"HTTP/1.1 {status}", *headers])).encode("latin-1"))


GOOD = ("Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Accept: {accept_key('K')}")


def test_parse_keeps_duplicates_in_order_and_reason_phrase() -> None:
    """Repeated headers become lists in arrival order; the reason phrase is kept."""
    parsed = response(
        "Set-Cookie: a=1",
        "X-Multi: one",
        "set-cookie: b=2",
        "X-Multi: two",
        "X-Single: s",
        status="101 Go Ahead",
    )
    assert parsed.reason == "Go Ahead"
    assert parsed.headers["set-cookie"] == ["a=1", "b=2"]
    assert parsed.headers["x-multi"] == ["one", "two"]
    assert parsed.headers["x-single"] == "s"


def test_check_accepts_good_response_and_keeps_protocol_case() -> None:
    """A correct 101 passes; the selected subprotocol keeps the server's case."""
    assert check_response(response(*GOOD), "K", ()) is None
    assert (
        check_response(response(*GOOD, "Sec-WebSocket-Protocol: SuperChat"), "K", ("chat", "superchat"))
        == "SuperChat"
    )


def test_server_selecting_no_subprotocol_is_accepted() -> None:
    """Offering subprotocols and getting none back is fine."""
    assert check_response(response(*GOOD), "K", ("chat",)) is None


@pytest.mark.parametrize(
    ("headers", "status", "word", "code"),
    [
        (GOOD, "403 Forbidden", "HTTP 403 Forbidden", 403),
        (GOOD, "200 OK", "HTTP 200", 200),
        (GOOD[1:], "101 Switching Protocols", "Upgrade", 101),
        ((GOOD[0], GOOD[2]), "101 Switching Protocols", "Connection", 101),
        ((*GOOD[:2], "Sec-WebSocket-Accept: bad"), "101 Switching Protocols", "Accept", 101),
        (GOOD[:2], "101 Switching Protocols", "Accept", 101),
        ((*GOOD, "Sec-WebSocket-Protocol: other"), "101 Switching Protocols", "not offered", 101),
        (
            (*GOOD, "Sec-WebSocket-Extensions: permessage-deflate"),
            "101 Switching Protocols",
            "extension",
            101,
        ),
    ],
)
def test_bad_responses(headers: tuple[str, ...], status: str, word: str, code: int) -> None:
    """Non-101, missing Upgrade/Connection, wrong accept, unoffered protocol or extension fail."""
    with pytest.raises(HandshakeError) as info:
        check_response(response(*headers, status=status), "K", ("chat",))
    assert word in info.value.detail
    assert info.value.status == code


@pytest.mark.parametrize("head", [b"garbage", b"HTTP/1.1 abc OK", b"HTTP/1.1 101 OK\r\nno colon here"])
def test_malformed_heads(head: bytes) -> None:
    """A malformed status line or header line is a HandshakeError."""
    with pytest.raises(HandshakeError):
        parse_response(head)
