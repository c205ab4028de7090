"""ohws: the OpenHarmony ``@ohos.net.webSocket`` API for Python, as a synchronous threaded client.

::

    from ohws import webSocket
    ws = webSocket.createWebSocket()
    ws.on('message', lambda err, data: print(data))
    ws.connect("ws://127.0.0.1:8080").result(timeout=10)

Scripts can pull messages instead (SPEC 13)::

    with ohws.connect("ws://127.0.0.1:8080", timeout=10) as ws:
        ws.send("hello")
        print(ws.receive(timeout=5))
"""

from . import webSocket
from ._errors import BusinessError, ErrorCode
from ._gui import QtDispatcher, TkDispatcher
from ._policy import setNetworkPolicy
from ._promise import Promise
from ._state import State
from ._version import __version__
from ._websocket import connect
from .webSocket import (
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
    WebSocket,
    WebSocketCloseOptions,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketOpenInfo,
    WebSocketRequestOptions,
    WebSocketServer,
    WebSocketServerConfig,
    createWebSocket,
    createWebSocketServer,
)

__all__ = [
    "BusinessError",
    "ClientCert",
    "CloseResult",
    "ErrorCode",
    "HttpProxy",
    "OpenResult",
    "ReconnectInfo",
    "ReconnectOptions",
    "Promise",
    "ProxyConfiguration",
    "QtDispatcher",
    "ResponseHeaders",
    "ServerCert",
    "State",
    "TkDispatcher",
    "TlsProtocol",
    "WebSocket",
    "WebSocketCloseOptions",
    "WebSocketConnection",
    "WebSocketMessage",
    "WebSocketOpenInfo",
    "WebSocketRequestOptions",
    "WebSocketServer",
    "WebSocketServerConfig",
    "__version__",
    "connect",
    "createWebSocket",
    "createWebSocketServer",
    "setNetworkPolicy",
    "webSocket",
]
