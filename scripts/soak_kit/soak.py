"""scripts/soak: long runs that show no growth and no loss (not part of CI).

1. connect/close cycles: threads, file descriptors and RSS before and after (deltas);
2. reconnect cycles: an ohws server in this process closes the client with 1012 (and every
   20th cycle stops and restarts), the client reconnects; the same deltas;
3. many concurrent connections x many messages of random sizes: content and order checked;
4. a steady-rate run: p50/p99 callback latency (send -> echo callback), and final deltas.
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ohws import webSocket

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "scripts" / "bench_kit"))
from procs import die_with_parent  # noqa: E402
OPTIONS: dict[str, Any] = {"proxy": "no-proxy"}


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Node's ws echo server from scripts/bench_kit if npm installed it, else `ohws serve`."""
    kit = ROOT / "scripts" / "bench_kit"
    if (kit / "node_modules" / "ws").is_dir():
        server = subprocess.Popen(
            ["node", str(kit / "server.js")], stdout=subprocess.PIPE, text=True, cwd=kit, preexec_fn=die_with_parent
        )
        assert server.stdout is not None
        return server, f"ws://127.0.0.1:{json.loads(server.stdout.readline())['ws']}/echo"
    server = subprocess.Popen(
        [sys.executable, "-m", "ohws", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
    )
    assert server.stdout is not None
    return server, server.stdout.readline().split("listening on ")[1].strip()


def usage() -> dict[str, float]:
    """Threads, fds, RSS, and Python's allocated blocks (which show object growth that RSS,
    shaped by the C allocator's per-thread arenas, does not)."""
    gc.collect()
    threads = [t.name for t in threading.enumerate()]
    rss_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return {
        "threads": len(threads),
        "connection_threads": sum(name.startswith(("ohws-open-", "ohws-reader-", "ohws-writer-")) for name in threads),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_mb": rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20,
        "py_blocks": sys.getallocatedblocks(),
    }


def report(title: str, before: dict[str, float], after: dict[str, float]) -> None:
    deltas = ", ".join(f"{k} {before[k]:.0f} -> {after[k]:.0f} ({after[k] - before[k]:+.1f})" for k in before)
    print(f"{title}: {deltas}", flush=True)


def settle() -> None:
    """Let connection threads return to their pool before measuring."""
    deadline = time.monotonic() + 10
    while usage()["connection_threads"] and time.monotonic() < deadline:
        time.sleep(0.05)


def cycles(url: str, count: int) -> None:
    for _ in range(50):  # warm-up: pools, caches
        ws = webSocket.createWebSocket()
        ws.connect(url, OPTIONS).result(10)
        ws.close().result(10)
    settle()
    before = usage()
    started = time.monotonic()
    for _ in range(count):
        ws = webSocket.createWebSocket()
        ws.connect(url, OPTIONS).result(10)
        ws.close().result(10)
    settle()
    report(f"{count} connect/close cycles in {time.monotonic() - started:.1f} s", before, usage())


def reconnects(count: int) -> None:
    """The reconnect option through ``count`` server-side ends: a 1012 close, and every 20th
    cycle a server stop and restart on the same port (with failed attempts in between)."""
    import queue

    server = webSocket.createWebSocketServer()
    clients: queue.Queue[Any] = queue.Queue()
    server.on("connect", clients.put)
    server.on("messageReceive", lambda message: server.send(message.data, message.clientConnection))
    server.start({"serverIP": "127.0.0.1", "serverPort": 0}).result(10)
    port = server.port
    opened: queue.Queue[bool] = queue.Queue()
    echoes: queue.Queue[Any] = queue.Queue()
    ws = webSocket.createWebSocket()
    ws.on("open", lambda err, value: opened.put(True))
    ws.on("message", lambda err, data: echoes.put(data))
    options = {**OPTIONS, "reconnect": {"initialDelay": 0.01, "maxDelay": 0.05, "jitter": 0}}
    ws.connect(f"ws://127.0.0.1:{port}", options).result(10)

    def cycle(number: int) -> None:
        client = clients.get(timeout=10)
        opened.get(timeout=10)
        if number % 20 == 0:
            server.stop().result(10)
            server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(10)
        else:
            server.close(client, {"code": 1012, "reason": "restart"}).result(10)
        ws.send(f"cycle {number}")
        if echoes.get(timeout=10) != f"cycle {number}":
            raise AssertionError(f"cycle {number}: wrong echo")

    for number in range(1, 21):  # warm-up
        cycle(number)
    settle()
    before = usage()
    started = time.monotonic()
    for number in range(21, count + 21):
        cycle(number)
    settle()
    report(f"{count} reconnect cycles in {time.monotonic() - started:.1f} s", before, usage())
    ws.close().result(10)
    server.stop().result(10)


def concurrent(url: str, connections: int, messages: int, rounds: int = 2) -> None:
    """Each connection sends random-size random messages; the echo is checked against a replay
    of the same random stream, so only messages in flight are held in memory. Two rounds: RSS
    after the second round vs the first shows growth; the first round's peak is the allocator's."""
    for round_number in range(1, rounds + 1):
        _concurrent_round(url, connections, messages, seed=round_number)
        settle()
        if round_number == 1:
            before = usage()
        else:
            report(f"  after round {round_number} vs round 1", before, usage())


def _message(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 65536))


def _concurrent_round(url: str, connections: int, messages: int, seed: int, window: int = 8) -> None:
    """``window`` messages in flight per connection; each echo checked, then the next one sent."""
    expected = [random.Random(seed * 1000 + n) for n in range(connections)]
    senders = [random.Random(seed * 1000 + n) for n in range(connections)]
    counts, sent, mismatches, volume = [0] * connections, [0] * connections, [0], [0]
    done = threading.Semaphore(0)
    sockets: list[Any] = []
    # The initial window (main thread) and the callbacks (a dispatch thread) both send: making
    # a message and sending it is one step per connection, so the stream order is the send order.
    send_locks = [threading.Lock() for _ in range(connections)]

    def send_next(n: int) -> None:
        with send_locks[n]:
            if sent[n] < messages:
                sent[n] += 1
                payload = _message(senders[n])
                volume[0] += len(payload)
                sockets[n].send(payload)

    for n in range(connections):
        ws = webSocket.createWebSocket()

        def on_message(err: Any, data: Any, n: int = n) -> None:
            if data != _message(expected[n]):  # in order and intact, or not
                mismatches[0] += 1
            counts[n] += 1
            if counts[n] == messages:
                done.release()
            send_next(n)

        ws.on("message", on_message)
        ws.connect(url, OPTIONS).result(10)
        sockets.append(ws)
    started = time.monotonic()
    for n in range(connections):
        for _ in range(window):
            send_next(n)
    for _ in range(connections):
        if not done.acquire(timeout=600):
            raise SystemExit("soak: concurrent messages did not all come back")
    elapsed = time.monotonic() - started
    for ws in sockets:
        ws.close().result(30)
    verdict = "all content and order verified" if not mismatches[0] else f"{mismatches[0]} messages MISMATCHED"
    print(f"{connections} connections x {messages} messages ({volume[0] / 2**20:.0f} MiB each way) "
          f"in {elapsed:.1f} s: {verdict}", flush=True)
    if mismatches[0]:
        raise SystemExit(1)


def steady(url: str, minutes: float, rate: int) -> None:
    """Latencies go into a preallocated histogram (1 us buckets up to 100 ms), so the run holds
    no per-message data and the RSS delta is the library's."""
    buckets = array.array("L", bytes(8 * 100_001))
    ws = webSocket.createWebSocket()

    def on_message(err: Any, data: Any) -> None:
        micros = int((time.perf_counter() - float(data)) * 1e6)
        buckets[min(micros, 100_000)] += 1

    ws.on("message", on_message)
    ws.connect(url, OPTIONS).result(10)
    before = usage()
    end = time.monotonic() + minutes * 60
    interval, sent, next_at = 1 / rate, 0, time.monotonic()
    while time.monotonic() < end:
        ws.send(repr(time.perf_counter()))
        sent += 1
        next_at += interval
        time.sleep(max(next_at - time.monotonic(), 0))
    time.sleep(1)  # the last echoes
    ws.close().result(10)
    echoed = sum(buckets)
    p50, p99 = _percentile(buckets, 0.50), _percentile(buckets, 0.99)
    print(f"steady {minutes:g} min at {rate}/s: {echoed}/{sent} echoed, callback latency "
          f"p50 {p50} us, p99 {p99} us", flush=True)
    settle()
    report("  after (connection closed)", before, usage())


def _percentile(buckets: array.array[int], fraction: float) -> int:
    target, seen = fraction * sum(buckets), 0
    for micros, count in enumerate(buckets):
        seen += count
        if seen >= target:
            return micros
    return len(buckets) - 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--reconnects", type=int, default=200, help="reconnect cycles (0 skips them)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the concurrent phase (>= 2)")
    parser.add_argument("--minutes", type=float, default=10.0, help="steady run length (0 skips it)")
    parser.add_argument("--rate", type=int, default=1000, help="steady messages per second")
    args = parser.parse_args()
    server, url = start_server()
    try:
        cycles(url, args.cycles)
        if args.reconnects:
            reconnects(args.reconnects)
        concurrent(url, args.connections, args.messages, max(args.rounds, 2))
        if args.minutes:
            steady(url, args.minutes, args.rate)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
