"""SPEC section 8, the pure part: which proxy a connection uses, from options and environment."""

from __future__ import annotations

import pytest

from ohws import BusinessError
from ohws._proxy import HttpProxySpec, ProxyRoute, resolve_proxy


def test_no_proxy_option_ignores_the_environment() -> None:
    """'no-proxy' is a direct connection whatever the environment says."""
    assert (
        resolve_proxy("no-proxy", "h", False, {"http_proxy": "http://p:1", "all_proxy": "socks5://p:2"})
        is None
    )


def test_system_uses_http_proxy_for_ws_and_https_proxy_for_wss() -> None:
    """ws:// uses http_proxy, wss:// uses https_proxy (either case of the variable name)."""
    env = {"HTTP_PROXY": "http://plain:3128", "https_proxy": "http://secure:3129"}
    assert resolve_proxy("system", "h", False, env) == ProxyRoute("http", "plain", 3128)
    assert resolve_proxy("system", "h", True, env) == ProxyRoute("http", "secure", 3129)


def test_system_falls_back_to_all_proxy_and_reads_socks_and_credentials() -> None:
    """all_proxy is the fallback; socks schemes and URL credentials are used."""
    env = {"all_proxy": "socks5h://user:p%40ss@sock:1081"}
    route = resolve_proxy("system", "h", True, env)
    assert route == ProxyRoute("socks5h", "sock", 1081, "user", "p@ss")
    assert route is not None and "p@ss" not in repr(route) and "p@ss" not in route.describe()
    assert route.describe() == "socks5h proxy sock:1081"


def test_system_without_variables_is_direct() -> None:
    """No proxy variable: direct."""
    assert resolve_proxy("system", "h", False, {}) is None


def test_scheme_less_proxy_value_is_http_and_default_port() -> None:
    """A bare host:port is an HTTP proxy; a missing port defaults."""
    assert resolve_proxy("system", "h", False, {"http_proxy": "p:8000"}) == ProxyRoute("http", "p", 8000)
    assert resolve_proxy("system", "h", False, {"http_proxy": "socks5://p"}) == ProxyRoute(
        "socks5", "p", 1080
    )


@pytest.mark.parametrize(
    ("no_proxy", "host", "bypassed"),
    [
        ("*", "anything", True),
        ("example.com", "example.com", True),
        ("example.com", "www.example.com", True),
        (".example.com", "www.example.com", True),
        ("example.com", "badexample.com", False),
        ("localhost, 127.0.0.1", "127.0.0.1", True),
        ("10.0.0.0/8", "10.1.2.3", True),
        ("10.0.0.0/8", "11.1.2.3", False),
        ("10.0.0.0/8", "host.name", False),
        ("::1", "::1", True),
        ("", "h", False),
    ],
)
def test_no_proxy_is_honoured(no_proxy: str, host: str, bypassed: bool) -> None:
    """no_proxy: '*', domain suffixes, exact hosts and IP networks bypass the proxy."""
    route = resolve_proxy("system", host, False, {"http_proxy": "http://p:1", "no_proxy": no_proxy})
    assert (route is None) is bypassed


@pytest.mark.parametrize("value", ["ftp://p:21", "https://p:443", "http://:8080", "http://p:99999"])
def test_unusable_proxy_url_is_error_200(value: str) -> None:
    """An environment proxy that cannot be used is a 200 failure naming the problem."""
    with pytest.raises(BusinessError) as info:
        resolve_proxy("system", "h", False, {"http_proxy": value})
    assert info.value.code == 200
    assert "proxy" in info.value.message


@pytest.mark.parametrize(
    ("exclusions", "host", "excluded"),
    [
        ((), "h", False),
        (("*",), "any.host", True),
        (("*.example.com",), "a.example.com", True),
        (("*.example.com",), "example.com", False),
        (("Example.COM",), "example.com", True),
        (("example.com",), "www.example.com", False),
        (("127.0.0.1",), "127.0.0.1", True),
    ],
)
def test_http_proxy_exclusion_list(exclusions: tuple[str, ...], host: str, excluded: bool) -> None:
    """exclusionList entries match the whole host, case-insensitively, '*' as wildcard."""
    spec = HttpProxySpec("proxy", 3128, exclusions, "u", "secret")
    route = resolve_proxy(spec, host, False, {"http_proxy": "http://ignored:1"})
    if excluded:
        assert route is None
    else:
        assert route == ProxyRoute("http", "proxy", 3128, "u", "secret")
        assert "secret" not in repr(route)
