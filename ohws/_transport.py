"""The one module that opens sockets: TCP, proxy tunnel and TLS, behind a small seam.

websocket-client's connector does direct TCP (every resolved address in turn, TCP_NODELAY,
keepalive), HTTP CONNECT tunnels and the TLS wrap; PySocks does SOCKS. ohws has already
chosen the proxy (``_proxy.py``), so websocket-client is never let near the environment; a
direct connection calls its socket opener without its ``connect``.
Foreign exceptions become :class:`ConnectError` here, with a message that names the
endpoint or proxy that failed and never a credential.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any, Protocol, cast

import socks
import websocket
from websocket import _http as ws_http
from websocket import _socket as ws_socket

from ._proxy import ProxyRoute
from ._url import Target

__all__ = ["ConnectError", "Connector", "open_stream"]

# A no_proxy list that matches no real host (".invalid" is reserved): it stops
# websocket-client from consulting the no_proxy environment variable for us.
_MATCH_NOTHING = ["ohws.invalid"]


class ConnectError(Exception):
    """Opening the stream failed before any WebSocket byte was exchanged.

    ``final``: trying again cannot help (a certificate that does not verify, a proxy that
    wants credentials); a reconnecting WebSocket stops (SPEC 14).
    """

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class Connector(Protocol):
    """The websocket-client call ohws uses (``websocket._http.connect``)."""

    def __call__(
        self, url: str, options: Any, proxy: Any, socket: Any, /
    ) -> tuple[socket.socket, tuple[str, int, str]]: ...


_connect: Connector = cast(Connector, ws_http.connect)
_proxy_info = cast(Callable[..., Any], ws_http.proxy_info)
# websocket-client's socket opener (every address in turn, with its socket options), which its
# connect() calls. A private name: should a release drop it, a direct connection goes through
# connect() again.
_open_socket: Callable[[list[Any], Any, float], socket.socket] | None = getattr(ws_http, "_open_socket", None)

_SOCKS_TYPES = {
    "socks4": (socks.SOCKS4, False),
    "socks4a": (socks.SOCKS4, True),
    "socks5": (socks.SOCKS5, False),
    "socks5h": (socks.SOCKS5, True),
}


def open_stream(
    target: Target,
    route: ProxyRoute | None,
    context: ssl.SSLContext | None,
    timeout: float,
    register: Callable[[socket.socket], None] = lambda sock: None,
) -> socket.socket:
    """A connected (and, for wss, TLS-wrapped) socket to ``target``; raise ConnectError.

    ``timeout`` bounds each blocking step. ``register`` is told of the raw socket as soon as
    ohws owns one, so that another thread can abort a SOCKS or TLS step by shutting it down.
    """
    where = route.describe() if route else f"{target.netloc}:{target.port}"
    try:
        if route is not None and route.scheme != "http":
            sock = _socks_connect(target, route, timeout)
            register(sock)
            return sock if context is None else _tls(sock, context, target.host, register)
        return _websocket_client_connect(target, route, context, timeout, register)
    except ConnectError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise ConnectError(f"TLS certificate verification failed: {exc.verify_message}", final=True) from None
    except ssl.SSLError as exc:
        raise ConnectError(
            f"TLS handshake with {target.netloc}:{target.port} failed: {exc.reason or exc}"
        ) from None
    except TimeoutError:
        raise ConnectError(f"timed out after {timeout:.3g}s connecting to {where}") from None
    except ConnectionRefusedError:
        raise ConnectError(f"connection to {where} refused") from None
    except websocket.WebSocketProxyException as exc:
        reason = _proxy_reason(exc)
        raise ConnectError(f"{where} failed: {reason}", final="HTTP 407" in reason) from None
    except websocket.WebSocketAddressException as exc:
        raise ConnectError(f"cannot resolve {where}: {exc}") from None
    except socks.ProxyError as exc:
        raise ConnectError(f"{where} failed: {exc.msg}") from None
    except (OSError, websocket.WebSocketException, ValueError) as exc:
        raise ConnectError(f"cannot connect to {where}: {exc}") from None


def _proxy_reason(exc: Exception) -> str:
    text = str(exc)
    return text.replace("failed CONNECT via proxy status:", "CONNECT answered HTTP")


def _websocket_client_connect(
    target: Target,
    route: ProxyRoute | None,
    context: ssl.SSLContext | None,
    timeout: float,
    register: Callable[[socket.socket], None],
) -> socket.socket:
    if route is None and _open_socket is not None:
        return _direct_connect(target, context, timeout, _open_socket, register)
    options = ws_socket.sock_opt(None, {"context": context} if context is not None else None)
    options.timeout = timeout
    if route is None:
        proxy = _proxy_info()
        proxy.no_proxy = ["*"]  # direct: never read http_proxy / no_proxy from the environment
    else:
        auth = (route.username, route.password or "") if route.username else None
        proxy = _proxy_info(
            http_proxy_host=route.host,
            http_proxy_port=route.port,
            http_proxy_auth=auth,
            http_no_proxy=_MATCH_NOTHING,
            proxy_type="http",
        )
    sock, _ = _connect(target.ws_url(), options, proxy, None)
    return sock


def _direct_connect(
    target: Target,
    context: ssl.SSLContext | None,
    timeout: float,
    open_socket: Callable[[list[Any], Any, float], socket.socket],
    register: Callable[[socket.socket], None],
) -> socket.socket:
    """What websocket-client's ``connect`` does for a direct connection, without parsing the
    URL again and asking for a proxy: 40 of the ~100 µs it took to connect on loopback (issue
    14). Its socket opener tries every resolved address in turn; the TLS wrap is the one its
    ``connect`` makes with the context ohws gives it (ohws always gives one)."""
    sock = open_socket(_addresses(target.host, target.port), (), timeout)
    return sock if context is None else _tls(sock, context, target.host, register)


def _addresses(host: str, port: int) -> list[Any]:
    """Where to connect, as ``getaddrinfo`` gives it. An IP literal needs no resolver: its
    entry is built here, as asyncio does (the call took ~15 µs per connect, and the first one
    imports the IDNA codec: ~2 ms)."""
    for family, address in ((socket.AF_INET, (host, port)), (socket.AF_INET6, (host, port, 0, 0))):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.SOL_TCP)
    except socket.gaierror as exc:
        raise websocket.WebSocketAddressException(exc) from None


def _tls(
    sock: socket.socket, context: ssl.SSLContext, host: str, register: Callable[[socket.socket], None]
) -> ssl.SSLSocket:
    """``sock`` wrapped for TLS, the handshake done. The wrapped socket (the raw one is detached
    by the wrap) is registered before the handshake, which an abort can then interrupt."""
    try:
        tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        register(tls)
        tls.do_handshake()
    except BaseException:
        tls.close()
        raise
    return tls


def _socks_connect(target: Target, route: ProxyRoute, timeout: float) -> socket.socket:
    proxy_type, remote_dns = _SOCKS_TYPES[route.scheme]
    sock = socks.socksocket(socket.AF_INET6 if ":" in route.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.set_proxy(proxy_type, route.host, route.port, remote_dns, route.username, route.password)
    try:
        sock.connect((target.host, target.port))
    except BaseException:
        sock.close()
        raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return cast(socket.socket, sock)
