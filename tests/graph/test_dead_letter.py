"""The dead-letter sink on real graphs: what a letter holds, where the run goes, the
ledger, idempotency when LangGraph re-runs a handler, letters after a resume, and the
sink as the last link of a fallback chain."""

from __future__ import annotations

import operator
from typing import Annotated, Any, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import RetryPolicy

from langgraph_resilience import (
    CircuitBreaker,
    DeadLetterQueue,
    FakeClock,
    InMemoryBreakerStore,
    LetterStatus,
    ResilienceState,
    dead_letter,
    fallback_to,
    guard,
    ledger,
)
from tests.graph._helpers import MODES, node_pair, run, thread


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]
    query: str
    api_key: str


@pytest.fixture
def dlq() -> DeadLetterQueue:
    return DeadLetterQueue.from_url("memory://")


def failing(error: BaseException) -> Any:
    def body(state: Any) -> dict[str, Any]:
        raise error

    return body


def graph_with_sink(node: Any, handler: Any, **kwargs: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("search", node, error_handler=cast(Any, handler), **kwargs)
    builder.add_node("apologise", lambda state: {"log": ["sorry"]})
    builder.add_edge(START, "search")
    builder.add_edge("search", END)
    return builder


@pytest.mark.parametrize("mode", MODES)
async def test_a_letter_holds_the_failure_and_its_context(
    mode: str, dlq: DeadLetterQueue, clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    breaker = CircuitBreaker("search-api", clock=clock, store=store)
    node = guard(node_pair(failing(ConnectionError("search API down")), mode), breaker=breaker)
    retry = RetryPolicy(max_attempts=2, initial_interval=0, jitter=False)
    graph = graph_with_sink(node, dead_letter(dlq, then="apologise"), retry_policy=retry)
    final = await run(
        graph.compile(checkpointer=InMemorySaver()),
        mode,
        {"log": [], "query": "tides", "api_key": "sk-secret"},
        thread(f"letter-{mode}"),
    )

    assert final["log"] == ["sorry"]  # routed to then=
    (letter,) = dlq.list()
    assert letter.node == "search"
    assert letter.thread_id == f"letter-{mode}"
    assert letter.checkpoint_ns == ""
    assert letter.checkpoint_id
    assert letter.task_id
    assert letter.error_type == "ConnectionError"
    assert letter.error_message == "search API down"
    assert letter.error_code == "CONNECTION"
    assert letter.traceback is not None
    assert "search API down" in letter.traceback
    assert letter.attempts == 2
    assert letter.input["query"] == "tides"
    assert letter.input["api_key"] == "[REDACTED]"
    assert letter.metadata["breaker"] == "search-api"
    assert letter.next_attempt_at is not None  # a transient error: retriable
    assert letter.status is LetterStatus.PENDING
    view = ledger(final)
    assert view.status("search") == "failed"
    assert view.outcomes["search"]["error_code"] == "CONNECTION"
    assert view.degraded


@pytest.mark.parametrize("mode", MODES)
async def test_a_permanent_error_waits_for_a_person(mode: str, dlq: DeadLetterQueue) -> None:
    graph = graph_with_sink(node_pair(failing(ValueError("bad input")), mode), dead_letter(dlq))
    await run(graph.compile(), mode, {"log": []})
    (letter,) = dlq.list()
    assert letter.error_code == "INVALID_INPUT"
    assert letter.next_attempt_at is None
    assert dlq.drain_retriable() == []


def test_retry_on_decides_what_is_retriable(dlq: DeadLetterQueue) -> None:
    sink = dead_letter(dlq, retry_on=ValueError)
    graph_with_sink(failing(ValueError("flaky parser")), sink).compile().invoke({"log": []})
    assert dlq.list()[0].next_attempt_at is not None


def test_a_rerun_handler_files_one_letter(dlq: DeadLetterQueue) -> None:
    # langgraph#9002: when another task of the same step failed without a handler, the
    # resume runs the handler again. The letter's identity makes the second put a no-op.
    other_failed = [False]

    def flaky_sibling(state: State) -> dict[str, Any]:
        if not other_failed[0]:
            other_failed[0] = True
            raise RuntimeError("sibling fails once")
        return {"log": ["sibling"]}

    runs: list[int] = []
    sink = dead_letter(dlq)

    def counting_sink(
        state: State, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Any:
        runs.append(1)
        return sink(state, error, config, runtime)

    builder = StateGraph(State)
    builder.add_node(
        "search", failing(ConnectionError("down")), error_handler=cast(Any, counting_sink)
    )
    builder.add_node("sibling", flaky_sibling)
    builder.add_edge(START, "search")
    builder.add_edge(START, "sibling")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = thread("rerun")
    with pytest.raises(RuntimeError, match="sibling fails once"):
        graph.invoke({"log": []}, config)
    graph.invoke(None, config)
    assert len(runs) == 2  # LangGraph did run the handler twice
    assert len(dlq.list()) == 1


def test_a_letter_after_a_resume_is_built_from_the_error_text(dlq: DeadLetterQueue) -> None:
    crashed = [False]
    sink = dead_letter(dlq)

    def crash_once(
        state: State, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Any:
        if not crashed[0]:
            crashed[0] = True
            raise RuntimeError("handler crashed")
        return sink(state, error, config, runtime)

    graph = graph_with_sink(failing(ConnectionError("svc down")), crash_once).compile(
        checkpointer=InMemorySaver()
    )
    config = thread("resumed")
    with pytest.raises(RuntimeError, match="handler crashed"):
        graph.invoke({"log": []}, config)
    graph.invoke(None, config)
    (letter,) = dlq.list()
    assert letter.error_type == "ConnectionError"
    assert letter.error_message == "svc down"
    assert letter.error_code == "CONNECTION"
    assert letter.traceback is None  # only the repr survived the checkpoint
    assert letter.metadata["error_was_text"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_the_last_link_of_a_fallback_chain(mode: str, dlq: DeadLetterQueue) -> None:
    chain = fallback_to("mirror", dead_letter=dead_letter(dlq, then="apologise"))
    builder = StateGraph(State)
    builder.add_node(
        "search", node_pair(failing(ConnectionError("down")), mode), error_handler=chain
    )
    builder.add_node("mirror", node_pair(failing(TimeoutError("slow")), mode), error_handler=chain)
    builder.add_node("apologise", lambda state: {"log": ["sorry"]})
    builder.add_edge(START, "search")
    final = await run(builder.compile(), mode, {"log": []})

    assert final["log"] == ["sorry"]
    (letter,) = dlq.list()
    assert letter.node == "mirror"  # the link that exhausted the chain
    assert letter.error_code == "TIMEOUT"
    view = ledger(final)
    assert view.path == ("search", "mirror")  # the sink did not record the visit twice
    assert view.outcomes["mirror"]["fallback_used"]  # the chain's record, not the sink's
    assert view.degraded


def test_bad_arguments_are_refused(dlq: DeadLetterQueue) -> None:
    with pytest.raises(TypeError, match="DeadLetterQueue"):
        dead_letter("memory://")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="then"):
        dead_letter(dlq, then="")
    graph = graph_with_sink(failing(ValueError("x")), dead_letter(dlq, then="nowhere"))
    with pytest.raises(ValueError, match="'nowhere' is not a node"):
        graph.compile().invoke({"log": []})
    assert dlq.list() == []  # nothing filed for a misconfigured route
