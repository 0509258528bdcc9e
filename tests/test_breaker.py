"""CircuitBreaker, the front: call/acall, decorators, context managers, attempts,
errors, listeners, the registry, snapshots, reprs and logging."""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
import json
import logging
import math
import pickle
import threading
from collections.abc import Callable
from typing import Any

import pytest

from langgraph_resilience import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerPolicy,
    BreakerState,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    CountWindow,
    FakeClock,
    InMemoryBreakerStore,
    MonotonicClock,
    ResilienceError,
    default_breaker_store,
)
from langgraph_resilience.breaker import _open_blocks

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# Every way of running a call through a breaker.
MODES = ["call", "acall", "decorator", "async_decorator", "with", "async_with"]
# The ways that see the call's return value (record_result applies).
RESULT_MODES = ["call", "acall", "decorator", "async_decorator"]


def make(
    store: InMemoryBreakerStore, clock: FakeClock, name: str = "svc", **policy: Any
) -> CircuitBreaker:
    policy.setdefault("failure_threshold", 2)
    policy.setdefault("recovery_timeout", 30)
    policy.setdefault("success_threshold", 1)
    return CircuitBreaker(name, BreakerPolicy(**policy), clock=clock, store=store)


async def through(breaker: CircuitBreaker, mode: str, body: Callable[..., Any], *args: Any) -> Any:
    """Run the sync ``body(*args)`` through ``breaker`` the way ``mode`` says."""

    async def async_body(*a: Any) -> Any:
        await asyncio.sleep(0)  # stands in for the dependency's I/O; no breaker timing
        return body(*a)

    if mode == "call":
        return breaker.call(body, *args)
    if mode == "acall":
        return await breaker.acall(async_body, *args)
    if mode == "decorator":
        sync_wrapper: Callable[..., Any] = breaker(body)
        return sync_wrapper(*args)
    if mode == "async_decorator":
        async_wrapper: Callable[..., Any] = breaker(async_body)
        return await async_wrapper(*args)
    if mode == "with":
        with breaker:
            return body(*args)
    if mode == "async_with":
        async with breaker:
            await asyncio.sleep(0)  # stands in for the dependency's I/O; no breaker timing
            return body(*args)
    raise AssertionError(mode)


class Dependency:
    """A fake dependency that counts its calls and fails on demand."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls = 0
        self.error: BaseException | None = None
        self.result: Any = "ok"
        self.takes = 0.0
        self.clock = clock

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.takes and self.clock is not None:
            self.clock.advance(self.takes)
        if self.error is not None:
            raise self.error
        return self.result


# ---- running calls


@pytest.mark.parametrize("mode", MODES)
async def test_a_closed_breaker_runs_the_call(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock)
    dep = Dependency()
    dep.result = {"answer": 42}
    result = await through(b, mode, lambda *a: (a, dep()), 1, 2)
    assert dep.calls == 1
    if mode in RESULT_MODES:
        assert result == ((1, 2), {"answer": 42})
    assert b.state is CLOSED


@pytest.mark.parametrize("mode", MODES)
async def test_failures_open_the_breaker_and_it_stops_calling(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=2, recovery_timeout=30)
    dep = Dependency()
    dep.error = ConnectionError("down")
    for _ in range(2):
        with pytest.raises(ConnectionError, match="down"):
            await through(b, mode, dep)
    assert b.state is OPEN
    assert dep.calls == 2
    clock.advance(10)
    with pytest.raises(CircuitOpenError) as info:
        await through(b, mode, dep)
    assert dep.calls == 2  # not called while open
    err = info.value
    assert isinstance(err, RuntimeError)
    assert isinstance(err, ResilienceError)
    assert err.breaker == "svc"
    assert err.retry_after == 20.0
    assert err.state == "open"
    assert str(err) == "circuit 'svc' is open: retry in 20s"


@pytest.mark.parametrize("mode", MODES)
async def test_a_success_resets_the_failure_streak(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=2)
    dep = Dependency()
    for error in (ValueError(), None, ValueError(), None, ValueError()):
        dep.error = error
        try:
            await through(b, mode, dep)
        except ValueError:
            pass
    assert b.state is CLOSED
    assert b.snapshot().consecutive_failures == 1
    assert b.snapshot().failed_calls == 3


@pytest.mark.parametrize("mode", MODES)
async def test_recovery_after_the_timeout(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30, success_threshold=2)
    dep = Dependency()
    dep.error = TimeoutError()
    with pytest.raises(TimeoutError):
        await through(b, mode, dep)
    clock.advance(29.5)
    assert b.state is OPEN
    clock.advance(0.5)
    assert b.state is HALF_OPEN  # read lazily, no call needed
    dep.error = None
    await through(b, mode, dep)
    assert b.state is HALF_OPEN
    await through(b, mode, dep)
    assert b.state is CLOSED
    assert dep.calls == 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_failed_trial_reopens(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30)
    dep = Dependency()
    dep.error = OSError()
    with pytest.raises(OSError):
        await through(b, mode, dep)
    clock.advance(30)
    with pytest.raises(OSError):
        await through(b, mode, dep)
    assert b.state is OPEN
    with pytest.raises(CircuitOpenError) as info:
        await through(b, mode, dep)
    assert info.value.retry_after == 30.0
    assert b.snapshot().times_opened == 2


@pytest.mark.parametrize("mode", MODES)
async def test_slow_calls_open_the_breaker(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=None,
        slow_call_duration=2.0,
        slow_call_rate_threshold=0.5,
        window=CountWindow(4),
        minimum_calls=4,
    )
    dep = Dependency(clock)
    for takes in (0.1, 2.0, 1.9):
        dep.takes = takes
        await through(b, mode, dep)
    snap = b.snapshot()
    assert (snap.window_calls, snap.window_slow_calls) == (3, 1)
    assert b.state is CLOSED
    dep.takes = 5.0
    await through(b, mode, dep)  # 2 of 4 slow
    assert b.state is OPEN


@pytest.mark.parametrize("mode", MODES)
async def test_a_slow_trial_reopens(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=10, slow_call_duration=1.0)
    dep = Dependency(clock)
    dep.error = ValueError()
    with pytest.raises(ValueError):
        await through(b, mode, dep)
    clock.advance(10)
    dep.error = None
    dep.takes = 1.5
    await through(b, mode, dep)  # the trial succeeds, slowly
    assert b.state is OPEN


def test_instant_calls_are_never_slow_by_baseline(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    """With a FakeClock that does not move, every call takes 0 s: none of them is slow."""
    b = make(
        store,
        clock,
        slow_call_baseline_factor=2.0,
        minimum_calls=3,
        slow_call_rate_threshold=0.5,
        window=CountWindow(10),
    )
    for _ in range(10):
        b.call(lambda: None)
    snap = b.snapshot()
    assert (snap.state, snap.baseline_latency, snap.window_slow_calls) == (CLOSED, 0.0, 0)


async def test_baseline_slow_calls_through_the_front(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=None,
        slow_call_baseline_factor=3.0,
        minimum_calls=3,
        slow_call_rate_threshold=0.5,
        window=CountWindow(6),
    )
    dep = Dependency(clock)
    dep.takes = 1.0
    for _ in range(3):
        b.call(dep)
    assert b.snapshot().baseline_latency == 1.0
    dep.takes = 3.0  # 3x the baseline: slow
    await b.acall(_async(dep))
    b.call(dep)
    assert b.state is CLOSED  # 2 of 5
    await b.acall(_async(dep))
    assert b.state is OPEN  # 3 of 6
    assert b.snapshot().baseline_latency == 1.0  # slow calls do not move it


def _async(fn: Callable[[], Any]) -> Callable[[], Any]:
    async def run() -> Any:
        return fn()

    return run


# ---- decorators


def test_the_sync_decorator_keeps_name_doc_and_signature(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock)

    def search(query: str, *, limit: int = 3) -> list[str]:
        """Search for things."""
        return [query] * limit

    wrapped = b(search)
    assert wrapped.__name__ == "search"
    assert wrapped.__doc__ == "Search for things."
    assert wrapped.__wrapped__ is search  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(search)
    assert not inspect.iscoroutinefunction(wrapped)
    assert wrapped("x", limit=2) == ["x", "x"]


async def test_the_async_decorator_keeps_name_doc_and_signature(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock)

    async def fetch(url: str, timeout: float = 1.0) -> str:
        """Fetch a page."""
        return url

    wrapped = b(fetch)
    assert wrapped.__name__ == "fetch"
    assert wrapped.__doc__ == "Fetch a page."
    assert inspect.signature(wrapped) == inspect.signature(fetch)
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped("u") == "u"


async def test_decorating_async_partials_and_async_callable_objects(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1)

    async def add(a: int, b: int) -> int:
        return a + b

    class Client:
        async def __call__(self, x: int) -> int:
            return x * 2

    part = b(functools.partial(add, 1))
    assert inspect.iscoroutinefunction(part)
    assert await part(2) == 3
    obj = b(Client())
    assert inspect.iscoroutinefunction(obj)
    assert await obj(4) == 8

    class Raises:
        async def __call__(self) -> None:
            raise ValueError

    with pytest.raises(ValueError):
        await b(Raises())()
    assert b.state is OPEN  # the async failure was recorded, not a coroutine object


def test_decorating_a_non_callable_is_a_type_error(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    with pytest.raises(TypeError, match="decorates callables"):
        make(store, clock)(42)  # type: ignore[call-overload]


def test_decorated_function_is_not_called_while_open(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock)
    dep = Dependency()
    guarded = b(dep)
    b.force_open()
    with pytest.raises(CircuitOpenError, match="forced open") as info:
        guarded()
    assert dep.calls == 0
    assert info.value.retry_after == math.inf


# ---- context managers


def test_with_does_not_swallow_exceptions_and_counts_them(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=2)
    with pytest.raises(KeyError), b:
        raise KeyError("x")
    assert b.snapshot().consecutive_failures == 1
    with b as entered:
        assert entered is b
    assert b.snapshot().consecutive_failures == 0
    ran = []
    for _ in range(2):
        with pytest.raises(KeyError), b:
            raise KeyError
    with pytest.raises(CircuitOpenError), b:
        ran.append("body")
    assert ran == []
    assert _open_blocks.get() == ()


async def test_async_with_counts_exceptions_and_successes(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=2)
    for _ in range(2):
        with pytest.raises(ValueError):
            async with b:
                raise ValueError
    assert b.state is OPEN
    clock.advance(30)
    async with b:
        pass
    assert b.state is CLOSED


def test_with_blocks_do_not_judge_a_result(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    """A `with` block has no return value: record_result must not judge one."""
    b = make(store, clock, failure_threshold=1, record_result=lambda out: not out)
    with b:
        pass
    assert b.state is CLOSED


def test_nested_blocks_of_one_breaker_record_their_own_outcomes(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=None,
        slow_call_baseline_factor=100.0,
        minimum_calls=100,
    )
    with b:  # outer: starts at t=0, succeeds at t=6
        clock.advance(5)
        try:
            with b:  # inner: starts at t=5, fails at t=6
                clock.advance(1)
                raise ValueError
        except ValueError:
            pass
    snap = b.snapshot()
    assert snap.failed_calls == 1
    assert snap.baseline_latency == 6.0  # the outer success, not the inner's 1 s
    assert _open_blocks.get() == ()


def test_nested_blocks_of_two_breakers(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    outer, inner = make(store, clock, "outer"), make(store, clock, "inner")
    with outer:
        try:
            with inner:
                raise ValueError
        except ValueError:
            pass
    assert outer.snapshot().failed_calls == 0
    assert inner.snapshot().failed_calls == 1
    with pytest.raises(ValueError), outer, inner:
        raise ValueError
    assert outer.snapshot().failed_calls == 1
    assert inner.snapshot().failed_calls == 2


async def test_concurrent_async_with_blocks_keep_their_own_attempts(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=None,
        slow_call_baseline_factor=100.0,
        minimum_calls=100,
    )
    a_entered, b_entered, a_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with b:  # starts at t=0, succeeds at t=6
            a_entered.set()
            await b_entered.wait()
        a_done.set()

    async def second() -> None:
        await a_entered.wait()
        clock.advance(5)
        try:
            async with b:  # starts at t=5, fails at t=6 after the first one exits
                b_entered.set()
                clock.advance(1)
                await a_done.wait()
                raise ValueError
        except ValueError:
            pass

    await asyncio.wait_for(asyncio.gather(first(), second()), timeout=10)
    snap = b.snapshot()
    assert snap.failed_calls == 1
    assert snap.baseline_latency == 6.0  # swapped attempts would give 1.0


def test_concurrent_with_blocks_in_threads_keep_their_own_attempts(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=None,
        slow_call_baseline_factor=100.0,
        minimum_calls=100,
    )
    a_entered, b_entered, a_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with b:
            a_entered.set()
            assert b_entered.wait(10)
        a_done.set()

    def second() -> None:
        assert a_entered.wait(10)
        clock.advance(5)
        try:
            with b:
                b_entered.set()
                clock.advance(1)
                assert a_done.wait(10)
                raise ValueError
        except ValueError:
            pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    snap = b.snapshot()
    assert snap.failed_calls == 1
    assert snap.baseline_latency == 6.0


# ---- what counts


@pytest.mark.parametrize("mode", RESULT_MODES)
async def test_record_result_marks_returned_values_as_failures(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=2, record_result=lambda out: not out.get("answer"))
    dep = Dependency()
    dep.result = {"answer": ""}
    assert await through(b, mode, dep) == {"answer": ""}  # still returned to the caller
    dep.result = {"answer": "yes"}
    await through(b, mode, dep)
    assert b.snapshot().consecutive_failures == 0
    dep.result = {"answer": None}
    await through(b, mode, dep)
    await through(b, mode, dep)
    assert b.state is OPEN
    assert b.snapshot().failed_calls == 3


def test_a_raising_result_predicate_releases_the_trial(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    def judge(out: Any) -> bool:
        raise LookupError("predicate bug")

    b = make(store, clock, failure_threshold=1, recovery_timeout=1, record_result=judge)
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    clock.advance(1)
    with pytest.raises(LookupError, match="predicate bug"):
        b.call(lambda: "x")
    assert b.state is HALF_OPEN
    assert b.snapshot().trial_calls_in_flight == 0  # the permit came back


def raising(error: BaseException) -> Callable[[], Any]:
    def fn() -> Any:
        raise error

    return fn


@pytest.mark.parametrize("mode", MODES)
async def test_record_on_and_ignore_on(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(
        store,
        clock,
        failure_threshold=2,
        record_on=ConnectionError,
        ignore_on=ConnectionResetError,  # a ConnectionError, but ignored
    )

    async def run(error: BaseException) -> None:
        with pytest.raises(type(error)):
            await through(b, mode, raising(error))

    await run(ConnectionRefusedError())
    assert b.snapshot().consecutive_failures == 1
    await run(ConnectionResetError())  # not counted at all
    assert b.snapshot().consecutive_failures == 1
    await run(ValueError())  # the dependency answered: a success
    assert b.snapshot().consecutive_failures == 0
    await run(ConnectionAbortedError())
    await run(BrokenPipeError())
    assert b.state is OPEN


@pytest.mark.parametrize("mode", ["call", "with"])
def test_base_exceptions_are_not_counted(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=1)
    b.call(lambda: None)
    if mode == "call":
        with pytest.raises(KeyboardInterrupt):
            b.call(raising(KeyboardInterrupt()))
    else:
        with pytest.raises(KeyboardInterrupt), b:
            raise KeyboardInterrupt
    assert b.state is CLOSED
    # Also in half-open: the trial slot comes back.
    with pytest.raises(ZeroDivisionError):
        b.call(raising(ZeroDivisionError()))
    clock.advance(1)
    with pytest.raises(SystemExit):
        b.call(raising(SystemExit(1)))
    assert b.state is HALF_OPEN
    assert b.snapshot().trial_calls_in_flight == 0
    b.call(lambda: None)
    assert b.state is CLOSED


async def test_cancelling_a_half_open_acall_gives_the_permit_back(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30, success_threshold=1)
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    clock.advance(30)
    started, never = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        started.set()
        await never.wait()

    task = asyncio.create_task(b.acall(hang))
    await asyncio.wait_for(started.wait(), timeout=10)
    assert b.snapshot().trial_calls_in_flight == 1
    with pytest.raises(CircuitOpenError) as info:
        await b.acall(hang)  # the only trial slot is taken
    assert info.value.state == "half_open"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is HALF_OPEN
    snap = b.snapshot()
    assert (snap.trial_calls_in_flight, snap.failed_calls) == (0, 1)

    async def ok() -> str:
        return "ok"

    assert await b.acall(ok) == "ok"  # a later trial is admitted
    assert b.state is CLOSED


async def test_cancelling_an_async_with_block_gives_the_permit_back(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30)
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    clock.advance(30)
    started = asyncio.Event()

    async def block() -> None:
        async with b:
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(block())
    await asyncio.wait_for(started.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = b.snapshot()
    assert (snap.state, snap.trial_calls_in_flight) == (HALF_OPEN, 0)


# ---- begin() and Attempt


def test_attempts_report_once(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(store, clock, failure_threshold=1)
    attempt = b.begin()
    assert repr(attempt) == "<Attempt on 'svc': running>"
    attempt.succeed("x")
    attempt.fail(ValueError())  # ignored: already reported
    attempt.abandon()
    assert repr(attempt) == "<Attempt on 'svc': reported>"
    assert b.state is CLOSED
    attempt = b.begin()
    attempt.fail(ValueError())
    assert b.state is OPEN
    with pytest.raises(CircuitOpenError):
        b.begin()


# ---- listeners


def test_listeners_get_typed_events_in_order(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30)
    events: list[BreakerEvent] = []
    assert b.add_listener(events.append) == events.append
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    clock.advance(5)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: None)
    clock.advance(25)
    b.call(lambda: None)
    assert events == [
        BreakerOpened(
            breaker="svc",
            at=0.0,
            old=CLOSED,
            new=OPEN,
            reason="1 consecutive failures",
            retry_after=30.0,
        ),
        CallRejected(breaker="svc", at=5.0, state=OPEN, retry_after=25.0),
        BreakerHalfOpened(
            breaker="svc",
            at=30.0,
            old=OPEN,
            new=HALF_OPEN,
            reason="recovery timeout of 30s elapsed",
        ),
        BreakerClosed(
            breaker="svc", at=30.0, old=HALF_OPEN, new=CLOSED, reason="1 successful trial calls"
        ),
    ]
    b.remove_listener(events.append)
    b.force_open()
    assert len(events) == 4


def test_a_failing_listener_does_not_break_calls_or_other_listeners(
    store: InMemoryBreakerStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    b = make(store, clock, failure_threshold=1)
    seen: list[str] = []

    @b.add_listener
    def broken(event: BreakerEvent) -> None:
        raise RuntimeError("listener bug")

    b.add_listener(lambda e: seen.append(type(e).__name__))
    with caplog.at_level(logging.ERROR, logger="langgraph_resilience.breaker"):
        with pytest.raises(ValueError):
            b.call(raising(ValueError()))
        with pytest.raises(CircuitOpenError):
            b.call(lambda: None)
    assert seen == ["BreakerOpened", "CallRejected"]
    failures = [r for r in caplog.records if "listener" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in failures)


def test_listeners_must_be_callable(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    with pytest.raises(TypeError, match="listener must be callable"):
        make(store, clock).add_listener("print")  # type: ignore[arg-type]


def test_a_listener_may_read_the_breaker(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    """Listeners run outside the state lock: reading the breaker does not deadlock."""
    b = make(store, clock, failure_threshold=1)
    states: list[BreakerState] = []
    b.add_listener(lambda e: states.append(b.state))
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    assert states == [OPEN]


def test_events_caused_by_a_listener_reach_every_listener_in_order(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    """A listener that resets the breaker on opening: the listeners after it must still
    see `opened` before `closed`, or they believe the breaker is open when it is not."""
    b = make(store, clock, failure_threshold=1)
    first: list[str] = []
    last: list[str] = []

    def auto_reset(event: BreakerEvent) -> None:
        first.append(type(event).__name__)
        if isinstance(event, BreakerOpened):
            b.reset()

    b.add_listener(auto_reset)
    b.add_listener(lambda e: last.append(type(e).__name__))
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    assert b.state is CLOSED
    assert first == last == ["BreakerOpened", "BreakerClosed"]


# ---- the registry


def test_same_name_same_store_is_the_same_breaker(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    a = make(store, clock, "search")
    b = make(store, clock, "search")
    other = make(store, clock, "other")
    assert a == b
    assert hash(a) == hash(b)
    assert a != other
    assert a != "search"
    with pytest.raises(ValueError):
        a.call(raising(ValueError()))
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    assert a.state is OPEN
    assert b.snapshot() == a.snapshot()
    assert other.state is CLOSED
    assert store.names() == ["other", "search"]
    store.remove("search")
    assert make(store, clock, "search").state is CLOSED


def test_another_store_is_another_breaker(clock: FakeClock) -> None:
    a = CircuitBreaker("svc", clock=clock, store=InMemoryBreakerStore())
    b = CircuitBreaker("svc", clock=clock, store=InMemoryBreakerStore())
    a.force_open()
    assert b.state is CLOSED
    assert a != b


def test_the_default_store_is_shared_by_name() -> None:
    a = CircuitBreaker("shared")
    b = CircuitBreaker("shared", BreakerPolicy())
    a.force_open()
    assert b.state is OPEN
    assert "shared" in default_breaker_store().names()
    assert isinstance(a.policy, BreakerPolicy)
    assert b._cell.clock == MonotonicClock()


def test_same_name_with_a_different_policy_is_refused(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    make(store, clock, "search", failure_threshold=2)
    with pytest.raises(ValueError, match=r"'search' already exists with a different policy"):
        make(store, clock, "search", failure_threshold=3)
    make(store, clock, "search", failure_threshold=2)  # an equal policy is fine


def test_same_name_with_a_different_clock_is_refused(store: InMemoryBreakerStore) -> None:
    CircuitBreaker("svc", clock=FakeClock(), store=store)
    with pytest.raises(ValueError, match=r"'svc' already exists with another clock"):
        CircuitBreaker("svc", clock=FakeClock(), store=store)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "name must be a non-empty string"),
        ({"name": "  "}, ValueError, "name must be a non-empty string"),
        ({"name": 3}, ValueError, "name must be a non-empty string"),
        ({"name": "x", "policy": {"failure_threshold": 3}}, TypeError, "policy must be"),
        ({"name": "x", "clock": object()}, TypeError, "clock must have a now"),
    ],
)
def test_constructor_validation(
    kwargs: dict[str, Any], error: type[Exception], match: str, store: InMemoryBreakerStore
) -> None:
    name = kwargs.pop("name")
    with pytest.raises(error, match=match):
        CircuitBreaker(name, store=store, **kwargs)


# ---- state, snapshots, reprs, logging


def test_force_open_and_reset(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(store, clock, recovery_timeout=1)
    b.force_open()
    clock.advance(1e6)
    assert b.state is OPEN
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: None)
    assert info.value.retry_after == math.inf
    assert "forced open and stays open until reset()" in str(info.value)
    assert b.snapshot().forced_open
    b.reset()
    assert b.state is CLOSED
    assert b.call(lambda: 7) == 7


def test_snapshot_to_dict_is_json(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(
        store,
        clock,
        failure_threshold=1,
        failure_rate_threshold=0.5,
        slow_call_baseline_factor=3.0,
        minimum_calls=5,
        recovery_timeout=30,
    )
    b.call(lambda: None)
    closed = json.loads(json.dumps(b.snapshot().to_dict(), allow_nan=False))
    assert closed["state"] == "closed"
    assert closed["window_calls"] == 1
    assert closed["failure_rate"] == 0.0
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    clock.advance(10)
    opened = json.loads(json.dumps(b.snapshot().to_dict(), allow_nan=False))
    assert opened["state"] == "open"
    assert opened["retry_after"] == 20.0
    assert opened["times_opened"] == 1
    clock.advance(20)
    half = json.loads(json.dumps(b.snapshot().to_dict(), allow_nan=False))
    assert half["state"] == "half_open"
    assert set(half) >= {"name", "state", "consecutive_failures", "generation"}


def test_repr_is_readable(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(store, clock, "search", failure_threshold=3, recovery_timeout=30)
    assert repr(b) == "<CircuitBreaker 'search' closed, failures 0/3>"
    for _ in range(3):
        with pytest.raises(ValueError):
            b.call(raising(ValueError()))
    clock.advance(5)
    assert repr(b) == "<CircuitBreaker 'search' open, failures 3/3, retry in 25s>"
    clock.advance(25)
    text = repr(b)
    assert text.startswith("<CircuitBreaker 'search' half_open")
    assert "retry" not in text
    off = make(store, clock, "rate-only", failure_threshold=None, failure_rate_threshold=0.5)
    text = repr(off)
    assert text.startswith("<CircuitBreaker 'rate-only' closed, failures ")
    assert text.endswith(" off>")


def test_repr_html_is_readable_and_escaped(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    b = make(store, clock, "<b>search</b>", failure_threshold=1, failure_rate_threshold=0.5)
    html = b._repr_html_()
    assert html.startswith("<table>")
    assert "closed" in html
    assert "&lt;b&gt;search&lt;/b&gt;" in html
    assert "<b>search</b>" not in html
    with pytest.raises(ValueError):
        b.call(raising(ValueError()))
    html = b._repr_html_()
    assert "open" in html
    assert "retry after" in html
    assert "times opened</td><td style='text-align:left'>1" in html


def test_transitions_are_logged(
    store: InMemoryBreakerStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    b = make(store, clock, failure_threshold=1, recovery_timeout=30)
    with caplog.at_level(logging.DEBUG, logger="langgraph_resilience"):
        with pytest.raises(ValueError):
            b.call(raising(ValueError()))
        with pytest.raises(CircuitOpenError):
            b.call(lambda: None)
        clock.advance(30)
        b.call(lambda: None)
    logged = [
        (r.name, r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.startswith("langgraph_resilience")
    ]
    name = "langgraph_resilience.breaker"
    assert logged == [
        (name, logging.WARNING, "breaker 'svc' closed -> open: 1 consecutive failures"),
        (name, logging.DEBUG, "breaker 'svc' rejected a call (open)"),
        (name, logging.INFO, "breaker 'svc' open -> half_open: recovery timeout of 30s elapsed"),
        (name, logging.INFO, "breaker 'svc' half_open -> closed: 1 successful trial calls"),
    ]


def test_circuit_open_error_survives_pickle_and_copy() -> None:
    err = CircuitOpenError("svc", retry_after=1.5, state="half_open")
    assert "trial calls are all in flight" in str(err)
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err)):
        assert (clone.breaker, clone.retry_after, clone.state) == ("svc", 1.5, "half_open")
        assert str(clone) == str(err)


def test_attempt_succeed_without_a_result_is_a_plain_success(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(
        "svc",
        BreakerPolicy(failure_threshold=1, record_result=lambda out: not out),
        clock=clock,
        store=store,
    )
    breaker.begin().succeed()  # nothing to judge: not a failure
    assert breaker.state is BreakerState.CLOSED
    breaker.begin().succeed([])  # an empty result is judged, and fails
    assert breaker.state is BreakerState.OPEN
