"""loop_guard() and guard(loop=...) on real StateGraphs, sync ``invoke`` and async ``ainvoke``.

The counts live in the run's ledger (``ResilienceState``), so they are checked against
``ledger(final)`` as well as against what the nodes actually did.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from langgraph_resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    FakeClock,
    InMemoryBreakerStore,
    LedgerMissingError,
    LoopLimitExceeded,
    LoopPolicy,
    ResilienceState,
    guard,
    ledger,
    loop_guard,
)
from tests.graph._helpers import MODES, node_pair, run, sqlite_saver


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]
    round: int
    item: int


class TeamState(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]


class PlainState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def as_mode(body: Callable[[Any], dict[str, Any]], mode: str) -> Callable[..., Any]:
    """``node_pair(body, mode)`` under ``body``'s own name."""
    node = node_pair(body, mode)
    node.__name__ = body.__name__
    return node


def ping_pong(
    mode: str,
    path: Callable[..., Any],
    calls: list[str],
    *,
    guard_nodes: bool = True,
    schema: type = State,
) -> Any:
    """The seed's runaway delegation: the supervisor hands the task to the worker forever.

    ``worker -> supervisor`` is a static edge; ``supervisor``'s conditional edge is
    ``path``. ``give_up`` is there for ``on_exceeded``.
    """

    def supervisor(state: Any) -> dict[str, Any]:
        calls.append("supervisor")
        return {"log": ["supervisor"]}

    def worker(state: Any) -> dict[str, Any]:
        calls.append("worker")
        return {"log": ["worker"]}

    def give_up(state: Any) -> dict[str, Any]:
        calls.append("give_up")
        return {"log": ["gave up: the worker kept coming back"]}

    wrap = guard if guard_nodes else (lambda node: node)
    builder = StateGraph(schema)
    builder.add_node("supervisor", wrap(as_mode(supervisor, mode)))
    builder.add_node("worker", wrap(as_mode(worker, mode)))
    builder.add_node("give_up", as_mode(give_up, mode))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges("supervisor", path)
    builder.add_edge("worker", "supervisor")
    builder.add_edge("give_up", END)
    return builder.compile()


def always_worker(state: Any) -> str:
    return "worker"  # never satisfied


def without_steps(records: tuple[Any, ...]) -> list[dict[str, Any]]:
    return [{k: v for k, v in record.items() if k != "step"} for record in records]


# ---- the seed's supervisor/worker ping-pong --------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_unguarded_ping_pong_only_stops_at_recursion_limit(mode: str) -> None:
    calls: list[str] = []
    graph = ping_pong(mode, always_worker, calls)
    with pytest.raises(GraphRecursionError):
        await run(graph, mode, {"log": []}, {"recursion_limit": 50})
    assert calls.count("worker") > 20


@pytest.mark.parametrize("mode", MODES)
async def test_ping_pong_ends_at_end_after_max_visits_per_node(mode: str) -> None:
    calls: list[str] = []
    policy = LoopPolicy(max_visits_per_node=3)
    graph = ping_pong(mode, loop_guard(always_worker, policy=policy), calls)

    final = await run(graph, mode, {"log": []}, {"recursion_limit": 50})

    assert calls == ["supervisor", "worker"] * 3 + ["supervisor"]  # 7 steps, not 50
    assert final["log"] == ["supervisor", "worker"] * 3 + ["supervisor"]  # no give_up
    view = ledger(final)
    assert view.visits == {"supervisor": 4, "worker": 3}
    assert view.routes == {"worker": 3}
    assert without_steps(view.limits) == [
        {
            "node": "worker",
            "limit": "max_visits_per_node",
            "count": 3,
            "maximum": 3,
            "routed_to": END,
        }
    ]
    # the limit was hit by the router of the supervisor's last visit
    supervisor_outcome = view.outcome("supervisor")
    assert supervisor_outcome is not None
    assert view.limits[0]["step"] == supervisor_outcome["step"]


@pytest.mark.parametrize("mode", MODES)
async def test_on_exceeded_routes_to_a_real_node(mode: str) -> None:
    calls: list[str] = []
    path = loop_guard(
        always_worker, policy=LoopPolicy(max_visits_per_node=3), on_exceeded="give_up"
    )
    final = await run(ping_pong(mode, path, calls), mode, {"log": []}, {"recursion_limit": 50})

    assert calls.count("worker") == 3
    assert calls[-1] == "give_up"
    assert final["log"][-1] == "gave up: the worker kept coming back"
    view = ledger(final)
    assert [(r["node"], r["routed_to"]) for r in view.limits] == [("worker", "give_up")]
    assert "give_up" not in view.visits  # not guarded: only the route was recorded


@pytest.mark.parametrize("mode", MODES)
async def test_max_visits_bounds_the_whole_run(mode: str) -> None:
    calls: list[str] = []
    path = loop_guard(always_worker, policy=LoopPolicy(max_visits=5))
    final = await run(ping_pong(mode, path, calls), mode, {"log": []}, {"recursion_limit": 50})

    # supervisor, worker, supervisor, worker, supervisor: 5 visits, a 6th is refused
    assert calls == ["supervisor", "worker", "supervisor", "worker", "supervisor"]
    view = ledger(final)
    assert len(view.path) == 5
    assert without_steps(view.limits) == [
        {"node": "worker", "limit": "max_visits", "count": 5, "maximum": 5, "routed_to": END}
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_per_node_mapping_bounds_only_the_named_nodes(mode: str) -> None:
    calls: list[str] = []

    def supervisor(state: State) -> dict[str, Any]:
        calls.append("supervisor")
        return {"round": state.get("round", 0) + 1}

    def worker(state: State) -> dict[str, Any]:
        calls.append("worker")
        return {}

    def reviewer(state: State) -> dict[str, Any]:
        calls.append("reviewer")
        return {}

    def alternate(state: State) -> str:
        return "worker" if state["round"] % 2 == 0 else "reviewer"

    policy = LoopPolicy(max_visits_per_node={"worker": 2})
    builder = StateGraph(State)
    builder.add_node("supervisor", guard(as_mode(supervisor, mode)))
    builder.add_node("worker", guard(as_mode(worker, mode)))
    builder.add_node("reviewer", guard(as_mode(reviewer, mode)))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges("supervisor", loop_guard(alternate, policy=policy))
    builder.add_edge("worker", "supervisor")
    builder.add_edge("reviewer", "supervisor")

    final = await run(builder.compile(), mode, {"round": 0}, {"recursion_limit": 50})

    # rounds 1..5 alternate reviewer/worker; round 6 would be worker's third visit
    assert calls.count("worker") == 2
    assert calls.count("reviewer") == 3  # beyond 2: reviewer is not named, so unbounded
    assert final["round"] == 6
    view = ledger(final)
    assert [(r["node"], r["limit"], r["count"], r["maximum"]) for r in view.limits] == [
        ("worker", "max_visits_per_node", 2, 2)
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_a_target_without_guard_is_bounded_by_its_routes(mode: str) -> None:
    calls: list[str] = []
    path = loop_guard(always_worker, policy=LoopPolicy(max_visits_per_node=3))
    graph = ping_pong(mode, path, calls, guard_nodes=False)
    final = await run(graph, mode, {"log": []}, {"recursion_limit": 50})

    assert calls.count("worker") == 3
    view = ledger(final)
    assert view.visits == {}  # nothing is guarded: no visits recorded...
    assert view.routes == {"worker": 3}  # ...but every route the guard took was
    assert [(r["node"], r["count"]) for r in view.limits] == [("worker", 3)]


@pytest.mark.parametrize("mode", MODES)
async def test_routes_from_parallel_subgraphs_are_all_counted(mode: str) -> None:
    # Two teams run side by side and each routes to an unguarded "member"; the parent
    # sends both teams round again. "member" may be entered twice in the whole run.
    members: list[str] = []

    def always_member(state: TeamState) -> str:
        return "member"

    def team(name: str) -> Any:
        def member(state: TeamState) -> dict[str, Any]:
            members.append(name)
            return {}

        builder = StateGraph(TeamState)  # no "round": the teams do not write it
        builder.add_node("lead", as_mode(lambda state: {}, mode))
        builder.add_node("member", as_mode(member, mode))
        builder.add_edge(START, "lead")
        builder.add_conditional_edges(
            "lead", loop_guard(always_member, policy=LoopPolicy(max_visits_per_node=2))
        )
        return builder.compile()

    def join(state: State) -> dict[str, Any]:
        return {"round": state.get("round", 0) + 1}

    def again(state: State) -> list[str] | str:
        return ["team_a", "team_b"] if state["round"] < 3 else END

    builder = StateGraph(State)
    builder.add_node("team_a", team("a"))
    builder.add_node("team_b", team("b"))
    builder.add_node("join", as_mode(join, mode))
    builder.add_edge(START, "team_a")
    builder.add_edge(START, "team_b")
    builder.add_edge(["team_a", "team_b"], "join")
    builder.add_conditional_edges("join", again, ["team_a", "team_b", END])
    final = await run(builder.compile(), mode, {"round": 0})

    assert final["round"] == 3
    # both routes of the first round count: the second round may not enter "member"
    assert sorted(members) == ["a", "b"]
    assert ledger(final).routes == {"member": 2}
    # rounds 2 and 3 are both refused, in each team: four records, none duplicated by
    # the whole ledgers the teams hand back
    assert [(r["node"], r["count"]) for r in ledger(final).limits] == [("member", 2)] * 4


# ---- what path functions may return ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_list_of_destinations_keeps_those_within_limits(mode: str) -> None:
    calls: list[str] = []

    def supervisor(state: State) -> dict[str, Any]:
        return {"round": state.get("round", 0) + 1}

    def make(name: str) -> Callable[[State], dict[str, Any]]:
        def node(state: State) -> dict[str, Any]:
            calls.append(name)
            return {"log": [name]}

        node.__name__ = name
        return node

    def both(state: State) -> list[str] | str:
        return ["worker", "helper"] if state["round"] <= 3 else END

    path = loop_guard(
        both, policy=LoopPolicy(max_visits_per_node={"worker": 2}), on_exceeded="give_up"
    )
    builder = StateGraph(State)
    builder.add_node("supervisor", guard(as_mode(supervisor, mode)))
    builder.add_node("worker", guard(as_mode(make("worker"), mode)))
    builder.add_node("helper", guard(as_mode(make("helper"), mode)))
    builder.add_node("give_up", as_mode(make("give_up"), mode))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges("supervisor", path)
    builder.add_edge("worker", "supervisor")
    builder.add_edge("helper", "supervisor")
    builder.add_edge("give_up", END)

    final = await run(builder.compile(), mode, {"round": 0}, {"recursion_limit": 50})

    # round 3: worker is replaced by give_up, helper still goes
    assert calls.count("worker") == 2
    assert calls.count("helper") == 3
    assert calls.count("give_up") == 1
    view = ledger(final)
    assert view.routes == {"worker": 2, "helper": 3}
    assert [(r["node"], r["routed_to"]) for r in view.limits] == [("worker", "give_up")]


@pytest.mark.parametrize("mode", MODES)
async def test_sends_beyond_the_limit_are_replaced_and_the_rest_kept(mode: str) -> None:
    items: list[int] = []

    def worker(state: State) -> dict[str, Any]:
        items.append(state["item"])
        return {"log": [f"item {state['item']}"]}

    def fan_out(state: State) -> list[Send]:
        return [Send("worker", dict(state, item=i)) for i in range(4)]

    path = loop_guard(fan_out, policy=LoopPolicy(max_visits_per_node=2), on_exceeded="give_up")
    builder = StateGraph(State)
    builder.add_node("supervisor", guard(as_mode(lambda state: {}, mode)))
    builder.add_node("worker", guard(as_mode(worker, mode)))
    builder.add_node("give_up", as_mode(lambda state: {"log": ["gave up"]}, mode))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges("supervisor", path)

    final = await run(builder.compile(), mode, {"log": []})

    assert sorted(items) == [0, 1]  # the first two Sends went through, with their args
    assert sorted(final["log"]) == ["gave up", "item 0", "item 1"]  # give_up ran once
    view = ledger(final)
    assert view.visits_of("worker") == 2
    assert view.routes == {"worker": 2}
    # one record per refused Send
    assert [(r["node"], r["limit"], r["routed_to"]) for r in view.limits] == [
        ("worker", "max_visits_per_node", "give_up")
    ] * 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_limit_hit_within_one_fan_out_counts_the_entries_it_granted(mode: str) -> None:
    # Three Sends at once against max_visits_per_node=2: the third is refused because
    # two entries were granted just before it, so those are the count to report (as
    # the ping-pong reports 3 after three visits), not the 0 visits before the step.
    def fan_out(state: State) -> list[Send]:
        return [Send("worker", dict(state, item=i)) for i in range(3)]

    builder = StateGraph(State)
    builder.add_node("supervisor", as_mode(lambda state: {}, mode))
    builder.add_node("worker", guard(as_mode(lambda state: {}, mode)))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges(
        "supervisor", loop_guard(fan_out, policy=LoopPolicy(max_visits_per_node=2))
    )
    final = await run(builder.compile(), mode, {"log": []})

    assert ledger(final).visits_of("worker") == 2
    assert without_steps(ledger(final).limits) == [
        {
            "node": "worker",
            "limit": "max_visits_per_node",
            "count": 2,
            "maximum": 2,
            "routed_to": END,
        }
    ]


async def test_an_async_path_function() -> None:
    calls: list[str] = []

    async def next_step(state: State) -> str:
        return "worker"

    path = loop_guard(next_step, policy=LoopPolicy(max_visits_per_node=2))
    assert path.__name__ == "loop_guard_next_step"
    final = await run(ping_pong("async", path, calls), "async", {"log": []})
    assert calls.count("worker") == 2
    assert ledger(final).limits[0]["count"] == 2


@pytest.mark.parametrize("mode", MODES)
async def test_a_path_function_that_takes_config(mode: str) -> None:
    calls: list[str] = []
    seen: list[str] = []

    def next_step(state: State, config: RunnableConfig) -> str:
        target = config["configurable"]["delegate_to"]
        seen.append(target)
        return target

    path = loop_guard(next_step, policy=LoopPolicy(max_visits_per_node=2))
    config: RunnableConfig = {"configurable": {"delegate_to": "worker"}}
    final = await run(ping_pong(mode, path, calls), mode, {"log": []}, config)
    assert seen == ["worker"] * 3
    assert calls.count("worker") == 2
    assert ledger(final).routes == {"worker": 2}


# ---- counts survive a crash and resume -------------------------------------------------


def flaky_ping_pong(mode: str, calls: list[str]) -> StateGraph[Any]:
    """The ping-pong whose worker fails once, on its second visit."""
    failed: list[bool] = []

    def supervisor(state: State) -> dict[str, Any]:
        return {"log": ["supervisor"]}

    def worker(state: State) -> dict[str, Any]:
        calls.append("worker")
        if calls.count("worker") == 2 and not failed:
            failed.append(True)
            raise ConnectionError("worker crashed")
        return {"log": ["worker"]}

    builder = StateGraph(State)
    builder.add_node("supervisor", guard(as_mode(supervisor, mode)))
    builder.add_node("worker", guard(as_mode(worker, mode)))
    builder.add_edge(START, "supervisor")
    builder.add_conditional_edges(
        "supervisor", loop_guard(always_worker, policy=LoopPolicy(max_visits_per_node=3))
    )
    builder.add_edge("worker", "supervisor")
    return builder


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_counts_survive_a_resume(mode: str, kind: str, tmp_path: Path) -> None:
    calls: list[str] = []
    builder = flaky_ping_pong(mode, calls)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}, "recursion_limit": 50}

    async def scenario(graph: Any) -> tuple[Any, Any]:
        with pytest.raises(ConnectionError, match="worker crashed"):
            await run(graph, mode, {"log": []}, config)
        state = graph.get_state(config) if mode == "sync" else await graph.aget_state(config)
        final = await run(graph, mode, None, config)  # resume
        return state, final

    if kind == "memory":
        failed_state, final = await scenario(builder.compile(checkpointer=InMemorySaver()))
    else:
        async with sqlite_saver(mode, tmp_path / "checkpoints.sqlite") as saver:
            failed_state, final = await scenario(builder.compile(checkpointer=saver))

    # checkpointed at the failure: one visit done, a second route taken
    assert failed_state.next == ("worker",)
    assert ledger(failed_state.values).visits_of("worker") == 1
    assert ledger(failed_state.values).routes == {"worker": 2}
    # the resume went on counting: 3 successful visits in all (4 calls with the crash),
    # not 3 more as a per-invocation budget like recursion_limit would give
    assert calls.count("worker") == 4
    assert final["log"].count("worker") == 3
    view = ledger(final)
    assert view.visits_of("worker") == 3
    assert without_steps(view.limits) == [
        {
            "node": "worker",
            "limit": "max_visits_per_node",
            "count": 3,
            "maximum": 3,
            "routed_to": END,
        }
    ]


# ---- guard(loop=...): the safety net that raises ---------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_guard_raises_loop_limit_exceeded_before_running_the_node(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    # a streak of one: a loop error counted against the dependency would open it
    breaker = CircuitBreaker("svc", BreakerPolicy(failure_threshold=1), clock=clock, store=store)
    runs: list[int] = []

    def work(state: State) -> dict[str, Any]:
        runs.append(1)
        return {"log": ["work"]}

    builder = StateGraph(State)
    builder.add_node("plan", as_mode(lambda state: {}, mode))
    builder.add_node(
        "work",
        guard(as_mode(work, mode), breaker=breaker, loop=LoopPolicy(max_visits_per_node=2)),
    )
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "work")
    builder.add_edge("work", "plan")  # a runaway loop with no router at all

    with pytest.raises(LoopLimitExceeded) as info:
        await run(builder.compile(), mode, {"log": []}, {"recursion_limit": 50})

    assert isinstance(info.value, RecursionError)
    assert (info.value.node, info.value.limit, info.value.count, info.value.maximum) == (
        "work",
        "max_visits_per_node",
        2,
        2,
    )
    assert "max_visits_per_node" in str(info.value)
    assert len(runs) == 2  # the third entry was refused before the body ran
    snapshot = breaker.snapshot()
    assert snapshot.failed_calls == 0
    assert snapshot.state is BreakerState.CLOSED


# ---- depth: nested teams ---------------------------------------------------------------


def team_graph(mode: str, *, lead_loop: LoopPolicy | None = None, delegate: Any = None) -> Any:
    """A team: ``lead`` delegates to ``member`` (through ``delegate``, if given)."""
    builder = StateGraph(State)
    builder.add_node("lead", guard(as_mode(lambda state: {"log": ["lead"]}, mode), loop=lead_loop))
    builder.add_node("member", guard(as_mode(lambda state: {"log": ["member"]}, mode)))
    builder.add_node("wrap_up", as_mode(lambda state: {"log": ["wrap_up"]}, mode))
    builder.add_edge(START, "lead")
    if delegate is None:
        builder.add_edge("lead", "member")
    else:
        builder.add_conditional_edges("lead", delegate)
    return builder.compile()


def nest(child: Any, name: str = "team") -> Any:
    builder = StateGraph(State)
    builder.add_node(name, child)
    builder.add_edge(START, name)
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_nodes_record_their_graph_depth(mode: str) -> None:
    top = await run(team_graph(mode), mode, {"log": []})
    assert ledger(top).depth == 1

    once = await run(nest(team_graph(mode)), mode, {"log": []})
    assert ledger(once).depth == 2
    assert ledger(once).visits == {"lead": 1, "member": 1}

    twice = await run(nest(nest(team_graph(mode), "division")), mode, {"log": []})
    assert ledger(twice).depth == 3
    assert ledger(twice).visits == {"lead": 1, "member": 1}


@pytest.mark.parametrize("mode", MODES)
async def test_guard_max_depth_raises_inside_a_subgraph(mode: str) -> None:
    policy = LoopPolicy(max_depth=1)
    top = await run(team_graph(mode, lead_loop=policy), mode, {"log": []})
    assert top["log"] == ["lead", "member"]  # at the top graph, depth 1 is allowed

    with pytest.raises(LoopLimitExceeded) as info:
        await run(nest(team_graph(mode, lead_loop=policy)), mode, {"log": []})
    assert (info.value.node, info.value.limit, info.value.count, info.value.maximum) == (
        "lead",
        "max_depth",
        2,
        1,
    )


@pytest.mark.parametrize("mode", MODES)
async def test_loop_guard_max_depth_stops_a_nested_team_from_delegating(mode: str) -> None:
    def delegate(state: State) -> str:
        return "member"

    path = loop_guard(delegate, policy=LoopPolicy(max_depth=1), on_exceeded="wrap_up")

    top = await run(team_graph(mode, delegate=path), mode, {"log": []})
    assert top["log"] == ["lead", "member"]
    assert ledger(top).limits == ()
    assert ledger(top).routes == {"member": 1}

    nested = await run(nest(team_graph(mode, delegate=path)), mode, {"log": []})
    assert nested["log"][-1] == "wrap_up"
    assert "member" not in nested["log"]
    assert without_steps(ledger(nested).limits) == [
        {"node": "member", "limit": "max_depth", "count": 2, "maximum": 1, "routed_to": "wrap_up"}
    ]


# ---- a state without the ledger --------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_loop_guard_needs_the_ledger(mode: str) -> None:
    calls: list[str] = []
    path = loop_guard(always_worker, policy=LoopPolicy(max_visits_per_node=3))
    graph = ping_pong(mode, path, calls, guard_nodes=False, schema=PlainState)
    with pytest.raises(LedgerMissingError, match="ResilienceState"):
        await run(graph, mode, {"log": []})
    assert calls == ["supervisor"]  # the first step


@pytest.mark.parametrize("mode", MODES)
async def test_guard_loop_needs_the_ledger(mode: str) -> None:
    runs: list[int] = []

    def work(state: PlainState) -> dict[str, Any]:
        runs.append(1)
        return {}

    builder = StateGraph(PlainState)
    builder.add_node("work", guard(as_mode(work, mode), loop=LoopPolicy(max_visits=10)))
    builder.add_edge(START, "work")
    with pytest.raises(LedgerMissingError, match="ResilienceState"):
        await run(builder.compile(), mode, {"log": []})
    assert runs == []


# ---- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_visits": 0}, "max_visits"),
        ({"max_visits": -1}, "max_visits"),
        ({"max_visits": 2.5}, "max_visits"),
        ({"max_visits": True}, "max_visits"),
        ({"max_visits_per_node": 0}, "max_visits_per_node"),
        ({"max_visits_per_node": {"worker": 0}}, "max_visits_per_node\\['worker'\\]"),
        ({"max_depth": 0}, "max_depth"),
    ],
)
def test_loop_policy_rejects_bad_limits(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=f"LoopPolicy.{field} must be an integer >= 1"):
        LoopPolicy(**kwargs)


def test_loop_policy_rejects_non_string_node_names() -> None:
    with pytest.raises(TypeError, match="keys must be node names"):
        LoopPolicy(max_visits_per_node={1: 3})  # type: ignore[dict-item]


@pytest.mark.parametrize("bad", [42, "worker", None])
def test_loop_guard_rejects_a_non_callable(bad: Any) -> None:
    with pytest.raises(TypeError, match="wraps a path function"):
        loop_guard(bad, policy=LoopPolicy(max_visits=3))


@pytest.mark.parametrize("bad", [None, {"max_visits": 3}, 3])
def test_loop_guard_rejects_a_policy_that_is_not_a_loop_policy(bad: Any) -> None:
    with pytest.raises(TypeError, match="takes a LoopPolicy"):
        loop_guard(always_worker, policy=bad)


@pytest.mark.parametrize("bad", ["", None, 3])
def test_loop_guard_rejects_an_on_exceeded_that_is_not_a_name(bad: Any) -> None:
    with pytest.raises(TypeError, match="on_exceeded"):
        loop_guard(always_worker, policy=LoopPolicy(max_visits=3), on_exceeded=bad)


def test_guard_rejects_a_loop_that_is_not_a_loop_policy() -> None:
    with pytest.raises(TypeError, match="loop must be a LoopPolicy"):
        guard(always_worker, loop={"max_visits": 3})  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
async def test_on_exceeded_naming_no_node_fails_at_the_first_step(mode: str) -> None:
    calls: list[str] = []
    path = loop_guard(
        always_worker, policy=LoopPolicy(max_visits_per_node=3), on_exceeded="escalate"
    )
    graph = ping_pong(mode, path, calls)  # builds and compiles: the name is checked in a run
    with pytest.raises(ValueError, match="'escalate' is not a node"):
        await run(graph, mode, {"log": []})
    assert calls == ["supervisor"]
