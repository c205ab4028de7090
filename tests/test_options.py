"""SPEC section 7 (and 4.3, 4.6): every option key parses or gives a 401 naming it."""

from __future__ import annotations

from typing import Any

import pytest

from ohws import BusinessError, TlsProtocol
from ohws._options import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_MESSAGE_SIZE,
    CloseSpec,
    ConnectOptions,
    parse_close_options,
    parse_options,
)
from ohws._proxy import HttpProxySpec


def rejects(raw: Any, *words: str) -> BusinessError:
    with pytest.raises(BusinessError) as info:
        parse_options(raw)
    assert info.value.code == 401
    for word in words:
        assert word in info.value.message
    return info.value


def test_defaults() -> None:
    """No options, an empty dict and all-None values give the SPEC defaults."""
    expected = ConnectOptions()
    assert parse_options(None) == expected
    assert parse_options({}) == expected
    assert (
        parse_options(
            dict.fromkeys(("header", "caPath", "proxy", "pingInterval", "closeTimeout", "maxQueue"))
        )
        == expected
    )
    assert (expected.ping_interval, expected.pong_timeout) == (30, 30)
    assert expected.connect_timeout == DEFAULT_CONNECT_TIMEOUT == 30.0
    assert expected.close_timeout == DEFAULT_CLOSE_TIMEOUT == 5.0
    assert expected.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 64 * 1024 * 1024
    assert expected.max_queue == 64
    assert expected.proxy == "system"
    assert expected.skip_verify is False


def test_every_key_parses() -> None:
    """Each key of WebSocketRequestOptions reaches the parsed options."""
    parsed = parse_options(
        {
            "header": {"X-App": "1", "Authorization": "Bearer t"},
            "caPath": "/tmp/ca.pem",
            "clientCert": {"certPath": "/c.pem", "keyPath": "/k.pem", "keyPassword": "pw"},
            "skipServerCertVerification": True,
            "proxy": {
                "host": "proxy.local",
                "port": 3128,
                "exclusionList": ["*.lan"],
                "username": "u",
                "password": "p",
            },
            "protocol": "chat, superchat",
            "pingInterval": 10,
            "pongTimeout": 5,
            "minSupportTlsProtocol": TlsProtocol.TLS_V_1_2,
            "supportOriginPort": True,
            "connectTimeout": 2.5,
            "closeTimeout": 0,
            "maxMessageSize": 0,
            "maxQueue": 0,
        }
    )
    assert parsed.headers == (("X-App", "1"), ("Authorization", "Bearer t"))
    assert parsed.ca_path == "/tmp/ca.pem"
    assert parsed.client_cert is not None and parsed.client_cert.key_password == "pw"
    assert parsed.skip_verify is True
    assert parsed.proxy == HttpProxySpec("proxy.local", 3128, ("*.lan",), "u", "p")
    assert parsed.protocols == ("chat", "superchat")
    assert (parsed.ping_interval, parsed.pong_timeout) == (10, 5)
    assert parsed.min_tls is TlsProtocol.TLS_V_1_2
    assert parsed.origin_port is True
    assert (parsed.connect_timeout, parsed.close_timeout, parsed.max_message_size) == (2.5, 0.0, 0)
    assert parsed.max_queue == 0


def test_secrets_stay_out_of_reprs() -> None:
    """keyPassword and the proxy password never appear in a repr."""
    parsed = parse_options(
        {
            "clientCert": {"certPath": "/c", "keyPath": "/k", "keyPassword": "hunter2"},
            "proxy": {"host": "p", "port": 1, "username": "u", "password": "swordfish"},
        }
    )
    text = repr(parsed)
    assert "hunter2" not in text and "swordfish" not in text


def test_options_must_be_a_dict() -> None:
    """A non-dict options argument is 401."""
    rejects(["header"], "options must be a dict")


def test_unknown_key_is_named() -> None:
    """An unknown key is 401 naming it (a typo is never silent)."""
    rejects({"pingIntervall": 5}, "'pingIntervall'")


@pytest.mark.parametrize(
    ("key", "value", "word"),
    [
        ("header", "x", "options.header"),
        ("caPath", 1, "options.caPath"),
        ("clientCert", "x", "options.clientCert"),
        ("skipServerCertVerification", 1, "options.skipServerCertVerification"),
        ("proxy", 5, "options.proxy"),
        ("protocol", ["chat"], "options.protocol"),
        ("pingInterval", 1.5, "options.pingInterval"),
        ("pingInterval", True, "options.pingInterval"),
        ("pongTimeout", "5", "options.pongTimeout"),
        ("minSupportTlsProtocol", "TLS_V_1_2", "options.minSupportTlsProtocol"),
        ("supportOriginPort", "yes", "options.supportOriginPort"),
        ("connectTimeout", "1", "options.connectTimeout"),
        ("closeTimeout", [], "options.closeTimeout"),
        ("maxMessageSize", 1.0, "options.maxMessageSize"),
        ("maxQueue", 1.5, "options.maxQueue"),
        ("maxQueue", True, "options.maxQueue"),
        ("maxQueue", "64", "options.maxQueue"),
    ],
)
def test_wrong_type_is_401_naming_the_key(key: str, value: Any, word: str) -> None:
    """A value of the wrong type is 401 naming the key."""
    rejects({key: value}, word)


@pytest.mark.parametrize(
    ("header", "word"),
    [
        ({"X-A": "a\r\nInjected: 1"}, "CR, LF"),
        ({"X-A": "a\nb"}, "CR, LF"),
        ({"X-A": "a\x00"}, "NUL"),
        ({"Bad Name": "v"}, "not an HTTP token"),
        ({"": "v"}, "not an HTTP token"),
        ({"X-A": 1}, "must be a str"),
        ({"Sec-WebSocket-Protocol": "chat"}, "use options.protocol"),
        ({"sec-websocket-key": "k"}, "set by the library"),
        ({"Upgrade": "h2c"}, "set by the library"),
        ({"Connection": "close"}, "set by the library"),
    ],
)
def test_header_rules(header: dict[str, Any], word: str) -> None:
    """Header names are tokens, values have no CR/LF/NUL, WebSocket-owned names are refused."""
    rejects({"header": header}, "options.header", word)


def test_protocol_entries_are_tokens() -> None:
    """Every subprotocol in the comma list must be a token; an empty string offers none."""
    rejects({"protocol": "chat, bad proto"}, "options.protocol", "'bad proto'")
    assert parse_options({"protocol": ""}).protocols == ()


@pytest.mark.parametrize(
    ("raw", "interval", "timeout"),
    [
        ({"pingInterval": 10}, 10, 10),  # pongTimeout not given: clamped to pingInterval
        ({"pingInterval": 100}, 100, 30),
        ({"pingInterval": 0}, 0, 0),
        ({"pingInterval": 30000, "pongTimeout": 30000}, 30000, 30000),
        ({"pongTimeout": 0}, 30, 0),
    ],
)
def test_heartbeat_values(raw: dict[str, int], interval: int, timeout: int) -> None:
    """pingInterval/pongTimeout defaults and the clamp of an absent pongTimeout."""
    parsed = parse_options(raw)
    assert (parsed.ping_interval, parsed.pong_timeout) == (interval, timeout)


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ({"pingInterval": -1}, "0..30000"),
        ({"pingInterval": 30001}, "0..30000"),
        ({"pongTimeout": 30001}, "0..30000"),
        ({"pingInterval": 10, "pongTimeout": 11}, "must not exceed"),
        ({"pingInterval": 0, "pongTimeout": 1}, "must not exceed"),
    ],
)
def test_heartbeat_out_of_range(raw: dict[str, int], word: str) -> None:
    """Heartbeat values outside 0..30000, or pongTimeout > pingInterval, are 401."""
    rejects(raw, word)


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ({"connectTimeout": 0}, "> 0"),
        ({"connectTimeout": -1}, "> 0"),
        ({"closeTimeout": -0.5}, ">= 0"),
        ({"connectTimeout": float("nan")}, "finite"),
        ({"maxMessageSize": -1}, ">= 0"),
        ({"maxQueue": -1}, "options.maxQueue must be >= 0"),
        ({"minSupportTlsProtocol": 7}, "0..3"),
        ({"minSupportTlsProtocol": True}, "TlsProtocol"),
    ],
)
def test_numeric_ranges(raw: dict[str, Any], word: str) -> None:
    """Timeouts, size limit and TLS version reject values outside their range."""
    rejects(raw, word)


@pytest.mark.parametrize(
    ("proxy", "word"),
    [
        ("direct", "'system', 'no-proxy'"),
        ({"port": 8080}, "host"),
        ({"host": "p"}, "port"),
        ({"host": "p", "port": 0}, "1..65535"),
        ({"host": "p", "port": 65536}, "1..65535"),
        ({"host": "p", "port": 1, "exclusionList": "x"}, "exclusionList"),
        ({"host": "p", "port": 1, "exclusionList": [1]}, "exclusionList"),
        ({"host": "p", "port": 1, "user": "u"}, "'user'"),
        ({"host": "p", "port": 1, "password": 5}, "password"),
    ],
)
def test_proxy_rules(proxy: Any, word: str) -> None:
    """The proxy option takes 'system', 'no-proxy' or a complete HttpProxy."""
    rejects({"proxy": proxy}, "options.proxy", word)


def test_proxy_strings() -> None:
    """'system' and 'no-proxy' are kept as given."""
    assert parse_options({"proxy": "no-proxy"}).proxy == "no-proxy"
    assert parse_options({"proxy": "system"}).proxy == "system"


@pytest.mark.parametrize(
    ("cert", "word"),
    [
        ({"certPath": "/c"}, "certPath and keyPath"),
        ({"certPath": "/c", "keyPath": ""}, "certPath and keyPath"),
        ({"certPath": "/c", "keyPath": "/k", "keyPassword": 1}, "keyPassword"),
        ({"certPath": "/c", "keyPath": "/k", "pass": "x"}, "'pass'"),
    ],
)
def test_client_cert_rules(cert: dict[str, Any], word: str) -> None:
    """clientCert needs certPath and keyPath; keyPassword is an optional str."""
    rejects({"clientCert": cert}, word)


# ---------------------------------------------------------------- close options (SPEC 4.3)


def test_close_defaults() -> None:
    """No options: code 1000, empty reason."""
    assert parse_close_options(None) == CloseSpec(1000, "")
    assert parse_close_options({}) == CloseSpec(1000, "")


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1010, 1014, 3000, 4999])
def test_close_codes_allowed(code: int) -> None:
    """1000-1003, 1007-1014 and 3000-4999 may be sent."""
    assert parse_close_options({"code": code}).code == code


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_close_codes_refused(code: int) -> None:
    """Any other code is 401 (ArkTS silently sends 1000 instead)."""
    with pytest.raises(BusinessError) as info:
        parse_close_options({"code": code})
    assert info.value.code == 401
    assert str(code) in info.value.message


def test_close_reason_limit_is_123_utf8_bytes() -> None:
    """123 UTF-8 bytes are fine; 124 are 401, counting multi-byte characters."""
    assert parse_close_options({"reason": "a" * 123}).reason == "a" * 123
    with pytest.raises(BusinessError) as info:
        parse_close_options({"reason": "é" * 62})  # 124 bytes
    assert info.value.code == 401
    assert "124 UTF-8 bytes" in info.value.message


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ("bye", "must be a dict"),
        ({"code": "1000"}, "code"),
        ({"reason": 5}, "reason"),
        ({"why": "x"}, "'why'"),
        ({"reason": "\ud800"}, "UTF-8"),
    ],
)
def test_close_option_shapes(raw: Any, word: str) -> None:
    """Bad close option shapes are 401 naming the key."""
    with pytest.raises(BusinessError) as info:
        parse_close_options(raw)
    assert info.value.code == 401
    assert word in info.value.message


def test_plain_options_are_parsed_once_and_shared() -> None:
    """Options of plain values give one frozen ConnectOptions that every connection passing
    the same ones shares (10,000 connects: ~150 bytes and ~15 µs each, issue 14); a value of
    another type is never taken for an equal one (True == 1 in Python, but only 1 is valid)."""
    from ohws._options import parse_options

    first = parse_options({"proxy": "no-proxy", "pingInterval": 1})
    assert parse_options({"proxy": "no-proxy", "pingInterval": 1}) is first
    assert parse_options(None) is parse_options(None)
    with pytest.raises(BusinessError) as info:
        parse_options({"proxy": "no-proxy", "pingInterval": True})
    assert info.value.code == 401 and "pingInterval must be an int, not bool" in info.value.message
