"""fallback_to() and route_on_outcome() on real StateGraphs, sync ``invoke`` and async
``ainvoke``."""

from __future__ import annotations

import gc
import inspect
import operator
import threading
from collections.abc import Callable
from typing import Annotated, Any, TypedDict, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, interrupt

from langgraph_resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    FakeClock,
    InMemoryBreakerStore,
    LedgerMissingError,
    ResilienceState,
    fallback_to,
    guard,
    ledger,
    route_on_outcome,
)
from tests.graph._helpers import CONTEXT_MODES, MODES, node_pair, run, thread


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]
    note: str


class PlainState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    note: str


class MirrorDown(ConnectionError):
    """A project-specific error: revived by class name after a resume."""


Body = Callable[[Any], dict[str, Any]]


class Calls:
    """Node bodies that count their calls."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __getitem__(self, name: str) -> int:
        return self.counts.get(name, 0)

    def _hit(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def fails(self, name: str, error: BaseException) -> Body:
        def body(state: Any) -> dict[str, Any]:
            self._hit(name)
            raise error

        return body

    def works(self, name: str, text: str | None = None) -> Body:
        def body(state: Any) -> dict[str, Any]:
            self._hit(name)
            return {"log": [text or name]}

        return body


def handler(fn: Callable[..., Any]) -> Any:
    """An error handler, typed loosely enough for ``add_node(error_handler=...)``."""
    return cast(Any, fn)


def chain_graph(
    mode: str,
    calls: Calls,
    *,
    primary: Body,
    secondary: Body,
    cached: Body,
    fallback: Callable[..., Any],
    state: type = State,
    on_cached: bool = False,
    checkpointer: Any = None,
) -> Any:
    """primary -> secondary -> cached (one handler on the links), cached -> writer."""

    def writer(state: Any) -> dict[str, Any]:
        calls._hit("writer")
        if "resilience" in state and ledger(state).degraded:
            return {"log": ["writer: from degraded input"]}
        return {"log": ["writer"]}

    builder = StateGraph(state)
    builder.add_node("primary", guard(node_pair(primary, mode)), error_handler=handler(fallback))
    builder.add_node(
        "secondary", guard(node_pair(secondary, mode)), error_handler=handler(fallback)
    )
    if on_cached:
        builder.add_node("cached", guard(node_pair(cached, mode)), error_handler=handler(fallback))
    else:
        builder.add_node("cached", guard(node_pair(cached, mode)))
    builder.add_node("writer", guard(node_pair(writer, mode)))
    builder.add_edge(START, "primary")
    builder.add_edge("primary", "writer")  # the normal route, when primary works
    builder.add_edge("secondary", "writer")
    builder.add_edge("cached", "writer")
    builder.add_edge("writer", END)
    return builder.compile(checkpointer=checkpointer)


def primary_graph(
    mode: str,
    primary: Any,
    fallback: Callable[..., Any],
    *,
    targets: dict[str, Body],
    state: type = State,
    checkpointer: Any = None,
    **primary_kwargs: Any,
) -> Any:
    """primary (with the handler) and plain fallback targets that end the run."""
    builder = StateGraph(state)
    builder.add_node("primary", primary, error_handler=handler(fallback), **primary_kwargs)
    for name, body in targets.items():
        builder.add_node(name, guard(node_pair(body, mode)))
        builder.add_edge(name, END)
    builder.add_edge(START, "primary")
    builder.add_edge("primary", END)
    return builder.compile(checkpointer=checkpointer)


# ---- a chain declared once ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_chain_falls_through_to_the_first_working_target(mode: str) -> None:
    calls = Calls()
    research = fallback_to("secondary", "cached")
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("search API down")),
        secondary=calls.fails("secondary", TimeoutError("mirror too slow")),
        cached=calls.works("cached", "notes from the cache"),
        fallback=research,
    )
    final = await run(graph, mode, {"log": []})

    # cached answered, and the run went on past it (Command(goto=...) keeps it going)
    assert final["log"] == ["notes from the cache", "writer: from degraded input"]
    assert calls.counts == {"primary": 1, "secondary": 1, "cached": 1, "writer": 1}

    view = ledger(final)
    assert view.degraded is True
    assert view.path == ("primary", "secondary", "cached", "writer")
    assert view.visits == {"primary": 1, "secondary": 1, "cached": 1, "writer": 1}
    assert view.fallbacks == ("primary", "secondary")
    assert view.failed == ("primary", "secondary")
    primary, secondary = view.outcome("primary"), view.outcome("secondary")
    assert primary is not None
    assert secondary is not None
    assert (primary["status"], primary["error_code"]) == ("failed", "CONNECTION")
    assert primary["error"] == "ConnectionError: search API down"
    assert primary["fallback_used"] is True
    assert primary["attempts"] == 1
    assert (secondary["status"], secondary["error_code"]) == ("failed", "TIMEOUT")
    assert secondary["error"] == "TimeoutError: mirror too slow"
    assert secondary["fallback_used"] is True
    assert view.status("cached") == "success"
    assert view.status("writer") == "success"
    assert research.fallback_targets == ("secondary", "cached")  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
async def test_a_later_target_is_used_when_an_earlier_one_works(mode: str) -> None:
    calls = Calls()
    research = fallback_to("secondary", "cached")
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary", "from the mirror"),
        cached=calls.works("cached"),
        fallback=research,
    )
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["from the mirror", "writer: from degraded input"]
    assert calls["cached"] == 0
    assert ledger(final).path == ("primary", "secondary", "writer")


@pytest.mark.parametrize("mode", MODES)
async def test_no_failure_means_no_fallback_and_no_degradation(mode: str) -> None:
    calls = Calls()
    graph = chain_graph(
        mode,
        calls,
        primary=calls.works("primary"),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached"),
    )
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["primary", "writer"]
    assert ledger(final).degraded is False
    assert ledger(final).fallbacks == ()


def test_a_top_level_failure_is_recorded_at_depth_1() -> None:
    """The ledger's ``depth`` is the deepest graph level a recorded node ran at: 1 for
    a graph without subgraphs, fallback or not."""
    calls = Calls()
    graph = chain_graph(
        "sync",
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached"),
    )
    final = graph.invoke({"log": []})
    assert ledger(final).path == ("primary", "secondary", "writer")
    assert ledger(final).depth == 1


# ---- the chain runs out ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_exhausted_chain_raises_the_last_error(mode: str) -> None:
    calls = Calls()
    last = RuntimeError("cache empty")
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.fails("secondary", ConnectionError("down too")),
        cached=calls.fails("cached", last),
        fallback=fallback_to("secondary", "cached"),
        on_cached=True,
    )
    with pytest.raises(RuntimeError, match="cache empty") as info:
        await run(graph, mode, {"log": []})
    # the same error, re-raised as a copy (see test_a_surfaced_error_stays_on_the_checkpoint)
    assert type(info.value) is type(last)
    assert info.value.args == last.args
    assert calls.counts == {"primary": 1, "secondary": 1, "cached": 1}


@pytest.mark.parametrize("mode", MODES)
async def test_exhausted_chain_goes_to_the_dead_letter_sink(mode: str) -> None:
    calls = Calls()
    sunk: list[tuple[NodeError, RunnableConfig, list[str]]] = []

    def sink(state: State, error: NodeError, config: RunnableConfig) -> Command[Any]:
        sunk.append((error, config, list(state.get("log", []))))
        return Command(goto="apologise", update={"note": f"dead-lettered {error.node}"})

    def apologise(state: State) -> dict[str, Any]:
        return {"log": [f"sorry (degraded={ledger(state).degraded})"]}

    last = RuntimeError("cache empty")
    fallback = fallback_to("cached", dead_letter=sink)
    builder = StateGraph(State)
    builder.add_node(
        "primary",
        guard(node_pair(calls.fails("primary", ConnectionError("down")), mode)),
        error_handler=handler(fallback),
    )
    builder.add_node(
        "cached",
        guard(node_pair(calls.fails("cached", last), mode)),
        error_handler=handler(fallback),
    )
    builder.add_node("apologise", apologise)
    builder.add_edge(START, "primary")
    graph = builder.compile()
    final = await run(graph, mode, {"log": ["question"]})

    assert len(sunk) == 1
    error, config, seen_log = sunk[0]
    assert isinstance(error, NodeError)
    assert error.node == "cached"
    assert error.error is last
    assert config["metadata"]["langgraph_node"] == "__error_handler__cached"
    assert seen_log == ["question"]
    # the sink's Command was followed, with the sink's own update
    assert final["log"] == ["question", "sorry (degraded=True)"]
    assert final["note"] == "dead-lettered cached"
    # and the failure was still recorded
    view = ledger(final)
    assert view.degraded is True
    assert view.failed == ("cached", "primary")
    cached = view.outcome("cached")
    assert cached is not None
    assert cached["status"] == "failed"
    assert cached["error"] == "RuntimeError: cache empty"
    assert cached["error_code"] == "UNEXPECTED_ERROR"
    assert view.path == ("primary", "cached")


@pytest.mark.parametrize("returned", ["dict", "none"])
def test_a_dead_letter_sink_may_return_a_plain_update(returned: str) -> None:
    seen: list[Runtime[Any]] = []

    def sink(state: State, error: NodeError, runtime: Runtime[Any]) -> dict[str, Any] | None:
        seen.append(runtime)
        return {"note": "parked"} if returned == "dict" else None

    graph = primary_graph(
        "sync",
        guard(node_pair(Calls().fails("primary", ConnectionError("down")), "sync")),
        fallback_to("cached", dead_letter=sink, breakers={"cached": "cache"}),
        targets={"cached": Calls().works("cached")},
    )
    CircuitBreaker("cache").force_open()  # the only target is skipped: straight to the sink
    final = graph.invoke({"log": []})
    assert len(seen) == 1
    assert isinstance(seen[0], Runtime)
    assert final.get("note") == ("parked" if returned == "dict" else None)
    assert final["log"] == []
    view = ledger(final)
    assert view.degraded is True
    assert view.status("primary") == "failed"
    assert view.status("cached") == "skipped"


async def test_an_async_dead_letter_sink_is_awaited() -> None:
    """LangGraph error handlers may be async; an async sink is accepted by the factory,
    so its result must be awaited under ``ainvoke`` (or the factory must refuse it)."""

    async def sink(state: State, error: NodeError) -> Command[Any]:
        return Command(goto="apologise")

    graph = primary_graph(
        "async",
        guard(node_pair(Calls().fails("primary", ConnectionError("down")), "async")),
        fallback_to("cached", dead_letter=sink, breakers={"cached": "cache"}),
        targets={"cached": Calls().works("cached"), "apologise": Calls().works("apologise")},
    )
    CircuitBreaker("cache").force_open()
    try:
        final = await graph.ainvoke({"log": []})
    except Exception as exc:  # keep the un-awaited coroutine out of the report
        outcome: Any = repr(exc)
    else:
        outcome = final["log"]
    close_unawaited(sink)
    assert outcome == ["apologise"]


def close_unawaited(fn: Callable[..., Any]) -> None:
    """Close coroutines of ``fn`` that nobody awaited, so that their "never awaited"
    warning cannot fail some later test."""
    gc.collect()
    for obj in gc.get_objects():
        if inspect.iscoroutine(obj) and obj.cr_code is fn.__code__:
            obj.close()


def test_dead_letter_must_take_the_error() -> None:
    def no_error(state: State, err: NodeError) -> None:
        return None

    with pytest.raises(TypeError, match="named `error`"):
        fallback_to("cached", dead_letter=no_error)
    with pytest.raises(TypeError, match="named `error`"):
        fallback_to("cached", dead_letter=lambda state, exc: None)
    with pytest.raises(TypeError, match="dead_letter must be"):
        fallback_to("cached", dead_letter="sink")  # type: ignore[arg-type]


# ---- which errors fall back ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("kwargs", "error", "falls_back"),
    [
        ({"on": ConnectionError}, ConnectionError("down"), True),
        ({"on": ConnectionError}, MirrorDown("mirror down"), True),  # subclasses too
        ({"on": ConnectionError}, ValueError("bad query"), False),
        ({"on": (ConnectionError, TimeoutError)}, TimeoutError("slow"), True),
        ({"raise_on": PermissionError}, PermissionError("forbidden"), False),
        ({"raise_on": PermissionError}, OSError("disk"), True),
        ({"on": OSError, "raise_on": PermissionError}, PermissionError("forbidden"), False),
        ({"on": lambda e: "retryable" in str(e)}, ValueError("retryable glitch"), True),
        ({"on": lambda e: "retryable" in str(e)}, ValueError("fatal"), False),
        ({"on": [KeyError, lambda e: "glitch" in str(e)]}, ValueError("glitch"), True),
        ({"raise_on": lambda e: "fatal" in str(e)}, RuntimeError("fatal crash"), False),
        ({"raise_on": lambda e: "fatal" in str(e)}, RuntimeError("hiccup"), True),
    ],
)
async def test_classification(
    mode: str, kwargs: dict[str, Any], error: Exception, falls_back: bool
) -> None:
    calls = Calls()
    graph = primary_graph(
        mode,
        guard(node_pair(calls.fails("primary", error), mode)),
        fallback_to("cached", **kwargs),
        targets={"cached": calls.works("cached")},
    )
    if falls_back:
        final = await run(graph, mode, {"log": []})
        assert final["log"] == ["cached"]
        assert ledger(final).status("primary") == "failed"
    else:
        with pytest.raises(type(error)) as info:
            await run(graph, mode, {"log": []})
        assert type(info.value) is type(error)
        assert info.value.args == error.args
        assert calls["cached"] == 0


def test_bad_matchers_are_refused_at_factory_time() -> None:
    with pytest.raises(TypeError, match=r"fallback_to\(on=...\)"):
        fallback_to("cached", on=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fallback_to\(raise_on=...\)"):
        fallback_to("cached", raise_on=[ValueError, "KeyError"])  # type: ignore[list-item]


# ---- open breakers ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_target_whose_breaker_is_open_is_skipped(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    calls = Calls()
    mirror = CircuitBreaker("secondary", clock=clock, store=store)
    mirror.force_open()
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached", breakers={"secondary": mirror}),
    )
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["cached", "writer: from degraded input"]
    assert calls["secondary"] == 0
    view = ledger(final)
    skipped = view.outcome("secondary")
    assert skipped is not None
    assert skipped["status"] == "skipped"
    assert skipped["error_code"] == "CIRCUIT_OPEN"
    # an outcome, not a visit: the skipped target never ran
    assert view.visits_of("secondary") == 0
    assert view.path == ("primary", "cached", "writer")
    assert view.status("primary") == "failed"
    assert mirror.snapshot().rejected_calls == 0  # skipped without asking for a permit


@pytest.mark.parametrize("mode", MODES)
async def test_the_process_wide_breaker_named_like_the_target_is_consulted(mode: str) -> None:
    calls = Calls()
    CircuitBreaker("secondary").force_open()  # default store, the node's own name
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached"),
    )
    final = await run(graph, mode, {"log": []})
    assert calls["secondary"] == 0
    assert final["log"] == ["cached", "writer: from degraded input"]
    assert ledger(final).status("secondary") == "skipped"


def test_a_breaker_given_by_name_is_looked_up_in_the_process_wide_store() -> None:
    calls = Calls()
    CircuitBreaker("mirror-api").force_open()
    graph = chain_graph(
        "sync",
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached", breakers={"secondary": "mirror-api"}),
    )
    final = graph.invoke({"log": []})
    assert calls["secondary"] == 0
    assert ledger(final).status("secondary") == "skipped"


def test_a_half_open_target_is_tried(store: InMemoryBreakerStore, clock: FakeClock) -> None:
    calls = Calls()
    mirror = CircuitBreaker(
        "mirror", BreakerPolicy(failure_threshold=1, recovery_timeout=30), clock=clock, store=store
    )
    with pytest.raises(ConnectionError):
        mirror.call(calls.fails("warm-up", ConnectionError("down")), {})
    assert mirror.state is BreakerState.OPEN
    fallback = fallback_to("secondary", "cached", breakers={"secondary": mirror})
    graph = chain_graph(
        "sync",
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback,
    )
    assert graph.invoke({"log": []})["log"][0] == "cached"
    assert calls["secondary"] == 0

    clock.advance(30)  # recovery timeout over: a trial is allowed
    assert mirror.state is BreakerState.HALF_OPEN
    assert graph.invoke({"log": []})["log"][0] == "secondary"
    assert calls["secondary"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_all_targets_open_surfaces_the_error(mode: str) -> None:
    calls = Calls()
    CircuitBreaker("secondary").force_open()
    CircuitBreaker("cached").force_open()
    boom = ConnectionError("down")
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", boom),
        secondary=calls.works("secondary"),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached"),
    )
    with pytest.raises(ConnectionError) as info:
        await run(graph, mode, {"log": []})
    assert type(info.value) is ConnectionError
    assert info.value.args == boom.args
    assert calls["secondary"] == calls["cached"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_primary_behind_an_open_breaker_is_recorded_as_skipped(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    calls = Calls()
    breaker = CircuitBreaker("search", clock=clock, store=store)
    breaker.force_open()
    graph = primary_graph(
        mode,
        guard(node_pair(calls.works("primary"), mode), breaker=breaker),
        fallback_to("cached"),
        targets={"cached": calls.works("cached")},
    )
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["cached"]
    assert calls["primary"] == 0
    outcome = ledger(final).outcome("primary")
    assert outcome is not None
    assert outcome["status"] == "skipped"
    assert outcome["error_code"] == "CIRCUIT_OPEN"
    assert outcome["error"] is not None
    assert outcome["error"].startswith("CircuitOpenError: circuit 'search' is open")
    assert outcome["fallback_used"] is True
    assert ledger(final).degraded is True


# ---- attempts and duration -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_attempts_and_duration_come_from_the_guard(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(
        "search", BreakerPolicy(failure_threshold=10), clock=clock, store=store
    )
    attempts: list[int] = []

    def body(state: State) -> dict[str, Any]:
        attempts.append(1)
        clock.advance(0.25)  # each attempt "takes" 250 ms on the breaker's clock
        raise ConnectionError("down")

    graph = primary_graph(
        mode,
        guard(node_pair(body, mode), breaker=breaker),
        fallback_to("cached"),
        targets={"cached": Calls().works("cached")},
        retry_policy=RetryPolicy(max_attempts=3, initial_interval=0, jitter=False),
    )
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["cached"]
    assert len(attempts) == 3
    outcome = ledger(final).outcome("primary")
    assert outcome is not None
    assert outcome["attempts"] == 3
    assert outcome["duration_ms"] == pytest.approx(250.0)
    assert breaker.snapshot().consecutive_failures == 3


# ---- resume: the error comes back as text ----------------------------------------------------


def flaky_update(crashes: list[int]) -> Callable[[Any, BaseException], dict[str, Any]]:
    """An ``update=`` callback that raises on its first call only."""

    def update(state: Any, exc: BaseException) -> dict[str, Any]:
        crashes.append(1)
        if len(crashes) == 1:
            raise RuntimeError("handler crashed")
        return {"note": f"fell back after {type(exc).__name__}"}

    return update


def observed(
    fallback: Callable[..., Any], seen: list[Any], *, crash_first: bool = False
) -> Callable[..., Any]:
    """The fallback handler, recording the raw ``NodeError.error`` LangGraph hands it;
    with ``crash_first``, the first call crashes before it reaches the fallback."""

    def observe(
        state: State, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Any:
        seen.append(error.error)
        if crash_first and len(seen) == 1:
            raise RuntimeError("handler crashed")
        return fallback(state, error, config, runtime)

    return observe


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("error_type", [ConnectionError, MirrorDown])
async def test_after_a_resume_the_error_is_text_and_still_falls_back(
    mode: str, error_type: type[ConnectionError]
) -> None:
    calls = Calls()
    seen: list[Any] = []
    crashes: list[int] = []
    fallback = fallback_to("cached", on=ConnectionError, update=flaky_update(crashes))
    graph = primary_graph(
        mode,
        guard(node_pair(calls.fails("primary", error_type("search down")), mode)),
        observed(fallback, seen),
        targets={"cached": calls.works("cached")},
        checkpointer=InMemorySaver(),
    )
    config = thread(f"resume-{mode}-{error_type.__name__}")
    with pytest.raises(RuntimeError, match="handler crashed"):
        await run(graph, mode, {"log": []}, config)
    assert calls["cached"] == 0

    final = await run(graph, mode, None, config)
    assert calls["primary"] == 1  # the resume went to the handler, not the node
    assert [type(e) for e in seen] == [error_type, str]
    assert seen[1] == f"{error_type.__name__}('search down')"
    assert final["log"] == ["cached"]
    assert final["note"] == f"fell back after {error_type.__name__}"  # revived by class
    outcome = ledger(final).outcome("primary")
    assert outcome is not None
    assert outcome["status"] == "failed"
    assert outcome["error_code"] == "CONNECTION"
    assert outcome["error"] == f"{error_type.__name__}: search down"
    assert ledger(final).visits_of("primary") == 1


def test_after_a_resume_from_sqlite_the_error_is_text_and_still_falls_back(
    tmp_path: Any,
) -> None:
    calls = Calls()
    seen: list[Any] = []
    crashes: list[int] = []
    fallback = fallback_to("cached", on=ConnectionError, update=flaky_update(crashes))
    with SqliteSaver.from_conn_string(str(tmp_path / "runs.sqlite")) as saver:
        graph = primary_graph(
            "sync",
            guard(node_pair(calls.fails("primary", ConnectionError("svc down")), "sync")),
            observed(fallback, seen),
            targets={"cached": calls.works("cached")},
            checkpointer=saver,
        )
        config = thread("sqlite")
        with pytest.raises(RuntimeError, match="handler crashed"):
            graph.invoke({"log": []}, config)
        final = graph.invoke(None, config)
    assert seen[1] == "ConnectionError('svc down')"
    assert final["log"] == ["cached"]
    assert ledger(final).status("primary") == "failed"


@pytest.mark.parametrize("mode", MODES)
async def test_after_a_resume_a_surfacing_error_is_raised_as_its_own_type(mode: str) -> None:
    calls = Calls()
    seen: list[Any] = []
    original = ConnectionError("svc down")
    graph = primary_graph(
        mode,
        guard(node_pair(calls.fails("primary", original), mode)),
        observed(fallback_to("cached", on=ValueError), seen, crash_first=True),
        targets={"cached": calls.works("cached")},
        checkpointer=InMemorySaver(),
    )
    config = thread(f"surface-{mode}")
    with pytest.raises(RuntimeError, match="handler crashed"):
        await run(graph, mode, {"log": []}, config)
    with pytest.raises(ConnectionError, match="svc down") as info:
        await run(graph, mode, None, config)
    # rebuilt from "ConnectionError('svc down')": the same type, not a stand-in
    assert type(info.value) is ConnectionError
    assert info.value is not original
    assert [type(e) for e in seen] == [ConnectionError, str]
    assert calls["cached"] == 0
    assert calls["primary"] == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["not matched by on=", "chain exhausted"])
async def test_a_surfaced_error_stays_on_the_checkpoint(mode: str, how: str) -> None:
    """As without a handler, the failed step stays pending on the thread, so a resume
    retries it instead of reporting the run as finished."""
    calls = Calls()
    if how == "not matched by on=":
        fallback = fallback_to("cached", on=ValueError)
        cached = calls.works("cached")
    else:
        fallback = fallback_to("cached")
        cached = calls.fails("cached", ConnectionError("cache down"))
    builder = StateGraph(State)
    builder.add_node(
        "primary",
        guard(node_pair(calls.fails("primary", ConnectionError("svc down")), mode)),
        error_handler=handler(fallback),
    )
    builder.add_node("cached", guard(node_pair(cached, mode)), error_handler=handler(fallback))
    builder.add_edge(START, "primary")
    builder.add_edge("primary", END)
    builder.add_edge("cached", END)
    graph = builder.compile(checkpointer=InMemorySaver())
    config = thread(f"kept-{mode}-{how}")
    with pytest.raises(ConnectionError):
        await run(graph, mode, {"log": []}, config)

    snapshot = graph.get_state(config)
    assert snapshot.next != ()  # the run failed: it is not finished
    assert any(task.error for task in snapshot.tasks)
    with pytest.raises(ConnectionError):
        await run(graph, mode, None, config)


# ---- interrupts are control flow, not failures ----------------------------------------------


@pytest.mark.parametrize("mode", CONTEXT_MODES)
async def test_an_interrupt_is_not_a_failure(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    calls = Calls()
    breaker = CircuitBreaker(
        "approver", BreakerPolicy(failure_threshold=1), clock=clock, store=store
    )

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"log": [f"answer:{answer}"]}

    graph = primary_graph(
        mode,
        guard(node_pair(ask, mode), breaker=breaker),
        fallback_to("cached"),
        targets={"cached": calls.works("cached")},
        checkpointer=InMemorySaver(),
    )
    config = thread(f"interrupt-{mode}")
    first = await run(graph, mode, {"log": []}, config)
    assert "__interrupt__" in first
    assert first["__interrupt__"][0].value == "approve?"
    assert calls["cached"] == 0
    assert "resilience" not in first or not ledger(first).degraded
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot().consecutive_failures == 0

    final = await run(graph, mode, Command(resume="yes"), config)
    assert final["log"] == ["answer:yes"]
    assert calls["cached"] == 0
    assert ledger(final).status("primary") == "success"
    assert ledger(final).degraded is False
    assert breaker.state is BreakerState.CLOSED


# ---- bad input ---------------------------------------------------------------------------------


def test_factory_refuses_bad_targets() -> None:
    with pytest.raises(ValueError, match="at least one target"):
        fallback_to()
    with pytest.raises(ValueError, match="names a target twice"):
        fallback_to("a", "b", "a")
    with pytest.raises(ValueError, match="END is not a fallback"):
        fallback_to(END)
    with pytest.raises(ValueError, match="END is not a fallback"):
        fallback_to("cached", END)
    with pytest.raises(TypeError, match="targets are node names"):
        fallback_to(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="targets are node names"):
        fallback_to("")
    with pytest.raises(ValueError, match="'other', which is not a target"):
        fallback_to("cached", breakers={"other": "svc"})


@pytest.mark.parametrize("mode", MODES)
async def test_a_target_that_is_not_a_node_fails_the_first_failing_step(mode: str) -> None:
    calls = Calls()
    graph = primary_graph(
        mode,
        guard(node_pair(calls.fails("primary", ConnectionError("down")), mode)),
        fallback_to("cached", "cahced"),
        targets={"cached": calls.works("cached")},
    )
    with pytest.raises(ValueError, match="'cahced' is not a node of this graph"):
        await run(graph, mode, {"log": []})
    assert calls["primary"] == 1
    assert calls["cached"] == 0


def test_an_unknown_target_is_not_checked_while_nothing_fails() -> None:
    calls = Calls()
    graph = primary_graph(
        "sync",
        guard(node_pair(calls.works("primary"), "sync")),
        fallback_to("nowhere"),
        targets={},
    )
    assert graph.invoke({"log": []})["log"] == ["primary"]


# ---- without the ledger ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_works_on_a_state_without_the_ledger(mode: str) -> None:
    calls = Calls()
    graph = chain_graph(
        mode,
        calls,
        primary=calls.fails("primary", ConnectionError("down")),
        secondary=calls.fails("secondary", ConnectionError("down too")),
        cached=calls.works("cached"),
        fallback=fallback_to("secondary", "cached", update=lambda state, exc: {"note": str(exc)}),
        state=PlainState,
    )
    final = await run(graph, mode, {"log": []})
    assert final == {"log": ["cached", "writer"], "note": "down too"}
    assert "resilience" not in final
    assert calls.counts == {"primary": 1, "secondary": 1, "cached": 1, "writer": 1}


# ---- update= ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_update_is_written_with_the_route(mode: str) -> None:
    calls = Calls()
    received: list[tuple[list[str], BaseException]] = []

    def note(state: State, exc: BaseException) -> dict[str, Any]:
        received.append((list(state["log"]), exc))
        return {"note": f"answered from the cache ({type(exc).__name__})", "log": ["noted"]}

    boom = ConnectionError("down")
    graph = primary_graph(
        mode,
        guard(node_pair(calls.fails("primary", boom), mode)),
        fallback_to("cached", update=note),
        targets={"cached": calls.works("cached")},
    )
    final = await run(graph, mode, {"log": ["question"]})
    assert received == [(["question"], boom)]
    assert final["note"] == "answered from the cache (ConnectionError)"
    assert final["log"] == ["question", "noted", "cached"]
    assert ledger(final).status("primary") == "failed"  # the ledger rides along


# ---- a handler that runs twice (langgraph#9002) ---------------------------------------------


def test_a_handler_run_twice_on_resume_records_the_failure_once() -> None:
    """Another task of the same superstep fails without a handler: the run raises, and on
    resume LangGraph runs the handler again although its write was committed."""
    handler_runs: list[int] = []
    handled = threading.Event()
    first_b = [True]

    def a(state: State) -> dict[str, Any]:
        raise ConnectionError("a down")

    def b(state: State) -> dict[str, Any]:
        if first_b[0]:
            first_b[0] = False
            assert handled.wait(10)  # fail only once a's handler has run
            raise ValueError("b failed once")
        return {"log": ["b"]}

    def note(state: State, exc: BaseException) -> dict[str, Any]:
        handler_runs.append(1)
        handled.set()
        return {"note": "fell back"}

    builder = StateGraph(State)
    builder.add_node("a", guard(a), error_handler=handler(fallback_to("cached", update=note)))
    builder.add_node("b", guard(b))
    builder.add_node("cached", guard(node_pair(Calls().works("cached"), "sync")))
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = thread("9002")
    with pytest.raises(ValueError, match="b failed once"):
        graph.invoke({"log": []}, config)
    assert handler_runs == [1]

    final = graph.invoke(None, config)
    assert len(handler_runs) == 2  # LangGraph re-ran it
    assert sorted(final["log"]) == ["b", "cached"]
    view = ledger(final)
    assert view.visits_of("a") == 1
    assert view.path.count("a") == 1
    assert view.status("a") == "failed"
    assert view.visits_of("cached") == 1


# ---- route_on_outcome ------------------------------------------------------------------------


def review_graph(
    mode: str,
    research: Any,
    *,
    state: type = State,
    upstream: Body | None = None,
    **routes: str,
) -> Any:
    """[fetch ->] research -> review -> {write | apologise | ...}; research's failures
    are recorded by fallback_to("review")."""
    builder = StateGraph(state)
    builder.add_node("research", research, error_handler=handler(fallback_to("review")))
    # review is guarded: its visit starts the ledger even when research recorded nothing
    builder.add_node("review", guard(node_pair(lambda s: {"log": ["review"]}, mode)))
    for name in ("write", "apologise", "caveat", "later"):
        builder.add_node(name, node_pair(Calls().works(name), mode))
        builder.add_edge(name, END)
    if upstream is None:
        builder.add_edge(START, "research")
    else:
        builder.add_node(
            "fetch",
            guard(node_pair(upstream, mode)),
            error_handler=handler(fallback_to("fetch_cache")),
        )
        builder.add_node("fetch_cache", node_pair(Calls().works("fetch_cache"), mode))
        builder.add_edge(START, "fetch")
        builder.add_edge("fetch", "research")
        builder.add_edge("fetch_cache", "research")
    builder.add_edge("research", "review")
    routes.setdefault("success", "write")
    routes.setdefault("failed", "apologise")
    builder.add_conditional_edges("review", route_on_outcome("research", **routes))
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_takes_the_failed_route(mode: str) -> None:
    graph = review_graph(mode, guard(node_pair(Calls().fails("r", ConnectionError("x")), mode)))
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["review", "apologise"]


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_takes_the_success_route(mode: str) -> None:
    graph = review_graph(mode, guard(node_pair(Calls().works("research"), mode)))
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["research", "review", "write"]


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_takes_the_degraded_route(mode: str) -> None:
    research = guard(node_pair(Calls().works("research"), mode))
    upstream = Calls().fails("fetch", ConnectionError("feed down"))
    graph = review_graph(mode, research, upstream=upstream, degraded="caveat")
    final = await run(graph, mode, {"log": []})
    assert final["log"] == ["fetch_cache", "research", "review", "caveat"]
    assert ledger(final).status("research") == "success"

    # without degraded=, a degraded success is still a success
    graph = review_graph(mode, research, upstream=upstream)
    assert (await run(graph, mode, {"log": []}))["log"][-1] == "write"


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_sends_skipped_to_the_failed_route_by_default(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker("research", clock=clock, store=store)
    breaker.force_open()
    research = guard(node_pair(Calls().works("research"), mode), breaker=breaker)
    final = await run(review_graph(mode, research), mode, {"log": []})
    assert ledger(final).status("research") == "skipped"
    assert final["log"] == ["review", "apologise"]

    final = await run(review_graph(mode, research, skipped="later"), mode, {"log": []})
    assert final["log"] == ["review", "later"]


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_without_an_outcome_names_the_node(mode: str) -> None:
    unguarded = node_pair(Calls().works("research"), mode)  # nothing records its visits
    with pytest.raises(LookupError, match="no outcome for 'research'") as info:
        await run(review_graph(mode, unguarded), mode, {"log": []})
    assert not isinstance(info.value, LedgerMissingError)


@pytest.mark.parametrize("mode", MODES)
async def test_route_on_outcome_without_the_ledger(mode: str) -> None:
    research = guard(node_pair(Calls().works("research"), mode))
    with pytest.raises(LedgerMissingError, match="ResilienceState"):
        await run(review_graph(mode, research, state=PlainState), mode, {"log": []})


def test_route_on_outcome_statuses_and_defaults() -> None:
    route = route_on_outcome("research", success="write", failed="apologise")

    def state(status: str, *, degraded: bool = False) -> dict[str, Any]:
        return {"resilience": {"outcomes": {"research": {"status": status}}, "degraded": degraded}}

    assert route(state("success")) == "write"
    assert route(state("success", degraded=True)) == "write"
    assert route(state("partial")) == "write"  # partial defaults to success
    assert route(state("failed")) == "apologise"
    assert route(state("skipped")) == "apologise"  # skipped defaults to failed

    full = route_on_outcome(
        "research",
        success="write",
        failed="apologise",
        partial="patch",
        skipped="later",
        degraded="caveat",
    )
    assert full(state("success", degraded=True)) == "caveat"
    assert full(state("success")) == "write"
    assert full(state("partial", degraded=True)) == "patch"
    assert full(state("skipped")) == "later"
    assert full(state("failed", degraded=True)) == "apologise"


def test_route_on_outcome_refuses_bad_routes() -> None:
    with pytest.raises(TypeError, match=r"route_on_outcome\(success=...\)"):
        route_on_outcome("research", success=3, failed="apologise")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"route_on_outcome\(degraded=...\)"):
        route_on_outcome("research", success="write", failed="apologise", degraded="")
