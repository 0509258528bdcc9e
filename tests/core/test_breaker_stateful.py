"""Random call sequences against a CircuitBreaker, checked step by step against a model.

The reference model below is written from the documented semantics, not from the
implementation: it keeps the window as a plain list of ``(time, failed, slow)`` records,
judges rates with exact fractions, and tracks which "epoch" (run of one state) admitted
each call, so that outcomes of calls admitted before the latest transition are ignored.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from langgraph_resilience import (
    Attempt,
    BreakerEvent,
    BreakerPolicy,
    BreakerState,
    BreakerTransition,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    CountWindow,
    FakeClock,
    InMemoryBreakerStore,
    TimeWindow,
)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
OK, FAILED, IGNORED = "ok", "failed", "ignored"

# How a finished call is reported, and how to report it.
FINISHES = {
    "success": lambda a: a.succeed("fine"),
    "bad_result": lambda a: a.succeed("bad"),
    "failure": lambda a: a.fail(ValueError("boom")),
    "other_error": lambda a: a.fail(KeyError("bad request")),
    "ignored_error": lambda a: a.fail(UnicodeError("ignored")),
    "cancelled": lambda a: a.fail(asyncio.CancelledError()),
    "abandoned": lambda a: a.abandon(),
}

# Outcomes to finish calls with, the plain ones more often.
KINDS = st.sampled_from(
    ["success", "failure"] * 3
    + ["bad_result", "other_error", "ignored_error"]
    + ["cancelled", "abandoned"]
)

ALLOWED = {
    (CLOSED, OPEN),
    (OPEN, HALF_OPEN),
    (HALF_OPEN, CLOSED),
    (HALF_OPEN, OPEN),
    (HALF_OPEN, HALF_OPEN),  # trials unanswered for a recovery period: a new round
    (OPEN, CLOSED),  # reset() only (checked by reason)
}


@dataclass
class Model:
    """The breaker as the documentation describes it."""

    failure_threshold: int | None
    recovery: float
    success_threshold: int
    max_trials: int
    failure_rate: Fraction | None
    slow_duration: float | None
    slow_factor: float | None
    slow_rate: Fraction
    minimum_calls: int
    count_size: int | None = None  # CountWindow(size)
    time_width: float | None = None  # TimeWindow: slice width
    time_buckets: int = 0
    outcomes: dict[str, str] = field(default_factory=dict)

    state: str = CLOSED
    epoch: int = 0
    forced: bool = False
    opened_at: float = 0.0
    half_opened_at: float = 0.0
    streak: int = 0
    window: list[tuple[float, bool, bool]] = field(default_factory=list)
    trials: int = 0
    trial_successes: int = 0
    baseline: float | None = None
    samples: int = 0
    failed_calls: int = 0
    rejected: int = 0
    times_opened: int = 0
    transitions: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def uses_window(self) -> bool:
        return self.failure_rate is not None or self.detects_slow

    @property
    def detects_slow(self) -> bool:
        return self.slow_duration is not None or self.slow_factor is not None

    def go(self, new: str, now: float, reason: str) -> None:
        self.transitions.append((self.state, new, reason))
        self.epoch += 1
        self.state = new
        if new == OPEN:
            self.opened_at = now
        elif new == HALF_OPEN:
            self.half_opened_at = now
            self.trials = 0
            self.trial_successes = 0
        else:
            self.streak = 0
            self.window = []

    def open(self, now: float, reason: str) -> None:
        self.times_opened += 1
        self.go(OPEN, now, reason)

    def poll(self, now: float) -> None:
        if self.state == OPEN and not self.forced and now - self.opened_at >= self.recovery:
            self.go(HALF_OPEN, now, "timeout")

    def admit(self, now: float) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            if self.forced or now - self.opened_at < self.recovery:
                self.rejected += 1
                return False
            self.go(HALF_OPEN, now, "timeout")
        if self.trials < self.max_trials:
            self.trials += 1
            return True
        if self.recovery > 0 and now - self.half_opened_at >= self.recovery:
            self.go(HALF_OPEN, now, "trials unanswered")  # stuck trials are written off
            self.trials = 1
            return True
        self.rejected += 1
        return False

    def retry_after(self, now: float) -> float:
        if self.state == OPEN:
            return math.inf if self.forced else max(0.0, self.opened_at + self.recovery - now)
        if self.state == HALF_OPEN:  # when busy trial slots are written off at the latest
            return max(0.0, self.half_opened_at + self.recovery - now)
        return 0.0

    def is_slow(self, duration: float) -> bool:
        if self.slow_duration is not None and duration >= self.slow_duration:
            return True
        return (
            self.slow_factor is not None
            and self.baseline is not None
            and self.baseline > 0  # a zero baseline (instant calls) judges nothing
            and self.samples >= self.minimum_calls
            and duration >= self.slow_factor * self.baseline
        )

    def prune(self, now: float) -> None:
        if self.count_size is not None:
            self.window = self.window[-self.count_size :]
        else:
            assert self.time_width is not None
            oldest = math.floor(now / self.time_width) - self.time_buckets + 1
            self.window = [c for c in self.window if math.floor(c[0] / self.time_width) >= oldest]

    def finish(self, epoch: int, kind: str, now: float, duration: float) -> None:
        outcome = self.outcomes[kind]
        if epoch != self.epoch:
            return  # admitted before the latest transition
        if self.state == CLOSED:
            if outcome == IGNORED:
                return
            failed = outcome == FAILED
            slow = self.is_slow(duration)
            if failed:
                self.failed_calls += 1
                self.streak += 1
            else:
                self.streak = 0
                if self.slow_factor is not None and not slow:
                    self.baseline = (
                        duration
                        if self.baseline is None
                        else self.baseline + 0.1 * (duration - self.baseline)
                    )
                    self.samples += 1
            if self.failure_threshold is not None and self.streak >= self.failure_threshold:
                self.open(now, "streak")
                return
            if self.uses_window:
                self.window.append((now, failed, slow))
                self.prune(now)
                calls = len(self.window)
                if calls >= self.minimum_calls:
                    failures = sum(c[1] for c in self.window)
                    slows = sum(c[2] for c in self.window)
                    if self.failure_rate is not None and Fraction(failures, calls) >= (
                        self.failure_rate
                    ):
                        self.open(now, "failure rate")
                    elif self.detects_slow and Fraction(slows, calls) >= self.slow_rate:
                        self.open(now, "slow rate")
        elif self.state == HALF_OPEN:
            self.trials -= 1
            if outcome == IGNORED:
                return
            if outcome == FAILED:
                self.failed_calls += 1
                self.open(now, "trial failed")
            elif self.is_slow(duration):
                self.open(now, "trial slow")
            else:
                self.trial_successes += 1
                if self.trial_successes >= self.success_threshold:
                    self.go(CLOSED, now, "trials")
        else:  # pragma: no cover - an open breaker admits nothing
            raise AssertionError("a live permit while open")

    def reset(self, now: float) -> None:
        self.forced = False
        if self.state == CLOSED:
            self.streak = 0
            self.window = []
        else:
            self.go(CLOSED, now, "reset")

    def force_open(self, now: float) -> None:
        self.forced = True
        if self.state == OPEN:
            self.opened_at = now
        else:
            self.open(now, "forced open")


@dataclass
class Running:
    attempt: Attempt
    epoch: int
    started: float


class BreakerAgainstModel(RuleBasedStateMachine):
    """Subclasses set POLICY and build the matching MODEL."""

    POLICY: BreakerPolicy
    SLOW: float  # an extra duration that surely makes a call slow

    def model(self) -> Model:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1000.0)
        self.events: list[BreakerEvent] = []
        self.breaker = CircuitBreaker(
            "svc", self.POLICY, clock=self.clock, store=InMemoryBreakerStore()
        )
        self.breaker.add_listener(self.events.append)
        self.ref = self.model()
        self.running: list[Running] = []
        self.seen_transitions = 0

    @property
    def now(self) -> float:
        return self.clock.now()

    # ---- rules

    def start_one(self) -> None:
        admitted = self.ref.admit(self.now)
        expected_retry = self.ref.retry_after(self.now)
        rejection: CircuitOpenError | None = None
        try:
            attempt = self.breaker.begin()
        except CircuitOpenError as exc:
            rejection = exc
        if rejection is None:
            assert admitted, f"admitted, but the model rejects ({self.ref.state})"
            self.running.append(Running(attempt, self.ref.epoch, self.now))
            return
        assert not admitted, f"rejected, but the model admits ({self.ref.state})"
        assert rejection.breaker == "svc"
        assert rejection.state == self.ref.state
        assert rejection.retry_after == expected_retry
        assert isinstance(self.events[-1], CallRejected)

    def finish_one(self, which: int, kind: str) -> None:
        call = self.running.pop(which % len(self.running))
        self.ref.finish(call.epoch, kind, self.now, self.now - call.started)
        FINISHES[kind](call.attempt)

    @rule(n=st.integers(min_value=1, max_value=3))
    def start(self, n: int) -> None:
        for _ in range(n):
            self.start_one()

    @precondition(lambda self: self.running)
    @rule(which=st.integers(min_value=0, max_value=50), kind=KINDS)
    def finish(self, which: int, kind: str) -> None:
        self.finish_one(which, kind)

    @rule(kind=KINDS, seconds=st.sampled_from([0.0, 0.25, 1.0]))
    def call(self, kind: str, seconds: float) -> None:
        """A whole call: admitted, runs for ``seconds``, ends as ``kind``."""
        self.start_one()
        if self.running and self.running[-1].started == self.now:
            self.clock.advance(seconds)
            self.finish_one(len(self.running) - 1, kind)

    @precondition(lambda self: self.running)
    @rule(which=st.integers(min_value=0, max_value=50))
    def finish_slowly(self, which: int) -> None:
        self.clock.advance(self.SLOW)
        self.finish_one(which, "success")

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 10.0, 30.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: self.ref.state == OPEN and not self.ref.forced)
    @rule()
    def wait_out_the_timeout(self) -> None:
        self.clock.advance(self.ref.retry_after(self.now))

    @rule(action=st.sampled_from(["nothing"] * 6 + ["reset", "force_open"]))
    def control(self, action: str) -> None:
        """reset() and force_open() now and then (they would swamp everything else)."""
        if action == "reset":
            self.ref.reset(self.now)
            self.breaker.reset()
        elif action == "force_open":
            self.ref.force_open(self.now)
            self.breaker.force_open()

    @precondition(lambda self: self.running)
    @rule()
    def report_twice(self) -> None:
        """A second report of the same attempt is ignored."""
        call = self.running.pop(0)
        self.ref.finish(call.epoch, "failure", self.now, self.now - call.started)
        call.attempt.fail(ValueError("first"))
        call.attempt.succeed("second")
        call.attempt.abandon()

    # ---- checks

    @invariant()
    def agrees_with_the_model(self) -> None:
        ref, now = self.ref, self.now
        ref.poll(now)
        snap = self.breaker.snapshot()
        assert snap.state.value == ref.state
        assert self.breaker.state is BreakerState(ref.state)
        assert snap.forced_open == ref.forced
        assert snap.times_opened == ref.times_opened
        assert snap.failed_calls == ref.failed_calls
        assert snap.rejected_calls == ref.rejected
        if ref.state == OPEN:
            assert snap.retry_after == ref.retry_after(now)
        elif ref.state == HALF_OPEN:
            assert snap.trial_calls_in_flight == ref.trials
            assert snap.trial_successes == ref.trial_successes
            assert snap.retry_after == ref.retry_after(now)
        else:
            assert snap.retry_after == 0.0
            assert snap.consecutive_failures == ref.streak
            if ref.uses_window:
                ref.prune(now)
                assert snap.window_calls == len(ref.window)
                assert snap.window_failures == sum(c[1] for c in ref.window)
                assert snap.window_slow_calls == sum(c[2] for c in ref.window)
        if ref.slow_factor is not None:
            assert snap.baseline_latency == ref.baseline

    @invariant()
    def trials_in_flight_stay_within_the_limit(self) -> None:
        assert 0 <= self.breaker.snapshot().trial_calls_in_flight <= self.ref.max_trials

    @invariant()
    def transitions_match_and_are_allowed(self) -> None:
        seen = [
            (e.old.value, e.new.value, e.reason)
            for e in self.events
            if isinstance(e, BreakerTransition)
        ]
        expected = self.ref.transitions
        assert [(old, new) for old, new, _ in seen] == [(old, new) for old, new, _ in expected]
        for (old, new, reason), (_, _, why) in zip(seen, expected, strict=True):
            assert (old, new) in ALLOWED
            assert (reason == "reset") == (why == "reset")
            assert (reason == "forced open") == (why == "forced open")
        # The transitions chain up: each starts where the previous one ended.
        for before, after in itertools.pairwise(seen):
            assert before[1] == after[0]


FAST = settings(stateful_step_count=60)


def fraction(rate: float) -> Fraction:
    return Fraction(str(rate))


@FAST
class CountWindowBreaker(BreakerAgainstModel):
    """Consecutive and failure-rate rules over a count window, absolute slow calls,
    a result predicate, record_on and ignore_on, several trials at once."""

    POLICY = BreakerPolicy(
        failure_threshold=3,
        recovery_timeout=10,
        success_threshold=2,
        half_open_max_calls=2,
        failure_rate_threshold=0.4,
        slow_call_duration=2.0,
        slow_call_rate_threshold=0.6,
        window=CountWindow(5),
        minimum_calls=3,
        record_on=ValueError,
        ignore_on=UnicodeError,  # a ValueError: ignore_on wins
        record_result=lambda out: out == "bad",
    )
    SLOW = 2.0

    def model(self) -> Model:
        return Model(
            failure_threshold=3,
            recovery=10.0,
            success_threshold=2,
            max_trials=2,
            failure_rate=fraction(0.4),
            slow_duration=2.0,
            slow_factor=None,
            slow_rate=fraction(0.6),
            minimum_calls=3,
            count_size=5,
            outcomes={
                "success": OK,
                "bad_result": FAILED,
                "failure": FAILED,
                "other_error": OK,  # not in record_on: the dependency answered
                "ignored_error": IGNORED,
                "cancelled": IGNORED,
                "abandoned": IGNORED,
            },
        )


@FAST
class TimeWindowBreaker(BreakerAgainstModel):
    """Rate rules only, over a time window of 4 slices of 2 s, absolute slow calls."""

    POLICY = BreakerPolicy(
        failure_threshold=None,
        recovery_timeout=5,
        success_threshold=1,
        half_open_max_calls=3,
        failure_rate_threshold=0.5,
        slow_call_duration=3.0,
        slow_call_rate_threshold=0.5,
        window=TimeWindow(8, buckets=4),
        minimum_calls=4,
    )
    SLOW = 3.0

    def model(self) -> Model:
        return Model(
            failure_threshold=None,
            recovery=5.0,
            success_threshold=1,
            max_trials=3,
            failure_rate=fraction(0.5),
            slow_duration=3.0,
            slow_factor=None,
            slow_rate=fraction(0.5),
            minimum_calls=4,
            time_width=2.0,
            time_buckets=4,
            outcomes={
                "success": OK,
                "bad_result": OK,  # no result predicate
                "failure": FAILED,
                "other_error": FAILED,  # record_on defaults to Exception
                "ignored_error": FAILED,
                "cancelled": IGNORED,
                "abandoned": IGNORED,
            },
        )


@FAST
class BaselineBreaker(BreakerAgainstModel):
    """Slow calls judged against the running baseline latency, one trial at a time."""

    POLICY = BreakerPolicy(
        failure_threshold=4,
        recovery_timeout=10,
        success_threshold=2,
        half_open_max_calls=1,
        slow_call_baseline_factor=2.5,
        slow_call_rate_threshold=0.5,
        window=CountWindow(6),
        minimum_calls=3,
        ignore_on=(KeyError,),
    )
    SLOW = 10.0

    def model(self) -> Model:
        return Model(
            failure_threshold=4,
            recovery=10.0,
            success_threshold=2,
            max_trials=1,
            failure_rate=None,
            slow_duration=None,
            slow_factor=2.5,
            slow_rate=fraction(0.5),
            minimum_calls=3,
            count_size=6,
            outcomes={
                "success": OK,
                "bad_result": OK,
                "failure": FAILED,
                "other_error": IGNORED,  # KeyError is in ignore_on
                "ignored_error": FAILED,
                "cancelled": IGNORED,
                "abandoned": IGNORED,
            },
        )


TestCountWindowBreaker = CountWindowBreaker.TestCase
TestTimeWindowBreaker = TimeWindowBreaker.TestCase
TestBaselineBreaker = BaselineBreaker.TestCase


def test_the_model_itself_opens_and_closes() -> None:
    """A sanity check of the reference model, so a broken model cannot pass vacuously."""
    m = CountWindowBreaker().model()
    for _ in range(3):
        assert m.admit(0.0)
        m.finish(m.epoch, "failure", 0.0, 0.0)
    assert m.state == OPEN
    assert not m.admit(9.0)
    assert m.retry_after(9.0) == 1.0
    assert m.admit(10.0)
    assert m.state == HALF_OPEN
    m.finish(m.epoch, "success", 10.0, 0.0)
    assert m.admit(10.0)
    m.finish(m.epoch, "success", 10.0, 0.0)
    assert m.state == CLOSED
    assert [t[:2] for t in m.transitions] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
