"""The ohws pytest plugin: stub-server fixtures (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._stub import StubServer

__all__ = ["ohws_stub_server", "ohws_stub_server_factory"]


@pytest.fixture
def ohws_stub_server_factory() -> Iterator[Callable[..., StubServer]]:
    """``make(**script)`` starts a :class:`StubServer`; every one is stopped after the test."""
    servers: list[StubServer] = []

    def make(**script: Any) -> StubServer:
        server = StubServer(**script)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def ohws_stub_server(ohws_stub_server_factory: Callable[..., StubServer]) -> StubServer:
    """A running echo :class:`StubServer` on 127.0.0.1 (``.url``), stopped after the test."""
    return ohws_stub_server_factory()
