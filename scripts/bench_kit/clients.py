"""One benchmark measurement in a fresh process: ``clients.py CLIENT SCENARIO WS_PORT TCP_PORT COUNT``.

Prints one JSON object: {"metrics": {name: value}}. Rates are per second (higher is better);
``*_s`` are seconds, ``rss_mb`` megabytes and ``threads`` a count (lower is better).
"""

from __future__ import annotations

import json
import queue
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

TIMEOUT = 120.0
SMALL = "x" * 64
BIG = bytes(range(256)) * 4096  # 1 MiB


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def scale_metrics(n: int, rss_before_kb: int, opened: float, echoed: float) -> dict[str, float]:
    """What every scale client reports: times, RSS added per connection, threads."""
    return {
        "open_s": opened,
        "echo_s": echoed,
        "rss_kb_per_conn": (current_rss_kb() - rss_before_kb) / n,
        "threads": threading.active_count(),
    }


# ---------------------------------------------------------------- ohws


def ohws_exchange(url: str, n: int, window: int, payload: Any) -> float:
    """Callback API: send from the message callback, ``window`` messages in flight."""
    from ohws import webSocket

    ws = webSocket.createWebSocket()
    done = threading.Event()
    state = {"received": 0, "sent": 0}

    def on_message(err: Any, data: Any) -> None:
        state["received"] += 1
        if state["received"] >= n:
            done.set()
        elif state["sent"] < n:
            state["sent"] += 1
            ws.send(payload)

    ws.on("message", on_message)
    ws.connect(url, {"proxy": "no-proxy", "maxMessageSize": 0}).result(TIMEOUT)
    started = time.perf_counter()
    for _ in range(window):
        state["sent"] += 1
        ws.send(payload)
    if not done.wait(TIMEOUT):
        raise TimeoutError(state)
    elapsed = time.perf_counter() - started
    ws.close().result(TIMEOUT)
    return n / elapsed


def ohws_blocking_exchange(url: str, n: int, payload: Any) -> float:
    """Promise API in a plain script: send(...).result() and wait for the echo."""
    from ohws import webSocket

    ws = webSocket.createWebSocket()
    replies: queue.SimpleQueue[Any] = queue.SimpleQueue()
    ws.on("message", lambda err, data: replies.put(data))
    ws.connect(url, {"proxy": "no-proxy", "maxMessageSize": 0}).result(TIMEOUT)
    started = time.perf_counter()
    for _ in range(n):
        ws.send(payload).result(TIMEOUT)
        replies.get(timeout=TIMEOUT)
    elapsed = time.perf_counter() - started
    ws.close().result(TIMEOUT)
    return n / elapsed


def ohws_receive_exchange(url: str, n: int, payload: Any) -> float:
    """The script style: ohws.connect, send, receive() — as websocket-client's send/recv."""
    import ohws

    ws = ohws.connect(url, {"proxy": "no-proxy", "maxMessageSize": 0}, timeout=TIMEOUT)
    started = time.perf_counter()
    for _ in range(n):
        ws.send(payload)
        ws.receive(TIMEOUT)
    elapsed = time.perf_counter() - started
    ws.close().result(TIMEOUT)
    return n / elapsed


def ohws_flood(url: str, n: int) -> float:
    from ohws import webSocket

    ws = webSocket.createWebSocket()
    done = threading.Event()
    count = [0]

    def on_message(err: Any, data: Any) -> None:
        count[0] += 1
        if count[0] == n:
            done.set()

    ws.on("message", on_message)
    ws.connect(url, {"proxy": "no-proxy"}).result(TIMEOUT)
    started = time.perf_counter()
    ws.send("go")
    if not done.wait(TIMEOUT):
        raise TimeoutError(count)
    elapsed = time.perf_counter() - started
    ws.close().result(TIMEOUT)
    return n / elapsed


def ohws_churn(url: str, n: int) -> float:
    from ohws import webSocket

    started = time.perf_counter()
    for _ in range(n):
        ws = webSocket.createWebSocket()
        ws.connect(url, {"proxy": "no-proxy"}).result(TIMEOUT)
        ws.close().result(TIMEOUT)
    return n / (time.perf_counter() - started)


def ohws_scale(url: str, n: int) -> dict[str, float]:
    from ohws import webSocket

    warm = webSocket.createWebSocket()  # the pools and the timer exist before the baseline
    warm.connect(url, {"proxy": "no-proxy"}).result(TIMEOUT)
    warm.close().result(TIMEOUT)
    rss_before = current_rss_kb()
    sockets = [webSocket.createWebSocket() for _ in range(n)]
    echoes: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for ws in sockets:
        ws.on("message", lambda err, data: echoes.put(data))
    started = time.perf_counter()
    promises = [ws.connect(url, {"proxy": "no-proxy"}) for ws in sockets]
    for promise in promises:
        promise.result(TIMEOUT)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    for ws in sockets:
        ws.send("x")
    for _ in range(n):
        echoes.get(timeout=TIMEOUT)
    echoed = time.perf_counter() - started
    del promises
    metrics = scale_metrics(n, rss_before, opened, echoed)
    for promise in [ws.close() for ws in sockets]:
        promise.result(TIMEOUT)
    return metrics


def ohws_receive_scale(url: str, n: int) -> dict[str, float]:
    """The script style, written as websocket-client's loop is: ``ohws.connect`` one by one,
    then send on each and ``receive()`` on each (the message comes from the reader thread's
    queue, without the dispatch hop that callbacks take)."""
    import ohws

    return blocking_scale(lambda: ohws.connect(url, {"proxy": "no-proxy"}, timeout=TIMEOUT), n, "receive")


# ---------------------------------------------------------------- websocket-client (blocking)


def wsc_exchange(url: str, n: int, window: int, payload: Any) -> float:
    import websocket

    ws = websocket.create_connection(url, timeout=TIMEOUT)
    send = ws.send_binary if isinstance(payload, bytes) else ws.send
    started = time.perf_counter()
    for _ in range(window):
        send(payload)
    for i in range(n):
        ws.recv()
        if i + window < n:
            send(payload)
    elapsed = time.perf_counter() - started
    ws.close()
    return n / elapsed


def wsc_flood(url: str, n: int) -> float:
    import websocket

    ws = websocket.create_connection(url, timeout=TIMEOUT)
    started = time.perf_counter()
    ws.send("go")
    for _ in range(n):
        ws.recv()
    elapsed = time.perf_counter() - started
    ws.close()
    return n / elapsed


def wsc_churn(url: str, n: int) -> float:
    import websocket

    started = time.perf_counter()
    for _ in range(n):
        websocket.create_connection(url, timeout=TIMEOUT).close()
    return n / (time.perf_counter() - started)


def blocking_scale(connect: Callable[[], Any], n: int, receive: str = "recv") -> dict[str, float]:
    """Open ``n`` blocking connections one by one, then one echo on each (sent on every
    connection first, then received on each with its method ``receive``)."""
    connect().close()
    rss_before = current_rss_kb()
    started = time.perf_counter()
    sockets = [connect() for _ in range(n)]
    opened = time.perf_counter() - started
    started = time.perf_counter()
    for ws in sockets:
        ws.send("x")
    for ws in sockets:
        getattr(ws, receive)()
    echoed = time.perf_counter() - started
    metrics = scale_metrics(n, rss_before, opened, echoed)
    for ws in sockets:
        ws.close()
    return metrics


def wsc_scale(url: str, n: int) -> dict[str, float]:
    import websocket

    return blocking_scale(lambda: websocket.create_connection(url, timeout=TIMEOUT), n)


# ---------------------------------------------------------------- websocket-client WebSocketApp


def app_exchange(url: str, n: int, window: int, payload: Any) -> float:
    import websocket

    state = {"received": 0, "sent": 0, "started": 0.0, "elapsed": 0.0}
    opcode = websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else websocket.ABNF.OPCODE_TEXT

    def on_open(app: Any) -> None:
        state["started"] = time.perf_counter()
        for _ in range(window):
            state["sent"] += 1
            app.send(payload, opcode)

    def on_message(app: Any, data: Any) -> None:
        state["received"] += 1
        if state["received"] >= n:
            state["elapsed"] = time.perf_counter() - state["started"]
            app.close()
        elif state["sent"] < n:
            state["sent"] += 1
            app.send(payload, opcode)

    websocket.WebSocketApp(url, on_open=on_open, on_message=on_message).run_forever()
    return n / state["elapsed"]


def app_flood(url: str, n: int) -> float:
    import websocket

    state = {"received": 0, "started": 0.0, "elapsed": 0.0}

    def on_open(app: Any) -> None:
        state["started"] = time.perf_counter()
        app.send("go")

    def on_message(app: Any, data: Any) -> None:
        state["received"] += 1
        if state["received"] == n:
            state["elapsed"] = time.perf_counter() - state["started"]
            app.close()

    websocket.WebSocketApp(url, on_open=on_open, on_message=on_message).run_forever()
    return n / state["elapsed"]


def app_churn(url: str, n: int) -> float:
    import websocket

    started = time.perf_counter()
    for _ in range(n):
        websocket.WebSocketApp(url, on_open=lambda app: app.close()).run_forever()
    return n / (time.perf_counter() - started)


def app_scale(url: str, n: int) -> dict[str, float]:
    import websocket

    opened_all = threading.Semaphore(0)
    echoes: queue.SimpleQueue[Any] = queue.SimpleQueue()
    rss_before = current_rss_kb()
    apps = [
        websocket.WebSocketApp(
            url, on_open=lambda app: opened_all.release(), on_message=lambda app, data: echoes.put(data)
        )
        for _ in range(n)
    ]
    started = time.perf_counter()
    threads = [threading.Thread(target=app.run_forever, daemon=True) for app in apps]
    for thread in threads:
        thread.start()
    for _ in range(n):
        opened_all.acquire(timeout=TIMEOUT)
    opened = time.perf_counter() - started
    started = time.perf_counter()
    for app in apps:
        app.send("x")
    for _ in range(n):
        echoes.get(timeout=TIMEOUT)
    echoed = time.perf_counter() - started
    metrics = scale_metrics(n, rss_before, opened, echoed)
    for app in apps:
        app.close()
    return metrics


# ---------------------------------------------------------------- websockets (threaded client)


def wsk_exchange(url: str, n: int, window: int, payload: Any) -> float:
    from websockets.sync.client import connect

    with connect(url, compression=None, max_size=None) as ws:
        started = time.perf_counter()
        for _ in range(window):
            ws.send(payload)
        for i in range(n):
            ws.recv()
            if i + window < n:
                ws.send(payload)
        return n / (time.perf_counter() - started)


def wsk_flood(url: str, n: int) -> float:
    from websockets.sync.client import connect

    with connect(url, compression=None) as ws:
        started = time.perf_counter()
        ws.send("go")
        for _ in range(n):
            ws.recv()
        return n / (time.perf_counter() - started)


def wsk_churn(url: str, n: int) -> float:
    from websockets.sync.client import connect

    started = time.perf_counter()
    for _ in range(n):
        connect(url, compression=None).close()
    return n / (time.perf_counter() - started)


def wsk_scale(url: str, n: int) -> dict[str, float]:
    from websockets.sync.client import connect

    return blocking_scale(lambda: connect(url, compression=None), n)


# ---------------------------------------------------------------- raw TCP (the floor)


def bare_thread_scale(port: int, n: int) -> dict[str, float]:
    """The floor of the thread-per-connection shape: ``n`` TCP connections to the raw echo
    server, each with a thread blocked in ``recv(2048)``; then one byte echoed on each."""
    echoes: queue.SimpleQueue[bytes] = queue.SimpleQueue()

    def reader(sock: socket.socket) -> None:
        while data := sock.recv(2048):
            echoes.put(data)

    rss_before = current_rss_kb()
    started = time.perf_counter()
    sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    for sock in sockets:
        threading.Thread(target=reader, args=(sock,), daemon=True).start()
    opened = time.perf_counter() - started
    started = time.perf_counter()
    for sock in sockets:
        sock.sendall(b"x")
    for _ in range(n):
        echoes.get(timeout=TIMEOUT)
    echoed = time.perf_counter() - started
    metrics = scale_metrics(n, rss_before, opened, echoed)
    for sock in sockets:
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    return metrics



def tcp_exchange(port: int, n: int, window: int) -> float:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = SMALL.encode()
    size = len(payload)
    started = time.perf_counter()
    for _ in range(window):
        sock.sendall(payload)
    pending = 0
    for i in range(n):
        while pending < size:
            pending += len(sock.recv(65536))
        pending -= size
        if i + window < n:
            sock.sendall(payload)
    elapsed = time.perf_counter() - started
    sock.close()
    return n / elapsed


# ---------------------------------------------------------------- table


def measure(client: str, scenario: str, ws_port: int, tcp_port: int, count: int) -> dict[str, float]:
    echo = f"ws://127.0.0.1:{ws_port}/echo"
    flood = f"ws://127.0.0.1:{ws_port}/flood?n={count}&size=64"
    exchanges: dict[str, Callable[[str, int, int, Any], float]] = {
        "ohws": ohws_exchange,
        "websocket-client": wsc_exchange,
        "WebSocketApp": app_exchange,
        "websockets": wsk_exchange,
    }
    shapes = {"rtt64": (1, SMALL), "win32": (32, SMALL), "big1m": (1, BIG)}
    if scenario in shapes:
        window, payload = shapes[scenario]
        if client == "raw-tcp":
            return {"rate": tcp_exchange(tcp_port, count, window)}
        if client == "ohws-blocking":
            return {"rate": ohws_blocking_exchange(echo, count, payload)}
        if client == "ohws-receive":
            return {"rate": ohws_receive_exchange(echo, count, payload)}
        return {"rate": exchanges[client](echo, count, window, payload)}
    if scenario == "flood":
        floods = {"ohws": ohws_flood, "websocket-client": wsc_flood, "WebSocketApp": app_flood, "websockets": wsk_flood}
        return {"rate": floods[client](flood, count)}
    if scenario == "churn":
        churns = {"ohws": ohws_churn, "websocket-client": wsc_churn, "WebSocketApp": app_churn, "websockets": wsk_churn}
        return {"rate": churns[client](echo, count)}
    if scenario.startswith("scale"):
        if client == "bare-thread":
            return bare_thread_scale(tcp_port, count)
        if client == "ohws-receive":
            return ohws_receive_scale(echo, count)
        scales = {"ohws": ohws_scale, "websocket-client": wsc_scale, "WebSocketApp": app_scale, "websockets": wsk_scale}
        return scales[client](echo, count)
    raise SystemExit(f"unknown scenario {scenario}")


def main() -> None:
    client, scenario, ws_port, tcp_port, count = sys.argv[1:6]
    raise_fd_limit()
    metrics = measure(client, scenario, int(ws_port), int(tcp_port), int(count))
    print(json.dumps({"metrics": metrics}), flush=True)


if __name__ == "__main__":
    main()
