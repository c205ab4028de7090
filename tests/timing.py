"""Deadlines checked from both sides: a timeout that fires early is as wrong as one that never does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

# How late a deadline may be seen to expire on a loaded machine (timer tick, thread wake-ups,
# the lane delivering the result): generous, yet far below the 10 s TIMEOUT of every other wait.
SLACK = 1.5


def assert_took(elapsed: float, limit: float, what: str) -> None:
    """``elapsed`` lies within [limit, limit + SLACK] seconds."""
    assert limit <= elapsed <= limit + SLACK, f"{what} took {elapsed:.3f}s, not {limit}..{limit + SLACK}s"


@contextmanager
def takes(limit: float, what: str) -> Iterator[None]:
    """The block lasts within [limit, limit + SLACK] seconds (the deadline under test must
    start inside the block: then it cannot have begun before the block did)."""
    started = time.monotonic()
    yield
    assert_took(time.monotonic() - started, limit, what)
