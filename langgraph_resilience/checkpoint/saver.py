"""``ResilientSaver``: a checkpointer that survives its database.

It wraps the saver a graph already uses (the *primary*) and, optionally, a *standby*
(the embedded SQLite saver is the natural choice):

- every call to the primary has a deadline and is retried on transient errors, behind
  a circuit breaker, so an outage is noticed once and not on every step;
- every write that reaches the primary is mirrored to the standby in a background
  thread, so the standby holds whole parent chains;
- when the primary fails, the queued mirror writes are flushed and reads and writes go
  on against the standby: the run does not fail and no checkpoint is lost;
- when the primary is back, what only the standby holds is copied to it
  (``reconcile()``, idempotent) and the saver fails back.

The class offers ``delete_for_runs``, ``copy_thread`` and ``prune`` only when every
wrapped saver has them: callers and LangGraph's conformance suite take an overridden
method to mean "supported".
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tenacity
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from langgraph_resilience._deadline import await_with_deadline, call_with_deadline
from langgraph_resilience.breaker import CircuitBreaker
from langgraph_resilience.checkpoint import recovery
from langgraph_resilience.checkpoint.policy import SaverPolicy
from langgraph_resilience.checkpoint.recovery import StoredRun
from langgraph_resilience.core.clock import Clock, MonotonicClock, to_seconds
from langgraph_resilience.core.events import (
    BreakerState,
    MirrorFailed,
    SaverEvent,
    SaverFailedBack,
    SaverFailedOver,
)
from langgraph_resilience.errors import (
    CircuitOpenError,
    SaverUnavailableError,
    StoreTimeoutError,
)
from langgraph_resilience.events import publish
from langgraph_resilience.stores.memory import InMemoryBreakerStore
from langgraph_resilience.stores.urls import mask_url
from langgraph_resilience.tracing import trace_event

__all__ = ["ReconcileReport", "ResilientSaver", "SaverListener", "SaverStatus", "open_standby"]

logger = logging.getLogger("langgraph_resilience.checkpoint")

SaverListener = Callable[[SaverEvent], object]
StoredRuns = list[StoredRun]  # the class's own `list` method shadows the builtin in its body

PRIMARY: Literal["primary"] = "primary"
STANDBY: Literal["standby"] = "standby"

# The optional methods: offered only when every wrapped saver overrides them.
_EXTENDED = ("delete_for_runs", "copy_thread", "prune")


@dataclass(frozen=True, kw_only=True)
class ReconcileReport:
    """What ``reconcile()`` copied from the standby to the primary."""

    threads: int
    """Threads compared."""
    checkpoints: int
    """Checkpoints that only the standby had, now written to the primary."""
    writes: int
    """Tasks whose pending writes only the standby had, now written to the primary."""
    operations: int
    """Deletes and prunes made on the standby during the outage, now made on the primary."""
    failed_back: bool
    """Whether reads and writes went back to the primary afterwards."""


@dataclass(frozen=True, kw_only=True)
class SaverStatus:
    """Where a ``ResilientSaver`` stands (``saver.status()``)."""

    name: str
    """The saver's name."""
    active: Literal["primary", "standby"]
    """The store that takes reads and writes now."""
    breaker: BreakerState
    """The primary's circuit breaker."""
    pending_threads: tuple[str, ...]
    """Threads written on the standby only, waiting to be reconciled."""
    pending_operations: int
    """Journal entries waiting to be replayed on the primary."""
    mirror_lag: int
    """Writes queued for the standby and not yet written."""
    mirror_failures: int
    """Writes the standby refused (see ``MirrorFailed`` events)."""
    failovers: int
    """Times the saver failed over since it was created."""
    last_error: str | None
    """The primary's latest error that caused a failover."""

    def _repr_html_(self) -> str:
        colour = "#2e7d32" if self.active == PRIMARY else "#c62828"
        rows = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
            for k, v in (
                ("active", f"<b style='color:{colour}'>{self.active}</b>"),
                ("breaker", self.breaker.value),
                ("waiting to reconcile", ", ".join(self.pending_threads) or "nothing"),
                ("mirror lag", self.mirror_lag),
                ("mirror failures", self.mirror_failures),
                ("failovers", self.failovers),
                ("last error", self.last_error or ""),
            )
        )
        return f"<table><caption>ResilientSaver {self.name!r}</caption>{rows}</table>"


@dataclass(frozen=True)
class _Pending:
    """One journal entry: something done on the standby that the primary must see."""

    kind: Literal["sync", "call"]
    thread_id: str | None = None
    method: str = ""
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()


_WAIT = _Pending("call", method="wait")  # _next_entry: try again in a moment
_PAUSE = "pause"  # a reconciliation step that only waits
_Step = tuple[str, str, tuple[Any, ...], dict[str, Any]]  # (store, method, args, kwargs)


class _Shared:
    """Failover state, shared by a saver and its ``with_allowlist`` clones."""

    def __init__(self, name: str, listeners: Iterable[SaverListener]) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.failback_lock = threading.Lock()
        self.active: Literal["primary", "standby"] = PRIMARY
        self.journal: list[_Pending] = []
        self.inflight = 0  # standby writes running now; fail-back waits for them
        self.failovers = 0
        self.last_error: str | None = None  # the cause of the latest failover
        self.recent_error: str | None = None  # the primary's latest transient error
        self.failed_over_at = 0.0
        self.listeners: list[SaverListener] = list(listeners)
        self.sync_only: set[tuple[int, str]] = set()  # (id(store), method) whose a* raises

    def remember_first(self, entry: _Pending) -> None:
        """Put back an entry whose replay failed, ahead of the rest, unless a copy of
        the same thread already waits with nothing of that thread's before it."""
        with self.lock:
            if not self._covered(entry, self.journal):
                self.journal.insert(0, entry)

    def remember(self, entry: _Pending) -> None:
        with self.lock:
            if not self._covered(entry, reversed(self.journal)):
                self.journal.append(entry)

    @staticmethod
    def _covered(entry: _Pending, neighbours: Iterable[_Pending]) -> bool:
        """A thread's copy (``sync``) is idempotent: one already waiting covers another,
        unless an operation on the same thread (a delete) comes between them."""
        if entry.kind != "sync":
            return False
        for other in neighbours:
            if other.thread_id == entry.thread_id:
                return other.kind == "sync"
        return False


_STOP = object()  # tells the mirror thread to exit


class _Mirror:
    """Writes to the standby, in order, in one background thread."""

    def __init__(self, store: BaseCheckpointSaver[Any], policy: SaverPolicy, saver: str) -> None:
        self._store = store
        self._policy = policy
        self._saver = saver
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.submitted = 0  # written by producers under the GIL; read as a hint
        self.done = 0
        self.failures = 0
        self.on_failure: Callable[[str, str | None, BaseException], None] | None = None
        self.closed = False

    @property
    def lag(self) -> int:
        return max(self.submitted - self.done, 0)

    def submit(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self._thread is None or self.closed:
            self._start()
        self.submitted += 1
        self._queue.put((method, args, kwargs))
        if self.submitted - self.done > self._policy.mirror_lag:
            self.flush()  # back-pressure: never let the standby fall far behind

    def flush(self) -> None:
        """Return once every write submitted so far has been tried on the standby."""
        if self._thread is None or self.submitted == self.done:
            return
        written = threading.Event()
        self._queue.put(written)
        written.wait()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._start_lock:
            thread, self.closed = self._thread, True
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _start(self) -> None:
        with self._start_lock:
            if self.closed:
                raise RuntimeError(f"ResilientSaver {self._saver!r} is closed")
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name=f"langgraph-resilience-mirror-{self._saver}", daemon=True
                )
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        batching = _batching_connection(self._store)
        while True:
            batch = self._take()
            if batching is not None:
                batching.deferring = True  # one commit per batch, not one per write
            try:
                for item in batch:
                    if item is _STOP:
                        return
                    if isinstance(item, threading.Event):
                        _commit(self._store, batching)  # a flush sees the writes committed
                        item.set()
                    else:
                        self._write(*item)
            finally:
                _commit(self._store, batching)

    def _take(self) -> list[Any]:
        """The next queued item, and whatever else is queued behind it (up to 64)."""
        batch = [self._queue.get()]
        # This thread is the only consumer, so every item counted is there to take.
        batch.extend(self._queue.get_nowait() for _ in range(min(self._queue.qsize(), _BATCH)))
        return batch

    def _write(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        policy = self._policy
        try:
            try:
                getattr(self._store, method)(*args, **kwargs)
            except Exception as exc:
                if policy.attempts == 1 or not policy.retries(exc):
                    raise
                tenacity.Retrying(
                    stop=tenacity.stop_after_attempt(policy.attempts - 1),
                    wait=policy.wait,
                    retry=tenacity.retry_if_exception(policy.retries),
                    reraise=True,
                )(getattr(self._store, method), *args, **kwargs)
        except Exception as exc:
            self.failures += 1
            if self.on_failure is not None:
                self.on_failure(method, _thread_of_call(method, args, kwargs), exc)
        finally:
            self.done += 1


_BATCH = 64


class _BatchingConnection(sqlite3.Connection):
    """The connection of a standby opened from a URL. ``SqliteSaver`` commits after
    every call; while the mirror writes a batch, those commits wait for the batch's one
    commit (each commit costs a WAL write)."""

    deferring = False

    def commit(self) -> None:
        if not self.deferring:
            super().commit()


def _batching_connection(store: BaseCheckpointSaver[Any]) -> _BatchingConnection | None:
    conn = getattr(store, "conn", None)
    return (
        conn if isinstance(store, SqliteSaver) and isinstance(conn, _BatchingConnection) else None
    )


def _commit(store: BaseCheckpointSaver[Any], conn: _BatchingConnection | None) -> None:
    if conn is not None and isinstance(store, SqliteSaver):
        with store.lock:
            conn.deferring = False
            conn.commit()


class ResilientSaver(BaseCheckpointSaver[Any]):
    """A checkpointer with retries, deadlines, a circuit breaker and a standby.

    Use it wherever a checkpointer goes. The standby receives every write in the
    background and takes over, with whole parent chains, when the primary fails.

    Example:
        ```python
        import sqlite3

        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import START, StateGraph
        from langgraph_resilience import ResilientSaver, SaverPolicy

        standby = SqliteSaver(sqlite3.connect(":memory:", check_same_thread=False))
        saver = ResilientSaver(InMemorySaver(), standby=standby, policy=SaverPolicy(timeout=5))

        builder = StateGraph(dict)
        builder.add_node("hello", lambda state: {"greeting": "hi"})
        builder.add_edge(START, "hello")
        graph = builder.compile(checkpointer=saver)
        graph.invoke({}, {"configurable": {"thread_id": "t1"}})
        print(saver.status().active)  # "primary"; "standby" while the primary is down
        ```

    Args:
        primary: the saver that normally holds the checkpoints (Postgres, SQLite, ...).
        standby: a saver that mirrors every write and takes over when the primary
            fails, or the URL of one: ``"sqlite:///path/standby.db"`` (the embedded
            default, see ``open_standby``) or ``"memory://"``. It must use the same
            version format as the primary (every saver LangGraph ships does).
            Without one, the adapter still retries, enforces deadlines and fails fast
            through its breaker.
        policy: deadlines, retries, the breaker and fail-back; ``SaverPolicy()``.
        name: shown in events, logs and the breaker's name (``checkpointer:<name>``).
        breaker: a breaker for the primary, e.g. one shared by several processes
            through a Redis store; by default the saver has its own.
        clock: the breaker's clock (``FakeClock`` in tests).
        listeners: called with each ``SaverEvent`` (failover, fail-back, mirror failure).
    """

    def __new__(
        cls,
        primary: BaseCheckpointSaver[Any],
        *,
        standby: BaseCheckpointSaver[Any] | str | None = None,
        **_: Any,
    ) -> ResilientSaver:
        if isinstance(standby, str):
            shared: frozenset[str] = frozenset()  # a URL opens SqliteSaver or InMemorySaver
        else:
            stores = [primary] if standby is None else [primary, standby]
            shared = frozenset(m for m in _EXTENDED if all(_supports(s, m) for s in stores))
        return super().__new__(_class_with(cls, shared))

    def __init__(
        self,
        primary: BaseCheckpointSaver[Any],
        *,
        standby: BaseCheckpointSaver[Any] | str | None = None,
        policy: SaverPolicy | None = None,
        name: str = "checkpointer",
        breaker: CircuitBreaker | None = None,
        clock: Clock | None = None,
        listeners: Iterable[SaverListener] = (),
    ) -> None:
        owns_standby = isinstance(standby, str)
        if isinstance(standby, str):
            standby = open_standby(standby)
        if not isinstance(primary, BaseCheckpointSaver):
            raise TypeError(f"primary must be a LangGraph checkpoint saver, got {primary!r}")
        if standby is not None and not isinstance(standby, BaseCheckpointSaver):
            raise TypeError(
                f"standby must be a LangGraph checkpoint saver or None, got {standby!r}"
            )
        if standby is primary:
            raise ValueError("standby must be a different saver from primary")
        if policy is None:
            policy = SaverPolicy()
        elif not isinstance(policy, SaverPolicy):
            raise TypeError(f"policy must be a SaverPolicy, got {policy!r}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        super().__init__(serde=primary.serde)
        self._primary = primary
        self._standby = standby
        self._policy = policy
        # A store in this process cannot hang on a server (SQLite waits at most its busy
        # timeout), so it is called directly: a deadline costs a thread handoff per call.
        self._deadline = None if _in_process(primary) else policy.deadline
        self._recovery_timeout = to_seconds(
            policy.breaker.recovery_timeout, field="SaverPolicy.breaker.recovery_timeout"
        )
        self._clock = clock or MonotonicClock()
        self._breaker = breaker or CircuitBreaker(
            f"checkpointer:{name}", policy.breaker, clock=clock, store=InMemoryBreakerStore()
        )
        self._owns_standby = owns_standby
        self._shared = _Shared(name, listeners)
        self._mirror: _Mirror | None = None
        if standby is not None:
            self._mirror = _Mirror(standby, policy, name)
            self._mirror.on_failure = self._mirror_failed

    # ---- what LangGraph asks of every saver

    @property
    def primary(self) -> BaseCheckpointSaver[Any]:
        """The wrapped primary saver."""
        return self._primary

    @property
    def standby(self) -> BaseCheckpointSaver[Any] | None:
        """The wrapped standby saver, if any."""
        return self._standby

    @property
    def breaker(self) -> CircuitBreaker:
        """The primary's circuit breaker."""
        return self._breaker

    @property
    def config_specs(self) -> list[Any]:
        return list(self._primary.config_specs)

    def get_next_version(self, current: Any, channel: None) -> Any:
        # Versions come from the primary (string versions for every built-in saver);
        # the base class would raise for them.
        return self._primary.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> ResilientSaver:
        """A clone whose wrapped savers accept the graph's state types in strict msgpack
        mode; it shares this saver's failover state, breaker and mirror."""
        primary = self._primary.with_allowlist(extra_allowlist)
        standby = None if self._standby is None else self._standby.with_allowlist(extra_allowlist)
        if primary is self._primary and standby is self._standby:
            return self
        clone = copy.copy(self)  # shares _shared, the breaker and the mirror
        clone.__dict__.update(_primary=primary, _standby=standby, serde=primary.serde)
        return clone

    # ---- sync front

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        result: CheckpointTuple | None = self._call("get_tuple", (config,), {}, write=False)
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        kwargs = {"filter": filter, "before": before, "limit": limit}
        found: list[CheckpointTuple] = self._call("list", (config,), kwargs, write=False)
        return iter(found)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        result: RunnableConfig = self._call(
            "put", (config, checkpoint, metadata, new_versions), {}, write=True
        )
        return result

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",  # declared: LangGraph passes it only to savers that name it
    ) -> None:
        self._call("put_writes", (config, writes, task_id, task_path), {}, write=True)

    def delete_thread(self, thread_id: str) -> None:
        self._call("delete_thread", (thread_id,), {}, write=True)

    def get_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        kwargs = {"config": config, "channels": channels}
        return self._call("get_delta_channel_history", (), kwargs, write=False)

    # ---- async front

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        result: CheckpointTuple | None = await self._acall("get_tuple", (config,), {}, write=False)
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        kwargs = {"filter": filter, "before": before, "limit": limit}
        found: list[CheckpointTuple] = await self._acall("list", (config,), kwargs, write=False)
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        result: RunnableConfig = await self._acall(
            "put", (config, checkpoint, metadata, new_versions), {}, write=True
        )
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._acall("put_writes", (config, writes, task_id, task_path), {}, write=True)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._acall("delete_thread", (thread_id,), {}, write=True)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Any:
        kwargs = {"config": config, "channels": channels}
        return await self._acall("get_delta_channel_history", (), kwargs, write=False)

    # ---- failover state

    def status(self) -> SaverStatus:
        """Which store is active, the breaker's state, and what waits to be reconciled."""
        shared, mirror = self._shared, self._mirror
        with shared.lock:
            journal = list(shared.journal)
            active, failovers, last_error = shared.active, shared.failovers, shared.last_error
        threads = dict.fromkeys(p.thread_id for p in journal if p.thread_id is not None)
        return SaverStatus(
            name=shared.name,
            active=active,
            breaker=self._breaker.state,
            pending_threads=tuple(t for t in threads if t is not None),
            pending_operations=len(journal),
            mirror_lag=0 if mirror is None else mirror.lag,
            mirror_failures=0 if mirror is None else mirror.failures,
            failovers=failovers,
            last_error=last_error,
        )

    def add_listener(self, listener: SaverListener) -> SaverListener:
        """Call ``listener`` with every ``SaverEvent``; returns it (usable as a decorator)."""
        if not callable(listener):
            raise TypeError(f"listener must be callable, got {listener!r}")
        self._shared.listeners.append(listener)
        return listener

    def flush(self) -> None:
        """Wait until every write made so far has been mirrored to the standby."""
        if self._mirror is not None:
            self._mirror.flush()

    def reconcile(self, thread_ids: Iterable[str] | None = None) -> ReconcileReport:
        """Copy to the primary what only the standby holds, then fail back.

        Tries the primary now, whatever its breaker says. Idempotent: running it twice,
        or on threads the primary already has, copies nothing more.

        Args:
            thread_ids: threads to compare besides those the saver wrote on the standby
                during an outage (for instance after a restart, when that journal is gone).

        Raises:
            SaverUnavailableError: the primary is still failing (the saver stays on the
                standby and the journal is kept).
        """
        if self._standby is None:
            return ReconcileReport(
                threads=0, checkpoints=0, writes=0, operations=0, failed_back=False
            )
        self._extend_journal(thread_ids)
        self._breaker.reset()
        with self._shared.failback_lock:
            try:
                return self._drain_journal()
            except Exception as exc:
                raise SaverUnavailableError("reconcile", _describe(exc)) from exc

    async def areconcile(self, thread_ids: Iterable[str] | None = None) -> ReconcileReport:
        """Async ``reconcile()``."""
        if self._standby is None:
            return ReconcileReport(
                threads=0, checkpoints=0, writes=0, operations=0, failed_back=False
            )
        self._extend_journal(thread_ids)
        self._breaker.reset()
        acquired = await asyncio.to_thread(self._shared.failback_lock.acquire)
        assert acquired
        try:
            return await self._adrain_journal()
        except Exception as exc:
            raise SaverUnavailableError("reconcile", _describe(exc)) from exc
        finally:
            self._shared.failback_lock.release()

    # ---- recovery of runs

    def failed_runs(self, *, graph: Any = None) -> StoredRuns:
        """Threads whose latest checkpoint has a failed task (newest first).

        Pass the compiled ``graph`` to let LangGraph say which nodes are pending.
        """
        return recovery.failed_runs(self, graph=graph)

    def interrupted_runs(self, *, graph: Any = None) -> StoredRuns:
        """Threads cut off with work left: a crash, a kill, a drain (newest first).

        Runs waiting on an ``interrupt()`` are not included. Runs paused by a static
        ``interrupt_before``/``interrupt_after`` are: neither the checkpoint nor
        LangGraph's ``get_state`` tells them from a run cut off at that point.
        """
        return recovery.interrupted_runs(self, graph=graph)

    async def afailed_runs(self, *, graph: Any = None) -> StoredRuns:
        """Async ``failed_runs``."""
        return await recovery.afailed_runs(self, graph=graph)

    async def ainterrupted_runs(self, *, graph: Any = None) -> StoredRuns:
        """Async ``interrupted_runs``."""
        return await recovery.ainterrupted_runs(self, graph=graph)

    def resume(self, graph: Any, thread_id: str, **kwargs: Any) -> Any:
        """Run ``thread_id`` on from its latest checkpoint: only the nodes that had not
        finished run. ``kwargs`` go to ``graph.invoke`` (``durability=``, ...)."""
        return graph.invoke(None, _thread_config(thread_id), **kwargs)

    async def aresume(self, graph: Any, thread_id: str, **kwargs: Any) -> Any:
        """Async ``resume``."""
        return await graph.ainvoke(None, _thread_config(thread_id), **kwargs)

    def rollback(self, thread_id: str, checkpoint_id: str) -> RunnableConfig:
        """Fork ``thread_id`` back to ``checkpoint_id``: it becomes the latest state
        again (history is kept), and the next ``resume`` runs on from there."""
        return recovery.rollback(self, thread_id, checkpoint_id)

    async def arollback(self, thread_id: str, checkpoint_id: str) -> RunnableConfig:
        """Async ``rollback``."""
        return await recovery.arollback(self, thread_id, checkpoint_id)

    def close(self) -> None:
        """Write what the mirror has queued, then stop its thread.

        The wrapped savers stay open (they are yours to close, after this), except a
        standby the saver opened from a URL, which it closes.
        """
        if self._mirror is not None:
            self._mirror.close()
        standby = self._standby
        if self._owns_standby and isinstance(standby, SqliteSaver):
            with standby.lock:
                standby.conn.close()

    async def aclose(self) -> None:
        """Async ``close()``."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> ResilientSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ResilientSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __copy__(self) -> ResilientSaver:
        # __new__ needs the wrapped savers; a copy shares this one's state anyway.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __repr__(self) -> str:
        standby = "" if self._standby is None else f", standby={type(self._standby).__name__}"
        return (
            f"ResilientSaver({type(self._primary).__name__}{standby}, "
            f"name={self._shared.name!r}, active={self._shared.active!r})"
        )

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()

    # ---- the decision, written once; _call and _acall are its two fronts

    def _call(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, write: bool
    ) -> Any:
        if self._shared.active is PRIMARY or self._try_failback():
            try:
                result = self._primary_call(method, args, kwargs)
            except Exception as exc:
                self._fail_over(method, exc)
            else:
                if write and self._mirror is not None:
                    self._mirror.submit(method, args, kwargs)
                return result
        if self._mirror is not None:
            self._mirror.flush()
        return self._standby_call(method, args, kwargs, write, self._standby_sync)

    async def _acall(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], *, write: bool
    ) -> Any:
        if self._shared.active is PRIMARY or await self._atry_failback():
            try:
                result = await self._aprimary_call(method, args, kwargs)
            except Exception as exc:
                self._fail_over(method, exc)
            else:
                if write and self._mirror is not None:
                    self._mirror.submit(method, args, kwargs)
                return result
        mirror = self._mirror
        if mirror is not None and mirror.lag:
            await asyncio.to_thread(mirror.flush)
        return await self._astandby_call(method, args, kwargs, write)

    def _fail_over(self, method: str, error: Exception) -> None:
        """Switch to the standby, or raise: the error is not the store's health's fault,
        or there is nothing to switch to."""
        if not self._policy.transient(error):
            raise error
        shared = self._shared
        # An open breaker is a consequence; name the primary's own error as the cause.
        cause = shared.recent_error if isinstance(error, CircuitOpenError) else None
        cause = cause or _describe(error)
        if self._standby is None:
            raise SaverUnavailableError(method, f"the primary failed: {cause}") from error
        with shared.lock:
            switched = shared.active is PRIMARY
            shared.active = STANDBY
            shared.last_error = cause
            if switched:
                shared.failovers += 1
                shared.failed_over_at = self._clock.now()
        if switched:
            logger.warning(
                "checkpointer %r: the primary failed (%s); failing over to the standby",
                shared.name,
                cause,
            )
            self._emit(
                SaverFailedOver(
                    saver=shared.name, at=shared.failed_over_at, operation=method, error=cause
                )
            )

    # ---- the primary: breaker, deadline, retries

    def _primary_call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return self._primary_try(method, args, kwargs)
        except Exception as exc:
            if self._policy.attempts == 1 or not self._policy.retries(exc):
                raise
            first: list[Exception] = [exc]

        def again() -> Any:
            if first:  # the first try was made above, outside tenacity, to keep it cheap
                raise first.pop()
            return self._primary_try(method, args, kwargs)

        return self._retrying()(again)

    def _primary_try(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = _sync_method(self._primary, method)
        attempt = self._breaker.begin()
        try:
            if self._deadline is None:
                result = fn(*args, **kwargs)
            else:
                result = call_with_deadline(
                    fn, args, kwargs, self._deadline, self._timed_out(method)
                )
        except Exception as exc:
            if self._policy.transient(exc):
                attempt.fail(exc)
                self._saw(exc)
            else:
                attempt.abandon()  # the store answered: it is up
            raise
        except BaseException:
            attempt.abandon()
            raise
        attempt.succeed()
        return result

    async def _aprimary_call(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return await self._aprimary_try(method, args, kwargs)
        except Exception as exc:
            if self._policy.attempts == 1 or not self._policy.retries(exc):
                raise
            first: list[Exception] = [exc]

        async def again() -> Any:
            if first:
                raise first.pop()
            return await self._aprimary_try(method, args, kwargs)

        return await self._aretrying()(again)

    async def _aprimary_try(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        attempt = self._breaker.begin()
        try:
            call = self._astore(self._primary, method, args, kwargs)
            if self._deadline is None:
                result = await call
            else:
                result = await await_with_deadline(call, self._deadline, self._timed_out(method))
        except Exception as exc:
            if self._policy.transient(exc):
                attempt.fail(exc)
                self._saw(exc)
            else:
                attempt.abandon()
            raise
        except BaseException:
            attempt.abandon()
            raise
        attempt.succeed()
        return result

    def _saw(self, error: Exception) -> None:
        """Keep the primary's latest real error: a failover reports it, rather than the
        ``CircuitOpenError`` that a retry or a concurrent call may meet afterwards."""
        self._shared.recent_error = _describe(error)

    def _timed_out(self, method: str) -> Callable[[], StoreTimeoutError]:
        return functools.partial(StoreTimeoutError, PRIMARY, method, self._deadline or 0.0)

    def _retrying(self) -> tenacity.Retrying:
        policy = self._policy
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=policy.wait,
            retry=tenacity.retry_if_exception(policy.retries),
            reraise=True,
        )

    def _aretrying(self) -> tenacity.AsyncRetrying:
        policy = self._policy
        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=policy.wait,
            retry=tenacity.retry_if_exception(policy.retries),
            reraise=True,
        )

    async def _astore(
        self,
        store: BaseCheckpointSaver[Any],
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """``store``'s async method, or its sync one in a thread if it has none
        (``SqliteSaver``, ``PostgresSaver``)."""
        key = (id(store), method)
        if key not in self._shared.sync_only:
            try:
                if method == "list":
                    return [item async for item in store.alist(*args, **kwargs)]
                return await getattr(store, "a" + method)(*args, **kwargs)
            except NotImplementedError:
                if getattr(type(store), method) is getattr(BaseCheckpointSaver, method):
                    raise
                self._shared.sync_only.add(key)
        return await asyncio.to_thread(_sync_method(store, method), *args, **kwargs)

    # ---- the standby

    def _standby_sync(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        assert self._standby is not None
        return _sync_method(self._standby, method)(*args, **kwargs)

    def _standby_call(
        self,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        write: bool,
        run: Callable[[str, tuple[Any, ...], dict[str, Any]], Any],
    ) -> Any:
        shared = self._shared
        with shared.lock:
            shared.inflight += 1
        try:
            result = run(method, args, kwargs)
        except Exception as exc:
            raise SaverUnavailableError(
                method,
                f"the primary failed ({shared.last_error}) and so did the standby: "
                f"{_describe(exc)}",
            ) from exc
        finally:
            with shared.lock:
                shared.inflight -= 1
        if write:
            shared.remember(_journal_entry(method, args, kwargs))
        return result

    async def _astandby_call(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any], write: bool
    ) -> Any:
        assert self._standby is not None
        shared = self._shared
        with shared.lock:
            shared.inflight += 1
        try:
            result = await self._astore(self._standby, method, args, kwargs)
        except Exception as exc:
            raise SaverUnavailableError(
                method,
                f"the primary failed ({shared.last_error}) and so did the standby: "
                f"{_describe(exc)}",
            ) from exc
        finally:
            with shared.lock:
                shared.inflight -= 1
        if write:
            shared.remember(_journal_entry(method, args, kwargs))
        return result

    # ---- fail-back and reconciliation

    def _failback_due(self) -> bool:
        """Whether to try the primary again: the breaker admits a trial, and the breaker's
        recovery timeout has passed since the failover. (A call abandoned at its deadline
        counts one failure, which may not open the breaker; without the second rule
        every call would wait out the frozen primary's deadline again.)"""
        if self._standby is None or not self._policy.failback:
            return False
        if self._clock.now() - self._shared.failed_over_at < self._recovery_timeout:
            return False
        return self._breaker.state is not BreakerState.OPEN

    def _try_failback(self) -> bool:
        """On the standby: if the breaker admits a trial, reconcile and fail back."""
        shared = self._shared
        if not self._failback_due() or not shared.failback_lock.acquire(blocking=False):
            return False
        try:
            self._drain_journal()
        except Exception as exc:
            logger.info("checkpointer %r: the primary is still failing: %s", shared.name, exc)
            return False
        finally:
            shared.failback_lock.release()
        return shared.active is PRIMARY

    async def _atry_failback(self) -> bool:
        shared = self._shared
        if not self._failback_due() or not shared.failback_lock.acquire(blocking=False):
            return False
        try:
            await self._adrain_journal()
        except Exception as exc:
            logger.info("checkpointer %r: the primary is still failing: %s", shared.name, exc)
            return False
        finally:
            shared.failback_lock.release()
        return shared.active is PRIMARY

    def _extend_journal(self, thread_ids: Iterable[str] | None) -> None:
        if thread_ids is None:
            return
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a collection of thread ids, not one string")
        for thread_id in thread_ids:
            self._shared.remember(_Pending("sync", thread_id=thread_id))

    def _drain_journal(self) -> ReconcileReport:
        """Replay the journal on the primary until it is empty, then fail back."""
        steps = self._reconcile_steps()
        result: Any = None
        try:
            while True:
                store, method, args, kwargs = steps.send(result)
                try:
                    if store == _PAUSE:
                        result = None
                        threading.Event().wait(0.001)  # not a breaker timing
                    elif store == PRIMARY:
                        result = self._primary_call(method, args, kwargs)
                    else:
                        result = self._standby_sync(method, args, kwargs)
                except BaseException as exc:  # the plan decides what is kept, then re-raises
                    steps.throw(exc)
        except StopIteration as done:
            report: ReconcileReport = done.value
            return report

    async def _adrain_journal(self) -> ReconcileReport:
        """Async ``_drain_journal``: the same plan, the calls awaited."""
        assert self._standby is not None
        steps = self._reconcile_steps()
        result: Any = None
        try:
            while True:
                store, method, args, kwargs = steps.send(result)
                try:
                    if store == _PAUSE:
                        result = None
                        await asyncio.sleep(0.001)  # not a breaker timing
                    elif store == PRIMARY:
                        result = await self._aprimary_call(method, args, kwargs)
                    else:
                        result = await self._astore(self._standby, method, args, kwargs)
                except BaseException as exc:
                    steps.throw(exc)
        except StopIteration as done:
            report: ReconcileReport = done.value
            return report

    def _reconcile_steps(self) -> Generator[_Step, Any, ReconcileReport]:
        """The reconciliation, written once: it yields each store call for a front to
        make (sync or async) and receives its result. A failing call is thrown back in:
        the entry being replayed goes back to the journal and the error goes on up."""
        tally = _Tally()
        while (entry := self._next_entry(tally)) is not None:
            if entry is _WAIT:
                yield _PAUSE, "", (), {}  # a standby write is finishing; it will journal
                continue
            try:
                if entry.kind == "call":
                    yield PRIMARY, entry.method, entry.args, dict(entry.kwargs)
                    tally.operations += 1
                else:
                    assert entry.thread_id is not None
                    config = _thread_config(entry.thread_id)
                    ours = yield STANDBY, "list", (config,), {}
                    theirs = yield PRIMARY, "list", (config,), {}
                    for method, args in _missing(ours, theirs, tally):
                        yield PRIMARY, method, args, {}
                    tally.threads.add(entry.thread_id)
            except BaseException:
                self._shared.remember_first(entry)
                raise
        return self._failed_back(tally)

    def _next_entry(self, tally: _Tally) -> _Pending | None:
        """The journal's next entry; ``None`` (and the switch back to the primary) once
        it is empty and no standby write is running."""
        shared = self._shared
        with shared.lock:
            if shared.journal:
                return shared.journal.pop(0)
            if shared.inflight:
                return _WAIT  # a standby write is finishing; it will journal its thread
            tally.switched = shared.active is STANDBY
            shared.active = PRIMARY
            return None

    def _failed_back(self, tally: _Tally) -> ReconcileReport:
        report = ReconcileReport(
            threads=len(tally.threads),
            checkpoints=tally.checkpoints,
            writes=tally.writes,
            operations=tally.operations,
            failed_back=True,
        )
        if tally.switched:
            logger.info(
                "checkpointer %r: the primary is back; reconciled %d checkpoints and %d "
                "task writes over %d threads",
                self._shared.name,
                report.checkpoints,
                report.writes,
                report.threads,
            )
            self._emit(
                SaverFailedBack(
                    saver=self._shared.name,
                    at=self._clock.now(),
                    threads=report.threads,
                    checkpoints=report.checkpoints,
                    writes=report.writes,
                )
            )
        return report

    # ---- events

    def _mirror_failed(self, method: str, thread_id: str | None, error: BaseException) -> None:
        logger.error(
            "checkpointer %r: the standby refused %s for thread %r: %s",
            self._shared.name,
            method,
            thread_id,
            _describe(error),
        )
        self._emit(
            MirrorFailed(
                saver=self._shared.name,
                at=self._clock.now(),
                operation=method,
                thread_id=thread_id,
                error=_describe(error),
            )
        )

    def _emit(self, event: SaverEvent) -> None:
        # Savers are called from the graph's loop, outside the node runs: when there is
        # no run to annotate, the event gets a short run of its own.
        trace_event(event)
        publish(event, trace=False)
        for listener in list(self._shared.listeners):
            try:
                listener(event)
            except Exception:  # noqa: PERF203 - a failing listener must not stop the others
                logger.exception("checkpointer %r: listener %r failed", self._shared.name, listener)


# ---- optional methods, offered only when every wrapped saver has them


class _DeleteForRuns(ResilientSaver):
    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._call("delete_for_runs", (list(run_ids),), {}, write=True)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._acall("delete_for_runs", (list(run_ids),), {}, write=True)


class _CopyThread(ResilientSaver):
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._call("copy_thread", (source_thread_id, target_thread_id), {}, write=True)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._acall("copy_thread", (source_thread_id, target_thread_id), {}, write=True)


class _Prune(ResilientSaver):
    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._call("prune", (list(thread_ids),), {"strategy": strategy}, write=True)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._acall("prune", (list(thread_ids),), {"strategy": strategy}, write=True)


_MIXINS: dict[str, type[ResilientSaver]] = {
    "delete_for_runs": _DeleteForRuns,
    "copy_thread": _CopyThread,
    "prune": _Prune,
}


_CLASSES: dict[tuple[type[ResilientSaver], frozenset[str]], type[ResilientSaver]] = {}


def _class_with(base: type[ResilientSaver], methods: frozenset[str]) -> type[ResilientSaver]:
    """``base`` plus the optional methods in ``methods`` (one class per combination)."""
    if not methods:
        return base
    cls = _CLASSES.get((base, methods))
    if cls is None:
        bases = tuple(_MIXINS[m] for m in _EXTENDED if m in methods)
        attrs = {"__module__": base.__module__, "__qualname__": base.__qualname__}
        cls = _CLASSES.setdefault((base, methods), type(base.__name__, (*bases, base), attrs))
    return cls


def _supports(store: BaseCheckpointSaver[Any], method: str) -> bool:
    cls = type(store)
    if isinstance(store, ResilientSaver):
        return hasattr(cls, method) and getattr(cls, method) is not getattr(
            BaseCheckpointSaver, method
        )
    return any(
        getattr(cls, name) is not getattr(BaseCheckpointSaver, name)
        for name in (method, "a" + method)
    )


def open_standby(url: str) -> BaseCheckpointSaver[Any]:
    """The standby saver for ``url``: ``sqlite:///relative/path``,
    ``sqlite:////absolute/path`` or ``memory://``.

    The SQLite file is opened in WAL mode with ``synchronous=NORMAL``: a commit
    survives a crash of the process, and the standby does not pay an fsync per write
    (the primary is the durable copy; the standby only has to outlive it).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "memory":
        return InMemorySaver()
    path = parts.path[1:]
    if scheme != "sqlite" or parts.netloc or parts.query or not path:
        raise ValueError(
            f"standby URL {mask_url(url)!r} is not supported: use sqlite:///relative/path, "
            "sqlite:////absolute/path or memory://"
        )
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # SqliteSaver locks around every use; the mirror commits once per batch of writes.
    conn = sqlite3.connect(path, check_same_thread=False, factory=_BatchingConnection)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def _in_process(store: BaseCheckpointSaver[Any]) -> bool:
    module = type(store).__module__
    return module.startswith(("langgraph.checkpoint.memory", "langgraph.checkpoint.sqlite"))


def _sync_method(store: BaseCheckpointSaver[Any], method: str) -> Callable[..., Any]:
    fn = getattr(store, method)
    if method == "list":
        return lambda *args, **kwargs: list(fn(*args, **kwargs))
    return fn  # type: ignore[no-any-return]


# ---- reconciliation, pure


class _Tally:
    __slots__ = ("checkpoints", "operations", "switched", "threads", "writes")

    def __init__(self) -> None:
        self.threads: set[str] = set()
        self.checkpoints = self.writes = self.operations = 0
        self.switched = False


def _missing(
    ours: Sequence[CheckpointTuple], theirs: Sequence[CheckpointTuple], tally: _Tally
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The ``put`` and ``put_writes`` calls that give the primary (``theirs``) every
    checkpoint and task write the standby (``ours``) holds for one thread, parents first."""
    have: dict[tuple[str, str], set[str]] = {
        _key(t): {task_id for task_id, _, _ in t.pending_writes or ()} for t in theirs
    }
    for item in sorted(ours, key=_key_for_order):
        key = _key(item)
        if key not in have:
            checkpoint = item.checkpoint
            tally.checkpoints += 1
            yield (
                "put",
                (
                    _parent_config(item),
                    checkpoint,
                    item.metadata,
                    dict(checkpoint["channel_versions"]),
                ),
            )
        done = have.get(key, set())
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or ():
            if task_id not in done:
                by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            tally.writes += 1
            yield "put_writes", (item.config, writes, task_id, "")


def _key(item: CheckpointTuple) -> tuple[str, str]:
    conf = item.config["configurable"]
    return conf.get("checkpoint_ns", ""), conf["checkpoint_id"]


def _key_for_order(item: CheckpointTuple) -> tuple[str, str]:
    # Checkpoint ids are time-ordered (uuid6): sorting on them puts parents first.
    ns, checkpoint_id = _key(item)
    return checkpoint_id, ns


def _parent_config(item: CheckpointTuple) -> RunnableConfig:
    if item.parent_config is not None:
        return item.parent_config
    conf = item.config["configurable"]
    return {
        "configurable": {
            "thread_id": conf["thread_id"],
            "checkpoint_ns": conf.get("checkpoint_ns", ""),
        }
    }


def _thread_config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _journal_entry(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Pending:
    if method in ("put", "put_writes"):
        return _Pending("sync", thread_id=str(args[0]["configurable"]["thread_id"]))
    if method == "copy_thread":
        return _Pending("sync", thread_id=str(args[1]))
    thread_id = str(args[0]) if method == "delete_thread" else None
    return _Pending("call", thread_id, method, args, tuple(sorted(kwargs.items())))


def _thread_of_call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    return _journal_entry(method, args, kwargs).thread_id


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
