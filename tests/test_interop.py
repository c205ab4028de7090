"""Interop matrix (issue 16): one scenario between ohws and the servers and clients people run.

ohws's client against every peer server (tests/interop_servers.py), every peer client against
ohws's server (tests/interop_clients.py): subprotocol ``chat``, a non-BMP text, a 2-byte and an
8 MiB binary, a 100 KB text, a fragmented message and a ping from the peer (where its API can),
a server close with 4001 "bye", and on a second connection a client close with 1000. Each step
is recorded for the README's table (``scripts/interop-matrix``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ohws import BusinessError, State, WebSocket, webSocket

from .interop_clients import CLIENT_PEERS, ClientPeer, Report
from .interop_record import (
    CLIENT_DONE,
    CLIENT_TO_PEER,
    CMD_CLOSE,
    CMD_FRAGMENT,
    CMD_PING,
    ECHOES,
    EXPECTED,
    PEER_TO_SERVER,
    STEPS,
    InteropRun,
    observed,
    peer_version,
    require,
    save,
    wait_client_close,
)
from .interop_servers import SERVER_PEERS, Closes, ServerPeer, asyncio_server, ohws_server, tornado_serve
from .node_support import Unavailable
from .recorder import Recorder
from .servers import TIMEOUT

Begin = Callable[[str, tuple[str, ...], str, int], InteropRun]


@pytest.fixture
def interop() -> Iterator[Begin]:
    """Start the record of a peer (skip or, under CI=true, fail when it does not install);
    every record is saved to .interop/results.json at teardown, whatever the outcome."""
    runs: list[InteropRun] = []

    def begin(peer: str, packages: tuple[str, ...], direction: str, order: int) -> InteropRun:
        try:
            version = peer_version(packages)
        except Unavailable as exc:
            runs.append(InteropRun(peer, "not installed", direction, order))
            runs[-1].unavailable(str(exc))
        runs.append(InteropRun(peer, version, direction, order))
        return runs[-1]

    yield begin
    for run in runs:
        save(run)


@contextlib.contextmanager
def ohws_client() -> Iterator[tuple[WebSocket, Recorder]]:
    """A client with a recorder; closed (bounded) at the end if a failed step left it open."""
    ws = webSocket.createWebSocket()
    try:
        yield ws, Recorder(ws)
    finally:
        if ws.state is not State.CLOSED:
            with contextlib.suppress(Exception):
                ws.close().result(TIMEOUT)


def optional_step(run: InteropRun, name: str, why_not: str | None) -> contextlib.AbstractContextManager[bool]:
    """A step the peer's API may not allow: it yields False (do nothing; recorded as n/a with
    ``why_not``) when it cannot, else True inside ``run.step(name)``."""
    if why_not is not None:
        run.not_applicable(name, why_not)
        return contextlib.nullcontext(False)
    return run.step(name)


@pytest.mark.parametrize(
    "peer",
    [
        pytest.param(peer, id=peer.name, marks=[pytest.mark.filterwarnings(f) for f in peer.ignore])
        for peer in SERVER_PEERS
    ],
)
def test_ohws_client_against_peer_server(peer: ServerPeer, interop: Begin) -> None:
    """ohws's client connects with subprotocol chat, gets every echo intact, reassembles the
    peer's fragments, answers its ping, reports and echoes its 4001 close, and closes with 1000."""
    run = interop(peer.name, peer.packages, CLIENT_TO_PEER, SERVER_PEERS.index(peer))
    closes: Closes = queue.Queue()
    with peer.run(closes) as url, ohws_client() as (ws, rec):
        with run.step("open"):
            assert ws.connect(url, {"protocol": "chat"}).result(TIMEOUT) is True
            assert rec.wait_for("openInfo").value.protocol == EXPECTED["open"]
        for step, data in ECHOES.items():
            with run.step(step):
                ws.send(data)
                assert observed(step, rec.wait_for("message").value) == EXPECTED[step]
        with optional_step(run, "fragmented", peer.no_fragments) as applicable:
            if applicable:
                ws.send(CMD_FRAGMENT)
                assert rec.wait_for("message").value == EXPECTED["fragmented"]
        with optional_step(run, "ping", peer.no_ping) as applicable:
            if applicable:
                ws.send(CMD_PING)  # the peer sends "pong:<payload>" once our pong is in
                assert rec.wait_for("message").value == "pong:" + EXPECTED["ping"]
        with run.step("server-close"):
            ws.send(CMD_CLOSE)
            close = rec.wait_for("close").value
            assert [close.code, close.reason] == EXPECTED["server-close"]
            if peer.sees_close_reply:  # SPEC 4.4: ohws answers with the same code
                assert closes.get(timeout=TIMEOUT)[0] == 4001, "ohws's close reply had another code"
        with run.step("client-close"), ohws_client() as (second, _):
            assert second.connect(url, {"protocol": "chat"}).result(TIMEOUT) is True
            assert second.close({"code": 1000, "reason": CLIENT_DONE}).result(TIMEOUT) is True
            assert wait_client_close(closes) == (1000, CLIENT_DONE)


def drive_into(peer: ClientPeer, url: str, reports: queue.Queue[tuple[str, Any]]) -> None:
    """Run the peer's driver (worker thread); an exception becomes an ("error", why) report."""
    report: Report = lambda step, got: reports.put((step, got))  # noqa: E731
    try:
        peer.drive(url, report)
    except BaseException as exc:
        reports.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("peer", CLIENT_PEERS, ids=[peer.name for peer in CLIENT_PEERS])
def test_peer_client_against_ohws_server(peer: ClientPeer, interop: Begin) -> None:
    """ohws's server selects chat, echoes every message intact (fragmented ones reassembled),
    answers the peer's ping, closes with 4001 "bye", and reports the peer's 1000 close."""
    run = interop(peer.name, peer.packages, PEER_TO_SERVER, CLIENT_PEERS.index(peer))
    closes: Closes = queue.Queue()
    reports: queue.Queue[tuple[str, Any]] = queue.Queue()
    why_not = {"fragmented": peer.no_fragments, "ping": peer.no_ping}
    worker: threading.Thread | None = None
    try:
        with ohws_server(closes) as url:
            worker = threading.Thread(
                target=drive_into, args=(peer, url, reports), name="test-interop-client", daemon=True
            )
            worker.start()
            for step in STEPS:
                with optional_step(run, step, why_not.get(step)) as applicable:
                    if applicable:
                        name, got = reports.get(timeout=TIMEOUT)
                        assert name != "error", got
                        assert (name, got) == (step, EXPECTED[step])
                        if step == "client-close":
                            assert wait_client_close(closes) == (1000, CLIENT_DONE)
    finally:
        if worker is not None:
            worker.join(TIMEOUT)  # stopping the server ended whatever the driver still waited for
    assert worker is not None and not worker.is_alive(), f"{peer.name}'s driver is still running"


def test_tornado_refuses_the_port_less_origin() -> None:
    """Tornado's default check_origin answers 403 to the native Origin form (port dropped,
    supportOriginPort False): its row in the matrix passes because of the RFC 6454 default."""
    require(("tornado",))
    closes: Closes = queue.Queue()
    with asyncio_server(tornado_serve, closes, "tornado") as url, ohws_client() as (ws, _):
        with pytest.raises(BusinessError) as refused:
            ws.connect(url, {"supportOriginPort": False}).result(TIMEOUT)
        assert (refused.value.code, refused.value.data) == (200, "403")
        assert ws.connect(url, {"supportOriginPort": True}).result(TIMEOUT) is True
        ws.close().result(TIMEOUT)
