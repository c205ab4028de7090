"""Every example of the seed document (js-apis-webSocket.md), ported to Python and run on loopback.

The ports keep the ArkTS shape line for line: ``console.log`` becomes ``log``, the
placeholder URL ``"ws://"`` becomes the loopback echo server, and the example proxy
``192.168.0.150`` becomes a loopback proxy that the exclusion list bypasses (tests never
leave loopback).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.server import ServerConnection

from ohws import BusinessError, WebSocket, webSocket

from .servers import TIMEOUT, websockets_server


class Console:
    """console.log: collects lines; ``expect`` waits for one (bounded)."""

    def __init__(self) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def log(self, line: str) -> None:
        self.lines.put(line)

    def expect(self, prefix: str) -> str:
        return self.expect_after(prefix)[-1]

    def expect_after(self, prefix: str) -> list[str]:
        """The lines logged since the last wait, up to and including one that starts with ``prefix``."""
        lines = []
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            self.seen.append(line)
            lines.append(line)
            if line.startswith(prefix):
                return lines


def assert_removed(console: Console, ws: WebSocket, event: str, line: str, trigger: Any) -> None:
    """After ``off(event...)``: a listener added now runs on ``trigger()``, and the removed one,
    which would have run first (registration order, one lane) and logged ``line``, does not."""
    ws.on(event, lambda *args: console.log(f"still listening to {event}"))
    trigger()
    before = console.expect_after(f"still listening to {event}")[:-1]
    assert not [text for text in before if text.startswith(line)], f"off('{event}') left {before}"


def stringify(err: BusinessError) -> str:
    """JSON.stringify of an error object."""
    return json.dumps({"code": err.code, "message": err.message, "data": err.data})


def hello_bye(connection: ServerConnection) -> None:
    """Answers 'Hello, server!' with 'bye', echoes anything else."""
    for message in connection:
        connection.send("bye" if message == "Hello, server!" else message)


@pytest.fixture
def url() -> Iterator[str]:
    with websockets_server(hello_bye) as address:
        yield address


@pytest.fixture
def console() -> Console:
    return Console()


def test_module_example(url: str, console: Console) -> None:
    """The module's main example: open -> send -> message 'bye' -> close; connect callback closes."""
    log = console.log
    default_ip_address = url
    ws = webSocket.createWebSocket()

    def on_open(err: BusinessError | None, value: object) -> None:
        if err is not None:
            log(stringify(err))
            return
        ws.send(
            "Hello, server!",
            lambda err, value: log("send success") if not err else log("send fail, err:" + stringify(err)),
        )

    def on_message(error: BusinessError | None, value: str | bytes) -> None:
        log("on message, message:" + str(value))
        if value == "bye":
            ws.close(
                lambda err, value: (
                    log("close success") if not err else log("close fail, err is " + stringify(err))
                )
            )

    ws.on("open", on_open)
    ws.on("message", on_message)
    ws.on("close", lambda err, value: log(f"on close, code is {value.code}, reason is {value.reason}"))
    ws.on("error", lambda err: log("on error, error:" + stringify(err)))

    def on_connect(err: BusinessError | None, value: bool) -> None:
        if not err:
            log("connect success")
        else:
            log("connect fail, err:" + stringify(err))
        ws.close(
            lambda err, value: (
                log("close success") if not err else log("close fail, err is " + stringify(err))
            )
        )

    ws.connect(
        default_ip_address,
        {
            "header": {"name1": "value1", "name2": "value2", "name3": "value3"},
            "proxy": {"host": "127.0.0.1", "port": 9, "exclusionList": ["127.0.0.1"]},
            "protocol": "my-protocol",
        },
        on_connect,
    )
    assert console.expect("connect success") == "connect success"
    assert console.expect("on close") == "on close, code is 1000, reason is "
    assert console.expect("close success") == "close success"
    assert "send success" in console.seen
    assert not any(line.startswith(("connect fail", "send fail", "on error")) for line in console.seen)
    # The example closes twice (in the connect callback and on "bye"); the second close may
    # find the connection already closed, which is a 2302999, as SPEC 4.3 says.
    for line in console.seen:
        if line.startswith("close fail"):
            assert json.loads(line.removeprefix("close fail, err is "))["code"] == 2302999


def test_create_websocket_example() -> None:
    """let ws: webSocket.WebSocket = webSocket.createWebSocket();"""
    ws: webSocket.WebSocket = webSocket.createWebSocket()
    assert isinstance(ws, webSocket.WebSocket)


def test_connect_callback_example(url: str, console: Console) -> None:
    """connect(url, callback)."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect(
        url,
        lambda err, value: log("connect success") if not err else log("connect fail, err:" + stringify(err)),
    )
    assert console.expect("connect") == "connect success"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_connect_options_callback_example(url: str, console: Console) -> None:
    """connect(url, options, callback) with options left undefined (None)."""
    log = console.log
    ws = webSocket.createWebSocket()
    options: webSocket.WebSocketRequestOptions | None = None
    if options is not None:
        options["header"] = {"name1": "value1", "name2": "value2", "name3": "value3"}
        options["caPath"] = ""
    ws.connect(
        url,
        options,
        lambda err, value: log("connect success") if not err else log("connect fail, err:" + stringify(err)),
    )
    assert console.expect("connect") == "connect success"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_connect_promise_example(url: str, console: Console) -> None:
    """connect(url) returns a promise: then / catch."""
    log = console.log
    ws = webSocket.createWebSocket()
    promise = ws.connect(url)
    promise.then(lambda value: log("connect success")).catch(
        lambda err: log("connect fail, error:" + stringify(err))
    )
    assert console.expect("connect") == "connect success"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_connect_promise_example_failure(console: Console) -> None:
    """The same example with the seed's literal placeholder URL "ws://" reaches catch()."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect("ws://").then(lambda value: log("connect success")).catch(
        lambda err: log("connect fail, error:" + stringify(err))
    )
    line = console.expect("connect")
    assert line.startswith("connect fail, error:")
    assert json.loads(line.split(":", 1)[1])["code"] == 2302001


def test_send_callback_example(url: str, console: Console) -> None:
    """send(data, callback) from the open event; open carries status and message."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect(
        url,
        lambda err, value: log("connect success") if not err else log("connect fail, err:" + stringify(err)),
    )

    def on_open(err: BusinessError | None, value: Any) -> None:
        log(f"on open, status:{value.status}, message:{value.message}")
        ws.send(
            "Hello, server!",
            lambda err, value: log("send success") if not err else log("send fail, err:" + stringify(err)),
        )

    ws.on("open", on_open)
    assert console.expect("on open") == "on open, status:101, message:Switching Protocols"
    assert console.expect("send") == "send success"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_send_promise_example(url: str, console: Console) -> None:
    """send(data) returns a promise: then / catch."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect(
        url,
        lambda err, value: log("connect success") if not err else log("connect fail, err:" + stringify(err)),
    )

    def on_open(err: BusinessError | None, value: Any) -> None:
        log(f"on open, status:{value.status}, message:{value.message}")
        promise = ws.send("Hello, server!")
        promise.then(lambda value: log("send success")).catch(
            lambda err: log("send fail, error:" + stringify(err))
        )

    ws.on("open", on_open)
    assert console.expect("send") == "send success"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_close_callback_example(console: Console) -> None:
    """close(callback) on an object that never connected reports the failure."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.close(
        lambda err, value: log("close success") if not err else log("close fail, err is " + stringify(err))
    )
    line = console.expect("close")
    assert line.startswith("close fail, err is ")
    assert json.loads(line.removeprefix("close fail, err is "))["code"] == 2302999


def test_close_options_callback_example(url: str, console: Console) -> None:
    """close(options, callback) with options left undefined (None) on an open connection."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    options: webSocket.WebSocketCloseOptions | None = None
    if options is not None:
        options["code"] = 1000
        options["reason"] = "your reason"
    ws.close(
        options,
        lambda err, value: log("close success") if not err else log("close fail, err is " + stringify(err)),
    )
    assert console.expect("close") == "close success"


def test_close_promise_example(url: str, console: Console) -> None:
    """close() returns a promise: then / catch."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    promise = ws.close()
    promise.then(lambda value: log("close success")).catch(
        lambda err: log("close fail, err is " + stringify(err))
    )
    assert console.expect("close") == "close success"


def test_on_off_open_example(url: str, console: Console) -> None:
    """on('open', callback1) then off('open', callback1): the callback never runs."""
    log = console.log
    ws = webSocket.createWebSocket()

    def callback1(err: BusinessError | None, value: Any) -> None:
        log(f"on open, status:{value.status}, message:{value.message}")

    ws.on("open", callback1)
    ws.off("open", callback1)
    ws.on("openInfo", lambda err, value: log("openInfo"))
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    assert console.expect("") == "openInfo"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_on_message_example_and_off(url: str, console: Console) -> None:
    """on('message') logs each message; off('message') stops it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.on("message", lambda err, value: log("on message, message:" + str(value)))
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    ws.send("ping-me")
    assert console.expect("on message") == "on message, message:ping-me"
    ws.off("message")
    ws.on("dataEnd", lambda: log("on dataEnd"))
    ws.send("unheard")
    assert console.expect("on dataEnd") == "on dataEnd"
    assert "on message, message:unheard" not in console.seen
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_on_close_example_and_off(url: str, console: Console) -> None:
    """on('close') logs code and reason; off('close') removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.on("close", lambda err, value: log(f"on close, code is {value.code}, reason is {value.reason}"))
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    ws.close({"code": 1000, "reason": "your reason"})
    assert console.expect("on close") == "on close, code is 1000, reason is your reason"
    ws.off("close")

    def reconnect_and_close() -> None:
        ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]

    assert_removed(console, ws, "close", "on close", reconnect_and_close)


def test_on_error_example_and_off(console: Console) -> None:
    """on('error') logs the error object; off('error') removes the listener."""
    import socket

    log = console.log
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ws = webSocket.createWebSocket()
    ws.on("error", lambda err: log("on error, error:" + stringify(err)))
    ws.connect(f"ws://127.0.0.1:{port}")
    line = console.expect("on error")
    assert json.loads(line.removeprefix("on error, error:"))["code"] == 200
    ws.off("error")
    assert_removed(console, ws, "error", "on error", lambda: ws.connect(f"ws://127.0.0.1:{port}"))


def test_on_data_end_example_and_off(url: str, console: Console) -> None:
    """on('dataEnd') fires after a message; off('dataEnd') removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.on("dataEnd", lambda: log("on dataEnd"))
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    ws.send("x")
    assert console.expect("on dataEnd") == "on dataEnd"
    ws.off("dataEnd")
    assert_removed(console, ws, "dataEnd", "on dataEnd", lambda: ws.send("y"))
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_on_header_receive_example_and_off(url: str, console: Console) -> None:
    """on('headerReceive') logs the response headers as JSON; off removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.on("headerReceive", lambda data: log("on headerReceive " + json.dumps(data)))
    ws.connect(url).result(TIMEOUT)  # type: ignore[union-attr]
    line = console.expect("on headerReceive")
    assert json.loads(line.removeprefix("on headerReceive "))["upgrade"].lower() == "websocket"
    ws.off("headerReceive")
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert_removed(console, ws, "headerReceive", "on headerReceive", lambda: ws.connect(url).result(TIMEOUT))  # type: ignore[union-attr]
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
