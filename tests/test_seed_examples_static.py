"""The seed document's client examples once more, in the ArkTS static dialect (API 23+, SPEC 5.1).

Each port is ``tests/test_seed_examples.py``'s, with ``ws.on('open', cb)`` written as
``ws.onOpen(cb)`` and the callback in the static shape (``onOpen``: ``cb(value)``, no ``err``),
and result objects read by key where older samples index them (``value['status']``).
"""

from __future__ import annotations

import json
import socket
from typing import Any

from ohws import BusinessError, webSocket

from .servers import TIMEOUT
from .test_seed_examples import Console, console, stringify, url

__all__ = ["console", "url"]  # fixtures shared with the dynamic port


def test_module_example_static(url: str, console: Console) -> None:
    """The module example with onOpen/onMessage/onWebSocketClose/onWebSocketError."""
    log = console.log
    ws = webSocket.createWebSocket()

    def on_open(value: Any) -> None:
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

    ws.onOpen(on_open)
    ws.onMessage(on_message)
    ws.onWebSocketClose(
        lambda err, value: log(f"on close, code is {value['code']}, reason is {value['reason']}")
    )
    ws.onWebSocketError(lambda err: log("on error, error:" + stringify(err)))

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
        url,
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
    # As in the dynamic port: the example closes twice; the second close may be a 2302999.
    for line in console.seen:
        if line.startswith("close fail"):
            assert json.loads(line.removeprefix("close fail, err is "))["code"] == 2302999


def test_send_callback_example_static(url: str, console: Console) -> None:
    """send(data, callback) from onOpen; the OpenResult read by key as older samples do."""
    log = console.log
    ws = webSocket.createWebSocket()

    def on_open(value: Any) -> None:
        log(f"on open, status:{value['status']}, message:{value['message']}")
        ws.send(
            "Hello, server!",
            lambda err, value: log("send success") if not err else log("send fail, err:" + stringify(err)),
        )

    ws.onOpen(on_open)
    ws.connect(url).result(TIMEOUT)
    assert console.expect("on open") == "on open, status:101, message:Switching Protocols"
    assert console.expect("send") == "send success"
    ws.close().result(TIMEOUT)


def test_on_off_open_example_static(url: str, console: Console) -> None:
    """onOpen(callback1) then offOpen(callback1): the callback never runs."""
    log = console.log
    ws = webSocket.createWebSocket()

    def callback1(value: Any) -> None:
        log(f"on open, status:{value.status}, message:{value.message}")

    ws.onOpen(callback1)
    ws.offOpen(callback1)
    ws.onOpenInfo(lambda value: log("openInfo"))
    ws.connect(url).result(TIMEOUT)
    assert console.expect("") == "openInfo"
    ws.close().result(TIMEOUT)


def test_on_message_example_and_off_static(url: str, console: Console) -> None:
    """onMessage logs each message; offMessage() stops it; onDataEnd still fires."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.onMessage(lambda err, value: log("on message, message:" + str(value)))
    ws.connect(url).result(TIMEOUT)
    ws.send("ping-me")
    assert console.expect("on message") == "on message, message:ping-me"
    ws.offMessage()
    ws.onDataEnd(lambda: log("on dataEnd"))
    ws.send("unheard")
    assert console.expect("on dataEnd") == "on dataEnd"
    assert "on message, message:unheard" not in console.seen
    ws.close().result(TIMEOUT)


def test_on_close_example_and_off_static(url: str, console: Console) -> None:
    """onWebSocketClose logs code and reason; offWebSocketClose removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.onWebSocketClose(lambda err, value: log(f"on close, code is {value.code}, reason is {value.reason}"))
    ws.connect(url).result(TIMEOUT)
    ws.close({"code": 1000, "reason": "your reason"})
    assert console.expect("on close") == "on close, code is 1000, reason is your reason"
    ws.offWebSocketClose()


def test_on_error_example_and_off_static(console: Console) -> None:
    """onWebSocketError logs the error object; offWebSocketError removes the listener."""
    log = console.log
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ws = webSocket.createWebSocket()
    ws.onWebSocketError(lambda err: log("on error, error:" + stringify(err)))
    ws.connect(f"ws://127.0.0.1:{port}").catch(lambda err: None)
    line = console.expect("on error")
    assert json.loads(line.removeprefix("on error, error:"))["code"] == 200
    ws.offWebSocketError()


def test_on_data_end_example_and_off_static(url: str, console: Console) -> None:
    """onDataEnd fires after a message; offDataEnd removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.onDataEnd(lambda: log("on dataEnd"))
    ws.connect(url).result(TIMEOUT)
    ws.send("x")
    assert console.expect("on dataEnd") == "on dataEnd"
    ws.offDataEnd()
    ws.close().result(TIMEOUT)


def test_on_header_receive_example_and_off_static(url: str, console: Console) -> None:
    """onHeaderReceive logs the response headers as JSON; offHeaderReceive removes it."""
    log = console.log
    ws = webSocket.createWebSocket()
    ws.onHeaderReceive(lambda data: log("on headerReceive " + json.dumps(data)))
    ws.connect(url).result(TIMEOUT)
    line = console.expect("on headerReceive")
    assert json.loads(line.removeprefix("on headerReceive "))["upgrade"].lower() == "websocket"
    ws.offHeaderReceive()
    ws.close().result(TIMEOUT)
