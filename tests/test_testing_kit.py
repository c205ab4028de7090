"""ohws.testing: every StubServer behaviour, and the pytest plugin's fixtures."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from ohws import BusinessError, CloseResult, WebSocket, webSocket
from ohws.testing import Fragmented, StubServer

from .recorder import Recorder
from .servers import TIMEOUT


def opened(url: str, options: Any = None) -> tuple[WebSocket, Recorder]:
    ws = webSocket.createWebSocket()
    rec = Recorder(ws)
    assert ws.connect(url, options or {}).result(TIMEOUT) is True  # type: ignore[union-attr]
    return ws, rec


def test_plugin_fixture_is_a_running_echo_server(ohws_stub_server: StubServer) -> None:
    """The ohws_stub_server fixture (pytest11 plugin) echoes and records what it received."""
    ws, rec = opened(ohws_stub_server.url)
    ws.send("hello")
    ws.send(b"\x00\x01")
    assert [rec.wait_for("message").value for _ in range(2)] == ["hello", b"\x00\x01"]
    assert ohws_stub_server.wait_for_messages(2) == ["hello", b"\x00\x01"]
    ws.close({"code": 4000, "reason": "x"}).result(TIMEOUT)  # type: ignore[union-attr]
    assert ohws_stub_server.wait_for_close() == 4000


def test_scripted_messages_text_binary_fragmented(
    ohws_stub_server_factory: Callable[..., StubServer],
) -> None:
    """messages= sends text, binary and fragmented messages right after the handshake."""
    stub = ohws_stub_server_factory(
        messages=["one", b"\x02", Fragmented(["fr", "ag"]), Fragmented([b"a", b"b"])]
    )
    _, rec = opened(stub.url)
    assert [rec.wait_for("message").value for _ in range(4)] == ["one", b"\x02", "frag", b"ab"]


def test_close_with_code_and_reason(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """close=(code, reason) closes after the scripted messages; the client sees both."""
    stub = ohws_stub_server_factory(messages=["last"], close=(4001, "script over"))
    _, rec = opened(stub.url)
    assert rec.wait_for("message").value == "last"
    assert rec.wait_for("close").value == CloseResult(4001, "script over")
    assert stub.wait_for_close() == 4001  # the client's echo


def test_reject_handshake_with_status_and_headers(
    ohws_stub_server_factory: Callable[..., StubServer],
) -> None:
    """reject=(status, headers) answers the upgrade with that status."""
    stub = ohws_stub_server_factory(reject=(401, {"WWW-Authenticate": "Bearer"}))
    ws = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        ws.connect(stub.url).result(TIMEOUT)  # type: ignore[union-attr]
    assert (info.value.code, info.value.data) == (200, "401")
    assert len(stub.requests) == 1


def test_response_headers_and_subprotocol(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """headers= adds response headers (repeats allowed); subprotocol= selects one."""
    stub = ohws_stub_server_factory(headers=[("X-A", "1"), ("X-A", "2")], subprotocol="Chat")
    ws, rec = opened(stub.url, {"protocol": "chat", "header": {"X-Client": "me"}})
    assert rec.wait_for("headerReceive").value["x-a"] == ["1", "2"]
    assert rec.wait_for("openInfo").value.protocol == "Chat"
    assert stub.requests[0].headers["x-client"] == "me"
    assert stub.requests[0].path == "/"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_first_offered_subprotocol(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """subprotocol=True selects the client's first offer."""
    stub = ohws_stub_server_factory(subprotocol=True)
    ws, rec = opened(stub.url, {"protocol": "v2, v1"})
    assert rec.wait_for("openInfo").value.protocol == "v2"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_drop_without_close_frame(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """drop=True hangs up TCP after the messages: the client reports 1006."""
    stub = ohws_stub_server_factory(messages=["bye?"], drop=True)
    _, rec = opened(stub.url)
    assert rec.wait_for("error").value.code == 200
    assert rec.wait_for("close").value.code == 1006


def test_silent_server_never_pongs(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """silent=True ignores pings: the client's pongTimeout ends the connection."""
    stub = ohws_stub_server_factory(silent=True)
    _, rec = opened(stub.url, {"pingInterval": 1, "pongTimeout": 1})
    closed = rec.wait_for("close").value
    assert closed.code == 1006 and "pong" in closed.reason
    assert len(stub.pings) == 1, "the stub records the ping it ignored"


def test_pings_are_answered_by_default(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """By default the stub answers pings, so a heartbeat keeps the connection round after
    round: unanswered, the client would drop the link 1 s after its first ping, never sending
    a second one."""
    stub = ohws_stub_server_factory()
    ws, rec = opened(stub.url, {"pingInterval": 1, "pongTimeout": 1})
    assert len(stub.wait_for_pings(3)) == 3
    assert "close" not in rec.events()
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    assert rec.wait_for("close").value == CloseResult(1000, "")
    assert "error" not in rec.events()


def test_live_control(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """send(), close_all() and drop_all() act on the live connections."""
    stub = ohws_stub_server_factory(echo=False)
    _, rec = opened(stub.url)
    stub.send("pushed")
    stub.send(Fragmented([b"x", b"y"]))
    assert [rec.wait_for("message").value for _ in range(2)] == ["pushed", b"xy"]
    stub.close_all(4444, "now")
    assert rec.wait_for("close").value == CloseResult(4444, "now")
    _, rec2 = opened(stub.url)
    stub.drop_all()
    assert rec2.wait_for("close").value.code == 1006


def test_tls_stub(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """tls=True serves wss:// with a generated certificate; client_options trusts it."""
    stub = ohws_stub_server_factory(tls=True)
    assert stub.url.startswith("wss://")
    ws, rec = opened(stub.url, stub.client_options)
    ws.send("secret")
    assert rec.wait_for("message").value == "secret"
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    plain = webSocket.createWebSocket()
    with pytest.raises(BusinessError) as info:
        plain.connect(stub.url).result(TIMEOUT)  # type: ignore[union-attr]
    assert (info.value.code, info.value.data) == (200, "0")
    assert "certificate" in info.value.message.lower(), "the stub's certificate is not trusted by default"


def test_wait_for_messages_times_out() -> None:
    """wait_for_messages raises TimeoutError when the messages never come."""
    with StubServer() as stub, pytest.raises(TimeoutError):
        stub.wait_for_messages(1, timeout=0.1)


# ---------------------------------------------------------------- the README example


class Greeter:
    """A tiny app under test: says hello on open and remembers the reply."""

    def __init__(self, url: str) -> None:
        self.replies: list[str | bytes] = []
        self.ws = webSocket.createWebSocket()
        self.ws.on("open", lambda err, value: self.ws.send("hello"))
        self.ws.on("message", lambda err, data: self.replies.append(data))
        self.ws.connect(url)


def test_testing_an_app_with_the_stub(ohws_stub_server: StubServer) -> None:
    """An app is tested against the stub: what it sent, and how it handled the echo."""
    app = Greeter(ohws_stub_server.url)
    assert ohws_stub_server.wait_for_messages(1) == ["hello"]
    deadline = time.monotonic() + TIMEOUT
    while not app.replies and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.replies == ["hello"]
    app.ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_stop_right_after_start_is_quiet() -> None:
    """A StubServer stopped before its accept thread ran raises nothing in that thread."""
    for _ in range(50):
        StubServer().stop()
