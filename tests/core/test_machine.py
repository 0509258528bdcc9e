"""BreakerMachine on its own: every rule, driven by explicit ``now`` values."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from langgraph_resilience import (
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CallRejected,
    CountWindow,
    TimeWindow,
)
from langgraph_resilience.core.breaker import (
    FAILURE,
    IGNORED,
    REJECTED,
    SUCCESS,
    BreakerMachine,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def machine(**policy: Any) -> BreakerMachine:
    return BreakerMachine("svc", BreakerPolicy(**policy), now=0.0)


def run(m: BreakerMachine, outcome: int, now: float = 0.0, duration: float | None = None) -> None:
    """Admit one call at ``now`` and record how it ended."""
    permit = m.acquire(now)
    assert permit != REJECTED, f"call at {now} unexpectedly rejected ({m.state})"
    m.record(permit, outcome, now=now, duration=duration)


def transitions(m: BreakerMachine) -> list[tuple[BreakerState, BreakerState, str]]:
    return [(e.old, e.new, e.reason) for e in m.take_events() if isinstance(e, BreakerTransition)]


def open_machine(**policy: Any) -> BreakerMachine:
    """A machine opened at t=0 by one failure (recovery timeout 10 unless given)."""
    policy.setdefault("failure_threshold", 1)
    policy.setdefault("recovery_timeout", 10)
    m = machine(**policy)
    run(m, FAILURE, 0.0)
    assert m.state is OPEN
    m.take_events()
    return m


def half_open_machine(**policy: Any) -> BreakerMachine:
    m = open_machine(**policy)
    assert m.poll(10.0) is HALF_OPEN
    m.take_events()
    return m


# ---- consecutive failures


def test_consecutive_failures_open_and_a_success_resets_the_streak() -> None:
    m = machine(failure_threshold=3, recovery_timeout=30)
    run(m, FAILURE)
    run(m, FAILURE)
    run(m, SUCCESS)
    assert m.consecutive_failures == 0
    run(m, FAILURE, 1.0)
    run(m, FAILURE, 2.0)
    assert m.state is CLOSED
    assert m.consecutive_failures == 2
    assert m.take_events() == []
    run(m, FAILURE, 3.0)
    assert m.state is OPEN
    events = m.take_events()
    assert events == [
        BreakerOpened(
            breaker="svc",
            at=3.0,
            old=CLOSED,
            new=OPEN,
            reason="3 consecutive failures",
            retry_after=30.0,
        )
    ]
    snap = m.snapshot(3.0)
    assert (snap.times_opened, snap.failed_calls, snap.consecutive_failures) == (1, 5, 3)


def test_ignored_outcomes_neither_break_nor_extend_the_streak() -> None:
    m = machine(failure_threshold=2)
    run(m, FAILURE)
    run(m, IGNORED)
    assert m.consecutive_failures == 1
    run(m, FAILURE)
    assert m.state is OPEN


def test_failure_threshold_none_never_opens_on_a_streak() -> None:
    m = machine(failure_threshold=None)
    for i in range(1000):
        run(m, FAILURE, float(i))
    assert m.state is CLOSED
    assert m.failed_calls == 1000


# ---- failure rate over a count window


def test_count_window_waits_for_minimum_calls() -> None:
    m = machine(
        failure_threshold=None, failure_rate_threshold=0.5, window=CountWindow(4), minimum_calls=4
    )
    for _ in range(3):
        run(m, FAILURE)
    assert m.state is CLOSED  # 100% failures, but only 3 calls in the window
    run(m, SUCCESS)
    assert m.state is OPEN  # 3 of 4
    assert transitions(m) == [(CLOSED, OPEN, "failure rate 75% >= 50% over 4 calls")]


def test_count_window_slides_over_the_last_size_calls() -> None:
    m = machine(
        failure_threshold=None, failure_rate_threshold=0.5, window=CountWindow(4), minimum_calls=2
    )
    run(m, SUCCESS)
    run(m, SUCCESS)
    run(m, FAILURE)  # S S F: 1/3
    run(m, SUCCESS)  # S S F S: 1/4
    run(m, SUCCESS)  # S F S S: the first success dropped out
    snap = m.snapshot(0.0)
    assert (snap.window_calls, snap.window_failures, snap.failure_rate) == (4, 1, 0.25)
    run(m, SUCCESS)  # F S S S
    run(m, SUCCESS)  # S S S S: the failure dropped out
    snap = m.snapshot(0.0)
    assert (snap.window_calls, snap.window_failures) == (4, 0)
    run(m, FAILURE)  # S S S F
    assert m.state is CLOSED
    run(m, FAILURE)  # S S F F: 50%
    assert m.state is OPEN


def test_failure_rate_exactly_at_the_threshold_opens() -> None:
    # 55 of 100 is exactly 55%: 0.55 * 100 is 55.00000000000001 in floating point, so a
    # comparison written as `failures >= rate * calls` misses it.
    m = machine(failure_threshold=None, failure_rate_threshold=0.55, minimum_calls=100)
    for i in range(100):
        run(m, FAILURE if i % 2 == 0 or i >= 90 else SUCCESS)
    assert m.snapshot(0.0).window_failures == 55
    assert m.state is OPEN


def test_failure_rate_just_below_the_threshold_stays_closed() -> None:
    m = machine(failure_threshold=None, failure_rate_threshold=0.55, minimum_calls=100)
    for i in range(100):
        run(m, FAILURE if i % 2 == 0 or i >= 92 else SUCCESS)
    assert m.snapshot(0.0).window_failures == 54
    assert m.state is CLOSED


def test_a_rate_rule_alone_never_opens_on_a_streak() -> None:
    m = machine(failure_threshold=None, failure_rate_threshold=1.0, minimum_calls=5)
    for _ in range(4):
        run(m, FAILURE)
    assert m.state is CLOSED
    run(m, FAILURE)
    assert m.state is OPEN


# ---- failure rate over a time window


def time_machine(**policy: Any) -> BreakerMachine:
    policy.setdefault("failure_threshold", None)
    policy.setdefault("failure_rate_threshold", 0.5)
    policy.setdefault("window", TimeWindow(10, buckets=5))  # slices of 2 s
    policy.setdefault("minimum_calls", 4)
    return machine(**policy)


def test_time_window_opens_on_rate_within_the_window() -> None:
    m = time_machine()
    run(m, FAILURE, 0.0)
    run(m, SUCCESS, 3.0)
    run(m, SUCCESS, 5.0)
    run(m, FAILURE, 9.5)
    assert m.state is OPEN
    assert transitions(m) == [(CLOSED, OPEN, "failure rate 50% >= 50% over 4 calls")]


def test_time_window_expires_whole_buckets() -> None:
    m = time_machine()
    for t in (0.0, 0.5, 1.9):
        run(m, FAILURE, t)  # all in the slice [0, 2)
    run(m, FAILURE, 2.0)  # the slice [2, 4)
    # 4 failures, but minimum_calls is 4 and the 4th was recorded: that opens
    assert m.state is OPEN

    m = time_machine()
    for t in (0.0, 0.5, 1.9):
        run(m, FAILURE, t)
    assert m.snapshot(9.99).window_calls == 3  # slice [0, 2) still inside at t < 10
    snap = m.snapshot(10.0)
    assert (snap.window_calls, snap.window_failures, snap.failure_rate) == (0, 0, None)
    run(m, FAILURE, 10.0)  # 1 call in the window: the old failures are gone
    assert m.state is CLOSED
    assert m.snapshot(10.0).window_calls == 1


def test_time_window_keeps_the_newer_buckets() -> None:
    m = time_machine()
    run(m, FAILURE, 1.0)  # slice 0
    run(m, FAILURE, 3.0)  # slice 1
    run(m, SUCCESS, 5.0)  # slice 2
    assert m.snapshot(11.0).window_calls == 2  # slice 0 left at t=10, slice 1 stays until 12
    run(m, SUCCESS, 11.0)  # F(3) S(5) S(11): 3 calls, below minimum
    assert m.state is CLOSED
    run(m, FAILURE, 11.5)  # F S S F: 2/4
    assert m.state is OPEN


def test_time_window_without_calls_for_long_forgets_everything() -> None:
    m = time_machine()
    for t in range(3):
        run(m, FAILURE, float(t))
    run(m, SUCCESS, 1e6)
    snap = m.snapshot(1e6)
    assert (snap.window_calls, snap.window_failures) == (1, 0)


# ---- slow calls


def slow_machine(**policy: Any) -> BreakerMachine:
    policy.setdefault("failure_threshold", None)
    policy.setdefault("window", CountWindow(4))
    policy.setdefault("minimum_calls", 4)
    return machine(**policy)


def test_slow_calls_by_absolute_duration_open_at_the_slow_rate() -> None:
    m = slow_machine(slow_call_duration=2.0, slow_call_rate_threshold=0.5)
    run(m, SUCCESS, duration=1.999)
    run(m, SUCCESS, duration=2.0)  # >= is slow
    run(m, SUCCESS, duration=0.1)
    assert m.snapshot(0.0).window_slow_calls == 1
    assert m.state is CLOSED
    run(m, SUCCESS, duration=5.0)
    assert m.state is OPEN
    assert transitions(m) == [(CLOSED, OPEN, "slow-call rate 50% >= 50% over 4 calls")]


def test_slow_failures_count_as_slow_too() -> None:
    m = slow_machine(slow_call_duration=2.0, slow_call_rate_threshold=1.0, minimum_calls=2)
    run(m, FAILURE, duration=3.0)
    run(m, SUCCESS, duration=3.0)
    snap = m.snapshot(0.0)
    assert (snap.window_failures, snap.window_slow_calls) == (1, 1) or m.state is OPEN
    assert m.state is OPEN


def test_slow_rate_threshold_is_ignored_without_a_slow_rule() -> None:
    m = slow_machine(failure_rate_threshold=1.0)
    for _ in range(10):
        run(m, SUCCESS, duration=1e9)
    snap = m.snapshot(0.0)
    assert m.state is CLOSED
    assert (snap.window_slow_calls, snap.slow_call_rate) == (0, None)


def test_slow_calls_by_baseline_factor() -> None:
    m = slow_machine(
        slow_call_baseline_factor=3.0,
        minimum_calls=3,
        window=CountWindow(50),
        slow_call_rate_threshold=1.0,
    )
    # Not judged until minimum_calls successful samples are in the baseline.
    run(m, SUCCESS, duration=1.0)
    run(m, SUCCESS, duration=1.0)
    run(m, FAILURE, duration=50.0)  # failures do not feed the baseline
    assert m.snapshot(0.0).baseline_latency == 1.0
    assert m.snapshot(0.0).window_slow_calls == 0
    run(m, SUCCESS, duration=1.0)  # third sample: the baseline is now active
    run(m, SUCCESS, duration=2.9)  # < 3 * 1.0: not slow, moves the baseline by 10%
    baseline = 1.0 + 0.1 * (2.9 - 1.0)
    assert m.snapshot(0.0).baseline_latency == pytest.approx(baseline)
    run(m, SUCCESS, duration=3 * baseline - 0.01)
    assert m.snapshot(0.0).window_slow_calls == 0
    baseline += 0.1 * (3 * baseline - 0.01 - baseline)
    run(m, SUCCESS, duration=3 * baseline + 0.01)
    snap = m.snapshot(0.0)
    assert snap.window_slow_calls == 1
    assert snap.baseline_latency == pytest.approx(baseline)  # slow calls are not sampled
    assert snap.slow_call_rate == pytest.approx(1 / 7)


def test_baseline_slow_calls_open_the_breaker() -> None:
    m = slow_machine(
        slow_call_baseline_factor=2.0,
        minimum_calls=2,
        window=CountWindow(4),
        slow_call_rate_threshold=0.5,
    )
    run(m, SUCCESS, duration=1.0)
    run(m, SUCCESS, duration=1.0)
    run(m, SUCCESS, duration=10.0)
    assert m.state is CLOSED  # 1 slow of 3
    run(m, SUCCESS, duration=10.0)
    assert m.state is OPEN


def test_calls_without_a_duration_are_never_slow() -> None:
    m = slow_machine(slow_call_duration=0.001, minimum_calls=1, slow_call_rate_threshold=0.1)
    run(m, SUCCESS, duration=None)
    assert m.state is CLOSED


# ---- open, half-open and the trial calls


def test_open_rejects_until_the_recovery_timeout() -> None:
    m = open_machine(recovery_timeout=10)
    assert m.acquire(9.999) == REJECTED
    assert m.state is OPEN
    [rejected] = m.take_events()
    assert isinstance(rejected, CallRejected)
    assert (rejected.breaker, rejected.at, rejected.state) == ("svc", 9.999, OPEN)
    assert rejected.retry_after == pytest.approx(0.001)
    assert m.acquire(10.0) != REJECTED
    assert m.state is HALF_OPEN
    [half] = m.take_events()
    assert half == BreakerHalfOpened(
        breaker="svc", at=10.0, old=OPEN, new=HALF_OPEN, reason="recovery timeout of 10s elapsed"
    )
    assert m.rejected_calls == 1


def test_poll_moves_open_to_half_open_lazily() -> None:
    m = open_machine()
    assert m.poll(5.0) is OPEN
    assert m.take_events() == []
    assert m.poll(25.0) is HALF_OPEN
    assert [type(e) for e in m.take_events()] == [BreakerHalfOpened]
    assert m.poll(26.0) is HALF_OPEN
    assert m.take_events() == []


@pytest.mark.parametrize("k", [1, 2, 5])
def test_half_open_admits_at_most_k_trials(k: int) -> None:
    m = half_open_machine(half_open_max_calls=k, success_threshold=10)
    permits = [m.acquire(10.0) for _ in range(k)]
    assert REJECTED not in permits
    assert m.snapshot(10.0).trial_calls_in_flight == k
    assert m.acquire(10.0) == REJECTED
    assert m.acquire(11.0) == REJECTED
    events = m.take_events()
    assert [type(e) for e in events] == [CallRejected, CallRejected]
    assert all(e.state is HALF_OPEN for e in events)  # type: ignore[attr-defined]
    # A finished trial frees its slot for the next one.
    m.record(permits[0], SUCCESS, now=11.0)
    assert m.snapshot(11.0).trial_calls_in_flight == k - 1
    assert m.acquire(11.0) != REJECTED
    assert m.acquire(11.0) == REJECTED


def test_an_ignored_trial_gives_its_slot_back_without_counting() -> None:
    m = half_open_machine(success_threshold=1)
    permit = m.acquire(10.0)
    assert m.acquire(10.0) == REJECTED
    m.record(permit, IGNORED, now=11.0)
    assert m.state is HALF_OPEN
    assert m.snapshot(11.0).trial_successes == 0
    permit = m.acquire(11.0)
    assert permit != REJECTED
    m.record(permit, SUCCESS, now=12.0)
    assert m.state is CLOSED


def test_success_threshold_trials_close_the_breaker() -> None:
    m = half_open_machine(success_threshold=3, half_open_max_calls=3, failure_threshold=1)
    permits = [m.acquire(10.0) for _ in range(3)]
    m.record(permits[0], SUCCESS, now=11.0)
    m.record(permits[1], SUCCESS, now=11.0)
    assert m.state is HALF_OPEN
    assert m.snapshot(11.0).trial_successes == 2
    m.record(permits[2], SUCCESS, now=12.0)
    assert m.state is CLOSED
    assert transitions(m) == [(HALF_OPEN, CLOSED, "3 successful trial calls")]
    snap = m.snapshot(12.0)
    assert (snap.consecutive_failures, snap.retry_after, snap.trial_successes) == (0, 0.0, 0)
    # Closed again, the count starts over: one failure (threshold 1) opens.
    run(m, FAILURE, 13.0)
    assert m.state is OPEN


def test_closing_forgets_the_window() -> None:
    m = machine(
        failure_threshold=None,
        failure_rate_threshold=0.5,
        window=CountWindow(10),
        minimum_calls=2,
        success_threshold=1,
        recovery_timeout=1,
    )
    run(m, FAILURE)
    run(m, FAILURE)
    assert m.state is OPEN
    run(m, SUCCESS, 1.0)
    assert m.state is CLOSED
    assert m.snapshot(1.0).window_calls == 0
    run(m, SUCCESS, 1.0)
    run(m, FAILURE, 1.0)  # 1 of 2: would be 3 of 4 if the old failures were kept
    assert m.state is OPEN  # 50% >= 50%
    m2 = machine(
        failure_threshold=None,
        failure_rate_threshold=0.6,
        window=CountWindow(10),
        minimum_calls=2,
        success_threshold=1,
        recovery_timeout=1,
    )
    run(m2, FAILURE)
    run(m2, FAILURE)
    run(m2, SUCCESS, 1.0)
    run(m2, SUCCESS, 1.0)
    run(m2, FAILURE, 1.0)  # 1 of 2 = 50% < 60% (3 of 4 = 75% had the window been kept)
    assert m2.state is CLOSED


def test_a_failed_trial_reopens_and_restarts_the_timeout() -> None:
    m = half_open_machine(success_threshold=2, half_open_max_calls=2)
    ok, bad = m.acquire(10.0), m.acquire(10.0)
    m.record(ok, SUCCESS, now=11.0)
    m.record(bad, FAILURE, now=12.0)
    assert m.state is OPEN
    [opened] = m.take_events()
    assert opened == BreakerOpened(
        breaker="svc",
        at=12.0,
        old=HALF_OPEN,
        new=OPEN,
        reason="a trial call failed",
        retry_after=10.0,
    )
    assert m.retry_after(12.0) == 10.0
    assert m.acquire(21.0) == REJECTED
    assert m.acquire(22.0) != REJECTED
    assert m.snapshot(22.0).trial_successes == 0  # the earlier success does not carry over
    assert m.times_opened == 2


def test_a_slow_trial_reopens() -> None:
    m = half_open_machine(slow_call_duration=2.0, success_threshold=1)
    permit = m.acquire(10.0)
    m.record(permit, SUCCESS, now=13.0, duration=3.0)
    assert m.state is OPEN
    assert transitions(m) == [(HALF_OPEN, OPEN, "a trial call was slow (3s)")]


def test_a_fast_trial_with_a_slow_rule_counts_as_success() -> None:
    m = half_open_machine(slow_call_duration=2.0, success_threshold=1)
    permit = m.acquire(10.0)
    m.record(permit, SUCCESS, now=11.0, duration=1.0)
    assert m.state is CLOSED


def test_recovery_timeout_zero_half_opens_at_once() -> None:
    m = machine(failure_threshold=1, recovery_timeout=0)
    run(m, FAILURE, 5.0)
    assert m.state is OPEN
    assert m.poll(5.0) is HALF_OPEN


# ---- stale permits


def test_a_call_admitted_before_opening_cannot_change_state_after() -> None:
    m = machine(failure_threshold=2, recovery_timeout=10, success_threshold=1)
    slow_ok = m.acquire(0.0)
    slow_bad = m.acquire(0.0)
    run(m, FAILURE, 1.0)
    run(m, FAILURE, 1.0)
    assert m.state is OPEN
    m.take_events()
    # The slow success must not close it, nor count as a trial...
    m.record(slow_ok, SUCCESS, now=2.0)
    assert m.state is OPEN
    # ...nor, once half-open, use up or free a trial slot or close the breaker.
    trial = m.acquire(11.0)
    assert trial != REJECTED
    m.record(slow_ok, SUCCESS, now=11.0)
    m.record(slow_bad, FAILURE, now=11.0)
    snap = m.snapshot(11.0)
    assert snap.state is HALF_OPEN
    assert (snap.trial_calls_in_flight, snap.trial_successes, snap.failed_calls) == (1, 0, 2)
    assert m.acquire(11.0) == REJECTED
    assert [type(e) for e in m.take_events()] == [BreakerHalfOpened, CallRejected]


def test_a_call_admitted_before_closing_is_stale_once_closed_again() -> None:
    m = machine(failure_threshold=1, recovery_timeout=10, success_threshold=1)
    old = m.acquire(0.0)
    run(m, FAILURE, 0.0)
    run(m, SUCCESS, 10.0)  # trial closes it
    assert m.state is CLOSED
    m.record(old, FAILURE, now=11.0)  # failure threshold 1: a live permit would reopen
    assert m.state is CLOSED
    assert m.failed_calls == 1


def test_a_trial_from_an_earlier_half_open_epoch_is_ignored() -> None:
    m = half_open_machine(half_open_max_calls=2, success_threshold=1)
    first_epoch = m.acquire(10.0)
    failing = m.acquire(10.0)
    m.record(failing, FAILURE, now=10.5)  # re-opens at 10.5
    assert m.state is OPEN
    assert m.poll(20.5) is HALF_OPEN
    second_epoch = m.acquire(20.5)
    m.take_events()
    # The first epoch's trial finishing now neither closes the breaker (success
    # threshold 1) nor frees a slot in the new epoch.
    m.record(first_epoch, SUCCESS, now=21.0)
    assert m.state is HALF_OPEN
    assert m.snapshot(21.0).trial_calls_in_flight == 1
    m.record(first_epoch, FAILURE, now=21.0)
    assert m.state is HALF_OPEN
    assert m.take_events() == []
    m.record(second_epoch, SUCCESS, now=22.0)
    assert m.state is CLOSED


def test_permits_are_generations() -> None:
    m = machine(failure_threshold=1, recovery_timeout=1, success_threshold=1)
    assert m.acquire(0.0) == m.generation == 0
    run(m, FAILURE)
    assert m.generation == 1
    assert m.acquire(1.0) == 2  # OPEN -> HALF_OPEN is a transition too


# ---- force_open and reset


def test_force_open_stays_open_until_reset() -> None:
    m = machine(recovery_timeout=10)
    m.force_open(1.0)
    assert m.state is OPEN
    assert transitions(m) == [(CLOSED, OPEN, "forced open")]
    assert m.retry_after(1.0) == math.inf
    assert m.poll(1e9) is OPEN
    assert m.acquire(1e9) == REJECTED
    [rejected] = m.take_events()
    assert isinstance(rejected, CallRejected)
    assert rejected.retry_after == math.inf
    snap = m.snapshot(1e9)
    assert snap.forced_open
    assert snap.times_opened == 1
    m.reset(2e9)
    assert m.state is CLOSED
    assert transitions(m) == [(OPEN, CLOSED, "reset")]
    assert not m.snapshot(2e9).forced_open
    assert m.acquire(2e9) != REJECTED


def test_force_open_event_carries_infinite_retry_after() -> None:
    m = machine()
    m.force_open(0.0)
    [opened] = m.take_events()
    assert isinstance(opened, BreakerOpened)
    assert opened.retry_after == math.inf


def test_force_open_from_half_open_invalidates_the_trials() -> None:
    m = half_open_machine(success_threshold=1)
    trial = m.acquire(10.0)
    m.force_open(10.0)
    assert transitions(m) == [(HALF_OPEN, OPEN, "forced open")]
    m.record(trial, SUCCESS, now=11.0)
    assert m.state is OPEN


def test_force_open_on_an_open_breaker_pins_it_open() -> None:
    m = open_machine(recovery_timeout=10)
    m.force_open(5.0)
    assert m.take_events() == []  # already open: no new transition
    assert m.poll(100.0) is OPEN
    assert m.retry_after(100.0) == math.inf


def test_reset_from_open_and_half_open() -> None:
    m = open_machine()
    m.reset(1.0)
    assert m.state is CLOSED
    assert transitions(m) == [(OPEN, CLOSED, "reset")]
    m = half_open_machine()
    trial = m.acquire(10.0)
    m.reset(10.0)
    assert transitions(m) == [(HALF_OPEN, CLOSED, "reset")]
    m.record(trial, FAILURE, now=10.0)  # stale: failure threshold 1 would reopen
    assert m.state is CLOSED


def test_reset_while_closed_forgets_counts_without_an_event() -> None:
    m = machine(failure_threshold=3, failure_rate_threshold=0.9, minimum_calls=3)
    run(m, FAILURE)
    run(m, FAILURE)
    m.reset(0.0)
    assert m.take_events() == []
    snap = m.snapshot(0.0)
    assert (snap.consecutive_failures, snap.window_calls) == (0, 0)
    run(m, FAILURE)
    run(m, FAILURE)
    assert m.state is CLOSED


# ---- retry_after


def test_retry_after_counts_down_while_open() -> None:
    m = machine(failure_threshold=1, recovery_timeout=30)
    assert m.retry_after(0.0) == 0.0
    run(m, FAILURE, 5.0)
    m.take_events()
    assert m.retry_after(5.0) == 30.0
    assert m.retry_after(15.0) == 20.0
    assert m.retry_after(35.0) == 0.0
    assert m.retry_after(100.0) == 0.0  # never negative
    m.acquire(15.0)
    [rejected] = m.take_events()
    assert isinstance(rejected, CallRejected)
    assert rejected.retry_after == 20.0
    assert m.snapshot(15.0).retry_after == 20.0


def test_retry_after_while_half_open_is_bounded() -> None:
    m = half_open_machine(recovery_timeout=10)
    m.acquire(10.0)
    assert m.acquire(12.0) == REJECTED
    [rejected] = m.take_events()
    assert isinstance(rejected, CallRejected)
    assert 0.0 <= rejected.retry_after <= 10.0


# ---- events and snapshots


def test_a_full_cycle_emits_transitions_in_order() -> None:
    m = machine(failure_threshold=2, recovery_timeout=5, success_threshold=1)
    run(m, FAILURE, 1.0)
    run(m, FAILURE, 2.0)
    m.acquire(3.0)
    permit = m.acquire(7.0)
    m.record(permit, FAILURE, now=7.5)
    permit = m.acquire(12.5)
    m.record(permit, SUCCESS, now=13.0)
    events = m.take_events()
    assert [(type(e), e.at) for e in events] == [
        (BreakerOpened, 2.0),
        (CallRejected, 3.0),
        (BreakerHalfOpened, 7.0),
        (BreakerOpened, 7.5),
        (BreakerHalfOpened, 12.5),
        (BreakerClosed, 13.0),
    ]
    chain = [(e.old, e.new) for e in events if isinstance(e, BreakerTransition)]
    assert chain == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    assert all(e.breaker == "svc" for e in events)
    assert m.take_events() == []
    assert m.times_opened == 2


def test_classification() -> None:
    m = machine(
        record_on=(ConnectionError, lambda exc: "flaky" in str(exc)),
        ignore_on=ConnectionAbortedError,
        record_result=lambda out: out is None,
    )
    assert m.classify_error(ConnectionRefusedError()) == FAILURE
    assert m.classify_error(ValueError("flaky")) == FAILURE
    assert m.classify_error(ConnectionAbortedError()) == IGNORED  # ignore_on wins
    assert m.classify_error(ValueError("bad input")) == SUCCESS
    assert m.classify_error(asyncio.CancelledError()) == IGNORED
    assert m.classify_error(KeyboardInterrupt()) == IGNORED
    assert m.classify_result(None) == FAILURE
    assert m.classify_result({"answer": 1}) == SUCCESS
    assert machine().classify_result(None) == SUCCESS


def test_snapshot_to_dict_is_plain_data() -> None:
    m = machine(failure_rate_threshold=0.5, slow_call_duration=1.0)
    run(m, FAILURE, duration=2.0)
    d = m.snapshot(0.0).to_dict()
    assert d["state"] == "closed"
    assert type(d["state"]) is str
    assert d["window_calls"] == 1
    assert d["window_failures"] == 1
    assert d["window_slow_calls"] == 1
    assert d["failure_rate"] == 1.0
    assert d["slow_call_rate"] == 1.0
    assert d["name"] == "svc"


def test_a_zero_baseline_does_not_make_every_call_slow() -> None:
    # Calls faster than the clock's resolution measure 0 s; 0 >= factor * 0 must not
    # make them slow, or a healthy, fast dependency opens the breaker.
    m = slow_machine(
        slow_call_baseline_factor=2.0,
        minimum_calls=3,
        window=CountWindow(10),
        slow_call_rate_threshold=0.5,
    )
    for _ in range(10):
        run(m, SUCCESS, duration=0.0)
    snap = m.snapshot(0.0)
    assert (snap.baseline_latency, snap.window_slow_calls) == (0.0, 0)
    assert m.state is CLOSED
    # A zero baseline judges nothing; the next real duration moves it.
    run(m, SUCCESS, duration=0.5)
    snap = m.snapshot(0.0)
    assert snap.baseline_latency == pytest.approx(0.05)
    assert snap.window_slow_calls == 0
    run(m, SUCCESS, duration=0.5)  # >= 2 * 0.05: slow
    assert m.snapshot(0.0).window_slow_calls == 1


# ---- trials that never report


def test_trials_unanswered_for_a_recovery_period_are_written_off() -> None:
    m = half_open_machine(half_open_max_calls=1, success_threshold=1)
    stuck = m.acquire(10.0)  # a trial that hangs and never reports
    assert m.acquire(15.0) == REJECTED
    assert m.retry_after(15.0) == 5.0  # the slot is written off at t=20 at the latest
    m.take_events()
    fresh = m.acquire(20.0)
    assert fresh not in (REJECTED, stuck)
    assert transitions(m) == [(HALF_OPEN, HALF_OPEN, "trial calls unanswered for 10s; new trials")]
    m.record(stuck, FAILURE, now=21.0)  # the lost trial finally fails: stale, ignored
    assert m.state is HALF_OPEN
    m.record(fresh, SUCCESS, now=21.0)
    assert m.state is CLOSED


def test_snapshot_to_dict_is_strict_json_when_forced_open() -> None:
    import json

    m = machine()
    m.force_open(0.0)
    data = m.snapshot(1.0).to_dict()
    assert data["retry_after"] is None
    assert json.loads(json.dumps(data, allow_nan=False))["state"] == "open"


def test_time_window_success_can_open_once_older_successes_expired() -> None:
    m = machine(
        failure_threshold=None,
        failure_rate_threshold=0.5,
        window=TimeWindow(10, buckets=10),
        minimum_calls=2,
    )
    for _ in range(3):
        run(m, SUCCESS, 0.0)
    run(m, FAILURE, 5.0)
    run(m, FAILURE, 5.0)  # 2 of 5 failed: 40 %
    assert m.state is CLOSED
    # At t=10.5 the t=0 successes have left the window: a success makes it 2 of 3.
    run(m, SUCCESS, 10.5)
    assert m.state is OPEN


def test_count_window_success_that_reaches_minimum_calls_opens() -> None:
    m = machine(
        failure_threshold=None,
        failure_rate_threshold=0.5,
        window=CountWindow(10),
        minimum_calls=4,
    )
    run(m, FAILURE)
    run(m, FAILURE)
    run(m, SUCCESS)
    assert m.state is CLOSED  # 3 calls: below minimum_calls
    run(m, SUCCESS)  # the 4th call is a success, and 2 of 4 failed
    assert m.state is OPEN
