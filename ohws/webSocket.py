"""The ``webSocket`` namespace, as ``import { webSocket } from '@kit.NetworkKit'`` gives it.

``from ohws import webSocket`` then ``webSocket.createWebSocket()``; every ArkTS export of the
client API lives here under its ArkTS name.
"""

from ._types import (
    ClientCert,
    CloseResult,
    HttpProxy,
    OpenResult,
    ProxyConfiguration,
    ResponseHeaders,
    TlsProtocol,
    WebSocketCloseOptions,
    WebSocketOpenInfo,
    WebSocketRequestOptions,
)
from ._websocket import WebSocket, createWebSocket

__all__ = [
    "ClientCert",
    "CloseResult",
    "HttpProxy",
    "OpenResult",
    "ProxyConfiguration",
    "ResponseHeaders",
    "TlsProtocol",
    "WebSocket",
    "WebSocketCloseOptions",
    "WebSocketOpenInfo",
    "WebSocketRequestOptions",
    "createWebSocket",
]
