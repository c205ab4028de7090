"""``WebSocketServer`` (SPEC section 11, ArkTS API 19+), built on the ``websockets`` threaded server.

websockets does the listening socket, the handshake, RFC 6455 framing, keepalive pings and one
thread per client; ohws adds the ArkTS surface: client limits, the ``WebSocketConnection``
registry, error codes, and events on one lane per server. Sends and closes for a client run in
order on that client's own lane, so ``send`` never blocks its caller.
"""

from __future__ import annotations

import errno
import itertools
import logging
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from . import _policy
from ._dispatch import Dispatcher, Lane, run_user_code
from ._errors import BusinessError, ErrorCode, parameter_error, unknown_error
from ._events import Listeners
from ._options import parse_close_options
from ._promise import Promise
from ._server_config import ServerConfig, parse_server_config
from ._tls import make_server_ssl_context
from ._types import CloseResult, WebSocketCloseOptions, WebSocketConnection, WebSocketMessage

__all__ = ["WebSocketServer", "createWebSocketServer"]

logger = logging.getLogger("ohws")

SERVER_EVENTS = ("connect", "messageReceive", "close", "error")
MAX_MESSAGE_SIZE = 64 * 1024 * 1024
_numbers = itertools.count(1)


@dataclass(slots=True)
class _Client:
    connection: Any  # websockets.sync.server.ServerConnection
    lane: Lane  # sends and closes for this client, in call order


def _bind_error(exc: OSError, config: ServerConfig) -> BusinessError:
    where = f"{config.ip}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return BusinessError.of(ErrorCode.PORT_OCCUPIED, f"{where} is already in use")
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
        return BusinessError.of(ErrorCode.CANNOT_LISTEN_ON_NIC, f"{config.ip} is not an address of this host")
    if exc.errno == errno.EACCES:
        return BusinessError.of(
            ErrorCode.CANNOT_LISTEN_ON_PORT, f"no permission to listen on port {config.port}"
        )
    return unknown_error(f"cannot listen on {where}: {exc}")


class WebSocketServer:
    """A WebSocket server, as ``webSocket.createWebSocketServer()`` returns it.

    Events: ``'connect'`` ``cb(connection)``, ``'messageReceive'`` ``cb(message)``,
    ``'close'`` ``cb(connection, CloseResult)``, ``'error'`` ``cb(err)``; all on one lane.
    """

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._lane = Lane(dispatcher)
        self._listeners = Listeners(SERVER_EVENTS)
        self._state_lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._config = ServerConfig()
        self._clients: dict[WebSocketConnection, _Client] = {}
        self._admitted: dict[Any, str] = {}  # handshaking or open connection -> client IP
        self._number = next(_numbers)
        self.port: int | None = None

    def __repr__(self) -> str:
        where = f"{self._config.ip}:{self.port}" if self.port is not None else "stopped"
        return f"<ohws.WebSocketServer {where} clients={len(self._clients)}>"

    # ------------------------------------------------------------------ events
    def on(self, type: str, callback: Callable[..., Any]) -> None:
        """Add ``callback`` for ``type``; raises BusinessError(401) for bad arguments."""
        self._listeners.add(type, callback)

    def off(self, type: str, callback: Callable[..., Any] | None = None) -> None:
        """Remove ``callback`` (or all) for ``type``; raises BusinessError(401)."""
        self._listeners.remove(type, callback)

    def _emit(self, event: str, *args: Any) -> None:
        self._lane.submit(self._deliver, event, args)

    def _deliver(self, event: str, args: tuple[Any, ...]) -> None:
        for callback in self._listeners.get(event):
            run_user_code(callback, *args)

    # ------------------------------------------------------------------ start / stop
    def start(self, config: Any) -> Promise[bool]:
        """Listen; resolves True once listening. Errors: 401, 201, 2302002, 2302004, 2302005,
        2302007 (port in use), 2302999 (unusable certificate, already running)."""
        try:
            parsed = parse_server_config(config)
            _policy.check_permission()
            context = None
            if parsed.cert_path is not None and parsed.key_path is not None:
                context = make_server_ssl_context(parsed.cert_path, parsed.key_path)
            with self._state_lock:
                if self._server is not None:
                    raise unknown_error("the server is already running; stop() it first")
                self._server = self._listen(parsed, context)
                self._config = parsed
                self.port = int(self._server.socket.getsockname()[1])
                self._thread = threading.Thread(
                    target=self._server.serve_forever, name=f"ohws-server-{self._number}", daemon=True
                )
                self._thread.start()
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        return Promise.resolved(True, self._lane)

    def _listen(self, config: ServerConfig, context: ssl.SSLContext | None) -> Any:
        from websockets.sync.server import ServerConnection, serve
        from websockets.typing import Subprotocol

        protocols = [Subprotocol(p) for p in config.protocols]

        def select_subprotocol(
            connection: ServerConnection, offered: Sequence[Subprotocol]
        ) -> Subprotocol | None:
            return next((p for p in protocols if p in offered), None)

        try:
            return serve(
                self._handle,
                config.ip,
                config.port,
                ssl=context,
                process_request=self._admit,
                select_subprotocol=select_subprotocol,
                max_size=MAX_MESSAGE_SIZE,
                logger=logging.getLogger("ohws.server"),
            )
        except OSError as exc:
            raise _bind_error(exc, config) from None

    def stop(self) -> Promise[bool]:
        """Close every client with 1001, stop listening; resolves True when done. 201, 2302999."""
        try:
            _policy.check_permission()
            with self._state_lock:
                server, thread = self._server, self._thread
                if server is None or thread is None:
                    raise unknown_error("the server is not running")
                self._server = self._thread = None
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        promise: Promise[bool] = Promise(self._lane)

        def shut_down() -> None:
            server.shutdown(close_connections=True, code=1001, reason="server is going away")
            thread.join()
            self.port = None
            promise._resolve(True)

        threading.Thread(target=shut_down, name=f"ohws-server-stop-{self._number}", daemon=True).start()
        return promise

    # ------------------------------------------------------------------ clients
    def _admit(self, connection: Any, request: Any) -> Any:
        """websockets' process_request hook: enforce the two client limits before the handshake."""
        ip = str(connection.remote_address[0])
        config = self._config
        with self._state_lock:
            for other in [c for c in self._admitted if c.state.name == "CLOSED"]:
                del self._admitted[other]  # handshakes that failed after admission
            ips = set(self._admitted.values())
            per_client = sum(1 for other_ip in self._admitted.values() if other_ip == ip)
            if ip not in ips and len(ips) >= config.max_clients:
                why = f"maxConcurrentClientsNumber ({config.max_clients}) reached"
            elif per_client >= config.max_per_client:
                why = f"maxConnectionsForOneClient ({config.max_per_client}) reached for {ip}"
            else:
                self._admitted[connection] = ip
                return None
        self._emit("error", BusinessError.of(ErrorCode.CONNECT_FAILED, f"client {ip} rejected: {why}", "503"))
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}\n")

    def _handle(self, connection: Any) -> None:
        """Runs on websockets' thread for one client: events in, close bookkeeping out."""
        from websockets.exceptions import ConnectionClosed

        address = connection.remote_address
        client = WebSocketConnection(str(address[0]), int(address[1]))
        with self._state_lock:
            self._clients[client] = _Client(connection, Lane())
        self._emit("connect", client)
        try:
            for message in connection:
                self._emit("messageReceive", WebSocketMessage(client, message))
        except ConnectionClosed:
            pass
        finally:
            with self._state_lock:
                self._clients.pop(client, None)
                self._admitted.pop(connection, None)
            self._report_close(client, connection)

    def _report_close(self, client: WebSocketConnection, connection: Any) -> None:
        protocol = connection.protocol
        sent, received = protocol.close_sent, protocol.close_rcvd
        if received is None:
            why = "the client closed the TCP connection without a close frame"
            self._emit("error", BusinessError.of(ErrorCode.CONNECT_FAILED, why, "0"))
            self._emit("close", client, CloseResult(1006, why))
            return
        frame = sent if sent is not None and not protocol.close_rcvd_then_sent else received
        self._emit("close", client, CloseResult(int(frame.code), frame.reason))

    def listAllConnections(self) -> list[WebSocketConnection]:
        """The clients connected now."""
        with self._state_lock:
            return list(self._clients)

    def _client_job(self, connection: object, action: Callable[[Any], None], what: str) -> Promise[bool]:
        """Run ``action(ws_connection)`` on that client's lane; settle True or 2302999."""
        promise: Promise[bool] = Promise(self._lane)
        try:
            if not isinstance(connection, WebSocketConnection):
                raise parameter_error(
                    f"connection must be a WebSocketConnection, not {type(connection).__name__}"
                )
            _policy.check_permission()
            with self._state_lock:
                client = self._clients.get(connection)
            if client is None:
                raise BusinessError.of(
                    ErrorCode.CONNECTION_NOT_EXIST, f"no client {connection.clientIP}:{connection.clientPort}"
                )
        except BusinessError as exc:
            promise._reject(exc)
            return promise

        def job() -> None:
            try:
                action(client.connection)
            except Exception as exc:
                promise._reject(unknown_error(f"{what} failed: {exc}"))
            else:
                promise._resolve(True)

        client.lane.submit(job)
        return promise

    def send(
        self, data: str | bytes | bytearray | memoryview, connection: WebSocketConnection
    ) -> Promise[bool]:
        """Send one message to ``connection``. Errors: 401, 201, 2302006 (no such client), 2302999."""
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, str | bytes):
            return Promise.rejected(
                parameter_error(f"data must be str or bytes-like, not {type(data).__name__}"), self._lane
            )
        payload = data
        return self._client_job(connection, lambda ws: ws.send(payload), "send")

    def close(
        self, connection: WebSocketConnection, options: WebSocketCloseOptions | None = None
    ) -> Promise[bool]:
        """Close ``connection`` with ``options`` (code 1000 by default). Errors: 401, 201, 2302006."""
        try:
            spec = parse_close_options(options)
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        return self._client_job(connection, lambda ws: ws.close(spec.code, spec.reason), "close")


def createWebSocketServer(dispatcher: Dispatcher | None = None) -> WebSocketServer:
    """A new, stopped ``WebSocketServer``; ``dispatcher`` as for ``createWebSocket``."""
    return WebSocketServer(dispatcher)
