"""A real proxy process on loopback: pproxy (PyPI) speaking HTTP CONNECT and SOCKS5, with auth.

The proxy's verbose log names every tunnel it opens ("http 127.0.0.1:x -> 127.0.0.1:port"),
so a test can prove that its connection went through the proxy.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from .servers import TIMEOUT, die_with_parent

PROXY_USER = "proxyuser"
PROXY_PASSWORD = "pr0xy-s3cret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Pproxy:
    """``pproxy -l http+socks5://127.0.0.1:PORT/#user:password`` as a child process."""

    def __init__(self, log: Path, auth: bool = True) -> None:
        self.port = free_port()
        self.log = log
        credentials = f"#{PROXY_USER}:{PROXY_PASSWORD}" if auth else ""
        uri = f"http+socks5://127.0.0.1:{self.port}/{credentials}"
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", uri, "--auth", "0", "-v"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"pproxy did not start: {log.read_text()}") from None
                time.sleep(0.05)

    def url(
        self, scheme: str = "http", user: str | None = PROXY_USER, password: str | None = PROXY_PASSWORD
    ) -> str:
        auth = f"{user}:{password}@" if user is not None else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}"

    def tunneled_to(self, port: int) -> bool:
        """True once the proxy has logged a tunnel to 127.0.0.1:``port`` (bounded wait)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            self._out.flush()
            if f"-> 127.0.0.1:{port}" in self.log.read_text(errors="replace"):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(TIMEOUT)
        self._out.close()
