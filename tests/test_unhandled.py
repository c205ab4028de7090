"""Unhandled failures are visible: unretrieved rejections and unheard connection errors are logged."""

from __future__ import annotations

import gc
import logging
import queue
import time
import weakref
from typing import Any

import pytest

import ohws
from ohws import BusinessError, ErrorCode, Promise, State, webSocket
from ohws.testing import StubServer

from .servers import TIMEOUT


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ohws" and r.levelno == logging.WARNING]


def collect() -> None:
    gc.collect()


@pytest.fixture(autouse=True)
def clean_slate(caplog: pytest.LogCaptureFixture) -> None:
    """Promises that earlier tests left unlooked-at (freed only by a cycle collection) are
    collected, and logged, now rather than inside this test's own collect()."""
    gc.collect()
    caplog.clear()


def test_rejected_promise_nobody_looked_at_is_logged_when_collected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rejection whose error was never retrieved is a WARNING on 'ohws' naming the error."""
    caplog.set_level(logging.WARNING, "ohws")
    promise = Promise.rejected(BusinessError.of(ErrorCode.UNKNOWN_ERROR, "nobody saw me"))
    del promise
    collect()
    assert len(warnings_of(caplog)) == 1
    assert "nobody saw me" in warnings_of(caplog)[0]


@pytest.mark.parametrize(
    "look",
    [
        lambda p: p.exception(TIMEOUT),
        lambda p: p.then(None, lambda e: None),
        lambda p: p.catch(lambda e: None),
    ],
    ids=["exception", "then", "catch"],
)
def test_retrieved_rejection_is_not_logged(caplog: pytest.LogCaptureFixture, look: Any) -> None:
    """exception() and then/catch handlers count as looking: no warning."""
    caplog.set_level(logging.WARNING, "ohws")
    promise = Promise.rejected(BusinessError.of(ErrorCode.UNKNOWN_ERROR, "seen"))
    look(promise)
    del promise
    collect()
    assert warnings_of(caplog) == []


def test_a_callback_counts_as_looking(caplog: pytest.LogCaptureFixture) -> None:
    """The callback overload (here send() on a never-connected WebSocket, rejected at once)
    hands the error to the callback: its promise, never seen by the caller, is not logged."""
    caplog.set_level(logging.WARNING, "ohws")
    errors: queue.Queue[Any] = queue.Queue()
    assert webSocket.createWebSocket().send("x", lambda err, value: errors.put(err)) is None
    assert errors.get(timeout=TIMEOUT).code == 2302999
    collect()
    assert warnings_of(caplog) == []


def test_result_counts_as_retrieving(caplog: pytest.LogCaptureFixture) -> None:
    """result() raising the error counts as retrieving it."""
    caplog.set_level(logging.WARNING, "ohws")
    promise = Promise.rejected(BusinessError.of(ErrorCode.UNKNOWN_ERROR, "seen"))
    with pytest.raises(BusinessError):
        promise.result(TIMEOUT)
    del promise
    collect()
    assert warnings_of(caplog) == []


def test_fulfilled_promise_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Only rejections are worth a warning."""
    caplog.set_level(logging.WARNING, "ohws")
    promise = Promise.resolved(True)
    del promise
    collect()
    assert warnings_of(caplog) == []


def test_ignored_send_on_a_closed_websocket_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """ws.send() whose promise is dropped still reports the 2302999 it was rejected with."""
    caplog.set_level(logging.WARNING, "ohws")
    webSocket.createWebSocket().send("lost")
    collect()
    assert any("2302999" in line and "not open" in line for line in warnings_of(caplog))


def test_error_of_an_open_connection_without_listener_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dropped connection with no 'error' listener logs its error once, at WARNING."""
    caplog.set_level(logging.WARNING, "ohws")
    with StubServer(drop=True) as stub:
        ws = webSocket.createWebSocket()
        closed: queue.Queue[Any] = queue.Queue()
        ws.on("close", lambda err, value: closed.put(value))
        ws.connect(stub.url).result(TIMEOUT)
        assert closed.get(timeout=TIMEOUT).code == 1006
    lines = [line for line in warnings_of(caplog) if "no 'error' listener" in line]
    assert len(lines) == 1 and "[200]" in lines[0]


def test_error_with_a_listener_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """With an 'error' listener the listener gets the error and nothing is logged."""
    caplog.set_level(logging.WARNING, "ohws")
    with StubServer(drop=True) as stub:
        ws = webSocket.createWebSocket()
        errors: queue.Queue[BusinessError] = queue.Queue()
        ws.on("error", errors.put)
        ws.connect(stub.url).result(TIMEOUT)
        assert errors.get(timeout=TIMEOUT).code == 200
        closed = ws.close()
        assert closed is not None
        with pytest.raises(BusinessError):
            closed.result(TIMEOUT)  # already CLOSED
    collect()
    assert warnings_of(caplog) == []


def test_failed_connect_observed_by_its_promise_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A connect failure with no 'error' listener but a caller looking at the promise: no log."""
    caplog.set_level(logging.WARNING, "ohws")
    with StubServer(reject=(403, {})) as stub:
        ws = webSocket.createWebSocket()
        with pytest.raises(BusinessError):
            ws.connect(stub.url).result(TIMEOUT)
    collect()
    assert warnings_of(caplog) == []
    assert ws.state is State.CLOSED


def test_failed_connect_nobody_observed_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """A connect failure with no listener and an ignored promise is logged once, when collected."""
    caplog.set_level(logging.WARNING, "ohws")
    with StubServer(reject=(403, {})) as stub:
        ws = webSocket.createWebSocket()
        finished: queue.Queue[Any] = queue.Queue()
        # The cancelled connectTimeout timer holds the connection until it would have fired.
        promise = ws.connect(stub.url, {"connectTimeout": 0.5})
        promise.add_done_callback(finished.put)
        finished.get(timeout=TIMEOUT)
        freed = weakref.ref(promise)
        del promise, ws  # the connection holds its connect promise: both go together
        deadline = time.monotonic() + TIMEOUT
        while freed() is not None:  # its warning, if any, is out once it is freed
            assert time.monotonic() < deadline, "the connect promise was never freed"
            collect()
            time.sleep(0.05)
    lines = warnings_of(caplog)
    assert len(lines) == 1 and "403" in lines[0], lines


def test_script_style_errors_are_reported_by_iteration_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ohws.connect WebSockets report a lost connection through receive/iteration only."""
    caplog.set_level(logging.WARNING, "ohws")
    with (
        StubServer(drop=True, echo=False) as stub,
        ohws.connect(stub.url, timeout=TIMEOUT) as ws,
        pytest.raises(BusinessError),
    ):
        list(ws)
    assert warnings_of(caplog) == []
