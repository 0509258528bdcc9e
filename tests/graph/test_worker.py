"""``RunWorker`` on real graphs: it holds a thread's run lease while it runs it, refuses a
thread another worker holds, resumes the threads of a dead worker from their checkpoints
(only the unfinished nodes run again), and stops at a step boundary when it loses its lease.

Lease time comes from a ``FakeClock``; the heartbeat thread gets an interval far longer
than any test (29 real seconds) unless a test is about the heartbeat.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from langgraph_resilience import (
    FakeClock,
    LeaseHeldError,
    LeaseLostError,
    RunLeases,
    RunWorker,
    SqliteLeaseStore,
)
from tests.graph._helpers import CONTEXT_MODES, MODES, sqlite_saver, thread

T0 = 1_000_000.0
TTL = 30.0
QUIET = 29.0
"""A heartbeat interval (real seconds) no test outlives: the lease is never renewed."""
NODES = ("a", "b", "c", "d")


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


class Died(BaseException):
    """The worker process dies inside a node: nothing after it runs or is saved."""


Hook = Callable[[Runtime[Any]], None]


class Pipeline:
    """START -> a -> b -> c -> d -> END; counts every node start (the side effects) and
    runs a test's hook inside a node. A hook may ``raise Died()`` to kill the run."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.hooks: dict[str, Hook] = {}

    def graph(
        self, checkpointer: BaseCheckpointSaver[Any], mode: str, **compile_options: Any
    ) -> Any:
        builder = StateGraph(State)
        for name in NODES:
            builder.add_node(name, self._node(name, mode))
        builder.add_edge(START, "a")
        for first, then in itertools.pairwise(NODES):
            builder.add_edge(first, then)
        builder.add_edge("d", END)
        return builder.compile(checkpointer=checkpointer, **compile_options)

    def _node(self, name: str, mode: str) -> Callable[..., Any]:
        def body(runtime: Runtime[Any]) -> dict[str, Any]:
            self.counts[name] += 1
            hook = self.hooks.get(name)
            if hook is not None:
                hook(runtime)
            return {"log": [name]}

        if mode == "sync":

            def sync_node(state: State, runtime: Runtime[Any]) -> dict[str, Any]:
                return body(runtime)

            return sync_node

        async def async_node(state: State, runtime: Runtime[Any]) -> dict[str, Any]:
            # a hook that waits does so in a worker thread, so the event loop keeps going
            return await asyncio.to_thread(body, runtime)

        return async_node


@asynccontextmanager
async def checkpointer(kind: str, mode: str, tmp_path: Path) -> AsyncIterator[Any]:
    """An InMemorySaver, or a SQLite saver on a file (sync or async to match ``mode``)."""
    if kind == "memory":
        yield InMemorySaver()
    else:
        async with sqlite_saver(mode, tmp_path / "checkpoints.db") as saver:
            yield saver


async def run(worker: RunWorker, mode: str, thread_id: str, inp: Any, **kwargs: Any) -> Any:
    if mode == "sync":
        return worker.run(thread_id, inp, **kwargs)
    return await worker.arun(thread_id, inp, **kwargs)


async def recover(worker: RunWorker, mode: str) -> dict[str, Any]:
    if mode == "sync":
        return worker.recover()
    return await worker.arecover()


async def die_in_c(graph: Any, pipeline: Pipeline, mode: str, thread_id: str) -> None:
    """A worker runs ``thread_id`` and dies in ``c``: a, b saved, c never finished."""

    def crash(runtime: Runtime[Any]) -> None:
        raise Died

    pipeline.hooks["c"] = crash
    with pytest.raises(Died):
        await invoke(graph, mode, thread_id, {"log": []}, durability="sync")
    del pipeline.hooks["c"]


async def invoke(graph: Any, mode: str, thread_id: str, inp: Any, **kwargs: Any) -> Any:
    """The graph run directly, as a worker without leases would."""
    if mode == "sync":
        return graph.invoke(inp, thread(thread_id), **kwargs)
    return await graph.ainvoke(inp, thread(thread_id), **kwargs)


async def saved_next(graph: Any, mode: str, thread_id: str) -> tuple[str, ...]:
    if mode == "sync":
        return tuple(graph.get_state(thread(thread_id)).next)
    return tuple((await graph.aget_state(thread(thread_id))).next)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` for up to 5 s: the heartbeat thread works in real time."""
    for _ in range(100):
        if condition():
            return
        threading.Event().wait(0.05)  # real time: the heartbeat thread renews every 0.05 s
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def leases(clock: FakeClock) -> RunLeases:
    return RunLeases(ttl=TTL, clock=clock)


# ---- run -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_run_holds_the_lease_while_it_runs_and_releases_it_after(
    mode: str, leases: RunLeases
) -> None:
    pipeline = Pipeline()
    worker = RunWorker(pipeline.graph(InMemorySaver(), mode), leases, heartbeat=QUIET)
    seen = []
    pipeline.hooks["b"] = lambda runtime: seen.append(leases.holder("t1"))

    final = await run(worker, mode, "t1", {"log": []})

    assert final == {"log": list(NODES)}
    [held] = seen
    assert held is not None
    assert held.owner == worker.owner
    assert held.expires_at == T0 + TTL
    assert leases.holder("t1") is None
    assert leases.store.get("t1") is None  # released, not left to expire
    assert pipeline.counts == Counter(NODES)


@pytest.mark.parametrize("mode", MODES)
async def test_a_thread_another_worker_holds_is_refused_and_nothing_runs(
    mode: str, leases: RunLeases
) -> None:
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    theirs = leases.claim("t1", owner="other-worker")
    worker = RunWorker(graph, leases, owner="me", heartbeat=QUIET)

    with pytest.raises(LeaseHeldError) as refused:
        await run(worker, mode, "t1", {"log": []})

    assert refused.value.thread_id == "t1"
    assert refused.value.holder == "other-worker"
    assert refused.value.expires_at == T0 + TTL
    assert pipeline.counts == Counter()
    assert graph.checkpointer.get_tuple(thread("t1")) is None
    assert leases.holder("t1") == theirs  # the holder's lease is untouched


@pytest.mark.parametrize("mode", MODES)
async def test_the_run_config_and_invoke_options_are_passed_on(
    mode: str, leases: RunLeases
) -> None:
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    worker = RunWorker(graph, leases, heartbeat=QUIET)
    config = {"configurable": {"thread_id": "ignored", "user": "u1"}, "tags": ["x"]}

    partial = await run(worker, mode, "t1", {"log": []}, config=config, interrupt_after=["b"])

    assert partial == {"log": ["a", "b"]}  # interrupt_after reached invoke
    assert await saved_next(graph, mode, "t1") == ("c",)  # the thread id is the worker's
    assert graph.checkpointer.get_tuple(thread("ignored")) is None
    assert leases.store.get("t1") is None  # an interrupted run releases its lease too
    assert await run(worker, mode, "t1", None) == {"log": list(NODES)}
    assert pipeline.counts == Counter(NODES)


@pytest.mark.parametrize("mode", MODES)
async def test_a_failing_run_releases_its_lease(mode: str, leases: RunLeases) -> None:
    pipeline = Pipeline()
    worker = RunWorker(pipeline.graph(InMemorySaver(), mode), leases, heartbeat=QUIET)

    def fail(runtime: Runtime[Any]) -> None:
        raise ValueError("bad input")

    pipeline.hooks["b"] = fail
    with pytest.raises(ValueError, match="bad input"):
        await run(worker, mode, "t1", {"log": []})
    assert leases.store.get("t1") is None
    assert pipeline.counts == Counter({"a": 1, "b": 1})


# ---- recover -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("mode", MODES)
async def test_recover_resumes_a_dead_workers_thread_from_its_checkpoint(
    mode: str, kind: str, clock: FakeClock, leases: RunLeases, tmp_path: Path
) -> None:
    pipeline = Pipeline()
    async with checkpointer(kind, mode, tmp_path) as saver:
        graph = pipeline.graph(saver, mode)
        assert leases.claim("t1", owner="dead") is not None
        await die_in_c(graph, pipeline, mode, "t1")
        assert await saved_next(graph, mode, "t1") == ("c",)
        standby = RunWorker(graph, leases, owner="standby", heartbeat=QUIET)

        assert await recover(standby, mode) == {}  # the dead worker's lease is still live
        assert pipeline.counts == Counter({"a": 1, "b": 1, "c": 1})

        clock.advance(TTL)  # the lease lapses: nobody renewed it
        holders = []
        pipeline.hooks["c"] = lambda runtime: holders.append(leases.holder("t1"))
        resumed = await recover(standby, mode)

    assert resumed == {"t1": {"log": list(NODES)}}
    # a and b completed before the crash and did not run again; c started twice
    # (the dead attempt and the resumed one), d once
    assert pipeline.counts == Counter({"a": 1, "b": 1, "c": 2, "d": 1})
    [holder] = holders
    assert holder is not None
    assert holder.owner == "standby"
    assert holder.token == 2  # taken over from the dead worker's lease
    assert leases.store.get("t1") is None


@pytest.mark.parametrize("mode", MODES)
async def test_recover_drops_a_lease_with_nothing_to_resume(
    mode: str, clock: FakeClock, leases: RunLeases, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker that died before its first checkpoint saved nothing: the lease goes, with
    a warning; a thread that had finished (died before releasing) is returned as it is."""
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    assert leases.claim("never-started", owner="dead") is not None
    assert leases.claim("finished", owner="dead") is not None
    await invoke(graph, mode, "finished", {"log": []})
    pipeline.counts.clear()
    clock.advance(TTL + 1)
    standby = RunWorker(graph, leases, owner="standby", heartbeat=QUIET)

    with caplog.at_level(logging.WARNING, logger="langgraph_resilience.worker"):
        resumed = await recover(standby, mode)

    assert resumed == {"finished": {"log": list(NODES)}}
    assert pipeline.counts == Counter()  # nothing ran again
    assert leases.store.get("never-started") is None
    assert leases.store.get("finished") is None
    [record] = caplog.records
    assert "'never-started'" in record.getMessage()
    assert "submit the thread again" in record.getMessage()


@pytest.mark.parametrize("mode", CONTEXT_MODES)  # get_config() in async nodes
async def test_two_standbys_resume_each_thread_exactly_once(
    mode: str, clock: FakeClock, leases: RunLeases
) -> None:
    threads = [f"t{n}" for n in range(6)]
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    for thread_id in threads:
        assert leases.claim(thread_id, owner="dead") is not None
        await die_in_c(graph, pipeline, mode, thread_id)
    clock.advance(TTL + 1)
    resumed_by: list[tuple[str, str]] = []

    def record(runtime: Runtime[Any]) -> None:
        thread_id = get_config()["configurable"]["thread_id"]
        holder = leases.holder(thread_id)
        assert holder is not None
        resumed_by.append((thread_id, holder.owner))
        threading.Event().wait(0.01)  # real time: lets the other standby reach its claims

    pipeline.hooks["c"] = record
    one = RunWorker(graph, leases, owner="standby-1", heartbeat=QUIET)
    two = RunWorker(graph, leases, owner="standby-2", heartbeat=QUIET)
    if mode == "sync":
        results: list[dict[str, Any]] = [{}, {}]

        def go(n: int, worker: RunWorker) -> None:
            results[n] = worker.recover()

        runners = [threading.Thread(target=go, args=pair) for pair in enumerate((one, two))]
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
    else:
        results = list(await asyncio.gather(one.arecover(), two.arecover()))

    assert sorted(resumed_by) == sorted(set(resumed_by))  # no thread resumed twice
    assert sorted(thread_id for thread_id, _ in resumed_by) == threads
    assert {owner for _, owner in resumed_by} == {"standby-1", "standby-2"}  # both took part
    for n, owner in enumerate(("standby-1", "standby-2")):
        mine = {thread_id for thread_id, holder in resumed_by if holder == owner}
        # each reports exactly the threads it resumed: a thread the other took over after
        # the orphans were listed is skipped (take_over names the listed lease)
        assert set(results[n]) == mine
    assert all(state == {"log": list(NODES)} for r in results for state in r.values())
    # after the crash, c and d ran once per thread, whichever standby resumed it
    assert pipeline.counts == Counter(
        {"a": len(threads), "b": len(threads), "c": 2 * len(threads), "d": len(threads)}
    )
    assert leases.expired() == []
    assert all(leases.store.get(thread_id) is None for thread_id in threads)


def test_a_stale_orphan_list_never_resumes_a_thread_again(
    clock: FakeClock, leases: RunLeases
) -> None:
    """Standby one lists the orphans t1, t2 and resumes t1. Meanwhile (from inside t1's
    run, to make the interleaving certain) standby two resumes t2, which stops at the
    breakpoint before d (a human approves d) and releases its lease."""
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), "sync", interrupt_before=["d"])
    for thread_id in ("t1", "t2"):
        assert leases.claim(thread_id, owner="dead") is not None
        asyncio.run(die_in_c(graph, pipeline, "sync", thread_id))
    clock.advance(TTL + 1)
    one = RunWorker(graph, leases, owner="standby-1", heartbeat=QUIET)
    two = RunWorker(graph, leases, owner="standby-2", heartbeat=QUIET)
    second: dict[str, Any] = {}

    def meanwhile(runtime: Runtime[Any]) -> None:
        if not second:
            second.update(two.recover())

    pipeline.hooks["c"] = meanwhile
    first = one.recover()

    assert second == {"t2": {"log": ["a", "b", "c"]}}  # waiting for the approval of d
    assert pipeline.counts["d"] == 0  # standby one must not run d on t2 unapproved
    assert first == {"t1": {"log": ["a", "b", "c"]}}


# ---- losing the lease --------------------------------------------------------------------


def steal(clock: FakeClock, leases: RunLeases, thread_id: str) -> None:
    """Another worker takes the lease: the clock passes the ttl and it claims the thread.
    The loser's heartbeat may renew in between (it runs in real time): then go again."""
    for _ in range(100):
        clock.advance(TTL + 1)
        if leases.claim(thread_id, owner="thief") is not None:
            return
    raise AssertionError("the lease could not be taken over")


@pytest.mark.parametrize("mode", CONTEXT_MODES)
async def test_a_worker_that_loses_its_lease_stops_at_the_next_step_boundary(
    mode: str, clock: FakeClock, leases: RunLeases
) -> None:
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    # a short real heartbeat: the renewals that find the lease taken run in real time
    # (this is the lease's heartbeat, not breaker timing)
    worker = RunWorker(graph, leases, owner="loser", heartbeat=0.05)

    def taken_over(runtime: Runtime[Any]) -> None:
        steal(clock, leases, "t1")
        assert runtime.control is not None
        wait_for(lambda: runtime.control.drain_requested, "the heartbeat to notice")  # type: ignore[union-attr]

    pipeline.hooks["b"] = taken_over
    with pytest.raises(LeaseLostError) as lost:
        await run(worker, mode, "t1", {"log": []})

    assert (lost.value.thread_id, lost.value.owner) == ("t1", "loser")
    assert pipeline.counts == Counter({"a": 1, "b": 1})  # b finished; c and d never started
    assert await saved_next(graph, mode, "t1") == ("c",)  # stopped at the step boundary
    holder = leases.holder("t1")
    assert holder is not None
    assert holder.owner == "thief"  # the loser did not release the thief's lease

    thief = RunWorker(graph, leases, owner="thief", heartbeat=QUIET)
    assert await run(thief, mode, "t1", None) == {"log": list(NODES)}
    assert pipeline.counts == Counter(NODES)  # each node ran once in all
    assert leases.store.get("t1") is None


def test_a_lease_store_gone_past_the_expiry_stops_the_run(clock: FakeClock, tmp_path: Path) -> None:
    """Renewals fail (the store is closed); once the lease has lapsed the worker must assume
    another took the thread, and stops."""
    path = tmp_path / "leases.db"
    leases = RunLeases(SqliteLeaseStore(path), ttl=TTL, clock=clock)
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), "sync")
    worker = RunWorker(graph, leases, owner="cut-off", heartbeat=0.05)  # real: see above

    def store_gone(runtime: Runtime[Any]) -> None:
        leases.store.close()
        threading.Event().wait(0.2)  # real: a few renewals fail while the lease still lives
        assert runtime.control is not None
        assert not runtime.control.drain_requested
        clock.advance(TTL)
        wait_for(lambda: runtime.control.drain_requested, "the heartbeat to give up")  # type: ignore[union-attr]

    pipeline.hooks["b"] = store_gone
    with pytest.raises(LeaseLostError):
        worker.run("t1", {"log": []})
    assert pipeline.counts == Counter({"a": 1, "b": 1})

    with SqliteLeaseStore(path) as reopened:
        standby = RunWorker(
            graph, RunLeases(reopened, ttl=TTL, clock=clock), owner="standby", heartbeat=QUIET
        )
        assert standby.recover() == {"t1": {"log": list(NODES)}}
    assert pipeline.counts == Counter(NODES)


# ---- construction ------------------------------------------------------------------------


def test_a_graph_without_a_checkpointer_is_refused(leases: RunLeases) -> None:
    graph = Pipeline().graph(InMemorySaver(), "sync")
    builder = graph.builder
    with pytest.raises(ValueError, match="checkpointer"):
        RunWorker(builder.compile(), leases)


@pytest.mark.parametrize("heartbeat", [TTL, TTL + 1])
def test_the_heartbeat_must_be_shorter_than_the_ttl(leases: RunLeases, heartbeat: float) -> None:
    graph = Pipeline().graph(InMemorySaver(), "sync")
    with pytest.raises(ValueError, match="heartbeat must be shorter than the lease ttl"):
        RunWorker(graph, leases, heartbeat=heartbeat)
    with pytest.raises(ValueError, match="heartbeat"):
        RunWorker(graph, leases, heartbeat=0)


def test_defaults_and_checks(leases: RunLeases) -> None:
    graph = Pipeline().graph(InMemorySaver(), "sync")
    worker = RunWorker(graph, leases)
    assert worker.heartbeat == TTL / 3
    assert f":{os.getpid()}:" in worker.owner
    assert worker.owner != RunWorker(graph, leases).owner  # two workers, two names
    assert repr(worker).startswith(f"<RunWorker {worker.owner!r} <RunLeases ttl=30s")
    with pytest.raises(TypeError, match="RunLeases"):
        RunWorker(graph, leases.store)  # type: ignore[arg-type]


# ---- one worker, one run per thread; one failure does not stop a recovery pass -----------


@pytest.mark.parametrize("mode", MODES)
async def test_a_worker_refuses_a_thread_it_is_already_running(
    mode: str, leases: RunLeases
) -> None:
    """The same owner may re-claim its own lease, so the worker itself must refuse to
    start a thread twice at once: the inner attempt raises and the node ran once."""
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), "sync")
    worker = RunWorker(graph, leases, owner="w", heartbeat=QUIET)
    refused: list[LeaseHeldError] = []

    def again(runtime: Runtime[Any]) -> None:
        try:
            worker.run("t1", {"log": []})
        except LeaseHeldError as exc:
            refused.append(exc)

    pipeline.hooks["b"] = again
    assert (await run(worker, mode, "t1", {"log": []}))["log"] == list(NODES)
    assert [exc.holder for exc in refused] == ["w"]
    assert pipeline.counts == Counter(dict.fromkeys(NODES, 1))
    assert leases.holder("t1") is None  # released once, at the end of the outer run


@pytest.mark.parametrize("mode", MODES)
async def test_one_failed_resume_does_not_stop_the_recovery_of_the_others(
    mode: str, clock: FakeClock, leases: RunLeases, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = Pipeline()
    graph = pipeline.graph(InMemorySaver(), mode)
    for thread_id in ("t1", "t2", "t3"):
        assert leases.claim(thread_id, owner="dead") is not None
        await die_in_c(graph, pipeline, mode, thread_id)
    clock.advance(TTL + 1)
    resumed: list[str] = []

    def c_fails_for_t1_and_t2(runtime: Runtime[Any]) -> None:
        thread_id = get_config()["configurable"]["thread_id"]
        resumed.append(thread_id)
        if thread_id != "t3":
            raise RuntimeError(f"c failed again on {thread_id}")

    pipeline.hooks["c"] = c_fails_for_t1_and_t2
    worker = RunWorker(graph, leases, owner="standby", heartbeat=QUIET)
    with (
        caplog.at_level(logging.ERROR, "langgraph_resilience.worker"),
        pytest.raises(RuntimeError, match="c failed again on t1"),
    ):
        await recover(worker, mode)

    assert sorted(resumed) == ["t1", "t2", "t3"]  # t3 was resumed after t1 and t2 failed
    assert "c failed again on t2" in caplog.text  # the second error is logged, not lost
    assert (await saved_next(graph, mode, "t3")) == ()  # t3 completed
    assert (await saved_next(graph, mode, "t1")) == ("c",)  # t1 failed: resumable later
    assert leases.expired() == []  # every lease taken over was given back
