"""The README's code runs as written: the quickstart script and the pytest example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ohws.testing import StubServer

from .servers import TIMEOUT

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section whose heading starts with ``section``."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start : end if end >= 0 else None], re.S)


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=6 * TIMEOUT, check=False, **kwargs
    )  # type: ignore[call-overload, no-any-return]


def test_quickstart_script_prints_the_echo() -> None:
    """The quickstart's blocking script, pointed at an echo server, prints the reply."""
    (script,) = python_blocks("Quickstart")
    with StubServer() as stub:
        done = run(["-c", script.replace("ws://127.0.0.1:8080", stub.url)])
        assert stub.wait_for_close(TIMEOUT) == 1000
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Hello, server!\n"


def test_pytest_example_passes(tmp_path: Path) -> None:
    """The 'Testing an app' example is a test file that passes with the ohws pytest plugin."""
    (example,) = python_blocks("Testing an app")
    (tmp_path / "test_example.py").write_text(example, encoding="utf-8")
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
