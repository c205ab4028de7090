"""Faults a test forces into ohws: a method that raises on one of its calls, as a bug would;
and the log records that report them."""

from __future__ import annotations

import contextlib
import logging
import queue
from collections.abc import Callable, Iterator
from typing import Any


def raising_on_call(
    method: Callable[..., Any], call: int, message: str
) -> tuple[Callable[..., Any], list[int]]:
    """``method`` that raises ``RuntimeError(message)`` on its ``call``-th call (from 1) and
    works otherwise; and the list that counts its calls (one item each)."""
    calls: list[int] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == call:
            raise RuntimeError(message)
        return method(*args, **kwargs)

    return wrapper, calls


@contextlib.contextmanager
def ohws_log_records() -> Iterator[queue.Queue[logging.LogRecord]]:
    """Every record the ``ohws`` logger handles meanwhile, as it comes. A crash is logged on the
    crashed thread after what it settled (a close promise may already be resolved), so a test
    waits for the record with a timeout rather than read the log at once."""
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    handler = logging.Handler()
    handler.emit = records.put  # type: ignore[method-assign]
    logger = logging.getLogger("ohws")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def next_crash(records: queue.Queue[logging.LogRecord], timeout: float) -> BaseException:
    """The exception of the next record that carries one (other records are skipped)."""
    while True:
        record = records.get(timeout=timeout)
        if record.exc_info is not None and record.exc_info[1] is not None:
            return record.exc_info[1]
