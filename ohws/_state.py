"""Connection states and the transitions between them (SPEC section 4), as a table.

Pure: no I/O, no threads.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["TRANSITIONS", "State", "check_transition"]


class State(Enum):
    """``ws.state``: the life of one connection. A new object is CLOSED."""

    CONNECTING = "CONNECTING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"

    # Members are singletons: hash by identity, in C (Enum's own hashes the name in Python,
    # on every transition check).
    __hash__ = object.__hash__


#: state -> the states it may move to.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CLOSED: frozenset({State.CONNECTING}),  # connect()
    State.CONNECTING: frozenset({State.OPEN, State.CLOSED}),  # handshake done / failed or aborted
    State.OPEN: frozenset({State.CLOSING, State.CLOSED}),  # close() or peer close / connection lost
    State.CLOSING: frozenset({State.CLOSED}),  # close handshake done, timed out or lost
}


def check_transition(current: State, new: State) -> None:
    """Raise AssertionError for a move the table does not allow (a library bug)."""
    if new not in TRANSITIONS[current]:
        raise AssertionError(f"illegal state transition {current.name} -> {new.name}")
