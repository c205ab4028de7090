"""Autobahn|Testsuite client driver: runs every case against the fuzzingserver with ohws.

Each case connects to /runCase, echoes every message back (text as text, binary as binary)
and waits for the close event; then /updateReports writes the report.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from ohws import BusinessError, webSocket

SERVER = "ws://127.0.0.1:9001"
AGENT = "ohws"
OPTIONS: dict[str, Any] = {"proxy": "no-proxy", "pingInterval": 0, "maxMessageSize": 0, "closeTimeout": 5}


def fetch_text(path: str) -> str:
    """One text message from a fuzzingserver control path."""
    ws = webSocket.createWebSocket()
    got: list[str] = []
    done = threading.Event()
    ws.on("message", lambda err, data: got.append(data))
    ws.on("close", lambda err, value: done.set())
    ws.connect(f"{SERVER}{path}", OPTIONS).result(30)
    done.wait(60)
    return got[0] if got else ""


def run_case(number: int) -> None:
    ws = webSocket.createWebSocket()
    done = threading.Event()
    ws.on("message", lambda err, data: ws.send(data))
    ws.on("close", lambda err, value: done.set())
    ws.on("error", lambda err: done.set())
    try:
        ws.connect(f"{SERVER}/runCase?case={number}&agent={AGENT}", OPTIONS).result(30)
    except BusinessError:
        return
    if not done.wait(120):
        print(f"case {number}: no close within 120 s", file=sys.stderr)
        ws.close()


def main() -> int:
    count = int(fetch_text("/getCaseCount"))
    started = time.monotonic()
    for number in range(1, count + 1):
        run_case(number)
        if number % 50 == 0:
            print(f"{number}/{count} cases ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    fetch_text(f"/updateReports?agent={AGENT}")
    print(json.dumps({"cases": count, "seconds": round(time.monotonic() - started, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
