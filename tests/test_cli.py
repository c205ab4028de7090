"""The ``ohws`` command line, run as a subprocess (``python -m ohws``)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from ohws import webSocket
from ohws._version import __version__ as ohws_version
from ohws.testing import StubServer

from .proxies import Pproxy
from .recorder import Recorder
from .servers import TIMEOUT, interruptible_child


def ohws(*args: str, stdin: str = "", timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "ohws", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_connect_sends_stdin_lines_and_prints_events(
    ohws_stub_server_factory: Callable[..., StubServer],
) -> None:
    """connect: each stdin line is sent, events are time-stamped, binary is hex, EOF closes cleanly."""
    stub = ohws_stub_server_factory(messages=[b"\x01\xff"], headers={"X-Srv": "1"}, subprotocol=True)
    done = ohws("connect", stub.url, "--header", "X-Token: t1", "--protocol", "chat", stdin="hello\nwörld\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\.\d{3}\] ", line) for line in lines)
    text = done.stdout
    assert "open 101 Switching Protocols" in text
    assert "subprotocol chat" in text
    assert "message binary 2 bytes: 01 ff" in text
    assert "message text 'hello'" in text and "message text 'wörld'" in text
    assert "close 1000" in text
    assert stub.received == ["hello", "wörld"]
    assert stub.requests[0].headers["x-token"] == "t1"


def test_connect_bad_url_exits_2() -> None:
    """A bad URL is a clear message on stderr and exit code 2."""
    done = ohws("connect", "http://example.com")
    assert done.returncode == 2
    assert "Websocket url error" in done.stderr and "'http'" in done.stderr


def test_connect_bad_header_exits_2() -> None:
    """A --header without a colon is a usage error."""
    done = ohws("connect", "ws://127.0.0.1:9", "--header", "nocolon")
    assert done.returncode == 2
    assert "NAME:VALUE" in done.stderr


def test_connect_refused_exits_1() -> None:
    """A refused connection is exit code 1 with the reason."""
    from .proxies import free_port

    done = ohws("connect", f"ws://127.0.0.1:{free_port()}")
    assert done.returncode == 1
    assert "refused" in done.stderr


def test_connect_tls_failure_and_ca_and_insecure(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """wss: unknown CA fails (exit 1, says why); --ca and --insecure connect."""
    stub = ohws_stub_server_factory(tls=True)
    failed = ohws("connect", stub.url)
    assert failed.returncode == 1
    assert "certificate verification failed" in failed.stderr
    assert stub.ca_path is not None
    with_ca = ohws("connect", stub.url, "--ca", stub.ca_path, stdin="x\n")
    assert with_ca.returncode == 0, with_ca.stderr
    insecure = ohws("connect", stub.url, "--insecure", stdin="y\n")
    assert insecure.returncode == 0, insecure.stderr
    assert stub.wait_for_messages(2) == ["x", "y"]


def test_connect_through_a_proxy(ohws_stub_server_factory: Callable[..., StubServer], proxy: Pproxy) -> None:
    """--proxy http://user:pass@host:port tunnels through the proxy."""
    stub = ohws_stub_server_factory()
    since = proxy.mark()
    done = ohws("connect", stub.url, "--proxy", proxy.url("http"), stdin="via proxy\n")
    assert done.returncode == 0, done.stderr
    assert proxy.tunneled("http", f"127.0.0.1:{stub.port}", since)
    since = proxy.mark()
    socks = ohws("connect", stub.url, "--proxy", proxy.url("socks5"), stdin="via socks\n")
    assert socks.returncode == 0, socks.stderr
    assert proxy.tunneled("socks5", f"127.0.0.1:{stub.port}", since)
    assert stub.wait_for_messages(2) == ["via proxy", "via socks"]


def test_connect_ends_when_the_server_closes(ohws_stub_server_factory: Callable[..., StubServer]) -> None:
    """A server close ends the command while its stdin is still open (never written to, never
    closed): the command exits 0 on its own, having printed the close."""
    stub = ohws_stub_server_factory(close=(1001, "going"))
    process = subprocess.Popen(
        [sys.executable, "-m", "ohws", "connect", stub.url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.wait(TIMEOUT) == 0
        assert process.stdout is not None
        assert "close 1001 'going'" in process.stdout.read()
    finally:
        process.kill()
        process.wait(TIMEOUT)
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()


def test_demo_prints_the_seed_flow() -> None:
    """demo: the embedded server and the seed's example flow, open to close."""
    done = ohws("demo")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for expected in (
        "embedded server listening on ws://127.0.0.1:",
        "on open, status: 101, message: Switching Protocols",
        "connect success",
        "send success",
        "on message, message: Hello, client!",
        "on message, message: bye",
        "on close, code is 1000",
        "close success",
    ):
        assert expected in text, expected
    assert text.index("on open") < text.index("on message, message: bye") < text.index("on close")


class Serve:
    """``ohws serve`` in a subprocess; the first line it prints gives the URL."""

    def __init__(self, *args: str, port: int = 0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ohws", "serve", "--port", str(port), *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=interruptible_child,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        self.lines: queue.Queue[str] = queue.Queue()  # read by a thread: every wait is bounded
        threading.Thread(target=self._read, daemon=True).start()
        first = self.lines.get(timeout=TIMEOUT)
        match = re.search(r"listening on (wss?://127\.0\.0\.1:\d+)", first)
        assert match, first
        self.url = match.group(1)

    def _read(self) -> None:
        for line in self.stdout:
            self.lines.put(line)
        self.lines.put("")

    def rest(self) -> str:
        """Everything printed until the process closed its output."""
        text = []
        while line := self.lines.get(timeout=TIMEOUT):
            text.append(line)
        return "".join(text)

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait(TIMEOUT)
        self.stdout.close()


def test_serve_is_an_echo_server() -> None:
    """serve --port 0 prints its URL, echoes, and stops cleanly on SIGINT."""
    with Serve() as serve:
        ws = webSocket.createWebSocket()
        rec = Recorder(ws)
        assert ws.connect(serve.url).result(TIMEOUT) is True  # type: ignore[union-attr]
        ws.send("echo me")
        assert rec.wait_for("message").value == "echo me"
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        serve.process.send_signal(signal.SIGINT)
        assert serve.process.wait(TIMEOUT) == 0
        rest = serve.rest()
        assert "message from 127.0.0.1" in rest and "stopping" in rest


def test_piped_lines_get_every_echo_before_the_close() -> None:
    """printf 'a\\nb\\nc\\n' | ohws connect URL, against ohws serve, five times: every
    run prints all three echoes, then the close (SPEC 4.7: replies before the close)."""
    with Serve() as serve:
        for _ in range(5):
            done = ohws("connect", serve.url, stdin="a\nb\nc\n")
            assert done.returncode == 0, done.stderr
            text = done.stdout
            echoes = [text.find(f"message text '{line}'") for line in "abc"]
            assert -1 not in echoes, text
            assert echoes == sorted(echoes) and echoes[-1] < text.index("close 1000"), text


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_serve_tls_deletes_its_key_material_on_exit(how: signal.Signals) -> None:
    """serve --tls makes a CA, certificate and key in a temporary folder, serves wss:// with
    them, and removes the folder when it stops (SIGTERM or Ctrl-C)."""
    with Serve("--tls") as serve:
        ca_line = serve.lines.get(timeout=TIMEOUT)
        match = re.search(r"CA certificate for clients: (\S+)", ca_line)
        assert match, ca_line
        ca_path = match.group(1)
        folder = os.path.dirname(ca_path)
        assert sorted(os.listdir(folder)) == ["ca.pem", "cert.pem", "key.pem"]
        ws = webSocket.createWebSocket()
        assert ws.connect(serve.url, {"caPath": ca_path}).result(TIMEOUT) is True  # type: ignore[union-attr]
        ws.close().result(TIMEOUT)  # type: ignore[union-attr]
        serve.process.send_signal(how)
        assert serve.process.wait(TIMEOUT) == 0
        assert not os.path.exists(folder)


def test_connect_reconnect_survives_a_server_restart() -> None:
    """connect --reconnect: the server stops (close 1001), the command stays, reconnects once
    the server is back on its port, and its next line is echoed; end of input ends it."""
    client: subprocess.Popen[str] | None = None
    lines: queue.Queue[str] = queue.Queue()

    def wait_line(text: str) -> str:
        while text not in (line := lines.get(timeout=TIMEOUT)):
            pass
        return line

    try:
        with Serve() as first:
            client = subprocess.Popen(
                [sys.executable, "-m", "ohws", "connect", "--reconnect", first.url],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert client.stdout is not None and client.stdin is not None
            stdout = client.stdout
            threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
            wait_line("open 101")
            first.process.send_signal(signal.SIGTERM)
            assert first.process.wait(TIMEOUT) == 0
            assert "(reconnecting)" in wait_line("close 1001")
            wait_line("reconnect attempt 1 in")
        port = first.url.rsplit(":", 1)[1]
        with Serve(port=int(port)):
            wait_line("open 101")
            client.stdin.write("back again\n")
            client.stdin.flush()
            wait_line("message text 'back again'")
            client.stdin.close()
            assert client.wait(TIMEOUT) == 0
    finally:
        if client is not None:
            client.kill()
            client.wait(TIMEOUT)
            if client.stdout:
                client.stdout.close()


def test_version() -> None:
    """ohws --version prints the package version."""
    done = ohws("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"ohws {ohws_version}"


def test_serve_on_a_busy_port_exits_1() -> None:
    """serve on a port in use says so and exits 1."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = ohws("serve", "--port", str(busy.getsockname()[1]))
    assert done.returncode == 1
    assert "already in use" in done.stderr


@pytest.mark.parametrize("command", [[], ["connect"], ["serve"], ["demo"]])
def test_help_everywhere(command: list[str]) -> None:
    """--help works for the program and every command."""
    done = ohws(*command, "--help")
    assert done.returncode == 0
    assert "usage: ohws" in done.stdout


def test_in_process_demo_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """main() in-process: demo succeeds, a bad URL and a bad proxy are usage errors (exit 2)."""
    from ohws._cli import main

    assert main(["demo"]) == 0
    assert "on close, code is 1000" in capsys.readouterr().out
    assert main(["connect", "ws://"]) == 2
    assert "no host" in capsys.readouterr().err
    assert main(["connect", "ws://127.0.0.1:9", "--proxy", "ftp://p:1"]) == 2
    assert "--proxy" in capsys.readouterr().err


def test_in_process_connect(ohws_stub_server: StubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """main(['connect', ...]) in-process with a piped stdin: sends, prints, closes with exit 0."""
    import io

    from ohws._cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO("one\ntwo\n"))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["connect", ohws_stub_server.url, "--timeout", "5", "--proxy", "no-proxy"]) == 0
    assert ohws_stub_server.wait_for_messages(2) == ["one", "two"]
    assert "message text 'two'" in out.getvalue()
