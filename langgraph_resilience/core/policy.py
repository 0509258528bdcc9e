"""Breaker policies: frozen, keyword-only values that say when a breaker opens and closes.

Everything here is validated at construction, so a bad value fails when the graph is
built, with a message naming the field and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeAlias

from .clock import to_seconds
from .failures import RecordedError, matches_recorded

__all__ = ["BreakerPolicy", "CountWindow", "ExceptionMatcher", "TimeWindow"]

ExceptionPredicate: TypeAlias = Callable[[BaseException], bool]
ExceptionMatcher: TypeAlias = (
    type[BaseException] | ExceptionPredicate | Sequence[type[BaseException] | ExceptionPredicate]
)
"""An exception type, a predicate on the exception, or a sequence mixing both."""


@dataclass(frozen=True, slots=True)
class CountWindow:
    """Judge failure and slow-call rates over the last ``size`` calls."""

    size: int = 100
    """How many of the most recent calls the rates are computed over (>= 1)."""

    def __post_init__(self) -> None:
        _check_int("CountWindow.size", self.size, minimum=1)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Judge failure and slow-call rates over the calls of the last ``duration``.

    Calls are counted in ``buckets`` equal slices of the window; a slice leaves the
    window as a whole, so the window spans between ``duration * (1 - 1/buckets)`` and
    ``duration`` seconds of history.
    """

    duration: float | timedelta = 60.0
    """Length of the window in seconds (> 0)."""
    buckets: int = 10
    """Number of slices the window is counted in (>= 1)."""

    def __post_init__(self) -> None:
        to_seconds(self.duration, field="TimeWindow.duration", allow_zero=False)
        _check_int("TimeWindow.buckets", self.buckets, minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    """When a circuit breaker opens, how long it stays open, and how it closes again.

    The defaults follow the seed pattern: three consecutive failures open the breaker,
    it stays open for 60 s, then lets one trial call through at a time, and two
    successful trials close it.

    Example:
        ```python
        from langgraph_resilience import BreakerPolicy, CountWindow

        policy = BreakerPolicy(
            failure_threshold=3,            # 3 failures in a row open it
            failure_rate_threshold=0.5,     # ...or half of the last 20 calls failing
            window=CountWindow(20),
            slow_call_baseline_factor=3.0,  # a call 3x slower than usual is "slow"
            record_result=lambda out: not out.get("answer"),  # empty answer = failure
        )
        ```
    """

    failure_threshold: int | None = 3
    """Consecutive failures that open the breaker (>= 1); ``None`` turns the rule off."""

    recovery_timeout: float | timedelta = 60.0
    """How long the breaker stays open before admitting trial calls (seconds, >= 0)."""

    success_threshold: int = 2
    """Successful trial calls in half-open that close the breaker (>= 1)."""

    half_open_max_calls: int = 1
    """Trial calls admitted at the same time while half-open (>= 1); others are rejected."""

    failure_rate_threshold: float | None = None
    """Open when this share of the calls in ``window`` failed (0 < rate <= 1);
    ``None`` turns the rule off. Judged once ``minimum_calls`` calls are in the window."""

    slow_call_duration: float | timedelta | None = None
    """A call taking at least this long is slow (seconds, > 0); ``None`` turns it off."""

    slow_call_baseline_factor: float | None = None
    """A call taking at least this multiple of the baseline latency (the running mean of
    recent successful, non-slow calls) is slow (> 1); ``None`` turns it off. The baseline
    is used once ``minimum_calls`` successful calls have been seen."""

    slow_call_rate_threshold: float = 0.5
    """Open when this share of the calls in ``window`` were slow (0 < rate <= 1).
    Applies only when a slow-call rule is set."""

    window: CountWindow | TimeWindow = field(default_factory=CountWindow)
    """The sliding window the failure and slow-call rates are computed over."""

    minimum_calls: int = 10
    """Calls the window must hold before its rates can open the breaker (>= 1)."""

    record_on: ExceptionMatcher = Exception
    """Exceptions that count as failures. Other ``Exception``s count as successes (the
    dependency answered; the caller's request was at fault); other ``BaseException``s,
    such as cancellation, are not counted at all."""

    ignore_on: ExceptionMatcher = ()
    """Exceptions that are not counted at all, even if ``record_on`` matches them."""

    record_result: Callable[[Any], bool] | None = None
    """A predicate on a returned value: ``True`` records the call as a failure
    (a low quality score, an empty answer)."""

    def __post_init__(self) -> None:
        if self.failure_threshold is not None:
            _check_int("failure_threshold", self.failure_threshold, minimum=1, none_ok=True)
        to_seconds(self.recovery_timeout, field="recovery_timeout")
        _check_int("success_threshold", self.success_threshold, minimum=1)
        _check_int("half_open_max_calls", self.half_open_max_calls, minimum=1)
        _check_int("minimum_calls", self.minimum_calls, minimum=1)
        if self.failure_rate_threshold is not None:
            _check_rate("failure_rate_threshold", self.failure_rate_threshold)
        _check_rate("slow_call_rate_threshold", self.slow_call_rate_threshold)
        if self.slow_call_duration is not None:
            to_seconds(self.slow_call_duration, field="slow_call_duration", allow_zero=False)
        if self.slow_call_baseline_factor is not None:
            factor = self.slow_call_baseline_factor
            if not _is_number(factor) or not factor > 1:
                raise ValueError(f"slow_call_baseline_factor must be a number > 1, got {factor!r}")
        if not isinstance(self.window, (CountWindow, TimeWindow)):
            raise TypeError(f"window must be a CountWindow or a TimeWindow, got {self.window!r}")
        compile_matcher(self.record_on, field="record_on")
        compile_matcher(self.ignore_on, field="ignore_on")
        if self.record_result is not None and not callable(self.record_result):
            raise TypeError(
                f"record_result must be a callable taking the result, got {self.record_result!r}"
            )

    @property
    def detects_slow_calls(self) -> bool:
        """Whether a slow-call rule is configured."""
        return self.slow_call_duration is not None or self.slow_call_baseline_factor is not None


def compile_matcher(matcher: ExceptionMatcher, *, field: str) -> ExceptionPredicate:
    """Turn an :data:`ExceptionMatcher` into one predicate, validating each part."""
    parts: Sequence[Any] = (
        [matcher] if isinstance(matcher, type) or not isinstance(matcher, Sequence) else matcher
    )
    types: list[type[BaseException]] = []
    predicates: list[ExceptionPredicate] = []
    for part in parts:
        if isinstance(part, type) and issubclass(part, BaseException):
            types.append(part)
        elif callable(part) and not isinstance(part, type):
            predicates.append(part)
        else:
            raise TypeError(
                f"{field} takes exception types or predicates (exc) -> bool, got {part!r}"
            )
    type_tuple = tuple(types)

    def is_one_of(exc: BaseException) -> bool:
        if isinstance(exc, type_tuple):
            return True
        # an error revived from text whose class could not be rebuilt
        return isinstance(exc, RecordedError) and matches_recorded(exc, type_tuple)

    if not predicates:
        return is_one_of
    return lambda exc: is_one_of(exc) or any(p(exc) for p in predicates)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(name: str, value: object, *, minimum: int, none_ok: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if none_ok else "")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_rate(name: str, value: object) -> None:
    if not _is_number(value) or not 0 < value <= 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be a rate in (0, 1], e.g. 0.5 for 50%, got {value!r}")
