"""SPEC sections 1, 2, 4.1 (validation order), 9 and 10: the public surface and its calling rules."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import pytest

import ohws
from ohws import BusinessError, Promise, State, WebSocket, setNetworkPolicy, webSocket

from .servers import TIMEOUT


def outcome(result: Any, got: queue.Queue[Any] | None = None) -> Any:
    """The error (or value) of a promise, or of the callback that was given instead."""
    if isinstance(result, Promise):
        try:
            return result.result(TIMEOUT)
        except BusinessError as exc:
            return exc
    assert result is None and got is not None
    err, value = got.get(timeout=TIMEOUT)
    return err if err is not None else value


def code_of(result: Any) -> int:
    error = outcome(result)
    assert isinstance(error, BusinessError), error
    return error.code


def test_public_surface_is_pinned() -> None:
    """ohws.__all__ is the public surface of this release."""
    assert sorted(ohws.__all__) == sorted(
        [
            "BusinessError",
            "ClientCert",
            "CloseResult",
            "ErrorCode",
            "HttpProxy",
            "OpenResult",
            "Promise",
            "ProxyConfiguration",
            "QtDispatcher",
            "ReconnectInfo",
            "ReconnectOptions",
            "ResponseHeaders",
            "ServerCert",
            "State",
            "TkDispatcher",
            "TlsProtocol",
            "WebSocket",
            "WebSocketCloseOptions",
            "WebSocketConnection",
            "WebSocketMessage",
            "WebSocketOpenInfo",
            "WebSocketRequestOptions",
            "WebSocketServer",
            "WebSocketServerConfig",
            "__version__",
            "connect",
            "createWebSocket",
            "createWebSocketServer",
            "setNetworkPolicy",
            "webSocket",
        ]
    )
    for name in ohws.__all__:
        assert hasattr(ohws, name), name
    for name in webSocket.__all__:
        assert getattr(webSocket, name) is getattr(ohws, name)
    assert ohws.TlsProtocol.TLS_V_1_3 == 3
    assert isinstance(ohws.__version__, str)


def test_create_websocket_returns_a_closed_websocket() -> None:
    """createWebSocket() gives a new CLOSED WebSocket each time."""
    a, b = webSocket.createWebSocket(), webSocket.createWebSocket()
    assert isinstance(a, WebSocket) and a is not b
    assert a.state is State.CLOSED and a.bufferedAmount == 0
    assert "CLOSED" in repr(a)


def test_results_are_frozen_dataclasses() -> None:
    """Results have attribute access and cannot be modified."""
    result = ohws.CloseResult(1000, "bye")
    assert (result.code, result.reason) == (1000, "bye")
    with pytest.raises(AttributeError):
        result.code = 1001  # type: ignore[misc]


@pytest.mark.parametrize(
    "call",
    [
        lambda ws: ws.connect(123),
        lambda ws: ws.connect("ws://h", "options"),
        lambda ws: ws.connect("ws://h", {}, len, "extra"),
        lambda ws: ws.connect("ws://h", {"nope": 1}),
        lambda ws: ws.send("a", "b"),
        lambda ws: ws.close(1000),
        lambda ws: ws.close({}, {}),
        lambda ws: ws.connect(),
        lambda ws: ws.send(),
        lambda ws: ws.connect("ws://h", bogus=1),
        lambda ws: ws.close(options={}, nope=None),
    ],
)
def test_wrong_shapes_are_401_never_raised(call: Any) -> None:
    """connect/send/close never raise: a bad shape is a 401 rejection."""
    assert code_of(call(webSocket.createWebSocket())) == 401


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda ws: ws.connect(), "the url is missing"),
        (lambda ws: ws.send(), "the data to send is missing"),
        (lambda ws: ws.connect("ws://h", {}, "cb"), "the callback must be callable, not str"),
        (lambda ws: ws.send("x", 5), "the callback must be callable, not int"),
        (lambda ws: ws.send("x", "y", "z"), "too many arguments: send() takes data, callback"),
        (lambda ws: ws.connect("ws://h", bogus=1), "connect() has no parameter 'bogus'"),
        (lambda ws: ws.close(None, options={}), "close() got 'options' both by position and by name"),
    ],
)
def test_a_401_for_the_arguments_says_what_is_wrong(call: Any, words: str) -> None:
    """A missing argument, an extra one, a callback that is not callable and a keyword that is
    not a parameter are each named in the rejection."""
    with pytest.raises(BusinessError) as info:
        call(webSocket.createWebSocket()).result(TIMEOUT)
    assert info.value.code == 401
    assert words in info.value.message


def test_arguments_may_also_be_passed_by_name(echo_url: str) -> None:
    """Python callers may name the parameters (url, options, callback; data; options): the
    same overloads, resolved the same way, with a 401 for a missing one delivered to the named
    callback."""
    ws = webSocket.createWebSocket()
    got: queue.Queue[Any] = queue.Queue()
    on_open = lambda e, v: got.put((e, v))  # noqa: E731
    assert ws.connect(url=echo_url, options={"closeTimeout": 2}, callback=on_open) is None
    assert got.get(timeout=TIMEOUT) == (None, True)
    assert ws.send(data="named").result(TIMEOUT) is True  # type: ignore[union-attr]
    assert ws.send(callback=lambda e, v: got.put((e, v))) is None
    error, _ = got.get(timeout=TIMEOUT)
    assert (error.code, error.message) == (401, "Parameter error: the data to send is missing")
    assert ws.close(options={"code": 4001, "reason": "named"}).result(TIMEOUT) is True  # type: ignore[union-attr]


def test_overload_resolution_by_shape() -> None:
    """A trailing callable is the callback (returns None); otherwise a Promise is returned."""
    ws = webSocket.createWebSocket()
    got: queue.Queue[Any] = queue.Queue()

    def cb(err: Any, value: Any) -> None:
        got.put((err, value))

    assert isinstance(ws.connect("http://bad"), Promise)
    assert isinstance(ws.connect("http://bad", {}), Promise)
    assert isinstance(ws.connect("http://bad", None, None), Promise)
    assert ws.connect("http://bad", cb) is None
    assert got.get(timeout=TIMEOUT)[0].code == 2302001
    assert ws.connect("http://bad", {}, cb) is None
    assert got.get(timeout=TIMEOUT)[0].code == 2302001
    assert ws.close(cb) is None
    assert got.get(timeout=TIMEOUT)[0].code == 2302999
    assert ws.close({"code": 1000}, cb) is None
    assert got.get(timeout=TIMEOUT)[0].code == 2302999
    assert ws.send("x", cb) is None
    assert got.get(timeout=TIMEOUT)[0].code == 2302999
    assert isinstance(ws.close({"code": 1000}), Promise)


def test_callbacks_never_run_on_the_callers_thread() -> None:
    """Even an immediate parameter error is delivered later, on a dispatch thread."""
    ws = webSocket.createWebSocket()
    got: queue.Queue[Any] = queue.Queue()

    def cb(err: Any, value: Any) -> None:
        got.put((threading.current_thread().name, err.code))

    ws.connect("ws://h", {"bad": 1}, cb)
    thread, code = got.get(timeout=TIMEOUT)
    assert code == 401
    assert thread.startswith("ohws-dispatch-")


# ---------------------------------------------------------------- validation order (SPEC 4.1)


def test_401_comes_before_201() -> None:
    """Bad options are reported even when the network is disabled."""
    setNetworkPolicy(allowInternet=False)
    assert code_of(webSocket.createWebSocket().connect("http://x", {"nope": 1})) == 401


def test_201_comes_before_url_error() -> None:
    """With the network disabled, even a bad URL gets 201."""
    setNetworkPolicy(allowInternet=False)
    assert code_of(webSocket.createWebSocket().connect("http://x")) == 201


def test_url_error_comes_before_domain_check() -> None:
    """A bad URL is 2302001 even when its host is not allowed."""
    setNetworkPolicy(allowedDomains=["allowed.example"])
    assert code_of(webSocket.createWebSocket().connect("http://other.example")) == 2302001


def test_domain_check_comes_before_cert_files(tmp_path: Path) -> None:
    """A host outside allowedDomains is 2302998 before certificate files are looked at."""
    setNetworkPolicy(allowedDomains=["allowed.example"])
    ws = webSocket.createWebSocket()
    assert code_of(ws.connect("wss://other.example", {"caPath": str(tmp_path / "missing.pem")})) == 2302998


def test_cert_file_check_comes_before_state(tmp_path: Path, echo_url: str) -> None:
    """A missing certificate file is 2302002 even on an object that is already open."""
    ws = webSocket.createWebSocket()
    assert outcome(ws.connect(echo_url)) is True
    missing = str(tmp_path / "missing.pem")
    assert code_of(ws.connect("wss://127.0.0.1:1", {"caPath": missing})) == 2302002
    error = outcome(
        ws.connect("wss://127.0.0.1:1", {"clientCert": {"certPath": missing, "keyPath": missing}})
    )
    assert error.code == 2302002 and "clientCert.certPath" in error.message
    assert code_of(ws.connect(echo_url)) == 2302003
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]


def test_unusable_ca_file_is_2302999(tmp_path: Path) -> None:
    """A caPath that exists but is not PEM is 2302999 with the TLS library's reason."""
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    error = outcome(webSocket.createWebSocket().connect("wss://127.0.0.1:1", {"caPath": str(bad)}))
    assert error.code == 2302999
    assert "caPath" in error.message


def test_unusable_client_key_is_2302999(tmp_path: Path) -> None:
    """A client certificate file that is not a certificate is 2302999, before any I/O."""
    cert = tmp_path / "c.pem"
    cert.write_text("junk")
    error = outcome(
        webSocket.createWebSocket().connect(
            "wss://127.0.0.1:1",
            {"clientCert": {"certPath": str(cert), "keyPath": str(cert), "keyPassword": "s3cret"}},
        )
    )
    assert error.code == 2302999
    assert "clientCert" in error.message
    assert "s3cret" not in error.message


# ---------------------------------------------------------------- network policy (SPEC 9)


def test_policy_disables_connect_send_close_with_201(echo_url: str) -> None:
    """allowInternet=False makes connect, send and close fail with 201."""
    ws = webSocket.createWebSocket()
    assert outcome(ws.connect(echo_url)) is True
    setNetworkPolicy(allowInternet=False)
    assert code_of(ws.send("x")) == 201
    assert code_of(ws.close()) == 201
    assert code_of(webSocket.createWebSocket().connect(echo_url)) == 201
    setNetworkPolicy()
    assert outcome(ws.close()) is True


def test_allowed_domains_with_wildcards(echo_url: str) -> None:
    """allowedDomains admits exact names and *.suffix; anything else is 2302998."""
    setNetworkPolicy(allowedDomains=["127.0.0.1", "*.example.com"])
    ws = webSocket.createWebSocket()
    assert outcome(ws.connect(echo_url)) is True
    ws.close().result(TIMEOUT)  # type: ignore[union-attr]
    error = outcome(webSocket.createWebSocket().connect("ws://example.com"))
    assert error.code == 2302998
    assert "'example.com'" in error.message
    assert code_of(webSocket.createWebSocket().connect("ws://localhost:1")) == 2302998


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allowInternet": "no"},
        {"allowedDomains": "example.com"},
        {"allowedDomains": [""]},
        {"allowedDomains": [1]},
    ],
)
def test_set_network_policy_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    """setNetworkPolicy raises 401 for wrong argument types."""
    with pytest.raises(BusinessError) as info:
        setNetworkPolicy(**kwargs)
    assert info.value.code == 401
