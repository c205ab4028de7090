"""``WebSocketServer`` (SPEC section 11, ArkTS API 19+), on the client's connection engine.

A listening thread (``ohws-server-<n>``) accepts; each client then gets a reader thread like a
client connection's, which answers the opening handshake (``_server_handshake.py``) and runs
the same engine as the client (``_connection.py``) in the server role: masked frames in,
unmasked frames out, the same writer, heartbeat, close handshake and close sequencing. Events
go to one lane per server; ``send`` and ``close`` go straight to that client's writer.

``_lock`` guards the registries; no user code and no socket I/O run while it is held.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import _policy
from ._connection import Connection, EventSink, read_head
from ._dispatch import Dispatcher, Lane, run_user_code
from ._errors import MISSING, BusinessError, ErrorCode, parameter_error, unknown_error
from ._events import Listeners, StaticOff, StaticOn
from ._handshake import HandshakeError, HeadTooLarge
from ._messages import encode_message
from ._options import CloseSpec, ConnectOptions, parse_close_options
from ._promise import Promise
from ._server_config import ServerConfig, check_address, parse_server_config
from ._server_handshake import (
    MAX_REQUEST_HEAD,
    Rejection,
    check_request,
    error_response,
    parse_request,
    select_protocol,
    switching_protocols,
)
from ._threads import handshake_threads
from ._tls import make_server_ssl_context
from ._types import CloseResult, WebSocketCloseOptions, WebSocketConnection, WebSocketMessage

__all__ = ["WebSocketServer", "createWebSocketServer"]

SERVER_EVENTS = ("connect", "messageReceive", "close", "error")
#: a client that has not finished its opening handshake by then is dropped (slowloris).
HANDSHAKE_TIMEOUT = 10.0
#: the client's defaults (SPEC 11): 64 MiB messages, ping after 30 s idle, 30 s for the pong,
#: 5 s for the close handshake.
_SERVER_OPTIONS = ConnectOptions()
_GOING_AWAY = CloseSpec(1001, "server is going away")
_numbers = itertools.count(1)


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


def _client_failed(client: WebSocketConnection, why: str, status: int = 0) -> BusinessError:
    return BusinessError.of(
        ErrorCode.CONNECT_FAILED, f"client {client.clientIP}:{client.clientPort}: {why}", str(status)
    )


class _ServerSink(EventSink):
    """One client's engine events, as the server's events on the server's lane."""

    __slots__ = ("_client", "_server", "connection")

    def __init__(self, server: WebSocketServer, client: WebSocketConnection) -> None:
        self._server = server
        self._client = client
        self.connection: _ClientConnection | None = None  # the engine it reports for

    def emit(self, event: str, *args: Any) -> None:
        if event == "close":
            assert self.connection is not None
            self._server._closed(self._client, args[1], self.connection)
        elif event == "error":
            self._server._emit("error", args[0])

    def emit_message(self, data: str | bytes) -> None:
        server = self._server
        if server._listeners.get("messageReceive"):
            server._lane.submit(server._deliver, "messageReceive", (WebSocketMessage(self._client, data),))

    def drain(self, fn: Callable[[], None]) -> None:
        self._server._lane.submit_barrier(fn)


class _ClientConnection(Connection):
    """One accepted client: the server side of the opening handshake, then the engine."""

    _peer = "client"
    _client = False
    _openers = handshake_threads
    __slots__ = ("_context", "_protocols", "_raw", "_server", "client", "done")

    def __init__(
        self,
        server: WebSocketServer,
        sock: socket.socket,
        client: WebSocketConnection,
        context: ssl.SSLContext | None,
        protocols: tuple[str, ...],
    ) -> None:
        sink = _ServerSink(server, client)
        super().__init__(_SERVER_OPTIONS, sink, HANDSHAKE_TIMEOUT)
        sink.connection = self
        self._server = server
        self._raw = sock
        self.client = client
        self._context = context
        self._protocols = protocols
        self.done = threading.Event()

    def _terminated(self) -> None:
        self._server._forget(self)
        self.done.set()

    def _handshake(self) -> bytes:
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        sock = self._raw
        self._register_socket(sock)
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            if self._context is not None:
                # Registered before its handshake (the wrap detaches the raw socket), so that
                # stop() can abort a client that never sends its ClientHello.
                sock = self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                self._register_socket(sock)
                sock.do_handshake()
            try:
                head, rest = read_head(sock, deadline, MAX_REQUEST_HEAD, peer="client")
                request = parse_request(head)
                key = check_request(request)
                self._server._admit(self)
            except HeadTooLarge:
                raise Rejection(431, f"request head larger than {MAX_REQUEST_HEAD} bytes") from None
            answer = switching_protocols(key, select_protocol(request, self._protocols))
            with self._lock:
                self._answered = True  # a close() from now on closes the open connection
            sock.sendall(answer)
            return rest
        except Rejection as exc:
            _refuse(sock, exc, deadline)
            why = f"handshake refused with HTTP {exc.status}: {exc.detail}"
            raise _client_failed(self.client, why, exc.status) from None
        except ssl.SSLError as exc:
            raise _client_failed(self.client, f"TLS handshake failed: {exc.reason or exc}") from None
        except TimeoutError:
            raise self._timed_out() from None
        except HandshakeError as exc:
            raise _client_failed(self.client, exc.detail) from None
        except (OSError, ValueError) as exc:
            raise _client_failed(
                self.client, f"connection lost during the opening handshake ({exc})"
            ) from None

    def _timed_out(self) -> BusinessError:
        limit = f"{HANDSHAKE_TIMEOUT:.3g}"
        return _client_failed(self.client, f"did not complete the opening handshake within {limit} s")

    def _opened(self) -> None:
        self._server._opened(self)

    def _report_open_failure(self, error: BusinessError, aborted: bool) -> None:
        if aborted:
            error = _client_failed(self.client, "the server stopped during the opening handshake")
        elif self._open_timed_out:
            error = self._timed_out()
        self._server._emit("error", error)


def _refuse(sock: socket.socket, rejection: Rejection, deadline: float) -> None:
    """Answer a refused handshake, then close so that the client reads the whole answer."""
    try:
        sock.settimeout(max(min(deadline - time.monotonic(), 1.0), 0.01))
        sock.sendall(error_response(rejection.status, rejection.detail, rejection.headers))
        # Half-close, then read what the client still sends: closing with unread bytes
        # would reset the connection and could destroy the answer before it is read.
        socket.socket.shutdown(sock, socket.SHUT_WR)
        for _ in range(16):
            if not sock.recv(65536):
                break
    except (OSError, ValueError):
        pass


class WebSocketServer:
    """A WebSocket server, as ``webSocket.createWebSocketServer()`` returns it.

    Events: ``'connect'`` ``cb(connection)``, ``'messageReceive'`` ``cb(message)``,
    ``'close'`` ``cb(connection, CloseResult)``, ``'error'`` ``cb(err)``; all on one lane.
    """

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._lane = Lane(dispatcher)
        self._listeners = Listeners(SERVER_EVENTS)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._config = ServerConfig()
        # accepted and not yet finished -> the listener that accepted it (a stop() ends those of
        # its own listener: a start() right after it must keep its new clients)
        self._connections: dict[_ClientConnection, socket.socket] = {}
        self._admitted: dict[_ClientConnection, str] = {}  # counted by the limits -> client IP
        self._clients: dict[WebSocketConnection, _ClientConnection] = {}  # open ones
        self._number = next(_numbers)
        self.port: int | None = None

    def __repr__(self) -> str:
        where = f"{self._config.ip}:{self.port}" if self.port is not None else "stopped"
        return f"<ohws.WebSocketServer {where} clients={len(self._clients)}>"

    # ------------------------------------------------------------------ events
    def on(self, type: str = MISSING, callback: Callable[..., Any] = MISSING) -> None:
        """Add ``callback`` for ``type``; raises BusinessError(401) for bad arguments."""
        self._listeners.add(type, callback)

    # ArkTS static names (API 23+, SPEC 5.1): the same listener lists and shapes as on/off.
    onConnect = StaticOn("connect")  # cb(WebSocketConnection)
    offConnect = StaticOff("connect")
    onMessageReceive = StaticOn("messageReceive")  # cb(WebSocketMessage)
    offMessageReceive = StaticOff("messageReceive")
    onWebSocketServerClose = StaticOn("close")  # cb(connection, CloseResult)
    offWebSocketServerClose = StaticOff("close")
    onWebSocketServerError = StaticOn("error")  # cb(err)
    offWebSocketServerError = StaticOff("error")

    def off(self, type: str = MISSING, callback: Callable[..., Any] | None = None) -> None:
        """Remove ``callback`` (or all) for ``type``; raises BusinessError(401)."""
        self._listeners.remove(type, callback)

    def _emit(self, event: str, *args: Any) -> None:
        if self._listeners.get(event):
            self._lane.submit(self._deliver, event, args)

    def _deliver(self, event: str, args: tuple[Any, ...]) -> None:
        for callback in self._listeners.get(event):
            run_user_code(callback, *args)

    # ------------------------------------------------------------------ start / stop
    def start(self, config: Any = MISSING) -> Promise[bool]:
        """Listen; resolves True once listening. Errors: 401, 201, 2302004, 2302005, 2302002,
        2302007 (port in use), 2302999 (unusable certificate, already running)."""
        try:
            parsed = parse_server_config(config)
            _policy.check_permission()
            check_address(parsed)
            context = None
            if parsed.cert_path is not None and parsed.key_path is not None:
                context = make_server_ssl_context(parsed.cert_path, parsed.key_path)
            with self._lock:
                if self._listener is not None:
                    raise unknown_error("the server is already running; stop() it first")
                listener = _listen(parsed)
                self._listener, self._config = listener, parsed
                self.port = int(listener.getsockname()[1])
                self._accepting = threading.Thread(
                    target=self._accept_loop,
                    args=(listener, context, parsed.protocols),
                    name=f"ohws-server-{self._number}",
                    daemon=True,
                )
                self._accepting.start()
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        return Promise.resolved(True, self._lane)

    def stop(self) -> Promise[bool]:
        """Close every client with 1001 after its queued sends, stop listening; resolves True
        when every connection has ended. Errors: 201, 2302999 (not running)."""
        try:
            _policy.check_permission()
            with self._lock:
                listener, accepting = self._listener, self._accepting
                if listener is None or accepting is None:
                    raise unknown_error("the server is not running")
                self._listener = self._accepting = None
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        _shut(listener)
        promise: Promise[bool] = Promise(self._lane)

        def shut_down() -> None:
            accepting.join()
            listener.close()
            with self._lock:
                connections = [mine for mine, by in self._connections.items() if by is listener]
            for connection in connections:
                connection.close(_GOING_AWAY)
            # Each close ends within its drain and close handshake limits, then aborts; a
            # client that is still reading the sends queued before the close gets them all.
            for connection in connections:
                connection.done.wait()
            with self._lock:
                if self._listener is None:  # not started again meanwhile
                    self.port = None
            promise._resolve(True)

        threading.Thread(target=shut_down, name=f"ohws-server-stop-{self._number}", daemon=True).start()
        return promise

    def _accept_loop(
        self, listener: socket.socket, context: ssl.SSLContext | None, protocols: tuple[str, ...]
    ) -> None:
        while True:
            try:
                sock, address = listener.accept()
            except OSError as exc:
                if self._listener is not listener:
                    return  # stop()
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: the client waits in the backlog meanwhile.
                    self._emit("error", unknown_error(f"cannot accept a client: {exc}"))
                    time.sleep(0.1)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = WebSocketConnection(str(address[0]), int(address[1]))
            connection = _ClientConnection(self, sock, client, context, protocols)
            with self._lock:
                self._connections[connection] = listener
            connection.start()

    # ------------------------------------------------------------------ clients
    def _admit(self, connection: _ClientConnection) -> None:
        """Count ``connection`` against the two client limits, or raise Rejection(503)."""
        ip = connection.client.clientIP
        config = self._config
        with self._lock:
            ips = set(self._admitted.values())
            per_client = sum(1 for other in self._admitted.values() if other == ip)
            if ip not in ips and len(ips) >= config.max_clients:
                why = f"maxConcurrentClientsNumber ({config.max_clients}) reached"
            elif per_client >= config.max_per_client:
                why = f"maxConnectionsForOneClient ({config.max_per_client}) reached for {ip}"
            else:
                self._admitted[connection] = ip
                return
        raise Rejection(503, why)

    def _opened(self, connection: _ClientConnection) -> None:
        with self._lock:
            self._clients[connection.client] = connection
        self._emit("connect", connection.client)

    def _closed(
        self, client: WebSocketConnection, result: CloseResult, connection: _ClientConnection
    ) -> None:
        with self._lock:
            # Its place under the client limits is free before anyone hears of the close: a
            # client that reconnects on the event is admitted (its thread ends later).
            self._admitted.pop(connection, None)
        # The client stays known until the callbacks queued before its close have run: an echo
        # among them is refused as sent to a closed connection (2302999, no news: the close
        # event tells), not as to an unknown one (2302006, which a promise nobody looks at
        # would log for every message still queued).
        self._lane.submit_barrier(functools.partial(self._gone, client, connection))
        self._emit("close", client, result)

    def _gone(self, client: WebSocketConnection, connection: _ClientConnection) -> None:
        with self._lock:
            if self._clients.get(client) is connection:  # not a new client from the same port
                del self._clients[client]

    def _forget(self, connection: _ClientConnection) -> None:
        with self._lock:
            self._connections.pop(connection, None)
            self._admitted.pop(connection, None)

    def listAllConnections(self) -> list[WebSocketConnection]:
        """The clients connected now."""
        with self._lock:
            return list(self._clients)

    def _find(self, connection: object) -> _ClientConnection:
        """The open client ``connection`` names; raise 401, 201 or 2302006.

        A dict ``{"clientIP": ..., "clientPort": ...}`` names it too, as an ArkTS object
        literal of the ``WebSocketConnection`` interface does.
        """
        if type(connection) is not WebSocketConnection:
            if connection is MISSING:
                raise parameter_error("the connection is missing")
            if isinstance(connection, Mapping):
                connection = _connection_of(connection)
        if not isinstance(connection, WebSocketConnection):
            raise parameter_error(
                f"connection must be a WebSocketConnection, not {type(connection).__name__}"
            )
        _policy.check_permission()
        found = self._clients.get(connection)  # one dict read: atomic, no lock needed
        if found is None:
            raise BusinessError.of(
                ErrorCode.CONNECTION_NOT_EXIST, f"no client {connection.clientIP}:{connection.clientPort}"
            )
        return found

    def _new_promise(self) -> Promise[bool]:
        return Promise(self._lane)

    @functools.cached_property
    def _written(self) -> Promise[bool]:
        """The resolved promise ``send`` returns for a frame written before it returned."""
        return Promise.resolved(True, self._lane)

    def send(
        self,
        data: str | bytes | bytearray | memoryview = MISSING,
        connection: WebSocketConnection = MISSING,
    ) -> Promise[bool]:
        """Send one message to ``connection``; settles True once written.

        Errors: 401, 201, 2302006 (no such client), 2302999 (the connection is closing).
        """
        try:
            if data is MISSING:
                raise parameter_error("the data to send is missing")
            opcode, payload = encode_message(data)
            client = self._find(connection)
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        outcome = client.send(opcode, payload, self._new_promise)
        if outcome is None:
            return self._written
        # A send that fails because that client went away is told by its close (and error)
        # event; an echo that never looks at its promise must not log it (SPEC 11).
        outcome._mark_observed()
        return outcome

    def close(
        self, connection: WebSocketConnection = MISSING, options: WebSocketCloseOptions | None = None
    ) -> Promise[bool]:
        """Close ``connection`` (code 1000 by default); settles True once it is closed.

        Errors: 401, 201, 2302006 (no such client), 2302999 (already closed).
        """
        try:
            spec = parse_close_options(options)
            client = self._find(connection)
        except BusinessError as exc:
            return Promise.rejected(exc, self._lane)
        promise = self._new_promise()
        client.close(spec, promise)
        if promise.done():
            # Refused because that client has closed meanwhile (its close event is on the
            # way): no news, as for send.
            promise._mark_observed()
        return promise


def _connection_of(raw: Mapping[Any, Any]) -> WebSocketConnection:
    """The ``WebSocketConnection`` a dict names; 401 unless it has exactly its two fields."""
    if set(raw) != {"clientIP", "clientPort"}:
        raise parameter_error(f"a connection dict has the keys clientIP and clientPort, not {list(raw)}")
    ip, port = raw["clientIP"], raw["clientPort"]
    if not isinstance(ip, str) or isinstance(port, bool) or not isinstance(port, int):
        raise parameter_error(
            f"a connection dict has a str clientIP and an int clientPort, not {ip!r} and {port!r}"
        )
    return WebSocketConnection(ip, port)


def _listen(config: ServerConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.ip else socket.AF_INET
    try:
        # create_server sets SO_REUSEADDR: start() again on the same port works at once.
        return socket.create_server((config.ip, config.port), family=family, backlog=socket.SOMAXCONN)
    except OSError as exc:
        raise _bind_error(exc, config) from None


def _shut(listener: socket.socket) -> None:
    """Wake the accepting thread: on Linux, shutdown() makes a blocked accept() fail."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)


def createWebSocketServer(dispatcher: Dispatcher | None = None) -> WebSocketServer:
    """A new, stopped ``WebSocketServer``; ``dispatcher`` as for ``createWebSocket``."""
    return WebSocketServer(dispatcher)
