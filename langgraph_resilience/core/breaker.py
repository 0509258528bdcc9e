"""The circuit breaker state machine: pure, single-threaded, time passed in.

:class:`BreakerMachine` holds the state of one breaker and decides. It runs no user
code, takes no locks and never reads a clock: callers pass ``now`` and serialise access
(the in-memory store does it with a lock held only around these methods). Decisions
that change state append typed events to ``pending_events``.

A *permit* is the generation number of the state that admitted a call. Every
transition bumps the generation, so the outcome of a call admitted before the latest
transition is recognised as stale and never changes the state.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from html import escape
from typing import Any

from .clock import to_seconds
from .events import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerState,
    CallRejected,
)
from .policy import BreakerPolicy, CountWindow, compile_matcher

__all__ = [
    "FAILURE",
    "IGNORED",
    "NO_RESULT",
    "REJECTED",
    "SUCCESS",
    "BreakerMachine",
    "BreakerSnapshot",
]

SUCCESS = 0
"""Outcome: the call succeeded."""
FAILURE = 1
"""Outcome: the call failed."""
IGNORED = 2
"""Outcome: not counted (cancelled, interrupted, or an ignored exception)."""
REJECTED = -1
"""Returned by :meth:`BreakerMachine.acquire` instead of a permit."""


class _NoResult:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT: Any = _NoResult()
"""Stands for the outcome of a ``with breaker:`` block, which has no return value."""

_CLOSED, _OPEN, _HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

BASELINE_WEIGHT = 0.1
"""Weight of the newest successful call in the exponentially weighted baseline latency."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerSnapshot:
    """A consistent picture of one breaker at one moment (JSON-friendly)."""

    name: str
    state: BreakerState
    consecutive_failures: int
    window_calls: int
    """Calls currently in the sliding window (0 when no rate rule is set)."""
    window_failures: int
    window_slow_calls: int
    failure_rate: float | None
    """Share of failed calls in the window, ``None`` while it is empty."""
    slow_call_rate: float | None
    baseline_latency: float | None
    """Running mean latency of successful calls (seconds), when slow calls are judged
    against a baseline."""
    retry_after: float
    """Seconds until an open breaker admits trial calls (0 when closed)."""
    trial_calls_in_flight: int
    trial_successes: int
    forced_open: bool
    times_opened: int
    rejected_calls: int
    failed_calls: int
    generation: int

    def to_dict(self) -> dict[str, Any]:
        """Plain, strict JSON data (a forced-open ``retry_after`` of infinity is ``None``)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["state"] = self.state.value
        if math.isinf(self.retry_after):
            out["retry_after"] = None
        return out

    def _repr_html_(self) -> str:
        colour = {"closed": "#1a7f37", "open": "#cf222e", "half_open": "#9a6700"}[self.state.value]
        rows = [
            ("state", f'<b style="color:{colour}">{self.state.value}</b>'),
            ("consecutive failures", str(self.consecutive_failures)),
        ]
        if self.failure_rate is not None:
            rows.append(("failure rate", f"{self.failure_rate:.0%} of {self.window_calls} calls"))
        if self.slow_call_rate is not None:
            rows.append(("slow-call rate", f"{self.slow_call_rate:.0%}"))
        if self.baseline_latency is not None:
            rows.append(("baseline latency", f"{self.baseline_latency * 1000:.1f} ms"))
        if self.state is not _CLOSED:
            rows.append(("retry after", f"{self.retry_after:.1f} s"))
        rows += [
            ("times opened", str(self.times_opened)),
            ("rejected calls", str(self.rejected_calls)),
        ]
        body = "".join(
            f"<tr><td style='text-align:left'>{k}</td><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption>breaker <code>{escape(self.name)}</code></caption>{body}</table>"


class _CountStats:
    """Outcomes of the last ``size`` calls in a ring buffer (bit 0 failed, bit 1 slow)."""

    __slots__ = ("_index", "_ring", "_size", "calls", "failures", "slow")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ring = bytearray(size)
        self._index = 0
        self.calls = self.failures = self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        index = self._index
        if self.calls == self._size:
            old = self._ring[index]
            if old:
                self.failures -= old & 1
                self.slow -= old >> 1
        else:
            self.calls += 1
        if failed or slow:
            self._ring[index] = failed | (slow << 1)
            self.failures += failed
            self.slow += slow
        else:
            self._ring[index] = 0
        index += 1
        self._index = 0 if index == self._size else index

    def expire(self, now: float) -> None:
        pass

    def clear(self) -> None:
        self._index = 0
        self.calls = self.failures = self.slow = 0


class _TimeStats:
    """Outcomes of the last ``buckets`` slices of ``width`` seconds each."""

    __slots__ = ("_buckets", "_slices", "_width", "calls", "failures", "slow")

    def __init__(self, duration: float, buckets: int) -> None:
        self._width = duration / buckets
        self._buckets = buckets
        self._slices: deque[list[int]] = deque()  # [slice index, calls, failures, slow]
        self.calls = self.failures = self.slow = 0

    def expire(self, now: float) -> None:
        oldest_kept = int(now // self._width) - self._buckets + 1
        slices = self._slices
        while slices and slices[0][0] < oldest_kept:
            _, calls, failures, slow = slices.popleft()
            self.calls -= calls
            self.failures -= failures
            self.slow -= slow

    def add(self, now: float, failed: bool, slow: bool) -> None:
        self.expire(now)
        index = int(now // self._width)
        if self._slices and self._slices[-1][0] == index:
            bucket = self._slices[-1]
        else:
            bucket = [index, 0, 0, 0]
            self._slices.append(bucket)
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def clear(self) -> None:
        self._slices.clear()
        self.calls = self.failures = self.slow = 0


class BreakerMachine:
    """The state of one circuit breaker, and every decision about it.

    Not thread-safe by design: the owner serialises calls. Example (single-threaded)::

        >>> m = BreakerMachine("svc", BreakerPolicy(failure_threshold=2), now=0.0)
        >>> for _ in range(2):
        ...     m.record(m.acquire(0.0), FAILURE, now=0.0)
        >>> m.state
        <BreakerState.OPEN: 'open'>
        >>> m.acquire(1.0) == REJECTED
        True
    """

    __slots__ = (
        "_baseline",
        "_baseline_samples",
        "_failure_threshold",
        "_forced",
        "_half_opened_at",
        "_is_failure",
        "_is_ignored",
        "_judge_every_call",
        "_max_trials",
        "_minimum_calls",
        "_opened_at",
        "_rate_threshold",
        "_recovery",
        "_slow_absolute",
        "_slow_factor",
        "_slow_rate_threshold",
        "_stats",
        "_success_threshold",
        "_trial_successes",
        "_trials_in_flight",
        "closed_generation",
        "consecutive_failures",
        "failed_calls",
        "generation",
        "name",
        "needs_timing",
        "pending_events",
        "policy",
        "record_result",
        "rejected_calls",
        "simple_success",
        "state",
        "times_opened",
    )

    def __init__(self, name: str, policy: BreakerPolicy, *, now: float) -> None:
        self.name = name
        self.policy = policy
        p = policy
        self._failure_threshold = p.failure_threshold or 0
        self._recovery = to_seconds(p.recovery_timeout, field="recovery_timeout")
        self._success_threshold = p.success_threshold
        self._max_trials = p.half_open_max_calls
        self._minimum_calls = p.minimum_calls
        self._rate_threshold = p.failure_rate_threshold
        self._slow_absolute = (
            None
            if p.slow_call_duration is None
            else to_seconds(p.slow_call_duration, field="slow_call_duration")
        )
        self._slow_factor = p.slow_call_baseline_factor
        self._slow_rate_threshold = p.slow_call_rate_threshold if p.detects_slow_calls else None
        self._is_failure = compile_matcher(p.record_on, field="record_on")
        self._is_ignored = compile_matcher(p.ignore_on, field="ignore_on")
        self.record_result = p.record_result
        self._stats: _CountStats | _TimeStats | None = None
        if self._rate_threshold is not None or p.detects_slow_calls:
            w = p.window
            self._stats = (
                _CountStats(w.size)
                if isinstance(w, CountWindow)
                else _TimeStats(to_seconds(w.duration, field="duration"), w.buckets)
            )
        self.needs_timing = p.detects_slow_calls or isinstance(self._stats, _TimeStats)
        self._judge_every_call = isinstance(self._stats, _TimeStats)
        # A success that needs no bookkeeping beyond resetting the failure streak: the
        # front may skip the lock for it.
        self.simple_success = self._stats is None and self.record_result is None
        self._baseline: float | None = None
        self._baseline_samples = 0

        self.state = _CLOSED
        self.generation = 0
        self.closed_generation = 0  # == generation while closed, else -1 (read lock-free)
        self.consecutive_failures = 0
        self._opened_at = now
        self._half_opened_at = now
        self._trials_in_flight = 0
        self._trial_successes = 0
        self._forced = False
        self.times_opened = 0
        self.rejected_calls = 0
        self.failed_calls = 0
        self.pending_events: list[BreakerEvent] = []

    # ---- classification (pure; runs user predicates, so callers run it outside locks)

    def classify_error(self, exc: BaseException) -> int:
        """FAILURE, SUCCESS or IGNORED for a raised exception."""
        if self._is_ignored(exc):
            return IGNORED
        if self._is_failure(exc):
            return FAILURE
        return SUCCESS if isinstance(exc, Exception) else IGNORED

    def classify_result(self, result: Any) -> int:
        """FAILURE or SUCCESS for a returned value (``NO_RESULT``: a block that returns
        nothing, which the result predicate does not judge)."""
        predicate = self.record_result
        if predicate is None or result is NO_RESULT:
            return SUCCESS
        return FAILURE if predicate(result) else SUCCESS

    # ---- decisions

    def acquire(self, now: float) -> int:
        """Admit a call (returns its permit) or reject it (returns ``REJECTED``)."""
        state = self.state
        if state is _CLOSED:
            return self.generation
        if state is _OPEN:
            if self._forced or now - self._opened_at < self._recovery:
                return self._reject(now)
            self._transition(_HALF_OPEN, now, f"recovery timeout of {self._recovery:g}s elapsed")
        if self._trials_in_flight < self._max_trials:
            self._trials_in_flight += 1
            return self.generation
        if self._recovery > 0 and now - self._half_opened_at >= self._recovery:
            # The trials admitted a whole recovery period ago never reported (a hung
            # call, a lost attempt): start a new round so their permits are not stuck.
            self._transition(
                _HALF_OPEN, now, f"trial calls unanswered for {self._recovery:g}s; new trials"
            )
            self._trials_in_flight = 1
            return self.generation
        return self._reject(now)

    def record(self, permit: int, outcome: int, now: float, duration: float | None = None) -> None:
        """Record how an admitted call ended. Stale permits are ignored."""
        if permit != self.generation:
            return
        state = self.state
        if state is _CLOSED:
            if outcome == IGNORED:
                return
            slow = self._is_slow(duration)
            stats = self._stats
            if outcome == FAILURE:
                self.failed_calls += 1
                self.consecutive_failures += 1
                if self._failure_threshold and self.consecutive_failures >= self._failure_threshold:
                    self._open(now, f"{self.consecutive_failures} consecutive failures")
                elif stats is not None:
                    stats.add(now, True, slow)
                    self._judge_window(now)
                return
            self.consecutive_failures = 0
            if not slow and self._slow_factor is not None and duration is not None:
                self._update_baseline(duration)
            if stats is None:
                return
            before = stats.calls
            stats.add(now, False, slow)
            # A success can raise neither rate of a count window, except by bringing the
            # window up to minimum_calls; a time window may have dropped older calls.
            if slow or self._judge_every_call or before < self._minimum_calls <= stats.calls:
                self._judge_window(now)
        elif state is _HALF_OPEN:
            self._trials_in_flight -= 1
            if outcome == IGNORED:
                return
            if outcome == FAILURE:
                self.failed_calls += 1
                self._open(now, "a trial call failed")
            elif self._is_slow(duration):
                self._open(now, f"a trial call was slow ({duration:.3g}s)")
            else:
                self._trial_successes += 1
                if self._trial_successes >= self._success_threshold:
                    self._transition(
                        _CLOSED, now, f"{self._trial_successes} successful trial calls"
                    )
        # An OPEN state never holds live permits: acquire() grants none while open.

    def poll(self, now: float) -> BreakerState:
        """The state at ``now``, moving OPEN to HALF_OPEN if the timeout has passed."""
        if self.state is _OPEN and not self._forced and now - self._opened_at >= self._recovery:
            self._transition(_HALF_OPEN, now, f"recovery timeout of {self._recovery:g}s elapsed")
        return self.state

    def retry_after(self, now: float) -> float:
        """Seconds a rejected caller should wait."""
        if self.state is _OPEN:
            if self._forced:
                return math.inf
            return max(0.0, self._opened_at + self._recovery - now)
        if self.state is _HALF_OPEN:
            return max(0.0, self._half_opened_at + self._recovery - now)
        return 0.0

    def reset(self, now: float) -> None:
        """Close the breaker and forget its counts."""
        self._forced = False
        if self.state is _CLOSED:
            self.consecutive_failures = 0
            if self._stats is not None:
                self._stats.clear()
        else:
            self._transition(_CLOSED, now, "reset")

    def force_open(self, now: float) -> None:
        """Open the breaker until :meth:`reset`."""
        self._forced = True
        if self.state is _OPEN:
            self._opened_at = now
        else:
            self._open(now, "forced open")

    def snapshot(self, now: float) -> BreakerSnapshot:
        stats = self._stats
        if stats is not None:
            stats.expire(now)
        calls = stats.calls if stats is not None else 0
        return BreakerSnapshot(
            name=self.name,
            state=self.state,
            consecutive_failures=self.consecutive_failures,
            window_calls=calls,
            window_failures=stats.failures if stats is not None else 0,
            window_slow_calls=stats.slow if stats is not None else 0,
            failure_rate=(stats.failures / calls if stats is not None and calls else None),
            slow_call_rate=(
                stats.slow / calls
                if stats is not None and calls and self._slow_rate_threshold is not None
                else None
            ),
            baseline_latency=self._baseline,
            retry_after=self.retry_after(now),
            trial_calls_in_flight=self._trials_in_flight if self.state is _HALF_OPEN else 0,
            trial_successes=self._trial_successes if self.state is _HALF_OPEN else 0,
            forced_open=self._forced,
            times_opened=self.times_opened,
            rejected_calls=self.rejected_calls,
            failed_calls=self.failed_calls,
            generation=self.generation,
        )

    def take_events(self) -> list[BreakerEvent]:
        """Hand over the events produced since the last call."""
        events = self.pending_events
        if events:
            self.pending_events = []
        return events

    # ---- internals

    def _is_slow(self, duration: float | None) -> bool:
        if duration is None:
            return False
        if self._slow_absolute is not None and duration >= self._slow_absolute:
            return True
        return (
            self._slow_factor is not None
            and self._baseline is not None
            # a baseline of 0 s (calls faster than the clock's resolution) says nothing
            # about slowness: 0 >= factor * 0 would flag every call as slow
            and self._baseline > 0
            and self._baseline_samples >= self._minimum_calls
            and duration >= self._slow_factor * self._baseline
        )

    def _update_baseline(self, duration: float) -> None:
        if self._baseline is None:
            self._baseline = duration
        else:
            self._baseline += BASELINE_WEIGHT * (duration - self._baseline)
        self._baseline_samples += 1

    def _judge_window(self, now: float) -> None:
        stats = self._stats
        assert stats is not None
        calls = stats.calls
        if calls < self._minimum_calls:
            return
        for what, count, threshold in (
            ("failure rate", stats.failures, self._rate_threshold),
            ("slow-call rate", stats.slow, self._slow_rate_threshold),
        ):
            # A quotient, not count >= threshold * calls: 0.55 * 100 is 55.000000000000007.
            if threshold is not None and count / calls >= threshold:
                self._open(now, f"{what} {count / calls:.0%} >= {threshold:.0%} over {calls} calls")
                return

    def _reject(self, now: float) -> int:
        self.rejected_calls += 1
        self.pending_events.append(
            CallRejected(
                breaker=self.name, at=now, state=self.state, retry_after=self.retry_after(now)
            )
        )
        return REJECTED

    def _open(self, now: float, reason: str) -> None:
        self.times_opened += 1
        self._transition(_OPEN, now, reason)

    def _transition(self, new: BreakerState, now: float, reason: str) -> None:
        old = self.state
        # Order matters for lock-free readers of closed_generation: leave CLOSED by first
        # withdrawing the fast-path permit; enter CLOSED by publishing it last.
        self.closed_generation = -1
        self.generation += 1
        self.state = new
        event: BreakerEvent
        if new is _OPEN:
            self._opened_at = now
            event = BreakerOpened(
                breaker=self.name,
                at=now,
                old=old,
                new=new,
                reason=reason,
                retry_after=math.inf if self._forced else self._recovery,
            )
        elif new is _HALF_OPEN:
            self._half_opened_at = now
            self._trials_in_flight = 0
            self._trial_successes = 0
            event = BreakerHalfOpened(breaker=self.name, at=now, old=old, new=new, reason=reason)
        else:
            self.consecutive_failures = 0
            if self._stats is not None:
                self._stats.clear()
            self.closed_generation = self.generation
            event = BreakerClosed(breaker=self.name, at=now, old=old, new=new, reason=reason)
        self.pending_events.append(event)
