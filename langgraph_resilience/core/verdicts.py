"""Verdicts on an agent's output, and the policy a verification gate judges by."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["GatePolicy", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one check (or a whole gate) concluded about an output.

    Example:
        >>> Verdict.fail("cites no sources", score=0.4)
        Verdict(passed=False, score=0.4, reasons=('cites no sources',))
    """

    passed: bool
    score: float = 1.0
    """Quality between 0 and 1; a breaker's result predicate can compare it."""
    reasons: tuple[str, ...] = ()
    """Why it did not pass (empty when it did)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"Verdict.score must be between 0 and 1, got {self.score!r}")

    @classmethod
    def ok(cls, score: float = 1.0) -> Verdict:
        return cls(True, score)

    @classmethod
    def fail(cls, *reasons: str, score: float = 0.0) -> Verdict:
        return cls(False, score, reasons)

    @classmethod
    def combine(cls, verdicts: Iterable[Verdict]) -> Verdict:
        """All must pass; the score is the lowest; the reasons are all of them."""
        items = list(verdicts)
        return cls(
            passed=all(v.passed for v in items),
            score=min((v.score for v in items), default=1.0),
            reasons=tuple(reason for v in items for reason in v.reasons),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GatePolicy:
    """What a verification gate asks of an output before it may pass downstream.

    The defaults follow the seed: self-reported confidence of at least 0.75, and one
    round with the verifier for an output that falls short.
    """

    min_confidence: float = 0.75
    """Lowest confidence (0..1) that passes without the verifier."""
    max_rounds: int = 1
    """How many times the verifier may revise an output that does not pass (>= 0)."""
    require_sources: bool = False
    """Fail an output that cites no sources."""

    def __post_init__(self) -> None:
        c = self.min_confidence
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0.0 <= c <= 1.0:
            raise ValueError(f"GatePolicy.min_confidence must be between 0 and 1, got {c!r}")
        r = self.max_rounds
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"GatePolicy.max_rounds must be an integer >= 0, got {r!r}")
        if not isinstance(self.require_sources, bool):
            raise ValueError(
                f"GatePolicy.require_sources must be True or False, got {self.require_sources!r}"
            )

    def judge_basics(self, confidence: float, sources: Iterable[str]) -> Verdict:
        """The policy's own verdict: confidence and, if required, sources."""
        reasons = []
        if not confidence >= self.min_confidence:  # written so that NaN fails too
            reasons.append(f"confidence {confidence:.2f} is below {self.min_confidence:.2f}")
        if self.require_sources and not list(sources):
            reasons.append("cites no sources")
        score = max(0.0, min(1.0, confidence)) if confidence == confidence else 0.0
        return Verdict(not reasons, score, tuple(reasons))
