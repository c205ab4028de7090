"""Peer clients for the interop matrix, each driving the scenario against an ohws server.

A driver runs on a worker thread (Node's ``ws`` in a subprocess) and calls ``report(step,
observed)`` once per step it can do, in STEPS order; the test compares each observation with
EXPECTED. The ohws server echoes, and closes with 4001 "bye" when it receives ``cmd:close``.
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .interop_record import (
    CLIENT_DONE,
    CMD_CLOSE,
    ECHOES,
    FRAGMENTS,
    MAX_SIZE,
    PING,
    TEXT,
    observed,
)
from .node_support import NODE_PEER, node_command
from .servers import TIMEOUT, die_with_parent

Report = Callable[[str, Any], None]


def websockets_client(url: str, report: Report) -> None:
    """websockets' sync client: a list sent is one fragmented message; ping() waits for the pong."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    from websockets.typing import Subprotocol

    def open_() -> Any:
        return connect(
            url,
            subprotocols=[Subprotocol("chat")],
            max_size=MAX_SIZE,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
        )

    with open_() as ws:
        report("open", ws.subprotocol)
        for step, data in ECHOES.items():
            ws.send(data)
            report(step, observed(step, ws.recv(TIMEOUT)))
        ws.send(FRAGMENTS)
        report("fragmented", ws.recv(TIMEOUT))
        report("ping", PING.decode() if ws.ping(PING).wait(TIMEOUT) else "no pong")
        ws.send(CMD_CLOSE)
        try:
            ws.recv(TIMEOUT)
        except ConnectionClosed:  # 4001 is not a normal closure: ConnectionClosedError
            report("server-close", [ws.close_code, ws.close_reason])
    with open_() as ws:
        ws.close(1000, CLIENT_DONE)
    report("client-close", True)


def websocket_client(url: str, report: Report) -> None:
    """websocket-client: frames by hand (send_frame) for the fragments, control frames seen."""
    import websocket
    from websocket import ABNF

    ws = websocket.create_connection(url, subprotocols=["chat"], timeout=TIMEOUT)
    try:
        report("open", ws.getsubprotocol())
        for step, data in ECHOES.items():
            ws.send(data) if isinstance(data, str) else ws.send_binary(data)
            report(step, observed(step, ws.recv()))
        for i, part in enumerate(FRAGMENTS):
            opcode = ABNF.OPCODE_TEXT if i == 0 else ABNF.OPCODE_CONT
            ws.send_frame(ABNF.create_frame(part.encode(), opcode, fin=int(i == len(FRAGMENTS) - 1)))
        report("fragmented", ws.recv())
        ws.ping(PING)
        opcode, frame = ws.recv_data_frame(control_frame=True)
        report("ping", frame.data.decode() if opcode == ABNF.OPCODE_PONG else f"opcode {opcode}")
        ws.send(CMD_CLOSE)
        opcode, frame = ws.recv_data_frame(control_frame=True)  # a close frame is answered (1000)
        (code,) = struct.unpack("!H", frame.data[:2])
        report("server-close", [code, frame.data[2:].decode()] if opcode == ABNF.OPCODE_CLOSE else opcode)
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
    ws = websocket.create_connection(url, subprotocols=["chat"], timeout=TIMEOUT)
    ws.close(status=1000, reason=CLIENT_DONE.encode(), timeout=TIMEOUT)
    report("client-close", True)


def aiohttp_client(url: str, report: Report) -> None:
    """aiohttp's ``ws_connect`` (no API for fragments; pongs seen with autoping off)."""
    import aiohttp

    async def drive() -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                url, protocols=("chat",), max_msg_size=MAX_SIZE, autoping=False
            ) as ws:
                report("open", ws.protocol)
                for step, data in ECHOES.items():
                    await (ws.send_str(data) if isinstance(data, str) else ws.send_bytes(data))
                    report(step, observed(step, (await ws.receive(TIMEOUT)).data))
                await ws.ping(PING)
                msg = await ws.receive(TIMEOUT)
                report("ping", msg.data.decode() if msg.type is aiohttp.WSMsgType.PONG else repr(msg))
                await ws.send_str(CMD_CLOSE)
                msg = await ws.receive(TIMEOUT)  # a close frame is answered (its code) by autoclose
                report(
                    "server-close",
                    [msg.data, msg.extra] if msg.type is aiohttp.WSMsgType.CLOSE else repr(msg),
                )
            async with session.ws_connect(url, protocols=("chat",)) as ws:
                await ws.close(code=1000, message=CLIENT_DONE.encode())
            report("client-close", True)

    asyncio.run(asyncio.wait_for(drive(), 3 * TIMEOUT))


def tornado_client(url: str, report: Report) -> None:
    """Tornado's ``websocket_connect`` (no API for fragments, nor to see a pong)."""
    from tornado.websocket import websocket_connect

    async def drive() -> None:
        ws = await websocket_connect(url, subprotocols=["chat"], max_message_size=MAX_SIZE)
        report("open", ws.selected_subprotocol)
        for step, data in ECHOES.items():
            await ws.write_message(data, binary=isinstance(data, bytes))
            report(step, observed(step, await ws.read_message()))
        await ws.write_message(CMD_CLOSE)
        assert await ws.read_message() is None, "a message instead of the close"
        report("server-close", [ws.close_code, ws.close_reason])
        ws.close()  # Tornado warns (ResourceWarning) about a connection the server closed otherwise
        ws = await websocket_connect(url, subprotocols=["chat"])
        ws.close(1000, CLIENT_DONE)
        assert await ws.read_message() is None  # the close handshake is over
        report("client-close", True)

    asyncio.run(asyncio.wait_for(drive(), 3 * TIMEOUT))


def node_client(url: str, report: Report) -> None:
    """Node's ``ws`` client (tests/node_peer/client.js), which reports one JSON line a step."""
    proc = subprocess.Popen(
        [*node_command(), str(NODE_PEER / "client.js"), url, TEXT],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            record = json.loads(line)
            if "error" in record:
                raise AssertionError(f"client.js: {record['error']}")
            report(record["step"], record["got"])
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass(frozen=True)
class ClientPeer:
    """A peer client: its matrix name, what it is (to install or version), and its driver."""

    name: str
    packages: tuple[str, ...]
    drive: Callable[[str, Report], None]
    no_fragments: str | None = None  # why its API cannot send a fragmented message
    no_ping: str | None = None  # why its API cannot ping (or show the pong)


CLIENT_PEERS = [
    ClientPeer("websockets (sync client)", ("websockets",), websockets_client),
    ClientPeer("websocket-client", ("websocket-client",), websocket_client),
    ClientPeer(
        "aiohttp ws_connect",
        ("aiohttp",),
        aiohttp_client,
        no_fragments="aiohttp's ws_connect sends only whole messages",
    ),
    ClientPeer(
        "Tornado websocket_connect",
        ("tornado",),
        tornado_client,
        no_fragments="Tornado's write_message sends only whole messages",
        no_ping="Tornado's client has no public way to see the pong",
    ),
    ClientPeer("Node ws", ("node:ws",), node_client),
]
