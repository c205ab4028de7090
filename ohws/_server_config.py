"""``WebSocketServerConfig`` parsing (SPEC section 11): raw dict in, frozen dataclass out.

401 for shapes; then (``check_address``) 2302004 for an address that is not IPv4/IPv6,
2302005 for a bad port. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import MISSING, BusinessError, ErrorCode, parameter_error
from ._options import int_value, parse_protocols

__all__ = ["ServerConfig", "check_address", "parse_server_config"]

DEFAULT_LIMIT = 10
_KEYS = (
    "serverIP",
    "serverPort",
    "serverCert",
    "maxConcurrentClientsNumber",
    "maxConnectionsForOneClient",
    "protocol",
)


@dataclass(frozen=True, slots=True)
class ServerConfig:
    ip: str = "0.0.0.0"
    port: int = 0
    cert_path: str | None = None
    key_path: str | None = None
    max_clients: int = DEFAULT_LIMIT
    max_per_client: int = DEFAULT_LIMIT
    protocols: tuple[str, ...] = ()


def _limit(raw: Mapping[str, Any], key: str) -> int:
    value = int_value(raw, key, "config")
    if value is None:
        return DEFAULT_LIMIT
    if value < 1:
        raise parameter_error(f"config.{key} must be >= 1, got {value}")
    return value


def check_address(config: ServerConfig) -> None:
    """2302004 for a ``serverIP`` that is not IPv4/IPv6, then 2302005 for a port out of range
    (after the permission check, as OpenHarmony orders them)."""
    try:
        ipaddress.ip_address(config.ip)
    except ValueError:
        raise BusinessError.of(
            ErrorCode.CANNOT_LISTEN_ON_NIC, f"{config.ip!r} is not an IPv4 or IPv6 address"
        ) from None
    if not 0 <= config.port <= 65535:
        raise BusinessError.of(ErrorCode.CANNOT_LISTEN_ON_PORT, f"port {config.port} is not in 0..65535")


def parse_server_config(raw: object) -> ServerConfig:
    """Parse ``WebSocketServerConfig``; raise a 401 naming the key (``check_address`` checks
    the address's values)."""
    if raw is MISSING:
        raise parameter_error("the config is missing")
    if not isinstance(raw, Mapping):
        raise parameter_error(f"config must be a dict, not {type(raw).__name__}")
    for key in raw:
        if key not in _KEYS:
            raise parameter_error(f"unknown key {key!r} in config")
    ip = raw.get("serverIP")
    if ip is None:
        ip = "0.0.0.0"
    if not isinstance(ip, str):
        raise parameter_error(f"config.serverIP must be a str, not {type(ip).__name__}")
    port = int_value(raw, "serverPort", "config")
    if port is None:
        raise parameter_error("config.serverPort is required (0 binds any free port)")
    cert_path = key_path = None
    cert = raw.get("serverCert")
    if cert is not None:
        if not isinstance(cert, Mapping):
            raise parameter_error(f"config.serverCert must be a dict, not {type(cert).__name__}")
        for key in cert:
            if key not in ("certPath", "keyPath"):
                raise parameter_error(f"unknown key {key!r} in config.serverCert")
        cert_path, key_path = cert.get("certPath"), cert.get("keyPath")
        if not isinstance(cert_path, str) or not isinstance(key_path, str) or not cert_path or not key_path:
            raise parameter_error("config.serverCert needs certPath and keyPath as non-empty str")
    protocol = raw.get("protocol")
    if protocol is not None and not isinstance(protocol, str):
        raise parameter_error(f"config.protocol must be a str, not {type(protocol).__name__}")
    return ServerConfig(
        ip=ip,
        port=port,
        cert_path=cert_path,
        key_path=key_path,
        max_clients=_limit(raw, "maxConcurrentClientsNumber"),
        max_per_client=_limit(raw, "maxConnectionsForOneClient"),
        protocols=parse_protocols(protocol, "config.protocol"),
    )
