"""Verification gates: nodes that stop a low-confidence answer from being built upon.

A gate is a node that returns ``Command(goto=...)``, never a router that raises: LangGraph
loses a raising router's routing on resume (langgraph#8834), while a node's ``Command``
is checkpointed like any other write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, cast

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from langgraph_resilience.breaker import is_async_callable
from langgraph_resilience.core.events import GateVerdict
from langgraph_resilience.core.ledger import Ledger, VerdictRecord
from langgraph_resilience.core.verdicts import GatePolicy, Verdict
from langgraph_resilience.events import publish
from langgraph_resilience.graph._context import (
    Step,
    field_of,
    ledger_in,
    node_exists,
    visit,
    with_ledger_update,
)

__all__ = ["Check", "VerifiedOutput", "quality_below", "verification_gate"]

logger = logging.getLogger("langgraph_resilience.gate")

Check: TypeAlias = Callable[["VerifiedOutput"], "Verdict | bool | float"]
"""A check on an output: a :class:`Verdict`, a bool, or a score (passes at the gate's
``min_confidence``)."""


class VerifiedOutput(BaseModel):
    """An agent's answer with what a gate needs to judge it (the seed's shape).

    In graph state, prefer the same keys as a plain dict
    (``output.model_dump(mode="json")``): LangGraph's strict msgpack mode revives only
    registered types, and the gate reads and writes dicts just as well.
    """

    model_config = ConfigDict(frozen=True)

    content: Any
    """The answer itself: text, or a structured value a ``schema`` can validate."""
    confidence: float = Field(ge=0.0, le=1.0)
    """Self-reported confidence, 0 to 1."""
    claims: list[str] = Field(default_factory=list)
    """The factual claims the answer makes."""
    sources: list[str] = Field(default_factory=list)
    """Sources cited for the claims."""
    verified: bool = False
    """Set once an independent verifier has reviewed the answer."""


def verification_gate(
    *,
    field: str,
    on_pass: str,
    on_fail: str,
    min_confidence: float | None = None,
    max_rounds: int | None = None,
    policy: GatePolicy | None = None,
    schema: type[BaseModel] | None = None,
    checks: Sequence[Check] = (),
    verifier: Callable[[VerifiedOutput], Any] | Runnable[Any, Any] | None = None,
) -> Runnable[Any, Command[Any]]:
    """Build a gate node: judge ``state[field]``, let a verifier revise it, then route.

    Example:
        ```python
        from langgraph.graph import END, START, StateGraph
        from langgraph_resilience import ResilienceState, ledger, verification_gate

        class State(ResilienceState):
            analysis: dict
            report: str

        def analyst(state: State) -> dict:
            return {"analysis": {"content": "Tides follow the Moon.", "confidence": 0.5}}

        def double_check(output):  # a second model would go here
            return {"content": output.content, "confidence": 0.9}

        builder = StateGraph(State)
        builder.add_node("analyst", analyst)
        builder.add_node(
            "gate",
            verification_gate(field="analysis", verifier=double_check,
                              on_pass="writer", on_fail="flag_for_review"),
        )
        builder.add_node("writer", lambda s: {"report": s["analysis"]["content"]})
        builder.add_node("flag_for_review", lambda s: {"report": "needs review"})
        builder.add_edge(START, "analyst")
        builder.add_edge("analyst", "gate")
        final = builder.compile().invoke({})
        assert final["report"] == "Tides follow the Moon."
        assert ledger(final).verdicts["gate"]["rounds"] == 1
        ```

    ``state[field]`` may be a :class:`VerifiedOutput`, a dict with the same keys, or
    any object with a ``confidence`` attribute. An output passes when its confidence
    reaches ``min_confidence``, it validates against ``schema`` and every check
    passes. One that does not is given to ``verifier`` (a function or a runnable, such
    as a second model) up to ``max_rounds`` times; its revision (a ``VerifiedOutput``,
    a dict, or the seed's ``{"verified_content", "revised_confidence"}``) replaces the
    output in state, marked ``verified``.

    The verdict (passed, score, reasons, rounds, route) goes to the ledger under the
    gate's node name, and the gate's own outcome is ``success`` or ``partial``. The
    score is the lowest of the confidence and the checks' scores (0 for a schema
    error): see :func:`quality_below` to let a breaker count low quality as failure.

    Args:
        field: the state key holding the output.
        on_pass: node to go to when the output passes.
        on_fail: node to go to when it still does not pass.
        min_confidence: lowest passing confidence (default 0.75).
        max_rounds: verifier rounds (default 1).
        policy: a :class:`GatePolicy` instead of ``min_confidence``/``max_rounds``.
        schema: a pydantic model the content must validate against.
        checks: more checks; each gets the :class:`VerifiedOutput`.
        verifier: reviews an output that does not pass.

    Raises:
        ValueError: a bad policy value, or both ``policy`` and its fields; at the first
            step, ``on_pass``/``on_fail`` naming no node of the graph.
    """
    if policy is not None and (min_confidence is not None or max_rounds is not None):
        raise ValueError("pass either policy= or min_confidence=/max_rounds=, not both")
    if policy is None:
        policy = GatePolicy(
            min_confidence=0.75 if min_confidence is None else min_confidence,
            max_rounds=1 if max_rounds is None else max_rounds,
        )
    for key, value in (("field", field), ("on_pass", on_pass), ("on_fail", on_fail)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"verification_gate({key}=...) takes a name, got {value!r}")
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(f"verification_gate(schema=...) takes a pydantic model, got {schema!r}")
    for check in checks:
        if not callable(check):
            raise TypeError(f"verification_gate(checks=...) takes callables, got {check!r}")
    if verifier is not None and not (callable(verifier) or isinstance(verifier, Runnable)):
        raise TypeError(
            f"verification_gate(verifier=...) takes a callable or runnable, got {verifier!r}"
        )
    judge = _Judge(policy, schema, tuple(checks))
    verify = cast(Callable[[VerifiedOutput], Any], verifier)  # used when not a runnable

    def start(state: Any, config: RunnableConfig) -> _Review:
        for target in (on_pass, on_fail):
            if node_exists(config, target) is False:
                raise ValueError(f"verification_gate(): {target!r} is not a node of this graph")
        raw = field_of(state, field)
        output = to_verified_output(raw) if raw is not None else None
        verdict = judge(output) if output is not None else Verdict.fail(f"no output in {field!r}")
        has_verifier = verifier is not None
        return _Review(raw, output, verdict, judge, policy.max_rounds if has_verifier else 0)

    def finish(state: Any, config: RunnableConfig, review: _Review) -> Command[Any]:
        verdict, rounds = review.verdict, review.rounds
        route = on_pass if verdict.passed else on_fail
        changes: dict[str, Any] = {}
        if rounds and review.output is not None:
            changes[field] = _like(review.raw, review.output)
        step = Step.of(config)
        logger.info(
            "gate %r: %s (score %.2f, %d verifier rounds) -> %r",
            step.node if step else field,
            "passed" if verdict.passed else "failed: " + "; ".join(verdict.reasons),
            verdict.score,
            rounds,
            route,
        )
        publish(
            GateVerdict(
                node=step.node if step else field,
                passed=verdict.passed,
                score=round(verdict.score, 4),
                reasons=tuple(verdict.reasons),
                rounds=rounds,
                route=route,
            )
        )
        if step is not None and ledger_in(state) is not None:
            record: VerdictRecord = {
                "passed": verdict.passed,
                "score": round(verdict.score, 4),
                "reasons": list(verdict.reasons),
                "rounds": rounds,
                "routed_to": route,
                "step": step.id,
            }
            update: Ledger = visit(step, status="success" if verdict.passed else "partial")
            update["verdicts"] = {step.node: record}
            changes = with_ledger_update(changes, update)
        return Command(goto=route, update=changes or None)

    def gate(state: Any, config: RunnableConfig) -> Command[Any]:
        review = start(state, config)
        while (output := review.due()) is not None:
            if isinstance(verifier, Runnable):
                review.take(verifier.invoke(output, config))
            elif is_async_callable(verifier):
                raise TypeError(
                    "verification_gate(verifier=...) is async: run the graph with "
                    "ainvoke/astream, or give a sync verifier"
                )
            else:
                review.take(verify(output))
        return finish(state, config, review)

    async def agate(state: Any, config: RunnableConfig) -> Command[Any]:
        review = start(state, config)
        while (output := review.due()) is not None:
            if isinstance(verifier, Runnable):
                review.take(await verifier.ainvoke(output, config))
            elif is_async_callable(verifier):
                review.take(await verify(output))
            else:
                review.take(verify(output))
        return finish(state, config, review)

    # LangGraph's own node wrapper, untraced: the node's run is the gate's run, so the
    # verdict lands on it (a RunnableLambda would open a child run of its own).
    node = RunnableCallable(gate, agate, name="verification_gate", trace=False)
    node.judge = judge  # type: ignore[attr-defined]
    return node


class _Review:
    """One gate decision in progress: the output, its verdict, the verifier rounds."""

    def __init__(
        self,
        raw: Any,
        output: VerifiedOutput | None,
        verdict: Verdict,
        judge: _Judge,
        max_rounds: int,
    ) -> None:
        self.raw, self.output, self.verdict = raw, output, verdict
        self.judge, self.max_rounds, self.rounds = judge, max_rounds, 0

    def due(self) -> VerifiedOutput | None:
        """The output to give the verifier next, or ``None`` when the review is over."""
        if self.verdict.passed or self.output is None or self.rounds >= self.max_rounds:
            return None
        return self.output

    def take(self, reply: Any) -> None:
        """The verifier's reply: revise the output and judge it again."""
        assert self.output is not None
        self.rounds += 1
        self.output = _revision(self.output, reply)
        self.verdict = self.judge(self.output)


class _Judge:
    """Judges one output: the policy's basics, the schema, then each check."""

    def __init__(
        self, policy: GatePolicy, schema: type[BaseModel] | None, checks: tuple[Check, ...]
    ) -> None:
        self.policy = policy
        self.schema = schema
        self.checks = checks

    def __call__(self, output: VerifiedOutput | Any) -> Verdict:
        if not isinstance(output, VerifiedOutput):
            output = to_verified_output(output)
        verdicts = [self.policy.judge_basics(output.confidence, output.sources)]
        if self.schema is not None:
            try:
                if not isinstance(output.content, self.schema):
                    if isinstance(output.content, str | bytes):
                        self.schema.model_validate_json(output.content)
                    else:
                        self.schema.model_validate(output.content)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'content'}: {e['msg']}"
                    for e in exc.errors()
                )
                verdicts.append(Verdict.fail(f"does not match {self.schema.__name__}: {problems}"))
        threshold = self.policy.min_confidence
        verdicts.extend(_as_verdict(check(output), threshold, check) for check in self.checks)
        return Verdict.combine(verdicts)


def _as_verdict(result: Verdict | bool | float, threshold: float, check: Check) -> Verdict:
    if isinstance(result, Verdict):
        return result
    name = getattr(check, "__name__", "check")
    if isinstance(result, bool):
        return Verdict.ok() if result else Verdict.fail(f"{name} failed")
    if isinstance(result, int | float):
        score = max(0.0, min(1.0, float(result)))
        if score >= threshold:
            return Verdict.ok(score)
        return Verdict.fail(f"{name} scored {score:.2f}", score=score)
    raise TypeError(f"check {name} returned {result!r}; return a Verdict, a bool or a score")


def to_verified_output(value: Any) -> VerifiedOutput:
    """Read a ``VerifiedOutput``, a dict with its keys, or an object with ``confidence``."""
    if isinstance(value, VerifiedOutput):
        return value
    if isinstance(value, Mapping):
        if "confidence" not in value:
            raise ValueError(f"the output has no 'confidence' key: {sorted(value)}")
        data = {key: value[key] for key in VerifiedOutput.model_fields if key in value}
        data.setdefault("content", None)
        return VerifiedOutput.model_validate(data)
    confidence = getattr(value, "confidence", None)
    if confidence is None:
        raise ValueError(
            f"cannot judge {type(value).__name__}: give it a 'confidence' "
            "(a VerifiedOutput, a dict with 'confidence', or an object with that attribute)"
        )
    return VerifiedOutput(
        content=getattr(value, "content", value),
        confidence=confidence,
        claims=list(getattr(value, "claims", None) or []),
        sources=list(getattr(value, "sources", None) or []),
        verified=bool(getattr(value, "verified", False)),
    )


def _revision(previous: VerifiedOutput, revised: Any) -> VerifiedOutput:
    if isinstance(revised, Mapping) and (
        "verified_content" in revised or "revised_confidence" in revised
    ):  # the seed's verifier reply
        revised = {
            "content": revised.get("verified_content", previous.content),
            "confidence": revised.get("revised_confidence", previous.confidence),
        }
    if isinstance(revised, Mapping):
        merged = previous.model_dump() | dict(revised)
        return VerifiedOutput.model_validate(merged | {"verified": True})
    return to_verified_output(revised).model_copy(update={"verified": True})


def _like(raw: Any, output: VerifiedOutput) -> Any:
    """The revised output in the shape the state held it (a dict keeps its other keys)."""
    if isinstance(raw, Mapping):
        return {**raw, **output.model_dump(mode="json")}
    return output


def quality_below(threshold: float = 0.7, *, field: str | None = None) -> Callable[[Any], bool]:
    """A ``BreakerPolicy(record_result=...)`` predicate: low-quality output is a failure.

    The seed's rule: an agent whose answers score below 0.7 is treated as failing, so
    its breaker opens like it would for errors.

    Example:
        ```python
        from langgraph_resilience import BreakerPolicy, quality_below

        policy = BreakerPolicy(record_result=quality_below(0.7, field="analysis"))
        ```

    Args:
        threshold: scores below it are failures.
        field: the key of the node's returned update holding the output; ``None``
            when the node returns the output itself.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"quality_below threshold must be between 0 and 1, got {threshold!r}")

    def is_low_quality(result: Any) -> bool:
        if isinstance(result, Command):  # a hand-off: the output is in its update
            result = result.update
        value = field_of(result, field) if field is not None else result
        if value is None:
            return False
        try:
            confidence = to_verified_output(value).confidence
        except (ValueError, ValidationError):
            return True  # an output that cannot even be read is not a good one
        return confidence < threshold

    return is_low_quality
