"""Echo servers measured by the server scenarios: ``python servers.py ohws|websockets``.

Prints {"port": N} once listening on 127.0.0.1, echoes every message, stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable


def ohws_server() -> tuple[int, Callable[[], None]]:
    from ohws import webSocket

    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    config = {"serverIP": "127.0.0.1", "serverPort": 0}
    config["maxConcurrentClientsNumber"] = config["maxConnectionsForOneClient"] = 100_000
    server.start(config).result(10)
    assert server.port is not None
    return server.port, lambda: server.stop().result(30) and None


def websockets_server() -> tuple[int, Callable[[], None]]:
    from websockets.sync.server import ServerConnection, serve

    def echo(connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    server = serve(echo, "127.0.0.1", 0, compression=None, max_size=None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.socket.getsockname()[1], server.shutdown


def main(kind: str) -> int:
    port, stop = {"ohws": ohws_server, "websockets": websockets_server}[kind]()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(json.dumps({"port": port}), flush=True)
    stopped.wait()
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
