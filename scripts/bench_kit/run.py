"""scripts/bench: ohws and its peers against one Node ``ws`` server, interleaved, medians and ratios.

Each measurement runs in a fresh process (clients.py), clients interleaved A B C A B C ... per
scenario and run. The table shows medians; "ohws/best" compares ohws with the best Python peer
(>= 1.0 means ohws is as good or better: rate ratio for rates, inverse ratio for costs), and
"per run" the lowest and highest of that ratio taken run by run (the clients of one run ran
side by side): how far the machine's drift can move it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from procs import die_with_parent  # noqa: E402
ROOT = HERE.parent.parent

PEERS = ["websocket-client", "WebSocketApp", "websockets"]
SCENARIOS: dict[str, dict[str, Any]] = {
    # Counts long enough (a second or more per run) that one stall of the machine does not
    # decide a run: with 300 churn cycles (~0.3 s) ratios ranged 0.76-2.06 within one sitting.
    "rtt64": {
        "count": 20000,
        "quick": 200,
        "clients": ["ohws", "ohws-blocking", "ohws-receive", *PEERS, "raw-tcp", "node-ws"],
    },
    "win32": {"count": 20000, "quick": 500, "clients": ["ohws", *PEERS, "raw-tcp", "node-ws"]},
    "big1m": {"count": 200, "quick": 5, "clients": ["ohws", "ohws-blocking", *PEERS, "node-ws"]},
    "flood": {"count": 100000, "quick": 1000, "clients": ["ohws", *PEERS, "node-ws"]},
    "churn": {"count": 1500, "quick": 20, "clients": ["ohws", *PEERS]},
    "scale": {"count": 1000, "quick": 50, "clients": ["ohws", "ohws-receive", *PEERS, "bare-thread"]},
    # 10,000 connections: websocket-client (no thread per connection) and the bare-thread floor
    "scale10k": {"count": 10000, "quick": 100, "clients": ["ohws", "ohws-receive", "websocket-client", "bare-thread"]},
}
#: server scenarios: each echo server in turn, driven by the same Node load client (node_load.js)
SERVERS = ["ohws", "websockets", "node-ws"]
SERVER_PEER = "websockets"  # ohws's server is compared with the websockets threaded server
SERVER_SCENARIOS: dict[str, dict[str, Any]] = {
    "server-echo1": {"mode": "echo", "clients": 1, "count": 40000, "quick": 500},
    "server-echo100": {"mode": "echo", "clients": 100, "count": 100000, "quick": 1000},
    "server-connect": {"mode": "connect", "clients": 10, "count": 2000, "quick": 50},
}
LOWER_IS_BETTER = {"open_s", "echo_s", "rss_kb_per_conn", "threads"}
REFERENCES = {"raw-tcp", "node-ws", "ohws-blocking", "ohws-receive", "bare-thread"}  # shown, not counted as peers
RECV_PEERS = ["websocket-client", "websockets"]  # the blocking recv() loops ohws-receive is measured against


def start_server() -> tuple[subprocess.Popen[str], int, int]:
    server = subprocess.Popen(
        ["node", str(HERE / "server.js")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
        preexec_fn=die_with_parent,
    )
    assert server.stdout is not None
    ports = json.loads(server.stdout.readline())
    return server, int(ports["ws"]), int(ports["tcp"])


def start_echo_server(kind: str) -> tuple[subprocess.Popen[str], int]:
    """One measured server in its own process; returns it and its WebSocket port."""
    if kind == "node-ws":
        command = ["node", str(HERE / "server.js")]
    else:
        command = [sys.executable, str(HERE / "servers.py"), kind]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=HERE, env=env, preexec_fn=die_with_parent)
    assert server.stdout is not None
    ports = json.loads(server.stdout.readline())
    return server, int(ports.get("port") or ports["ws"])


def run_server_one(kind: str, scenario: str, count: int) -> dict[str, float] | None:
    spec = SERVER_SCENARIOS[scenario]
    server, port = start_echo_server(kind)
    try:
        command = ["node", str(HERE / "node_load.js"), spec["mode"], str(port), str(count), str(spec["clients"])]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=HERE)
    except subprocess.TimeoutExpired:
        print(f"  {kind} server {scenario}: timed out", file=sys.stderr)
        return None
    finally:
        server.terminate()
        server.wait(60)
        if server.stdout:
            server.stdout.close()
    if done.returncode != 0:
        print(f"  {kind} server {scenario}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    metrics: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])["metrics"]
    return metrics


def run_one(client: str, scenario: str, ws_port: int, tcp_port: int, count: int) -> dict[str, float] | None:
    if client == "node-ws":
        command = ["node", str(HERE / "node_client.js"), scenario, str(ws_port), str(count)]
    else:
        command = [sys.executable, str(HERE / "clients.py"), client, scenario, str(ws_port), str(tcp_port), str(count)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=HERE, env=env)
    except subprocess.TimeoutExpired:
        print(f"  {client} {scenario}: timed out", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"  {client} {scenario}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    metrics: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])["metrics"]
    return metrics


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _versus_best(values: dict[str, float], peers: list[str], lower_is_better: bool) -> float | None:
    """ohws's value over the best peer's (the inverse for times and sizes): >= 1 is as good."""
    ours = values.get("ohws")
    peer_values = [values[p] for p in peers if p in values]
    if not ours or not peer_values:
        return None
    if lower_is_better:
        return min(peer_values) / ours
    return ours / max(peer_values)


def _ratios_by_run(runs: list[dict[str, dict[str, float]]], metric: str, clients: list[str]) -> list[float]:
    """``_versus_best`` run by run: how far the machine's drift moves the median's ratio.
    ``clients`` are ohws and the peers that have a median; a run where one of them failed is
    left out (without its best peer the ratio would come out too high)."""
    peers, lower = clients[1:], metric in LOWER_IS_BETTER
    ratios = []
    for run in runs:
        if all(client in run and metric in run[client] for client in clients):
            ratio = _versus_best({client: run[client][metric] for client in clients}, peers, lower)
            if ratio is not None:
                ratios.append(ratio)
    return ratios


def _rotated(names: list[str], number: int) -> list[str]:
    """Run ``number``'s order: each name starts one run in turn, so no one always runs first
    (right after another scenario) or right after the same neighbour; the machine's drift
    within a run then falls on every client alike."""
    shift = number % len(names)
    return [*names[shift:], *names[:shift]]


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts, one run: a smoke test")
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per scenario (default 5)")
    parser.add_argument(
        "--only", nargs="*", choices=[*SCENARIOS, *SERVER_SCENARIOS], help="scenarios to run"
    )
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "results.json", help="where to write results")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    server, ws_port, tcp_port = start_server()
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    # What each run gave, client by client (a failed measurement is absent): run i of every
    # client ran side by side, so these give the ratio run by run.
    by_run: dict[str, list[dict[str, dict[str, float]]]] = {}
    chosen = args.only or [*SCENARIOS, *SERVER_SCENARIOS]
    try:
        for scenario in [s for s in chosen if s in SCENARIOS]:
            spec = SCENARIOS[scenario]
            count = spec["quick"] if args.quick else spec["count"]
            print(f"{scenario}: {runs} run(s) x {len(spec['clients'])} clients, count {count}", file=sys.stderr)
            for number in range(runs):
                run: dict[str, dict[str, float]] = {}
                by_run.setdefault(scenario, []).append(run)
                for client in _rotated(spec["clients"], number):
                    metrics = run_one(client, scenario, ws_port, tcp_port, count)
                    if metrics:
                        run[client] = metrics
                    for name, value in (metrics or {}).items():
                        samples.setdefault(scenario, {}).setdefault(name, {}).setdefault(client, []).append(value)
    finally:
        server.terminate()
        server.wait(10)
    for scenario in [s for s in chosen if s in SERVER_SCENARIOS]:
        spec = SERVER_SCENARIOS[scenario]
        count = spec["quick"] if args.quick else spec["count"]
        print(f"{scenario}: {runs} run(s) x {len(SERVERS)} servers, count {count}", file=sys.stderr)
        for number in range(runs):
            run = {}
            by_run.setdefault(scenario, []).append(run)
            for kind in _rotated(SERVERS, number):
                metrics = run_server_one(kind, scenario, count)
                if metrics:
                    run[kind] = metrics
                for name, value in (metrics or {}).items():
                    samples.setdefault(scenario, {}).setdefault(name, {}).setdefault(kind, []).append(value)

    medians = {
        scenario: {
            metric: {client: statistics.median(values) for client, values in per_client.items()}
            for metric, per_client in metrics.items()
        }
        for scenario, metrics in samples.items()
    }
    rows = []
    client_header = [
        "scenario",
        "metric",
        "ohws",
        *PEERS,
        "ohws-blocking",
        "ohws-receive",
        "raw-tcp",
        "node-ws",
        "bare-thread",
        "ohws/best",
        "per run",
    ]
    server_header = [
        "scenario",
        "metric",
        *(f"{kind} server" for kind in SERVERS),
        f"ohws/{SERVER_PEER}",
        "per run",
    ]
    for header, peers, names in (
        (client_header, PEERS, [n for n in medians if n in SCENARIOS]),
        (server_header, [SERVER_PEER], [n for n in medians if n in SERVER_SCENARIOS]),
    ):
        if not names:
            continue
        print()
        print(" | ".join(header))
        print(" | ".join("---" for _ in header))
        columns = [c.removesuffix(" server") for c in header[2:-2]]
        for scenario in names:
            for metric, values in medians[scenario].items():
                ratio = _versus_best(values, peers, metric in LOWER_IS_BETTER)
                per_run = _ratios_by_run(by_run[scenario], metric, [c for c in ("ohws", *peers) if c in values])
                spread = f"{fmt(min(per_run))}–{fmt(max(per_run))}" if len(per_run) > 1 else "-"
                cells = [scenario, metric, *(fmt(values.get(c)) for c in columns), fmt(ratio), spread]
                print(" | ".join(cells))
                rows.append(
                    {
                        "scenario": scenario,
                        "metric": metric,
                        "medians": values,
                        "ohws_vs_best_peer": ratio,
                        "ohws_vs_best_peer_by_run": per_run,
                    }
                )
    for scenario, metrics in medians.items():
        rss = metrics.get("rss_kb_per_conn", {})
        floor = rss.get("bare-thread")
        for client in ("ohws", "ohws-receive"):
            if client in rss and floor:
                print(
                    f"{scenario}: {client} RSS per connection {rss[client]:.1f} KB"
                    f" = {rss[client] / floor:.2f} x the bare-thread floor ({floor:.1f} KB)"
                )
    for scenario, metrics in medians.items():
        for metric, values in metrics.items():
            recv_peers = [values[p] for p in RECV_PEERS if p in values]
            if "ohws-receive" not in values or not recv_peers or metric not in ("rate", "open_s", "echo_s"):
                continue
            if metric in LOWER_IS_BETTER:  # as in the table: the best peer's time or size over ohws's
                ratio = min(recv_peers) / values["ohws-receive"]
            else:
                ratio = values["ohws-receive"] / max(recv_peers)
            print(
                f"{scenario} {metric}: ohws.connect/receive vs the best blocking recv() "
                f"({', '.join(p for p in RECV_PEERS if p in values)}): {ratio:.2f}"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
                "runs": runs,
                "samples": samples,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nresults: {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
