"""guard() on real StateGraphs, sync ``invoke`` and async ``ainvoke``."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, RetryPolicy, interrupt

from langgraph_resilience import (
    AttemptTimeoutError,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    FakeClock,
    InMemoryBreakerStore,
    guard,
)
from tests.graph._helpers import CONTEXT_MODES, MODES, node_pair, run, thread


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    route: str


def make_breaker(
    store: InMemoryBreakerStore, clock: FakeClock, name: str = "svc", **policy: Any
) -> CircuitBreaker:
    policy.setdefault("failure_threshold", 2)
    policy.setdefault("recovery_timeout", 30)
    return CircuitBreaker(name, BreakerPolicy(**policy), clock=clock, store=store)


def single_node_graph(node: Any, **add_node_kwargs: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("work", node, **add_node_kwargs)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile()


# ---- wrapping keeps what LangGraph needs -----------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_injected_parameters_still_arrive(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    seen: dict[str, Any] = {}

    def body(state: State, config: RunnableConfig, runtime: Runtime[Any]) -> dict[str, Any]:
        seen["thread"] = config["configurable"]["thread_id"]
        seen["store"] = runtime.store
        return {"log": ["ok"]}

    if mode == "sync":

        def node(state: State, config: RunnableConfig, runtime: Runtime[Any]) -> dict[str, Any]:
            return body(state, config, runtime)

    else:

        async def node(  # type: ignore[misc]
            state: State, config: RunnableConfig, runtime: Runtime[Any]
        ) -> dict[str, Any]:
            return body(state, config, runtime)

    memory_store = InMemoryStore()
    builder = StateGraph(State)
    builder.add_node("work", guard(node, breaker=make_breaker(store, clock)))
    builder.add_edge(START, "work")
    graph = builder.compile(checkpointer=InMemorySaver(), store=memory_store)
    out = await run(graph, mode, {"log": []}, thread("t-1"))
    assert out["log"] == ["ok"]
    assert seen == {"thread": "t-1", "store": memory_store}


def test_keeps_sync_or_async_nature_and_name() -> None:
    def plain(state: State) -> dict[str, Any]:
        return {}

    async def coro(state: State) -> dict[str, Any]:
        return {}

    assert not asyncio.iscoroutinefunction(guard(plain))
    assert asyncio.iscoroutinefunction(guard(coro))
    assert guard(plain).__name__ == "plain"
    assert guard(plain, breaker="svc").__langgraph_resilience__ == {  # type: ignore[attr-defined]
        "breaker": "svc",
        "timeout": None,
    }


@pytest.mark.parametrize("mode", MODES)
async def test_wraps_a_runnable(mode: str, store: InMemoryBreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    calls = []

    def body(state: State) -> dict[str, Any]:
        calls.append(1)
        raise ConnectionError("model down")

    async def abody(state: State) -> dict[str, Any]:
        return body(state)

    runnable = RunnableLambda(body, afunc=abody, name="model")
    graph = single_node_graph(guard(runnable, breaker=breaker))
    with pytest.raises(ConnectionError):
        await run(graph, mode, {"log": []})
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await run(graph, mode, {"log": []})
    assert len(calls) == 1


@pytest.mark.parametrize("bad", [42, "node", None])
def test_rejects_a_non_callable_at_build_time(bad: Any) -> None:
    with pytest.raises(TypeError, match="guard\\(\\) wraps"):
        guard(bad)


def test_rejects_bad_timeout_and_breaker() -> None:
    def node(state: State) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="timeout must be > 0"):
        guard(node, timeout=0)
    with pytest.raises(ValueError, match="timeout must be > 0"):
        guard(node, timeout=-1)
    with pytest.raises(TypeError, match="breaker must be"):
        guard(node, breaker=3)  # type: ignore[arg-type]


def test_a_breaker_name_means_the_process_wide_breaker() -> None:
    def node(state: State) -> dict[str, Any]:
        raise ConnectionError

    graph = single_node_graph(guard(node, breaker="shared"))
    for _ in range(3):
        with pytest.raises(ConnectionError):
            graph.invoke({"log": []})
    assert CircuitBreaker("shared").state is BreakerState.OPEN


# ---- an open breaker short-circuits the node -------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_open_breaker_rejects_without_calling_the_node(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock)
    calls: list[int] = []

    def body(state: State) -> dict[str, Any]:
        calls.append(1)
        raise ConnectionError("down")

    graph = single_node_graph(guard(node_pair(body, mode), breaker=breaker))
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await run(graph, mode, {"log": []})
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await run(graph, mode, {"log": []})
    assert len(calls) == 2
    assert info.value.breaker == "svc"
    assert info.value.retry_after == pytest.approx(30)

    clock.advance(30)  # recovery: one trial call goes through and succeeds
    calls.clear()
    graph_ok = single_node_graph(guard(node_pair(lambda s: {"log": ["up"]}, mode), breaker=breaker))
    assert (await run(graph_ok, mode, {"log": []}))["log"] == ["up"]
    assert breaker.state is BreakerState.HALF_OPEN  # success_threshold=2
    await run(graph_ok, mode, {"log": []})
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("mode", MODES)
async def test_result_predicate_counts_bad_output_as_failure(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    # the predicate judges the node's own return value (here: an empty answer)
    breaker = make_breaker(store, clock, record_result=lambda out: not out["log"][0])
    empty = single_node_graph(guard(node_pair(lambda s: {"log": [""]}, mode), breaker=breaker))
    await run(empty, mode, {"log": []})
    assert breaker.snapshot().consecutive_failures == 1
    await run(empty, mode, {"log": []})
    assert breaker.state is BreakerState.OPEN


# ---- interrupts pass through ------------------------------------------------------------


@pytest.mark.parametrize("mode", CONTEXT_MODES)
@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_interrupt_passes_through_uncounted_and_resumes(
    mode: str, timeout: float | None, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    # a streak of one: an interrupt counted as a failure would open the breaker
    breaker = make_breaker(store, clock, failure_threshold=1, success_threshold=1)

    def body(state: State) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"log": [f"answer:{answer}"]}

    if mode == "sync":

        def node(state: State) -> dict[str, Any]:
            return body(state)

    else:

        async def node(state: State) -> dict[str, Any]:  # type: ignore[misc]
            return body(state)

    builder = StateGraph(State)
    builder.add_node("ask", guard(node, breaker=breaker, timeout=timeout))
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = thread(f"{mode}-{timeout}")
    first = await run(graph, mode, {"log": []}, config)
    assert "__interrupt__" in first
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0
    final = await run(graph, mode, Command(resume="yes"), config)
    assert final["log"] == ["answer:yes"]
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("mode", CONTEXT_MODES)
async def test_interrupt_does_not_use_up_a_half_open_trial(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1, success_threshold=1)

    def failing(state: State) -> dict[str, Any]:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        single_node_graph(guard(failing, breaker=breaker)).invoke({"log": []})
    clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN

    def asks(state: State) -> dict[str, Any]:
        return {"log": [interrupt("?")]}

    builder = StateGraph(State)
    builder.add_node("ask", guard(node_pair(asks, mode), breaker=breaker))
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = thread(mode)
    await run(graph, mode, {"log": []}, config)
    # the trial permit came back: the resume is admitted as the trial, succeeds, closes
    assert (await run(graph, mode, Command(resume="ok"), config))["log"] == ["ok"]
    assert breaker.state is BreakerState.CLOSED


# ---- composition with RetryPolicy and error_handler -------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_every_retry_attempt_is_recorded_and_retries_stop_once_open(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=3)
    calls: list[int] = []

    def body(state: State) -> dict[str, Any]:
        calls.append(1)
        raise ConnectionError("down")

    retry = RetryPolicy(max_attempts=10, initial_interval=0.0, jitter=False)
    graph = single_node_graph(guard(node_pair(body, mode), breaker=breaker), retry_policy=retry)
    with pytest.raises(CircuitOpenError):
        await run(graph, mode, {"log": []})
    # attempts 1-3 ran and opened the breaker; attempt 4 was rejected, and LangGraph's
    # default retry_on does not retry a RuntimeError, so attempts 5-10 never happened
    assert len(calls) == 3
    assert breaker.snapshot().rejected_calls == 1


@pytest.mark.parametrize("mode", MODES)
async def test_error_handler_gets_circuit_open_error_and_routes_to_backup(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    calls: list[int] = []

    def body(state: State) -> dict[str, Any]:
        calls.append(1)
        raise ConnectionError("down")

    seen: list[tuple[str, str | None]] = []

    def handler(state: State, error: NodeError, config: RunnableConfig) -> Command[Any]:
        guard_info = config["metadata"].get("langgraph_resilience", {})
        seen.append((type(error.error).__name__, guard_info.get("breaker")))
        return Command(goto="backup")

    def backup(state: State) -> dict[str, Any]:
        return {"log": ["backup"]}

    builder = StateGraph(State)
    builder.add_node(
        "primary", guard(node_pair(body, mode), breaker=breaker), error_handler=handler
    )
    builder.add_node("backup", backup)
    builder.add_edge(START, "primary")
    builder.add_edge("backup", END)
    graph = builder.compile()
    assert (await run(graph, mode, {"log": []}))["log"] == ["backup"]
    assert (await run(graph, mode, {"log": []}))["log"] == ["backup"]
    assert seen == [("ConnectionError", "svc"), ("CircuitOpenError", "svc")]
    assert len(calls) == 1


# ---- timeouts ---------------------------------------------------------------------------


def test_sync_timeout_abandons_the_worker_and_counts_a_failure(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    release = threading.Event()
    finished = threading.Event()

    def stuck(state: State) -> dict[str, Any]:
        release.wait(10)
        finished.set()
        return {"log": ["late"]}

    graph = single_node_graph(guard(stuck, breaker=breaker, timeout=0.05))
    try:
        with pytest.raises(AttemptTimeoutError) as info:
            graph.invoke({"log": []})
        # the caller got control back while the worker is still blocked: not waited for
        assert not finished.is_set()
        assert info.value.timeout == pytest.approx(0.05)
        assert breaker.state is BreakerState.OPEN
    finally:
        release.set()
    assert finished.wait(5)


def test_sync_timeout_under_ainvoke(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    release = threading.Event()

    def stuck(state: State) -> dict[str, Any]:
        release.wait(10)
        return {}

    graph = single_node_graph(guard(stuck, breaker=breaker, timeout=0.05))
    try:
        with pytest.raises(AttemptTimeoutError):
            asyncio.run(graph.ainvoke({"log": []}))
    finally:
        release.set()
    assert breaker.state is BreakerState.OPEN


def test_async_timeout_cancels_the_attempt(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    cancelled = asyncio.Event()

    async def stuck(state: State) -> dict[str, Any]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    graph = single_node_graph(guard(stuck, breaker=breaker, timeout=0.05))

    async def main() -> None:
        with pytest.raises(AttemptTimeoutError):
            await graph.ainvoke({"log": []})
        # the guard does not wait for the cancellation to land; the attempt sees it later
        await asyncio.wait_for(cancelled.wait(), timeout=5)

    asyncio.run(main())
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize("mode", MODES)
async def test_timed_out_attempts_are_retried_then_the_breaker_stops_them(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=2)
    entered: list[int] = []
    release = threading.Event()

    if mode == "sync":

        def stuck(state: State) -> dict[str, Any]:
            entered.append(1)
            release.wait(10)
            return {}

    else:

        async def stuck(state: State) -> dict[str, Any]:  # type: ignore[misc]
            entered.append(1)
            await asyncio.Event().wait()
            return {}

    retry = RetryPolicy(max_attempts=5, initial_interval=0.0, jitter=False)
    graph = single_node_graph(guard(stuck, breaker=breaker, timeout=0.02), retry_policy=retry)
    try:
        with pytest.raises(CircuitOpenError):
            await run(graph, mode, {"log": []})
    finally:
        release.set()
    assert len(entered) == 2  # AttemptTimeoutError is retried; CircuitOpenError is not


def test_a_sibling_cancelled_by_langgraph_is_not_a_failure(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = make_breaker(store, clock, failure_threshold=1)
    cancelled: list[int] = []
    slow_started = asyncio.Event()

    async def slow(state: State) -> dict[str, Any]:
        slow_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return {}

    async def boom(state: State) -> dict[str, Any]:
        await slow_started.wait()  # fail only once the guarded sibling is running
        raise ValueError("sibling failed")

    builder = StateGraph(State)
    builder.add_node("slow", guard(slow, breaker=breaker, timeout=30))
    builder.add_node("boom", boom)
    builder.add_edge(START, "slow")
    builder.add_edge(START, "boom")
    graph = builder.compile()
    with pytest.raises(ValueError, match="sibling failed"):
        asyncio.run(graph.ainvoke({"log": []}))
    assert cancelled == [1]
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0


def test_guard_without_breaker_is_a_transparent_wrapper() -> None:
    def node(state: State) -> dict[str, Any]:
        return {"log": ["plain"]}

    graph = single_node_graph(guard(node))
    assert graph.invoke({"log": []})["log"] == ["plain"]


def test_langgraph_native_timeout_cuts_are_not_counted(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    """LangGraph's own ``timeout=`` cancels the node exactly as it cancels a sibling, so
    from inside the node the two cannot be told apart: the guard gives the permit back.
    Use ``guard(timeout=...)`` to have timeouts count (and to time out sync nodes)."""
    from langgraph.errors import NodeTimeoutError

    breaker = make_breaker(store, clock, failure_threshold=1)

    async def stuck(state: State) -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    graph = single_node_graph(guard(stuck, breaker=breaker), timeout=0.02)
    with pytest.raises(NodeTimeoutError):
        asyncio.run(graph.ainvoke({"log": []}))
    assert breaker.state is BreakerState.CLOSED


def test_a_breaker_name_attaches_to_an_existing_breaker_with_its_policy() -> None:
    strict = CircuitBreaker("strict", BreakerPolicy(failure_threshold=1))

    def node(state: State) -> dict[str, Any]:
        raise ConnectionError

    graph = single_node_graph(guard(node, breaker="strict"))
    with pytest.raises(ConnectionError):
        graph.invoke({"log": []})
    assert strict.state is BreakerState.OPEN  # one failure: the existing policy applied
