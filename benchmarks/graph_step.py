"""Part 2: what ``guard`` adds to each node-step of a real LangGraph run.

A 10-node linear ``StateGraph`` (``START -> n0 -> ... -> n9 -> END``, each node
``{"x": s["x"] + 1}``), no checkpointer, is built twice: plain, and with every node
wrapped in ``guard(node, breaker=<its own CircuitBreaker>)``. Invocations alternate
between the two (the order flips every pair), and per-round medians are compared.

Because a 2 % difference is far below the run-to-run noise of a shared machine, the
wrapper is also timed alone (``guard`` wrapper vs the bare node function, called
inside a LangGraph-like runnable context), interleaved like part 1.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, TypedDict

from langchain_core.runnables.config import var_child_runnable_config
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import CircuitBreaker, InMemoryBreakerStore, guard

from ._timing import Contender, async_runner, interleave, summary, sync_runner

__all__ = ["NODES", "run_graph_step"]

NODES = 10


class State(TypedDict):
    x: int


def step(s: State) -> dict[str, int]:
    return {"x": s["x"] + 1}


async def astep(s: State) -> dict[str, int]:
    return {"x": s["x"] + 1}


def build(node: Callable[..., Any], guarded: bool, tag: str) -> Any:
    builder = StateGraph(State)
    prev = START
    for i in range(NODES):
        name = f"n{i}"
        fn: Any = node
        if guarded:
            breaker = CircuitBreaker(f"{tag}-{name}", store=InMemoryBreakerStore())
            fn = guard(node, breaker=breaker)
        builder.add_node(name, fn)
        builder.add_edge(prev, name)
        prev = name
    builder.add_edge(prev, END)
    return builder.compile()


def _rounds_sync(plain: Any, guarded: Any, rounds: int, per_round: int, warmup: int) -> Any:
    inp = {"x": 0}
    for _ in range(warmup):
        plain.invoke(inp)
        guarded.invoke(inp)
    assert plain.invoke(inp) == guarded.invoke(inp) == {"x": NODES}
    clock = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        gc.collect()
        p: list[int] = []
        g: list[int] = []
        for i in range(per_round):
            first, second, fa, fb = (plain, guarded, p, g) if i % 2 else (guarded, plain, g, p)
            t0 = clock()
            first.invoke(inp)
            t1 = clock()
            second.invoke(inp)
            t2 = clock()
            fa.append(t1 - t0)
            fb.append(t2 - t1)
        out.append((p, g))
    return out


async def _rounds_async(plain: Any, guarded: Any, rounds: int, per_round: int, warmup: int) -> Any:
    inp = {"x": 0}
    for _ in range(warmup):
        await plain.ainvoke(inp)
        await guarded.ainvoke(inp)
    assert await plain.ainvoke(inp) == await guarded.ainvoke(inp) == {"x": NODES}
    clock = time.perf_counter_ns
    out = []
    for _ in range(rounds):
        gc.collect()
        p: list[int] = []
        g: list[int] = []
        for i in range(per_round):
            first, second, fa, fb = (plain, guarded, p, g) if i % 2 else (guarded, plain, g, p)
            t0 = clock()
            await first.ainvoke(inp)
            t1 = clock()
            await second.ainvoke(inp)
            t2 = clock()
            fa.append(t1 - t0)
            fb.append(t2 - t1)
        out.append((p, g))
    return out


def _analyse_rounds(rounds: list[tuple[list[int], list[int]]]) -> dict[str, Any]:
    plain_meds = [statistics.median(p) / 1000 for p, _ in rounds]
    guard_meds = [statistics.median(g) / 1000 for _, g in rounds]
    plain_us = statistics.median(plain_meds)
    guard_us = statistics.median(guard_meds)
    added_step = (guard_us - plain_us) / NODES
    plain_step = plain_us / NODES
    # Per round difference, then the median of those: robust to a slow round.
    per_round_added = [(g - p) / NODES for p, g in zip(plain_meds, guard_meds, strict=True)]
    return {
        "invoke_us_unguarded": plain_us,
        "invoke_us_guarded": guard_us,
        "round_medians_us_unguarded": plain_meds,
        "round_medians_us_guarded": guard_meds,
        "step_us_unguarded": plain_step,
        "added_us_per_step": added_step,
        "added_pct_of_step": 100 * added_step / plain_step,
        "added_us_per_step_by_round": per_round_added,
        "added_us_per_step_median_of_rounds": statistics.median(per_round_added),
        "invocations_per_variant": sum(len(p) for p, _ in rounds),
    }


@contextmanager
def _inside_a_run() -> Any:
    """What ``get_config()`` sees inside a LangGraph task: a config with metadata."""
    token = var_child_runnable_config.set({"metadata": {}, "configurable": {}})
    try:
        yield
    finally:
        var_child_runnable_config.reset(token)


def wrapper_contenders(loop: asyncio.AbstractEventLoop) -> tuple[list[Contender], list[Contender]]:
    s = {"x": 0}

    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(name, store=InMemoryBreakerStore())

    g_sync = guard(step, breaker=breaker("wrap-sync"))
    g_sync_nb = guard(step)
    g_async = guard(astep, breaker=breaker("wrap-async"))
    sync = [
        Contender("node", "bare node function", sync_runner("f(s)", {"f": step, "s": s}),
                  "baseline"),
        Contender("guard", "guard(node, breaker=...)", sync_runner("f(s)", {"f": g_sync, "s": s}),
                  "ours"),
        Contender("guard.nobreaker", "guard(node) (no breaker)",
                  sync_runner("f(s)", {"f": g_sync_nb, "s": s}), "ours"),
    ]  # fmt: skip
    asy = [
        Contender("node", "bare async node", async_runner("f(s)", {"f": astep, "s": s}, loop),
                  "baseline"),
        Contender("guard", "guard(async node, breaker=...)",
                  async_runner("f(s)", {"f": g_async, "s": s}, loop), "ours"),
    ]  # fmt: skip
    return sync, asy


def _analyse_wrapper(contenders: list[Contender]) -> dict[str, Any]:
    base = contenders[0]
    return {
        c.key: {
            "label": c.label,
            "ns_per_call": summary(c.samples),
            "overhead_ns": c.median - base.median,
        }
        for c in contenders
    }


def run_graph_step(
    rounds: int,
    per_round: int,
    warmup: int,
    wrapper_repeats: int,
    wrapper_target: float,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _msg: None)
    say("graph: sync invoke")
    sync_rounds = _rounds_sync(
        build(step, False, "sync"), build(step, True, "sync"), rounds, per_round, warmup
    )
    say("graph: async ainvoke")
    loop = asyncio.new_event_loop()
    try:
        async_rounds = loop.run_until_complete(
            _rounds_async(
                build(astep, False, "async"), build(astep, True, "async"), rounds, per_round, warmup
            )
        )
        say("guard wrapper alone")
        with _inside_a_run():
            w_sync, w_async = wrapper_contenders(loop)
            interleave(w_sync, wrapper_repeats, wrapper_target)
            interleave(w_async, wrapper_repeats, wrapper_target)
    finally:
        loop.close()
    return {
        "nodes": NODES,
        "rounds": rounds,
        "invocations_per_round": per_round,
        "sync_invoke": _analyse_rounds(sync_rounds),
        "async_ainvoke": _analyse_rounds(async_rounds),
        "wrapper_alone": {"sync": _analyse_wrapper(w_sync), "async": _analyse_wrapper(w_async)},
    }
