"""Recovery of runs from their checkpoints (``checkpoint/recovery.py``) and the
``ResilientSaver`` methods that offer it: ``failed_runs``, ``interrupted_runs``,
``resume`` and ``rollback`` (sync and async).

Graphs are real ``StateGraph``s whose nodes count their calls and, on demand, raise,
wait on ``interrupt()`` or ask LangGraph to drain the run (``RunControl``). The savers
are ``ResilientSaver`` over an ``InMemorySaver`` or a ``SqliteSaver`` file, the raw
savers for the module functions, and a ``FaultySaver`` primary for the failover case.
Where the checkpoint-only reading (no ``graph=``) is checked, LangGraph's own
``graph.get_state(config).next`` is the reference.
"""

from __future__ import annotations

import asyncio
import operator
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import tenacity
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.errors import GraphDrained
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import RunControl
from langgraph.types import Command, Send, interrupt

from langgraph_resilience import ResilientSaver, SaverPolicy, StoredRun
from langgraph_resilience.checkpoint import recovery
from tests.checkpoint._faults import FaultySaver
from tests.graph._helpers import CONTEXT_MODES, MODES, thread

SAVERS = ["memory", "sqlite"]


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    i: int  # a Send's payload


class Nodes:
    """Node bodies that log ``<name><call number>`` and misbehave on demand.

    ``broken`` nodes raise ``RuntimeError("<name> broke")``, ``asking`` nodes wait on
    ``interrupt()``, ``draining`` nodes ask LangGraph to stop the run at the end of
    their step; a ``before`` hook runs first, and a node in ``waits`` starts only once
    its event is set. ``mode`` makes them sync (``invoke``) or async (``ainvoke``) nodes.
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls: Counter[str] = Counter()
        self.broken: set[str] = set()
        self.asking: set[str] = set()
        self.draining: set[str] = set()
        self.control: RunControl | None = None
        self.before: dict[str, Callable[[], None]] = {}
        self.waits: dict[str, threading.Event] = {}

    def body(self, name: str, state: State) -> dict[str, Any]:
        self.calls[name] += 1
        if name in self.before:
            self.before[name]()
        if name in self.broken:
            raise RuntimeError(f"{name} broke")
        if name in self.asking:
            return {"log": [f"{name}={interrupt(f'{name}?')}"]}
        if name in self.draining and self.control is not None:
            self.control.request_drain()
        label = f"{name}{state['i']}" if "i" in state else name
        return {"log": [f"{label}{self.calls[name]}"]}

    def node(self, name: str) -> Callable[..., Any]:
        if self.mode == "sync":

            def sync_node(state: State) -> dict[str, Any]:
                if name in self.waits:
                    self.waits[name].wait(timeout=5)
                return self.body(name, state)

            return sync_node

        async def async_node(state: State) -> dict[str, Any]:
            if name in self.waits:
                await asyncio.to_thread(self.waits[name].wait, 5)
            return self.body(name, state)

        return async_node

    async def run(self, graph: Any, inp: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        """One ``invoke``/``ainvoke`` with a fresh ``RunControl``, checkpointing each step."""
        self.control = RunControl()
        kwargs = {"control": self.control, "durability": "sync", **kwargs}
        if self.mode == "sync":
            return graph.invoke(inp, config, **kwargs)
        return await graph.ainvoke(inp, config, **kwargs)


# ---- graph shapes (each returns an uncompiled StateGraph over `nodes`)


def chain(nodes: Nodes) -> StateGraph:
    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, nodes.node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g


def fan_in(nodes: Nodes) -> StateGraph:
    g = StateGraph(State)
    for name in "abcd":
        g.add_node(name, nodes.node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge(["b", "c"], "d")
    return g


def uneven_fan_in(nodes: Nodes) -> StateGraph:
    """b, and c -> e, both feed the join into d: the join waits a step for e."""
    g = StateGraph(State)
    for name in "abcde":
        g.add_node(name, nodes.node(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("a", "c")
    g.add_edge("c", "e")
    g.add_edge(["b", "e"], "d")
    return g


def conditional(nodes: Nodes) -> StateGraph:
    g = StateGraph(State)
    for name in "abcd":
        g.add_node(name, nodes.node(name))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: ["b", "c"] if s["log"] else "d")
    g.add_edge("b", "d")
    g.add_edge("c", "d")
    return g


def map_reduce(nodes: Nodes) -> StateGraph:
    g = StateGraph(State)
    for name in ("a", "w", "r"):
        g.add_node(name, nodes.node(name))
    g.add_edge(START, "a")
    g.add_conditional_edges("a", lambda s: [Send("w", {"i": i}) for i in range(3)])
    g.add_edge("w", "r")
    return g


def subgraph(nodes: Nodes) -> StateGraph:
    inner = StateGraph(State)
    inner.add_node("x", nodes.node("x"))
    inner.add_node("y", nodes.node("y"))
    inner.add_edge(START, "x")
    inner.add_edge("x", "y")
    g = StateGraph(State)
    g.add_node("a", nodes.node("a"))
    g.add_node("sub", inner.compile())
    g.add_node("c", nodes.node("c"))
    g.add_edge(START, "a")
    g.add_edge("a", "sub")
    g.add_edge("sub", "c")
    return g


def cycle(nodes: Nodes) -> StateGraph:
    g = StateGraph(State)
    g.add_node("a", nodes.node("a"))
    g.add_node("b", nodes.node("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: "a" if len(s["log"]) < 6 else END)
    return g


# The stops each shape makes when every node is an `interrupt_before` / `interrupt_after`
# node, or asks for a drain: LangGraph's `get_state().next` (as sets) at each pause.
STOPS: dict[str, dict[str, list[set[str]]]] = {
    "chain": {
        "before": [{"a"}, {"b"}, {"c"}],
        "after": [{"b"}, {"c"}],
        "drain": [{"b"}, {"c"}],
    },
    "fan_in": {
        "before": [{"a"}, {"b", "c"}, {"d"}],
        "after": [{"b", "c"}, {"d"}],
        "drain": [{"b", "c"}, {"d"}],
    },
    "uneven_fan_in": {
        "before": [{"a"}, {"b", "c"}, {"e"}, {"d"}],
        "after": [{"b", "c"}, {"e"}, {"d"}],
        "drain": [{"b", "c"}, {"e"}, {"d"}],
    },
    "conditional": {
        "before": [{"a"}, {"b", "c"}, {"d"}],
        "after": [{"b", "c"}, {"d"}],
        "drain": [{"b", "c"}, {"d"}],
    },
    "map_reduce": {
        "before": [{"a"}, {"w"}, {"r"}],
        "after": [{"w"}, {"r"}],
        "drain": [{"w"}, {"r"}],
    },
    # A drain asked inside the subgraph stops the parent with `sub` still pending.
    "subgraph": {
        "before": [{"a"}, {"sub"}, {"c"}],
        "after": [{"sub"}, {"c"}],
        "drain": [{"sub"}, {"sub"}, {"c"}],
    },
    "cycle": {
        "before": [{"a"}, {"b"}] * 3,
        "after": [{"b"}, {"a"}, {"b"}, {"a"}, {"b"}],
        "drain": [{"b"}, {"a"}, {"b"}, {"a"}, {"b"}],
    },
}
SHAPES: dict[str, Callable[[Nodes], StateGraph]] = {
    "chain": chain,
    "fan_in": fan_in,
    "uneven_fan_in": uneven_fan_in,
    "conditional": conditional,
    "map_reduce": map_reduce,
    "subgraph": subgraph,
    "cycle": cycle,
}


# ---- savers


class Hooked(BaseCheckpointSaver[Any]):
    """Calls each of ``on_writes`` with the task writes that ``put_writes`` stored."""

    on_writes: tuple[Callable[[Sequence[tuple[str, Any]]], None], ...] = ()

    def put_writes(
        self, config: RunnableConfig, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        super().put_writes(config, writes, task_id, task_path)
        for hook in self.on_writes:
            hook(writes)


class HookedMemory(Hooked, InMemorySaver):
    pass


class HookedSqlite(Hooked, SqliteSaver):
    pass


def after_stored(saver: ResilientSaver, nodes: Nodes, waiter: str, entry: str) -> None:
    """Make node ``waiter`` start only once the log entry ``entry`` is stored: a sibling
    that failed before it would stop the step and leave the entry unstored."""
    stored = threading.Event()
    saver.primary.on_writes = (lambda writes: ("log", [entry]) in writes and stored.set(),)
    nodes.waits[waiter] = stored


@pytest.fixture(params=SAVERS)
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResilientSaver]:
    """A ResilientSaver over an InMemorySaver or over a SqliteSaver on a file (which
    report their stored writes, see ``after_stored``)."""
    if request.param == "memory":
        yield ResilientSaver(HookedMemory())
        return
    conn = sqlite3.connect(tmp_path / "checkpoints.db", check_same_thread=False)
    try:
        yield ResilientSaver(HookedSqlite(conn))
    finally:
        conn.close()


@pytest.fixture(params=MODES)
def nodes(request: pytest.FixtureRequest) -> Nodes:
    """Sync nodes run with invoke, async ones with ainvoke."""
    return Nodes(request.param)


@pytest.fixture(params=CONTEXT_MODES)
def asking_nodes(request: pytest.FixtureRequest) -> Nodes:
    """``nodes`` for tests that use interrupt(), which async nodes can call on 3.11+."""
    return Nodes(request.param)


class CrashingSaver(InMemorySaver):
    """An InMemorySaver that stops storing, as if the process had died: after
    ``dies_after_puts`` checkpoints (nothing more is stored), or, once ``lose_next_put``
    is set, at the next checkpoint (after the writes of the step's tasks have landed)."""

    def __init__(self, *, dies_after_puts: int | None = None) -> None:
        super().__init__()
        self.dies_after_puts = dies_after_puts
        self.puts = 0
        self.dead = False
        self.lose_next_put = False
        self.wrote = threading.Event()

    def put(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        if self.lose_next_put:
            self.wrote.wait(timeout=5)  # the step's put_writes run in another thread
            self.dead = True
        if self.dead:
            raise ValueError("process died")
        saved = super().put(*args, **kwargs)
        self.puts += 1
        self.dead = self.puts == self.dies_after_puts
        return saved

    def put_writes(self, *args: Any, **kwargs: Any) -> None:
        if self.dead:
            raise ValueError("process died")
        super().put_writes(*args, **kwargs)
        self.wrote.set()

    def revive(self) -> None:
        self.dead = self.lose_next_put = False

    async def aput(self, *args: Any, **kwargs: Any) -> RunnableConfig:
        if self.lose_next_put:  # let the step's aput_writes land first, off the loop
            await asyncio.to_thread(self.wrote.wait, 5)
        return self.put(*args, **kwargs)

    async def aput_writes(self, *args: Any, **kwargs: Any) -> None:
        self.put_writes(*args, **kwargs)


async def failed(saver: ResilientSaver, mode: str, **kwargs: Any) -> list[StoredRun]:
    if mode == "sync":
        return saver.failed_runs(**kwargs)
    return await saver.afailed_runs(**kwargs)


async def interrupted(saver: ResilientSaver, mode: str, **kwargs: Any) -> list[StoredRun]:
    if mode == "sync":
        return saver.interrupted_runs(**kwargs)
    return await saver.ainterrupted_runs(**kwargs)


async def resume(saver: ResilientSaver, mode: str, graph: Any, thread_id: str) -> Any:
    if mode == "sync":
        return saver.resume(graph, thread_id, durability="sync")
    return await saver.aresume(graph, thread_id, durability="sync")


async def rollback(saver: ResilientSaver, mode: str, thread_id: str, checkpoint_id: str) -> Any:
    if mode == "sync":
        return saver.rollback(thread_id, checkpoint_id)
    return await saver.arollback(thread_id, checkpoint_id)


def latest_id(graph: Any, config: RunnableConfig) -> str:
    return str(graph.get_state(config).config["configurable"]["checkpoint_id"])


def ids(runs: list[StoredRun]) -> list[str]:
    return [run.thread_id for run in runs]


# ---- classification


async def test_each_thread_is_classified_by_how_its_run_stopped(
    saver: ResilientSaver, asking_nodes: Nodes
) -> None:
    """Done: in no list. A raise: failed, with its repr and node. interrupt(): waiting,
    in no list. interrupt_before or a drain: interrupted, with the pending node."""
    nodes = asking_nodes
    done = chain(nodes).compile(checkpointer=saver)
    await nodes.run(done, {"log": []}, thread("done"))

    nodes.broken = {"b"}
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(done, {"log": []}, thread("failed"))
    nodes.broken = set()

    nodes.asking = {"b"}
    await nodes.run(done, {"log": []}, thread("waiting"))
    nodes.asking = set()

    paused = chain(nodes).compile(checkpointer=saver, interrupt_before=["c"])
    await nodes.run(paused, {"log": []}, thread("paused"))

    nodes.draining = {"a"}
    with pytest.raises(GraphDrained):
        await nodes.run(done, {"log": []}, thread("drained"))

    [fail] = await failed(saver, nodes.mode)
    assert fail == StoredRun(
        thread_id="failed",
        checkpoint_id=latest_id(done, thread("failed")),
        step=1,
        next=("b",),
        errors=("RuntimeError('b broke')",),
        waiting=False,
    )
    assert fail.status == "failed"
    assert fail.config == thread("failed")

    cut = {run.thread_id: run for run in await interrupted(saver, nodes.mode)}
    assert sorted(cut) == ["drained", "paused"]
    assert cut["paused"].next == ("c",)
    assert cut["paused"].errors == ()
    assert cut["paused"].step == 2
    assert cut["drained"].next == ("b",)
    assert cut["drained"].checkpoint_id == latest_id(done, thread("drained"))
    assert {run.status for run in cut.values()} == {"interrupted"}

    waiting = recovery.stored_run(saver.get_tuple(thread("waiting")))
    assert (waiting.status, waiting.next, waiting.waiting) == ("waiting", ("b",), True)
    finished = recovery.stored_run(saver.get_tuple(thread("done")))
    assert (finished.status, finished.next, finished.step) == ("done", (), 3)

    nodes.draining, nodes.asking = set(), {"b"}
    answered = await nodes.run(done, Command(resume="yes"), thread("waiting"))
    assert answered["log"][-2:] == ["b=yes", "c2"]
    assert recovery.stored_run(saver.get_tuple(thread("waiting"))).status == "done"
    assert ids(await failed(saver, nodes.mode)) == ["failed"]


async def test_the_graph_variant_classifies_the_same_threads(asking_nodes: Nodes) -> None:
    """With graph=, the lists hold the same threads and next is get_state().next."""
    nodes = asking_nodes
    saver = ResilientSaver(InMemorySaver())
    graph = fan_in(nodes).compile(checkpointer=saver)
    nodes.broken = {"d"}
    with pytest.raises(RuntimeError, match="d broke"):
        await nodes.run(graph, {"log": []}, thread("failed"))
    nodes.broken, nodes.draining = set(), {"a"}
    with pytest.raises(GraphDrained):
        await nodes.run(graph, {"log": []}, thread("drained"))
    nodes.draining, nodes.asking = set(), {"b"}
    await nodes.run(graph, {"log": []}, thread("waiting"))

    [fail] = await failed(saver, nodes.mode, graph=graph)
    assert (fail.thread_id, fail.next) == ("failed", ("d",))
    assert fail.errors == ("RuntimeError('d broke')",)
    [cut] = await interrupted(saver, nodes.mode, graph=graph)
    assert (cut.thread_id, cut.next) == ("drained", graph.get_state(thread("drained")).next)
    waiting = recovery.stored_run(saver.get_tuple(thread("waiting")), graph)
    assert waiting.status == "waiting"
    assert waiting.next == graph.get_state(thread("waiting")).next == ("b",)


async def test_an_interrupt_inside_a_subgraph_waits_and_an_error_there_fails(
    asking_nodes: Nodes,
) -> None:
    """The parent's checkpoint carries the subgraph's interrupt or error: the thread is
    waiting (listed nowhere) or failed (with the inner repr), `sub` pending either way."""
    nodes = asking_nodes
    saver = ResilientSaver(InMemorySaver())
    graph = subgraph(nodes).compile(checkpointer=saver)
    nodes.asking = {"y"}
    await nodes.run(graph, {"log": []}, thread("asks"))
    nodes.asking, nodes.broken = set(), {"x"}
    with pytest.raises(RuntimeError, match="x broke"):
        await nodes.run(graph, {"log": []}, thread("breaks"))

    [fail] = await failed(saver, nodes.mode)
    assert (fail.thread_id, fail.next, fail.errors) == (
        "breaks",
        ("sub",),
        ("RuntimeError('x broke')",),
    )
    assert await interrupted(saver, nodes.mode) == []
    asks = recovery.stored_run(saver.get_tuple(thread("asks")))
    assert (asks.status, asks.next) == ("waiting", ("sub",))


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            "memory",
        ),
        "sqlite",
    ],
)
async def test_runs_are_listed_newest_first(kind: str, tmp_path: Path, nodes: Nodes) -> None:
    """Three failed threads and two cut off ones come back newest first."""
    if kind == "memory":
        saver = ResilientSaver(InMemorySaver())
    else:
        conn = sqlite3.connect(tmp_path / "order.db", check_same_thread=False)
        saver = ResilientSaver(SqliteSaver(conn))
    graph = chain(nodes).compile(checkpointer=saver)
    paused = chain(nodes).compile(checkpointer=saver, interrupt_before=["b"])
    for name in ("f1", "f2", "f3"):
        nodes.broken = {"a"}
        with pytest.raises(RuntimeError):
            await nodes.run(graph, {"log": []}, thread(name))
        nodes.broken = set()
        await nodes.run(paused, {"log": []}, thread(f"cut-{name}"))
    try:
        assert ids(await failed(saver, nodes.mode)) == ["f3", "f2", "f1"]
        assert ids(await interrupted(saver, nodes.mode)) == ["cut-f3", "cut-f2", "cut-f1"]
    finally:
        if kind == "sqlite":
            conn.close()


# ---- the checkpoint-only reading agrees with LangGraph


@pytest.mark.parametrize("stop", ["before", "after", "drain"])
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_pending_nodes_read_from_the_checkpoint_match_get_state(
    saver: ResilientSaver, nodes: Nodes, shape: str, stop: str
) -> None:
    """At every stop of every shape, the pending nodes read from the checkpoint alone
    are LangGraph's get_state().next (as a set; Sends count once), and with graph=
    they are exactly get_state().next; the run then resumes to the end."""
    builder = SHAPES[shape](nodes)
    if stop == "drain":
        nodes.draining = set(builder.nodes) | {"x", "y"}
        graph = builder.compile(checkpointer=saver)
    else:
        every = list(builder.nodes)
        pause = {"interrupt_before": every} if stop == "before" else {"interrupt_after": every}
        graph = builder.compile(checkpointer=saver, **pause)
    config = thread(f"{shape}-{stop}")

    stops: list[set[str]] = []
    inp: Any = {"log": []}
    for _ in range(12):
        try:
            await nodes.run(graph, inp, config)
        except GraphDrained:
            pass
        inp = None
        expected = graph.get_state(config).next
        if not expected:
            break
        stops.append(set(expected))
        [run] = await interrupted(saver, nodes.mode)
        assert set(run.next) == set(expected)
        assert run.checkpoint_id == latest_id(graph, config)
        assert recovery.stored_run(saver.get_tuple(config), graph).next == expected
    assert stops == STOPS[shape][stop]
    assert await interrupted(saver, nodes.mode) == []
    assert recovery.stored_run(saver.get_tuple(config)).status == "done"


async def test_a_run_cut_off_after_its_input_has_start_pending(nodes: Nodes) -> None:
    """Cut off right after the input checkpoint: the pending node is __start__ (as
    LangGraph says), and resuming runs the whole graph once."""
    raw = CrashingSaver(dies_after_puts=1)
    saver = ResilientSaver(raw)
    graph = chain(nodes).compile(checkpointer=saver)
    with pytest.raises(ValueError, match="process died"):
        await nodes.run(graph, {"log": []}, thread("t"))
    raw.revive()

    [run] = await interrupted(saver, nodes.mode)
    assert (run.step, run.status) == (-1, "interrupted")
    assert run.next == ("__start__",) == graph.get_state(thread("t")).next
    assert (await resume(saver, nodes.mode, graph, "t"))["log"] == ["a1", "b1", "c1"]
    assert await interrupted(saver, nodes.mode) == []


def crash_after_a(nodes: Nodes) -> tuple[ResilientSaver, CrashingSaver, Any]:
    """A chain whose process dies after a's writes are stored, before the checkpoint
    that folds them in: the latest checkpoint still has a to run, with its writes."""
    raw = CrashingSaver()
    nodes.before["a"] = lambda: setattr(raw, "lose_next_put", True)
    saver = ResilientSaver(raw)
    return saver, raw, chain(nodes).compile(checkpointer=saver)


async def test_a_run_cut_off_after_a_nodes_writes_is_interrupted(nodes: Nodes) -> None:
    """Cut off between a task's writes and the next checkpoint: listed as interrupted,
    and resuming runs only b and c (a's stored writes are used, a is not run again)."""
    saver, raw, graph = crash_after_a(nodes)
    with pytest.raises(ValueError, match="process died"):
        await nodes.run(graph, {"log": []}, thread("t"))
    raw.revive()
    nodes.before.clear()

    [run] = await interrupted(saver, nodes.mode)
    assert (run.thread_id, run.step, run.status) == ("t", 0, "interrupted")
    assert (await resume(saver, nodes.mode, graph, "t"))["log"] == ["a1", "b1", "c1"]
    assert nodes.calls == {"a": 1, "b": 1, "c": 1}


async def test_a_node_whose_writes_are_stored_is_named_and_counted(nodes: Nodes) -> None:
    """After a crash between a's writes and the next checkpoint: read from the checkpoint
    alone, `next` still names a (documented: it finished, its writes are saved and a
    resume applies them); `saved_tasks` says so, and LangGraph names nothing to run."""
    saver, raw, graph = crash_after_a(nodes)
    with pytest.raises(ValueError, match="process died"):
        await nodes.run(graph, {"log": []}, thread("t"))
    raw.revive()
    [run] = await interrupted(saver, nodes.mode)
    assert (run.next, run.saved_tasks, run.status) == (("a",), 1, "interrupted")
    assert graph.get_state(thread("t")).next == ()


async def test_the_graph_variant_lists_a_run_cut_off_after_a_nodes_writes(
    nodes: Nodes,
) -> None:
    """The same crash, asked with graph=: get_state().next is empty, yet the run is
    unfinished (its last step's writes were never checkpointed) and is listed."""
    saver, raw, graph = crash_after_a(nodes)
    with pytest.raises(ValueError, match="process died"):
        await nodes.run(graph, {"log": []}, thread("t"))
    raw.revive()
    [run] = await interrupted(saver, nodes.mode, graph=graph)
    assert (run.thread_id, run.next, run.saved_tasks) == ("t", (), 1)


async def test_a_failed_step_names_the_failed_node_and_counts_the_finished_sibling(
    nodes: Nodes,
) -> None:
    """b raises, its sibling c finishes in the same step: LangGraph (graph=) names only
    b; the checkpoint alone names both, and counts c's saved writes."""
    saver = ResilientSaver(HookedMemory())
    graph = fan_in(nodes).compile(checkpointer=saver)
    nodes.broken = {"b"}
    after_stored(saver, nodes, "b", "c1")
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(graph, {"log": []}, thread("t"))
    [run] = await failed(saver, nodes.mode)
    assert (set(run.next), run.saved_tasks) == ({"b", "c"}, 1)
    [exact] = await failed(saver, nodes.mode, graph=graph)
    assert exact.next == graph.get_state(thread("t")).next == ("b",)


async def test_a_static_pause_is_listed_as_interrupted_with_or_without_the_graph(
    nodes: Nodes,
) -> None:
    """A run paused by interrupt_before cannot be told from one cut off there (as the
    docstrings say): it is listed as interrupted, with graph= too."""
    saver = ResilientSaver(InMemorySaver())
    graph = chain(nodes).compile(checkpointer=saver, interrupt_before=["b"])
    await nodes.run(graph, {"log": []}, thread("t"))
    for kwargs in ({}, {"graph": graph}):
        [run] = await interrupted(saver, nodes.mode, **kwargs)
        assert (run.thread_id, run.next, run.waiting) == ("t", ("b",), False)


# ---- resume


async def test_resume_runs_only_the_nodes_left_after_a_drain(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """Drained after b and c's step: resume runs d only, and the thread is done."""
    graph = fan_in(nodes).compile(checkpointer=saver)
    nodes.draining = {"b"}
    with pytest.raises(GraphDrained):
        await nodes.run(graph, {"log": []}, thread("t"))
    nodes.draining = set()
    [run] = await interrupted(saver, nodes.mode)
    assert run.next == ("d",)

    result = await resume(saver, nodes.mode, graph, run.thread_id)
    assert result == {"log": ["a1", "b1", "c1", "d1"]}
    assert nodes.calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert await interrupted(saver, nodes.mode) == []
    assert recovery.stored_run(saver.get_tuple(run.config)).status == "done"


async def test_resume_after_fixing_a_failed_node_reruns_it_and_not_its_sibling(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """b raised and c finished in the same step; once b is fixed, resume runs b again
    and d, not c (its stored writes count), and the failure is gone from the list."""
    graph = fan_in(nodes).compile(checkpointer=saver)
    nodes.broken = {"b"}
    after_stored(saver, nodes, "b", "c1")
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(graph, {"log": []}, thread("t"))
    [run] = await failed(saver, nodes.mode)
    assert run.errors == ("RuntimeError('b broke')",)
    assert "b" in run.next

    nodes.broken = set()
    result = await resume(saver, nodes.mode, graph, run.thread_id)
    assert result == {"log": ["a1", "b2", "c1", "d1"]}
    assert nodes.calls == {"a": 1, "b": 2, "c": 1, "d": 1}
    assert await failed(saver, nodes.mode) == []
    assert await interrupted(saver, nodes.mode) == []


async def test_resume_on_a_still_broken_node_leaves_the_run_failed(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """Resuming before the cause is fixed raises again and the run stays failed."""
    graph = chain(nodes).compile(checkpointer=saver)
    nodes.broken = {"c"}
    with pytest.raises(RuntimeError, match="c broke"):
        await nodes.run(graph, {"log": []}, thread("t"))
    with pytest.raises(RuntimeError, match="c broke"):
        await resume(saver, nodes.mode, graph, "t")
    [run] = await failed(saver, nodes.mode)
    assert (run.next, run.step) == (("c",), 2)
    assert nodes.calls == {"a": 1, "b": 1, "c": 2}


# ---- rollback


async def test_rollback_makes_an_earlier_checkpoint_the_latest_and_resume_runs_on(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """Rolled back to the checkpoint after a: that state is the latest again (values and
    next), history keeps every old checkpoint plus one "fork", and resume reruns b, c."""
    graph = chain(nodes).compile(checkpointer=saver)
    await nodes.run(graph, {"log": []}, thread("t"))
    history = list(graph.get_state_history(thread("t")))
    [after_a] = [snap for snap in history if snap.next == ("b",)]
    old_final = history[0].config

    config = await rollback(saver, nodes.mode, "t", after_a.config["configurable"]["checkpoint_id"])

    state = graph.get_state(thread("t"))
    assert state.config["configurable"]["checkpoint_id"] == config["configurable"]["checkpoint_id"]
    assert (state.values, state.next) == ({"log": ["a1"]}, ("b",))
    assert state.metadata is not None
    assert (state.metadata["source"], state.metadata["step"]) == ("fork", 1)
    after = list(graph.get_state_history(thread("t")))
    assert len(after) == len(history) + 1
    assert [snap.config for snap in after[1:]] == [snap.config for snap in history]
    [run] = await interrupted(saver, nodes.mode)
    assert (run.checkpoint_id, run.next) == (config["configurable"]["checkpoint_id"], ("b",))

    result = await resume(saver, nodes.mode, graph, "t")
    assert result == {"log": ["a1", "b2", "c2"]}
    assert nodes.calls == {"a": 1, "b": 2, "c": 2}
    assert graph.get_state(old_final).values == {"log": ["a1", "b1", "c1"]}
    assert await interrupted(saver, nodes.mode) == []


async def test_rollback_of_a_failed_run_reruns_from_the_chosen_checkpoint(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """A run failed at c is rolled back to before a: the fork is no longer failed (the
    old errors are not copied), and resume runs a, b and c again."""
    graph = chain(nodes).compile(checkpointer=saver)
    nodes.broken = {"c"}
    with pytest.raises(RuntimeError, match="c broke"):
        await nodes.run(graph, {"log": []}, thread("t"))
    [before_a] = [s for s in graph.get_state_history(thread("t")) if s.next == ("a",)]
    await rollback(saver, nodes.mode, "t", before_a.config["configurable"]["checkpoint_id"])
    assert await failed(saver, nodes.mode) == []
    [run] = await interrupted(saver, nodes.mode)
    assert run.next == ("a",)

    nodes.broken = set()
    assert (await resume(saver, nodes.mode, graph, "t"))["log"] == ["a2", "b2", "c2"]


async def test_rollback_rejects_an_unknown_checkpoint_and_an_empty_thread(
    saver: ResilientSaver, nodes: Nodes
) -> None:
    """An id the thread does not have (made up, or another thread's) raises ValueError
    naming it, and so does an empty thread id; nothing is written."""
    graph = chain(nodes).compile(checkpointer=saver)
    await nodes.run(graph, {"log": []}, thread("t"))
    await nodes.run(graph, {"log": []}, thread("other"))
    foreign = latest_id(graph, thread("other"))
    count = len(list(saver.list(None)))

    for bad in ("1f000000-0000-6000-8000-000000000000", foreign):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            await rollback(saver, nodes.mode, "t", bad)
    with pytest.raises(ValueError, match="thread_id must be a non-empty string"):
        await rollback(saver, nodes.mode, "", foreign)
    assert len(list(saver.list(None))) == count


# ---- with a standby


@pytest.fixture
def failover(tmp_path: Path) -> Iterator[tuple[ResilientSaver, FaultySaver]]:
    """A ResilientSaver over a FaultySaver primary, with a SqliteSaver standby."""
    conn = sqlite3.connect(tmp_path / "standby.db", check_same_thread=False)
    primary = FaultySaver()
    saver = ResilientSaver(
        primary, standby=SqliteSaver(conn), policy=SaverPolicy(wait=tenacity.wait_none())
    )
    try:
        yield saver, primary
    finally:
        saver.flush()
        conn.close()


async def test_failed_runs_are_listed_while_the_saver_is_failed_over(
    failover: tuple[ResilientSaver, FaultySaver], nodes: Nodes
) -> None:
    """With the primary down, the lists come from the standby: a failure mirrored there
    before the outage and one made during it, newest first; resume works there too."""
    saver, primary = failover
    graph = chain(nodes).compile(checkpointer=saver)
    nodes.broken = {"b"}
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(graph, {"log": []}, thread("before"))
    saver.flush()

    primary.fail(ConnectionError("primary down"))
    assert ids(await failed(saver, nodes.mode)) == ["before"]
    status = saver.status()
    assert (status.active, status.failovers) == ("standby", 1)
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(graph, {"log": []}, thread("during"))
    assert ids(await failed(saver, nodes.mode)) == ["during", "before"]
    assert [run.next for run in await failed(saver, nodes.mode)] == [("b",), ("b",)]

    nodes.broken = set()
    assert (await resume(saver, nodes.mode, graph, "during"))["log"] == ["a2", "b3", "c1"]
    assert ids(await failed(saver, nodes.mode)) == ["before"]
    assert saver.status().active == "standby"


# ---- the module functions on plain savers


async def test_module_functions_work_on_a_plain_saver(nodes: Nodes) -> None:
    """recovery.* on a bare InMemorySaver: lists, stored_run and rollback, sync and async."""
    raw = InMemorySaver()
    graph = chain(nodes).compile(checkpointer=raw)
    nodes.broken = {"b"}
    with pytest.raises(RuntimeError, match="b broke"):
        await nodes.run(graph, {"log": []}, thread("failed"))
    nodes.broken, nodes.draining = set(), {"a"}
    with pytest.raises(GraphDrained):
        await nodes.run(graph, {"log": []}, thread("cut"))
    nodes.draining = set()

    assert ids(recovery.failed_runs(raw)) == ["failed"]
    assert ids(await recovery.afailed_runs(raw)) == ["failed"]
    assert ids(recovery.interrupted_runs(raw, graph=graph)) == ["cut"]
    assert ids(await recovery.ainterrupted_runs(raw)) == ["cut"]

    [before_a] = [s for s in graph.get_state_history(thread("cut")) if s.next == ("a",)]
    target = before_a.config["configurable"]["checkpoint_id"]
    if nodes.mode == "sync":
        config = recovery.rollback(raw, "cut", target)
    else:
        config = await recovery.arollback(raw, "cut", target)
    assert latest_id(graph, thread("cut")) == config["configurable"]["checkpoint_id"]
    assert graph.get_state(thread("cut")).next == ("a",)
    nodes.calls.clear()
    assert (await nodes.run(graph, None, thread("cut")))["log"] == ["a1", "b1", "c1"]


async def test_module_functions_work_on_a_plain_sqlite_saver(tmp_path: Path) -> None:
    """recovery.* on a bare SqliteSaver: both lists (newest first) and a rollback. The
    lists do not read a thread while SqliteSaver holds its lock for a list() (they once
    deadlocked: they run in a daemon thread, so a deadlock fails instead of hanging)."""
    conn = sqlite3.connect(tmp_path / "raw.db", check_same_thread=False)
    raw = SqliteSaver(conn)
    nodes = Nodes("sync")
    graph = chain(nodes).compile(checkpointer=raw)
    nodes.broken = {"b"}
    for name in ("t1", "t2"):
        with pytest.raises(RuntimeError, match="b broke"):
            graph.invoke({"log": []}, thread(name))
    nodes.broken, nodes.draining = set(), {"a"}
    with pytest.raises(GraphDrained):
        await nodes.run(graph, {"log": []}, thread("cut"))

    found: list[list[StoredRun]] = []
    lists = lambda: found.extend((recovery.failed_runs(raw), recovery.interrupted_runs(raw)))  # noqa: E731
    worker = threading.Thread(target=lists, daemon=True)
    worker.start()
    worker.join(timeout=5)  # returns in milliseconds; the full wait only on a deadlock
    assert not worker.is_alive(), "recovery.failed_runs(SqliteSaver) deadlocked"
    assert [ids(runs) for runs in found] == [["t2", "t1"], ["cut"]]

    [before_b] = [s for s in graph.get_state_history(thread("t1")) if s.next == ("b",)]
    recovery.rollback(raw, "t1", before_b.config["configurable"]["checkpoint_id"])
    assert ids(recovery.failed_runs(raw)) == ["t2"]
    assert ids(recovery.interrupted_runs(raw)) == ["t1", "cut"]
    conn.close()


async def test_async_module_functions_work_on_a_plain_async_sqlite_saver(tmp_path: Path) -> None:
    """recovery.a* on a bare AsyncSqliteSaver: the lists (the same once-deadlock, on
    its asyncio lock) and arollback."""
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "raw.db")) as raw:
        nodes = Nodes("async")
        graph = chain(nodes).compile(checkpointer=raw)
        nodes.broken = {"b"}
        with pytest.raises(RuntimeError, match="b broke"):
            await graph.ainvoke({"log": []}, thread("t"))
        runs = await asyncio.wait_for(recovery.afailed_runs(raw), timeout=5)  # or deadlock
        assert [(run.thread_id, run.next) for run in runs] == [("t", ("b",))]

        [before_b] = [s async for s in graph.aget_state_history(thread("t")) if s.next == ("b",)]
        await recovery.arollback(raw, "t", before_b.config["configurable"]["checkpoint_id"])
        assert await recovery.afailed_runs(raw) == []
        assert ids(await recovery.ainterrupted_runs(raw)) == ["t"]
        nodes.broken = set()
        assert (await graph.ainvoke(None, thread("t")))["log"] == ["a1", "b2", "c1"]
