"""Node's ``ws`` for the interop tests: tests/node_peer/ is an npm package that pins it.

``install_node_peer()`` runs ``npm install`` there when ``node_modules`` lacks ``ws`` (a fresh
clone, CI), so the repository's own files install the peer; node and npm themselves come from
the system (Debian: ``apt-get install -y nodejs npm``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

NODE_PEER = Path(__file__).resolve().parent / "node_peer"
NPM_TIMEOUT = 90.0  # npm install fetches one small package; under pytest-timeout's 120 s


class Unavailable(Exception):
    """A peer cannot run on this machine; the message says why and what would install it."""


def node_command() -> list[str]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise Unavailable("node is not installed (Debian: apt-get install -y nodejs npm)")
    return [node]


def install_node_peer() -> str:
    """Install tests/node_peer's dependencies when missing; return "ws <version>, Node <version>"."""
    node = node_command()
    package = NODE_PEER / "node_modules" / "ws" / "package.json"
    if not package.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise Unavailable("npm is not installed (Debian: apt-get install -y nodejs npm)")
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"],
            cwd=NODE_PEER,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        if done.returncode != 0 or not package.exists():
            raise Unavailable(f"npm install failed in {NODE_PEER}: {done.stderr.strip()[-500:]}")
    ws_version = json.loads(package.read_text())["version"]
    node_version = subprocess.run(
        [*node, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    return f"ws {ws_version}, Node {node_version.lstrip('v')}"
