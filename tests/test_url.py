"""SPEC 4.1 URL rules, tested without I/O."""

from __future__ import annotations

import pytest

from ohws import BusinessError
from ohws._url import MAX_URL_LENGTH, parse_url


@pytest.mark.parametrize(
    ("url", "secure", "host", "port", "resource"),
    [
        ("ws://example.com", False, "example.com", 80, "/"),
        ("wss://example.com", True, "example.com", 443, "/"),
        ("WS://Example.COM:8080/a/b", False, "example.com", 8080, "/a/b"),
        ("WsS://h:1/", True, "h", 1, "/"),
        ("ws://h?x=1", False, "h", 80, "/?x=1"),
        ("ws://h/p?x=1&y=2", False, "h", 80, "/p?x=1&y=2"),
        ("ws://[::1]:9000/chat", False, "::1", 9000, "/chat"),
        ("ws://127.0.0.1:65535", False, "127.0.0.1", 65535, "/"),
        ("ws://bücher.example/", False, "xn--bcher-kva.example", 80, "/"),
    ],
)
def test_valid_urls(url: str, secure: bool, host: str, port: int, resource: str) -> None:
    """ws/wss in any case, default ports, IPv6 in brackets, query without a path."""
    target = parse_url(url)
    assert (target.secure, target.host, target.port, target.resource) == (secure, host, port, resource)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("http://example.com", "scheme 'http' is not ws or wss"),
        ("https://example.com", "scheme 'https'"),
        ("example.com", "no scheme"),
        ("ws://", "no host"),
        ("ws://h/#frag", "fragment"),
        ("ws://h:99999", "malformed"),
        ("ws://h:0", "port 0"),
        ("ws://h:", "empty port"),
        ("ws://::1/", "brackets"),
        ("ws://[zz]/", "IPv6"),
        ("ws://user:pw@h/", "user information"),
        ("ws://h/a b", "whitespace"),
        ("ws://h/\x00", "control"),
    ],
)
def test_invalid_urls_are_2302001_naming_the_rule(url: str, why: str) -> None:
    """Each broken rule gives 2302001 with a message that names it."""
    with pytest.raises(BusinessError) as info:
        parse_url(url)
    assert info.value.code == 2302001
    assert why in info.value.message


def test_length_limit_is_2048_characters() -> None:
    """A URL of 2048 characters is accepted; 2049 is 2302001."""
    base = "ws://h/"
    assert parse_url(base + "a" * (MAX_URL_LENGTH - len(base))).port == 80
    with pytest.raises(BusinessError) as info:
        parse_url(base + "a" * (MAX_URL_LENGTH - len(base) + 1))
    assert info.value.code == 2302001
    assert "2049 characters" in info.value.message


def test_host_header_and_origin() -> None:
    """Host carries the port only when it is not the default; so does Origin unless
    supportOriginPort says always (True) or never (False)."""
    assert parse_url("ws://h").host_header == "h"
    assert parse_url("ws://h:81").host_header == "h:81"
    assert parse_url("wss://[::1]:443").host_header == "[::1]"
    assert parse_url("wss://h:8443").origin(False) == "https://h"
    assert parse_url("ws://h:8080").origin(True) == "http://h:8080"
    assert parse_url("ws://h:80").origin(True) == "http://h:80"
    assert parse_url("ws://h:8080").origin() == "http://h:8080"
    assert parse_url("ws://h:80").origin() == "http://h"
    assert parse_url("wss://[::1]:8443").origin() == "https://[::1]:8443"
    assert parse_url("wss://h").origin() == "https://h"
    assert parse_url("ws://[::1]:8080/x?y").ws_url() == "ws://[::1]:8080/x?y"
