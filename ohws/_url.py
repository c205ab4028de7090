"""WebSocket URL rules (SPEC section 4.1): ``ws``/``wss`` URLs become a :class:`Target`.

Pure: no I/O. Every rejection is a 2302001 naming the rule.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._errors import BusinessError, ErrorCode

__all__ = ["MAX_URL_LENGTH", "Target", "parse_url"]

MAX_URL_LENGTH = 2048
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a connection goes: everything the transport and the handshake need."""

    url: str
    secure: bool
    host: str  # ASCII host name or IP literal, IPv6 without brackets
    port: int
    resource: str  # request target: path and query, always starting with "/"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def netloc(self) -> str:
        """Host as it appears in a URL or a Host header (IPv6 in brackets)."""
        return f"[{self.host}]" if self.is_ipv6 else self.host

    @property
    def default_port(self) -> bool:
        return self.port == _DEFAULT_PORTS["wss" if self.secure else "ws"]

    @property
    def host_header(self) -> str:
        """``Host`` value: the port only when it is not the scheme's default."""
        return self.netloc if self.default_port else f"{self.netloc}:{self.port}"

    def origin(self, with_port: bool | None = None) -> str:
        """``Origin`` value (``supportOriginPort``): the port always (True), never (False, the
        native form), or as RFC 6454 serializes an origin (None): unless it is the default."""
        scheme = "https" if self.secure else "http"
        if with_port is None:
            return f"{scheme}://{self.host_header}"
        host = f"{self.netloc}:{self.port}" if with_port else self.netloc
        return f"{scheme}://{host}"

    def ws_url(self) -> str:
        """The URL rebuilt from its parts (what websocket-client is given)."""
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{self.netloc}:{self.port}{self.resource}"


def _url_error(detail: str) -> BusinessError:
    return BusinessError.of(ErrorCode.URL_ERROR, detail)


@functools.lru_cache(maxsize=256)  # a pure function of the string: many connect() share a URL
def parse_url(url: str) -> Target:
    """Parse and check a WebSocket URL; raise ``BusinessError(2302001)`` naming the rule."""
    if not url:
        raise _url_error("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise _url_error(f"the URL has {len(url)} characters, more than {MAX_URL_LENGTH}")
    if _FORBIDDEN.search(url):
        raise _url_error("the URL contains whitespace or a control character")
    scheme, sep, _ = url.partition("://")
    if not sep:
        raise _url_error("the URL has no scheme (expected ws:// or wss://)")
    scheme = scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _url_error(f"scheme {scheme!r} is not ws or wss")
    if "#" in url:
        raise _url_error("a WebSocket URL must not have a fragment")
    try:
        parts = urlsplit(url)
        if parts.netloc.count(":") > 1 and not parts.netloc.startswith("["):
            raise _url_error("an IPv6 address must be written in brackets")
        port = parts.port
    except ValueError as exc:
        raise _url_error(f"malformed URL ({exc})") from None
    if "@" in parts.netloc:
        raise _url_error("user information in the URL is not supported (send a header instead)")
    host = parts.hostname
    if not host:
        raise _url_error("the URL has no host")
    host = _ascii_host(host, parts.netloc)
    if port is None:
        if parts.netloc.endswith(":"):
            raise _url_error("the URL has an empty port")
        port = _DEFAULT_PORTS[scheme]
    elif port == 0:
        raise _url_error("port 0 is not a valid destination port")
    resource = parts.path or "/"
    if parts.query:
        resource = f"{resource}?{parts.query}"
    elif url.endswith("?"):
        resource = f"{resource}?"
    return Target(url=url, secure=scheme == "wss", host=host, port=port, resource=resource)


def _ascii_host(host: str, netloc: str) -> str:
    """Check the host and give its ASCII form (IDNA for international names)."""
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _url_error(f"{host!r} is not a valid IPv6 address") from None
        return host
    if host.isascii():
        if any(ch in host for ch in "[]<>\\^`{|}\"'%"):
            raise _url_error(f"invalid character in host {host!r}")
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _url_error(f"host {host!r} is not a valid international domain name") from None
