"""Peer servers for the interop matrix, each a real server on 127.0.0.1 port 0.

Each one selects the subprotocol ``chat``, echoes every message (text as text, binary as
binary) and obeys three texts: ``cmd:fragment`` (send FRAGMENTS as one fragmented message),
``cmd:ping`` (ping with PING, then send ``"pong:<payload>"`` once the pong is in) and
``cmd:close`` (close with 4001 "bye"). Each puts ``(code, reason)`` in ``closes`` when a
connection ends, as its API reports it. The asyncio servers run on their own loop in a thread;
Node's ``ws`` runs in a subprocess.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from ohws import CloseResult, WebSocketMessage, webSocket

from .interop_record import CMD_CLOSE, CMD_FRAGMENT, CMD_PING, FRAGMENTS, MAX_SIZE, PING
from .node_support import NODE_PEER, node_command
from .servers import TIMEOUT, die_with_parent

Closes = queue.Queue[tuple[Any, Any]]


@contextlib.contextmanager
def asyncio_server(
    serve: Callable[[Closes], AbstractAsyncContextManager[int]], closes: Closes, name: str
) -> Iterator[str]:
    """Run ``serve(closes)`` (an async context yielding its port) on a new loop in a thread."""
    ready: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]]
    ready = concurrent.futures.Future()

    async def main() -> None:
        stop = asyncio.Event()
        try:
            async with serve(closes) as port:
                ready.set_result((asyncio.get_running_loop(), stop, port))
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    thread = threading.Thread(target=asyncio.run, args=(main(),), name=f"test-{name}", daemon=True)
    thread.start()
    loop, stop, port = ready.result(TIMEOUT)
    try:
        yield f"ws://127.0.0.1:{port}/"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(TIMEOUT)
        assert not thread.is_alive(), f"{name} did not shut down"


@contextlib.asynccontextmanager
async def websockets_serve(closes: Closes) -> AsyncIterator[int]:
    """websockets' asyncio server: a list sent is one fragmented message."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed
    from websockets.typing import Subprotocol

    async def handler(ws: ServerConnection) -> None:
        try:
            async for message in ws:
                if message == CMD_FRAGMENT:
                    await ws.send(FRAGMENTS)
                elif message == CMD_PING:
                    await (await ws.ping(PING))  # websockets matches the pong's payload
                    await ws.send("pong:" + PING.decode())
                elif message == CMD_CLOSE:
                    await ws.close(4001, "bye")
                else:
                    await ws.send(message)
        except ConnectionClosed:  # any code but 1000/1001 ends the iteration with this error
            pass
        finally:
            closes.put((ws.close_code, ws.close_reason))

    async with serve(
        handler, "127.0.0.1", 0, subprotocols=[Subprotocol("chat")], max_size=MAX_SIZE
    ) as server:
        yield server.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def aiohttp_serve(closes: Closes) -> AsyncIterator[int]:
    """aiohttp's ``WebSocketResponse`` (no API for fragments; pongs seen with autoping off)."""
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("chat",), max_msg_size=MAX_SIZE, autoping=False)
        await ws.prepare(request)
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT and msg.data == CMD_PING:
                await ws.ping(PING)
            elif msg.type is WSMsgType.TEXT and msg.data == CMD_CLOSE:
                await ws.close(code=4001, message=b"bye")
            elif msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                await ws.send_str("pong:" + msg.data.decode())
            else:  # CLOSE (the client's code and reason), CLOSED, ERROR
                closes.put((msg.data, msg.extra) if msg.type is WSMsgType.CLOSE else (ws.close_code, None))
                return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def tornado_serve(closes: Closes) -> AsyncIterator[int]:
    """Tornado's ``WebSocketHandler`` with its default ``check_origin`` (no API for fragments)."""
    import tornado.httpserver
    import tornado.netutil
    import tornado.web
    import tornado.websocket

    class Handler(tornado.websocket.WebSocketHandler):
        def select_subprotocol(self, subprotocols: list[str]) -> str | None:
            return "chat" if "chat" in subprotocols else None

        async def on_message(self, message: str | bytes) -> None:
            if message == CMD_PING:
                self.ping(PING)
            elif message == CMD_CLOSE:
                self.close(4001, "bye")
            else:
                await self.write_message(message, binary=isinstance(message, bytes))

        def on_pong(self, data: bytes) -> None:
            self.write_message("pong:" + data.decode())

        def on_close(self) -> None:
            closes.put((self.close_code, self.close_reason))

    app = tornado.web.Application([("/", Handler)], websocket_max_message_size=MAX_SIZE)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    try:
        yield sockets[0].getsockname()[1]
    finally:
        server.stop()
        await server.close_all_connections()


def uvicorn_serve(backend: str) -> Callable[[Closes], AbstractAsyncContextManager[int]]:
    """uvicorn with WebSocket back end ``backend``, serving a Starlette app (which has no API
    for pings or fragments)."""

    @contextlib.asynccontextmanager
    async def serve(closes: Closes) -> AsyncIterator[int]:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import WebSocketRoute
        from starlette.websockets import WebSocket

        async def endpoint(websocket: WebSocket) -> None:
            chat = "chat" in websocket.scope["subprotocols"]
            await websocket.accept(subprotocol="chat" if chat else None)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    closes.put((message.get("code"), message.get("reason")))
                    return
                if message.get("text") == CMD_CLOSE:
                    await websocket.close(4001, "bye")  # then receive() reports the client's reply
                elif message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])

        app = Starlette(routes=[WebSocketRoute("/", endpoint)])
        config = uvicorn.Config(app, ws=backend, ws_max_size=MAX_SIZE, lifespan="off", log_level="warning")
        server = uvicorn.Server(config)
        with socket.create_server(("127.0.0.1", 0)) as sock:  # listening: clients wait in its backlog
            task = asyncio.create_task(server.serve(sockets=[sock]))
            try:
                yield sock.getsockname()[1]
            finally:
                server.should_exit = True
                await task

    return serve


@contextlib.contextmanager
def ohws_server(closes: Closes) -> Iterator[str]:
    """ohws's own server (no API for pings or fragments)."""
    server = webSocket.createWebSocketServer()

    def on_message(message: WebSocketMessage) -> None:
        if message.data == CMD_CLOSE:
            server.close(message.clientConnection, {"code": 4001, "reason": "bye"})
        else:
            server.send(message.data, message.clientConnection)

    def on_close(_connection: Any, result: CloseResult) -> None:
        closes.put((result.code, result.reason))

    server.on("messageReceive", on_message)
    server.on("close", on_close)
    assert server.start({"serverIP": "127.0.0.1", "serverPort": 0, "protocol": "chat"}).result(TIMEOUT)
    try:
        yield f"ws://127.0.0.1:{server.port}/"
    finally:
        server.stop().result(TIMEOUT)


@contextlib.contextmanager
def node_server(closes: Closes) -> Iterator[str]:
    """Node's ``ws`` server (tests/node_peer/server.js) in a subprocess."""
    proc = subprocess.Popen(
        [*node_command(), str(NODE_PEER / "server.js")],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    port: concurrent.futures.Future[int] = concurrent.futures.Future()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            record = json.loads(line)
            if "port" in record:
                port.set_result(record["port"])
            else:
                closes.put(tuple(record["close"]))
        if not port.done():
            port.set_exception(RuntimeError(f"node server.js exited with {proc.wait(TIMEOUT)}"))

    reader = threading.Thread(target=read, name="test-node-server-stdout", daemon=True)
    reader.start()
    try:
        yield f"ws://127.0.0.1:{port.result(TIMEOUT)}/"
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        reader.join(TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()


@dataclass(frozen=True)
class ServerPeer:
    """A peer server: its matrix name, what it is (to install or version), and how to run it."""

    name: str
    packages: tuple[str, ...]  # Python distributions, or "node:ws"
    run: Callable[[Closes], contextlib.AbstractContextManager[str]]
    no_fragments: str | None = None  # why its API cannot send a fragmented message
    no_ping: str | None = None  # why its API cannot send a ping
    ignore: tuple[str, ...] = ()  # its deprecation warnings (pytest filters), which are not failures
    # Its record of a close it started is the code of the client's reply (uvicorn's and ohws's
    # record what they sent; uvicorn's ws=websockets even says 1005).
    sees_close_reply: bool = False


def _asyncio(serve: Callable[[Closes], AbstractAsyncContextManager[int]], name: str) -> Any:
    return lambda closes: asyncio_server(serve, closes, name)


_STARLETTE = "Starlette's WebSocket sends only whole messages"
_STARLETTE_PING = "Starlette's WebSocket has no ping"
# uvicorn's ws="websockets" runs on websockets.legacy, both deprecated: they warn at import
# and on each connection (filterwarnings = error would make those failures).
_UVICORN_LEGACY = (
    "ignore:The `websockets` implementation is deprecated",
    "ignore:websockets.legacy is deprecated",
    "ignore:remove second argument of ws_handler",
)
SERVER_PEERS = [
    ServerPeer(
        "websockets (asyncio server)",
        ("websockets",),
        _asyncio(websockets_serve, "websockets"),
        sees_close_reply=True,
    ),
    ServerPeer(
        "aiohttp WebSocketResponse",
        ("aiohttp",),
        _asyncio(aiohttp_serve, "aiohttp"),
        no_fragments="aiohttp's WebSocketResponse sends only whole messages",
        sees_close_reply=True,
    ),
    ServerPeer(
        "Tornado WebSocketHandler",
        ("tornado",),
        _asyncio(tornado_serve, "tornado"),
        no_fragments="Tornado's write_message sends only whole messages",
        sees_close_reply=True,
    ),
    ServerPeer("Node ws", ("node:ws",), node_server, sees_close_reply=True),
    *(
        ServerPeer(
            f"uvicorn ws={backend} + Starlette",
            ("uvicorn", "starlette", "wsproto" if backend == "wsproto" else "websockets"),
            _asyncio(uvicorn_serve(backend), f"uvicorn-{backend}"),
            no_fragments=_STARLETTE,
            no_ping=_STARLETTE_PING,
            ignore=_UVICORN_LEGACY if backend == "websockets" else (),
        )
        for backend in ("websockets", "websockets-sansio", "wsproto")
    ),
    ServerPeer(
        "ohws server",
        ("ohws",),
        ohws_server,
        no_fragments="ohws's server sends only whole messages",
        no_ping="ohws's server pings only after 30 s of silence",
    ),
]
