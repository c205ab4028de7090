"""Autobahn|Testsuite server under test: an ohws echo server for the fuzzingclient.

Echoes every message back (text as text, binary as binary) from the `messageReceive`
callback, as the README's echo does; runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading

from ohws import webSocket


def main(port: int) -> int:
    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(10)
    print(f"listening on ws://127.0.0.1:{server.port}", flush=True)
    stopped = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stopped.set())
    stopped.wait()
    server.stop().result(30)
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
