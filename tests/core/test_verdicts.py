"""Verdict (score bounds, ok/fail/combine) and GatePolicy (validation, judge_basics)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from langgraph_resilience import GatePolicy, Verdict

# -- Verdict --------------------------------------------------------------------------------


def test_a_verdict_defaults_to_a_perfect_score_and_no_reasons() -> None:
    verdict = Verdict(True)
    assert verdict.passed is True
    assert verdict.score == 1.0
    assert verdict.reasons == ()


@pytest.mark.parametrize("score", [0.0, 0.5, 1.0, 0, 1])
def test_scores_between_zero_and_one_are_valid(score: float) -> None:
    assert Verdict(False, score).score == score


@pytest.mark.parametrize("score", [-0.01, 1.01, -1.0, 2.0, math.nan, math.inf, -math.inf])
def test_scores_outside_zero_to_one_are_refused(score: float) -> None:
    with pytest.raises(ValueError, match=r"^Verdict\.score must be between 0 and 1"):
        Verdict(True, score)


def test_verdict_is_frozen_and_comparable() -> None:
    verdict = Verdict.fail("vague", score=0.3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.passed = True  # type: ignore[misc]
    assert verdict == Verdict(False, 0.3, ("vague",))
    assert hash(verdict) == hash(Verdict(False, 0.3, ("vague",)))


def test_ok() -> None:
    assert Verdict.ok() == Verdict(True, 1.0, ())
    assert Verdict.ok(0.8) == Verdict(True, 0.8, ())
    with pytest.raises(ValueError, match=r"Verdict\.score"):
        Verdict.ok(1.5)


def test_fail() -> None:
    assert Verdict.fail() == Verdict(False, 0.0, ())
    assert Verdict.fail("cites no sources", "too short", score=0.4) == Verdict(
        False, 0.4, ("cites no sources", "too short")
    )
    with pytest.raises(ValueError, match=r"Verdict\.score"):
        Verdict.fail("x", score=-0.1)


def test_combine_passes_when_every_verdict_passes() -> None:
    combined = Verdict.combine([Verdict.ok(0.9), Verdict.ok(0.7), Verdict.ok()])

    assert combined == Verdict(True, 0.7, ())


def test_combine_fails_when_any_verdict_fails() -> None:
    combined = Verdict.combine(
        [
            Verdict.ok(0.9),
            Verdict.fail("cites no sources", score=0.6),
            Verdict.fail("too short", "off topic", score=0.8),
        ]
    )

    assert combined.passed is False
    assert combined.score == 0.6
    assert combined.reasons == ("cites no sources", "too short", "off topic")


def test_combine_takes_the_lowest_score_even_from_a_passing_verdict() -> None:
    combined = Verdict.combine([Verdict.fail("x", score=0.5), Verdict.ok(0.2)])
    assert combined.score == 0.2
    assert combined.passed is False


def test_combining_nothing_passes_with_a_perfect_score() -> None:
    assert Verdict.combine([]) == Verdict(True, 1.0, ())


def test_combine_accepts_any_iterable() -> None:
    verdicts = (Verdict.fail(f"reason {i}", score=i / 10) for i in range(1, 4))

    combined = Verdict.combine(verdicts)

    assert combined == Verdict(False, 0.1, ("reason 1", "reason 2", "reason 3"))


# -- GatePolicy -----------------------------------------------------------------------------


def test_gate_policy_defaults_follow_the_seed() -> None:
    policy = GatePolicy()
    assert policy.min_confidence == 0.75
    assert policy.max_rounds == 1
    assert policy.require_sources is False


def test_gate_policy_is_frozen_and_keyword_only() -> None:
    policy = GatePolicy(min_confidence=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.min_confidence = 0.9  # type: ignore[misc]
    with pytest.raises(TypeError):
        GatePolicy(0.5)  # type: ignore[misc]
    assert policy == GatePolicy(min_confidence=0.5)
    assert hash(policy) == hash(GatePolicy(min_confidence=0.5))


@pytest.mark.parametrize("value", [0.0, 0.5, 1.0, 0, 1])
def test_min_confidence_accepts_zero_to_one(value: float) -> None:
    assert GatePolicy(min_confidence=value).min_confidence == value


@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan, math.inf, True, False, "0.5", None])
def test_min_confidence_outside_zero_to_one_is_refused(value: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^GatePolicy\.min_confidence must be between 0 and 1"
    ) as info:
        GatePolicy(min_confidence=value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [0, 1, 5])
def test_max_rounds_accepts_zero_and_up(value: int) -> None:
    assert GatePolicy(max_rounds=value).max_rounds == value


@pytest.mark.parametrize("value", [-1, True, False, 1.0, "1", None])
def test_max_rounds_must_be_a_non_negative_integer(value: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^GatePolicy\.max_rounds must be an integer >= 0"
    ) as info:
        GatePolicy(max_rounds=value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [1, 0, "yes", None])
def test_require_sources_must_be_a_bool(value: Any) -> None:
    with pytest.raises(ValueError, match=r"^GatePolicy\.require_sources must be True or False"):
        GatePolicy(require_sources=value)


# -- judge_basics ---------------------------------------------------------------------------


def test_confidence_at_the_threshold_passes() -> None:
    assert GatePolicy(min_confidence=0.75).judge_basics(0.75, []) == Verdict(True, 0.75, ())


def test_confidence_below_the_threshold_fails_with_a_reason() -> None:
    verdict = GatePolicy(min_confidence=0.75).judge_basics(0.5, ["https://example.org"])

    assert verdict == Verdict(False, 0.5, ("confidence 0.50 is below 0.75",))


def test_the_score_is_the_confidence_clamped_to_zero_to_one() -> None:
    policy = GatePolicy(min_confidence=0.5)

    assert policy.judge_basics(1.7, []) == Verdict(True, 1.0, ())
    too_low = policy.judge_basics(-0.3, [])
    assert too_low.passed is False
    assert too_low.score == 0.0


def test_sources_are_ignored_unless_required() -> None:
    assert GatePolicy().judge_basics(0.9, []).passed is True


def test_required_sources_must_be_cited() -> None:
    policy = GatePolicy(require_sources=True)

    assert policy.judge_basics(0.9, []) == Verdict(False, 0.9, ("cites no sources",))
    assert policy.judge_basics(0.9, ["https://example.org"]) == Verdict(True, 0.9, ())
    assert policy.judge_basics(0.9, iter(["a generator works too"])).passed is True
    assert policy.judge_basics(0.9, iter([])).passed is False


def test_every_shortfall_is_a_reason() -> None:
    verdict = GatePolicy(min_confidence=0.8, require_sources=True).judge_basics(0.2, ())

    assert verdict.passed is False
    assert verdict.reasons == ("confidence 0.20 is below 0.80", "cites no sources")


def test_a_zero_threshold_passes_any_confidence() -> None:
    assert GatePolicy(min_confidence=0.0).judge_basics(0.0, []) == Verdict(True, 0.0, ())


def test_a_nan_confidence_does_not_pass() -> None:
    """A gate must fail closed: refuse NaN, or fail it with a score below the threshold.

    NaN compares below no threshold, and ``max(0.0, min(1.0, nan))`` is 1.0.
    """
    policy = GatePolicy(min_confidence=0.75)
    try:
        verdict = policy.judge_basics(math.nan, [])
    except ValueError:
        return
    assert verdict.passed is False
    assert verdict.score < policy.min_confidence
