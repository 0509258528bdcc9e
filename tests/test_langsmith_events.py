"""End to end: with LangSmith tracing on, each plugin decision reaches the right run.

Real ``StateGraph`` runs (sync ``invoke`` and async ``ainvoke``) trace through a real
``langsmith.Client`` aimed at ``tests/fake_langsmith.py``, an in-process server speaking
the ingest API. It advertises zstd, as LangSmith does, so the client's uploads arrive
compressed (and the ones made before it read ``/info``, plain). Tracing is switched on
with ``langsmith.tracing_context(client=..., enabled=True)``, never with environment
variables. A decision ``<name>`` must arrive as the event ``langgraph_resilience.<name>``,
the tag ``resilience:<name>`` and the metadata ``resilience.<name>``, all three on one run.

Where each decision lands (langgraph 1.2.22, langsmith 0.15.0):

- breaker events: the guarded node's run (the breaker delivers them in the node's call);
- ``fallback_*`` and ``dead_lettered``: the error handler's run, which LangGraph names
  ``__error_handler__<failed node>``, a sibling of the failed node's run;
- ``gate_verdict``: the gate node's own run (the gate is an untraced node callable, as
  LangGraph makes of a plain function, so no child run comes between);
- ``loop_limit`` from ``loop_guard``: the path function's own run,
  ``loop_guard_<path name>``, a child of the run of the node the edge leaves; from
  ``guard(loop=...)``: the run of the node that refuses to run;
- ``saver_failed_over``: a short run of its own, ``langgraph_resilience.saver_failed_over``
  (the checkpointer is called by LangGraph's loop, outside every run, so there is no
  run to annotate).

With tracing off, the same graphs run, nothing is sent and every ``annotate`` returns False.
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, cast

import langsmith as ls
import pytest
import tenacity
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langsmith import Client

import langgraph_resilience.checkpoint.saver as saver_module
import langgraph_resilience.events as events_module
from langgraph_resilience import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpenError,
    DeadLetterQueue,
    FakeClock,
    InMemoryBreakerStore,
    LoopLimitExceeded,
    LoopPolicy,
    ResilienceState,
    ResilientSaver,
    SaverFailedOver,
    SaverPolicy,
    dead_letter,
    fallback_to,
    guard,
    loop_guard,
    verification_gate,
)
from langgraph_resilience.testing import FaultySaver
from langgraph_resilience.tracing import annotate
from tests.fake_langsmith import PREFIX, FakeLangSmith, decision
from tests.fake_langsmith import carriers as runs_carrying
from tests.graph._helpers import MODES, node_pair
from tests.graph._helpers import run as run_in_mode

PROJECT = "resilience-events"
ROOT = "LangGraph"
"""The name LangGraph gives a graph's root run."""


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]
    analysis: Any


Run = dict[str, Any]
Graph = Any


# ---- the server, the client and how a graph is run ----------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLangSmith]:
    with FakeLangSmith(zstd=True) as fake:
        yield fake


@pytest.fixture
def client(server: FakeLangSmith) -> Iterator[Client]:
    """A client that talks only to the fake server; a tracing error fails the test."""
    server.reset()
    errors: list[Exception] = []
    client = Client(api_url=server.url, api_key="test", tracing_error_callback=errors.append)
    yield client
    client.flush(timeout=10)  # a timeout: never hang on a dead tracing thread
    assert not errors, errors
    assert not server.errors, server.errors


class Runner:
    """Runs a graph in ``mode`` inside ``tracing()`` (the test flushes the client after)."""

    def __init__(
        self,
        mode: str,
        tracing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.mode, self.tracing = mode, tracing

    async def __call__(self, graph: Graph, inp: Any, config: RunnableConfig | None = None) -> Any:
        with self.tracing():
            return await run_in_mode(graph, self.mode, inp, config)


def traced(mode: str, client: Client) -> Runner:
    """A runner with tracing on, to ``client``."""

    def on() -> contextlib.AbstractContextManager[Any]:
        return ls.tracing_context(client=client, enabled=True, project_name=PROJECT)

    return Runner(mode, on)


# ---- reading what the server got ---------------------------------------------------------


def decisions(run: Run) -> list[str]:
    """The decisions on ``run`` in event order, checked to be its tags and metadata too."""
    names = [
        event["name"].removeprefix(PREFIX)
        for event in run.get("events") or []
        if event["name"].startswith(PREFIX)
    ]
    tags = run.get("tags") or []
    tagged = {tag.removeprefix("resilience:") for tag in tags if tag.startswith("resilience:")}
    metadata = (run.get("extra") or {}).get("metadata") or {}
    keyed = {key.removeprefix("resilience.") for key in metadata if key.startswith("resilience.")}
    assert tagged == keyed == set(names), run["name"]
    return names


def carriers(server: FakeLangSmith, name: str) -> list[str]:
    """The names of the runs tagged with decision ``name``, in trace order."""
    return runs_carrying(server.runs, name)


def only_root(server: FakeLangSmith) -> Run:
    (root,) = [run for run in server.runs.values() if run.get("parent_run_id") is None]
    assert root["name"] == ROOT
    assert root["session_name"] == PROJECT
    return root


# ---- the scenarios: the same graphs run with tracing on and off ----------------------------


def one_node(name: str, node: Any, **kwargs: Any) -> Graph:
    builder = StateGraph(State)
    builder.add_node(name, node, **kwargs)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder.compile()


async def breaker_scenario(go: Runner) -> None:
    """call_service fails twice (the breaker opens), is rejected, then recovers."""
    clock = FakeClock()
    policy = BreakerPolicy(failure_threshold=2, success_threshold=1)  # closes on one success
    breaker = CircuitBreaker("svc", policy, store=InMemoryBreakerStore(), clock=clock)
    healthy = False

    def call_service(state: Any) -> dict[str, Any]:
        if not healthy:
            raise ConnectionError("service down")
        return {"log": ["served"]}

    graph = one_node("call_service", guard(node_pair(call_service, go.mode), breaker=breaker))
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await go(graph, {"log": []})
    with pytest.raises(CircuitOpenError):
        await go(graph, {"log": []})
    clock.advance(61)
    healthy = True
    assert (await go(graph, {"log": []}))["log"] == ["served"]


def chain_graph(mode: str, b_breaker: CircuitBreaker) -> Graph:
    """a -> b -> c, one ``fallback_to("b", "c")`` handler on a and b: a and b fail."""

    def a(state: Any) -> dict[str, Any]:
        raise ConnectionError("a is down")

    def b(state: Any) -> dict[str, Any]:
        raise TimeoutError("b is too slow")

    def c(state: Any) -> dict[str, Any]:
        return {"log": ["c"]}

    chain = cast(Any, fallback_to("b", "c", breakers={"b": b_breaker}))
    builder = StateGraph(State)
    builder.add_node("a", guard(node_pair(a, mode)), error_handler=chain)
    builder.add_node("b", guard(node_pair(b, mode)), error_handler=chain)
    builder.add_node("c", guard(node_pair(c, mode)))
    builder.add_edge(START, "a")
    builder.add_edge("c", END)
    return builder.compile()


async def fallback_scenario(go: Runner, *, b_open: bool) -> None:
    b_breaker = CircuitBreaker("b-api", store=InMemoryBreakerStore())
    if b_open:
        b_breaker.force_open()
    assert (await go(chain_graph(go.mode, b_breaker), {"log": []}))["log"] == ["c"]


GATE_CASES = {
    "passing": (0.9, "writer"),
    "failing": (0.4, "review"),  # the verifier raises it to 0.5 only: still below 0.75
}


async def gate_scenario(go: Runner, case: str) -> None:
    confidence, route = GATE_CASES[case]

    def double_check(output: Any) -> dict[str, Any]:
        return {"content": output.content, "confidence": 0.5}

    builder = StateGraph(State)
    builder.add_node("analyst", lambda s: {"analysis": {"content": "x", "confidence": confidence}})
    gate = verification_gate(
        field="analysis", on_pass="writer", on_fail="review", verifier=double_check
    )
    builder.add_node("fact_check", gate)
    builder.add_node("writer", lambda s: {"log": ["writer"]})
    builder.add_node("review", lambda s: {"log": ["review"]})
    builder.add_edge(START, "analyst")
    builder.add_edge("analyst", "fact_check")
    builder.add_edge("writer", END)
    builder.add_edge("review", END)
    assert (await go(builder.compile(), {"log": []}))["log"] == [route]


async def loop_guard_scenario(go: Runner) -> None:
    """The supervisor hands the task to the worker forever; the third hand-off is refused."""

    def next_step(state: Any) -> str:
        return "worker"

    builder = StateGraph(State)
    builder.add_node("supervisor", guard(node_pair(lambda s: {"log": ["supervisor"]}, go.mode)))
    builder.add_node("worker", guard(node_pair(lambda s: {"log": ["worker"]}, go.mode)))
    builder.add_edge(START, "supervisor")
    policy = LoopPolicy(max_visits_per_node=2)
    builder.add_conditional_edges("supervisor", loop_guard(next_step, policy=policy))
    builder.add_edge("worker", "supervisor")
    final = await go(builder.compile(), {"log": []})
    assert final["log"] == ["supervisor", "worker"] * 2 + ["supervisor"]


async def guard_loop_scenario(go: Runner) -> None:
    """plan <-> work with no router: guard(loop=...) refuses the third entry into work."""
    builder = StateGraph(State)
    builder.add_node("plan", node_pair(lambda s: {"log": ["plan"]}, go.mode))
    loop = LoopPolicy(max_visits_per_node=2)
    builder.add_node("work", guard(node_pair(lambda s: {"log": ["work"]}, go.mode), loop=loop))
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "work")
    builder.add_edge("work", "plan")
    with pytest.raises(LoopLimitExceeded):
        await go(builder.compile(), {"log": []}, {"recursion_limit": 50})


def failing(error: BaseException, mode: str) -> Any:
    def body(state: Any) -> dict[str, Any]:
        raise error

    return node_pair(body, mode)


async def dead_letter_scenario(go: Runner, dlq: DeadLetterQueue) -> None:
    search = guard(failing(ConnectionError("search API down"), go.mode))
    graph = one_node("search", search, error_handler=cast(Any, dead_letter(dlq)))
    assert (await go(graph, {"log": []}))["log"] == []


async def spent_chain_scenario(go: Runner, dlq: DeadLetterQueue) -> None:
    """search -> cached, both fail: the chain's sink dead-letters cached's failure."""
    chain = cast(Any, fallback_to("cached", dead_letter=dead_letter(dlq)))
    builder = StateGraph(State)
    search = guard(failing(ConnectionError("down"), go.mode))
    builder.add_node("search", search, error_handler=chain)
    builder.add_node("cached", guard(failing(KeyError("cold cache"), go.mode)), error_handler=chain)
    builder.add_edge(START, "search")
    builder.add_edge("search", END)
    assert (await go(builder.compile(), {"log": []}))["log"] == []


async def saver_scenario(go: Runner) -> list[Any]:
    """The primary checkpointer breaks during ``first``: the saver fails over. Its events."""
    primary = FaultySaver()
    events: list[Any] = []
    saver = ResilientSaver(
        primary,
        standby="memory://",
        policy=SaverPolicy(wait=tenacity.wait_none()),
        listeners=[events.append],
    )

    def first(state: Any) -> dict[str, Any]:
        primary.fail()
        return {"log": ["first"]}

    builder = StateGraph(State)
    builder.add_node("first", node_pair(first, go.mode))
    builder.add_node("second", node_pair(lambda s: {"log": ["second"]}, go.mode))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    config: RunnableConfig = {"configurable": {"thread_id": "t"}, "durability": "sync"}
    try:
        final = await go(builder.compile(checkpointer=saver), {"log": []}, config)
    finally:
        saver.close()
    assert final["log"] == ["first", "second"]
    assert saver.status().active == "standby"
    return events


# ---- the fake server reads every way the client uploads ------------------------------------

ROUTES = {
    "multipart": ({"zstd": False}, {}, "POST /runs/multipart", None),
    "zstd": ({"zstd": True}, {}, "POST /runs/multipart", "zstd"),
    "batch": ({"multipart": False}, {}, "POST /runs/batch", None),
    "runs": ({}, {"auto_batch_tracing": False}, "PATCH /runs/<id>", None),
}
"""route -> (server options, client options, the last upload's request, its encoding)."""


@pytest.mark.parametrize("route", ROUTES)
def test_the_fake_server_reads_every_way_the_client_uploads(route: str) -> None:
    """Proves: plain multipart, zstd multipart, the /runs/batch fallback (after a 404 on
    multipart) and POST /runs + PATCH /runs/<id> all end up as the same merged runs,
    annotations included: the other tests' findings do not depend on the upload route."""
    server_options, client_options, request, encoding = ROUTES[route]
    seen: list[bool] = []

    def probe(state: Any) -> dict[str, Any]:
        seen.append(annotate("probe", {"route": route}))
        return {"log": ["probed"]}

    graph = one_node("probe", probe)
    errors: list[Exception] = []
    with FakeLangSmith(**server_options) as fake:
        client = Client(
            api_url=fake.url, api_key="test", tracing_error_callback=errors.append, **client_options
        )
        with ls.tracing_context(client=client, enabled=True, project_name=PROJECT):
            for _ in range(2):  # the second upload comes after the client has read /info
                graph.invoke({"log": []})
                client.flush(timeout=10)
        (*_, (method, path, headers)) = [r for r in fake.requests if r[1].startswith("/runs")]

    assert seen == [True, True]
    path = re.sub(r"[0-9a-f-]{36}", "<id>", path)
    assert (f"{method} {path}", headers.get("content-encoding")) == (request, encoding)
    assert headers["x-api-key"] == "test"
    assert not errors
    assert not fake.errors
    assert sorted(run["name"] for run in fake.runs.values()) == [ROOT, ROOT, "probe", "probe"]
    for run in fake.runs_named("probe"):
        assert decisions(run) == ["probe"]
        assert decision(run, "probe") == {"route": route}
        assert run["outputs"] == {"log": ["probed"]}
        assert run["end_time"] is not None  # the patch was merged in


# ---- breakers ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_breaker_events_land_on_the_guarded_node_run_that_caused_them(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: the opening is on the second failing call's run, the rejection on the third,
    the half-opening and the closing (in that order) on the run of the succeeding call."""
    await breaker_scenario(traced(mode, client))
    client.flush(timeout=10)

    first, second, third, fourth = runs = server.runs_named("call_service")
    assert [decisions(run) for run in runs] == [
        [],
        ["breaker_opened"],
        ["call_rejected"],
        ["breaker_half_opened", "breaker_closed"],
    ]
    assert "ConnectionError" in first["error"]
    assert "ConnectionError" in second["error"]
    assert "CircuitOpenError" in third["error"]
    assert fourth.get("error") is None
    assert decision(second, "breaker_opened") == {
        "breaker": "svc",
        "at": 0.0,
        "old": "closed",
        "new": "open",
        "reason": "2 consecutive failures",
        "retry_after": 60.0,
    }
    assert decision(third, "call_rejected") == {
        "breaker": "svc",
        "at": 0.0,
        "state": "open",
        "retry_after": 60.0,
    }
    half_opened = decision(fourth, "breaker_half_opened")
    assert (half_opened["old"], half_opened["new"], half_opened["at"]) == ("open", "half_open", 61)
    closed = decision(fourth, "breaker_closed")
    assert (closed["breaker"], closed["old"], closed["new"]) == ("svc", "half_open", "closed")
    for name in ("breaker_opened", "call_rejected", "breaker_half_opened", "breaker_closed"):
        assert carriers(server, name) == ["call_service"], name  # never the root runs


# ---- fallbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_fallback_taken_lands_on_each_error_handler_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: each hop of the chain is on the run of the handler of the node that failed
    (``__error_handler__a`` then ``__error_handler__b``), with failed, error and target."""
    await fallback_scenario(traced(mode, client), b_open=False)
    client.flush(timeout=10)

    root = only_root(server)
    assert carriers(server, "fallback_taken") == ["__error_handler__a", "__error_handler__b"]
    a_handler = server.run_named("__error_handler__a")
    b_handler = server.run_named("__error_handler__b")
    assert a_handler["parent_run_id"] == b_handler["parent_run_id"] == root["id"]
    assert decisions(a_handler) == decisions(b_handler) == ["fallback_taken"]
    assert decision(a_handler, "fallback_taken") == {
        "node": "a",
        "error": "ConnectionError",
        "target": "b",
    }
    assert decision(b_handler, "fallback_taken") == {
        "node": "b",
        "error": "TimeoutError",
        "target": "c",
    }
    for node in ("a", "b", "c"):
        assert decisions(server.run_named(node)) == [], node


@pytest.mark.parametrize("mode", MODES)
async def test_an_open_breaker_is_skipped_on_the_error_handler_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: with b's breaker open, a's handler run says b was skipped, then c taken."""
    await fallback_scenario(traced(mode, client), b_open=True)
    client.flush(timeout=10)

    handler = server.run_named("__error_handler__a")
    assert decisions(handler) == ["fallback_skipped", "fallback_taken"]
    assert decision(handler, "fallback_skipped") == {"node": "a", "target": "b"}
    assert decision(handler, "fallback_taken")["target"] == "c"
    assert server.runs_named("b") == []  # skipped without running
    assert carriers(server, "fallback_skipped") == ["__error_handler__a"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_guarded_runnable_reports_on_the_node_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: guard() around a runnable adds no run of its own: the breaker's events land
    on the node's run, and the runnable's run is the node run's child."""
    breaker = CircuitBreaker(
        "svc", BreakerPolicy(failure_threshold=1), store=InMemoryBreakerStore(), clock=FakeClock()
    )

    def down(state: Any) -> dict[str, Any]:
        raise ConnectionError("service down")

    async def adown(state: Any) -> dict[str, Any]:
        raise ConnectionError("service down")

    chain = RunnableLambda(down, afunc=adown, name="service_chain")
    graph = one_node("call_service", guard(chain, breaker=breaker))
    with pytest.raises(ConnectionError):
        await traced(mode, client)(graph, {"log": []})
    client.flush(timeout=10)

    node_run = server.run_named("call_service")
    assert server.run_named("service_chain")["parent_run_id"] == node_run["id"]
    assert carriers(server, "breaker_opened") == ["call_service"]
    assert decision(node_run, "breaker_opened")["breaker"] == "svc"


# ---- verification gates --------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", GATE_CASES)
async def test_gate_verdict_lands_on_the_gate_node_run(
    mode: str, case: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: the verdict's gate, passed, score, reasons, rounds and route arrive, on the
    gate node's own run (``fact_check``): no ``verification_gate`` run comes between."""
    await gate_scenario(traced(mode, client), case)
    client.flush(timeout=10)

    node_run = server.run_named("fact_check")
    assert "verification_gate" not in server.names()
    assert node_run["parent_run_id"] == only_root(server)["id"]
    assert decisions(node_run) == ["gate_verdict"]
    assert carriers(server, "gate_verdict") == ["fact_check"]
    verdict = decision(node_run, "gate_verdict")
    if case == "passing":
        assert verdict == {
            "node": "fact_check",
            "passed": True,
            "score": 0.9,
            "reasons": [],
            "rounds": 0,
            "route": GATE_CASES[case][1],
        }
    else:
        assert verdict == {
            "node": "fact_check",
            "passed": False,
            "score": 0.5,
            "reasons": ["confidence 0.50 is below 0.75"],
            "rounds": 1,
            "route": GATE_CASES[case][1],
        }


# ---- loop limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_loop_limit_from_loop_guard_lands_on_the_path_function_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: a conditional edge's path function is traced as its own run,
    ``loop_guard_<path>``, a child of the run of the node the edge leaves; the limit is
    on the third such run (routed to END), not on the supervisor's run nor the root."""
    await loop_guard_scenario(traced(mode, client))
    client.flush(timeout=10)

    supervisors = server.runs_named("supervisor")
    paths = server.runs_named("loop_guard_next_step")
    assert len(supervisors) == len(paths) == 3
    for supervisor, path in zip(supervisors, paths, strict=True):
        assert path["parent_run_id"] == supervisor["id"]
        assert decisions(supervisor) == []
    assert [decisions(path) for path in paths] == [[], [], ["loop_limit"]]
    assert decision(paths[2], "loop_limit") == {
        "node": "worker",
        "limit": "max_visits_per_node",
        "count": 2,
        "maximum": 2,
        "routed_to": END,
    }
    assert carriers(server, "loop_limit") == ["loop_guard_next_step"]


@pytest.mark.parametrize("mode", MODES)
async def test_loop_limit_from_guard_lands_on_the_refused_node_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: guard(loop=...) marks the run of the node entry it refuses (the third),
    whose error is the LoopLimitExceeded, with routed_to None."""
    await guard_loop_scenario(traced(mode, client))
    client.flush(timeout=10)

    works = server.runs_named("work")
    assert [decisions(run) for run in works] == [[], [], ["loop_limit"]]
    assert "LoopLimitExceeded" in works[2]["error"]
    assert decision(works[2], "loop_limit") == {
        "node": "work",
        "limit": "max_visits_per_node",
        "count": 2,
        "maximum": 2,
        "routed_to": None,
    }
    assert carriers(server, "loop_limit") == ["work"]


# ---- dead letters --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_dead_lettered_lands_on_the_error_handler_run_with_the_letter_id(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: the dead_letter handler's run names the node, the error code and the id
    of the letter actually filed."""
    dlq = DeadLetterQueue.from_url("memory://")
    await dead_letter_scenario(traced(mode, client), dlq)
    client.flush(timeout=10)

    (letter,) = dlq.list()
    handler = server.run_named("__error_handler__search")
    assert handler["parent_run_id"] == only_root(server)["id"]
    assert decisions(handler) == ["dead_lettered"]
    assert decision(handler, "dead_lettered") == {
        "node": "search",
        "error_code": "CONNECTION",
        "letter": letter.id,
    }
    assert decisions(server.run_named("search")) == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_spent_chain_is_dead_lettered_on_the_last_handler_run(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: when the last fallback fails too, its handler's run has fallbacks_spent then
    dead_lettered (the sink runs inside that handler), the first handler's run the hop."""
    dlq = DeadLetterQueue.from_url("memory://")
    await spent_chain_scenario(traced(mode, client), dlq)
    client.flush(timeout=10)

    (letter,) = dlq.list()
    assert letter.node == "cached"
    assert decisions(server.run_named("__error_handler__search")) == ["fallback_taken"]
    last = server.run_named("__error_handler__cached")
    assert decisions(last) == ["fallbacks_spent", "dead_lettered"]
    assert decision(last, "fallbacks_spent") == {"node": "cached", "error": "KeyError"}
    assert decision(last, "dead_lettered") == {
        "node": "cached",
        "error_code": letter.error_code,
        "letter": letter.id,
    }


# ---- the checkpointer ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_saver_failover_gets_a_run_of_its_own(
    mode: str, client: Client, server: FakeLangSmith
) -> None:
    """Proves: a failover during a traced run reaches LangSmith. LangGraph calls the
    checkpointer from its loop, outside every run, so the event gets a short root run
    of its own in the same project, next to the graph's."""
    events = await saver_scenario(traced(mode, client))
    client.flush(timeout=10)

    [failover] = [event for event in events if isinstance(event, SaverFailedOver)]
    assert failover.operation in ("put", "put_writes")  # the writes after `first`
    assert {ROOT, "first", "second"} <= server.names()
    name = PREFIX + "saver_failed_over"
    assert carriers(server, "saver_failed_over") == [name]
    run = server.run_named(name)
    assert run.get("parent_run_id") is None
    assert run["session_name"] == PROJECT
    assert decisions(run) == ["saver_failed_over"]
    fields = decision(run, "saver_failed_over")
    assert fields["saver"] == failover.saver
    assert fields["operation"] == failover.operation
    assert "checkpoint store is down" in fields["error"]


# ---- tracing off ---------------------------------------------------------------------------

CALL_SITES = {
    events_module: "annotate_event",
    saver_module: "trace_event",
}
"""Every module that annotates, and the name it imported: the event hub's ``publish``
(used by breakers, guards, fallbacks, gates, loop guards and the dead-letter sink) and
``ResilientSaver``."""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("off", ["no tracing_context", "tracing_context(enabled=False)"])
async def test_with_tracing_off_nothing_is_sent_and_annotate_returns_false(
    mode: str, off: str, client: Client, server: FakeLangSmith, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Proves: with tracing off (not switched on, or switched off with a client aimed at
    the server), every scenario still runs, each decision still calls the real annotate
    function, which returns False, and the server receives no run."""
    assert annotate("probe", {"x": 1}) is False
    calls: list[tuple[str, bool]] = []

    def spy(real: Callable[..., bool]) -> Callable[..., bool]:
        def call(what: Any, *args: Any) -> bool:
            result = real(what, *args)
            calls.append((what if isinstance(what, str) else type(what).__name__, result))
            return result

        return call

    for module, name in CALL_SITES.items():
        monkeypatch.setattr(module, name, spy(getattr(module, name)))
    if off == "no tracing_context":
        # fail fast: a shell's LANGSMITH_TRACING=true would send these runs to its endpoint
        assert not ls.utils.tracing_is_enabled(), "LANGSMITH_TRACING leaks from the environment"
        go = Runner(mode)
    else:

        def disabled() -> contextlib.AbstractContextManager[Any]:
            return ls.tracing_context(client=client, enabled=False)

        go = Runner(mode, disabled)

    await breaker_scenario(go)
    await fallback_scenario(go, b_open=False)
    await fallback_scenario(go, b_open=True)
    for case in GATE_CASES:
        await gate_scenario(go, case)
    await loop_guard_scenario(go)
    await guard_loop_scenario(go)
    await dead_letter_scenario(go, DeadLetterQueue.from_url("memory://"))
    await spent_chain_scenario(go, DeadLetterQueue.from_url("memory://"))
    assert [type(event) for event in await saver_scenario(go)] == [SaverFailedOver]
    client.flush(timeout=10)

    assert {name for name, _ in calls} == {
        "BreakerOpened",
        "CallRejected",
        "BreakerHalfOpened",
        "BreakerClosed",
        "FallbackTaken",
        "FallbackSkipped",
        "FallbacksSpent",
        "GateVerdict",
        "LoopLimitReached",
        "DeadLettered",
        "SaverFailedOver",
    }
    assert not any(result for _, result in calls)
    assert server.run_paths() == []
    assert server.runs == {}
