"""SPEC section 8 against a real proxy process (pproxy: HTTP CONNECT and SOCKS5 with auth)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from .certs import Certs
from .proxies import PROXY_PASSWORD, PROXY_USER, Pproxy, free_port
from .recorder import refused, round_trip
from .servers import echo, websockets_server


@pytest.fixture(params=["ws", "wss"])
def target(request: pytest.FixtureRequest, certs: Certs) -> Iterator[tuple[str, dict[str, Any]]]:
    """An echo server, plain or TLS, and the options that trust it."""
    if request.param == "ws":
        with websockets_server(echo) as url:
            yield url, {}
    else:
        with websockets_server(echo, ssl=certs.server_context()) as url:
            yield url, {"caPath": str(certs.ca_pem)}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def http_proxy_option(proxy: Pproxy, password: str = PROXY_PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": proxy.port, "username": PROXY_USER, "password": password, **extra}


def test_http_proxy_option_with_basic_auth(proxy: Pproxy, target: tuple[str, dict[str, Any]]) -> None:
    """HttpProxy {host, port, username, password}: CONNECT with Basic auth, ws and wss."""
    url, options = target
    since = proxy.mark()
    round_trip(url, {**options, "proxy": http_proxy_option(proxy)})
    assert proxy.tunneled("http", f"127.0.0.1:{port_of(url)}", since)


def test_http_proxy_bad_credentials(proxy: Pproxy, target: tuple[str, dict[str, Any]]) -> None:
    """A 407 from the proxy: error(200) and a rejection naming the proxy, not the password."""
    url, options = target
    error, event = refused(url, {**options, "proxy": http_proxy_option(proxy, password="wrong-pass")})
    assert (error.code, event.code, event.data) == (200, 200, "0")
    assert f"127.0.0.1:{proxy.port}" in error.message
    assert "407" in error.message
    assert "wrong-pass" not in error.message and "wrong-pass" not in repr(event)


def test_exclusion_list_goes_direct(target: tuple[str, dict[str, Any]]) -> None:
    """A host in exclusionList skips the proxy (here a dead port that would fail)."""
    url, options = target
    dead = {"host": "127.0.0.1", "port": free_port(), "exclusionList": ["127.0.0.*"]}
    round_trip(url, {**options, "proxy": dead})


def test_system_http_proxy_with_credentials(
    proxy: Pproxy, target: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """'system': http_proxy for ws://, https_proxy for wss://, credentials from the URL."""
    url, options = target
    variable = "https_proxy" if url.startswith("wss") else "http_proxy"
    monkeypatch.setenv(variable, proxy.url("http"))
    since = proxy.mark()
    round_trip(url, options)
    assert proxy.tunneled("http", f"127.0.0.1:{port_of(url)}", since)


def test_system_socks5_proxy_via_all_proxy(
    proxy: Pproxy, target: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """all_proxy=socks5://user:pass@host:port is used through PySocks, for ws and wss: the
    proxy is spoken to in SOCKS5 (pproxy also serves HTTP CONNECT on the same port)."""
    url, options = target
    monkeypatch.setenv("all_proxy", proxy.url("socks5"))
    since = proxy.mark()
    round_trip(url, options)
    assert proxy.tunneled("socks5", f"127.0.0.1:{port_of(url)}", since)


def test_system_socks5h_proxy_resolves_the_name(
    proxy: Pproxy, target: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """all_proxy=socks5h://...: SOCKS5 with the host name sent to the proxy, which resolves
    it (the tunnel is asked for to localhost, not to an address resolved here)."""
    url, options = target
    monkeypatch.setenv("all_proxy", proxy.url("socks5h"))
    since = proxy.mark()
    round_trip(url.replace("127.0.0.1", "localhost"), options)
    assert proxy.tunneled("socks5", f"localhost:{port_of(url)}", since)


def test_socks_bad_credentials(
    proxy: Pproxy, target: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOCKS5 auth failure (the proxy refused a SOCKS login): error(200) naming the proxy,
    never the password."""
    url, options = target
    monkeypatch.setenv("all_proxy", proxy.url("socks5", password="bad-socks-pass"))
    since = proxy.mark()
    error, _ = refused(url, options)
    assert proxy.logged(r"Unauthorized SOCKS .* from 127\.0\.0\.1", since)
    assert f"socks5 proxy 127.0.0.1:{proxy.port}" in error.message
    assert "bad-socks-pass" not in error.message


def test_no_proxy_environment_is_honoured(echo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """no_proxy listing the host bypasses a (dead) http_proxy."""
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    round_trip(echo_url, {})


def test_no_proxy_option_overrides_the_environment(echo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """proxy: 'no-proxy' connects directly whatever http_proxy says."""
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("all_proxy", f"socks5://127.0.0.1:{free_port()}")
    round_trip(echo_url, {"proxy": "no-proxy"})


def test_system_proxy_is_really_used(echo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With only a dead http_proxy set, the default 'system' fails naming that proxy."""
    dead = free_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    error, event = refused(echo_url, {})
    assert f"http proxy 127.0.0.1:{dead}" in error.message
    assert "refused" in error.message
    assert event.code == 200


def test_unreachable_http_proxy_option(echo_url: str) -> None:
    """An HttpProxy nobody listens on: error(200) naming host and port."""
    dead = free_port()
    error, _ = refused(
        echo_url, {"proxy": {"host": "127.0.0.1", "port": dead, "password": "pw-x", "username": "u"}}
    )
    assert f"127.0.0.1:{dead}" in error.message
    assert "pw-x" not in error.message


def test_passwords_never_reach_logs_or_errors(
    proxy: Pproxy, echo_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proxy passwords (option and URL) appear in no log record, error or event."""
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        round_trip(echo_url, {"proxy": http_proxy_option(proxy)})
        error, event = refused(echo_url, {"proxy": http_proxy_option(proxy, password="another-secret")})
        texts += [error.message, repr(error), str(event), repr(event)]
        monkeypatch.setenv("http_proxy", proxy.url("http", password="url-secret"))
        error, event = refused(echo_url, {})
        texts += [error.message, repr(error), str(event), repr(event)]
    texts.append(caplog.text)
    for secret in (PROXY_PASSWORD, "another-secret", "url-secret"):
        assert all(secret not in text for text in texts)
