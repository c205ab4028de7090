"""The interop scenario's data and the record of each run, for ``scripts/interop-matrix``.

Every test in ``tests/test_interop.py`` runs the same steps (:data:`STEPS`) between ohws and one
peer, and records each step as ``pass``, ``fail`` or ``n/a`` (with why) in
``.interop/results.json``, one entry per peer and direction; ``scripts/interop-matrix`` renders
that file as the README's table. A peer that cannot be installed fails its test under
``CI=true`` and is skipped elsewhere; either way the entry says why.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .node_support import Unavailable, install_node_peer
from .servers import TIMEOUT

RESULTS = Path(__file__).resolve().parent.parent / ".interop" / "results.json"

# The steps, in order, with the matrix's column titles.
STEPS = {
    "open": "`chat`",
    "text": "non-BMP text",
    "binary-2": "2 B binary",
    "binary-8MiB": "8 MiB binary",
    "text-100KB": "100 KB text",
    "fragmented": "fragments from peer",
    "ping": "ping from peer",
    "server-close": "server close 4001",
    "client-close": "client close 1000",
}
CLIENT_TO_PEER = "ohws client → server"
PEER_TO_SERVER = "client → ohws server"

# What is sent; every peer echoes it. The three commands ask a peer server to act.
TEXT = "ohws ✓ 𝄞 😀 — non-BMP: U+1D11E, U+1F600"
BINARY_2 = b"\x00\xff"
BINARY_8MIB = (bytes(range(251)) * (8 * 1024 * 1024 // 251 + 1))[: 8 * 1024 * 1024]  # i % 251, as Node
TEXT_100KB = "x" * 100_000
FRAGMENTS = ["frag", "ment", "ed 🎉"]
PING = b"ohws-ping"
CMD_FRAGMENT, CMD_PING, CMD_CLOSE = "cmd:fragment", "cmd:ping", "cmd:close"
CLIENT_DONE = "client done"  # the reason of the client's 1000 close, found in the server's record
MAX_SIZE = 16 * 1024 * 1024  # peers whose default limit is under 8 MiB are given this one


def peer_version(packages: tuple[str, ...]) -> str:
    """The installed versions, "aiohttp 3.14.5"; Unavailable when one is missing."""
    versions = []
    for package in packages:
        if package == "node:ws":
            versions.append(install_node_peer())
            continue
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            raise Unavailable(f"{package} is not installed (the `test` extra installs it)") from None
    return ", ".join(versions)


def fail_or_skip(why: str) -> None:
    """A peer that cannot install fails the test under CI=true; elsewhere it is skipped."""
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def require(packages: tuple[str, ...]) -> str:
    """peer_version(), or fail_or_skip() saying what is missing."""
    try:
        return peer_version(packages)
    except Unavailable as exc:
        fail_or_skip(str(exc))
        raise


def digest(data: str | bytes) -> list[Any]:
    """A large message as [kind, length, sha256], as the Node client reports it."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return ["text" if isinstance(data, str) else "binary", len(raw), hashlib.sha256(raw).hexdigest()]


# The echoed steps; a large or binary echo is compared by digest.
ECHOES: dict[str, str | bytes] = {
    "text": TEXT,
    "binary-2": BINARY_2,
    "binary-8MiB": BINARY_8MIB,
    "text-100KB": TEXT_100KB,
}


def observed(step: str, data: Any) -> Any:
    """What a driver reports for an echo step: the text itself, or the message's digest."""
    return data if step == "text" else digest(data)


EXPECTED: dict[str, Any] = {
    "open": "chat",
    **{step: observed(step, data) for step, data in ECHOES.items()},
    "fragmented": "".join(FRAGMENTS),
    "ping": PING.decode(),
    "server-close": [4001, "bye"],
    "client-close": True,
}


def wait_client_close(closes: queue.Queue[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The server's record (code, reason) of the connection the client closed with CLIENT_DONE."""
    seen: list[tuple[Any, Any]] = []
    while True:
        try:
            record = closes.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"the server recorded no close {CLIENT_DONE!r}, only {seen}") from None
        if record[1] == CLIENT_DONE:
            return record
        seen.append(record)


@dataclass
class InteropRun:
    """One peer in one direction: each step's outcome, and a note for a failure or an n/a."""

    peer: str
    version: str
    direction: str
    order: int
    steps: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[bool]:
        """Run one step: ``pass`` when the block ends, ``fail`` (with the error) when it raises."""
        assert name in STEPS and name not in self.steps, name
        try:
            yield True
        except BaseException as exc:
            self.steps[name] = "fail"
            why = str(exc).strip().splitlines() or [type(exc).__name__]
            if isinstance(exc, queue.Empty):  # a bounded wait ran out
                why = [f"nothing arrived within {TIMEOUT:g} s"]
            self.notes[name] = why[0][:200]
            raise
        self.steps[name] = "pass"

    def not_applicable(self, name: str, why: str) -> None:
        """The peer's API cannot do this step (e.g. send a fragmented message)."""
        assert name in STEPS and name not in self.steps, name
        self.steps[name] = "n/a"
        self.notes[name] = why

    def unavailable(self, why: str) -> None:
        """The peer does not install here: fail under CI=true, skip elsewhere."""
        self.notes["unavailable"] = why
        fail_or_skip(f"{self.peer} is not available: {why}")

    def entry(self) -> dict[str, Any]:
        if "unavailable" in self.notes:
            outcome = "unavailable"
        elif all(self.steps.get(name) in ("pass", "n/a") for name in STEPS):
            outcome = "pass"
        else:
            outcome = "fail"
        return {
            "peer": self.peer,
            "version": self.version,
            "direction": self.direction,
            "order": self.order,
            "outcome": outcome,
            "steps": {name: self.steps.get(name, "not run") for name in STEPS},
            "notes": self.notes,
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d"),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "system": platform.system(),
        }


def save(run: InteropRun) -> None:
    """Add or replace the run's entry in RESULTS (entries of other peers stay)."""
    results: dict[str, Any] = {}
    if RESULTS.exists():
        with contextlib.suppress(ValueError):
            results = json.loads(RESULTS.read_text())
    runs = results.get("runs", {})
    runs[f"{run.direction} | {run.peer}"] = run.entry()
    results = {"steps": STEPS, "runs": dict(sorted(runs.items()))}
    RESULTS.parent.mkdir(exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(RESULTS)
