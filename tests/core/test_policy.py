"""BreakerPolicy, CountWindow and TimeWindow: defaults and every validation rule."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import pytest

from langgraph_resilience import BreakerPolicy, CountWindow, TimeWindow
from langgraph_resilience.core.policy import compile_matcher

NAN = math.nan


def test_defaults_follow_the_seed_pattern() -> None:
    p = BreakerPolicy()
    assert p.failure_threshold == 3
    assert p.recovery_timeout == 60
    assert p.success_threshold == 2
    assert p.half_open_max_calls == 1
    assert p.failure_rate_threshold is None
    assert p.slow_call_duration is None
    assert p.slow_call_baseline_factor is None
    assert p.slow_call_rate_threshold == 0.5
    assert p.window == CountWindow(100)
    assert p.minimum_calls == 10
    assert p.record_on is Exception
    assert p.ignore_on == ()
    assert p.record_result is None
    assert not p.detects_slow_calls


def test_policy_is_frozen_keyword_only_and_comparable() -> None:
    p = BreakerPolicy(failure_threshold=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.failure_threshold = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        BreakerPolicy(5)  # type: ignore[call-arg]
    assert p == BreakerPolicy(failure_threshold=5)
    assert p != BreakerPolicy(failure_threshold=4)
    assert hash(p) == hash(BreakerPolicy(failure_threshold=5))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("failure_threshold", 0),
        ("failure_threshold", -1),
        ("failure_threshold", 2.5),
        ("failure_threshold", True),
        ("failure_threshold", "3"),
        ("success_threshold", 0),
        ("success_threshold", -3),
        ("success_threshold", None),
        ("success_threshold", 1.0),
        ("half_open_max_calls", 0),
        ("half_open_max_calls", False),
        ("minimum_calls", 0),
        ("minimum_calls", -10),
    ],
)
def test_integer_fields_must_be_at_least_one(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be an integer >= 1") as info:
        BreakerPolicy(**{field: value})
    assert repr(value) in str(info.value)


def test_failure_threshold_none_turns_the_rule_off() -> None:
    assert BreakerPolicy(failure_threshold=None).failure_threshold is None
    with pytest.raises(ValueError, match=r"or None"):
        BreakerPolicy(failure_threshold=0)


@pytest.mark.parametrize("field", ["recovery_timeout", "slow_call_duration"])
@pytest.mark.parametrize("value", [-1, -0.001, timedelta(seconds=-5)])
def test_negative_durations_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be >"):
        BreakerPolicy(**{field: value})


@pytest.mark.parametrize("field", ["recovery_timeout", "slow_call_duration"])
def test_nan_durations_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be a number of seconds, got NaN"):
        BreakerPolicy(**{field: math.nan})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["recovery_timeout", "slow_call_duration"])
@pytest.mark.parametrize("value", ["60", True, [1]])
def test_non_numeric_durations_are_refused(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=rf"^{field} must be seconds \(a number\) or a timedelta"):
        BreakerPolicy(**{field: value})


def test_zero_recovery_timeout_is_allowed_but_zero_slow_duration_is_not() -> None:
    assert BreakerPolicy(recovery_timeout=0).recovery_timeout == 0
    with pytest.raises(ValueError, match=r"^slow_call_duration must be > 0 seconds"):
        BreakerPolicy(slow_call_duration=0)


def test_timedeltas_are_accepted() -> None:
    p = BreakerPolicy(
        recovery_timeout=timedelta(minutes=2),
        slow_call_duration=timedelta(milliseconds=1500),
        window=TimeWindow(timedelta(minutes=1), buckets=6),
    )
    assert p.recovery_timeout == timedelta(minutes=2)
    assert p.detects_slow_calls
    assert p.window == TimeWindow(timedelta(seconds=60), buckets=6)


@pytest.mark.parametrize("field", ["failure_rate_threshold", "slow_call_rate_threshold"])
@pytest.mark.parametrize("value", [0, 0.0, -0.5, 1.0001, 2, NAN, math.inf, "0.5", True])
def test_rates_must_be_in_zero_one(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{field} must be a rate in \(0, 1\]"):
        BreakerPolicy(**{field: value})


@pytest.mark.parametrize("value", [1, 1.0, 0.9999, 1e-9, 0.5, 1.00000001])
def test_rates_at_the_edges(value: float) -> None:
    if 0 < value <= 1:
        assert BreakerPolicy(failure_rate_threshold=value).failure_rate_threshold == value
    else:
        with pytest.raises(ValueError, match="failure_rate_threshold"):
            BreakerPolicy(failure_rate_threshold=value)


@pytest.mark.parametrize("value", [1, 1.0, 0.5, 0, -2, NAN, "3", True])
def test_baseline_factor_must_exceed_one(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^slow_call_baseline_factor must be a number > 1"):
        BreakerPolicy(slow_call_baseline_factor=value)


def test_baseline_factor_just_above_one_is_fine() -> None:
    p = BreakerPolicy(slow_call_baseline_factor=1.01)
    assert p.detects_slow_calls


@pytest.mark.parametrize("field", ["record_on", "ignore_on"])
@pytest.mark.parametrize(
    "value",
    [
        "ValueError",  # a string is a Sequence, but of characters
        int,  # a type that is not an exception
        None,
        42,
        [ValueError, "KeyError"],
        (ValueError, object),
    ],
)
def test_bad_exception_matchers_are_refused(field: str, value: Any) -> None:
    with pytest.raises(TypeError, match=rf"^{field} takes exception types or predicates"):
        BreakerPolicy(**{field: value})


@pytest.mark.parametrize(
    "value",
    [
        ValueError,
        BaseException,
        (ValueError, KeyError),
        [OSError, lambda exc: "retry" in str(exc)],
        lambda exc: True,
        (),
    ],
)
def test_good_exception_matchers_are_accepted(value: Any) -> None:
    BreakerPolicy(record_on=value, ignore_on=value)


def test_compiled_matchers_match_types_and_predicates() -> None:
    match = compile_matcher([KeyError, lambda exc: "flaky" in str(exc)], field="record_on")
    assert match(KeyError("x"))
    assert match(RuntimeError("flaky network"))
    assert not match(RuntimeError("bad request"))
    assert not compile_matcher((), field="ignore_on")(ValueError())
    assert compile_matcher(LookupError, field="record_on")(IndexError())


def test_record_result_must_be_callable() -> None:
    with pytest.raises(TypeError, match=r"^record_result must be a callable"):
        BreakerPolicy(record_result=0.5)  # type: ignore[arg-type]
    BreakerPolicy(record_result=lambda out: not out)


@pytest.mark.parametrize("window", [100, "count", None, (10,)])
def test_window_must_be_a_window(window: Any) -> None:
    with pytest.raises(TypeError, match=r"^window must be a CountWindow or a TimeWindow"):
        BreakerPolicy(window=window)


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_count_window_size(size: Any) -> None:
    with pytest.raises(ValueError, match=r"^CountWindow.size must be an integer >= 1"):
        CountWindow(size)


def test_count_window_defaults() -> None:
    assert CountWindow().size == 100
    assert CountWindow(1).size == 1


@pytest.mark.parametrize("duration", [0, -1, timedelta(0), timedelta(seconds=-1)])
def test_time_window_duration_must_be_positive(duration: Any) -> None:
    with pytest.raises(ValueError, match=r"^TimeWindow.duration must be > 0 seconds"):
        TimeWindow(duration)


def test_time_window_duration_nan_and_type() -> None:
    with pytest.raises(ValueError, match=r"^TimeWindow.duration must be a number of seconds"):
        TimeWindow(NAN)
    with pytest.raises(TypeError, match=r"^TimeWindow.duration must be seconds"):
        TimeWindow("60s")  # type: ignore[arg-type]


@pytest.mark.parametrize("buckets", [0, -4, 2.0, False])
def test_time_window_buckets(buckets: Any) -> None:
    with pytest.raises(ValueError, match=r"^TimeWindow.buckets must be an integer >= 1"):
        TimeWindow(10, buckets=buckets)


def test_time_window_defaults() -> None:
    w = TimeWindow()
    assert (w.duration, w.buckets) == (60.0, 10)
    assert TimeWindow(timedelta(seconds=30), buckets=1).buckets == 1


def test_detects_slow_calls() -> None:
    assert BreakerPolicy(slow_call_duration=2).detects_slow_calls
    assert BreakerPolicy(slow_call_baseline_factor=3).detects_slow_calls
    assert not BreakerPolicy(failure_rate_threshold=0.5).detects_slow_calls
