"""LangGraph's checkpoint conformance suite against ``ResilientSaver``.

Every real saver LangGraph ships is wrapped, alone and with a standby, and the suite
(``langgraph.checkpoint.conformance``) runs against the wrapper. The suite is async
only: for a sync primary the wrapper goes behind ``to_thread_shim`` (``_shim.py``), so
the suite drives the wrapper's *sync* methods; for an async primary it drives the
wrapper's async methods directly.

Each ``validate`` run gets its own stores: fresh SQLite files in ``tmp_path`` and, for
Postgres, a private schema in the test database (created and set up once by the run's
``lifespan``, dropped at its end). The factory, called once per capability group, opens
connections or pools on them, wraps them in a new ``ResilientSaver``, and closes them
after the ``yield``. A private schema keeps each run's threads apart from the rest of
the database, so the primary's whole content can be compared with the standby's.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
import pytest
import tenacity
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, Capability
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_resilience import ResilientSaver, SaverPolicy
from tests.checkpoint._shim import overridden, to_thread_shim

BASE = frozenset(cap.value for cap in BASE_CAPABILITIES)
EXTENDED = ("delete_for_runs", "copy_thread", "prune")
PG_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}

# primary -> which of the wrapper's fronts the suite drives
PRIMARIES = {
    "memory-async": "async",
    "memory-sync": "sync",
    "sqlite-sync": "sync",
    "sqlite-async": "async",
    "postgres-sync-conn": "sync",
    "postgres-sync-pool": "sync",
    "postgres-async-conn": "async",
    "postgres-async-pool": "async",
}


@dataclass(frozen=True)
class Case:
    """One saver configuration: the primary, and the standby (None, "sqlite", "memory")."""

    primary: str
    standby: str | None

    @property
    def id(self) -> str:
        suffix = {None: "alone", "sqlite": "standby", "memory": "memory-standby"}[self.standby]
        return f"{self.primary}-{suffix}"

    @property
    def postgres(self) -> bool:
        return self.primary.startswith("postgres")

    @property
    def sync(self) -> bool:
        return PRIMARIES[self.primary] == "sync"

    @property
    def extended(self) -> frozenset[str]:
        """The optional capabilities the wrapper must offer: only the Postgres savers
        have one (prune), and a standby without it takes it away."""
        return frozenset({"prune"}) if self.postgres and self.standby is None else frozenset()


def _cases() -> list[Any]:
    cases = [Case(p, s) for p in PRIMARIES for s in (None, "sqlite")]
    cases += [Case("postgres-sync-conn", "memory"), Case("postgres-async-pool", "memory")]
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.postgres] if c.postgres else []) for c in cases
    ]


CASES = _cases()
STANDBY_CASES = [p for p in CASES if p.values[0].standby is not None]


# ---- the stores of one validate run ---------------------------------------------------


class Run:
    """The stores one ``validate`` run shares between its factory calls."""

    def __init__(self, case: Case, tmp_path: Path, postgres_url: str | None) -> None:
        self.case = case
        self.compare = False  # record both stores' contents at the end of the run
        self.dir = tmp_path / f"{case.id}-{uuid.uuid4().hex[:8]}"
        self.postgres_url = postgres_url
        self.schema = f"lgr_conformance_{uuid.uuid4().hex[:12]}"
        self.memory_primary = InMemorySaver()
        self.memory_standby = InMemorySaver()
        self.savers: list[ResilientSaver] = []  # every wrapper the factory yielded
        # with compare=True: what the primary and the standby hold after the run
        self.mirrored: tuple[dict[str, Any], dict[str, Any]] | None = None

    @property
    def pg_kwargs(self) -> dict[str, Any]:
        # no commit waits for its WAL flush: the tests need no durability, and fsyncs
        # make their time depend on the machine's disk load
        options = f"-c search_path={self.schema} -c synchronous_commit=off"
        return {**PG_KWARGS, "options": options}

    async def lifespan(self) -> AsyncIterator[None]:
        """Create the run's directory (and Postgres schema, set up once); remove both
        after, once the stores' contents are recorded if the test compares them."""
        self.dir.mkdir()
        if self.case.postgres:
            assert self.postgres_url is not None
            with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {self.schema}")
            with psycopg.connect(self.postgres_url, **self.pg_kwargs) as conn:
                PostgresSaver(conn).setup()
        try:
            yield
            if self.compare and self.case.standby is not None:
                async with self.open_primary() as primary, self.open_standby() as standby:
                    assert standby is not None
                    self.mirrored = (await _contents(primary), await _contents(standby))
        finally:
            if self.case.postgres:
                with psycopg.connect(self.postgres_url, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {self.schema} CASCADE")
            shutil.rmtree(self.dir)

    @asynccontextmanager
    async def open_primary(self) -> AsyncIterator[BaseCheckpointSaver[Any]]:
        kind, url = self.case.primary, self.postgres_url
        if kind.startswith("memory"):
            yield self.memory_primary
        elif kind == "sqlite-sync":
            with _sqlite(self.dir / "primary.db") as conn:
                yield SqliteSaver(conn)
        elif kind == "sqlite-async":
            async with aiosqlite.connect(self.dir / "primary.db") as aconn:
                await aconn.execute("PRAGMA synchronous=OFF")  # see _sqlite
                yield AsyncSqliteSaver(aconn)
        elif kind == "postgres-sync-conn":
            with psycopg.connect(url, **self.pg_kwargs) as conn:
                yield PostgresSaver(conn)
        elif kind == "postgres-sync-pool":
            with ConnectionPool(url, kwargs=self.pg_kwargs, min_size=1, max_size=4) as pool:
                yield PostgresSaver(pool)
        elif kind == "postgres-async-conn":
            async with await psycopg.AsyncConnection.connect(url, **self.pg_kwargs) as conn:
                yield AsyncPostgresSaver(conn)
        else:
            assert kind == "postgres-async-pool", kind
            pool = AsyncConnectionPool(
                url, kwargs=self.pg_kwargs, min_size=1, max_size=4, open=False
            )
            async with pool:
                yield AsyncPostgresSaver(pool)

    @asynccontextmanager
    async def open_standby(self) -> AsyncIterator[BaseCheckpointSaver[Any] | None]:
        if self.case.standby is None:
            yield None
        elif self.case.standby == "memory":
            yield self.memory_standby
        else:
            with _sqlite(self.dir / "standby.db") as conn:
                yield SqliteSaver(conn)

    async def factory(self) -> AsyncIterator[BaseCheckpointSaver[Any]]:
        """A new wrapper over the run's stores; its mirror flushed, its connections
        closed after the capability group."""
        async with AsyncExitStack() as stack:
            primary = await stack.enter_async_context(self.open_primary())
            standby = await stack.enter_async_context(self.open_standby())
            saver = ResilientSaver(
                primary,
                standby=standby,
                policy=SaverPolicy(wait=tenacity.wait_none()),
                name=f"conformance-{self.case.id}-{len(self.savers)}",
            )
            self.savers.append(saver)
            yield to_thread_shim(saver) if self.case.sync else saver
            await asyncio.to_thread(saver.flush)  # the standby must not close mid-write

    def register(self) -> Any:
        name = f"resilient-{self.case.id}-{uuid.uuid4().hex[:8]}"  # the suite's registry is global
        return checkpointer_test(name=name, lifespan=self.lifespan)(self.factory)


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection usable from worker threads (SqliteSaver locks around its use),
    without fsyncs: the tests need no durability, and fsyncs make their time depend on
    the machine's disk load."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA synchronous=OFF")
    try:
        yield conn
    finally:
        conn.close()


async def _contents(store: BaseCheckpointSaver[Any]) -> dict[str, Any]:
    """Every checkpoint ``store`` holds, by thread: (namespace, id, parent, metadata,
    channel values, pending writes), in a form two stores can be compared on."""
    try:
        found = [item async for item in store.alist(None)]
    except NotImplementedError:  # a sync-only saver
        found = await asyncio.to_thread(lambda: list(store.list(None)))
    threads: dict[str, list[Any]] = {}
    for item in found:
        threads.setdefault(item.config["configurable"]["thread_id"], []).append(_entry(item))
    return {thread: sorted(entries, key=lambda e: e[:2]) for thread, entries in threads.items()}


def _entry(item: CheckpointTuple) -> tuple[Any, ...]:
    conf = item.config["configurable"]
    parent = None if item.parent_config is None else item.parent_config["configurable"]
    writes = sorted(item.pending_writes or (), key=lambda w: (w[0], w[1], repr(w[2])))
    return (
        conf.get("checkpoint_ns", ""),
        conf["checkpoint_id"],
        None if parent is None else parent["checkpoint_id"],
        item.metadata,
        item.checkpoint["channel_values"],
        writes,
    )


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    """The stores for the case in ``request.param`` (Postgres ones need the server)."""
    case: Case = request.param
    url = request.getfixturevalue("postgres_url") if case.postgres else None
    return Run(case, tmp_path, url)


def _failures(report: CapabilityReport) -> list[str]:
    return [f"{cap}: {f}" for cap, r in report.results.items() for f in r.failures]


# ---- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("run", CASES, indirect=True)
def test_conformance(run: Run) -> None:
    """The wrapper passes every suite test, and offers exactly the optional methods
    that all its wrapped savers have (prune with Postgres alone; none with a standby)."""
    report = asyncio.run(validate(run.register()))

    assert report.passed_all_base(), _failures(report)
    assert report.passed_all(), _failures(report)
    detected = {cap for cap, result in report.results.items() if result.detected}
    assert detected == BASE | run.case.extended, report.to_dict()
    for saver in run.savers:  # the dynamic class is what the suite judged
        assert {m for m in EXTENDED if overridden(saver, m)} == run.case.extended
    if "prune" in run.case.extended:
        prune = report.results["prune"]
        assert prune.passed is True, report.to_dict()
        assert prune.tests_passed > 0, report.to_dict()
    assert all(saver.status().active == "primary" for saver in run.savers)


@pytest.mark.parametrize("run", STANDBY_CASES, indirect=True)
def test_standby_mirrors_the_suite_traffic(run: Run) -> None:
    """After the suite (and ``flush()``), the standby holds exactly what the primary
    holds, thread by thread: checkpoints, parents, metadata, values, pending writes;
    threads the suite deleted are gone from both."""
    run.compare = True
    report = asyncio.run(validate(run.register()))

    assert report.passed_all(), _failures(report)
    assert len(run.savers) == len(Capability)  # one wrapper per capability group
    for saver in run.savers:
        status = saver.status()
        assert (status.active, status.mirror_lag, status.mirror_failures) == ("primary", 0, 0)
    assert run.mirrored is not None
    primary, standby = run.mirrored
    assert len(primary) > 10, "the suite left few threads behind: too little was compared"
    assert sorted(standby) == sorted(primary)
    for thread, entries in primary.items():
        assert standby[thread] == entries, thread
