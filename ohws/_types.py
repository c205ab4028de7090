"""The ArkTS option and result types (SPEC sections 1, 4, 7).

Options are plain dicts with the ArkTS keys, typed here as ``TypedDict``s; results are
small frozen dataclasses. Pure: no I/O, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Literal, NotRequired, TypedDict

__all__ = [
    "ClientCert",
    "CloseResult",
    "HttpProxy",
    "OpenResult",
    "ProxyConfiguration",
    "ResponseHeaders",
    "ServerCert",
    "TlsProtocol",
    "WebSocketCloseOptions",
    "WebSocketConnection",
    "WebSocketMessage",
    "WebSocketOpenInfo",
    "WebSocketRequestOptions",
    "WebSocketServerConfig",
]


class TlsProtocol(IntEnum):
    """Lowest TLS version a ``wss://`` connection accepts (``minSupportTlsProtocol``)."""

    TLS_V_1_0 = 0
    TLS_V_1_1 = 1
    TLS_V_1_2 = 2
    TLS_V_1_3 = 3


class ClientCert(TypedDict):
    """A client certificate for mutual TLS; ``keyPassword`` is never logged."""

    certPath: str
    keyPath: str
    keyPassword: NotRequired[str | None]


class HttpProxy(TypedDict):
    """An HTTP CONNECT proxy; ``password`` is never logged."""

    host: str
    port: int
    exclusionList: NotRequired[list[str] | None]
    username: NotRequired[str | None]
    password: NotRequired[str | None]


ProxyConfiguration = Literal["system", "no-proxy"] | HttpProxy


class ReconnectOptions(TypedDict, total=False):
    """The ``reconnect`` option's settings (extension, SPEC 14): seconds, a fraction, a count."""

    initialDelay: float
    maxDelay: float
    factor: float
    jitter: float
    maxRetries: int


class WebSocketRequestOptions(TypedDict, total=False):
    """Options of ``connect``; every key is optional, ``None`` means "not given"."""

    header: dict[str, str] | None
    caPath: str | None
    clientCert: ClientCert | None
    skipServerCertVerification: bool | None
    proxy: ProxyConfiguration | None
    protocol: str | None
    pingInterval: int | None
    pongTimeout: int | None
    minSupportTlsProtocol: TlsProtocol | int | None
    supportOriginPort: bool | None
    connectTimeout: float | None
    closeTimeout: float | None
    maxMessageSize: int | None
    maxQueue: int | None
    reconnect: bool | ReconnectOptions | None


class WebSocketCloseOptions(TypedDict, total=False):
    """Options of ``close``: ``code`` (default 1000) and ``reason`` (default "")."""

    code: int | None
    reason: str | None


ResponseHeaders = dict[str, str | list[str]]
"""Handshake response headers: lower-cased name -> value, or a list for repeated names."""


class _Indexable:
    """Read a result both ways, as ArkTS samples do: ``value.status`` and ``value['status']``."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key in self.__dataclass_fields__:
            return getattr(self, key)
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class OpenResult(_Indexable):
    """Payload of the ``open`` event."""

    status: int
    message: str


@dataclass(frozen=True, slots=True)
class WebSocketOpenInfo(_Indexable):
    """Payload of the ``openInfo`` event; ``protocol`` keeps the server's exact case."""

    status: int
    message: str
    protocol: str | None = None


@dataclass(frozen=True, slots=True)
class ReconnectInfo(_Indexable):
    """Payload of the ``reconnect`` event (extension): the attempt about to be made (1 for
    the first since the connection was last open) and the seconds waited before it."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class CloseResult(_Indexable):
    """Payload of the ``close`` event."""

    code: int
    reason: str


class ServerCert(TypedDict):
    """The server's certificate chain and key (PEM files) for ``wss://``."""

    certPath: str
    keyPath: str


class WebSocketServerConfig(TypedDict, total=False):
    """``WebSocketServer.start`` configuration; ``serverPort`` 0 binds any free port."""

    serverIP: str | None
    serverPort: int
    serverCert: ServerCert | None
    maxConcurrentClientsNumber: int | None
    maxConnectionsForOneClient: int | None
    protocol: str | None


@dataclass(frozen=True, slots=True)
class WebSocketConnection(_Indexable):
    """One client of a ``WebSocketServer``, identified by its address."""

    clientIP: str
    clientPort: int


@dataclass(frozen=True, slots=True)
class WebSocketMessage(_Indexable):
    """Payload of the server's ``messageReceive`` event."""

    clientConnection: WebSocketConnection
    data: str | bytes
