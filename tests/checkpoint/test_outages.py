"""``ResilientSaver`` against a real PostgreSQL server that goes away in the middle of a run.

Each test owns a private server (the ``private_postgres`` fixture, ``_private_postgres.py``)
and breaks it from inside a node of a real ``StateGraph`` (a -> b -> c -> d; node ``b``
does it): a clean stop (``pg_ctl stop -m fast``), a crash (SIGKILL to the postmaster and
its children) or a freeze (SIGSTOP: connections are accepted and never answered).

The primary is ``PostgresSaver`` (sync graphs) or ``AsyncPostgresSaver`` (async graphs)
on a psycopg pool with 1 s timeouts; the standby a ``SqliteSaver`` on a file. With a
standby the run must finish, within a few per-call deadlines, on the standby; once the
server is back, ``reconcile()`` must leave the primary with exactly the standby's history
(checkpoint ids per namespace, parents, metadata, channel values and versions, pending
writes: read by each store's own ``list``, the primary's on a fresh connection), and the
graph must read its final state through the adapter again. Without a standby the run
must fail with ``SaverUnavailableError`` (not hang) and resume after the restart.
"""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from time import perf_counter
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
import tenacity
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_resilience import (
    FakeClock,
    ReconcileReport,
    ResilientSaver,
    SaverFailedOver,
    SaverPolicy,
    SaverUnavailableError,
)
from tests.checkpoint._private_postgres import PrivatePostgres
from tests.graph._helpers import CONTEXT_MODES

pytestmark = pytest.mark.postgres

MODES = ["sync", "async"]
NODES = ["a", "b", "c", "d"]
DONE = {"log": NODES}
POLICY = SaverPolicy(timeout=1.5, attempts=2, wait=tenacity.wait_none())
PG_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
RUN_BOUND = 12.0  # seconds a run may take while the server is gone: a few deadlines
BACK_BOUND = 20.0  # seconds for the pool to reconnect after the restart (it backs off)


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


# ---- breaking the server and bringing it back -------------------------------------------


def break_server(pg: PrivatePostgres, fault: str) -> None:
    if fault == "stop":
        pg.stop("fast")
    elif fault == "kill9":
        pg.kill9()
    else:
        pg.freeze()


def bring_back(pg: PrivatePostgres, fault: str) -> None:
    if fault == "freeze":
        pg.thaw()
    else:
        pg.start()


@contextmanager
def thawed_at_exit(pg: PrivatePostgres) -> Iterator[None]:
    """Whatever the test does, a frozen server is thawed before the pools are closed."""
    try:
        yield
    finally:
        pg.thaw()


# ---- stores ------------------------------------------------------------------------------


@asynccontextmanager
async def postgres_primary(pg: PrivatePostgres, mode: str) -> AsyncIterator[Any]:
    """``PostgresSaver`` ("sync") or ``AsyncPostgresSaver`` ("async") on a pool that
    gives up on a connection after 1 s, checks connections at checkout, and is set up."""
    conninfo = f"{pg.url}?connect_timeout=1"
    if mode == "sync":
        pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=4,
            timeout=1,
            kwargs=PG_KWARGS,
            check=ConnectionPool.check_connection,
            open=False,
        )
        pool.open(wait=True, timeout=10)
        saver = PostgresSaver(pool)  # type: ignore[arg-type]
        saver.setup()
        try:
            yield saver
        finally:
            pool.close(timeout=5)
    else:
        apool = AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=4,
            timeout=1,
            kwargs=PG_KWARGS,
            check=AsyncConnectionPool.check_connection,
            open=False,
        )
        await apool.open(wait=True, timeout=10)
        asaver = AsyncPostgresSaver(apool)  # type: ignore[arg-type]
        await asaver.setup()
        try:
            yield asaver
        finally:
            await apool.close(timeout=5)


@pytest.fixture
def standby(tmp_path: Path) -> Iterator[SqliteSaver]:
    conn = sqlite3.connect(tmp_path / "standby.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    yield saver
    conn.close()


# ---- the graph ---------------------------------------------------------------------------


def build(
    saver: ResilientSaver, mode: str, at_b: list[Callable[[], None]], *, subgraph: bool = False
) -> Any:
    """a -> b -> c -> d, each node appending its name; node ``b`` runs (once) what
    ``at_b`` holds; with ``subgraph``, ``c`` is a one-node subgraph (its checkpoints go
    to a namespace of their own). ``build(...).calls`` counts the nodes that ran."""
    calls: Counter[str] = Counter()

    def node(name: str) -> Callable[..., Any]:
        if mode == "sync":

            def step(state: State) -> State:
                calls[name] += 1
                if name == "b" and at_b:
                    at_b.pop()()
                return {"log": [name]}

            return step

        async def astep(state: State) -> State:
            calls[name] += 1
            if name == "b" and at_b:
                await asyncio.to_thread(at_b.pop())
            return {"log": [name]}

        return astep

    def sub(inner_node: Callable[..., Any]) -> Callable[..., Any]:
        # Called from a node, a subgraph inherits the checkpointer and checkpoints under
        # the namespace "c:<task id>".
        inner: StateGraph[Any] = StateGraph(State)
        inner.add_node("c", inner_node)
        inner.add_edge(START, "c")
        compiled = inner.compile()
        if mode == "sync":
            return lambda state: compiled.invoke({"log": []})

        async def acall(state: State) -> State:
            out: State = await compiled.ainvoke({"log": []})
            return out

        return acall

    builder: StateGraph[Any] = StateGraph(State)
    for name in NODES:
        builder.add_node(name, node(name) if name != "c" or not subgraph else sub(node("c")))
    for src, dst in zip([START, *NODES], [*NODES, END], strict=True):
        builder.add_edge(src, dst)
    graph = builder.compile(checkpointer=saver)
    graph.calls = calls  # type: ignore[attr-defined]
    return graph


def config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


async def run(graph: Any, mode: str, inp: Any, thread_id: str, durability: str = "sync") -> Any:
    if mode == "sync":
        return graph.invoke(inp, config(thread_id), durability=durability)
    return await graph.ainvoke(inp, config(thread_id), durability=durability)


async def get_state(graph: Any, mode: str, thread_id: str) -> Any:
    if mode == "sync":
        return graph.get_state(config(thread_id))
    return await graph.aget_state(config(thread_id))


# ---- after the outage --------------------------------------------------------------------


async def reconcile_when_back(saver: ResilientSaver, mode: str) -> ReconcileReport:
    """``reconcile()`` until the primary answers: after a restart the pool reconnects
    with a backoff (1 s, 2 s, ...), and each try waits at most two pool timeouts."""
    started = perf_counter()
    while True:
        try:
            if mode == "sync":
                return saver.reconcile()
            return await saver.areconcile()
        except SaverUnavailableError:  # noqa: PERF203 - each try is a pool round trip
            if perf_counter() - started > BACK_BOUND:
                raise


def history(tuples: Iterator[CheckpointTuple]) -> dict[str, list[dict[str, Any]]]:
    """A thread's checkpoints by namespace, oldest first, as comparable values."""
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for item in tuples:
        conf = item.config["configurable"]
        parent = item.parent_config["configurable"]["checkpoint_id"] if item.parent_config else None
        by_ns.setdefault(conf.get("checkpoint_ns", ""), []).append(
            {
                "id": conf["checkpoint_id"],
                "parent": parent,
                "metadata": item.metadata,
                "values": item.checkpoint["channel_values"],
                "versions": item.checkpoint["channel_versions"],
                "seen": item.checkpoint["versions_seen"],
                # Postgres orders writes by task path, SQLite by task id: sort (stably).
                "writes": sorted(item.pending_writes or [], key=operator.itemgetter(0)),
            }
        )
    return {ns: sorted(items, key=operator.itemgetter("id")) for ns, items in by_ns.items()}


def primary_history(pg: PrivatePostgres, thread_id: str) -> dict[str, list[dict[str, Any]]]:
    """The thread's history as the server holds it, read on a fresh connection (not
    through the adapter or its pool)."""
    with psycopg.connect(pg.url, **PG_KWARGS) as conn:
        return history(PostgresSaver(conn).list(config(thread_id)))  # type: ignore[arg-type]


def assert_same_history(pg: PrivatePostgres, standby: SqliteSaver, thread_ids: list[str]) -> None:
    """The primary holds exactly the standby's history, thread by thread."""
    for thread_id in thread_ids:
        ours = history(standby.list(config(thread_id)))
        assert ours, f"the standby has nothing for {thread_id}"
        assert primary_history(pg, thread_id) == ours, thread_id


# ---- with a standby: the run goes on ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", ["stop", "kill9", "freeze"])
async def test_outage_mid_run_finishes_on_the_standby_and_reconciles(
    private_postgres: PrivatePostgres, standby: SqliteSaver, mode: str, fault: str
) -> None:
    """Proves: a server stopped, killed or frozen during node b costs the run a few
    deadlines and no output; after the restart reconcile() gives the primary the
    standby's exact history, the saver is back on the primary with nothing pending,
    the graph reads its final state through it, and a second reconcile copies nothing."""
    pg = private_postgres
    async with postgres_primary(pg, mode) as primary:
        failovers: list[Any] = []
        saver = ResilientSaver(
            primary, standby=standby, policy=POLICY, name="outage", listeners=[failovers.append]
        )
        graph = build(saver, mode, [lambda: break_server(pg, fault)])
        with thawed_at_exit(pg):
            started = perf_counter()
            result = await run(graph, mode, {"log": []}, "t")
            elapsed = perf_counter() - started

            assert result == DONE
            assert elapsed < RUN_BOUND, f"the run took {elapsed:.1f} s"
            status = saver.status()
            assert status.active == "standby"
            assert status.failovers == 1
            assert status.pending_threads == ("t",)
            [event] = [e for e in failovers if isinstance(e, SaverFailedOver)]
            if fault == "freeze":  # the frozen call was abandoned at the per-call deadline
                assert event.error.startswith("StoreTimeoutError"), event.error

            bring_back(pg, fault)
            newest = history(standby.list(config("t")))[""][-1]
            assert newest not in primary_history(pg, "t")[""]  # written on the standby only
            report = await reconcile_when_back(saver, mode)

        assert report.failed_back
        assert report.threads >= 1  # not == 1: a thread can be journaled twice (reported)
        assert report.checkpoints >= 1
        assert report.writes >= 1  # the writes of c and d, at least
        status = saver.status()
        assert status.active == "primary"
        assert status.pending_threads == ()
        assert status.pending_operations == 0
        saver.flush()
        assert_same_history(pg, standby, ["t"])

        state = await get_state(graph, mode, "t")
        assert state.values == DONE
        assert state.next == ()
        assert await run(graph, mode, None, "t") == DONE
        assert graph.calls == Counter(NODES)  # resuming a finished run re-ran nothing
        assert saver.status().active == "primary"

        again = await reconcile_when_back(saver, mode)
        assert (again.checkpoints, again.writes, again.operations) == (0, 0, 0)


@pytest.mark.parametrize("mode", CONTEXT_MODES)  # an async subgraph needs the run's config
async def test_outage_during_the_second_of_three_runs_reconciles_every_thread(
    private_postgres: PrivatePostgres, standby: SqliteSaver, mode: str
) -> None:
    """Proves: with durability="async" and a subgraph (a second checkpoint namespace),
    a crash during the second of three runs loses nothing: the first run stays on the
    primary, the second fails over, the third runs on the standby alone, and one
    reconcile() gives the primary every thread's exact history; a second copies nothing."""
    pg = private_postgres
    threads = ["t1", "t2", "t3"]
    async with postgres_primary(pg, mode) as primary:
        saver = ResilientSaver(primary, standby=standby, policy=POLICY, name="three")
        faults: list[Callable[[], None]] = []
        graph = build(saver, mode, faults, subgraph=True)

        assert await run(graph, mode, {"log": []}, "t1", "async") == DONE
        assert saver.status().active == "primary"
        faults.append(pg.kill9)
        started = perf_counter()
        assert await run(graph, mode, {"log": []}, "t2", "async") == DONE
        assert await run(graph, mode, {"log": []}, "t3", "async") == DONE
        elapsed = perf_counter() - started
        assert elapsed < RUN_BOUND, f"the runs took {elapsed:.1f} s"
        status = saver.status()
        assert status.active == "standby"
        assert status.failovers == 1
        assert set(status.pending_threads) == {"t2", "t3"}

        pg.start()
        report = await reconcile_when_back(saver, mode)
        assert report.failed_back
        assert report.threads >= 2
        assert report.checkpoints >= 5  # t3's whole run at least: input, a, b, c, d
        status = saver.status()
        assert (status.active, status.pending_threads) == ("primary", ())
        saver.flush()
        assert_same_history(pg, standby, threads)
        with psycopg.connect(pg.url, **PG_KWARGS) as conn:
            namespaces = {
                item.config["configurable"]["checkpoint_ns"].partition(":")[0]
                for item in PostgresSaver(conn).list(config("t3"))  # type: ignore[arg-type]
            }
        assert namespaces == {"", "c"}  # the subgraph's checkpoints were copied too

        for thread_id in threads:
            state = await get_state(graph, mode, thread_id)
            assert (state.values, state.next) == (DONE, ())
        again = await reconcile_when_back(saver, mode)
        assert (again.checkpoints, again.writes, again.operations) == (0, 0, 0)
        assert_same_history(pg, standby, threads)


@pytest.mark.parametrize(("mode", "fault"), [("sync", "kill9"), ("async", "freeze")])
async def test_without_standby_the_run_fails_fast_and_resumes_after_the_restart(
    private_postgres: PrivatePostgres, mode: str, fault: str, clock: FakeClock
) -> None:
    """Proves: without a standby an outage mid-run surfaces as SaverUnavailableError
    within a few deadlines (a frozen server does not hang the run), and once the server
    is back the pooled primary resumes the thread from its last checkpoint to the end."""
    pg = private_postgres
    async with postgres_primary(pg, mode) as primary:
        saver = ResilientSaver(primary, policy=POLICY, name="alone", clock=clock)
        graph = build(saver, mode, [lambda: break_server(pg, fault)])
        with thawed_at_exit(pg):
            started = perf_counter()
            with pytest.raises(SaverUnavailableError) as caught:
                await run(graph, mode, {"log": []}, "t")
            elapsed = perf_counter() - started
            assert elapsed < RUN_BOUND, f"the run took {elapsed:.1f} s to fail"
            assert isinstance(caught.value.__cause__, (psycopg.OperationalError, TimeoutError))
            bring_back(pg, fault)

        clock.advance(POLICY.breaker.recovery_timeout)  # let the breaker try the primary again
        started = perf_counter()
        while True:  # the pool reconnects with a backoff after the restart
            try:
                result = await run(graph, mode, None, "t")
                break
            except SaverUnavailableError:
                if perf_counter() - started > BACK_BOUND:
                    raise
                clock.advance(POLICY.breaker.recovery_timeout)
        assert result == DONE
        # Resumed from the checkpoint after a, not restarted. (b may have run once or
        # twice: a write abandoned on the frozen server can land after the thaw.)
        assert [graph.calls[n] for n in ("a", "c", "d")] == [1, 1, 1]
        assert (await get_state(graph, mode, "t")).values == DONE
