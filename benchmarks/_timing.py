"""Timing helpers: calibrated loops, run round-robin so machine noise hits every contender.

A contender is a function ``run(n) -> seconds`` that performs ``n`` calls. Each one is
calibrated once (``n`` such that one sample takes about ``target`` seconds); then every
repeat times each contender once, in an order rotated by one position per repeat, so a
burst of load from another process lands on all of them and on no single one.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Contender",
    "async_runner",
    "calibrate",
    "interleave",
    "summary",
    "sync_runner",
]

MIN_LOOPS = 1_000
MAX_LOOPS = 10_000_000


@dataclass
class Contender:
    """One thing being timed, and its samples in ns per call."""

    key: str
    label: str
    run: Callable[[int], float]
    group: str = "peer"  # "baseline", "ours" or "peer"
    loops: int = 0
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


def sync_runner(stmt: str, namespace: dict[str, Any]) -> Callable[[int], float]:
    """``timeit`` over ``stmt`` (garbage collection off while timing, as timeit does)."""
    return timeit.Timer(stmt, globals=namespace).timeit


def async_runner(
    expr: str, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop
) -> Callable[[int], float]:
    """Time ``await <expr>`` ``n`` times in a tight loop inside one coroutine.

    The coroutine is compiled from source like timeit's inner loop, so the baseline
    (``await noop()``) and the wrapped calls pay exactly the same loop cost.
    """
    source = (
        "async def _bench(_n):\n"
        "    _t0 = _perf_counter()\n"
        "    for _ in _range(_n):\n"
        f"        await {expr}\n"
        "    return _perf_counter() - _t0\n"
    )
    scope = dict(namespace, _perf_counter=time.perf_counter, _range=range)
    exec(compile(source, f"<bench {expr}>", "exec"), scope)
    bench = scope["_bench"]

    def run(n: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return float(loop.run_until_complete(bench(n)))
        finally:
            if enabled:
                gc.enable()

    return run


def calibrate(run: Callable[[int], float], target: float) -> int:
    """Loops for one sample of about ``target`` seconds (timeit.autorange, then scaled)."""
    run(200)  # warm caches and lazy initialisation
    n = 1
    while True:
        for factor in (1, 2, 5):
            loops = n * factor
            elapsed = run(loops)
            if elapsed >= 0.02 or loops >= MAX_LOOPS:
                scaled = int(loops * target / max(elapsed, 1e-9))
                return max(MIN_LOOPS, min(MAX_LOOPS, scaled))
        n *= 10


def interleave(
    contenders: Sequence[Contender],
    repeats: int,
    target: float,
    *,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Calibrate each contender, then take ``repeats`` samples of each, round-robin."""
    for c in contenders:
        c.loops = calibrate(c.run, target)
        c.samples.clear()
    k = len(contenders)
    for r in range(repeats):
        order = [contenders[(r + i) % k] for i in range(k)]
        for c in order:
            c.samples.append(c.run(c.loops) * 1e9 / c.loops)
        if progress is not None:
            progress(f"repeat {r + 1}/{repeats}")


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and quartiles of a sample."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "p25": q1,
        "p75": q3,
        "n": len(values),
    }
