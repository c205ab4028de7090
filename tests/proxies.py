"""A real proxy process on loopback: pproxy (PyPI) speaking HTTP CONNECT and SOCKS5, with auth.

The proxy's verbose log names every tunnel it opens with the protocol the client spoke
("http 127.0.0.1:x -> 127.0.0.1:port", "socks5 127.0.0.1:x -> localhost:port", the target as
the client gave it) and every refused login ("Unauthorized SOCKS ..."), so a test can prove how
its connection went through the proxy. The proxy serves a whole session: a test reads only
the lines logged since its :meth:`Pproxy.mark`.
"""

from __future__ import annotations

import re
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

    def mark(self) -> int:
        """Where the log ends now: :meth:`logged` after it reads only what comes later."""
        return self.log.stat().st_size

    def logged(self, pattern: str, since: int) -> bool:
        """True once a whole line logged after byte ``since`` matches the regular expression
        ``pattern`` (bounded wait)."""
        line = re.compile(pattern)
        deadline = time.monotonic() + TIMEOUT
        while True:
            with self.log.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
            complete = text[: text.rfind("\n") + 1].splitlines()
            if any(line.fullmatch(entry) for entry in complete):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def tunneled(self, protocol: str, target: str, since: int) -> bool:
        """True once the proxy has logged, after byte ``since``, a tunnel to ``target``
        (``host:port`` as the client named it) asked for in ``protocol`` (http, socks5)."""
        return self.logged(rf"{re.escape(protocol)} \S+ -> {re.escape(target)}", since)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(TIMEOUT)
        self._out.close()
