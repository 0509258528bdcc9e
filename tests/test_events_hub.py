"""The event stream: every decision, from every component, reaches the hub's listeners."""

from __future__ import annotations

import logging
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import (
    BreakerOpened,
    BreakerPolicy,
    CircuitBreaker,
    DeadLetterQueue,
    FakeClock,
    InMemoryBreakerStore,
    ResilienceState,
    dead_letter,
    fallback_to,
    guard,
    verification_gate,
)
from langgraph_resilience.core.events import (
    CallRejected,
    DeadLettered,
    FallbacksSpent,
    FallbackTaken,
    GateVerdict,
    NodeFailed,
    NodeSucceeded,
)
from langgraph_resilience.events import EventHub, hub, listening, publish, subscribe, unsubscribe
from tests.graph._helpers import MODES, node_pair, run


class State(ResilienceState, total=False):
    answer: str
    analysis: Any


def test_subscribe_unsubscribe_and_listening() -> None:
    seen: list[object] = []
    before = hub.listeners
    subscribe(seen.append)
    publish("first", trace=False)
    unsubscribe(seen.append)
    publish("second", trace=False)
    with listening(seen.append):
        publish("third", trace=False)
    publish("fourth", trace=False)
    assert seen == ["first", "third"]
    assert hub.listeners == before
    unsubscribe(seen.append)  # not subscribed: a no-op


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    own = EventHub()
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("dashboard down")

    own.subscribe(broken)
    own.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="langgraph_resilience.events"):
        own.notify("event")
    assert seen == ["event"]
    assert "failed on 'event'" in caplog.text
    assert "dashboard down" in caplog.text


def test_subscribe_rejects_what_cannot_be_called() -> None:
    with pytest.raises(TypeError, match="callable of one event"):
        EventHub().subscribe("not a function")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
async def test_a_guarded_graph_publishes_each_attempt_under_its_node_name(mode: str) -> None:
    """Proves: guard reports successes and failures with the graph node's name (not the
    function's), the breaker, and the duration on the breaker's clock; a rejection is a
    failure with no duration; the breaker's own events arrive in between, in order."""
    clock = FakeClock()
    store = InMemoryBreakerStore()
    breaker = CircuitBreaker(
        "search-api", BreakerPolicy(failure_threshold=1), clock=clock, store=store
    )
    calls = {"n": 0}

    def body(state: Any) -> dict[str, Any]:
        calls["n"] += 1
        clock.advance(0.25)
        if calls["n"] == 2:
            raise ConnectionError("search is down")
        return {"answer": "found"}

    builder = StateGraph(State)
    builder.add_node("search", guard(node_pair(body, mode), breaker=breaker))
    builder.add_edge(START, "search")
    graph = builder.compile()

    seen: list[object] = []
    with listening(seen.append):
        await run(graph, mode, {})
        with pytest.raises(ConnectionError):
            await run(graph, mode, {})
        with pytest.raises(Exception, match="search-api"):
            await run(graph, mode, {})

    node_events = [e for e in seen if isinstance(e, (NodeSucceeded, NodeFailed))]
    assert node_events == [
        NodeSucceeded(node="search", breaker="search-api", duration=0.25),
        NodeFailed(node="search", breaker="search-api", duration=0.25, error="ConnectionError"),
        NodeFailed(node="search", breaker="search-api", duration=None, error="CircuitOpenError"),
    ]
    kinds = [type(e).__name__ for e in seen]
    assert kinds == ["NodeSucceeded", "NodeFailed", "BreakerOpened", "CallRejected", "NodeFailed"]
    assert isinstance(seen[2], BreakerOpened)
    assert isinstance(seen[3], CallRejected)


@pytest.mark.parametrize("mode", MODES)
async def test_fallbacks_gates_and_dead_letters_reach_the_hub(mode: str) -> None:
    """Proves: a fallback taken, a spent chain, a dead letter and a gate verdict are each
    delivered once, as typed events, with the node they concern."""

    def broken(state: Any) -> dict[str, Any]:
        raise TimeoutError("model timed out")

    def draft(state: Any) -> dict[str, Any]:
        return {"analysis": {"content": "tides follow the moon", "confidence": 0.4}}

    def done(state: Any) -> dict[str, Any]:
        return {"answer": "ok"}

    dlq = DeadLetterQueue.from_url("memory://")
    builder = StateGraph(State)
    builder.add_node(
        "primary",
        node_pair(broken, mode),
        error_handler=fallback_to("backup", dead_letter=dead_letter(dlq, then=END)),
    )
    builder.add_node(
        "backup",
        node_pair(broken, mode),
        error_handler=fallback_to("backup", dead_letter=dead_letter(dlq, then="writer")),
    )
    builder.add_node("writer", node_pair(draft, mode))
    builder.add_node(
        "check",
        verification_gate(field="analysis", min_confidence=0.75, on_pass=END, on_fail="finish"),
    )
    builder.add_node("finish", node_pair(done, mode))
    builder.add_edge(START, "primary")
    builder.add_edge("writer", "check")
    builder.add_edge("finish", END)
    graph = builder.compile()

    seen: list[object] = []
    with listening(seen.append):
        await run(graph, mode, {})

    decisions = [e for e in seen if not isinstance(e, (NodeSucceeded, NodeFailed))]
    assert [type(e) for e in decisions] == [
        FallbackTaken,
        FallbacksSpent,
        DeadLettered,
        GateVerdict,
    ]
    taken, spent, letter, verdict = decisions
    assert taken == FallbackTaken(node="primary", target="backup", error="TimeoutError")
    assert spent == FallbacksSpent(node="backup", error="TimeoutError")
    assert isinstance(letter, DeadLettered)
    assert letter.node == "backup"
    assert dlq.get(letter.letter) is not None
    assert isinstance(verdict, GateVerdict)
    assert (verdict.node, verdict.passed, verdict.route) == ("check", False, "finish")


class Plain(TypedDict, total=False):
    answer: str


def test_without_listeners_guard_publishes_no_node_events() -> None:
    """Proves the cheap path: with nobody listening, the hub is never asked to deliver."""
    delivered: list[object] = []

    def counting(event: object) -> None:
        delivered.append(event)

    builder = StateGraph(Plain)
    builder.add_node("answer", guard(lambda state: {"answer": "yes"}, breaker=None))
    builder.add_edge(START, "answer")
    graph = builder.compile()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EventHub, "notify", lambda self, event: counting(event))
        assert graph.invoke({}) == {"answer": "yes"}
    assert hub.listeners == ()
    assert delivered == []
