"""Part 7: what watching costs: the health monitor per node-step, and LangSmith
annotation with tracing off.

**The monitor.** The 10-node guarded graph of part 2 (each node with its own breaker)
is invoked in interleaved pairs: once with nobody subscribed to the event stream, once
with a :class:`HealthMonitor` subscribed (subscribing and unsubscribing happen outside
the timed region; which variant goes first flips every pair). With a listener, guard
times each attempt and publishes a ``NodeSucceeded``, which the monitor folds into its
statistics. The unguarded graph is timed too, for LangGraph's own cost of a step.

**Tracing off.** ``annotate()`` (what every decision calls) and ``publish()`` with no
listener and no run are timed in a tight loop beside an empty function call: what a
decision costs when nobody watches.
"""

from __future__ import annotations

import gc
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

from langgraph_resilience.core.events import FallbackTaken
from langgraph_resilience.events import hub, publish
from langgraph_resilience.tracing import annotate

from .graph_step import INPUT, NODES, build, step

__all__ = ["run_monitoring"]


def _pairs(graph: Any, plain: Any, monitor: Any, pairs: int, warmup: int) -> dict[str, Any]:
    clock = time.perf_counter_ns
    quiet: list[int] = []
    watched: list[int] = []
    bare: list[int] = []

    def watched_once() -> int:
        monitor.start()
        t0 = clock()
        graph.invoke(INPUT)
        t1 = clock()
        monitor.stop()
        return t1 - t0

    def quiet_once() -> int:
        t0 = clock()
        graph.invoke(INPUT)
        return clock() - t0

    for _ in range(warmup):
        quiet_once()
        watched_once()
        plain.invoke(INPUT)
    assert not hub.listeners, "something else listens: the quiet variant would not be quiet"
    gc.collect()
    for i in range(pairs):
        if i % 2:
            quiet.append(quiet_once())
            watched.append(watched_once())
        else:
            watched.append(watched_once())
            quiet.append(quiet_once())
        t0 = clock()
        plain.invoke(INPUT)
        bare.append(clock() - t0)
    quiet_us = statistics.median(quiet) / 1000
    watched_us = statistics.median(watched) / 1000
    bare_us = statistics.median(bare) / 1000
    added_step = (watched_us - quiet_us) / NODES
    return {
        "pairs": pairs,
        "invoke_us_unguarded": bare_us,
        "invoke_us_guarded": quiet_us,
        "invoke_us_guarded_monitored": watched_us,
        "added_us_per_step": added_step,
        "added_pct_of_guarded_step": 100 * added_step / (quiet_us / NODES),
        "events_seen": monitor.snapshot().nodes["n0"].calls,
    }


def _per_call_ns(fn: Callable[[], object], number: int, repeats: int) -> float:
    timer = timeit.Timer(fn)
    return min(timer.repeat(repeat=repeats, number=number)) / number * 1e9


def _tracing_off(quick: bool) -> dict[str, float]:
    number, repeats = (20_000, 3) if quick else (200_000, 7)
    event = FallbackTaken(node="search", target="cached", error="TimeoutError")
    data = {"node": "search", "target": "cached", "error": "TimeoutError"}

    def empty() -> None:
        return None

    return {
        "empty_call_ns": _per_call_ns(empty, number, repeats),
        "annotate_ns": _per_call_ns(lambda: annotate("fallback_taken", data), number, repeats),
        "publish_ns": _per_call_ns(lambda: publish(event), number, repeats),
    }


def run_monitoring(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    from langgraph_resilience import HealthMonitor

    say = progress or (lambda _msg: None)
    pairs, warmup = (200, 30) if quick else (3000, 200)
    say(f"monitor: sync invoke, {pairs} interleaved pairs")
    monitor = HealthMonitor(sinks=())
    graph = build(step, True, "monitored")
    plain = build(step, False, "monitored-plain")
    result = {"monitor": _pairs(graph, plain, monitor, pairs, warmup)}
    say("tracing off: annotate() and publish() in a tight loop")
    result["tracing_off"] = _tracing_off(quick)
    return result
