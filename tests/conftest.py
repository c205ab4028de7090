"""Shared fixtures: thread-leak guard, a clean proxy environment, loopback servers; with
CI=true, a run that skips a test for a reason not on the allow-list fails."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import pytest

import ohws
from ohws import WebSocket, webSocket

from .certs import Certs, make_certs
from .proxies import Pproxy
from .recorder import Recorder
from .servers import TIMEOUT, echo, websockets_server

# Skips that CI (CI=true) accepts, as a prefix of the skip reason, each with why the CI machine
# (root on Debian, after scripts/install) may still lack it. Any other skip fails a CI run:
# scripts/install provides Xvfb, tkinter, openssl and node there.
CI_ALLOWED_SKIPS = {
    # The container's network namespace is the host's choice: IPv6 may be disabled there, and
    # no package brings it back.
    "no IPv6 loopback on this machine": "the host disabled IPv6",
}
_unexpected_skips: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note each skip whose reason is not on the allow-list (xfails are not skips)."""
    if report.skipped and not hasattr(report, "wasxfail") and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if not reason.startswith(tuple(CI_ALLOWED_SKIPS)):
            _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _unexpected_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _in_ci() and _unexpected_skips:
        terminalreporter.section("skips CI does not allow (CI=true; see CI_ALLOWED_SKIPS)", red=True)
        for line in _unexpected_skips:
            terminalreporter.line(line)


# Shared, process-wide threads: pools (dispatch, idle connection threads) and one timer.
_SHARED_THREADS = ("ohws-dispatch-", "ohws-idle-", "ohws-timer")


def _connection_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("ohws-") and not t.name.startswith(_SHARED_THREADS)
    ]


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    """Fail a test that leaves an ohws-reader/writer thread running (after a bounded grace)."""
    before = {t.name for t in _connection_threads()}
    yield
    # A connection thread goes back to its pool (renamed ohws-idle-<k>) when its job ends.
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        leaked = [t.name for t in _connection_threads() if t.name not in before]
        if not leaked:
            return
        time.sleep(0.01)
    assert not leaked, f"leaked threads: {leaked}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No proxy variable reaches a test unless it sets one; the network policy is reset."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    yield
    ohws.setNetworkPolicy(True, None)


@pytest.fixture
def echo_url() -> Iterator[str]:
    """A websockets echo server on loopback."""
    with websockets_server(echo) as url:
        yield url


@pytest.fixture(params=["websocket-client's socket opener", "its connect()"])
def direct_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A direct connection opens through websocket-client's (private) socket opener, or
    through its connect() should a release drop it: both must behave the same."""
    if request.param == "its connect()":
        import ohws._transport

        monkeypatch.setattr(ohws._transport, "_open_socket", None)


@pytest.fixture
def ws() -> Iterator[WebSocket]:
    """A fresh WebSocket, closed (and waited for) after the test if still connected."""
    sock = webSocket.createWebSocket()
    yield sock
    if sock.state is not ohws.State.CLOSED:
        promise = sock.close()
        if promise is not None:
            with contextlib.suppress(ohws.BusinessError):
                promise.result(TIMEOUT)


@pytest.fixture
def recorder(ws: WebSocket) -> Recorder:
    return Recorder(ws)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A CA, server certificates (good, expired, wrong host) and client keys in four encodings."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pproxy]:
    """pproxy on loopback: HTTP CONNECT and SOCKS5, with a username and password."""
    server = Pproxy(tmp_path_factory.mktemp("pproxy") / "pproxy.log")
    yield server
    server.stop()
