"""Proxy choice (SPEC section 8): which proxy, if any, a connection goes through.

Pure: reads a mapping of environment variables it is given, never the network.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ._errors import BusinessError, ErrorCode

__all__ = ["HttpProxySpec", "ProxyRoute", "proxy_environment", "resolve_proxy"]

_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for name in (base, base.upper())
)


def proxy_environment() -> dict[str, str]:
    """The proxy variables of ``os.environ`` (reading only these is much cheaper than a copy)."""
    return {name: os.environ[name] for name in _VARIABLES if name in os.environ}


_SCHEMES = {"http", "socks4", "socks4a", "socks5", "socks5h"}
_DEFAULT_PROXY_PORTS = {"http": 8080, "socks4": 1080, "socks4a": 1080, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True, slots=True)
class HttpProxySpec:
    """A parsed ``HttpProxy`` option."""

    host: str
    port: int
    exclusion_list: tuple[str, ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def excludes(self, host: str) -> bool:
        """True when ``host`` matches an exclusion entry (``*`` wildcards, any case)."""
        host = host.lower()
        for entry in self.exclusion_list:
            pattern = entry.strip().lower()
            if pattern and fnmatch.fnmatchcase(host, pattern):
                return True
        return False


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """The proxy a connection uses: ``scheme`` is ``http`` (CONNECT) or a SOCKS flavour."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """Names the proxy for messages: scheme, host and port, never credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme} proxy {host}:{self.port}"


def resolve_proxy(
    config: str | HttpProxySpec, host: str, secure: bool, environ: Mapping[str, str]
) -> ProxyRoute | None:
    """The route for a connection to ``host``, or None for a direct connection.

    ``config`` is ``'system'``, ``'no-proxy'`` or an :class:`HttpProxySpec`.
    Raises ``BusinessError(200)`` for a proxy URL in the environment that cannot be used.
    """
    if config == "no-proxy":
        return None
    if isinstance(config, HttpProxySpec):
        if config.excludes(host):
            return None
        return ProxyRoute("http", config.host, config.port, config.username, config.password)
    env = {k.lower(): v for k, v in environ.items() if k.lower().endswith("_proxy")}
    if _bypassed(host, env.get("no_proxy", "")):
        return None
    value = env.get("https_proxy" if secure else "http_proxy") or env.get("all_proxy")
    if not value:
        return None
    return _parse_proxy_url(value.strip())


def _parse_proxy_url(value: str) -> ProxyRoute:
    if "://" not in value:
        value = f"http://{value}"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.hostname:
        raise BusinessError.of(ErrorCode.CONNECT_FAILED, "the proxy URL in the environment is malformed", "0")
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise BusinessError.of(
            ErrorCode.CONNECT_FAILED,
            f"proxy scheme {scheme!r} is not supported (use http, socks4, socks5 or socks5h)",
            "0",
        )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    port = port or _DEFAULT_PROXY_PORTS[scheme]
    return ProxyRoute(scheme, parts.hostname, port, username, password)


def _bypassed(host: str, no_proxy: str) -> bool:
    """``no_proxy`` as curl and urllib read it: ``*``, domain suffixes, IPs and networks."""
    host = host.lower().strip("[]")
    for raw in no_proxy.replace(" ", "").split(","):
        entry = raw.lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").strip("[]")
        if host == entry or host.endswith("." + entry):
            return True
    return False
