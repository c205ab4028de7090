"""examples/blocking_chat.py and examples/asyncio_chat.py run as users run them."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from ohws.testing import StubServer

from .servers import TIMEOUT

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=6 * TIMEOUT,
        check=False,
    )


def test_blocking_chat_with_its_embedded_server() -> None:
    """Each stdin line is sent and its echo printed; end of input closes cleanly."""
    done = run("blocking_chat.py", stdin="hello\nworld\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reply: hello\nreply: world\nclosed\n"


def test_blocking_chat_against_a_stub_server() -> None:
    """Given a URL it talks to that server: the stub records the lines and the 1000 close."""
    with StubServer() as stub:
        done = run("blocking_chat.py", stub.url, stdin="one\n")
        assert stub.wait_for_messages(1) == ["one"]
        assert stub.wait_for_close(TIMEOUT) == 1000
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reply: one\nclosed\n"


def test_blocking_chat_reports_a_refused_connection() -> None:
    """A server that is not there: a one-line failure on stderr and exit code 1."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{probe.getsockname()[1]}"
    done = run("blocking_chat.py", url, stdin="x\n")
    assert done.returncode == 1
    assert done.stderr.startswith("failed: [200]")


def test_asyncio_chat_with_its_embedded_server() -> None:
    """async for prints each echo as it comes, then the loop ends on the clean close."""
    done = run("asyncio_chat.py")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "reply: one\nreply: two\nreply: three\nclosed\n"


def test_asyncio_chat_against_a_stub_server() -> None:
    """Given a URL it talks to that server, which sees the three messages and a 1000 close."""
    with StubServer() as stub:
        done = run("asyncio_chat.py", stub.url)
        assert stub.wait_for_messages(3) == ["one", "two", "three"]
        assert stub.wait_for_close(TIMEOUT) == 1000
    assert done.returncode == 0, done.stderr
