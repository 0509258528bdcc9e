"""Part 1: what a closed breaker adds to one successful call, ours beside the peers.

Every contender wraps the same no-op; the baseline calls it directly. Overhead is
``median(wrapped) - median(direct)`` over interleaved repeats.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from typing import Any

from langgraph_resilience import BreakerPolicy, CircuitBreaker, CountWindow, InMemoryBreakerStore

from ._timing import Contender, async_runner, interleave, summary, sync_runner

__all__ = ["RATE_POLICY", "run_overhead"]

RATE_POLICY = BreakerPolicy(
    failure_rate_threshold=0.5, window=CountWindow(100), slow_call_duration=1.0
)
"""The features the peers lack: a failure-rate rule over a count window, and slow calls."""


def noop() -> None:
    return None


async def anoop() -> None:
    return None


def _ours(name: str, policy: BreakerPolicy | None = None) -> CircuitBreaker:
    return CircuitBreaker(name, policy, store=InMemoryBreakerStore())


def sync_contenders() -> list[Contender]:
    def c(key: str, label: str, stmt: str, group: str = "peer", **ns: Any) -> Contender:
        return Contender(key, label, sync_runner(stmt, {"noop": noop, **ns}), group)

    out = [
        c("direct", "direct call (baseline)", "noop()", "baseline"),
        c("ours.call", "langgraph_resilience `breaker.call(fn)`", "b.call(noop)", "ours",
          b=_ours("sync-call")),
        c("ours.decorator", "langgraph_resilience `@breaker`", "f()", "ours",
          f=_ours("sync-deco")(noop)),
        c("ours.rate", "langgraph_resilience `.call`, rate+window+slow policy",
          "b.call(noop)", "ours", b=_ours("sync-rate", RATE_POLICY)),
    ]  # fmt: skip
    out += _sync_peers()
    return out


def _sync_peers() -> list[Contender]:
    out: list[Contender] = []
    try:
        import pybreaker
    except ImportError:
        pass
    else:
        pb_call = pybreaker.CircuitBreaker(fail_max=5, name="pb-call")
        pb_deco = pybreaker.CircuitBreaker(fail_max=5, name="pb-deco")
        out += [
            Contender("pybreaker.call", "pybreaker `.call(fn)`",
                      sync_runner("b.call(noop)", {"b": pb_call, "noop": noop})),
            Contender("pybreaker.decorator", "pybreaker decorator",
                      sync_runner("f()", {"f": pb_deco(noop)})),
        ]  # fmt: skip
    try:
        import circuitbreaker
    except ImportError:
        pass
    else:
        f = circuitbreaker.circuit(name="cb-sync")(noop)
        out.append(
            Contender("circuitbreaker", "circuitbreaker `@circuit`", sync_runner("f()", {"f": f}))
        )
    try:
        import aiobreaker
    except ImportError:
        pass
    else:
        ab = aiobreaker.CircuitBreaker(name="ab-sync")
        out.append(
            Contender("aiobreaker", "aiobreaker `.call(fn)`",
                      sync_runner("b.call(noop)", {"b": ab, "noop": noop}))
        )  # fmt: skip
    try:
        import purgatory
    except ImportError:
        pass
    else:
        factory = purgatory.SyncCircuitBreakerFactory()
        factory.initialize()
        f = factory("pg-sync")(noop)
        out.append(
            Contender("purgatory", "purgatory sync (in-memory)", sync_runner("f()", {"f": f}))
        )
    return out


def async_contenders(loop: asyncio.AbstractEventLoop) -> list[Contender]:
    def c(key: str, label: str, expr: str, group: str = "peer", **ns: Any) -> Contender:
        return Contender(key, label, async_runner(expr, {"anoop": anoop, **ns}, loop), group)

    out = [
        c("direct", "direct `await` (baseline)", "anoop()", "baseline"),
        c("ours.call", "langgraph_resilience `await breaker.acall(fn)`", "b.acall(anoop)",
          "ours", b=_ours("async-call")),
        c("ours.decorator", "langgraph_resilience `@breaker` (async)", "f()", "ours",
          f=_ours("async-deco")(anoop)),
        c("ours.rate", "langgraph_resilience `.acall`, rate+window+slow policy",
          "b.acall(anoop)", "ours", b=_ours("async-rate", RATE_POLICY)),
    ]  # fmt: skip
    out += _async_peers(loop)
    return out


def _async_peers(loop: asyncio.AbstractEventLoop) -> list[Contender]:
    out: list[Contender] = []
    try:
        import circuitbreaker
    except ImportError:
        pass
    else:
        f = circuitbreaker.circuit(name="cb-async")(anoop)
        out.append(
            Contender("circuitbreaker", "circuitbreaker `@circuit` (async)",
                      async_runner("f()", {"f": f}, loop))
        )  # fmt: skip
    try:
        import aiobreaker
    except ImportError:
        pass
    else:
        ab = aiobreaker.CircuitBreaker(name="ab-async")
        out.append(
            Contender("aiobreaker", "aiobreaker `.call_async(fn)`",
                      async_runner("b.call_async(anoop)", {"b": ab, "anoop": anoop}, loop))
        )  # fmt: skip
    try:
        import purgatory
    except ImportError:
        pass
    else:
        factory = purgatory.AsyncCircuitBreakerFactory()
        loop.run_until_complete(factory.initialize())
        f = factory("pg-async")(anoop)
        out.append(
            Contender(
                "purgatory", "purgatory async (in-memory)", async_runner("f()", {"f": f}, loop)
            )
        )
    return out


def analyse(contenders: list[Contender]) -> dict[str, Any]:
    """Overheads against the baseline, and ours against the fastest peer."""
    base = next(c for c in contenders if c.group == "baseline")
    base_med = base.median
    rows: dict[str, Any] = {}
    for c in contenders:
        paired = [s - b for s, b in zip(c.samples, base.samples, strict=True)]
        rows[c.key] = {
            "label": c.label,
            "group": c.group,
            "loops": c.loops,
            "ns_per_call": summary(c.samples),
            "overhead_ns": c.median - base_med,
            "overhead_ns_paired": statistics.median(paired),
            "overhead_ns_best": c.best - base.best,
        }
    peers = [k for k, r in rows.items() if r["group"] == "peer"]
    fastest = min(peers, key=lambda k: rows[k]["overhead_ns"]) if peers else None
    for row in rows.values():
        if fastest is not None and row["group"] == "ours":
            row["ratio_to_fastest_peer"] = row["overhead_ns"] / rows[fastest]["overhead_ns"]
            row["ratio_to_fastest_peer_best"] = (
                row["overhead_ns_best"] / rows[fastest]["overhead_ns_best"]
            )
    return {"fastest_peer": fastest, "rows": rows}


def run_overhead(
    repeats: int, target: float, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Sync then async, each set interleaved round-robin."""
    sync = sync_contenders()
    interleave(sync, repeats, target, progress=progress)
    loop = asyncio.new_event_loop()
    try:
        asy = async_contenders(loop)
        interleave(asy, repeats, target, progress=progress)
    finally:
        loop.close()
    return {
        "repeats": repeats,
        "target_seconds_per_sample": target,
        "sync": analyse(sync),
        "async": analyse(asy),
    }
