"""The ``webSocket`` namespace, as ``import { webSocket } from '@kit.NetworkKit'`` gives it.

``from ohws import webSocket`` then ``webSocket.createWebSocket()``; every ArkTS export of the
client API lives here under its ArkTS name.
"""

from ._server import WebSocketServer, createWebSocketServer
from ._types import (
    ClientCert,
    CloseResult,
    HttpProxy,
    OpenResult,
    ProxyConfiguration,
    ReconnectInfo,
    ReconnectOptions,
    ResponseHeaders,
    ServerCert,
    TlsProtocol,
    WebSocketCloseOptions,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketOpenInfo,
    WebSocketRequestOptions,
    WebSocketServerConfig,
)
from ._websocket import WebSocket, createWebSocket

__all__ = [
    "ClientCert",
    "CloseResult",
    "HttpProxy",
    "OpenResult",
    "ReconnectInfo",
    "ReconnectOptions",
    "ProxyConfiguration",
    "ResponseHeaders",
    "ServerCert",
    "TlsProtocol",
    "WebSocket",
    "WebSocketCloseOptions",
    "WebSocketConnection",
    "WebSocketMessage",
    "WebSocketOpenInfo",
    "WebSocketRequestOptions",
    "WebSocketServer",
    "WebSocketServerConfig",
    "createWebSocket",
    "createWebSocketServer",
]
