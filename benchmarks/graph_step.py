"""Part 2: what ``guard`` adds to each node-step of a real LangGraph run.

A 10-node linear ``StateGraph`` (``START -> n0 -> ... -> n9 -> END``, each node
``{"x": s["x"] + 1}``), no checkpointer, is built twice: plain, and with every node
wrapped in ``guard(node, breaker=<its own CircuitBreaker>)``. Invocations alternate
between the two (which one goes first flips every pair); the medians of all the
invocations of each are compared, and the per-round medians show the spread.

A 2 % difference is close to the run-to-run noise of a shared machine, so the wrapper
is also timed in situ: each node of two more graphs times its inner call (the bare
node, or the guarded node) with ``perf_counter_ns`` from inside the run. That is where
the wrapper really runs: after LangGraph's own work has evicted it from the CPU caches,
with the real run config in the context, which a tight-loop microbenchmark misses.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

from langgraph_resilience import CircuitBreaker, InMemoryBreakerStore, guard

__all__ = ["NODES", "run_graph_step"]

NODES = 10
INPUT = {"x": 0}


class State(TypedDict):
    x: int


def step(s: State) -> dict[str, int]:
    return {"x": s["x"] + 1}


async def astep(s: State) -> dict[str, int]:
    return {"x": s["x"] + 1}


def _breaker(name: str) -> CircuitBreaker:
    return CircuitBreaker(name, store=InMemoryBreakerStore())


def _linear(nodes: list[Any]) -> Any:
    builder = StateGraph(State)
    prev = START
    for i, node in enumerate(nodes):
        builder.add_node(f"n{i}", node)
        builder.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    builder.add_edge(prev, END)
    return builder.compile()


def build(node: Callable[..., Any], guarded: bool, tag: str) -> Any:
    """The 10-node graph; guarded: each node with its own breaker."""
    if not guarded:
        return _linear([node] * NODES)
    return _linear([guard(node, breaker=_breaker(f"{tag}-n{i}")) for i in range(NODES)])


# ---- whole-graph comparison


Rounds = list[tuple[list[int], list[int]]]


def _rounds_sync(plain: Any, guarded: Any, rounds: int, per_round: int, warmup: int) -> Rounds:
    for _ in range(warmup):
        plain.invoke(INPUT)
        guarded.invoke(INPUT)
    assert plain.invoke(INPUT) == guarded.invoke(INPUT) == {"x": NODES}
    clock = time.perf_counter_ns
    out: Rounds = []
    for _ in range(rounds):
        gc.collect()
        p: list[int] = []
        g: list[int] = []
        for i in range(per_round):
            first, second, fa, fb = (plain, guarded, p, g) if i % 2 else (guarded, plain, g, p)
            t0 = clock()
            first.invoke(INPUT)
            t1 = clock()
            second.invoke(INPUT)
            t2 = clock()
            fa.append(t1 - t0)
            fb.append(t2 - t1)
        out.append((p, g))
    return out


async def _rounds_async(
    plain: Any, guarded: Any, rounds: int, per_round: int, warmup: int
) -> Rounds:
    for _ in range(warmup):
        await plain.ainvoke(INPUT)
        await guarded.ainvoke(INPUT)
    assert await plain.ainvoke(INPUT) == await guarded.ainvoke(INPUT) == {"x": NODES}
    clock = time.perf_counter_ns
    out: Rounds = []
    for _ in range(rounds):
        gc.collect()
        p: list[int] = []
        g: list[int] = []
        for i in range(per_round):
            first, second, fa, fb = (plain, guarded, p, g) if i % 2 else (guarded, plain, g, p)
            t0 = clock()
            await first.ainvoke(INPUT)
            t1 = clock()
            await second.ainvoke(INPUT)
            t2 = clock()
            fa.append(t1 - t0)
            fb.append(t2 - t1)
        out.append((p, g))
    return out


def _analyse_rounds(rounds: Rounds) -> dict[str, Any]:
    """Headline: median of all guarded invocations minus median of all unguarded ones."""
    plain_all = [t for p, _ in rounds for t in p]
    guard_all = [t for _, g in rounds for t in g]
    plain_us = statistics.median(plain_all) / 1000
    guard_us = statistics.median(guard_all) / 1000
    added_step = (guard_us - plain_us) / NODES
    plain_step = plain_us / NODES
    plain_meds = [statistics.median(p) / 1000 for p, _ in rounds]
    guard_meds = [statistics.median(g) / 1000 for _, g in rounds]
    per_round_added = [(g - p) / NODES for p, g in zip(plain_meds, guard_meds, strict=True)]
    return {
        "invoke_us_unguarded": plain_us,
        "invoke_us_guarded": guard_us,
        "step_us_unguarded": plain_step,
        "added_us_per_step": added_step,
        "added_pct_of_step": 100 * added_step / plain_step,
        "round_medians_us_unguarded": plain_meds,
        "round_medians_us_guarded": guard_meds,
        "added_us_per_step_by_round": per_round_added,
        "added_us_per_step_median_of_rounds": statistics.median(per_round_added),
        "invocations_per_variant": len(plain_all),
    }


# ---- the wrapper timed in situ


def _timed_nodes(inner: list[Any], sink: list[int], is_async: bool) -> list[Any]:
    clock = time.perf_counter_ns
    nodes: list[Any] = []
    for fn in inner:
        if is_async:

            async def anode(s: State, fn: Any = fn) -> Any:
                t0 = clock()
                out = await fn(s)
                sink.append(clock() - t0)
                return out

            nodes.append(anode)
        else:

            def node(s: State, fn: Any = fn) -> Any:
                t0 = clock()
                out = fn(s)
                sink.append(clock() - t0)
                return out

            nodes.append(node)
    return nodes


def _in_situ(is_async: bool, invocations: int, warmup: int) -> dict[str, Any]:
    base = astep if is_async else step
    tag = "situ-async" if is_async else "situ-sync"
    bare: list[int] = []
    guarded: list[int] = []
    g_bare = _linear(_timed_nodes([base] * NODES, bare, is_async))
    wrapped = [guard(base, breaker=_breaker(f"{tag}-n{i}")) for i in range(NODES)]
    g_guard = _linear(_timed_nodes(wrapped, guarded, is_async))

    async def arun(n: int) -> None:
        for _ in range(n):
            await g_bare.ainvoke(INPUT)
            await g_guard.ainvoke(INPUT)

    def run(n: int) -> None:
        if is_async:
            asyncio.run(arun(n))
            return
        for _ in range(n):
            g_bare.invoke(INPUT)
            g_guard.invoke(INPUT)

    run(warmup)
    bare.clear()
    guarded.clear()
    run(invocations)
    b = statistics.median(bare)
    g = statistics.median(guarded)
    return {"node_calls": len(bare), "bare_node_ns": b, "guarded_node_ns": g, "guard_ns": g - b}


def run_graph_step(
    rounds: int,
    per_round: int,
    warmup: int,
    in_situ_invocations: int,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _msg: None)
    say(f"graph: sync invoke, {rounds} rounds x {per_round} interleaved pairs")
    sync_rounds = _rounds_sync(
        build(step, False, "sync"), build(step, True, "sync"), rounds, per_round, warmup
    )
    say(f"graph: async ainvoke, {rounds} rounds x {per_round} interleaved pairs")
    loop = asyncio.new_event_loop()
    try:
        async_rounds = loop.run_until_complete(
            _rounds_async(
                build(astep, False, "async"), build(astep, True, "async"), rounds, per_round, warmup
            )
        )
    finally:
        loop.close()
    say(f"graph: guard timed in situ, {in_situ_invocations} invocations each")
    return {
        "nodes": NODES,
        "rounds": rounds,
        "invocations_per_round": per_round,
        "sync_invoke": _analyse_rounds(sync_rounds),
        "async_ainvoke": _analyse_rounds(async_rounds),
        "in_situ": {
            "sync": _in_situ(False, in_situ_invocations, warmup),
            "async": _in_situ(True, in_situ_invocations, warmup),
        },
    }
