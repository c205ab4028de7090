"""An asyncio program on ohws: one task sends, ``async for`` receives, the loop never blocks.

    python examples/asyncio_chat.py [ws://host:port/path]

Without a URL it starts ohws's embedded echo server on loopback and talks to that. It sends
three messages a tenth of a second apart while printing every reply as it comes, then closes.
"""

from __future__ import annotations

import asyncio
import sys

import ohws
from ohws import webSocket

MESSAGES = ("one", "two", "three")


def start_echo_server() -> ohws.WebSocketServer:
    """The embedded server, echoing every message back."""
    server = webSocket.createWebSocketServer()
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    return server


async def talk(url: str) -> None:
    ws = await asyncio.to_thread(ohws.connect, url, timeout=10)  # connect blocks: off the loop

    async def sender() -> None:
        for text in MESSAGES:
            await ws.send(text)  # a Promise is awaitable
            await asyncio.sleep(0.1)

    sending = asyncio.create_task(sender())
    replies = 0
    async for message in ws:  # waits without blocking the loop
        print("reply:", message, flush=True)
        replies += 1
        if replies == len(MESSAGES):
            await ws.close()  # iteration then ends: a clean close
    await sending
    print("closed", flush=True)


def main(argv: list[str]) -> int:
    server = None if len(argv) > 1 else start_echo_server()
    url = argv[1] if server is None else f"ws://127.0.0.1:{server.port}"
    try:
        asyncio.run(talk(url))
        return 0
    except (ohws.BusinessError, TimeoutError) as exc:
        print("failed:", exc, file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop().result(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
