"""The seed document's example flow, end to end, against a WebSocket server on loopback.

The server (the ``websockets`` threaded server, from the test extra) answers
"Hello, server!" with "Hello, client!" and then "bye"; the client closes on "bye", as the
seed example does. Every event is printed with the time since start.
"""

from __future__ import annotations

import sys
import threading
import time

from websockets.sync.server import ServerConnection, serve

from ohws import BusinessError, webSocket

START = time.monotonic()


def log(text: str) -> None:
    print(f"[{time.monotonic() - START:7.3f}s] {text}", flush=True)


def handler(connection: ServerConnection) -> None:
    for message in connection:
        if message == "Hello, server!":
            connection.send("Hello, client!")
            connection.send("bye")


def main() -> int:
    server = serve(handler, "127.0.0.1", 0, compression=None)
    threading.Thread(target=server.serve_forever, name="demo-server", daemon=True).start()
    url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    log(f"server listening on {url}")
    closed = threading.Event()

    ws = webSocket.createWebSocket()

    def on_open(err: BusinessError | None, value: webSocket.OpenResult) -> None:
        log(f"on open, status: {value.status}, message: {value.message}")
        ws.send(
            "Hello, server!", lambda err, ok: log("send success" if not err else f"send fail, err: {err}")
        )

    def on_message(err: BusinessError | None, value: str | bytes) -> None:
        log(f"on message, message: {value}")
        if value == "bye":
            ws.close(lambda err, ok: log("close success" if not err else f"close fail, err is {err}"))

    def on_close(err: BusinessError | None, value: webSocket.CloseResult) -> None:
        log(f"on close, code is {value.code}, reason is {value.reason!r}")
        closed.set()

    ws.on("open", on_open)
    ws.on("message", on_message)
    ws.on("close", on_close)
    ws.on("error", lambda err: log(f"on error, error: {err}"))
    ws.connect(
        url,
        {"header": {"name1": "value1", "name2": "value2", "name3": "value3"}, "protocol": "my-protocol"},
        lambda err, ok: log("connect success" if not err else f"connect fail, err: {err}"),
    )
    ok = closed.wait(10)
    server.shutdown()
    if not ok:
        log("demo: no close event within 10 s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
