"""verification_gate() and quality_below() on real StateGraphs, sync ``invoke`` and async
``ainvoke``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from pydantic import BaseModel

from langgraph_resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    FakeClock,
    GatePolicy,
    InMemoryBreakerStore,
    ResilienceState,
    Verdict,
    VerifiedOutput,
    guard,
    ledger,
    quality_below,
    verification_gate,
)
from tests.graph._helpers import MODES, run, sqlite_saver, thread

GATE = "fact_check"
"""The gate's node name: the ledger keys its verdict by it (not by the word "gate")."""

MISSING = object()
"""An analyst output that means "write nothing to the field"."""

TIDES = "Tides follow the Moon."


class State(ResilienceState, total=False):
    analysis: Any
    report: str


class PlainState(TypedDict, total=False):
    analysis: Any
    report: str


class Finding(BaseModel):
    claim: str
    year: int


@dataclass
class ModelAnswer:
    """Some model client's own answer type: not a VerifiedOutput, not a dict."""

    text: str
    confidence: float
    sources: list[str] = field(default_factory=list)


def gate_graph(
    output: Any,
    gate: Any = None,
    *,
    state: type = State,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    writer: Callable[[Any], dict[str, Any]] | None = None,
    interrupt_before: list[str] | None = None,
    **gate_kwargs: Any,
) -> Any:
    """analyst -> fact_check -> (writer | review); the analyst writes ``output``."""

    def analyst(s: Any) -> dict[str, Any]:
        return {} if output is MISSING else {"analysis": output}

    if gate is None:
        gate_kwargs.setdefault("on_pass", "writer")
        gate_kwargs.setdefault("on_fail", "review")
        gate = verification_gate(field="analysis", **gate_kwargs)
    builder = StateGraph(state)
    builder.add_node("analyst", analyst)
    builder.add_node(GATE, gate)
    builder.add_node("writer", writer or (lambda s: {"report": "written"}))
    builder.add_node("review", lambda s: {"report": "needs review"})
    builder.add_edge(START, "analyst")
    builder.add_edge("analyst", GATE)
    builder.add_edge("writer", END)
    builder.add_edge("review", END)
    return builder.compile(checkpointer=checkpointer, interrupt_before=interrupt_before)


def verdict_of(final: Any) -> dict[str, Any]:
    return dict(ledger(final).verdicts[GATE])


# ---- routing and the ledger -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("confidence", [0.75, 0.9])
async def test_a_passing_output_routes_to_on_pass(mode: str, confidence: float) -> None:
    output = {"content": TIDES, "confidence": confidence}
    final = await run(gate_graph(output), mode, {})
    assert final["report"] == "written"
    view = ledger(final)
    assert view.verdicts[GATE] == {
        "passed": True,
        "score": confidence,
        "reasons": [],
        "rounds": 0,
        "routed_to": "writer",
        "step": view.outcomes[GATE]["step"],
    }
    assert view.status(GATE) == "success"
    assert view.visits_of(GATE) == 1
    assert final["analysis"] == output  # no verifier round: the output is left alone


@pytest.mark.parametrize("mode", MODES)
async def test_low_confidence_without_verifier_routes_to_on_fail(mode: str) -> None:
    output = {"content": TIDES, "confidence": 0.4}
    final = await run(gate_graph(output), mode, {})
    assert final["report"] == "needs review"
    verdict = verdict_of(final)
    assert verdict["passed"] is False
    assert verdict["score"] == 0.4
    assert verdict["rounds"] == 0
    assert verdict["routed_to"] == "review"
    assert verdict["reasons"] == ["confidence 0.40 is below 0.75"]
    assert ledger(final).status(GATE) == "partial"
    assert final["analysis"] == output


async def test_just_below_the_threshold_fails() -> None:
    final = await run(gate_graph({"content": TIDES, "confidence": 0.7499}), "sync", {})
    assert final["report"] == "needs review"


@pytest.mark.parametrize("mode", MODES)
async def test_on_pass_may_be_end(mode: str) -> None:
    graph = gate_graph({"content": TIDES, "confidence": 0.9}, on_pass=END)
    final = await run(graph, mode, {})
    assert "report" not in final
    assert verdict_of(final)["routed_to"] == END


# ---- the verifier -----------------------------------------------------------------------

REVISION_SHAPES = {
    "dict": {"content": "Tides follow the Moon (checked).", "confidence": 0.9},
    "verified_output": VerifiedOutput(content="Tides follow the Moon (checked).", confidence=0.9),
    "seed": {"verified_content": "Tides follow the Moon (checked).", "revised_confidence": 0.9},
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("held", ["dict", "verified_output"])
@pytest.mark.parametrize("reply", sorted(REVISION_SHAPES))
async def test_a_verifier_revision_passes_and_replaces_the_output_in_its_shape(
    mode: str, held: str, reply: str
) -> None:
    original = {"content": TIDES, "confidence": 0.5, "sources": ["almanac"]}
    output: Any = original if held == "dict" else VerifiedOutput(**original)
    seen: list[VerifiedOutput] = []

    def double_check(candidate: VerifiedOutput) -> Any:
        seen.append(candidate)
        return REVISION_SHAPES[reply]

    final = await run(gate_graph(output, verifier=double_check), mode, {})
    assert seen == [VerifiedOutput(**original)]  # the verifier gets a VerifiedOutput
    assert final["report"] == "written"
    verdict = verdict_of(final)
    assert verdict["passed"] is True
    assert verdict["rounds"] == 1
    assert verdict["score"] == 0.9
    assert verdict["routed_to"] == "writer"
    assert ledger(final).status(GATE) == "success"

    revised = final["analysis"]
    if held == "dict":
        assert isinstance(revised, dict)
        assert revised["content"] == "Tides follow the Moon (checked)."
        assert revised["confidence"] == 0.9
        assert revised["verified"] is True
        if reply != "verified_output":  # a partial reply keeps what it does not revise
            assert revised["sources"] == ["almanac"]
    else:
        assert isinstance(revised, VerifiedOutput)
        assert revised.content == "Tides follow the Moon (checked)."
        assert revised.confidence == 0.9
        assert revised.verified is True


@pytest.mark.parametrize("mode", MODES)
async def test_a_partial_revision_keeps_the_rest_of_the_output(mode: str) -> None:
    output = {"content": TIDES, "confidence": 0.5, "claims": ["c1"], "sources": ["s1"]}
    graph = gate_graph(output, verifier=lambda o: {"revised_confidence": 0.8})
    final = await run(graph, mode, {})
    assert final["report"] == "written"
    assert final["analysis"] == {
        "content": TIDES,
        "confidence": 0.8,
        "claims": ["c1"],
        "sources": ["s1"],
        "verified": True,
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("max_rounds", "calls", "passed"), [(3, 3, False), (5, 5, True)])
async def test_the_verifier_gets_at_most_max_rounds(
    mode: str, max_rounds: int, calls: int, passed: bool
) -> None:
    seen: list[float] = []

    def nudge(candidate: VerifiedOutput) -> dict[str, Any]:
        seen.append(candidate.confidence)
        return {"confidence": round(candidate.confidence + 0.1, 2)}

    graph = gate_graph({"content": TIDES, "confidence": 0.3}, verifier=nudge, max_rounds=max_rounds)
    final = await run(graph, mode, {})
    # each round sees the previous round's revision: 0.3, 0.4, 0.5, ...
    assert seen == [round(0.3 + 0.1 * i, 2) for i in range(calls)]
    assert verdict_of(final)["rounds"] == calls
    assert verdict_of(final)["passed"] is passed
    assert final["report"] == ("written" if passed else "needs review")
    # the last revision replaces the output even when it still fails
    assert final["analysis"]["confidence"] == round(0.3 + 0.1 * calls, 2)
    assert final["analysis"]["verified"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_a_verifier_that_never_gets_there_is_called_max_rounds_times(mode: str) -> None:
    calls: list[int] = []

    def stubborn(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 0.5}

    graph = gate_graph({"content": TIDES, "confidence": 0.4}, verifier=stubborn, max_rounds=2)
    final = await run(graph, mode, {})
    assert len(calls) == 2
    assert final["report"] == "needs review"
    assert verdict_of(final)["rounds"] == 2
    assert verdict_of(final)["reasons"] == ["confidence 0.50 is below 0.75"]
    assert ledger(final).status(GATE) == "partial"


@pytest.mark.parametrize("mode", MODES)
async def test_max_rounds_zero_never_calls_the_verifier(mode: str) -> None:
    calls: list[int] = []

    def verifier(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 1.0}

    output = {"content": TIDES, "confidence": 0.4}
    final = await run(gate_graph(output, verifier=verifier, max_rounds=0), mode, {})
    assert calls == []
    assert final["report"] == "needs review"
    assert verdict_of(final)["rounds"] == 0
    assert final["analysis"] == output


@pytest.mark.parametrize("mode", MODES)
async def test_a_passing_output_never_reaches_the_verifier(mode: str) -> None:
    calls: list[int] = []

    def verifier(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 1.0}

    final = await run(
        gate_graph({"content": TIDES, "confidence": 0.9}, verifier=verifier), mode, {}
    )
    assert calls == []
    assert verdict_of(final)["rounds"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_runnable_verifier_is_invoked_or_ainvoked_with_the_run_config(mode: str) -> None:
    used: list[tuple[str, str | None]] = []

    def check_sync(candidate: VerifiedOutput, config: RunnableConfig) -> dict[str, Any]:
        used.append(("invoke", config["metadata"].get("langgraph_node")))
        return {"confidence": 0.9}

    async def check_async(candidate: VerifiedOutput, config: RunnableConfig) -> dict[str, Any]:
        used.append(("ainvoke", config["metadata"].get("langgraph_node")))
        return {"confidence": 0.9}

    model = RunnableLambda(check_sync, afunc=check_async, name="second_model")
    final = await run(gate_graph({"content": TIDES, "confidence": 0.5}, verifier=model), mode, {})
    assert used == [("invoke" if mode == "sync" else "ainvoke", GATE)]
    assert final["report"] == "written"
    assert verdict_of(final)["rounds"] == 1


async def test_an_async_verifier_function_works_under_ainvoke() -> None:
    calls: list[float] = []

    async def second_model(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(candidate.confidence)
        return {"verified_content": "checked", "revised_confidence": 0.95}

    graph = gate_graph({"content": TIDES, "confidence": 0.5}, verifier=second_model)
    final = await graph.ainvoke({})
    assert calls == [0.5]
    assert final["report"] == "written"
    assert final["analysis"]["content"] == "checked"
    assert verdict_of(final)["score"] == 0.95


# ---- schema -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "content",
    [
        {"claim": TIDES, "year": 1687},
        Finding(claim=TIDES, year=1687),
        '{"claim": "Tides follow the Moon.", "year": 1687}',  # model_validate_json
        b'{"claim": "Tides follow the Moon.", "year": 1687}',
    ],
    ids=["dict", "instance", "json-str", "json-bytes"],
)
async def test_content_that_validates_against_the_schema_passes(mode: str, content: Any) -> None:
    graph = gate_graph({"content": content, "confidence": 0.9}, schema=Finding)
    final = await run(graph, mode, {})
    assert final["report"] == "written"
    assert verdict_of(final)["passed"] is True


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "content",
    [{"claim": TIDES}, '{"claim": "Tides follow the Moon."}', {"claim": TIDES, "year": "soon"}],
    ids=["dict-missing", "json-missing", "dict-wrong-type"],
)
async def test_content_that_does_not_validate_fails_naming_schema_and_field(
    mode: str, content: Any
) -> None:
    graph = gate_graph({"content": content, "confidence": 0.9}, schema=Finding)
    final = await run(graph, mode, {})
    assert final["report"] == "needs review"
    verdict = verdict_of(final)
    assert verdict["passed"] is False
    assert verdict["score"] == 0.0  # a schema error scores 0
    [reason] = verdict["reasons"]
    assert "Finding" in reason
    assert "year" in reason


async def test_invalid_json_content_fails_the_schema() -> None:
    graph = gate_graph({"content": "not json at all", "confidence": 0.9}, schema=Finding)
    final = await run(graph, "sync", {})
    assert final["report"] == "needs review"
    assert "Finding" in verdict_of(final)["reasons"][0]


# ---- checks -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_check_returning_a_failed_verdict_fails_the_output(mode: str) -> None:
    def sourced(output: VerifiedOutput) -> Verdict:
        return Verdict.ok() if output.sources else Verdict.fail("no sources")

    graph = gate_graph({"content": TIDES, "confidence": 0.9}, checks=[sourced])
    final = await run(graph, mode, {})
    assert final["report"] == "needs review"
    assert verdict_of(final)["reasons"] == ["no sources"]
    assert verdict_of(final)["score"] == 0.0

    graph = gate_graph({"content": TIDES, "confidence": 0.9, "sources": ["x"]}, checks=[sourced])
    assert (await run(graph, mode, {}))["report"] == "written"


@pytest.mark.parametrize("mode", MODES)
async def test_a_check_returning_false_fails_with_its_name(mode: str) -> None:
    def mentions_the_moon(output: VerifiedOutput) -> bool:
        return "Moon" in str(output.content)

    graph = gate_graph({"content": "Tides happen.", "confidence": 0.9}, checks=[mentions_the_moon])
    final = await run(graph, mode, {})
    assert final["report"] == "needs review"
    assert verdict_of(final)["reasons"] == ["mentions_the_moon failed"]

    graph = gate_graph({"content": TIDES, "confidence": 0.9}, checks=[mentions_the_moon])
    assert (await run(graph, mode, {}))["report"] == "written"


@pytest.mark.parametrize("mode", MODES)
async def test_a_check_score_below_min_confidence_fails_with_that_score(mode: str) -> None:
    def relevance(output: VerifiedOutput) -> float:
        return 0.4

    graph = gate_graph({"content": TIDES, "confidence": 0.9}, checks=[relevance])
    final = await run(graph, mode, {})
    assert final["report"] == "needs review"
    verdict = verdict_of(final)
    assert verdict["score"] == 0.4
    assert verdict["reasons"] == ["relevance scored 0.40"]


@pytest.mark.parametrize(
    ("confidence", "check_score", "score"), [(0.9, 0.8, 0.8), (0.8, 0.95, 0.8), (0.9, 1, 0.9)]
)
async def test_the_score_is_the_lowest_of_confidence_and_checks(
    confidence: float, check_score: float, score: float
) -> None:
    def relevance(output: VerifiedOutput) -> float:
        return check_score

    graph = gate_graph({"content": TIDES, "confidence": confidence}, checks=[relevance])
    final = await run(graph, "sync", {})
    assert final["report"] == "written"
    assert verdict_of(final)["score"] == score


async def test_every_failing_check_gives_its_reason() -> None:
    def short(output: VerifiedOutput) -> bool:
        return False

    def vague(output: VerifiedOutput) -> float:
        return 0.2

    graph = gate_graph({"content": TIDES, "confidence": 0.5}, checks=[short, vague])
    final = await run(graph, "sync", {})
    assert verdict_of(final)["reasons"] == [
        "confidence 0.50 is below 0.75",
        "short failed",
        "vague scored 0.20",
    ]
    assert verdict_of(final)["score"] == 0.0  # a failed bool check scores 0


@pytest.mark.parametrize("mode", MODES)
async def test_checks_judge_the_verifier_revision_too(mode: str) -> None:
    seen: list[VerifiedOutput] = []

    def sourced(output: VerifiedOutput) -> Verdict:
        seen.append(output)
        return Verdict.ok() if output.sources else Verdict.fail("no sources")

    def add_sources(candidate: VerifiedOutput) -> dict[str, Any]:
        return {"sources": ["tide tables"]}

    graph = gate_graph(
        {"content": TIDES, "confidence": 0.9}, checks=[sourced], verifier=add_sources
    )
    final = await run(graph, mode, {})
    assert final["report"] == "written"
    assert verdict_of(final)["rounds"] == 1
    assert [o.sources for o in seen] == [[], ["tide tables"]]
    assert all(isinstance(o, VerifiedOutput) for o in seen)


async def test_a_check_returning_something_else_is_a_type_error() -> None:
    def chatty(output: VerifiedOutput) -> Any:
        return "looks fine to me"

    graph = gate_graph({"content": TIDES, "confidence": 0.9}, checks=[chatty])
    with pytest.raises(TypeError, match="check chatty returned 'looks fine to me'"):
        graph.invoke({})


# ---- what the field may hold ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "output",
    [
        VerifiedOutput(content=TIDES, confidence=0.9, sources=["almanac"]),
        {"content": TIDES, "confidence": 0.9, "sources": ["almanac"]},
        ModelAnswer(text=TIDES, confidence=0.9, sources=["almanac"]),
    ],
    ids=["verified_output", "dict", "object"],
)
async def test_the_field_may_hold_any_output_shape(mode: str, output: Any) -> None:
    seen: list[VerifiedOutput] = []

    def record(candidate: VerifiedOutput) -> bool:
        seen.append(candidate)
        return True

    graph = gate_graph(output, checks=[record], policy=GatePolicy(require_sources=True))
    final = await run(graph, mode, {})
    assert final["report"] == "written"
    [judged] = seen
    assert judged.confidence == 0.9
    assert judged.sources == ["almanac"]
    # an object without ``content`` is itself the content
    assert judged.content == (output if isinstance(output, ModelAnswer) else TIDES)


@pytest.mark.parametrize("mode", MODES)
async def test_an_object_with_low_confidence_fails(mode: str) -> None:
    final = await run(gate_graph(ModelAnswer(text=TIDES, confidence=0.2)), mode, {})
    assert final["report"] == "needs review"
    assert verdict_of(final)["score"] == 0.2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("output", [MISSING, None], ids=["unset", "none"])
async def test_a_missing_output_routes_to_on_fail(mode: str, output: Any) -> None:
    final = await run(gate_graph(output), mode, {})
    assert final["report"] == "needs review"
    verdict = verdict_of(final)
    assert verdict["passed"] is False
    assert verdict["score"] == 0.0
    assert verdict["reasons"] == ["no output in 'analysis'"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_missing_output_is_not_given_to_the_verifier(mode: str) -> None:
    calls: list[int] = []

    def verifier(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 1.0}

    final = await run(gate_graph(MISSING, verifier=verifier), mode, {})
    assert calls == []
    assert final["report"] == "needs review"
    assert verdict_of(final)["rounds"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_dict_without_confidence_is_an_error_naming_it(mode: str) -> None:
    graph = gate_graph({"content": TIDES, "sources": ["almanac"]})
    with pytest.raises(ValueError, match="no 'confidence' key"):
        await run(graph, mode, {})


@pytest.mark.parametrize("mode", MODES)
async def test_an_object_without_confidence_is_an_error_naming_it(mode: str) -> None:
    with pytest.raises(ValueError, match="cannot judge str: give it a 'confidence'"):
        await run(gate_graph("just some text"), mode, {})


async def test_a_confidence_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="confidence"):
        gate_graph({"content": TIDES, "confidence": 1.5}).invoke({})


# ---- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_policy_require_sources(mode: str) -> None:
    policy = GatePolicy(require_sources=True)
    final = await run(gate_graph({"content": TIDES, "confidence": 0.9}, policy=policy), mode, {})
    assert final["report"] == "needs review"
    assert verdict_of(final)["reasons"] == ["cites no sources"]

    sourced = {"content": TIDES, "confidence": 0.9, "sources": ["tide tables"]}
    final = await run(gate_graph(sourced, policy=policy), mode, {})
    assert final["report"] == "written"


async def test_policy_sets_threshold_and_rounds() -> None:
    calls: list[int] = []

    def verifier(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 0.55}

    policy = GatePolicy(min_confidence=0.6, max_rounds=2)
    final = await run(gate_graph({"content": TIDES, "confidence": 0.6}, policy=policy), "sync", {})
    assert final["report"] == "written"
    graph = gate_graph({"content": TIDES, "confidence": 0.5}, policy=policy, verifier=verifier)
    final = await run(graph, "sync", {})
    assert final["report"] == "needs review"
    assert len(calls) == 2


def test_min_confidence_sets_the_threshold() -> None:
    graph = gate_graph({"content": TIDES, "confidence": 0.55}, min_confidence=0.5)
    assert graph.invoke({})["report"] == "written"
    graph = gate_graph({"content": TIDES, "confidence": 0.85}, min_confidence=0.9)
    assert graph.invoke({})["report"] == "needs review"


@pytest.mark.parametrize("extra", [{"min_confidence": 0.8}, {"max_rounds": 2}])
def test_policy_and_its_fields_together_are_rejected(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="either policy= or min_confidence="):
        verification_gate(
            field="analysis", on_pass="writer", on_fail="review", policy=GatePolicy(), **extra
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_confidence": 1.5}, "min_confidence must be between 0 and 1"),
        ({"min_confidence": -0.1}, "min_confidence must be between 0 and 1"),
        ({"max_rounds": -1}, "max_rounds must be an integer >= 0"),
        ({"max_rounds": 1.5}, "max_rounds must be an integer >= 0"),
    ],
)
def test_bad_policy_values_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        verification_gate(field="analysis", on_pass="writer", on_fail="review", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"field": 3}, r"field=\.\.\.\) takes a name"),
        ({"field": ""}, r"field=\.\.\.\) takes a name"),
        ({"on_pass": None}, r"on_pass=\.\.\.\) takes a name"),
        ({"on_fail": 7}, r"on_fail=\.\.\.\) takes a name"),
        ({"schema": dict}, r"schema=\.\.\.\) takes a pydantic model"),
        ({"schema": "Finding"}, r"schema=\.\.\.\) takes a pydantic model"),
        ({"schema": Finding(claim="x", year=1)}, r"schema=\.\.\.\) takes a pydantic model"),
        ({"checks": [1]}, r"checks=\.\.\.\) takes callables"),
        ({"checks": [bool, "sourced"]}, r"checks=\.\.\.\) takes callables"),
        ({"verifier": 42}, r"verifier=\.\.\.\) takes a callable or runnable"),
        ({"verifier": "second_model"}, r"verifier=\.\.\.\) takes a callable or runnable"),
    ],
)
def test_bad_types_are_rejected_at_build_time(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"field": "analysis", "on_pass": "writer", "on_fail": "review"}
    with pytest.raises(TypeError, match=match):
        verification_gate(**(arguments | kwargs))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("route", ["on_pass", "on_fail"])
async def test_a_route_naming_no_node_fails_at_the_first_step(mode: str, route: str) -> None:
    graph = gate_graph({"content": TIDES, "confidence": 0.9}, **{route: "wrtier"})
    with pytest.raises(ValueError, match="'wrtier' is not a node of this graph"):
        await run(graph, mode, {})


@pytest.mark.parametrize("mode", MODES)
async def test_works_without_the_ledger(mode: str) -> None:
    passing = gate_graph({"content": TIDES, "confidence": 0.9}, state=PlainState)
    final = await run(passing, mode, {})
    assert final["report"] == "written"
    assert "resilience" not in final

    failing = gate_graph({"content": TIDES, "confidence": 0.1}, state=PlainState)
    final = await run(failing, mode, {})
    assert final["report"] == "needs review"
    assert "resilience" not in final

    revised = gate_graph(
        {"content": TIDES, "confidence": 0.5},
        state=PlainState,
        verifier=lambda o: {"confidence": 0.9},
    )
    final = await run(revised, mode, {})
    assert final["report"] == "written"
    assert final["analysis"]["verified"] is True
    assert "resilience" not in final


def test_the_judge_attribute_judges_an_output() -> None:
    calls: list[int] = []

    def verifier(candidate: VerifiedOutput) -> dict[str, Any]:
        calls.append(1)
        return {"confidence": 1.0}

    def sourced(output: VerifiedOutput) -> bool:
        return bool(output.sources)

    gate = verification_gate(
        field="analysis", on_pass="writer", on_fail="review", checks=[sourced], verifier=verifier
    )
    judge = gate.judge  # type: ignore[attr-defined]
    assert judge({"content": TIDES, "confidence": 0.9, "sources": ["a"]}) == Verdict(True, 0.9)
    assert judge(VerifiedOutput(content=TIDES, confidence=0.5, sources=["a"])) == Verdict(
        False, 0.5, ("confidence 0.50 is below 0.75",)
    )
    assert judge(ModelAnswer(text=TIDES, confidence=0.8)) == Verdict.fail(
        "sourced failed", score=0.0
    )
    assert calls == []  # judging is not verifying

    strict = verification_gate(field="a", on_pass="x", on_fail="y", schema=Finding)
    verdict = strict.judge({"content": {"claim": "x"}, "confidence": 0.9})  # type: ignore[attr-defined]
    assert not verdict.passed
    assert "Finding" in verdict.reasons[0]
    assert "year" in verdict.reasons[0]


# ---- quality_below: low quality opens a breaker ------------------------------------------


def quality_breaker(store: InMemoryBreakerStore, clock: FakeClock) -> CircuitBreaker:
    policy = BreakerPolicy(record_result=quality_below(0.7, field="analysis"), failure_threshold=3)
    return CircuitBreaker("analyst", policy, clock=clock, store=store)


def analyst_graph(breaker: CircuitBreaker, confidences: Iterator[float], calls: list[float]) -> Any:
    def analyst(state: State) -> dict[str, Any]:
        confidence = next(confidences)
        calls.append(confidence)
        return {"analysis": {"content": TIDES, "confidence": confidence}}

    gate = verification_gate(field="analysis", on_pass="writer", on_fail="review")
    builder = StateGraph(State)
    builder.add_node("analyst", guard(analyst, breaker=breaker))
    builder.add_node(GATE, gate)
    builder.add_node("writer", lambda s: {"report": "written"})
    builder.add_node("review", lambda s: {"report": "needs review"})
    builder.add_edge(START, "analyst")
    builder.add_edge("analyst", GATE)
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_quality_below_opens_the_analyst_breaker(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = quality_breaker(store, clock)
    calls: list[float] = []
    graph = analyst_graph(breaker, iter([0.3, 0.5, 0.69, 0.9]), calls)
    for expected_failures in (1, 2):
        assert (await run(graph, mode, {}))["report"] == "needs review"
        assert breaker.snapshot().consecutive_failures == expected_failures
        assert breaker.state is BreakerState.CLOSED
    await run(graph, mode, {})
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await run(graph, mode, {})
    assert calls == [0.3, 0.5, 0.69]  # the open breaker kept the analyst from running


@pytest.mark.parametrize("mode", MODES)
async def test_good_outputs_do_not_count_as_failures(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = quality_breaker(store, clock)
    calls: list[float] = []
    graph = analyst_graph(breaker, iter([0.3, 0.2, 0.7, 0.95, 0.1, 0.1, 0.8, 0.1]), calls)
    for _ in range(8):
        await run(graph, mode, {})
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 1
    await run(analyst_graph(breaker, iter([0.1, 0.1]), calls), mode, {})
    await run(analyst_graph(breaker, iter([0.1]), calls), mode, {})
    assert breaker.state is BreakerState.OPEN


def test_quality_below_counts_a_low_quality_command_update(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    """An agent that hands off with ``Command(update=..., goto=...)`` is judged too."""
    breaker = quality_breaker(store, clock)

    def analyst(state: State) -> Command[Any]:
        return Command(update={"analysis": {"content": TIDES, "confidence": 0.2}}, goto=END)

    builder = StateGraph(State)
    builder.add_node("analyst", guard(analyst, breaker=breaker))
    builder.add_edge(START, "analyst")
    graph = builder.compile()
    for _ in range(3):
        graph.invoke({})
    assert breaker.state is BreakerState.OPEN


def test_quality_below_predicate() -> None:
    low = quality_below(0.7, field="analysis")
    assert low({"analysis": {"content": "x", "confidence": 0.69}}) is True
    assert low({"analysis": {"content": "x", "confidence": 0.7}}) is False
    assert low({"analysis": VerifiedOutput(content="x", confidence=0.2)}) is True
    assert low({"analysis": ModelAnswer(text="x", confidence=0.9)}) is False
    assert low({"report": "no analysis in this update"}) is False
    assert low({"analysis": None}) is False
    assert low(None) is False
    # an output that cannot even be read is not a good one
    assert low({"analysis": {"content": "x"}}) is True
    assert low({"analysis": {"content": "x", "confidence": 7}}) is True

    bare = quality_below()  # the node returns the output itself; threshold 0.7
    assert bare(VerifiedOutput(content="x", confidence=0.5)) is True
    assert bare({"content": "x", "confidence": 0.8}) is False


@pytest.mark.parametrize("threshold", [-0.1, 1.01, 7])
def test_quality_below_rejects_a_threshold_out_of_range(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold must be between 0 and 1"):
        quality_below(threshold, field="analysis")


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_quality_below_accepts_the_bounds(threshold: float) -> None:
    assert callable(quality_below(threshold))


# ---- durability: the gate's route is checkpointed ----------------------------------------


class Counters:
    """Counts the gate's work: a check call per judgement, a verifier call per round."""

    def __init__(self) -> None:
        self.checks = 0
        self.verifier = 0
        self.writer = 0

    def check(self, output: VerifiedOutput) -> bool:
        self.checks += 1
        return True

    def verify(self, candidate: VerifiedOutput) -> dict[str, Any]:
        self.verifier += 1
        return {"confidence": 0.9}

    def flaky_writer(self, state: State) -> dict[str, Any]:
        self.writer += 1
        if self.writer == 1:
            raise ConnectionError("writer's model is down")
        return {"report": f"written from {state['analysis']['confidence']}"}


@pytest.mark.parametrize("mode", MODES)
async def test_the_gate_route_survives_a_failure_and_resume(mode: str, tmp_path: Path) -> None:
    counters = Counters()
    config = thread("gate-resume")
    async with sqlite_saver(mode, tmp_path / "gate.db") as saver:
        graph = gate_graph(
            {"content": TIDES, "confidence": 0.5},
            checkpointer=saver,
            writer=counters.flaky_writer,
            checks=[counters.check],
            verifier=counters.verify,
        )
        with pytest.raises(ConnectionError):
            await run(graph, mode, {}, config)
        saved = graph.get_state(config) if mode == "sync" else await graph.aget_state(config)
        assert saved.next == ("writer",)
        before = ledger(saved.values)
        assert before.verdicts[GATE]["routed_to"] == "writer"
        assert before.verdicts[GATE]["rounds"] == 1
        assert saved.values["analysis"]["verified"] is True
        judged = (counters.checks, counters.verifier)
        assert judged == (2, 1)  # the original, then the revision

        final = await run(graph, mode, None, config)
    assert final["report"] == "written from 0.9"
    assert counters.writer == 2
    assert (counters.checks, counters.verifier) == judged  # the gate did not run again
    after = ledger(final)
    assert after.verdicts == before.verdicts
    assert after.visits_of(GATE) == 1
    assert after.status(GATE) == "success"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("confidence", "target"), [(0.9, "writer"), (0.2, "review")])
async def test_the_gate_route_survives_an_interrupt_before_its_target(
    mode: str, confidence: float, target: str, tmp_path: Path
) -> None:
    counters = Counters()
    config = thread("gate-interrupt")
    async with sqlite_saver(mode, tmp_path / "gate.db") as saver:
        graph = gate_graph(
            {"content": TIDES, "confidence": confidence},
            checkpointer=saver,
            interrupt_before=["writer", "review"],
            checks=[counters.check],
        )
        paused = await run(graph, mode, {}, config)
        assert "report" not in paused
        saved = graph.get_state(config) if mode == "sync" else await graph.aget_state(config)
        assert saved.next == (target,)
        before = ledger(saved.values).verdicts
        assert before[GATE]["routed_to"] == target
        assert counters.checks == 1

        final = await run(graph, mode, None, config)
    assert final["report"] == ("written" if target == "writer" else "needs review")
    assert counters.checks == 1
    assert ledger(final).verdicts == before
    assert ledger(final).visits_of(GATE) == 1
