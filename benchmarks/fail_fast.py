"""Part 3: fail fast. 100 ``ainvoke`` runs against a dependency that hangs.

The graph is ``START -> dep -> END``; ``dep`` is an async node awaiting an
``asyncio.Event`` that is never set. Every case uses the same
``RetryPolicy(max_attempts=3, initial_interval=I, jitter=False)`` with LangGraph's
default ``retry_on``: it retries timeouts (``NodeTimeoutError`` and our
``AttemptTimeoutError`` are plain ``Exception`` subclasses) and never retries a
``RuntimeError``, which ``CircuitOpenError`` is, so an open breaker is not hammered by
retries. A custom ``retry_on`` that retried every exception would retry
``CircuitOpenError`` too; it should exclude it.

Cases:
    A  LangGraph alone: ``add_node(dep, timeout=T, retry_policy=...)``.
    B  A plus ``guard(dep, breaker=CircuitBreaker(..., failure_threshold=3))``.
    C  ``guard(dep, breaker=..., timeout=T)`` and the retry policy; no LangGraph timeout.
    D  both deadlines: ``guard(..., timeout=T)`` inside LangGraph's ``timeout=2T``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from langgraph_resilience import BreakerPolicy, CircuitBreaker, InMemoryBreakerStore, guard

__all__ = ["run_fail_fast"]


class State(TypedDict):
    x: int


class HungDependency:
    """An async node that never answers (``node``), counting how often it was entered."""

    def __init__(self) -> None:
        self.entered = 0

        async def dep(state: State) -> dict[str, int]:
            self.entered += 1
            await asyncio.Event().wait()  # never set
            return {"x": state["x"] + 1}

        self.node = dep


def _graph(node: Any, *, lg_timeout: float | None, interval: float) -> Any:
    builder = StateGraph(State)
    builder.add_node(
        "dep",
        node,
        timeout=lg_timeout,
        retry_policy=RetryPolicy(max_attempts=3, initial_interval=interval, jitter=False),
    )
    builder.add_edge(START, "dep")
    builder.add_edge("dep", END)
    return builder.compile()


async def _case(
    label: str,
    dep: HungDependency,
    graph: Any,
    runs: int,
    breaker: CircuitBreaker | None,
) -> dict[str, Any]:
    errors: Counter[str] = Counter()
    per_run: list[float] = []
    t_start = time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        try:
            await graph.ainvoke({"x": 0})
        except Exception as exc:  # every run is expected to fail; we count how
            errors[type(exc).__name__] += 1
        else:
            errors["<no error>"] += 1
        per_run.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_start
    out: dict[str, Any] = {
        "label": label,
        "runs": runs,
        "total_seconds": total,
        "first_run_seconds": per_run[0],
        "last_run_ms": per_run[-1] * 1000,
        "dependency_entered": dep.entered,
        "errors": dict(errors),
    }
    if breaker is not None:
        snap = breaker.snapshot()
        out["breaker"] = {
            "state": snap.state.value,
            "times_opened": snap.times_opened,
            "rejected_calls": snap.rejected_calls,
            "failed_calls": snap.failed_calls,
        }
    return out


async def _all(runs: int, timeout: float, interval: float) -> dict[str, Any]:
    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(
            name, BreakerPolicy(failure_threshold=3), store=InMemoryBreakerStore()
        )

    results: dict[str, Any] = {}

    dep = HungDependency()
    graph = _graph(dep.node, lg_timeout=timeout, interval=interval)
    results["A"] = await _case("LangGraph timeout + RetryPolicy", dep, graph, runs, None)

    dep, b = HungDependency(), breaker("ff-b")
    graph = _graph(guard(dep.node, breaker=b), lg_timeout=timeout, interval=interval)
    results["B"] = await _case("A + guard(breaker=...)", dep, graph, runs, b)

    dep, b = HungDependency(), breaker("ff-c")
    graph = _graph(guard(dep.node, breaker=b, timeout=timeout), lg_timeout=None, interval=interval)
    results["C"] = await _case("guard(breaker=..., timeout=T) + RetryPolicy", dep, graph, runs, b)

    dep, b = HungDependency(), breaker("ff-d")
    graph = _graph(
        guard(dep.node, breaker=b, timeout=timeout), lg_timeout=2 * timeout, interval=interval
    )
    results["D"] = await _case(
        "guard(breaker=..., timeout=T) inside LangGraph timeout=2T", dep, graph, runs, b
    )

    base = results["A"]["total_seconds"]
    for key in ("B", "C", "D"):
        results[key]["speedup_vs_A"] = base / results[key]["total_seconds"]
    return results


def run_fail_fast(
    runs: int, timeout: float, interval: float, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    if progress is not None:
        progress(f"fail-fast: 4 cases x {runs} runs, T={timeout:g}s")
    loop = asyncio.new_event_loop()
    try:
        cases = loop.run_until_complete(_all(runs, timeout, interval))
        # Let cancelled attempts abandoned by guard's deadline finish unwinding.
        loop.run_until_complete(asyncio.sleep(0.05))
    finally:
        loop.close()
    return {"runs": runs, "timeout_seconds": timeout, "initial_interval": interval, "cases": cases}
