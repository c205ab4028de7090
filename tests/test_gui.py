"""TkDispatcher and QtDispatcher in real GUI loops (Tk under Xvfb, Qt offscreen), and the examples."""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import ohws
from ohws import webSocket
from ohws.testing import StubServer

from .gui_support import qt_app, qt_session, qt_wait, save_screenshot, tk_root, tk_wait, x_display
from .servers import TIMEOUT

__all__ = ["qt_app", "qt_session", "tk_root", "x_display"]  # fixtures used here

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
COUNT = 500


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ThreadLog:
    """Records (what, thread ident) from callbacks and promise handlers."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, int]] = []

    def __call__(self, what: Any) -> None:
        self.entries.append((what, threading.get_ident()))

    def values(self, kind: str) -> list[Any]:
        return [what[1] for what, _ in self.entries if isinstance(what, tuple) and what[0] == kind]


def exercise(ws: ohws.WebSocket, stub: StubServer, log: ThreadLog, wait: Any) -> None:
    """Connect, send COUNT messages, record every callback's thread, close."""
    ws.on("open", lambda err, value: log(("open", value.status)))
    ws.on("message", lambda err, data: log(("message", data)))
    ws.on("close", lambda err, value: log(("close", value.code)))
    promise = ws.connect(stub.url)
    assert promise is not None
    promise.then(lambda ok: log(("then", ok)))
    assert wait(lambda: bool(log.values("then")))
    for i in range(COUNT):
        ws.send(f"m{i}", lambda err, ok, i=i: log(("sent", i)))
    assert wait(lambda: len(log.values("message")) == COUNT)
    ws.close().catch(lambda err: log(("close-failed", err)))  # type: ignore[union-attr]
    assert wait(lambda: bool(log.values("close")))


def assert_main_thread_and_order(log: ThreadLog) -> None:
    main = threading.main_thread().ident
    assert {ident for _, ident in log.entries} == {main}
    assert log.values("message") == [f"m{i}" for i in range(COUNT)]
    assert log.values("sent") == list(range(COUNT))
    assert log.values("open") == [101] and log.values("then") == [True] and log.values("close") == [1000]


# ---------------------------------------------------------------- Tk


def test_tk_callbacks_and_promise_handlers_run_on_the_tk_thread_in_order(tk_root: Any) -> None:
    """Every callback and then-handler of a TkDispatcher connection runs on the Tk thread, in order."""
    log = ThreadLog()
    with StubServer() as stub:
        ws = webSocket.createWebSocket(dispatcher=ohws.TkDispatcher(tk_root))
        exercise(ws, stub, log, lambda condition: tk_wait(tk_root, condition))
    assert_main_thread_and_order(log)


def test_tk_destroy_with_an_open_connection(tk_root: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Destroying the window (the Tk loop never ran: every callback is still pending) drops
    the pending callback batch (a debug record), the dispatcher refuses new work, and the
    connection goes on quietly and still closes."""
    submitted = threading.Event()

    class Watched(ohws.TkDispatcher):
        def submit(self, fn: Any, /, *args: Any) -> None:
            super().submit(fn, *args)
            submitted.set()  # a job is queued for the Tk loop, which never runs here

    with StubServer() as stub:
        dispatcher = Watched(tk_root)
        ws = webSocket.createWebSocket(dispatcher=dispatcher)
        seen: list[Any] = []
        ws.on("message", lambda err, data: seen.append(data))
        promise = ws.connect(stub.url)
        assert promise is not None and promise.result(TIMEOUT) is True
        for i in range(50):
            ws.send(f"late {i}")
        assert submitted.wait(TIMEOUT), "no echo reached the dispatcher"
        with caplog.at_level(logging.DEBUG, logger="ohws"):
            tk_root.destroy()
            dropped = [r.getMessage() for r in caplog.records if "GUI loop ended" in r.getMessage()]
            assert dropped == ["ohws: Watched: GUI loop ended; dropped 1 pending callback batches"]
            with pytest.raises(RuntimeError, match="the GUI loop has ended"):
                dispatcher.submit(seen.append, "after destroy")
            assert stub.wait_for_messages(50)  # echoes keep arriving after the window is gone
            ws.send("after destroy")
            assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
    assert seen == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert ws.state is ohws.State.CLOSED


def test_tk_example_chats_with_the_embedded_server(tk_root: Any, tmp_path: Path) -> None:
    """examples/tk_chat.py, driven by synthetic events, exchanges a message with its server."""
    example = load_example("tk_chat")
    server = example.start_echo_server()
    try:
        window = example.ChatWindow(tk_root, f"ws://127.0.0.1:{server.port}")
        window.connect_button.invoke()
        text = lambda: window.log_view.get("1.0", "end")  # noqa: E731
        assert tk_wait(tk_root, lambda: "connected" in text())
        window.entry.insert(0, "hello from Tk")
        window.entry.focus_force()
        tk_root.update()
        window.entry.event_generate("<Return>")
        assert tk_wait(tk_root, lambda: "server: hello from Tk" in text())
        screenshot = save_screenshot(lambda path: _grab_tk(tk_root, path), "tk_chat.png", tmp_path)
        assert screenshot.stat().st_size > 1000
        window.disconnect_button.invoke()
        assert tk_wait(tk_root, lambda: "closed: code 1000" in text())
    finally:
        server.stop().result(TIMEOUT)


def _grab_tk(root: Any, path: Path) -> None:
    from PIL import ImageGrab

    root.update()
    x, y = root.winfo_rootx(), root.winfo_rooty()
    box = (x, y, x + root.winfo_width(), y + root.winfo_height())
    ImageGrab.grab(bbox=box, xdisplay=root.winfo_screen()).save(path)


# ---------------------------------------------------------------- Qt


def test_qt_callbacks_and_promise_handlers_run_on_the_main_thread_in_order(qt_app: Any) -> None:
    """Every callback and then-handler of a QtDispatcher connection runs on the Qt thread, in order."""
    log = ThreadLog()
    with StubServer() as stub:
        ws = webSocket.createWebSocket(dispatcher=ohws.QtDispatcher())
        exercise(ws, stub, log, qt_wait)
    assert_main_thread_and_order(log)


def test_qt_quit_with_an_open_connection(qt_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """When the application quits, pending callbacks are dropped quietly; the connection closes."""
    from PySide6.QtCore import QTimer

    dispatcher = ohws.QtDispatcher()
    with StubServer() as stub:
        ws = webSocket.createWebSocket(dispatcher=dispatcher)
        ws.on("message", lambda err, data: None)
        promise = ws.connect(stub.url)
        assert promise is not None and promise.result(TIMEOUT) is True
        with caplog.at_level(logging.DEBUG, logger="ohws"):
            QTimer.singleShot(0, qt_app.quit)
            qt_app.exec()  # returns at once, emitting aboutToQuit
            for i in range(20):
                ws.send(f"after quit {i}")
            assert stub.wait_for_messages(20)
            assert ws.close().result(TIMEOUT) is True  # type: ignore[union-attr]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with pytest.raises(RuntimeError, match="GUI loop has ended"):
        dispatcher.submit(print)


def test_qt_example_chats_with_the_embedded_server(qt_app: Any, tmp_path: Path) -> None:
    """examples/qt_chat.py, driven by synthetic events, exchanges a message with its server."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    example = load_example("qt_chat")
    server = example.start_echo_server()
    try:
        window = example.ChatWindow(f"ws://127.0.0.1:{server.port}")
        window.show()
        QTest.mouseClick(window.connect_button, Qt.MouseButton.LeftButton)
        assert qt_wait(lambda: "connected" in window.log_view.toPlainText())
        QTest.keyClicks(window.entry, "hello from Qt")
        QTest.keyClick(window.entry, Qt.Key.Key_Return)
        assert qt_wait(lambda: "server: hello from Qt" in window.log_view.toPlainText())
        screenshot = save_screenshot(lambda path: window.grab().save(str(path)), "qt_chat.png", tmp_path)
        assert screenshot.stat().st_size > 1000
        QTest.mouseClick(window.disconnect_button, Qt.MouseButton.LeftButton)
        assert qt_wait(lambda: "closed: code 1000" in window.log_view.toPlainText())
        window.close()
    finally:
        server.stop().result(TIMEOUT)


def test_qt_example_shows_reconnecting_and_carries_on(qt_app: Any) -> None:
    """examples/qt_chat.py when its server restarts: "reconnecting…" in the window, then
    connected again, and the next message is echoed (the reconnect option, SPEC 14)."""
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    example = load_example("qt_chat")
    server = example.start_echo_server()
    port = server.port
    try:
        window = example.ChatWindow(f"ws://127.0.0.1:{port}")
        window.show()
        QTest.mouseClick(window.connect_button, Qt.MouseButton.LeftButton)
        assert qt_wait(lambda: "connected" in window.log_view.toPlainText())
        stopping = server.stop()  # not .result() here: the client's close reply needs this thread
        assert qt_wait(stopping.done) and stopping.result(0) is True
        assert qt_wait(lambda: "reconnecting… (attempt 1" in window.log_view.toPlainText())
        assert "connection lost: code 1001" in window.log_view.toPlainText()
        assert server.start({"serverIP": "127.0.0.1", "serverPort": port}).result(TIMEOUT)  # same echo
        assert qt_wait(lambda: window.log_view.toPlainText().count("connected") == 2)
        QTest.keyClicks(window.entry, "after the restart")
        QTest.keyClick(window.entry, Qt.Key.Key_Return)
        assert qt_wait(lambda: "server: after the restart" in window.log_view.toPlainText())
        QTest.mouseClick(window.disconnect_button, Qt.MouseButton.LeftButton)
        assert qt_wait(lambda: "closed: code 1000" in window.log_view.toPlainText())
        window.close()
    finally:
        if server.port is not None:
            server.stop().result(TIMEOUT)


def test_importing_ohws_imports_no_toolkit() -> None:
    """import ohws pulls in neither tkinter nor PySide6."""
    import subprocess

    code = "import sys, ohws; print(any(m in sys.modules for m in ('tkinter', 'PySide6')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.stdout.strip() == "False", done.stderr
