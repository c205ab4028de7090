"""Option parsing (SPEC sections 4.3, 4.6 and 7): raw ArkTS dicts become frozen dataclasses.

Nothing past this module sees a raw dict. Every rejection is a 401 naming the key and the
rule. Pure: no I/O, no threads.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import parameter_error
from ._proxy import HttpProxySpec
from ._types import TlsProtocol

__all__ = [
    "ClientCertSpec",
    "CloseSpec",
    "ConnectOptions",
    "ReconnectSpec",
    "parse_close_options",
    "parse_options",
]

MAX_HEARTBEAT = 30000
DEFAULT_PING_INTERVAL = 30
DEFAULT_CONNECT_TIMEOUT = 30.0
DEFAULT_CLOSE_TIMEOUT = 5.0
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_MAX_QUEUE = 64
MAX_CLOSE_REASON_BYTES = 123

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RESERVED_HEADERS = ("upgrade", "connection")


@dataclass(frozen=True, slots=True)
class ClientCertSpec:
    cert_path: str
    key_path: str
    key_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ReconnectSpec:
    """Parsed ``reconnect`` option (SPEC 14); seconds, ``jitter`` a fraction, -1 = forever."""

    initial_delay: float = 1.0
    max_delay: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2
    max_retries: int = -1


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """Parsed ``WebSocketRequestOptions`` with every default filled in."""

    headers: tuple[tuple[str, str], ...] = ()
    ca_path: str | None = None
    client_cert: ClientCertSpec | None = None
    skip_verify: bool = False
    proxy: str | HttpProxySpec = "system"
    protocols: tuple[str, ...] = ()
    ping_interval: int = DEFAULT_PING_INTERVAL
    pong_timeout: int = DEFAULT_PING_INTERVAL
    min_tls: TlsProtocol | None = None  # None: the ssl module's default floor (TLS 1.2)
    origin_port: bool | None = None  # None: RFC 6454 (the port unless it is the default)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    reconnect: ReconnectSpec | None = None
    max_queue: int = DEFAULT_MAX_QUEUE  # the script-style receive queue (SPEC 13); 0 = no limit


@dataclass(frozen=True, slots=True)
class CloseSpec:
    """Parsed ``WebSocketCloseOptions``."""

    code: int = 1000
    reason: str = ""


def _type_name(value: object) -> str:
    return type(value).__name__


def _get_str(raw: Mapping[str, Any], key: str, where: str = "options") -> str | None:
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise parameter_error(f"{where}.{key} must be a str, not {_type_name(value)}")


def _get_bool(raw: Mapping[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise parameter_error(f"options.{key} must be a bool, not {_type_name(value)}")


def int_value(raw: Mapping[str, Any], key: str, where: str = "options") -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise parameter_error(f"{where}.{key} must be an int, not {_type_name(value)}")
    return value


def _get_seconds(
    raw: Mapping[str, Any], key: str, *, allow_zero: bool, where: str = "options", what: str = "seconds"
) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise parameter_error(f"{where}.{key} must be a number of {what}, not {_type_name(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise parameter_error(f"{where}.{key} must be a finite number of {what}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise parameter_error(f"{where}.{key} must be {bound}, got {value}")
    return float(value)


def _check_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise parameter_error(f"unknown key {key!r} in {where}")


def parse_headers(value: object) -> tuple[tuple[str, str], ...]:
    """``header``: HTTP token names, values without CR/LF/NUL, no WebSocket-owned names."""
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise parameter_error(f"options.header must be a dict, not {_type_name(value)}")
    headers: list[tuple[str, str]] = []
    for name, val in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise parameter_error(f"options.header name {name!r} is not an HTTP token")
        lowered = name.lower()
        if lowered.startswith("sec-websocket-") or lowered in _RESERVED_HEADERS:
            hint = " (use options.protocol)" if lowered == "sec-websocket-protocol" else ""
            raise parameter_error(f"options.header {name!r} is set by the library{hint}")
        if not isinstance(val, str):
            raise parameter_error(f"options.header[{name!r}] must be a str, not {_type_name(val)}")
        if any(ch in val for ch in "\r\n\0"):
            raise parameter_error(f"options.header[{name!r}] contains CR, LF or NUL")
        headers.append((name, val))
    return tuple(headers)


def parse_protocols(value: str | None, where: str = "options.protocol") -> tuple[str, ...]:
    """``protocol``: a comma-separated list of subprotocol tokens (may be empty)."""
    if not value:
        return ()
    protocols = tuple(p.strip() for p in value.split(","))
    for proto in protocols:
        if not _TOKEN.fullmatch(proto):
            raise parameter_error(f"{where} entry {proto!r} is not an HTTP token")
    return protocols


def _parse_client_cert(value: object) -> ClientCertSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise parameter_error(f"options.clientCert must be a dict, not {_type_name(value)}")
    _check_keys(value, ("certPath", "keyPath", "keyPassword"), "options.clientCert")
    cert = _get_str(value, "certPath", "options.clientCert")
    key = _get_str(value, "keyPath", "options.clientCert")
    if not cert or not key:
        raise parameter_error("options.clientCert needs both certPath and keyPath")
    password = _get_str(value, "keyPassword", "options.clientCert")
    return ClientCertSpec(cert, key, password or None)


def _parse_proxy(value: object) -> str | HttpProxySpec:
    if value is None:
        return "system"
    if isinstance(value, str):
        if value in ("system", "no-proxy"):
            return value
        raise parameter_error(f"options.proxy must be 'system', 'no-proxy' or an HttpProxy, not {value!r}")
    if not isinstance(value, Mapping):
        raise parameter_error(f"options.proxy must be a str or an HttpProxy dict, not {_type_name(value)}")
    where = "options.proxy"
    _check_keys(value, ("host", "port", "exclusionList", "username", "password"), where)
    host = _get_str(value, "host", where)
    if not host:
        raise parameter_error("options.proxy.host must be a non-empty str")
    port = int_value(value, "port", where)
    if port is None or not 1 <= port <= 65535:
        raise parameter_error(f"options.proxy.port must be an int in 1..65535, got {port!r}")
    exclusions = value.get("exclusionList")
    if exclusions is None:
        exclusions = []
    if not isinstance(exclusions, list | tuple) or not all(isinstance(e, str) for e in exclusions):
        raise parameter_error("options.proxy.exclusionList must be a list of str")
    username = _get_str(value, "username", where)
    password = _get_str(value, "password", where)
    return HttpProxySpec(host.strip("[]"), port, tuple(exclusions), username or None, password)


def _parse_heartbeat(raw: Mapping[str, Any]) -> tuple[int, int]:
    interval = int_value(raw, "pingInterval")
    timeout = int_value(raw, "pongTimeout")
    for key, val in (("pingInterval", interval), ("pongTimeout", timeout)):
        if val is not None and not 0 <= val <= MAX_HEARTBEAT:
            raise parameter_error(f"options.{key} must be in 0..{MAX_HEARTBEAT}, got {val}")
    interval = DEFAULT_PING_INTERVAL if interval is None else interval
    if timeout is None:
        return interval, min(DEFAULT_PING_INTERVAL, interval)
    if timeout > interval:
        raise parameter_error(
            f"options.pongTimeout ({timeout}) must not exceed options.pingInterval ({interval})"
        )
    return interval, timeout


def _parse_reconnect(value: object) -> ReconnectSpec | None:
    """``reconnect``: True (the defaults), False/None (off) or a dict of the five settings."""
    if value is None or value is False:
        return None
    if value is True:
        return ReconnectSpec()
    if not isinstance(value, Mapping):
        raise parameter_error(f"options.reconnect must be a bool or a dict, not {_type_name(value)}")
    where = "options.reconnect"
    _check_keys(value, ("initialDelay", "maxDelay", "factor", "jitter", "maxRetries"), where)
    default = ReconnectSpec()
    initial = _get_seconds(value, "initialDelay", allow_zero=True, where=where)
    maximum = _get_seconds(value, "maxDelay", allow_zero=True, where=where)
    factor = _get_seconds(value, "factor", allow_zero=False, where=where, what="times")
    jitter = _get_seconds(value, "jitter", allow_zero=True, where=where, what="fractions")
    retries = int_value(value, "maxRetries", where)
    spec = ReconnectSpec(
        default.initial_delay if initial is None else initial,
        default.max_delay if maximum is None else maximum,
        default.factor if factor is None else factor,
        default.jitter if jitter is None else jitter,
        default.max_retries if retries is None else retries,
    )
    if spec.factor < 1:
        raise parameter_error(f"{where}.factor must be >= 1, got {spec.factor:g}")
    if spec.jitter > 1:
        raise parameter_error(f"{where}.jitter must be in 0..1, got {spec.jitter:g}")
    if spec.max_retries < -1:
        raise parameter_error(f"{where}.maxRetries must be >= 0, or -1 for no limit, got {spec.max_retries}")
    if spec.max_delay < spec.initial_delay:
        raise parameter_error(
            f"{where}.maxDelay ({spec.max_delay:g}) must not be less than "
            f"initialDelay ({spec.initial_delay:g})"
        )
    return spec


def _parse_min_tls(value: object) -> TlsProtocol | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise parameter_error(f"options.minSupportTlsProtocol must be a TlsProtocol, not {_type_name(value)}")
    try:
        return TlsProtocol(value)
    except ValueError:
        raise parameter_error(f"options.minSupportTlsProtocol {value} is not a TlsProtocol (0..3)") from None


_OPTION_KEYS = (
    "header",
    "caPath",
    "clientCert",
    "skipServerCertVerification",
    "proxy",
    "protocol",
    "pingInterval",
    "pongTimeout",
    "minSupportTlsProtocol",
    "supportOriginPort",
    "connectTimeout",
    "closeTimeout",
    "maxMessageSize",
    "reconnect",
    "maxQueue",
)


#: value types of options that can share one parsed (frozen) ConnectOptions
_SCALARS = frozenset({str, int, float, bool, type(None)})


def parse_options(raw: object) -> ConnectOptions:
    """Parse ``WebSocketRequestOptions``; raise ``BusinessError(401)`` naming the key.

    Options of plain values (most of them: ``{"proxy": "no-proxy"}``) are parsed once and
    their frozen result shared by every connection that passes the same ones.
    """
    if raw is None:
        return _parse_plain(())
    if type(raw) is dict and all(type(value) in _SCALARS for value in raw.values()):
        # The type is part of the key: True == 1 == 1.0 must not share a result.
        return _parse_plain(tuple((key, type(value), value) for key, value in raw.items()))
    return _parse_options(raw)


@functools.lru_cache(maxsize=64)
def _parse_plain(items: tuple[tuple[object, type, object], ...]) -> ConnectOptions:
    return _parse_options({key: value for key, _, value in items})


def _parse_options(raw: object) -> ConnectOptions:
    if not isinstance(raw, Mapping):
        raise parameter_error(f"options must be a dict, not {_type_name(raw)}")
    _check_keys(raw, _OPTION_KEYS, "options")
    ping_interval, pong_timeout = _parse_heartbeat(raw)
    max_size = int_value(raw, "maxMessageSize")
    if max_size is not None and max_size < 0:
        raise parameter_error(f"options.maxMessageSize must be >= 0, got {max_size}")
    max_queue = int_value(raw, "maxQueue")
    if max_queue is not None and max_queue < 0:
        raise parameter_error(f"options.maxQueue must be >= 0, got {max_queue}")
    ca_path = _get_str(raw, "caPath")
    connect_timeout = _get_seconds(raw, "connectTimeout", allow_zero=False)
    close_timeout = _get_seconds(raw, "closeTimeout", allow_zero=True)
    return ConnectOptions(
        headers=parse_headers(raw.get("header")),
        ca_path=ca_path or None,
        client_cert=_parse_client_cert(raw.get("clientCert")),
        skip_verify=bool(_get_bool(raw, "skipServerCertVerification")),
        proxy=_parse_proxy(raw.get("proxy")),
        protocols=parse_protocols(_get_str(raw, "protocol")),
        ping_interval=ping_interval,
        pong_timeout=pong_timeout,
        min_tls=_parse_min_tls(raw.get("minSupportTlsProtocol")),
        origin_port=_get_bool(raw, "supportOriginPort"),
        connect_timeout=DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout,
        close_timeout=DEFAULT_CLOSE_TIMEOUT if close_timeout is None else close_timeout,
        max_message_size=DEFAULT_MAX_MESSAGE_SIZE if max_size is None else max_size,
        reconnect=_parse_reconnect(raw.get("reconnect")),
        max_queue=DEFAULT_MAX_QUEUE if max_queue is None else max_queue,
    )


def is_sendable_close_code(code: int) -> bool:
    """Codes an endpoint may put in a close frame: 1000-1003, 1007-1014, 3000-4999."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def parse_close_options(raw: object) -> CloseSpec:
    """Parse ``WebSocketCloseOptions``; raise ``BusinessError(401)`` naming the key."""
    if raw is None:
        return CloseSpec()
    if not isinstance(raw, Mapping):
        raise parameter_error(f"close options must be a dict, not {_type_name(raw)}")
    _check_keys(raw, ("code", "reason"), "close options")
    code = int_value(raw, "code", "close options")
    if code is None:
        code = 1000
    elif not is_sendable_close_code(code):
        raise parameter_error(f"close options.code {code} is not 1000-1003, 1007-1014 or 3000-4999")
    reason = _get_str(raw, "reason", "close options") or ""
    size = len(reason.encode("utf-8", "surrogatepass"))
    if size > MAX_CLOSE_REASON_BYTES:
        raise parameter_error(
            f"close options.reason is {size} UTF-8 bytes, more than {MAX_CLOSE_REASON_BYTES}"
        )
    try:
        reason.encode("utf-8")
    except UnicodeEncodeError:
        raise parameter_error("close options.reason is not encodable as UTF-8") from None
    return CloseSpec(code, reason)
