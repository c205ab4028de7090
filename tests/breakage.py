"""Faults a test forces into ohws: a method that raises on one of its calls, as a bug would."""

from __future__ import annotations

from collections.abc import Callable
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
