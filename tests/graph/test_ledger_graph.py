"""The run's ledger (``ResilienceState``) as guarded nodes write it, in real StateGraphs."""

from __future__ import annotations

import asyncio
import itertools
import json
import operator
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict, cast

import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, RetryPolicy, Send

from langgraph_resilience import (
    BreakerPolicy,
    CircuitBreaker,
    FakeClock,
    InMemoryBreakerStore,
    LedgerMissingError,
    LoopPolicy,
    ResilienceState,
    fallback_to,
    guard,
    ledger,
    reset_ledger,
)
from tests.graph._helpers import MODES, run, thread


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]
    item: int
    rounds: int


class PlainState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    item: int
    rounds: int


def make_node(name: str, kind: str, body: Callable[[Any], Any] | None = None) -> Any:
    """A node appending ``name`` to the log: a sync or async function, or a runnable."""

    def sync_node(state: Any) -> Any:
        return body(state) if body is not None else {"log": [name]}

    async def async_node(state: Any) -> Any:
        return sync_node(state)

    sync_node.__name__ = async_node.__name__ = name
    if kind == "sync":
        return sync_node
    if kind == "async":
        return async_node
    return RunnableLambda(sync_node, afunc=async_node, name=name)


def linear(schema: type, names: list[str], kind: str, **guard_kwargs: Any) -> Any:
    builder = StateGraph(schema)
    for name in names:
        builder.add_node(name, guard(make_node(name, kind), **guard_kwargs))
    builder.add_edge(START, names[0])
    for before, after in itertools.pairwise(names):
        builder.add_edge(before, after)
    return builder.compile()


# ---- every successful visit is recorded ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "mode"),
    [
        ("sync", "sync"),
        ("sync", "async"),
        ("async", "async"),
        ("runnable", "sync"),
        ("runnable", "async"),
    ],
)
async def test_a_linear_graph_records_path_visits_and_outcomes(kind: str, mode: str) -> None:
    final = await run(linear(State, ["a", "b", "c"], kind), mode, {"log": []})

    assert final["log"] == ["a", "b", "c"]
    view = ledger(final)
    assert view.path == ("a", "b", "c")
    assert view.visits == {"a": 1, "b": 1, "c": 1}
    steps = final["resilience"]["steps"]
    assert len(set(steps)) == 3
    for name, step in zip(["a", "b", "c"], steps, strict=True):
        outcome = view.outcome(name)
        assert outcome is not None
        assert outcome["status"] == "success"
        assert outcome["attempts"] == 1
        assert outcome["duration_ms"] >= 0
        assert outcome["error"] is None
        assert outcome["error_code"] is None
        assert outcome["fallback_used"] is False
        assert outcome["step"] == step
    assert view.depth == 1
    assert view.limits == ()
    assert view.routes == {}
    assert view.degraded is False
    assert view.failed == ()


@pytest.mark.parametrize("mode", MODES)
async def test_duration_is_read_from_the_breakers_clock(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker("svc", BreakerPolicy(), clock=clock, store=store)

    def slow(state: State) -> dict[str, Any]:
        clock.advance(0.25)
        return {"log": ["slow"]}

    kind = "sync" if mode == "sync" else "async"
    builder = StateGraph(State)
    builder.add_node("slow", guard(make_node("slow", kind, slow), breaker=breaker))
    builder.add_edge(START, "slow")
    final = await run(builder.compile(), mode, {"log": []})
    outcome = ledger(final).outcome("slow")
    assert outcome is not None
    assert outcome["duration_ms"] == pytest.approx(250.0)


# ---- what nodes return -----------------------------------------------------------------


def return_shapes(schema: type, kind: str) -> Any:
    """Nodes returning None, a Command without update, a dict, a Command with a dict
    update and a goto, and a Command whose update is a list of tuples."""

    def nothing(state: Any) -> None:
        return None

    def jump(state: Any) -> Command[Any]:
        return Command(goto="as_dict")

    def as_dict(state: Any) -> dict[str, Any]:
        return {"log": ["dict"]}

    def as_command(state: Any) -> Command[Any]:
        return Command(update={"log": ["command"]}, goto="as_tuples")

    def as_tuples(state: Any) -> Command[Any]:
        return Command(update=[("log", ["tuples"])])

    def never(state: Any) -> dict[str, Any]:
        return {"log": ["never"]}

    builder = StateGraph(schema)
    for fn in (nothing, jump, as_dict, as_command, as_tuples, never):
        builder.add_node(fn.__name__, guard(make_node(fn.__name__, kind, fn)))
    builder.add_edge(START, "nothing")
    builder.add_edge("nothing", "jump")  # jump -> as_dict and as_command -> as_tuples: gotos
    builder.add_edge("as_dict", "as_command")
    builder.add_edge("as_tuples", END)
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_every_return_shape_is_recorded_and_gotos_still_route(mode: str) -> None:
    final = await run(return_shapes(State, mode), mode, {"log": []})

    assert final["log"] == ["dict", "command", "tuples"]
    view = ledger(final)
    assert view.path == ("nothing", "jump", "as_dict", "as_command", "as_tuples")
    assert set(view.visits.values()) == {1}
    assert "never" not in view.visits


@pytest.mark.parametrize("mode", MODES)
async def test_a_node_returning_its_whole_state_is_not_counted_twice(mode: str) -> None:
    class Doc(ResilienceState, total=False):
        text: str

    def draft(state: Doc) -> dict[str, Any]:
        return {"text": "draft"}

    def echo(state: Doc) -> Doc:
        return state  # the whole state, ledger included

    def polish(state: Doc) -> dict[str, Any]:
        return {"text": state["text"] + "!"}

    builder = StateGraph(Doc)
    for fn in (draft, echo, polish):
        builder.add_node(fn.__name__, guard(make_node(fn.__name__, mode, fn)))
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "echo")
    builder.add_edge("echo", "polish")
    final = await run(builder.compile(), mode, {"text": ""})

    assert final["text"] == "draft!"
    view = ledger(final)
    assert view.path == ("draft", "echo", "polish")
    assert view.visits == {"draft": 1, "echo": 1, "polish": 1}
    assert len(final["resilience"]["steps"]) == 3


@pytest.mark.parametrize("mode", MODES)
async def test_guarded_graphs_work_unchanged_without_the_ledger(mode: str) -> None:
    with_ledger = await run(return_shapes(State, mode), mode, {"log": []})
    plain = await run(return_shapes(PlainState, mode), mode, {"log": []})

    assert "resilience" not in plain
    assert plain == {k: v for k, v in with_ledger.items() if k != "resilience"}
    assert plain["log"] == ["dict", "command", "tuples"]

    plain_linear = await run(linear(PlainState, ["a", "b"], mode), mode, {"log": []})
    assert plain_linear == {"log": ["a", "b"]}


# ---- parallel branches -----------------------------------------------------------------


def diamond(mode: str, finishes_first: str) -> Any:
    """a -> (b, c) -> d, where ``finishes_first`` of b and c always returns first."""
    if mode == "sync":
        done = threading.Event()

        def branch(name: str) -> Callable[[State], dict[str, Any]]:
            def node(state: State) -> dict[str, Any]:
                if name == finishes_first:
                    done.set()
                else:
                    assert done.wait(timeout=10)
                return {"log": [name]}

            return node

        b, c = branch("b"), branch("c")
    else:
        adone = asyncio.Event()

        def abranch(name: str) -> Callable[[State], Any]:
            async def node(state: State) -> dict[str, Any]:
                if name == finishes_first:
                    adone.set()
                else:
                    await asyncio.wait_for(adone.wait(), timeout=10)
                return {"log": [name]}

            return node

        b, c = abranch("b"), abranch("c")
    builder = StateGraph(State)
    builder.add_node("a", guard(make_node("a", mode)))
    builder.add_node("b", guard(b))
    builder.add_node("c", guard(c))
    builder.add_node("d", guard(make_node("d", mode)))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge(["b", "c"], "d")
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_parallel_branches_are_recorded_in_a_deterministic_order(mode: str) -> None:
    paths = set()
    for finishes_first in ["b", "c"] * 5:
        final = await run(diamond(mode, finishes_first), mode, {"log": []})
        view = ledger(final)
        assert view.visits == {"a": 1, "b": 1, "c": 1, "d": 1}
        assert view.outcome("b") is not None
        assert view.outcome("c") is not None
        paths.add(view.path)
    assert len(paths) == 1  # whichever branch finished first
    (path,) = paths
    assert path[0] == "a"
    assert set(path[1:3]) == {"b", "c"}
    assert path[3] == "d"


@pytest.mark.parametrize("mode", MODES)
async def test_send_fan_out_with_the_state_records_every_visit(mode: str) -> None:
    items: list[int] = []

    def worker(state: State) -> dict[str, Any]:
        items.append(state["item"])
        return {"log": [f"item {state['item']}"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("worker", dict(state, item=i)) for i in range(3)]

    builder = StateGraph(State)
    builder.add_node("plan", guard(make_node("plan", mode)))
    builder.add_node("worker", guard(make_node("worker", mode, worker)))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["worker"])
    final = await run(builder.compile(), mode, {"log": []})

    assert sorted(items) == [0, 1, 2]
    view = ledger(final)
    assert view.visits == {"plan": 1, "worker": 3}
    assert view.path == ("plan", "worker", "worker", "worker")
    assert len(set(final["resilience"]["steps"])) == 4


@pytest.mark.parametrize("mode", MODES)
async def test_send_args_without_the_ledger_are_not_recorded(mode: str) -> None:
    # guard() records a visit only when the node's input has the ledger; a Send arg
    # is the node's whole input
    items: list[int] = []

    def worker(state: State) -> dict[str, Any]:
        items.append(state["item"])
        return {"log": [f"item {state['item']}"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("worker", {"item": i}) for i in range(3)]

    builder = StateGraph(State)
    builder.add_node("plan", guard(make_node("plan", mode)))
    builder.add_node("worker", guard(make_node("worker", mode, worker)))
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", fan_out, ["worker"])
    final = await run(builder.compile(), mode, {"log": []})

    assert sorted(items) == [0, 1, 2]  # the workers ran...
    assert sorted(final["log"]) == ["item 0", "item 1", "item 2", "plan"]
    assert ledger(final).visits == {"plan": 1}  # ...unrecorded


# ---- subgraphs -------------------------------------------------------------------------


def inner_graph(mode: str) -> Any:
    return linear(State, ["inner_1", "inner_2"], mode)


@pytest.mark.parametrize("mode", MODES)
async def test_subgraph_visits_reach_the_parent_ledger_once(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("before", guard(make_node("before", mode)))
    builder.add_node("team", inner_graph(mode))
    builder.add_node("after", guard(make_node("after", mode)))
    builder.add_edge(START, "before")
    builder.add_edge("before", "team")
    builder.add_edge("team", "after")
    final = await run(builder.compile(), mode, {"log": []})

    view = ledger(final)
    # "before" flowed into the subgraph and back out in its whole ledger: still once
    assert view.path == ("before", "inner_1", "inner_2", "after")
    assert view.visits == {"before": 1, "inner_1": 1, "inner_2": 1, "after": 1}
    assert len(set(final["resilience"]["steps"])) == 4
    assert view.depth == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_subgraph_run_twice_counts_each_pass(mode: str) -> None:
    def count(state: State) -> dict[str, Any]:
        return {"rounds": state.get("rounds", 0) + 1}

    def again(state: State) -> str:
        return "team" if state["rounds"] < 2 else END

    builder = StateGraph(State)
    builder.add_node("team", inner_graph(mode))
    builder.add_node("count", guard(make_node("count", mode, count)))
    builder.add_edge(START, "team")
    builder.add_edge("team", "count")
    builder.add_conditional_edges("count", again, ["team", END])
    final = await run(builder.compile(), mode, {"rounds": 0})

    view = ledger(final)
    assert final["rounds"] == 2
    assert view.visits == {"inner_1": 2, "inner_2": 2, "count": 2}
    assert view.path == ("inner_1", "inner_2", "count") * 2


# ---- LangGraph's RetryPolicy ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_attempts_under_retry_policy_are_recorded(mode: str) -> None:
    calls: list[int] = []

    def flaky(state: State) -> dict[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return {"log": ["ok"]}

    retry = RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False)
    builder = StateGraph(State)
    builder.add_node("flaky", guard(make_node("flaky", mode, flaky)), retry_policy=retry)
    builder.add_edge(START, "flaky")
    final = await run(builder.compile(), mode, {"log": []})

    assert len(calls) == 3
    assert final["log"] == ["ok"]
    view = ledger(final)
    assert view.visits == {"flaky": 1}
    outcome = view.outcome("flaky")
    assert outcome is not None
    assert (outcome["status"], outcome["attempts"]) == ("success", 3)


# ---- checkpoints -------------------------------------------------------------------------

STRICT_SCRIPT = textwrap.dedent(
    """
    import json, operator, sys
    from typing import Annotated

    from langgraph.checkpoint.serde import _msgpack
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import START, StateGraph

    from langgraph_resilience import (
        LoopPolicy, ResilienceState, guard, ledger, loop_guard,
    )

    assert _msgpack.STRICT_MSGPACK_ENABLED
    phase, db = sys.argv[1], sys.argv[2]

    class State(ResilienceState, total=False):
        log: Annotated[list[str], operator.add]

    def supervisor(state):
        return {"log": ["supervisor"]}

    def worker(state):
        if phase == "run" and ledger(state).visits_of("worker") == 1:
            raise ConnectionError("worker crashed")
        return {"log": ["worker"]}

    def always_worker(state):
        return "worker"

    def plain(value):
        if type(value) is dict:
            return all(type(k) is str and plain(v) for k, v in value.items())
        if type(value) is list:
            return all(plain(v) for v in value)
        return type(value) in (str, int, float, bool, type(None))

    builder = StateGraph(State)
    builder.add_node("supervisor", guard(supervisor))
    builder.add_node("worker", guard(worker))
    builder.add_edge(START, "supervisor")
    builder.add_edge("worker", "supervisor")
    builder.add_conditional_edges(
        "supervisor", loop_guard(always_worker, policy=LoopPolicy(max_visits_per_node=3))
    )
    with SqliteSaver.from_conn_string(db) as saver:
        graph = builder.compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "strict"}}
        result = None
        if phase == "run":
            try:
                graph.invoke({"log": []}, config)
            except ConnectionError:
                pass
        elif phase == "resume":
            result = graph.invoke(None, config)["resilience"]
        stored = graph.get_state(config).values["resilience"]
    print(json.dumps({"stored": stored, "result": result, "plain": plain(stored)}))
    """
)


def run_strict(phase: str, db: Path) -> dict[str, Any]:
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    done = subprocess.run(
        [sys.executable, "-c", STRICT_SCRIPT, phase, str(db)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Deserializing unregistered type" not in done.stderr
    assert "Blocked deserialization" not in done.stderr
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_the_ledger_round_trips_in_strict_msgpack_mode(tmp_path: Path) -> None:
    db = tmp_path / "strict.sqlite"

    crashed = run_strict("run", db)  # fails at the worker's second visit
    assert crashed["plain"]
    assert crashed["stored"]["visits"] == {"supervisor": 2, "worker": 1}
    assert crashed["stored"]["routes"] == {"worker": 2}

    resumed = run_strict("resume", db)  # a new process: read, resume, write
    assert resumed["plain"]
    assert resumed["stored"] == resumed["result"]
    stored = resumed["stored"]
    # the crashed run's visits were kept as they were
    assert stored["steps"][:3] == crashed["stored"]["steps"]
    assert stored["visits"] == {"supervisor": 4, "worker": 3}
    assert stored["path"] == ["supervisor", "worker"] * 3 + ["supervisor"]
    assert [(r["node"], r["limit"], r["count"]) for r in stored["limits"]] == [
        ("worker", "max_visits_per_node", 3)
    ]

    reread = run_strict("read", db)  # a third process only reads the checkpoint
    assert reread["plain"]
    assert reread["stored"] == stored


@pytest.mark.parametrize("mode", MODES)
async def test_reset_ledger_starts_a_new_request_afresh(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("answer", guard(make_node("answer", mode)))
    builder.add_edge(START, "answer")
    compiled = builder.compile(checkpointer=InMemorySaver())

    keep = thread("keep")
    await run(compiled, mode, {"log": []}, keep)
    kept = await run(compiled, mode, {"log": []}, keep)
    assert ledger(kept).visits == {"answer": 2}  # the thread's ledger accumulates

    fresh = thread("fresh")
    first = await run(compiled, mode, {"log": [], **reset_ledger()}, fresh)  # a new thread
    assert ledger(first).visits == {"answer": 1}
    again = await run(compiled, mode, {"log": [], **reset_ledger()}, fresh)
    assert ledger(again).visits == {"answer": 1}
    assert ledger(again).path == ("answer",)
    assert ledger(again).outcome("answer") != ledger(first).outcome("answer")  # new step


def test_ledger_of_a_state_without_the_key_names_resilience_state() -> None:
    with pytest.raises(LedgerMissingError, match="ResilienceState") as info:
        ledger({"question": "?"})
    assert isinstance(info.value, LookupError)
    with pytest.raises(LedgerMissingError, match="ResilienceState"):
        ledger({"resilience": None})
    assert ledger({"resilience": {}}).visits == {}


class Narrow(TypedDict, total=False):
    """A node's own input schema, without the ledger."""

    item: int


@pytest.mark.parametrize("mode", MODES)
async def test_nodes_annotated_with_a_narrower_schema_are_recorded(mode: str) -> None:
    # LangGraph gives such a node only its schema's keys: the ledger comes from the channel
    entered: list[dict[str, Any]] = []

    def body(state: Narrow) -> dict[str, Any]:
        entered.append(dict(state))
        return {"log": ["n"]}

    def fails(state: Narrow) -> dict[str, Any]:
        raise ConnectionError("down")

    if mode == "async":

        async def narrow(state: Narrow) -> dict[str, Any]:
            return body(state)

        async def failing(state: Narrow) -> dict[str, Any]:
            return fails(state)

    else:
        narrow, failing = body, fails  # type: ignore[assignment]

    builder = StateGraph(State)
    builder.add_node("first", guard(narrow, loop=LoopPolicy(max_visits_per_node=1)))
    builder.add_node("second", guard(failing), error_handler=cast(Any, fallback_to("backup")))
    builder.add_node("backup", guard(narrow))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    final = await run(builder.compile(), mode, {"log": [], "item": 1})

    assert entered == [{"item": 1}, {"item": 1}]  # the node itself never saw the ledger
    view = ledger(final)
    assert view.path == ("first", "second", "backup")
    assert view.status("second") == "failed"
    assert view.degraded
