"""A blocking script on ohws: each line of stdin goes to the server, each reply is printed.

    python examples/blocking_chat.py [ws://host:port/path] < lines.txt

Without a URL it starts ohws's embedded echo server on loopback and talks to that. No threads,
no callbacks: ``ohws.connect`` returns an open WebSocket and ``receive`` waits for the reply.
"""

from __future__ import annotations

import sys

import ohws
from ohws import webSocket


def start_echo_server() -> ohws.WebSocketServer:
    """The embedded server, echoing every message back."""
    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    return server


def main(argv: list[str]) -> int:
    server = None if len(argv) > 1 else start_echo_server()
    url = argv[1] if server is None else f"ws://127.0.0.1:{server.port}"
    try:
        with ohws.connect(url, timeout=10) as ws:  # leaving the block closes with 1000
            for line in sys.stdin:
                ws.send(line.rstrip("\n"))
                print("reply:", ws.receive(timeout=10), flush=True)
        print("closed", flush=True)
        return 0
    except (ohws.BusinessError, TimeoutError) as exc:
        print("failed:", exc, file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop().result(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
