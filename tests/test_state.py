"""SPEC section 4: the state table, tested without I/O."""

from __future__ import annotations

import pytest

from ohws import State
from ohws._state import TRANSITIONS, check_transition


def test_table_covers_every_state() -> None:
    """Every state has a row; CLOSED is the only way back to CONNECTING."""
    assert set(TRANSITIONS) == set(State)
    assert [s for s in State if State.CONNECTING in TRANSITIONS[s]] == [State.CLOSED]
    assert all(State.CLOSED in TRANSITIONS[s] for s in State if s is not State.CLOSED)


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (State.CLOSED, State.OPEN),
        (State.CLOSED, State.CLOSING),
        (State.CONNECTING, State.CLOSING),
        (State.CLOSING, State.OPEN),
        (State.OPEN, State.CONNECTING),
    ],
)
def test_illegal_transitions_are_refused(current: State, new: State) -> None:
    """A move the table does not allow is an AssertionError naming both states."""
    with pytest.raises(AssertionError) as info:
        check_transition(current, new)
    assert f"{current.name} -> {new.name}" in str(info.value)


def test_legal_transitions_pass() -> None:
    """Every move the table lists is accepted."""
    for current, targets in TRANSITIONS.items():
        for new in targets:
            check_transition(current, new)
