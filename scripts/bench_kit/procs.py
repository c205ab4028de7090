"""Helper processes that never outlive the script that started them (Linux: PR_SET_PDEATHSIG)."""

from __future__ import annotations

import contextlib
import ctypes
import signal


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when its parent dies, even abruptly."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)
