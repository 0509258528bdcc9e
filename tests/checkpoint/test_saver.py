"""``ResilientSaver``'s decisions, with real savers and controlled faults.

The primary is a ``FaultySaver`` (an ``InMemorySaver`` that raises or blocks on demand,
see ``_faults.py``), the standby a ``SqliteSaver``; graphs are real ``StateGraph``s run
with ``invoke`` and ``ainvoke``. The breaker's recovery is driven by a ``FakeClock``;
the only real waits are the per-call deadline tests (a fraction of a second each).
"""

from __future__ import annotations

import inspect
import operator
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import psycopg
import pytest
import tenacity
from langchain_core.runnables import ConfigurableFieldSpec, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitOpenError,
    FakeClock,
    MirrorFailed,
    MonotonicClock,
    ReconcileReport,
    ResilientSaver,
    SaverEvent,
    SaverFailedBack,
    SaverFailedOver,
    SaverPolicy,
    SaverUnavailableError,
    StoreTimeoutError,
)
from tests.checkpoint._faults import (
    CopyingSaver,
    FaultyCopyingSaver,
    FaultyPruningSaver,
    FaultySaver,
    PruningSaver,
)
from tests.graph._helpers import MODES, node_pair, thread

try:
    from langgraph.pregel._checkpoint import put_writes_accepts_task_path
except ImportError:  # older LangGraph: the same check, by hand

    def put_writes_accepts_task_path(put_writes: Any) -> bool:
        return inspect.signature(put_writes).parameters.get("task_path") is not None


DURABILITIES = ["sync", None]  # None: LangGraph's default, "async"
DOWN = "ConnectionError: primary down"
RECOVERY = 30.0  # SaverPolicy's default breaker: 3 failures, 30 s, 1 success


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


# ---- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def primary() -> Iterator[FaultySaver]:
    saver = FaultySaver()
    yield saver
    saver.release()  # a safety net: tests release blocked calls themselves (`blocking`),
    # since an async test's event loop closes, waiting for its threads, before this runs


@pytest.fixture
def standby() -> Iterator[SqliteSaver]:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    saver = SqliteSaver(conn)
    yield saver
    with saver.lock:  # a mirror write may still be running: closing under it can segfault
        conn.close()


@pytest.fixture
def events() -> list[SaverEvent]:
    return []


def resilient(
    primary: BaseCheckpointSaver[Any],
    standby: BaseCheckpointSaver[Any] | None,
    clock: FakeClock,
    events: list[SaverEvent],
    **policy: Any,
) -> ResilientSaver:
    policy.setdefault("wait", tenacity.wait_none())
    return ResilientSaver(
        primary,
        standby=standby,
        policy=SaverPolicy(**policy),
        clock=clock,
        listeners=[events.append],
    )


def chain(saver: BaseCheckpointSaver[Any], mode: str, on_b: Any = None) -> Any:
    """a -> b -> c; ``on_b()`` runs inside b (to take the primary down mid-run)."""

    def b(state: State) -> dict[str, Any]:
        if on_b is not None:
            on_b()
        return {"log": ["b"]}

    builder = StateGraph(State)
    builder.add_node("a", node_pair(lambda s: {"log": ["a"]}, mode))
    builder.add_node("b", node_pair(b, mode))
    builder.add_node("c", node_pair(lambda s: {"log": ["c"]}, mode))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


async def run(graph: Any, mode: str, thread_id: str, durability: str | None = None) -> Any:
    kwargs = {} if durability is None else {"durability": durability}
    if mode == "sync":
        return graph.invoke({"log": []}, thread(thread_id), **kwargs)
    return await graph.ainvoke({"log": []}, thread(thread_id), **kwargs)


def go_down(primary: FaultySaver) -> Any:
    """A node hook that takes the primary down (every method, until ``heal()``)."""
    return lambda: primary.fail(ConnectionError("primary down"))


def ids(store: BaseCheckpointSaver[Any], thread_id: str) -> set[str]:
    """The checkpoint ids ``store`` holds for ``thread_id`` (past any fault)."""
    items = (
        store.peek(thread_id) if isinstance(store, FaultySaver) else store.list(thread(thread_id))
    )
    return {t.config["configurable"]["checkpoint_id"] for t in items}


def chain_length(store: BaseCheckpointSaver[Any], thread_id: str) -> int:
    """Walk ``parent_config`` from the latest checkpoint to the root; every parent exists."""
    get = store.peek_tuple if isinstance(store, FaultySaver) else store.get_tuple
    item = get(thread(thread_id))
    assert item is not None
    length = 1
    while item.parent_config is not None:
        parent = get(item.parent_config)
        assert parent is not None, f"dangling parent {item.parent_config} on {store!r}"
        item, length = parent, length + 1
    assert item.metadata["source"] == "input"  # the root is the run's input checkpoint
    return length


@contextmanager
def blocking(primary: FaultySaver, *methods: str) -> Iterator[None]:
    """Block ``methods`` of ``primary``; always release whatever is blocked on exit."""
    primary.block(*methods)
    try:
        yield
    finally:
        primary.release()


def of_type(events: list[SaverEvent], cls: type[SaverEvent]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def new_config(thread_id: str = "t") -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def put(saver: ResilientSaver, mode: str, thread_id: str = "t") -> RunnableConfig:
    """One direct ``put``/``aput`` of a fresh checkpoint."""
    args = (new_config(thread_id), empty_checkpoint(), {"source": "input", "step": -1}, {})
    if mode == "sync":
        return saver.put(*args)
    return await saver.aput(*args)


async def reconcile(saver: ResilientSaver, mode: str) -> ReconcileReport:
    return saver.reconcile() if mode == "sync" else await saver.areconcile()


# ---- pass-through -----------------------------------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("mode", MODES)
async def test_healthy_primary_gives_the_raw_savers_results(
    mode: str, durability: str | None, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: with a healthy primary the adapter changes nothing a graph can see, and
    the standby mirrors every checkpoint."""
    raw = chain(InMemorySaver(), mode)
    primary = InMemorySaver()
    saver = resilient(primary, standby, clock, events)
    wrapped = chain(saver, mode)

    assert await run(wrapped, mode, "t", durability) == await run(raw, mode, "t", durability)
    ours = list(wrapped.get_state_history(thread("t")))
    theirs = list(raw.get_state_history(thread("t")))
    assert [s.values for s in ours] == [s.values for s in theirs]
    assert [s.next for s in ours] == [s.next for s in theirs]
    assert [s.metadata["step"] for s in ours] == [s.metadata["step"] for s in theirs]

    saver.flush()
    assert ids(standby, "t") == ids(primary, "t")
    assert len(ids(primary, "t")) == 5
    assert saver.status().active == "primary"
    assert events == []


def test_versions_come_from_the_primary() -> None:
    """Proves: get_next_version is forwarded (the base class raises for string versions)."""
    saver = ResilientSaver(InMemorySaver(), standby=InMemorySaver())
    first = saver.get_next_version(None, None)
    assert isinstance(first, str)
    assert first.startswith("0" * 31 + "1.")
    assert saver.get_next_version(first, None).startswith("0" * 31 + "2.")


async def test_put_writes_declares_task_path_and_forwards_it(clock: FakeClock) -> None:
    """Proves: LangGraph sees task_path on both fronts, and it reaches the primary."""
    primary = InMemorySaver()
    saver = ResilientSaver(primary, clock=clock)
    assert put_writes_accepts_task_path(saver.put_writes)
    assert put_writes_accepts_task_path(saver.aput_writes)
    chain(saver, "sync").invoke({"log": []}, thread("t"))
    await chain(saver, "async").ainvoke({"log": []}, thread("u"))
    paths = {w[3] for writes in primary.writes.values() for w in writes.values()}
    assert any(path for path in paths), paths  # non-empty task paths were stored


def test_config_specs_are_the_primarys() -> None:
    """Proves: config_specs are forwarded from the primary."""
    spec = ConfigurableFieldSpec(id="tenant", annotation=str)

    class TenantSaver(InMemorySaver):
        @property
        def config_specs(self) -> list[Any]:
            return [spec]

    assert ResilientSaver(TenantSaver(), standby=InMemorySaver()).config_specs == [spec]


def test_with_allowlist_reaches_both_savers_and_shares_failover_state(
    clock: FakeClock, events: list
) -> None:
    """Proves: the clone's primary and standby got the allowlist, and a failover seen by
    the clone is seen by the original."""
    primary = FaultySaver(InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=None)))
    standby = InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=None))
    saver = resilient(primary, standby, clock, events)

    clone = saver.with_allowlist([("tests", "checkpoint", "State")])
    assert clone is not saver
    assert isinstance(clone, ResilientSaver)
    assert clone.primary.serde is not primary.serde
    assert clone.standby is not None
    assert clone.standby.serde is not standby.serde
    assert clone.serde is clone.primary.serde

    assert isinstance(clone.primary, FaultySaver)
    clone.primary.fail(ConnectionError("primary down"))
    config = clone.put(new_config(), empty_checkpoint(), {}, {})
    status = saver.status()
    assert status.active == "standby"
    assert status.failovers == 1
    assert status.pending_threads == ("t",)
    calls = sum(primary.calls.values())
    assert saver.get_tuple(config) is not None  # read from the standby
    assert sum(primary.calls.values()) == calls


def test_with_allowlist_is_a_no_op_in_permissive_mode() -> None:
    """Proves: savers whose serde needs no allowlist give back the same saver."""
    saver = ResilientSaver(InMemorySaver(), standby=InMemorySaver())
    assert saver.with_allowlist([("tests", "checkpoint", "State")]) is saver


# ---- failover mid-run -------------------------------------------------------------------


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("mode", MODES)
async def test_primary_down_mid_run_fails_over_with_whole_chains(
    mode: str,
    durability: str | None,
    primary: FaultySaver,
    standby: SqliteSaver,
    clock: FakeClock,
    events: list,
) -> None:
    """Proves: the run completes when the primary dies during node b, reads go to the
    standby, one SaverFailedOver is emitted, and the standby's chain has no gaps."""
    saver = resilient(primary, standby, clock, events)
    graph = chain(saver, mode, on_b=go_down(primary))

    assert await run(graph, mode, "t", durability) == {"log": ["a", "b", "c"]}

    status = saver.status()
    assert status.active == "standby"
    assert status.failovers == 1
    assert status.breaker is BreakerState.OPEN
    assert status.pending_threads == ("t",)
    [failover] = of_type(events, SaverFailedOver)
    assert failover.operation in {"put", "put_writes"}
    assert failover.error == DOWN  # not the CircuitOpenError a concurrent write met

    assert graph.get_state(thread("t")).values == {"log": ["a", "b", "c"]}
    assert chain_length(standby, "t") == len(ids(standby, "t")) == 5
    assert ids(primary, "t") < ids(standby, "t")  # the primary missed the end of the run


async def test_failover_event_names_the_primarys_error(
    primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: the event and status carry the operation and the primary's own error."""
    saver = resilient(primary, standby, clock, events)
    primary.fail(ConnectionError("primary down"))
    config = await put(saver, "async")

    [failover] = events
    assert isinstance(failover, SaverFailedOver)
    assert (failover.operation, failover.error, failover.at) == ("put", DOWN, 0.0)
    assert saver.status().last_error == DOWN
    assert standby.get_tuple(config) is not None


def test_failover_names_the_cause_when_the_breaker_opens_mid_retries(
    primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves: when the breaker opens before the retries run out, last_error and the
    event name the primary's error, not the CircuitOpenError of the last try."""
    saver = resilient(
        primary,
        InMemorySaver(),
        clock,
        events,
        breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=RECOVERY),
    )
    primary.fail(ConnectionError("primary down"))
    saver.put(new_config(), empty_checkpoint(), {}, {})
    assert saver.status().last_error == DOWN
    assert events[0].error == DOWN


@pytest.mark.parametrize("mode", MODES)
async def test_failover_first_drains_the_mirror(
    mode: str, primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves: a read that fails over sees every write the primary acknowledged, even
    when the standby was lagging (queued mirror writes are flushed before the switch)."""
    standby = FaultySaver()
    saver = resilient(primary, standby, clock, events)
    with blocking(standby, "put"):  # the mirror falls behind
        config = await put(saver, mode)
        saver.add_listener(lambda event: standby.release())  # it catches up at the failover
        primary.fail(ConnectionError("primary down"))
        found = saver.get_tuple(config) if mode == "sync" else await saver.aget_tuple(config)

    assert found is not None
    assert found.config["configurable"]["checkpoint_id"] == config["configurable"]["checkpoint_id"]
    assert saver.status().active == "standby"


# ---- the breaker and fail-back ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_open_breaker_keeps_off_the_primary_then_fails_back(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: after a failover the primary is not called until recovery_timeout; then
    the next call reconciles and fails back, and the primary has everything."""
    saver = resilient(primary, standby, clock, events)
    await run(chain(saver, mode, on_b=go_down(primary)), mode, "t1")
    calls = sum(primary.calls.values())

    assert await run(chain(saver, mode), mode, "t2") == {"log": ["a", "b", "c"]}
    assert sum(primary.calls.values()) == calls  # the open breaker kept every call off it
    assert set(saver.status().pending_threads) == {"t1", "t2"}
    missing = len(ids(standby, "t1") - ids(primary, "t1")) + len(ids(standby, "t2"))

    primary.heal()
    clock.advance(RECOVERY)
    assert await run(chain(saver, mode), mode, "t3") == {"log": ["a", "b", "c"]}

    status = saver.status()
    assert status.active == "primary"
    assert status.breaker is BreakerState.CLOSED
    assert status.pending_threads == ()
    assert status.pending_operations == 0
    [back] = of_type(events, SaverFailedBack)
    assert (back.threads, back.checkpoints) == (2, missing)
    saver.flush()
    for thread_id in ("t1", "t2", "t3"):
        assert ids(standby, thread_id) == ids(primary, thread_id)
        assert chain_length(primary, thread_id) == 5


@pytest.mark.parametrize("mode", MODES)
async def test_primary_still_down_at_recovery_stays_on_standby(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a failed trial after recovery_timeout costs one call, reopens the breaker,
    keeps the journal, and the run still completes on the standby."""
    saver = resilient(primary, standby, clock, events)
    await run(chain(saver, mode, on_b=go_down(primary)), mode, "t1")
    calls = sum(primary.calls.values())

    clock.advance(RECOVERY)
    assert await run(chain(saver, mode), mode, "t2") == {"log": ["a", "b", "c"]}

    assert sum(primary.calls.values()) == calls + 1  # one trial, then the breaker reopened
    status = saver.status()
    assert status.active == "standby"
    assert status.breaker is BreakerState.OPEN
    assert set(status.pending_threads) == {"t1", "t2"}
    assert of_type(events, SaverFailedBack) == []
    assert chain_length(standby, "t2") == 5


@pytest.mark.parametrize("mode", MODES)
async def test_failback_false_waits_for_reconcile(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: with failback=False the saver stays on the standby past recovery_timeout
    without touching the primary, and reconcile() fails back."""
    saver = resilient(primary, standby, clock, events, failback=False)
    await run(chain(saver, mode, on_b=go_down(primary)), mode, "t1")
    primary.heal()
    clock.advance(RECOVERY)
    calls = sum(primary.calls.values())
    missing = len(ids(standby, "t1") - ids(primary, "t1"))

    await run(chain(saver, mode), mode, "t2")
    assert saver.status().active == "standby"
    assert sum(primary.calls.values()) == calls

    report = await reconcile(saver, mode)
    assert report.failed_back
    assert report.threads == 2
    assert report.checkpoints == missing + 5
    assert report.operations == 0
    assert saver.status().active == "primary"
    assert [type(e) for e in events] == [SaverFailedOver, SaverFailedBack]
    for thread_id in ("t1", "t2"):
        assert ids(standby, thread_id) == ids(primary, thread_id)


# ---- reconcile --------------------------------------------------------------------------


def test_reconcile_is_idempotent(
    primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a second reconcile of the same thread copies nothing."""
    saver = resilient(primary, standby, clock, events, failback=False)
    chain(saver, "sync", on_b=go_down(primary)).invoke({"log": []}, thread("t"))
    primary.heal()

    first = saver.reconcile()
    assert first.failed_back
    assert first.threads == 1
    assert first.checkpoints > 0
    again = saver.reconcile(thread_ids=["t"])
    assert (again.threads, again.checkpoints, again.writes, again.operations) == (1, 0, 0, 0)
    assert saver.reconcile().threads == 0  # nothing journaled any more
    assert ids(primary, "t") == ids(standby, "t")


def test_reconcile_copies_writes_the_primary_lacks(
    primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: task writes made on the standby for a checkpoint the primary already has
    are copied, without copying the checkpoint again."""
    saver = resilient(primary, standby, clock, events, failback=False)
    chain(saver, "sync").invoke({"log": []}, thread("t"))
    latest = saver.get_tuple(thread("t"))
    assert latest is not None
    saver.flush()

    primary.fail(ConnectionError("primary down"))
    saver.put_writes(latest.config, [("log", ["late"])], "task-late")
    assert saver.status().active == "standby"
    primary.heal()

    report = saver.reconcile()
    assert (report.threads, report.checkpoints, report.writes) == (1, 0, 1)
    copied = primary.peek_tuple(latest.config)
    assert copied is not None
    assert ("task-late", "log", ["late"]) in (copied.pending_writes or [])


@pytest.mark.parametrize("mode", MODES)
async def test_reconcile_replays_deletes_made_during_the_outage(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a delete_thread served by the standby is made on the primary at reconcile."""
    saver = resilient(primary, standby, clock, events, failback=False)
    graph = chain(saver, mode)
    await run(graph, mode, "t")
    saver.flush()

    primary.fail(ConnectionError("primary down"))
    if mode == "sync":
        saver.delete_thread("t")
    else:
        await saver.adelete_thread("t")
    assert ids(standby, "t") == set()
    assert len(ids(primary, "t")) == 5
    assert saver.status().pending_operations == 1
    primary.heal()

    report = await reconcile(saver, mode)
    assert report.operations == 1
    assert report.checkpoints == 0
    assert ids(primary, "t") == set()
    assert graph.get_state(thread("t")).values == {}


def test_reconcile_named_threads_after_a_restart(
    primary: FaultySaver, clock: FakeClock, events: list, tmp_path: Path
) -> None:
    """Proves: reconcile(thread_ids=...) copies threads the journal does not know (the
    standby file outlived the process that wrote it)."""
    path = tmp_path / "standby.sqlite"
    with closing(sqlite3.connect(path, check_same_thread=False)) as conn:
        chain(SqliteSaver(conn), "sync").invoke({"log": []}, thread("orphan"))

    with closing(sqlite3.connect(path, check_same_thread=False)) as conn:
        standby = SqliteSaver(conn)
        saver = resilient(primary, standby, clock, events)
        assert saver.reconcile().threads == 0  # a fresh journal knows nothing
        report = saver.reconcile(thread_ids=["orphan"])
        assert (report.threads, report.checkpoints) == (1, 5)
        assert ids(primary, "orphan") == ids(standby, "orphan")
        assert chain_length(primary, "orphan") == 5
        assert chain(saver, "sync").get_state(thread("orphan")).values == {"log": ["a", "b", "c"]}


@pytest.mark.parametrize("mode", MODES)
async def test_reconcile_while_the_primary_is_down_keeps_the_journal(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: reconcile raises SaverUnavailableError and nothing is forgotten."""
    saver = resilient(primary, standby, clock, events)
    await run(chain(saver, mode, on_b=go_down(primary)), mode, "t")
    before = saver.status()

    with pytest.raises(SaverUnavailableError, match="primary down"):
        await reconcile(saver, mode)

    after = saver.status()
    assert after.active == "standby"
    assert after.pending_threads == before.pending_threads == ("t",)
    assert after.pending_operations == before.pending_operations


async def test_reconcile_rejects_a_single_string(standby: SqliteSaver) -> None:
    """Proves: reconcile("abc") is a TypeError, not a reconcile of threads a, b and c."""
    saver = ResilientSaver(InMemorySaver(), standby=standby)
    with pytest.raises(TypeError, match="not one string"):
        saver.reconcile("abc")
    with pytest.raises(TypeError, match="not one string"):
        await saver.areconcile("abc")


# ---- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [ConnectionError("blip"), psycopg.OperationalError("server closed the connection")]
)
@pytest.mark.parametrize("mode", MODES)
async def test_one_transient_failure_is_retried_without_failover(
    mode: str,
    error: Exception,
    primary: FaultySaver,
    standby: SqliteSaver,
    clock: FakeClock,
    events: list,
) -> None:
    """Proves: a transient error that clears is retried on the primary; no failover."""
    saver = resilient(primary, standby, clock, events)
    primary.fail(error, times=1)
    config = await put(saver, mode)

    assert primary.calls["put"] == 2
    assert primary.peek_tuple(config) is not None
    status = saver.status()
    assert (status.active, status.failovers, status.breaker) == ("primary", 0, BreakerState.CLOSED)
    assert status.last_error is None  # last_error names a failover's cause; there was none
    assert events == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_non_transient_error_reaches_the_caller_unchanged(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a ValueError is not retried, not failed over, and is the same object."""
    saver = resilient(primary, standby, clock, events)
    error = ValueError("cannot serialise that")
    primary.fail(error)

    with pytest.raises(ValueError) as info:
        await put(saver, mode)

    assert info.value is error
    assert primary.calls["put"] == 1
    status = saver.status()
    assert (status.active, status.failovers, status.breaker) == ("primary", 0, BreakerState.CLOSED)
    saver.flush()
    assert ids(standby, "t") == set()
    assert events == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_store_timeout_is_not_retried(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: StoreTimeoutError fails over at once (the deadline was already spent)."""
    saver = resilient(primary, standby, clock, events)
    primary.fail(StoreTimeoutError("primary", "put", 1.0))
    config = await put(saver, mode)

    assert primary.calls["put"] == 1
    assert saver.status().active == "standby"
    assert standby.get_tuple(config) is not None


# ---- deadlines --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_a_blocked_primary_fails_over_at_the_deadline(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a put that never returns is abandoned at SaverPolicy.timeout (not
    retried) and the checkpoint lands on the standby."""
    saver = resilient(primary, standby, clock, events, timeout=0.2)
    wall = MonotonicClock()
    with blocking(primary, "put"):
        started = wall.now()
        config = await put(saver, mode)
        elapsed = wall.now() - started
        assert primary.blocked.is_set()

    assert 0.2 <= elapsed < 1.5
    assert primary.calls["put"] <= 1  # the sync path counts it; the async one is cut earlier
    [failover] = events
    assert failover.operation == "put"
    assert failover.error.startswith("StoreTimeoutError")
    assert standby.get_tuple(config) is not None


@pytest.mark.parametrize("mode", MODES)
async def test_a_graph_finishes_when_the_primary_freezes(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: a run whose primary freezes mid-run completes on the standby, no hang."""
    saver = resilient(primary, standby, clock, events, timeout=0.1)
    wall = MonotonicClock()
    with blocking(primary):
        started = wall.now()
        graph = chain(saver, mode, on_b=lambda: primary.block("put"))
        result = await run(graph, mode, "t", "sync")
        elapsed = wall.now() - started

    assert result == {"log": ["a", "b", "c"]}
    assert elapsed < 3.0  # a few deadlines at most, not a hang
    assert saver.status().active == "standby"
    assert chain_length(standby, "t") == 5


def test_after_a_timed_out_failover_the_next_call_skips_the_primary(
    primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves (once fixed): an outage costs one deadline, not failure_threshold of them."""
    saver = resilient(primary, InMemorySaver(), clock, events, timeout=0.1)
    with blocking(primary, "put", "list", "get_tuple"):
        config = saver.put(new_config(), empty_checkpoint(), {}, {})
        calls = sum(primary.calls.values())
        saver.get_tuple(config)
    assert sum(primary.calls.values()) == calls


# ---- without a standby ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_without_standby_a_transient_failure_is_unavailable(
    mode: str, primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves: retries run out -> SaverUnavailableError chaining the cause; then the open
    breaker fails fast without calling the primary."""
    saver = resilient(primary, None, clock, events)
    error = ConnectionError("primary down")
    primary.fail(error)

    with pytest.raises(SaverUnavailableError, match="primary down") as info:
        await put(saver, mode)
    assert info.value.__cause__ is error
    assert primary.calls["put"] == 3
    assert saver.status().breaker is BreakerState.OPEN

    with pytest.raises(SaverUnavailableError) as info:
        await put(saver, mode)
    assert isinstance(info.value.__cause__, CircuitOpenError)
    assert primary.calls["put"] == 3
    status = saver.status()
    assert (status.active, status.failovers) == ("primary", 0)
    assert events == []


# ---- the standby failing ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_both_stores_down_names_both(mode: str, clock: FakeClock, events: list) -> None:
    """Proves: when the standby fails too, the error names both causes."""
    primary, standby = FaultySaver(), FaultySaver()
    saver = resilient(primary, standby, clock, events)
    primary.fail(ConnectionError("primary down"))
    standby.fail(ConnectionError("standby down"))

    with pytest.raises(SaverUnavailableError, match="primary down") as info:
        await put(saver, mode)
    assert "standby down" in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert saver.status().pending_threads == ()  # nothing was written anywhere


@pytest.mark.parametrize("mode", MODES)
async def test_a_standby_refusing_writes_is_reported_and_the_run_goes_on(
    mode: str, primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves: mirror failures become MirrorFailed events and status().mirror_failures,
    and the run completes on the primary."""
    standby = FaultySaver()
    standby.fail(ValueError("read-only standby"), methods={"put", "put_writes"})
    saver = resilient(primary, standby, clock, events)

    assert await run(chain(saver, mode), mode, "t") == {"log": ["a", "b", "c"]}
    saver.flush()

    status = saver.status()
    assert (status.active, status.failovers) == ("primary", 0)
    refused = standby.calls["put"] + standby.calls["put_writes"]
    assert status.mirror_failures == refused == len(events) > 0
    assert all(isinstance(e, MirrorFailed) for e in events)
    assert {e.operation for e in events} == {"put", "put_writes"}
    assert {(e.thread_id, e.error) for e in events} == {("t", "ValueError: read-only standby")}
    assert len(ids(primary, "t")) == 5
    assert ids(standby, "t") == set()


# ---- optional methods -------------------------------------------------------------------

OPTIONAL = ("delete_for_runs", "copy_thread", "prune")


def overridden(saver: ResilientSaver, name: str) -> bool:
    return getattr(type(saver), name) is not getattr(BaseCheckpointSaver, name)


def test_builtin_savers_get_no_optional_methods() -> None:
    """Proves: wrapping savers without delete_for_runs/copy_thread/prune offers none."""
    for saver in (
        ResilientSaver(InMemorySaver()),
        ResilientSaver(InMemorySaver(), standby=InMemorySaver()),
    ):
        assert isinstance(saver, ResilientSaver)
        for name in OPTIONAL:
            assert not overridden(saver, name)
            assert not overridden(saver, "a" + name)


@pytest.mark.parametrize(
    ("primary_cls", "standby_cls"), [(CopyingSaver, InMemorySaver), (InMemorySaver, CopyingSaver)]
)
def test_an_optional_method_needs_every_saver(primary_cls: type, standby_cls: type) -> None:
    """Proves: copy_thread is not offered when only one of the two savers has it."""
    saver = ResilientSaver(primary_cls(), standby=standby_cls())
    assert not overridden(saver, "copy_thread")
    assert not overridden(saver, "acopy_thread")


@pytest.mark.parametrize("mode", MODES)
async def test_copy_thread_is_offered_and_mirrored(
    mode: str, clock: FakeClock, events: list
) -> None:
    """Proves: with both savers supporting copy_thread, the adapter offers it (and only
    it) and the copy reaches the primary and the standby."""
    primary, standby = CopyingSaver(), CopyingSaver()
    saver = resilient(primary, standby, clock, events)
    assert overridden(saver, "copy_thread")
    assert overridden(saver, "acopy_thread")
    assert not overridden(saver, "prune")
    assert not overridden(saver, "delete_for_runs")
    # one class per combination of optional methods, whatever the savers' count
    assert ResilientSaver(CopyingSaver()).copy_thread.__func__ is type(saver).copy_thread

    graph = chain(saver, mode)
    await run(graph, mode, "src")
    if mode == "sync":
        saver.copy_thread("src", "dst")
    else:
        await saver.acopy_thread("src", "dst")
    saver.flush()

    assert ids(primary, "dst") == ids(primary, "src") == ids(standby, "dst")
    assert chain_length(standby, "dst") == 5
    assert graph.get_state(thread("dst")).values == {"log": ["a", "b", "c"]}


def test_copy_thread_during_an_outage_is_reconciled(clock: FakeClock, events: list) -> None:
    """Proves: a copy served by the standby is journaled and copied to the primary."""
    primary, standby = FaultyCopyingSaver(), CopyingSaver()
    saver = resilient(primary, standby, clock, events, failback=False)
    chain(saver, "sync").invoke({"log": []}, thread("src"))
    saver.flush()

    primary.fail(ConnectionError("primary down"))
    saver.copy_thread("src", "dst")
    assert saver.status().pending_threads == ("dst",)
    assert ids(primary, "dst") == set()
    primary.heal()

    assert saver.reconcile().checkpoints == 5
    assert ids(primary, "dst") == ids(standby, "dst") == ids(primary, "src")


def test_a_prune_during_an_outage_is_replayed_on_the_primary_with_its_strategy(
    clock: FakeClock, events: list
) -> None:
    """Proves: a journaled call keeps its keyword arguments (prune's strategy)."""
    primary, standby = FaultyPruningSaver(PruningSaver()), PruningSaver()
    saver = resilient(primary, standby, clock, events, failback=False)
    chain(saver, "sync").invoke({"log": []}, thread("t"))
    saver.flush()
    assert len(ids(primary, "t")) == 5

    primary.fail(ConnectionError("primary down"), methods=["prune", "list", "get_tuple"])
    saver.prune(["t"], strategy="keep_latest")
    assert len(ids(standby, "t")) == 1
    assert len(ids(primary, "t")) == 5  # not yet
    primary.heal()

    report = saver.reconcile()
    assert (report.operations, report.failed_back) == (1, True)
    assert ids(primary, "t") == ids(standby, "t")
    assert len(ids(primary, "t")) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_delta_channel_history_comes_from_the_active_store(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: get_delta_channel_history is forwarded (the primary's answer), and is
    served by the standby after a failover."""
    saver = resilient(primary, standby, clock, events)
    chain(saver, "sync").invoke({"log": []}, thread("t"))
    saver.flush()
    latest = saver.get_tuple(thread("t"))
    assert latest is not None
    kwargs = {"config": latest.config, "channels": ["log"]}

    def ask() -> Any:
        if mode == "sync":
            return saver.get_delta_channel_history(**kwargs)
        return saver.aget_delta_channel_history(**kwargs)

    expected = primary.inner.get_delta_channel_history(**kwargs)
    got = ask() if mode == "sync" else await ask()
    assert got == expected
    primary.fail(ConnectionError("primary down"))
    got = ask() if mode == "sync" else await ask()
    assert got == standby.get_delta_channel_history(**kwargs)
    assert saver.status().active == "standby"


# ---- status and policy ------------------------------------------------------------------


def test_status_shows_the_active_store(
    primary: FaultySaver, clock: FakeClock, events: list
) -> None:
    """Proves: repr and the notebook view say which store is active, and why."""
    saver = ResilientSaver(
        primary,
        standby=InMemorySaver(),
        name="orders",
        clock=clock,
        policy=SaverPolicy(wait=tenacity.wait_none()),
    )
    assert "active='primary'" in repr(saver.status())
    html = saver._repr_html_()
    assert "'orders'" in html
    assert ">primary</b>" in html

    primary.fail(ConnectionError("primary down"))
    saver.put(new_config(), empty_checkpoint(), {}, {})
    status = saver.status()
    assert "active='standby'" in repr(status)
    assert "active='standby'" in repr(saver)
    html = status._repr_html_()
    assert ">standby</b>" in html
    assert DOWN in html
    assert "open" in html


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"timeout": 0}, ValueError, "SaverPolicy.timeout"),
        ({"attempts": 0}, ValueError, "SaverPolicy.attempts"),
        ({"breaker": "x"}, TypeError, "SaverPolicy.breaker"),
    ],
)
def test_policy_errors_name_the_field(kwargs: dict, error: type, field: str) -> None:
    """Proves: a bad SaverPolicy value is rejected with the field's name."""
    with pytest.raises(error, match=field):
        SaverPolicy(**kwargs)


# ---- closing -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_close_writes_what_the_mirror_queued_and_stops_its_thread(
    mode: str, primary: FaultySaver, standby: SqliteSaver, clock: FakeClock, events: list
) -> None:
    """Proves: close() flushes the mirror, ends its thread, and refuses writes after."""
    import threading

    def mirrors() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.endswith("-mirror-closing")]

    saver = ResilientSaver(
        primary, standby=standby, name="closing", policy=SaverPolicy(wait=tenacity.wait_none())
    )
    configs = [await put(saver, mode, f"t{n}") for n in range(20)]
    assert mirrors() == ["langgraph-resilience-mirror-closing"]
    if mode == "sync":
        saver.close()
    else:
        await saver.aclose()
    assert mirrors() == []
    assert all(standby.get_tuple(config) is not None for config in configs)  # none lost
    with pytest.raises(RuntimeError, match="is closed"):
        await put(saver, mode, "late")


def test_a_standby_opened_from_a_url_is_closed_with_the_saver(tmp_path: Path) -> None:
    """Proves: the saver owns (and closes) a standby it opened; WAL, synchronous=NORMAL."""
    with ResilientSaver(InMemorySaver(), standby=f"sqlite:///{tmp_path}/sb/standby.db") as saver:
        standby = saver.standby
        assert isinstance(standby, SqliteSaver)
        assert standby.conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert standby.conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        saver.put(new_config(), empty_checkpoint(), {"source": "input", "step": -1}, {})
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        standby.conn.execute("SELECT 1")
    with closing(sqlite3.connect(tmp_path / "sb" / "standby.db")) as conn:  # it was written
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone() == (1,)


def test_a_standby_from_a_url_takes_the_optional_methods_away(tmp_path: Path) -> None:
    """Proves: a pruning primary with a SQLite standby opened from a URL offers no
    prune (the standby could not mirror it)."""
    pruning = ResilientSaver(PruningSaver())
    assert overridden(pruning, "prune")
    with ResilientSaver(PruningSaver(), standby=f"sqlite:///{tmp_path}/s.db") as saver:
        assert not overridden(saver, "prune")


@pytest.mark.parametrize("url", ["postgresql://db/x", "sqlite://host/x", "sqlite:///"])
def test_a_standby_url_must_be_sqlite_or_memory(url: str) -> None:
    with pytest.raises(ValueError, match="standby URL"):
        ResilientSaver(InMemorySaver(), standby=url)
