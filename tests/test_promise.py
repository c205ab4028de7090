"""SPEC section 3: Promise semantics, without a network."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from typing import Any

import pytest

from ohws import BusinessError, ErrorCode, Promise
from ohws._dispatch import Lane

from .servers import TIMEOUT


def settled(promise: Promise[Any]) -> Any:
    """The promise's outcome: its value, or the exception it was rejected with."""
    try:
        return promise.result(TIMEOUT)
    except BaseException as exc:
        return exc


def test_is_a_future_and_result_raises_the_business_error() -> None:
    """result() returns the value or raises the BusinessError."""
    assert isinstance(Promise(), concurrent.futures.Future)
    assert Promise.resolved(True).result(TIMEOUT) is True
    error = BusinessError.of(ErrorCode.UNKNOWN_ERROR, "x")
    with pytest.raises(BusinessError) as info:
        Promise.rejected(error).result(TIMEOUT)
    assert info.value is error


def test_then_chains_values_and_exceptions() -> None:
    """A handler's return value or exception settles the derived promise."""
    assert settled(Promise.resolved(2).then(lambda v: v * 10).then(lambda v: v + 1)) == 21
    boom = ValueError("boom")

    def raise_it(_: object) -> None:
        raise boom

    assert settled(Promise.resolved(1).then(raise_it)) is boom
    assert settled(Promise.resolved(1).then(raise_it).catch(lambda e: f"caught {e}")) == "caught boom"


def test_rejection_skips_fulfilment_handlers() -> None:
    """Without on_rejected the rejection passes through then() unchanged."""
    error = BusinessError.of(ErrorCode.UNKNOWN_ERROR)
    chained = Promise.rejected(error).then(lambda v: "not called")
    assert settled(chained) is error
    assert settled(Promise.rejected(error).then(None, lambda e: e.code)) == 2302999
    assert settled(Promise.resolved(7).then(None, lambda e: "unused")) == 7


def test_returned_promise_is_adopted() -> None:
    """A handler returning a future makes the derived promise follow it (JS thenable rule)."""
    inner: Promise[str] = Promise()
    outer = Promise.resolved(1).then(lambda _: inner)
    assert not outer.done()
    inner._resolve("late")
    assert settled(outer) == "late"
    failing: Promise[str] = Promise()
    outer2 = Promise.resolved(1).then(lambda _: failing)
    failing._reject(KeyError("k"))
    assert isinstance(settled(outer2), KeyError)


def test_finally_keeps_the_outcome() -> None:
    """finally_ runs either way and passes the outcome through unless it raises."""
    calls: list[str] = []
    assert settled(Promise.resolved(5).finally_(lambda: calls.append("a"))) == 5
    error = BusinessError.of(ErrorCode.UNKNOWN_ERROR)
    assert settled(Promise.rejected(error).finally_(lambda: calls.append("b"))) is error
    assert calls == ["a", "b"]

    def fail() -> None:
        raise RuntimeError("in finally")

    assert isinstance(settled(Promise.resolved(5).finally_(fail)), RuntimeError)


def test_handlers_run_on_the_lane_in_order() -> None:
    """then() handlers run on the promise's lane, in the order the promises settle."""
    lane = Lane()
    order: queue.Queue[tuple[int, str]] = queue.Queue()
    promises: list[Promise[int]] = [Promise(lane) for _ in range(50)]
    for p in promises:
        p.then(lambda v: order.put((v, threading.current_thread().name)))
    for i, p in enumerate(promises):
        p._resolve(i)
    got = [order.get(timeout=TIMEOUT) for _ in range(50)]
    assert [v for v, _ in got] == list(range(50))
    assert all(name.startswith("ohws-dispatch-") for _, name in got)


def test_settling_twice_is_a_no_op_and_cancel_is_refused() -> None:
    """Library double-settlement is harmless; promises cannot be cancelled."""
    p: Promise[int] = Promise()
    assert p.cancel() is False
    p._resolve(1)
    p._resolve(2)
    p._reject(RuntimeError())
    assert p.result(TIMEOUT) == 1


def test_await_in_asyncio() -> None:
    """await promise works inside a coroutine."""

    async def main() -> Any:
        p: Promise[str] = Promise()
        threading.Timer(0.01, p._resolve, args=("done",)).start()
        return await p

    assert asyncio.run(main()) == "done"

    async def failing() -> Any:
        return await Promise.rejected(BusinessError.of(ErrorCode.UNKNOWN_ERROR))

    with pytest.raises(BusinessError) as info:
        asyncio.run(failing())
    assert info.value.code == ErrorCode.UNKNOWN_ERROR


def test_callback_style_delivery() -> None:
    """_deliver calls callback(None, value) or callback(err, None) on the lane."""
    got: queue.Queue[tuple[Any, Any, str]] = queue.Queue()

    def callback(err: Any, value: Any) -> None:
        got.put((err, value, threading.current_thread().name))

    Promise.resolved(True)._deliver(callback)
    err, value, thread = got.get(timeout=TIMEOUT)
    assert (err, value) == (None, True)
    assert thread.startswith("ohws-dispatch-")
    error = BusinessError.of(ErrorCode.UNKNOWN_ERROR)
    Promise.rejected(error)._deliver(callback)
    assert got.get(timeout=TIMEOUT)[:2] == (error, None)
