"""The ``ohws`` command line: ``connect`` (interactive client), ``serve`` (echo server), ``demo``.

Exit codes: 0 success, 1 the connection failed or ended abnormally, 2 bad arguments or URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO, cast
from urllib.parse import unquote, urlsplit

from ._errors import BusinessError, ErrorCode
from ._server import WebSocketServer, createWebSocketServer
from ._state import State
from ._types import (
    CloseResult,
    OpenResult,
    WebSocketConnection,
    WebSocketMessage,
    WebSocketOpenInfo,
    WebSocketRequestOptions,
)
from ._version import __version__
from ._websocket import createWebSocket

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_USAGE_CODES = {ErrorCode.PARAMETER_ERROR, ErrorCode.URL_ERROR, ErrorCode.CERT_FILE_NOT_EXIST}


class Printer:
    """Prints one event per line with a wall-clock time stamp; safe from any thread."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        with self._lock:
            print(f"[{stamp}] {text}", file=self._out, flush=True)


def show(data: str | bytes) -> str:
    """Text as it is; binary as hex."""
    return f"text {data!r}" if isinstance(data, str) else f"binary {len(data)} bytes: {data.hex(' ')}"


# ---------------------------------------------------------------- connect


def _proxy_option(value: str | None) -> Any:
    """--proxy: 'system', 'no-proxy', http://[user:pass@]host:port, or socks5[h]://... ."""
    if value is None or value in ("system", "no-proxy"):
        return value or "system"
    parts = urlsplit(value if "://" in value else f"http://{value}")
    if parts.scheme.startswith("socks"):
        os.environ["ALL_PROXY"] = value  # SOCKS goes through the 'system' route
        os.environ.pop("all_proxy", None)
        return "system"
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise BusinessError.of(
            ErrorCode.PARAMETER_ERROR, f"--proxy {parts.scheme}://… is not http:// or socks5://"
        )
    proxy: dict[str, Any] = {"host": parts.hostname, "port": parts.port}
    if parts.username:
        proxy["username"] = unquote(parts.username)
        proxy["password"] = unquote(parts.password or "")
    return proxy


def _connect_options(args: argparse.Namespace) -> dict[str, Any]:
    headers = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep:
            raise BusinessError.of(ErrorCode.PARAMETER_ERROR, f"--header {item!r} is not NAME:VALUE")
        headers[name.strip()] = value.strip()
    options: dict[str, Any] = {"header": headers, "proxy": _proxy_option(args.proxy)}
    if args.protocol:
        options["protocol"] = args.protocol
    if args.ca:
        options["caPath"] = args.ca
    if args.insecure:
        options["skipServerCertVerification"] = True
    if args.timeout:
        options["connectTimeout"] = args.timeout
    if args.reconnect:
        options["reconnect"] = True
    return options


def cmd_connect(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    log = Printer(out)
    ws = createWebSocket()
    ended: queue.Queue[int] = queue.Queue()

    def on_open(_: Any, value: OpenResult) -> None:
        log(f"open {value.status} {value.message}")

    def on_open_info(_: Any, value: WebSocketOpenInfo) -> None:
        if value.protocol:
            log(f"subprotocol {value.protocol}")

    def on_close(_: Any, value: CloseResult) -> None:
        if ws.state is State.CONNECTING:  # --reconnect: this end is followed by another attempt
            log(f"close {value.code} {value.reason!r} (reconnecting)")
            return
        log(f"close {value.code} {value.reason!r}")
        ended.put(EXIT_OK if value.code in (1000, 1001, 1005) else EXIT_FAILED)

    def on_error(error: BusinessError) -> None:
        log(f"error {error}")
        if args.reconnect and ws.state is State.CLOSED and opened.is_set():
            ended.put(EXIT_FAILED)  # reconnecting gave up (CLOSED before its last error)

    opened = threading.Event()
    ws.on("open", on_open)
    ws.on("open", lambda *_: opened.set())
    ws.on("openInfo", on_open_info)
    ws.on("message", lambda _, data: log(f"message {show(data)}"))
    ws.on("close", on_close)
    ws.on("error", on_error)
    ws.on("reconnect", lambda info: log(f"reconnect attempt {info.attempt} in {info.delay:.2f} s"))
    try:
        options = _connect_options(args)
        ws.connect(args.url, cast(WebSocketRequestOptions, options)).result()
    except BusinessError as exc:
        print(f"ohws: {exc}", file=err, flush=True)
        return EXIT_USAGE if exc.code in _USAGE_CODES else EXIT_FAILED

    def pump_stdin() -> None:
        for line in stdin:
            ws.send(line.rstrip("\r\n"))
        log("stdin closed; closing")
        ws.close()  # the close event ends the command, after every earlier event was printed

    threading.Thread(target=pump_stdin, name="ohws-cli-stdin", daemon=True).start()
    try:
        while True:  # short waits: Ctrl-C is seen even when another thread caught the signal
            with contextlib.suppress(queue.Empty):
                return ended.get(timeout=0.2)
    except KeyboardInterrupt:
        with contextlib.suppress(BusinessError):
            ws.close().result(10)
        return EXIT_OK


# ---------------------------------------------------------------- serve


def _serve_tls(folder: str) -> tuple[dict[str, str], str]:
    from .testing._certs import make_loopback_certificate

    try:
        files = make_loopback_certificate(folder)
    except ImportError as exc:
        raise BusinessError.of(ErrorCode.UNKNOWN_ERROR, f"--tls: {exc}") from None
    return {"certPath": files.cert_path, "keyPath": files.key_path}, files.ca_path


def start_echo_server(server: WebSocketServer, log: Callable[[str], None]) -> None:
    """Wire an echo server's events to ``log``."""

    def on_message(message: WebSocketMessage) -> None:
        client = message.clientConnection
        log(f"message from {client.clientIP}:{client.clientPort} {show(message.data)}")
        server.send(message.data, client)

    def on_close(client: WebSocketConnection, result: CloseResult) -> None:
        log(f"close {client.clientIP}:{client.clientPort} {result.code} {result.reason!r}")

    server.on("connect", lambda client: log(f"connect {client.clientIP}:{client.clientPort}"))
    server.on("messageReceive", on_message)
    server.on("close", on_close)
    server.on("error", lambda error: log(f"error {error}"))


def cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    with contextlib.ExitStack() as cleanup:  # --tls: the generated key never outlives the server
        return _serve(args, out, err, cleanup)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _serve(args: argparse.Namespace, out: TextIO, err: TextIO, cleanup: contextlib.ExitStack) -> int:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop on SIGTERM as on Ctrl-C
    log = Printer(out)
    server = createWebSocketServer()
    start_echo_server(server, log)
    config: dict[str, Any] = {"serverIP": args.host, "serverPort": args.port}
    try:
        if args.tls:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="ohws-serve-"))
            config["serverCert"], ca_path = _serve_tls(folder)
        server.start(config).result()
    except BusinessError as exc:
        print(f"ohws: {exc}", file=err, flush=True)
        return EXIT_USAGE if exc.code in _USAGE_CODES else EXIT_FAILED
    scheme = "wss" if args.tls else "ws"
    host = f"[{args.host}]" if ":" in args.host else args.host
    log(f"listening on {scheme}://{host}:{server.port}")
    if args.tls:
        log(f"CA certificate for clients: {ca_path} (ohws connect --ca {ca_path} ...), deleted on exit")
    with contextlib.suppress(KeyboardInterrupt):
        # Short sleeps, not one long wait: a signal that the kernel delivers to another thread
        # runs its Python handler only when the main thread next wakes up.
        while True:
            time.sleep(0.2)
    log("stopping")
    server.stop().result(20)
    return EXIT_OK


# ---------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    """The seed document's example flow against the embedded server on loopback."""
    log = Printer(out)
    server = createWebSocketServer()

    def on_message(message: WebSocketMessage) -> None:
        log(f"server: message {show(message.data)}")
        if message.data == "Hello, server!":
            server.send("Hello, client!", message.clientConnection)
            server.send("bye", message.clientConnection)

    server.on("connect", lambda client: log(f"server: connect {client.clientIP}:{client.clientPort}"))
    server.on("messageReceive", on_message)
    server.on("close", lambda client, result: log(f"server: close {result.code} {result.reason!r}"))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    url = f"ws://127.0.0.1:{server.port}"
    log(f"embedded server listening on {url}")

    ws = createWebSocket()
    closed: queue.Queue[CloseResult] = queue.Queue()
    close_answered = threading.Event()  # close()'s callback ran (it comes after the close event)

    def on_open(error: BusinessError | None, value: OpenResult) -> None:
        log(f"on open, status: {value.status}, message: {value.message}")
        ws.send("Hello, server!", lambda e, ok: log("send success" if e is None else f"send fail, err: {e}"))

    def on_client_message(error: BusinessError | None, value: str | bytes) -> None:
        log(f"on message, message: {value if isinstance(value, str) else show(value)}")
        if value == "bye":
            ws.close(closing_done)

    def closing_done(error: BusinessError | None, ok: bool) -> None:
        log("close success" if error is None else f"close fail, err is {error}")
        close_answered.set()

    def on_close(error: BusinessError | None, value: CloseResult) -> None:
        log(f"on close, code is {value.code}, reason is {value.reason!r}")
        closed.put(value)

    ws.on("open", on_open)
    ws.on("message", on_client_message)
    ws.on("close", on_close)
    ws.on("error", lambda e: log(f"on error, error: {e}"))
    ws.connect(
        url,
        {"header": {"name1": "value1", "name2": "value2", "name3": "value3"}, "protocol": "my-protocol"},
        lambda e, ok: log("connect success" if e is None else f"connect fail, err: {e}"),
    )
    try:
        result = closed.get(timeout=args.timeout)
        if not close_answered.wait(args.timeout):
            print(f"ohws demo: close() did not call back within {args.timeout} s", file=err)
            return EXIT_FAILED
    except queue.Empty:
        print(f"ohws demo: no close event within {args.timeout} s", file=err)
        return EXIT_FAILED
    finally:
        server.stop().result(10)
    return EXIT_OK if result.code == 1000 else EXIT_FAILED


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohws", description="OpenHarmony-style WebSocket client and tools.")
    parser.add_argument("--version", action="version", version=f"ohws {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    connect = commands.add_parser(
        "connect",
        help="connect and chat: stdin lines are sent, events are printed",
        description="Connect to URL; each stdin line is sent as a text message, every event is "
        "printed with a time stamp (binary as hex). End of input (Ctrl-D) closes and waits for the "
        "close handshake, so replies to the last lines are printed first.",
    )
    connect.add_argument("url", help="ws:// or wss:// URL")
    connect.add_argument(
        "--header", action="append", default=[], metavar="NAME:VALUE", help="extra handshake header"
    )
    connect.add_argument("--protocol", help='offered subprotocols, e.g. "chat, superchat"')
    connect.add_argument("--ca", metavar="FILE", help="PEM file (or directory) of trusted CAs")
    connect.add_argument("--insecure", action="store_true", help="skip certificate and host name checks")
    connect.add_argument("--proxy", metavar="URL", help="system (default), no-proxy, http://… or socks5://…")
    connect.add_argument("--timeout", type=float, metavar="SECONDS", help="connect timeout (default 30)")
    connect.add_argument(
        "--reconnect", action="store_true", help="reconnect with backoff when the connection drops"
    )
    connect.set_defaults(run=cmd_connect)

    serve = commands.add_parser(
        "serve",
        help="run an echo server",
        description="Run an echo server until Ctrl-C or SIGTERM; then every client is closed with 1001.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--tls", action="store_true", help="serve wss:// with a certificate made on the spot")
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser(
        "demo",
        help="run the API reference's example flow against an embedded server",
        description="Start the embedded server on loopback and run the seed document's example "
        "flow (open, send, message, close), printing each event.",
    )
    demo.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the close event")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[..., int] = args.run
    return run(args, sys.stdout, sys.stderr, sys.stdin)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
