"""Many threads and tasks on one breaker: trial limits hold, no lock spans the user's call,
counts are not lost and events arrive in decision order.

Nothing here sleeps: threads meet at barriers and events, each with a timeout so a bug
shows up as a failure, not a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from langgraph_resilience import (
    BreakerEvent,
    BreakerOpened,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CircuitBreaker,
    CircuitOpenError,
    CountWindow,
    FakeClock,
    InMemoryBreakerStore,
)

N = 50
ROUNDS = 12
TIMEOUT = 20.0  # generous: only reached when something is broken


def run_threads(target: Callable[[], object], n: int) -> None:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "threads still running: deadlock?"
    if errors:
        raise errors[0]


def fail(_: Any = None) -> None:
    raise ConnectionError("down")


class Tally:
    """Counts calls that got in and calls that were rejected; ``all_decided`` is set
    once every one of ``n`` callers is one or the other."""

    def __init__(self, n: int, event: Any) -> None:
        self.n = n
        self.lock = threading.Lock()
        self.entered = 0
        self.rejected = 0
        self.rejected_states: set[str] = set()
        self.all_decided = event

    def _check(self) -> None:
        if self.entered + self.rejected == self.n:
            self.all_decided.set()

    def enter(self) -> None:
        with self.lock:
            self.entered += 1
            self._check()

    def reject(self, exc: CircuitOpenError) -> None:
        with self.lock:
            self.rejected += 1
            self.rejected_states.add(exc.state)
            self._check()


def half_open_breaker(k: int, clock: FakeClock) -> tuple[CircuitBreaker, list[BreakerEvent]]:
    policy = BreakerPolicy(
        failure_threshold=1, recovery_timeout=10, half_open_max_calls=k, success_threshold=k
    )
    b = CircuitBreaker("svc", policy, clock=clock, store=InMemoryBreakerStore())
    events: list[BreakerEvent] = []
    b.add_listener(events.append)
    return b, events


def open_for_a_round(b: CircuitBreaker, clock: FakeClock, round_: int) -> None:
    b.reset()
    with pytest.raises(ConnectionError):
        b.call(fail)
    clock.advance(10)
    if round_ % 2:
        # Every other round the callers race to move OPEN -> HALF_OPEN themselves.
        assert b.state is BreakerState.HALF_OPEN


def thread_round(b: CircuitBreaker) -> Tally:
    """N threads released together call ``b``; admitted calls hold their permit until
    every caller was either let in or turned away."""
    tally = Tally(N, threading.Event())
    barrier = threading.Barrier(N, timeout=TIMEOUT)

    def trial() -> str:
        tally.enter()
        assert tally.all_decided.wait(TIMEOUT)
        return "ok"

    def caller() -> None:
        barrier.wait()
        try:
            b.call(trial)
        except CircuitOpenError as exc:
            tally.reject(exc)

    run_threads(caller, N)
    return tally


async def task_round(b: CircuitBreaker) -> Tally:
    """The same with N asyncio tasks, released together by an event."""
    tally = Tally(N, asyncio.Event())
    gate = asyncio.Event()

    async def trial() -> str:
        tally.enter()
        await tally.all_decided.wait()
        return "ok"

    async def caller() -> None:
        await gate.wait()
        try:
            await b.acall(trial)
        except CircuitOpenError as exc:
            tally.reject(exc)

    tasks = [asyncio.create_task(caller()) for _ in range(N)]
    gate.set()  # the tasks start together on the next turn of the loop
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=TIMEOUT)
    return tally


@pytest.mark.parametrize("k", [1, 3, 7])
def test_half_open_lets_exactly_k_threads_in_every_time(k: int, clock: FakeClock) -> None:
    b, events = half_open_breaker(k, clock)
    for round_ in range(ROUNDS):
        open_for_a_round(b, clock, round_)
        events.clear()
        tally = thread_round(b)
        assert (tally.entered, tally.rejected) == (k, N - k), f"round {round_}"
        assert tally.rejected_states == {"half_open"}
        # The k trials all succeeded: success_threshold=k closes the breaker.
        assert b.state is BreakerState.CLOSED
        transitions = [(e.old, e.new) for e in events if isinstance(e, BreakerTransition)]
        expected = [(BreakerState.HALF_OPEN, BreakerState.CLOSED)]
        if not round_ % 2:
            expected.insert(0, (BreakerState.OPEN, BreakerState.HALF_OPEN))
        assert transitions == expected


@pytest.mark.parametrize("k", [1, 3, 7])
async def test_half_open_lets_exactly_k_tasks_in_every_time(k: int, clock: FakeClock) -> None:
    b, _ = half_open_breaker(k, clock)
    for round_ in range(ROUNDS):
        open_for_a_round(b, clock, round_)
        tally = await task_round(b)
        assert (tally.entered, tally.rejected) == (k, N - k), f"round {round_}"
        assert tally.rejected_states == {"half_open"}
        assert b.state is BreakerState.CLOSED


def test_a_closed_breaker_lets_every_thread_in(clock: FakeClock) -> None:
    b, _ = half_open_breaker(1, clock)
    tally = thread_round(b)
    assert (tally.entered, tally.rejected) == (N, 0)


POLICIES = {
    # closed: the lock-free path
    "plain": BreakerPolicy(),
    # closed, but every outcome goes through the lock (window, predicate, timing)
    "windowed": BreakerPolicy(
        failure_rate_threshold=0.5,
        slow_call_duration=5.0,
        window=CountWindow(20),
        record_result=lambda out: out is None,
    ),
}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_no_lock_is_held_across_the_call(policy: str, clock: FakeClock) -> None:
    b = CircuitBreaker("svc", POLICIES[policy], clock=clock, store=InMemoryBreakerStore())
    inside = threading.Barrier(8, timeout=TIMEOUT)

    def call() -> None:
        # Each call waits inside the breaker for the other 7: if calls were serialised,
        # the barrier would break (BrokenBarrierError) instead of filling up.
        assert b.call(lambda: inside.wait() + 100) >= 100

    for _ in range(3):
        run_threads(call, 8)
    assert b.snapshot().failed_calls == 0


def test_no_lock_is_held_across_half_open_trials(clock: FakeClock) -> None:
    b, _ = half_open_breaker(8, clock)
    open_for_a_round(b, clock, 1)
    inside = threading.Barrier(8, timeout=TIMEOUT)
    run_threads(lambda: b.call(inside.wait), 8)
    assert b.state is BreakerState.CLOSED


@pytest.mark.parametrize("policy", sorted(POLICIES))
async def test_no_lock_is_held_across_awaited_calls(policy: str, clock: FakeClock) -> None:
    b = CircuitBreaker("svc", POLICIES[policy], clock=clock, store=InMemoryBreakerStore())
    tally = Tally(8, asyncio.Event())

    async def call() -> str:
        tally.enter()
        await tally.all_decided.wait()
        return "ok"

    results = await asyncio.wait_for(
        asyncio.gather(*(b.acall(call) for _ in range(8))), timeout=TIMEOUT
    )
    assert results == ["ok"] * 8


def test_no_lock_is_held_across_with_blocks_in_threads(clock: FakeClock) -> None:
    b = CircuitBreaker("svc", POLICIES["windowed"], clock=clock, store=InMemoryBreakerStore())
    inside = threading.Barrier(8, timeout=TIMEOUT)

    def block() -> None:
        with b:
            inside.wait()

    run_threads(block, 8)
    assert b.snapshot().window_calls == 8


def test_concurrent_failures_are_all_counted(clock: FakeClock) -> None:
    policy = BreakerPolicy(
        failure_threshold=None,
        failure_rate_threshold=1.0,
        window=CountWindow(N * 20),
        minimum_calls=N * 20,
    )
    b = CircuitBreaker("svc", policy, clock=clock, store=InMemoryBreakerStore())
    barrier = threading.Barrier(N, timeout=TIMEOUT)

    def caller() -> None:
        barrier.wait()
        for i in range(20):
            with contextlib.suppress(ConnectionError):
                b.call(fail if i % 2 else (lambda: "ok"))

    run_threads(caller, N)
    snap = b.snapshot()
    assert snap.failed_calls == N * 10
    assert (snap.window_calls, snap.window_failures) == (N * 20, N * 10)
    assert snap.state is BreakerState.CLOSED  # 50% < 100%


def test_events_arrive_in_decision_order_under_load(clock: FakeClock) -> None:
    policy = BreakerPolicy(
        failure_threshold=1, recovery_timeout=0, success_threshold=1, half_open_max_calls=2
    )
    b = CircuitBreaker("svc", policy, clock=clock, store=InMemoryBreakerStore())
    transitions: list[BreakerTransition] = []

    def listener(event: BreakerEvent) -> None:
        if isinstance(event, BreakerTransition):
            transitions.append(event)

    b.add_listener(listener)
    barrier = threading.Barrier(16, timeout=TIMEOUT)

    def caller() -> None:
        barrier.wait()
        for i in range(200):
            with contextlib.suppress(ConnectionError, CircuitOpenError):
                b.call(fail if i % 3 == 0 else (lambda: None))

    run_threads(caller, 16)
    assert len(transitions) > 10
    assert transitions[0].old is BreakerState.CLOSED
    for before, after in itertools.pairwise(transitions):
        assert before.new is after.old, (before, after)
    final = b.snapshot()  # may half-open lazily: read it before the last transition
    assert transitions[-1].new is final.state
    opened = sum(isinstance(e, BreakerOpened) for e in transitions)
    assert opened == final.times_opened
