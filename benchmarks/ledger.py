"""Part 4: what the run's ledger adds to each node-step.

A linear ``StateGraph`` (``START -> n0 -> ... -> n{N-1} -> END``, each node
``{"x": s["x"] + 1}``) is built three ways, every node the same function:

    A  ``guard(node)`` (no breaker), state schema *without* ``ResilienceState``: guard
       finds no ledger in the state and writes none. The baseline.
    B  the same guarded nodes, state schema *with* ``ResilienceState``: every step
       records its visit (guard builds an update, ``merge_ledgers`` folds it in, and
       with a checkpointer the grown ledger is checkpointed).
    C  plain nodes, no ledger: a reference that shows guard's own cost (A - C).

Each row (sync ``invoke`` or ``ainvoke``; no checkpointer or an ``InMemorySaver`` with
a fresh ``thread_id`` per invocation; 10 or 50 nodes) alternates invocations of its
graphs as part 2 does: every group of invocations times each graph once, and the
order changes from one group to the next (with two graphs, which one goes first flips
every pair; with three, the groups cycle through all six orders). The headline is the
median of all the invocations of B minus that of A, per step, as a % of A's step; the
per-round medians show the spread. Threads are deleted from the savers between groups,
outside the timed window, so the savers do not grow during the run.

A breakdown (sync ``invoke``, 10 nodes, no checkpointer) then splits the ledger's cost
with two more graphs in the interleaving: E, plain nodes that also write ``{}`` to a
last-write-wins ``resilience`` key, and B', guarded nodes whose ledger key keeps the
latest write instead of merging. The parts add up to B - A:

    framework  LangGraph's own cost of one more state key written at every step (E - C).
    guard      guard's ledger path (find the ledger and the step, build the visit, add it
               to the result), with LangGraph carrying the bigger write: (B' - A) - (E - C).
    reducer    ``merge_ledgers`` (B - B').

Guard's ledger path and ``merge_ledgers`` are also timed in situ, from inside the run,
as part 2 does: the guarded node with and without the ledger, and a reducer that wraps
``merge_ledgers``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import ResilienceState, guard, ledger
from langgraph_resilience.core.ledger import Ledger, merge_ledgers

__all__ = ["LONG_NODES", "NODES", "Row", "rows_for", "run_ledger", "run_row"]

NODES = 10
LONG_NODES = 50
INPUT = {"x": 0}

GUARDED = "guarded"  # A
LEDGER = "ledger"  # B
PLAIN = "plain"  # C


class State(TypedDict):
    x: int


class LedgerState(ResilienceState):
    x: int


# Annotated ``Any``, not ``State``: LangGraph takes a node's input schema from its first
# parameter's annotation, so a node annotated with the ledger-less ``State`` would not be
# given the ledger in B, and guard would silently record nothing.
def step(s: Any) -> dict[str, int]:
    return {"x": s["x"] + 1}


async def astep(s: Any) -> dict[str, int]:
    return {"x": s["x"] + 1}


@dataclass(frozen=True)
class Row:
    """One row of the table: a way of running the graphs, and how long to time it."""

    key: str
    label: str
    is_async: bool
    checkpointer: bool
    nodes: int
    rounds: int
    per_round: int
    warmup: int
    with_plain: bool = True

    @property
    def variants(self) -> tuple[str, ...]:
        return (GUARDED, LEDGER, PLAIN) if self.with_plain else (GUARDED, LEDGER)


def rows_for(quick: bool) -> list[Row]:
    """The rows of a full run, or of a quick one (fewer invocations, no 50-node rows).

    Invocations per round are multiples of 6, so that every order of three graphs comes
    up equally often.
    """
    sync, asyn = "sync `invoke`", "async `ainvoke`"
    none, memory = "no checkpointer", "InMemorySaver"
    if quick:
        return [
            Row("sync_none", f"{sync}, {none}", False, False, NODES, 2, 120, 30),
            Row("async_none", f"{asyn}, {none}", True, False, NODES, 2, 120, 30),
            Row("sync_memory", f"{sync}, {memory}", False, True, NODES, 2, 60, 20),
            Row("async_memory", f"{asyn}, {memory}", True, True, NODES, 2, 60, 20),
        ]
    n, long = NODES, LONG_NODES
    return [
        Row("sync_none", f"{sync}, {none}", False, False, n, 5, 600, 200),
        Row("async_none", f"{asyn}, {none}", True, False, n, 5, 600, 200),
        Row("sync_memory", f"{sync}, {memory}", False, True, n, 5, 300, 100),
        Row("async_memory", f"{asyn}, {memory}", True, True, n, 5, 300, 100),
        Row("sync_none_50", f"{sync}, {none}", False, False, long, 5, 120, 30, False),
        Row("async_none_50", f"{asyn}, {none}", True, False, long, 5, 120, 30, False),
        Row("sync_memory_50", f"{sync}, {memory}", False, True, long, 5, 60, 20, False),
        Row("async_memory_50", f"{asyn}, {memory}", True, True, long, 5, 60, 20, False),
    ]


# ---- graphs


def _linear(schema: type, node: Any, n: int, saver: InMemorySaver | None) -> Any:
    builder: StateGraph[Any] = StateGraph(schema)
    prev = START
    for i in range(n):
        builder.add_node(f"n{i}", node)
        builder.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    builder.add_edge(prev, END)
    return builder.compile(checkpointer=saver)


class _Contender:
    """One graph of a row, with its saver and the configs of its invocations."""

    def __init__(self, variant: str, row: Row) -> None:
        fn = astep if row.is_async else step
        self.variant = variant
        self.saver = InMemorySaver() if row.checkpointer else None
        schema = LedgerState if variant == LEDGER else State
        node = fn if variant == PLAIN else guard(fn)
        self.graph = _linear(schema, node, row.nodes, self.saver)
        self.limit = row.nodes + 10  # LangGraph's default recursion limit is 25 steps
        self.count = 0
        self.samples: list[int] = []

    def config(self) -> dict[str, Any]:
        """The next invocation's config: a fresh thread when there is a checkpointer."""
        if self.saver is None:
            return {"recursion_limit": self.limit}
        self.count += 1
        return {
            "recursion_limit": self.limit,
            "configurable": {"thread_id": f"{self.variant}-{self.count}"},
        }

    def forget(self, config: dict[str, Any]) -> None:
        """Drop the invocation's thread from the saver, so that it does not grow."""
        if self.saver is not None:
            self.saver.delete_thread(config["configurable"]["thread_id"])

    def check(self, result: dict[str, Any], nodes: int) -> None:
        assert result["x"] == nodes, result
        if self.variant == LEDGER:
            view = ledger(result)
            assert len(view.path) == nodes, view
            assert view.visits_of("n0") == 1, view
        else:
            assert "resilience" not in result, result


def _orders(k: int) -> list[tuple[int, ...]]:
    """All orders of ``k`` graphs; with two, simply (A, B) then (B, A)."""
    return list(itertools.permutations(range(k)))


# ---- the timed loops


def _run_sync(row: Row, graphs: list[_Contender]) -> list[list[list[int]]]:
    for _ in range(row.warmup):
        for c in graphs:
            cfg = c.config()
            c.graph.invoke(INPUT, cfg)
            c.forget(cfg)
    for c in graphs:
        cfg = c.config()
        c.check(c.graph.invoke(INPUT, cfg), row.nodes)
        c.forget(cfg)
    orders = _orders(len(graphs))
    clock = time.perf_counter_ns
    rounds: list[list[list[int]]] = []
    for _ in range(row.rounds):
        gc.collect()
        samples: list[list[int]] = [[] for _ in graphs]
        for i in range(row.per_round):
            order = orders[i % len(orders)]
            configs = [c.config() for c in graphs]
            for j in order:
                graph, cfg = graphs[j].graph, configs[j]
                t0 = clock()
                graph.invoke(INPUT, cfg)
                samples[j].append(clock() - t0)
            for c, cfg in zip(graphs, configs, strict=True):
                c.forget(cfg)
        rounds.append(samples)
    return rounds


async def _run_async(row: Row, graphs: list[_Contender]) -> list[list[list[int]]]:
    for _ in range(row.warmup):
        for c in graphs:
            cfg = c.config()
            await c.graph.ainvoke(INPUT, cfg)
            c.forget(cfg)
    for c in graphs:
        cfg = c.config()
        c.check(await c.graph.ainvoke(INPUT, cfg), row.nodes)
        c.forget(cfg)
    orders = _orders(len(graphs))
    clock = time.perf_counter_ns
    rounds: list[list[list[int]]] = []
    for _ in range(row.rounds):
        gc.collect()
        samples: list[list[int]] = [[] for _ in graphs]
        for i in range(row.per_round):
            order = orders[i % len(orders)]
            configs = [c.config() for c in graphs]
            for j in order:
                graph, cfg = graphs[j].graph, configs[j]
                t0 = clock()
                await graph.ainvoke(INPUT, cfg)
                samples[j].append(clock() - t0)
            for c, cfg in zip(graphs, configs, strict=True):
                c.forget(cfg)
        rounds.append(samples)
    return rounds


# ---- analysis


def _analyse(row: Row, rounds: list[list[list[int]]]) -> dict[str, Any]:
    """Headline: median of all B invocations minus median of all A ones, per step."""
    n = row.nodes
    variants = row.variants
    med_us = {
        v: statistics.median(t for r in rounds for t in r[j]) / 1000 for j, v in enumerate(variants)
    }
    round_us = {v: [statistics.median(r[j]) / 1000 for r in rounds] for j, v in enumerate(variants)}
    a, b = med_us[GUARDED], med_us[LEDGER]
    step_a = a / n
    added = (b - a) / n
    by_round = [(rb - ra) / n for ra, rb in zip(round_us[GUARDED], round_us[LEDGER], strict=True)]
    out: dict[str, Any] = {
        "label": row.label,
        "nodes": n,
        "is_async": row.is_async,
        "checkpointer": "InMemorySaver" if row.checkpointer else None,
        "rounds": row.rounds,
        "invocations_per_round": row.per_round,
        "invocations_per_variant": row.rounds * row.per_round,
        "invoke_us": med_us,
        "round_medians_us": round_us,
        "step_us_guarded": step_a,
        "ledger_us_per_step": added,
        "ledger_pct_of_step": 100 * added / step_a,
        "ledger_us_per_step_by_round": by_round,
        "ledger_pct_of_step_by_round": [
            100 * x / (ra / n) for x, ra in zip(by_round, round_us[GUARDED], strict=True)
        ],
        "ledger_us_per_step_median_of_rounds": statistics.median(by_round),
    }
    if PLAIN in med_us:
        c = med_us[PLAIN]
        out["step_us_plain"] = c / n
        out["guard_us_per_step"] = (a - c) / n
        out["guard_pct_of_step"] = 100 * (a - c) / c
    return out


def run_row(row: Row) -> dict[str, Any]:
    graphs = [_Contender(v, row) for v in row.variants]
    if not row.is_async:
        return _analyse(row, _run_sync(row, graphs))
    loop = asyncio.new_event_loop()
    try:
        return _analyse(row, loop.run_until_complete(_run_async(row, graphs)))
    finally:
        loop.close()


# ---- where the ledger's cost goes


def _last(_current: Any, update: Any) -> Any:
    return update


class LastWinsState(TypedDict, total=False):
    """The ledger's key, but its reducer keeps the latest write instead of merging."""

    x: int
    resilience: Annotated[dict[str, Any], _last]


def _step_extra(s: Any) -> dict[str, Any]:
    return {"x": s["x"] + 1, "resilience": {}}


_MERGE_NS: list[int] = []


def _timed_merge(current: Ledger | None, update: Ledger | None) -> Ledger:
    t0 = time.perf_counter_ns()
    out = merge_ledgers(current, update)
    _MERGE_NS.append(time.perf_counter_ns() - t0)
    return out


class TimedLedgerState(TypedDict, total=False):
    x: int
    resilience: Annotated[Ledger, _timed_merge]


def _timed_node(fn: Callable[..., Any], sink: list[int]) -> Callable[..., Any]:
    clock = time.perf_counter_ns

    # Typed plainly ``RunnableConfig``: with postponed annotations LangGraph matches the
    # string, and it does not inject ``config`` for "RunnableConfig | None".
    def node(s: Any, config: RunnableConfig) -> Any:
        t0 = clock()
        out = fn(s, config=config)
        sink.append(clock() - t0)
        return out

    return node


def _interleaved_sync(graphs: list[Any], groups: int, warmup: int) -> list[float]:
    """Median µs/invoke of each graph over ``groups`` groups, cycling through all orders."""
    for _ in range(warmup):
        for g in graphs:
            g.invoke(INPUT)
    samples: list[list[int]] = [[] for _ in graphs]
    orders = _orders(len(graphs))
    clock = time.perf_counter_ns
    gc.collect()
    for i in range(groups):
        for j in orders[i % len(orders)]:
            t0 = clock()
            graphs[j].invoke(INPUT)
            samples[j].append(clock() - t0)
    return [statistics.median(x) / 1000 for x in samples]


def _breakdown(groups: int, in_situ: int, warmup: int) -> dict[str, Any]:
    """Sync ``invoke``, 10 nodes, no checkpointer: the ledger's cost split in three.

    Five graphs, interleaved: C plain; E plain nodes that also write ``{}`` to a
    last-write-wins ``resilience`` key; A guarded, no ledger; B' guarded, the ledger's
    key with a last-write-wins reducer (guard records, nothing merges); B guarded with
    ``ResilienceState``. The parts telescope: (E - C) + ((B' - A) - (E - C)) + (B - B')
    = B - A. Then guard's ledger path and ``merge_ledgers`` are timed in situ too.
    """
    g = guard(step)
    plain, extra, guarded, last_wins, with_ledger = _interleaved_sync(
        [
            _linear(State, step, NODES, None),  # C
            _linear(LastWinsState, _step_extra, NODES, None),  # E
            _linear(State, g, NODES, None),  # A
            _linear(LastWinsState, g, NODES, None),  # B'
            _linear(LedgerState, g, NODES, None),  # B
        ],
        groups,
        warmup,
    )
    framework = (extra - plain) / NODES
    node_a: list[int] = []
    node_b: list[int] = []
    timed = [
        _linear(State, _timed_node(guard(step), node_a), NODES, None),
        _linear(TimedLedgerState, _timed_node(guard(step), node_b), NODES, None),
    ]
    assert len(timed[1].invoke(INPUT)["resilience"]["path"]) == NODES
    for _ in range(warmup):
        for t in timed:
            t.invoke(INPUT)
    for sink in (_MERGE_NS, node_a, node_b):
        sink.clear()
    _interleaved_sync(timed, in_situ, 0)
    a_ns, b_ns = statistics.median(node_a), statistics.median(node_b)
    return {
        "groups": groups,
        "invoke_us": {
            "plain": plain,
            "plain_extra_key": extra,
            "guarded": guarded,
            "guarded_last_wins_ledger": last_wins,
            "guarded_ledger": with_ledger,
        },
        "step_us_guarded": guarded / NODES,
        "framework_us_per_step": framework,
        "guard_us_per_step": (last_wins - guarded) / NODES - framework,
        "merge_us_per_step": (with_ledger - last_wins) / NODES,
        "ledger_us_per_step": (with_ledger - guarded) / NODES,
        "in_situ_invocations": in_situ,
        "guarded_node_ns_without_ledger": a_ns,
        "guarded_node_ns_with_ledger": b_ns,
        "in_situ_guard_us_per_step": (b_ns - a_ns) / 1000,
        "in_situ_merge_us_per_call": statistics.median(_MERGE_NS) / 1000,
        "merge_calls": len(_MERGE_NS),
    }


def run_ledger(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every row of ``rows_for(quick)``, then the breakdown."""
    say = progress or (lambda _msg: None)
    rows: dict[str, Any] = {}
    for row in rows_for(quick):
        say(
            f"ledger: {row.label}, {row.nodes} nodes, {row.rounds} rounds x {row.per_round} "
            f"interleaved groups of {len(row.variants)}"
        )
        rows[row.key] = run_row(row)
    groups, in_situ = (120, 100) if quick else (1200, 1000)
    say(f"ledger: breakdown, {groups} interleaved groups of 5, then {in_situ} pairs in situ")
    breakdown = _breakdown(groups, in_situ, 30 if quick else 200)
    return {"rows": rows, "breakdown": breakdown}
