"""The documentation site (``docs/``): the reference covers the public surface, and the guides'
code runs.

Every ```python block of a guide (``docs/*.md``) runs, in order, in one fresh interpreter per
page (one namespace, like a doctest session) with these names preset:

* ``URL``: a ``ws://`` echo server (``ohws.testing.StubServer``);
* ``WSS_URL`` and ``CA_FILE``: a ``wss://`` echo server and the CA file that trusts it;
* ``PROXY_PORT``: an HTTP CONNECT proxy on 127.0.0.1 that wants ``me`` / ``s3cret``.

A block must finish without an exception and without writing to stderr (a warning an example
provokes, such as a rejected promise nobody looked at, fails it). The line just before a block
may opt it out, with a reason, as an HTML comment (MyST renders nothing for it):

* ``<!-- docs-test: skip (reason) -->``: not run (a GUI main loop, a script waiting on Ctrl-C);
* ``<!-- docs-test: pytest -->``: the block is a test file; pytest runs it and it must pass.

``scripts/docs`` builds the site with warnings as errors, which proves that every directive
here resolves; these tests need no Sphinx.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ohws
import ohws.testing
from ohws import webSocket
from ohws.testing import StubServer

from .servers import TIMEOUT, die_with_parent

DOCS = Path(__file__).resolve().parent.parent / "docs"
REFERENCE = DOCS / "reference"
GUIDES = sorted(DOCS.glob("*.md"))
MAX_OPT_OUTS = 4  # skipped blocks across all guides: the opt-out is for what cannot run, no more


# ---------------------------------------------------------------------- the reference
_DIRECTIVE = re.compile(
    r"^\s*\.\. (?:auto(?:class|function|data|exception|module|method|attribute)|"
    r"py:(?:class|function|data|exception|module|currentmodule)):: +([\w.]+)",
    re.M,
)


def reference_entries() -> set[str]:
    """The full names that the reference pages document (autodoc or py: directives)."""
    documented: set[str] = set()
    for page in REFERENCE.glob("*.rst"):
        module = ""
        for match in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            directive, name = match.group(0), match.group(1)
            if "module::" in directive:
                module = name
                documented.add(name)
            elif "currentmodule::" not in directive:
                documented.add(name if name.startswith("ohws.") else f"{module}.{name}")
    return documented


def public_names() -> list[str]:
    """Every name the three public ``__all__`` lists export, as ``module.name``."""
    return [
        *(f"ohws.{name}" for name in ohws.__all__),
        *(f"ohws.webSocket.{name}" for name in webSocket.__all__),
        *(f"ohws.testing.{name}" for name in ohws.testing.__all__),
    ]


def test_every_public_name_has_a_reference_entry() -> None:
    """Each name in ohws.__all__, ohws.webSocket.__all__ and ohws.testing.__all__ has an entry."""
    documented = reference_entries()
    missing = [name for name in public_names() if name not in documented]
    assert not missing, f"no entry in docs/reference/*.rst for: {', '.join(missing)}"


def test_error_page_has_a_section_for_every_error_code() -> None:
    """docs/errors.md has a '### <code> `<NAME>`' section, with when and what to do, per ErrorCode."""
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    for code in ohws.ErrorCode:
        heading = f"\n### {code.value} `{code.name}`\n"
        assert heading in text, f"no section for {code.value} {code.name}"
        section = text.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        assert "**When:**" in section and "**What to do:**" in section, code.name


# ---------------------------------------------------------------------- the guides' code
@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    mode: str  # "run", "skip" or "pytest"
    code: str


_MARK = re.compile(r"<!-- docs-test: (skip|pytest)\b(.*?)-->")


def python_blocks(page: Path) -> list[Block]:
    """The ```python blocks of ``page``, each with the opt-out written on the line before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            end = lines.index("```", start + 1)
            before = lines[start - 1] if start else ""
            mark = _MARK.search(before)
            mode = mark.group(1) if mark else "run"
            if mode == "skip":
                assert mark is not None and mark.group(2).strip(" ()"), (
                    f"{page.name}:{start + 1}: a skipped block needs a reason"
                )
            blocks.append(Block(page, start + 1, mode, "\n".join(lines[start + 1 : end]) + "\n"))
            index = end
        index += 1
    return blocks


def test_guides_opt_out_of_few_blocks() -> None:
    """At most MAX_OPT_OUTS guide blocks are skipped, and every guide has code that runs."""
    blocks = [block for page in GUIDES for block in python_blocks(page)]
    skipped = [f"{b.page.name}:{b.line}" for b in blocks if b.mode == "skip"]
    assert len(skipped) <= MAX_OPT_OUTS, skipped
    assert sum(b.mode == "run" for b in blocks) >= 20


#: Runs the blocks it reads from stdin in one namespace; ``compile`` gets the page's path and
#: the block is shifted to its line, so a traceback points into the .md file.
RUNNER = """
import json, sys
blocks = json.load(sys.stdin)
namespace = {"__name__": "__main__", **json.loads(sys.argv[1])}
for path, line, code in blocks:
    exec(compile("\\n" * line + code, path, "exec"), namespace)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy_port(tmp_path: Path) -> Iterator[int]:
    """pproxy as an HTTP CONNECT proxy on loopback with Basic auth ``me`` / ``s3cret``."""
    port = free_port()
    with (tmp_path / "pproxy.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pproxy", "-l", f"http://127.0.0.1:{port}/#me:s3cret", "--auth", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            deadline = time.monotonic() + TIMEOUT
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline and process.poll() is None, "pproxy did not start"
                    time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            process.wait(TIMEOUT)


def run_python(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=6 * TIMEOUT,
        check=False,
        cwd=cwd,
    )


PAGES_WITH_CODE = [page for page in GUIDES if python_blocks(page)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=[page.stem for page in PAGES_WITH_CODE])
def test_guide_code_runs(page: Path, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The page's ```python blocks run in order against the preset servers, silently on stderr."""
    blocks = python_blocks(page)
    text = page.read_text(encoding="utf-8")
    with StubServer() as echo, StubServer(tls=True) as secure:
        preset: dict[str, object] = {"URL": echo.url, "WSS_URL": secure.url, "CA_FILE": secure.ca_path}
        if "PROXY_PORT" in text:
            preset["PROXY_PORT"] = request.getfixturevalue("proxy_port")
        runnable = [(str(page), b.line, b.code) for b in blocks if b.mode == "run"]
        done = run_python(["-c", RUNNER, json.dumps(preset)], tmp_path, json.dumps(runnable))
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        for number, block in enumerate(b for b in blocks if b.mode == "pytest"):
            test_file = tmp_path / f"test_{page.stem}_{number}.py"
            test_file.write_text(block.code, encoding="utf-8")
            ran = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name], tmp_path)
            assert ran.returncode == 0, f"{page.name}:{block.line}\n{ran.stdout}{ran.stderr}"
