"""Part 6: what ``ResilientSaver`` costs per graph step, how fast it fails over, and
whether a failover loses a checkpoint.

**Cost per step.** A linear ``StateGraph`` of ``NODES`` trivial nodes
(``{"x": s["x"] + 1}``) is compiled four times per row, each time with its own saver:

    raw          the raw saver alone (the reference, measured in the same run)
    pass         ``ResilientSaver(raw)``: pass-through, the default ``SaverPolicy()``
                 (10 s deadline, 3 attempts, breaker). The adapter skips the deadline
                 for a store in this process (SQLite, ``InMemorySaver``); results.json
                 records the deadline each variant applied.
    no deadline  ``ResilientSaver(raw, policy=SaverPolicy(timeout=None))``: what the
                 deadline costs
    mirrored     ``ResilientSaver(raw, standby="sqlite:///<file>")``: the embedded
                 default standby (``open_standby``: a SQLite file, WAL,
                 ``synchronous=NORMAL``), every write mirrored by a background thread

A row is one raw saver (a SQLite file opened as users do, WAL after ``setup()`` and
SQLite's default ``synchronous=FULL``; ``InMemorySaver``; PostgreSQL on a pool, in a
schema of its own), one front (sync ``invoke``; async ``ainvoke``, which uses
``AsyncSqliteSaver`` and ``AsyncPostgresSaver`` on an ``AsyncConnectionPool`` as the raw
savers, so no variant goes through ``asyncio.to_thread``) and one ``durability``
(``"sync"``: every checkpoint is written before the next step; ``"async"``, LangGraph's
default: written in the background while the next step runs). Every invocation gets a
fresh ``thread_id``.

Timing: a *batch* is ``batch`` invocations of one graph in a row, timed as a whole with
``perf_counter_ns``; the mirrored variant calls ``saver.flush()`` at the end of its batch,
inside the window, so the mirror's work is counted. A group times one batch of each
variant, in one of the four orders of a Williams square (each variant first, second,
third and last once, and right after each other variant once), then deletes the group's
threads from every saver (standby included), outside the window. ``gc.collect()`` starts
every round. Overhead = median batch of the variant / median batch of raw - 1; the
per-round figures show the spread.

In situ: probes (instance attributes wrapping the methods) time every call LangGraph
makes to the adapter and every call the adapter makes to the raw saver; their
difference per call is the latency the adapter adds (on the deadline's path it includes
the hand-off to a worker thread or task). The mirror's writes to the standby are timed
the same way, in the mirror's thread. When a row's pass-through misses the goal, the
calls of one invocation are replayed through ``ResilientSaver(raw)`` under cProfile, in
one thread (LangGraph makes them from its executor's threads, which cProfile does not
follow).

**Failover** (a ``tests.checkpoint._private_postgres.PrivatePostgres``: a throwaway
server this part may kill). A graph of one node looping ``FAILOVER_STEPS`` times
(``durability="sync"``) runs on ``ResilientSaver(PostgresSaver(pool), standby=sqlite)``,
the pool waiting at most ``POOL_TIMEOUT`` for a connection. At step ``FAULT_AT`` the node
kills the server (``kill9()``, default ``SaverPolicy()``) or freezes it (SIGSTOP, with
``SaverPolicy(timeout=1)``; thawed in a ``finally``). Measured: from the fault to the
``SaverFailedOver`` event, to the first ``put`` that returns after it (the next
checkpoint, written on the standby), and then the longest wait for a checkpoint (or for
the run's end). The run finishes on the standby; the server is restarted (or thawed),
``reconcile()`` copies to the primary what only the standby holds, and every checkpoint
the graph was told was written (every ``put`` that returned) is looked up in the
primary, before ``reconcile()`` (to show the check bites) and after: lost = those still
missing (goal: 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import gc
import itertools
import logging
import os
import pstats
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import ResilientSaver, SaverPolicy

__all__ = [
    "BACKEND_LABELS",
    "GOAL_LOST",
    "GOAL_MIRROR_PCT",
    "GOAL_PASS_PCT",
    "VARIANTS",
    "VARIANT_LABELS",
    "run_saver",
]

GOAL_PASS_PCT = 3.0  # ResilientSaver(raw), default policy: % added per step over raw
GOAL_MIRROR_PCT = 15.0  # ResilientSaver(raw, standby=sqlite): % added per step over raw
GOAL_LOST = 0  # checkpoints written before, during or after a failover and missing after

NODES = 10
INPUT = {"x": 0}

RAW, PASS, NO_DEADLINE, MIRRORED = "raw", "pass", "no_deadline", "mirrored"
VARIANTS = (RAW, PASS, NO_DEADLINE, MIRRORED)
VARIANT_LABELS = {
    RAW: "raw saver",
    PASS: "`ResilientSaver(raw)`",
    NO_DEADLINE: "`ResilientSaver(raw, policy=SaverPolicy(timeout=None))`",
    MIRRORED: '`ResilientSaver(raw, standby="sqlite:///…")`',
}
# A Williams square: every variant is first, second, third and last once, and follows
# every other variant once, so neither position nor the previous variant favours one.
ORDERS = ((0, 1, 3, 2), (1, 2, 0, 3), (2, 3, 1, 0), (3, 0, 2, 1))

BACKEND_LABELS = {
    "sqlite": "SQLite file",
    "memory": "InMemorySaver",
    "postgres": "PostgreSQL (pool)",
}
RAW_LABELS = {
    ("sqlite", False): "`SqliteSaver` (WAL)",
    ("sqlite", True): "`AsyncSqliteSaver` (WAL)",
    ("memory", False): "`InMemorySaver`",
    ("memory", True): "`InMemorySaver`",
    ("postgres", False): "`PostgresSaver(ConnectionPool)`",
    ("postgres", True): "`AsyncPostgresSaver(AsyncConnectionPool)`",
}


class State(TypedDict):
    x: int


def step(s: Any) -> dict[str, int]:
    return {"x": s["x"] + 1}


async def astep(s: Any) -> dict[str, int]:
    return {"x": s["x"] + 1}


def _linear(node: Any, saver: BaseCheckpointSaver[Any]) -> Any:
    builder: StateGraph[Any] = StateGraph(State)
    prev = START
    for i in range(NODES):
        builder.add_node(f"n{i}", node)
        builder.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    builder.add_edge(prev, END)
    return builder.compile(checkpointer=saver)


# ---- sizes


@dataclass(frozen=True)
class Sizes:
    rounds: int
    groups: int  # per round; a multiple of 4, so that every order comes up equally often
    batch: int  # invocations per timed batch
    warmup: int  # untimed invocations of each variant first


def sizes_for(quick: bool) -> dict[str, Sizes]:
    if quick:
        return {
            "sqlite": Sizes(1, 4, 1, 1),
            "memory": Sizes(1, 4, 2, 1),
            "postgres": Sizes(1, 4, 1, 1),
        }
    return {
        "sqlite": Sizes(2, 8, 2, 4),
        "memory": Sizes(3, 8, 4, 6),
        "postgres": Sizes(2, 8, 2, 4),
    }


@dataclass(frozen=True)
class Row:
    backend: str
    is_async: bool
    durability: str

    @property
    def key(self) -> str:
        return f"{self.backend}_{'async' if self.is_async else 'sync'}_{self.durability}"

    @property
    def label(self) -> str:
        front = "async `ainvoke`" if self.is_async else "sync `invoke`"
        return f"{BACKEND_LABELS[self.backend]}, {front}, durability={self.durability}"


# wall-clock and CPU ns of every batch: [round][variant][batch], twice
Samples = tuple[list[list[list[int]]], list[list[list[int]]]]


# ---- raw savers


class _Backend:
    """Makes raw savers of one kind, sync or async, and closes them at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.closers: list[Callable[[], None]] = []
        self.aclosers: list[Callable[[], Any]] = []

    def saver(self, name: str) -> BaseCheckpointSaver[Any]:
        raise NotImplementedError

    async def asaver(self, name: str) -> BaseCheckpointSaver[Any]:
        raise NotImplementedError

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()

    async def aclose(self) -> None:
        for close in reversed(self.aclosers):
            await close()
        self.aclosers.clear()


class _Memory(_Backend):
    def saver(self, name: str) -> BaseCheckpointSaver[Any]:
        return InMemorySaver()

    async def asaver(self, name: str) -> BaseCheckpointSaver[Any]:
        return InMemorySaver()


class _Sqlite(_Backend):
    """A file per saver, opened as users do: ``sqlite3.connect(path)``; ``setup()``
    switches it to WAL (``synchronous`` stays at SQLite's default, FULL)."""

    def saver(self, name: str) -> BaseCheckpointSaver[Any]:
        conn = sqlite3.connect(self.tmp / f"{name}.db", check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        self.closers.append(conn.close)
        return saver

    async def asaver(self, name: str) -> BaseCheckpointSaver[Any]:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        conn = await aiosqlite.connect(self.tmp / f"{name}.db")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        self.aclosers.append(conn.close)
        return saver


class _Postgres(_Backend):
    """A pool per saver (1-2 connections, the pool's defaults otherwise), in a schema of
    its own at ``$LGR_PG_URI`` (set through ``search_path``), dropped at the end."""

    def __init__(self, tmp: Path, url: str) -> None:
        super().__init__(tmp)
        import psycopg

        self.url = url
        self.schema = f"lgr_bench_saver_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {self.schema}")
        self._setup = False

    def _kwargs(self) -> dict[str, Any]:
        from psycopg.rows import dict_row

        return {
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "options": f"-c search_path={self.schema}",
        }

    def saver(self, name: str) -> BaseCheckpointSaver[Any]:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[Any] = ConnectionPool(
            self.url, min_size=1, max_size=2, kwargs=self._kwargs(), open=True
        )
        pool.wait()
        self.closers.append(pool.close)
        saver = PostgresSaver(pool)
        if not self._setup:
            saver.setup()
            self._setup = True
        return saver

    async def asaver(self, name: str) -> BaseCheckpointSaver[Any]:
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        from psycopg_pool import AsyncConnectionPool

        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.url, min_size=1, max_size=2, kwargs=self._kwargs(), open=False
        )
        await pool.open(wait=True)
        self.aclosers.append(pool.close)
        saver = AsyncPostgresSaver(pool)
        if not self._setup:
            await saver.setup()
            self._setup = True
        return saver

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


# ---- the contenders of a row


class _Probe:
    """Total time and number of calls of the methods it wraps."""

    __slots__ = ("calls", "ns")

    def __init__(self) -> None:
        self.ns = 0
        self.calls = 0

    def reset(self) -> None:
        self.ns = self.calls = 0

    def wrap(self, obj: Any, names: tuple[str, ...]) -> None:
        """Time ``obj``'s methods ``names`` through instance attributes: the adapter and
        LangGraph look methods up on the instance, and ``functools.wraps`` keeps the
        signature LangGraph inspects (``put_writes``'s ``task_path``)."""
        clock = time.perf_counter_ns
        for name in names:
            fn = getattr(obj, name)
            if asyncio.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def atimed(*args: Any, _fn: Any = fn, **kwargs: Any) -> Any:
                    t0 = clock()
                    try:
                        return await _fn(*args, **kwargs)
                    finally:
                        self.ns += clock() - t0
                        self.calls += 1

                setattr(obj, name, atimed)
            else:

                @functools.wraps(fn)
                def timed(*args: Any, _fn: Any = fn, **kwargs: Any) -> Any:
                    t0 = clock()
                    try:
                        return _fn(*args, **kwargs)
                    finally:
                        self.ns += clock() - t0
                        self.calls += 1

                setattr(obj, name, timed)


def _probe_cost_us(n: int = 20_000) -> dict[str, float]:
    """What the inner probe itself adds to a call (µs, tight loop, sync and async): it
    runs inside the adapter's window, so it is taken off the in-situ figures."""

    class Target:
        def put(self) -> None:
            return None

        async def aput(self) -> None:
            return None

    plain, probed = Target(), Target()
    _Probe().wrap(probed, ("put", "aput"))
    clock = time.perf_counter_ns

    def sync(obj: Target) -> float:
        fn = obj.put
        t0 = clock()
        for _ in range(n):
            fn()
        return (clock() - t0) / n

    async def asyn(obj: Target) -> float:
        fn = obj.aput
        t0 = clock()
        for _ in range(n):
            await fn()
        return (clock() - t0) / n

    out = {}
    for key, timer in (("sync", sync), ("async", lambda o: asyncio.run(asyn(o)))):
        timer(plain)  # warm up
        timer(probed)
        out[key] = statistics.median(timer(probed) - timer(plain) for _ in range(5)) / 1000
    return out


SYNC_METHODS = ("get_tuple", "put", "put_writes")
ASYNC_METHODS = ("aget_tuple", "aput", "aput_writes")


class _Contender:
    """One variant of a row: its saver, its graph, and the threads of its invocations.

    Probes time, from inside the run, the calls LangGraph makes to the saver (``outer``,
    the adapter's methods), the calls the adapter makes to the raw saver (``inner``) and
    the mirror's writes to the standby (``standby``, in the mirror's thread).
    """

    def __init__(
        self, variant: str, raw: BaseCheckpointSaver[Any], row: Row, tmp: Path, tag: str
    ) -> None:
        self.variant = variant
        self.raw = raw
        self.resilient: ResilientSaver | None = None
        if variant == PASS:
            self.resilient = ResilientSaver(raw)
        elif variant == NO_DEADLINE:
            self.resilient = ResilientSaver(raw, policy=SaverPolicy(timeout=None))
        elif variant == MIRRORED:
            self.resilient = ResilientSaver(raw, standby=f"sqlite:///{tmp / f'{tag}-standby.db'}")
        saver = self.resilient or raw
        methods = ASYNC_METHODS if row.is_async else SYNC_METHODS
        self.inner, self.outer, self.standby = _Probe(), _Probe(), _Probe()
        self.inner.wrap(raw, methods)
        if self.resilient is not None:
            self.outer.wrap(self.resilient, methods)
            if self.resilient.standby is not None:
                self.standby.wrap(self.resilient.standby, ("put", "put_writes"))
        self.graph = _linear(astep if row.is_async else step, saver)
        self.mirrored = variant == MIRRORED
        self.tag = tag
        self.count = 0

    @property
    def deadline(self) -> float | None:
        """The deadline the saver applies to its primary's calls (it skips it for a
        store in this process: SQLite, ``InMemorySaver``)."""
        if self.resilient is None:
            return None
        return getattr(self.resilient, "_deadline", self.resilient._policy.deadline)

    def reset(self) -> None:
        for probe in (self.inner, self.outer, self.standby):
            probe.reset()

    def configs(self, n: int) -> list[RunnableConfig]:
        out: list[RunnableConfig] = []
        for _ in range(n):
            self.count += 1
            out.append({"configurable": {"thread_id": f"{self.tag}-{self.count}"}})
        return out

    def settle(self) -> None:
        """Inside the timed window: wait for the mirror to write what it was given."""
        if self.mirrored:
            assert self.resilient is not None
            self.resilient.flush()

    def forget(self, configs: list[RunnableConfig]) -> None:
        """Outside the timed window: drop the batch's threads (mirrored to the standby)."""
        saver = self.resilient or self.raw
        for cfg in configs:
            saver.delete_thread(cfg["configurable"]["thread_id"])
        self.settle()

    async def aforget(self, configs: list[RunnableConfig]) -> None:
        saver = self.resilient or self.raw
        for cfg in configs:
            await saver.adelete_thread(cfg["configurable"]["thread_id"])
        if self.mirrored:
            await asyncio.to_thread(self.settle)

    def check(self, result: dict[str, Any], stored: Any) -> None:
        assert result == {"x": NODES}, result
        assert stored is not None
        assert stored.checkpoint["channel_values"]["x"] == NODES, stored
        self.check_status()

    def check_status(self) -> None:
        """The adapter never left the primary and the standby refused nothing: a
        failover during the timing would make the figures meaningless."""
        if self.resilient is not None:
            status = self.resilient.status()
            assert status.active == "primary", status
            assert status.failovers == 0, status
            assert status.mirror_failures == 0, status

    def check_standby(self, config: RunnableConfig) -> None:
        """The mirrored variant's standby holds the finished thread too."""
        if self.mirrored:
            assert self.resilient is not None
            assert self.resilient.standby is not None
            self.resilient.flush()
            stored = self.resilient.standby.get_tuple(config)
            assert stored is not None
            assert stored.checkpoint["channel_values"]["x"] == NODES


def _time_sync(row: Row, sizes: Sizes, contenders: list[_Contender]) -> Samples:
    durability = row.durability
    for c in contenders:
        configs = c.configs(sizes.warmup)
        for cfg in configs:
            c.graph.invoke(INPUT, cfg, durability=durability)
        c.settle()
        cfg = configs[-1]
        c.check(
            c.graph.invoke(INPUT, cfg, durability=durability), (c.resilient or c.raw).get_tuple(cfg)
        )
        c.check_standby(cfg)
        c.forget(configs)
        c.reset()
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    rounds: list[list[list[int]]] = []
    cpu_rounds: list[list[list[int]]] = []
    for _ in range(sizes.rounds):
        gc.collect()
        samples: list[list[int]] = [[] for _ in contenders]
        cpu_samples: list[list[int]] = [[] for _ in contenders]
        for i in range(sizes.groups):
            batches = [c.configs(sizes.batch) for c in contenders]
            for j in ORDERS[i % len(ORDERS)]:
                c, configs = contenders[j], batches[j]
                invoke = c.graph.invoke
                c0, t0 = cpu(), clock()
                for cfg in configs:
                    invoke(INPUT, cfg, durability=durability)
                c.settle()
                samples[j].append(clock() - t0)
                cpu_samples[j].append(cpu() - c0)
            for c, configs in zip(contenders, batches, strict=True):
                c.forget(configs)
        rounds.append(samples)
        cpu_rounds.append(cpu_samples)
    for c in contenders:
        c.check_status()
    return rounds, cpu_rounds


async def _time_async(row: Row, sizes: Sizes, contenders: list[_Contender]) -> Samples:
    durability = row.durability
    for c in contenders:
        configs = c.configs(sizes.warmup)
        for cfg in configs:
            await c.graph.ainvoke(INPUT, cfg, durability=durability)
        await asyncio.to_thread(c.settle)
        cfg = configs[-1]
        result = await c.graph.ainvoke(INPUT, cfg, durability=durability)
        c.check(result, await (c.resilient or c.raw).aget_tuple(cfg))
        await asyncio.to_thread(c.check_standby, cfg)
        await c.aforget(configs)
        c.reset()
    clock, cpu = time.perf_counter_ns, time.process_time_ns
    rounds: list[list[list[int]]] = []
    cpu_rounds: list[list[list[int]]] = []
    for _ in range(sizes.rounds):
        gc.collect()
        samples: list[list[int]] = [[] for _ in contenders]
        cpu_samples: list[list[int]] = [[] for _ in contenders]
        for i in range(sizes.groups):
            batches = [c.configs(sizes.batch) for c in contenders]
            for j in ORDERS[i % len(ORDERS)]:
                c, configs = contenders[j], batches[j]
                ainvoke = c.graph.ainvoke
                c0, t0 = cpu(), clock()
                for cfg in configs:
                    await ainvoke(INPUT, cfg, durability=durability)
                c.settle()  # a blocking wait, inside the window on purpose
                samples[j].append(clock() - t0)
                cpu_samples[j].append(cpu() - c0)
            for c, configs in zip(contenders, batches, strict=True):
                await c.aforget(configs)
        rounds.append(samples)
        cpu_rounds.append(cpu_samples)
    for c in contenders:
        c.check_status()
    return rounds, cpu_rounds


def _medians(
    rounds: list[list[list[int]]], per: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Median µs per step of every variant, over all its batches and per round."""
    med = {
        v: statistics.median(t for r in rounds for t in r[j]) / 1000 / per
        for j, v in enumerate(VARIANTS)
    }
    by_round = {
        v: [statistics.median(r[j]) / 1000 / per for r in rounds] for j, v in enumerate(VARIANTS)
    }
    return med, by_round


def _analyse(
    row: Row,
    sizes: Sizes,
    samples: Samples,
    contenders: list[_Contender],
    probe_us: dict[str, float],
) -> dict[str, Any]:
    rounds, cpu_rounds = samples
    per = sizes.batch * NODES  # node-steps per batch
    med, by_round = _medians(rounds, per)
    cpu_med, cpu_by_round = _medians(cpu_rounds, per)
    raw = med[RAW]
    out: dict[str, Any] = {
        "label": row.label,
        "backend": row.backend,
        "raw_saver": RAW_LABELS[(row.backend, row.is_async)],
        "is_async": row.is_async,
        "durability": row.durability,
        "rounds": sizes.rounds,
        "groups_per_round": sizes.groups,
        "invocations_per_batch": sizes.batch,
        "invocations_per_variant": sizes.rounds * sizes.groups * sizes.batch,
        "step_us": med,
        "invoke_us": {v: x * NODES for v, x in med.items()},
        "step_us_by_round": by_round,
        "deadline_s": {c.variant: c.deadline for c in contenders},
        "overhead_pct": {v: 100 * (med[v] / raw - 1) for v in VARIANTS if v != RAW},
        "added_us_per_step": {v: med[v] - raw for v in VARIANTS if v != RAW},
        "overhead_pct_by_round": {
            v: [100 * (x / r - 1) for x, r in zip(by_round[v], by_round[RAW], strict=True)]
            for v in VARIANTS
            if v != RAW
        },
    }
    # CPU time of the whole process (every thread: LangGraph's, the mirror's, the
    # deadline's workers), which the waits on the disk or the server do not inflate
    out["cpu_us_per_step"] = cpu_med
    out["cpu_overhead_pct"] = {
        v: 100 * (cpu_med[v] / cpu_med[RAW] - 1) for v in VARIANTS if v != RAW
    }
    out["cpu_overhead_pct_by_round"] = {
        v: [100 * (x / r - 1) for x, r in zip(cpu_by_round[v], cpu_by_round[RAW], strict=True)]
        for v in VARIANTS
        if v != RAW
    }
    # paired: each group's batch against the raw batch of the same group (cancels drift)
    out["overhead_pct_paired"] = {
        v: 100
        * (
            statistics.median(
                x / y for r in rounds for x, y in zip(r[j], r[VARIANTS.index(RAW)], strict=True)
            )
            - 1
        )
        for j, v in enumerate(VARIANTS)
        if v != RAW
    }
    steps = out["invocations_per_variant"] * NODES
    situ: dict[str, Any] = {}
    for c in contenders:
        if c.resilient is None:
            continue
        # the inner probe's own cost is inside the adapter's window: take it off
        probe_ns = 1000 * probe_us["async" if row.is_async else "sync"] * c.inner.calls
        added = (c.outer.ns - c.inner.ns - probe_ns) / 1000 / steps
        situ[c.variant] = {
            "us_per_step": added,
            "pct_of_raw_step": 100 * added / raw,
            "calls_per_invoke": c.outer.calls / out["invocations_per_variant"],
            "us_per_call": (c.outer.ns - c.inner.ns - probe_ns) / 1000 / max(c.outer.calls, 1),
        }
        if c.mirrored:
            situ[c.variant]["standby_us_per_step"] = c.standby.ns / 1000 / steps
            situ[c.variant]["standby_calls_per_invoke"] = (
                c.standby.calls / out["invocations_per_variant"]
            )
    out["in_situ"] = situ
    out["met_pass"] = out["overhead_pct"][PASS] <= GOAL_PASS_PCT
    out["met_pass_in_situ"] = situ[PASS]["pct_of_raw_step"] <= GOAL_PASS_PCT
    out["met_mirrored"] = out["overhead_pct"][MIRRORED] <= GOAL_MIRROR_PCT
    return out


def run_row(
    row: Row, sizes: Sizes, backend: _Backend, tmp: Path, run: str, probe_us: dict[str, float]
) -> dict[str, Any]:
    tag = f"{run}-{row.key}"
    if not row.is_async:
        try:
            contenders = [
                _Contender(v, backend.saver(f"{tag}-{v}"), row, tmp, f"{tag}-{v}") for v in VARIANTS
            ]
            samples = _time_sync(row, sizes, contenders)
            return _analyse(row, sizes, samples, contenders, probe_us)
        finally:
            backend.close()

    async def main() -> dict[str, Any]:
        try:
            contenders = [
                _Contender(v, await backend.asaver(f"{tag}-{v}"), row, tmp, f"{tag}-{v}")
                for v in VARIANTS
            ]
            samples = await _time_async(row, sizes, contenders)
            return _analyse(row, sizes, samples, contenders, probe_us)
        finally:
            await backend.aclose()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


# ---- where the pass-through's time goes


def _handoff_us(n: int) -> dict[str, float]:
    """The deadline's floor on this machine: ``call_with_deadline`` and
    ``await_with_deadline`` of a no-op (median µs per call, ``n`` calls each), beside
    the same no-op called directly."""
    from langgraph_resilience._deadline import await_with_deadline, call_with_deadline

    def noop() -> None:
        return None

    async def anoop() -> None:
        return None

    clock = time.perf_counter_ns
    out: dict[str, list[int]] = {"direct": [], "call_with_deadline": [], "await_with_deadline": []}
    for _ in range(n):
        t0 = clock()
        noop()
        out["direct"].append(clock() - t0)
        t0 = clock()
        call_with_deadline(noop, (), {}, 10.0, TimeoutError)
        out["call_with_deadline"].append(clock() - t0)

    async def timed() -> None:
        for _ in range(n):
            t0 = clock()
            await await_with_deadline(anoop(), 10.0, TimeoutError)
            out["await_with_deadline"].append(clock() - t0)

    asyncio.run(timed())
    return {k: statistics.median(v) / 1000 for k, v in out.items()}


class _Recorder(InMemorySaver):
    """An ``InMemorySaver`` that notes the calls a graph makes to it."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    def get_tuple(self, config: Any) -> Any:
        self.log.append(("get_tuple", (config,)))
        return super().get_tuple(config)

    def put(self, *args: Any) -> Any:
        self.log.append(("put", args))
        return super().put(*args)

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        self.log.append(("put_writes", (config, writes, task_id, task_path)))
        super().put_writes(config, writes, task_id, task_path)


def _profile_probes(raw: BaseCheckpointSaver[Any]) -> list[tuple[str, list[Any]]]:
    """(label, functions) of what the profile shows, per adapter call: matched on their
    code objects, or by name for builtins."""
    import threading

    from langgraph_resilience import _deadline
    from langgraph_resilience.breaker import Attempt, CircuitBreaker
    from langgraph_resilience.checkpoint import saver as module

    cls = type(raw)
    return [
        ("`ResilientSaver._call` (all of it)", [ResilientSaver._call]),
        ("  `_primary_try`", [ResilientSaver._primary_try]),
        ("    `call_with_deadline` (hand-off + raw call)", [_deadline.call_with_deadline]),
        ("      `Event.wait` (the caller waiting)", [threading.Event.wait]),
        ("      `_DaemonWorkers.submit`", [_deadline._DaemonWorkers.submit]),
        ("      `contextvars.copy_context`", ["copy_context"]),
        ("    `CircuitBreaker.begin`", [CircuitBreaker.begin]),
        ("    `Attempt.succeed`", [Attempt.succeed]),
        ("    `_sync_method`", [module._sync_method]),
        (
            "    the raw saver's `get_tuple`/`put`/`put_writes`, when run in this thread",
            [cls.get_tuple, cls.put, cls.put_writes],
        ),
    ]


def _key_of(fn: Any) -> Any:
    """How cProfile names ``fn``: (file, first line, name), or the builtin's name."""
    if isinstance(fn, str):
        return fn
    code = fn.__code__
    return (code.co_filename, code.co_firstlineno, code.co_name)


def _profile_pass(backend: _Backend, replays: int, tag: str) -> dict[str, Any]:
    """The calls of one 10-node invocation (``durability="sync"``), replayed ``replays``
    times through ``ResilientSaver(raw)`` in this thread under cProfile (LangGraph makes
    them from its executor's threads, which cProfile does not see)."""
    recorder = _Recorder()
    graph = _linear(step, recorder)
    graph.invoke(INPUT, {"configurable": {"thread_id": f"{tag}-profile"}}, durability="sync")
    calls = recorder.log
    raw = backend.saver(f"{tag}-profile")
    inner = _Probe()  # the raw calls' time, wherever they run (a worker is not profiled)
    inner.wrap(raw, SYNC_METHODS)
    saver = ResilientSaver(raw)
    try:
        methods = [(getattr(saver, m), args) for m, args in calls]
        for fn, args in methods:  # the thread's first checkpoint, outside the profile
            fn(*args)
        prof = cProfile.Profile()

        def replay() -> None:
            for _ in range(replays):
                for fn, args in methods:
                    fn(*args)

        gc.collect()
        inner.reset()
        prof.runcall(replay)
    finally:
        backend.close()
    stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    n = replays * len(calls)
    probes = []
    for label, fns in _profile_probes(saver.primary):
        keys = {_key_of(fn) for fn in fns}
        hits = [
            v
            for k, v in stats.items()
            if k in keys or (k[0] == "~" and any(n in k[2] for n in keys if isinstance(n, str)))
        ]
        if hits:
            probes.append(
                {
                    "part": label,
                    "calls": sum(v[1] for v in hits) / n,
                    "cumtime_us": 1e6 * sum(v[3] for v in hits) / n,
                }
            )
    total = sum(v[2] for v in stats.values())
    return {
        "calls_per_invoke": len(calls),
        "replays": replays,
        "us_per_call_profiled": 1e6 * total / n,
        "raw_us_per_call": inner.ns / 1000 / max(inner.calls, 1),
        "deadline_s": getattr(saver, "_deadline", saver._policy.deadline),
        "probes": probes,
    }


# ---- the part


def _rows() -> list[Row]:
    return [
        Row(b, a, d)
        for b in ("sqlite", "memory", "postgres")
        for a in (False, True)
        for d in ("sync", "async")
    ]


def run_cost(quick: bool, say: Callable[[str], None], tmp: Path, run: str) -> dict[str, Any]:
    sizes = sizes_for(quick)
    url = os.environ.get("LGR_PG_URI")
    ci = os.environ.get("CI", "").lower() == "true"
    if not url and ci:
        raise RuntimeError("part 6 needs $LGR_PG_URI under CI=true")
    rows: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    probe_us = _probe_cost_us()
    backends: dict[str, _Backend] = {"sqlite": _Sqlite(tmp), "memory": _Memory(tmp)}
    postgres: _Postgres | None = None
    if url:
        postgres = _Postgres(tmp, url)
        backends["postgres"] = postgres
    try:
        for row in _rows():
            if row.backend not in backends:
                rows[row.key] = {"label": row.label, "skipped": "$LGR_PG_URI is not set"}
                continue
            s = sizes[row.backend]
            say(
                f"saver: {row.label}, {s.rounds} rounds x {s.groups} groups of 4 batches "
                f"of {s.batch}"
            )
            rows[row.key] = run_row(row, s, backends[row.backend], tmp, run, probe_us)
        missed = dict.fromkeys(
            r["backend"] for r in rows.values() if "skipped" not in r and not r["met_pass"]
        )
        for key in missed:
            say(f"saver: {key} pass-through misses the goal: its calls replayed under cProfile")
            profiles[key] = _profile_pass(backends[key], 2 if quick else 20, f"{run}-{key}")
    finally:
        if postgres is not None:
            postgres.drop()
    return {
        "rows": rows,
        "profiles": profiles,
        "handoff_us": _handoff_us(300 if quick else 2000),
        "probe_us": probe_us,
    }


# ---- failover


FAILOVER_STEPS = 30  # steps of the looping graph
FAULT_AT = 10  # the step whose node kills or freezes the server
POOL_TIMEOUT = 1.0  # psycopg_pool's wait for a connection (its default is 30 s)
FREEZE_DEADLINE = 1.0  # SaverPolicy(timeout=...) for the frozen server
KILL, FREEZE = "kill", "freeze"
FAULT_POLICIES = {
    KILL: "default `SaverPolicy()`",
    FREEZE: f"`SaverPolicy(timeout={FREEZE_DEADLINE:g})`",
}


def _loop_graph(saver: BaseCheckpointSaver[Any], on_step: Callable[[int], None]) -> Any:
    """``START -> tick -> tick -> ... -> END``: one node, ``FAILOVER_STEPS`` steps."""

    def tick(s: State) -> dict[str, int]:
        x = s["x"] + 1
        on_step(x)
        return {"x": x}

    def more(s: Any) -> str:
        return "tick" if s["x"] < FAILOVER_STEPS else END

    node: Any = tick  # typed Any, as in _linear: add_node's overloads reject the closure
    builder: StateGraph[Any] = StateGraph(State)
    builder.add_node("tick", node)
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", more, ["tick", END])
    return builder.compile(checkpointer=saver)


def _pool(url: str) -> Any:
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    pool: ConnectionPool[Any] = ConnectionPool(
        url,
        min_size=1,
        max_size=4,
        timeout=POOL_TIMEOUT,
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": 1,
        },
        open=True,
    )
    pool.wait()
    return pool


def _missing_on(url: str, configs: list[RunnableConfig]) -> int:
    """How many of these checkpoints the server lacks (a connection of its own: the
    saver's pool may still be waiting to reconnect)."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    with psycopg.connect(
        url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=5
    ) as conn:
        saver = PostgresSaver(conn)
        return sum(saver.get_tuple(cfg) is None for cfg in configs)


def _reconcile(saver: ResilientSaver, limit: float) -> tuple[Any, int]:
    """``reconcile()`` until the primary answers (the pool reconnects with a backoff)."""
    from langgraph_resilience import SaverUnavailableError

    start = time.perf_counter()
    tries = 0
    while True:
        tries += 1
        try:
            return saver.reconcile(), tries
        except SaverUnavailableError:
            if time.perf_counter() - start > limit:
                raise


def _failover_run(pg: Any, fault: str, tmp: Path, tag: str) -> dict[str, Any]:
    """One run of the looping graph on Postgres + a SQLite standby; the node of step
    ``FAULT_AT`` kills or freezes the server. Then restart, reconcile and look for
    every checkpoint that was written."""
    from langgraph.checkpoint.postgres import PostgresSaver

    from langgraph_resilience import SaverFailedOver

    pool = _pool(pg.url)
    primary = PostgresSaver(pool)
    primary.setup()
    policy = SaverPolicy() if fault == KILL else SaverPolicy(timeout=FREEZE_DEADLINE)
    clock = time.perf_counter
    events: list[tuple[float, Any]] = []
    saver = ResilientSaver(
        primary,
        standby=f"sqlite:///{tmp / f'{tag}-standby.db'}",
        policy=policy,
        name=tag,
        listeners=[lambda e: events.append((clock(), e))],
    )
    puts: list[tuple[float, float, RunnableConfig]] = []  # (called, returned, config)
    put = saver.put

    @functools.wraps(put)
    def stamped(*args: Any, **kwargs: Any) -> Any:
        t0 = clock()
        config = put(*args, **kwargs)
        puts.append((t0, clock(), config))
        return config

    saver.put = stamped  # type: ignore[method-assign]
    faulted: list[float] = []

    def on_step(x: int) -> None:
        if x == FAULT_AT:
            if fault == KILL:
                pg.kill9()
            else:
                pg.freeze()
            faulted.append(clock())

    graph = _loop_graph(saver, on_step)
    config = {"configurable": {"thread_id": tag}, "recursion_limit": FAILOVER_STEPS + 10}
    try:
        t0 = clock()
        result = graph.invoke({"x": 0}, config, durability="sync")
        t_end = clock()
        run_s = t_end - t0
    finally:
        if fault == FREEZE:
            pg.thaw()
    assert result == {"x": FAILOVER_STEPS}, result
    t_fault = faulted[0]
    status = saver.status()
    assert status.active == "standby", status
    assert status.failovers == 1, status
    over = [(t, e) for t, e in events if isinstance(e, SaverFailedOver)]
    assert len(over) == 1, over
    t_over, event = over[0]
    after = [p for p in puts if p[1] > t_fault]
    first = after[0]
    before = [p for p in puts if p[1] <= t_fault]
    # once the first checkpoint after the fault is written, the run should go on at the
    # standby's pace: the longest wait for the next checkpoint, or for the run's end
    # (which waits for the last task writes)
    gaps = [b - a for a, b in itertools.pairwise([p[1] for p in after] + [t_end])]

    t_back = clock()
    if fault == KILL:
        pg.start()
    restarted_s = clock() - t_back
    missing_before = _missing_on(pg.url, [cfg for _, _, cfg in puts])
    t_rec = clock()
    report, tries = _reconcile(saver, limit=30.0)
    reconcile_s = clock() - t_rec
    assert report.failed_back, report
    assert saver.status().active == "primary", saver.status()

    missing = [cfg for _, _, cfg in puts if primary.get_tuple(cfg) is None]
    latest = primary.get_tuple({"configurable": {"thread_id": tag}})
    pool.close()
    return {
        "fault": fault,
        "policy": FAULT_POLICIES[fault],
        "deadline_s": policy.deadline,
        "run_s": run_s,
        "fault_to_failover_s": t_over - t_fault,
        "fault_to_next_put_s": first[1] - t_fault,
        "failover_to_next_put_s": first[1] - t_over,
        "next_put_call_s": first[1] - first[0],
        "stall_after_s": max(gaps),
        "failover_operation": event.operation,
        "failover_error": event.error,
        "last_error": status.last_error,
        "breaker_after_run": status.breaker.value,
        "put_us_before_fault": statistics.median((b - a) * 1e6 for a, b, _ in before),
        "put_us_on_standby": statistics.median((b - a) * 1e6 for a, b, _ in after[1:]),
        "checkpoints_written": len(puts),
        "written_after_fault": len(after),
        "restart_s": restarted_s,
        "reconcile_s": reconcile_s,
        "reconcile_tries": tries,
        "reconciled_checkpoints": report.checkpoints,
        "reconciled_writes": report.writes,
        "missing_before_reconcile": missing_before,
        "lost": len(missing),
        "latest_x_on_primary": None if latest is None else latest.checkpoint["channel_values"]["x"],
    }


def run_failover(quick: bool, say: Callable[[str], None], tmp: Path, run: str) -> dict[str, Any]:
    """``runs`` kills and ``runs`` freezes of a private server, alternated."""
    ci = os.environ.get("CI", "").lower() == "true"
    try:
        from tests.checkpoint._private_postgres import PrivatePostgres
    except ImportError as exc:
        if ci:
            raise
        return {"skipped": f"tests.checkpoint._private_postgres: {exc}"}
    runs = 1 if quick else 3
    # psycopg_pool logs every refused reconnect while the server is down: expected here
    psycopg_log = logging.getLogger("psycopg")
    level = psycopg_log.level
    psycopg_log.setLevel(logging.CRITICAL)
    pg = PrivatePostgres()
    out: dict[str, Any] = {
        "runs": {KILL: [], FREEZE: []},
        "steps": FAILOVER_STEPS,
        "fault_at": FAULT_AT,
        "pool_timeout_s": POOL_TIMEOUT,
    }
    try:
        t0 = time.perf_counter()
        pg.start()
        out["server_start_s"] = time.perf_counter() - t0
        for i in range(runs):
            for fault in (KILL, FREEZE):
                say(f"saver: failover {i + 1}/{runs}, {fault}")
                out["runs"][fault].append(_failover_run(pg, fault, tmp, f"{run}-{fault}-{i}"))
    finally:
        psycopg_log.setLevel(level)
        with contextlib.suppress(Exception):
            pg.thaw()
        pg.remove()
    for fault, results in out["runs"].items():
        out[fault] = _failover_summary(results)
    return out


def _failover_summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(key: str) -> dict[str, float]:
        values = [r[key] for r in results if r[key] is not None]
        return {"median": statistics.median(values), "max": max(values), "n": len(values)}

    return {
        "fault_to_failover_s": stat("fault_to_failover_s"),
        "fault_to_next_put_s": stat("fault_to_next_put_s"),
        "stall_after_s": stat("stall_after_s"),
        "reconcile_s": stat("reconcile_s"),
        "put_us_before_fault": stat("put_us_before_fault"),
        "put_us_on_standby": stat("put_us_on_standby"),
        "checkpoints_written": sum(r["checkpoints_written"] for r in results),
        "written_after_fault": sum(r["written_after_fault"] for r in results),
        "missing_before_reconcile": sum(r["missing_before_reconcile"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "errors": sorted(
            {
                f"`{r['failover_operation']}`: {r['failover_error'].partition(':')[0]}"
                for r in results
            }
        ),
    }


def run_saver(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The cost per step of every row, then the failover runs."""
    say = progress or (lambda _msg: None)
    tmp = Path(tempfile.mkdtemp(prefix="lgr-bench-saver-"))
    run = uuid.uuid4().hex[:8]
    try:
        result: dict[str, Any] = {
            "nodes": NODES,
            "goal_pass_pct": GOAL_PASS_PCT,
            "goal_mirror_pct": GOAL_MIRROR_PCT,
            "goal_lost": GOAL_LOST,
        }
        result["cost"] = run_cost(quick, say, tmp, run)
        result["failover"] = run_failover(quick, say, tmp, run)
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
