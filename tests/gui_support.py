"""Real GUI loops for the tests: Tk on an Xvfb display, Qt with the offscreen platform.

Waiting is event-driven: Tk's ``wait_variable`` and a Qt ``QEventLoop`` run the toolkit's
loop until a callback says the condition holds, or a timer says the time is up.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import TIMEOUT, die_with_parent

SCREENSHOTS = os.environ.get("OHWS_SCREENSHOTS")  # a folder: tests also save their screenshots there


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A private Xvfb display (skips, naming the package, when Xvfb is not installed)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb; scripts/install does it as root)")
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [xvfb, "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    os.close(write_end)
    try:
        number = _read_display_number(read_end)
    finally:
        os.close(read_end)  # only now: Xvfb dies if the pipe closes before its last write
    if not number or not _x_socket_accepts(number):
        process.kill()
        pytest.fail(f"Xvfb did not start (display {number!r}, exit status {process.poll()})")
    yield f":{number}"
    process.terminate()
    process.wait(TIMEOUT)


def _read_display_number(fd: int) -> str:
    """Read ``-displayfd`` output up to its newline (Xvfb writes the number and the newline
    separately); "" when Xvfb exits or TIMEOUT passes first."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return ""
        chunk = os.read(fd, 64)
        if not chunk:  # Xvfb exited (or closed the pipe) before the newline
            return ""
        data += chunk
    return data.decode().strip()


def _x_socket_accepts(number: str) -> bool:
    """True once the display's Unix socket takes connections (bounded wait)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(f"/tmp/.X11-unix/X{number}")
                return True
            except OSError:
                time.sleep(0.02)
    return False


@pytest.fixture
def tk_root(x_display: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Tk root window on the Xvfb display, destroyed after the test if still alive."""
    tkinter = pytest.importorskip("tkinter")
    monkeypatch.setenv("DISPLAY", x_display)
    root = tkinter.Tk()
    yield root
    with contextlib.suppress(tkinter.TclError):  # the test may have destroyed it
        root.destroy()
    gc.collect()  # tkinter objects must die on the Tk thread, not in another thread's collection


def tk_wait(root: Any, condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Run Tk's loop until ``condition()`` holds (checked every 5 ms of loop time) or timeout."""
    import tkinter

    # The Variable lives only in this dict, dropped below on the Tk thread: a tkinter Variable
    # collected later by another thread's garbage collection would call into Tcl from there.
    state = {"done": tkinter.StringVar(root, "")}
    pending: dict[str, str] = {}

    def check() -> None:
        if condition():
            state["done"].set("yes")
        else:
            pending["check"] = root.after(5, check)

    pending["check"] = root.after(0, check)
    pending["timeout"] = root.after(int(timeout * 1000), lambda: state["done"].set("timeout"))
    root.wait_variable(state["done"])
    outcome = state["done"].get()
    for job in pending.values():
        root.after_cancel(job)
    state.clear()
    return outcome == "yes"


@pytest.fixture(scope="session")
def qt_session() -> Any:
    """The process's QApplication, offscreen (skips when PySide6 is not installed)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    widgets = pytest.importorskip(
        "PySide6.QtWidgets", reason="PySide6 is not installed (pip install ohws[qt])"
    )
    return widgets.QApplication.instance() or widgets.QApplication([])


@pytest.fixture
def qt_app(qt_session: Any) -> Iterator[Any]:
    """The QApplication for one test; afterwards the test's Qt objects are collected here, on
    the main thread (Qt aborts when a widget is destroyed by a collection on another thread)."""
    yield qt_session
    qt_session.processEvents()
    gc.collect()
    qt_session.processEvents()


def qt_wait(condition: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Run Qt's loop until ``condition()`` holds (checked every 5 ms of loop time) or timeout."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: loop.quit() if condition() else None)
    poll.start(5)
    QTimer.singleShot(int(timeout * 1000), loop.quit)
    if not condition():
        loop.exec()
    poll.stop()
    return condition()


def save_screenshot(image_saver: Callable[[Path], None], name: str, tmp_path: Path) -> Path:
    """Save a screenshot under tmp_path (and OHWS_SCREENSHOTS when set); return its path."""
    path = tmp_path / name
    image_saver(path)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        image_saver(Path(SCREENSHOTS) / name)
    return path
