"""``Promise``: the result of the promise-style overloads (SPEC section 3).

A ``concurrent.futures.Future`` with JavaScript's ``then``/``catch``/``finally_`` and
``await`` support. Library threads settle promises directly, never through a lane, so a
callback may block on a promise without deadlocking the library. Handlers run on the lane
of the connection that made the promise.

A promise rejected and then collected without anyone having looked at the error (``result``,
``exception``, ``then``/``catch``/``finally_``, ``await``, a callback) is logged at WARNING on
the ``ohws`` logger, as asyncio does for futures: a failure nobody handles is still visible.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar, cast

from ._dispatch import Lane, run_user_code

__all__ = ["Promise"]

logger = logging.getLogger("ohws")

T = TypeVar("T")
_NO_HANDLER = object()
#: The Condition of every promise born settled (``resolved``/``rejected``). A Future uses its
#: Condition to wait for and announce settling; one born settled does neither, so they can all
#: share one instead of ~1.3 KB each (an RLock, a deque, bound methods): ``send`` keeps one such
#: promise per connection (SPEC 6 scale).
_SETTLED = threading.Condition()
_FINISHED = concurrent.futures._base.FINISHED
# Their lists, shared too: a settled Future runs a new done-callback at once instead of keeping
# it, and concurrent.futures.wait() adds and removes its waiter under _SETTLED.
_SETTLED_WAITERS: list[Any] = []
_SETTLED_CALLBACKS: list[Any] = []


class Promise(concurrent.futures.Future[T]):
    """``result(timeout)`` returns the value or raises the ``BusinessError``."""

    def __init__(self, lane: Lane | None = None) -> None:
        super().__init__()
        self._lane = lane or Lane()
        self._observed = False  # someone looked (or will look) at the outcome

    def __del__(self) -> None:
        if self._observed:
            return
        try:
            if not self.done():
                return
            error = concurrent.futures.Future.exception(self, 0)
            if error is not None:
                logger.warning("ohws: a Promise was rejected and nobody retrieved the error: %r", error)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def result(self, timeout: float | None = None) -> T:
        """The value once fulfilled; raises the rejection (``BusinessError``) or ``TimeoutError``."""
        self._observed = True
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The rejection once settled, or None; ``TimeoutError`` after ``timeout`` seconds."""
        self._observed = True
        return super().exception(timeout)

    def cancel(self) -> bool:
        """Promises cannot be cancelled (as in JavaScript); always False."""
        return False

    # -- settling (library side) -------------------------------------------------------
    def _resolve(self, value: T) -> None:
        """Fulfil unless already settled (settling twice is a no-op, never an error)."""
        if not self.done():
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self.set_result(value)

    def _reject(self, error: BaseException) -> None:
        if not self.done():
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                self.set_exception(error)

    def _mark_observed(self) -> None:
        """The library handles this outcome itself: a rejection is not worth a warning."""
        self._observed = True

    def _on_settled(self, fn: Callable[[BaseException | None], None]) -> None:
        """Library hook: ``fn(error or None)`` on the settling thread; not an observation."""
        self.add_done_callback(lambda _: fn(concurrent.futures.Future.exception(self, 0)))

    def _deliver(self, callback: Callable[[Any, Any], object]) -> None:
        """Call ``callback(err, value)`` on the lane once settled (the callback style)."""
        self._observed = True

        def done(_: concurrent.futures.Future[T]) -> None:
            error = self.exception()
            if error is None:
                self._lane.submit(run_user_code, callback, None, self.result())
            else:
                self._lane.submit(run_user_code, callback, error, None)

        self.add_done_callback(done)

    # -- chaining (user side) ----------------------------------------------------------
    def then(
        self,
        on_fulfilled: Callable[[T], Any] | None = None,
        on_rejected: Callable[[BaseException], Any] | None = None,
    ) -> Promise[Any]:
        """A new promise settled by the handler's return value or exception."""
        self._observed = True
        derived: Promise[Any] = Promise(self._lane)

        def settle() -> None:
            error = self.exception()
            handler: Callable[[Any], Any] | None = on_rejected if error is not None else on_fulfilled
            argument: Any = error if error is not None else self.result()
            if handler is None:
                if error is not None:
                    derived._reject(error)
                else:
                    derived._resolve(argument)
                return
            try:
                outcome = handler(argument)
            except BaseException as exc:
                derived._reject(exc)
                return
            derived._adopt(outcome)

        self.add_done_callback(lambda _: self._lane.submit(settle))
        return derived

    def catch(self, on_rejected: Callable[[BaseException], Any]) -> Promise[Any]:
        """``then(None, on_rejected)``."""
        return self.then(None, on_rejected)

    def finally_(self, fn: Callable[[], Any]) -> Promise[T]:
        """Run ``fn()`` either way; the derived promise keeps this one's outcome unless ``fn`` raises."""

        def passthrough(value: T) -> T:
            fn()
            return value

        def rethrow(error: BaseException) -> T:
            fn()
            raise error

        return cast("Promise[T]", self.then(passthrough, rethrow))

    def _adopt(self, outcome: Any) -> None:
        """Settle with ``outcome``, following it if it is itself a future (JS thenable rule)."""
        if isinstance(outcome, concurrent.futures.Future):

            def follow(inner: concurrent.futures.Future[Any]) -> None:
                error = inner.exception()
                if error is not None:
                    self._reject(error)
                else:
                    self._resolve(inner.result())

            outcome.add_done_callback(follow)
        else:
            self._resolve(outcome)

    def __await__(self) -> Generator[Any, None, T]:
        self._observed = True
        return asyncio.wrap_future(self).__await__()

    @classmethod
    def resolved(cls, value: T, lane: Lane | None = None) -> Promise[T]:
        return cls._born_settled(lane, value, None)

    @classmethod
    def rejected(cls, error: BaseException, lane: Lane | None = None) -> Promise[Any]:
        return cls._born_settled(lane, None, error)

    @classmethod
    def _born_settled(cls, lane: Lane | None, value: Any, error: BaseException | None) -> Promise[Any]:
        """What ``__init__`` and then settling would make, without a Condition of its own."""
        promise: Promise[Any] = cls.__new__(cls)
        # The state Future.__init__ sets up (the same in Python 3.10 to 3.13), settled.
        promise._condition = _SETTLED
        promise._state = _FINISHED
        promise._result = value
        promise._exception = error
        promise._waiters = _SETTLED_WAITERS
        promise._done_callbacks = _SETTLED_CALLBACKS  # type: ignore[attr-defined]  # typeshed omits it
        promise._lane = lane or Lane()
        promise._observed = False
        return promise
