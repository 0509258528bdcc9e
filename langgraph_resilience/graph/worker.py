"""``RunWorker``: run graph threads under a lease, and take over the threads of a
worker that died (the seed's N+1 standby).

A worker claims a thread's lease before running it and renews the lease from a
heartbeat thread while the run lasts. If the worker dies, the lease lapses; a standby
worker's ``recover()`` claims it and resumes the thread from its last checkpoint, so
nodes that had completed are not run again. If a worker finds that its lease was
taken over (it was paused past the expiry, say), it asks LangGraph to stop the run at
the next step boundary and raises ``LeaseLostError``: two workers never run one thread.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl

from langgraph_resilience.core.clock import to_seconds
from langgraph_resilience.errors import LeaseHeldError, LeaseLostError
from langgraph_resilience.leases import RunLeases
from langgraph_resilience.stores.leases import Lease

__all__ = ["RunWorker"]

logger = logging.getLogger("langgraph_resilience.worker")

_LOST = "langgraph-resilience: run lease lost"


class RunWorker:
    """Runs threads of one graph under run leases.

    Example:
        ```python
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.graph import START, StateGraph
        from langgraph_resilience import RunLeases, RunWorker

        builder = StateGraph(dict)
        builder.add_node("work", lambda state: {"done": True})
        builder.add_edge(START, "work")
        graph = builder.compile(checkpointer=InMemorySaver())

        leases = RunLeases.from_url("sqlite:///:memory:", ttl=30)
        worker = RunWorker(graph, leases, owner="worker-1")
        worker.run("order-42", {"done": False})  # holds the lease while it runs
        worker.recover()  # on a standby: resume threads whose worker died
        ```

    Args:
        graph: a compiled graph with a checkpointer (the checkpoints are what a
            standby resumes from).
        leases: the shared ``RunLeases``.
        owner: this worker's name; by default ``host:pid:random``.
        heartbeat: seconds between renewals; by default a third of the lease's ttl.
    """

    def __init__(
        self,
        graph: Any,
        leases: RunLeases,
        *,
        owner: str | None = None,
        heartbeat: float | timedelta | None = None,
    ) -> None:
        if getattr(graph, "checkpointer", None) is None:
            raise ValueError(
                "graph must be compiled with a checkpointer: a standby worker resumes "
                "a dead worker's threads from their checkpoints"
            )
        if not isinstance(leases, RunLeases):
            raise TypeError(f"leases must be a RunLeases, got {leases!r}")
        self.graph = graph
        self.leases = leases
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        """This worker's name in the lease store."""
        interval = leases.ttl / 3 if heartbeat is None else heartbeat
        self.heartbeat = to_seconds(interval, field="heartbeat", allow_zero=False)
        """Seconds between lease renewals."""
        self._running: set[str] = set()  # threads this worker runs now
        self._lock = threading.Lock()
        if self.heartbeat >= leases.ttl:
            raise ValueError(
                f"heartbeat must be shorter than the lease ttl ({leases.ttl:g}s), "
                f"got {self.heartbeat:g}s"
            )

    def run(
        self, thread_id: str, input: Any, *, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """``graph.invoke(input)`` on ``thread_id`` while holding its lease.

        ``kwargs`` go to ``invoke``. Pass ``input=None`` to resume the thread.

        Raises:
            LeaseHeldError: another worker holds the thread, or this worker is running
                it already.
            LeaseLostError: the lease was taken over during the run; the run stopped
                at a step boundary and the new holder resumes it.
        """
        with self._leased(thread_id, None) as control:
            return self.graph.invoke(input, _config(config, thread_id), control=control, **kwargs)

    async def arun(
        self, thread_id: str, input: Any, *, config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        """Async ``run``."""
        with self._leased(thread_id, None) as control:
            return await self.graph.ainvoke(
                input, _config(config, thread_id), control=control, **kwargs
            )

    def recover(self, **kwargs: Any) -> dict[str, Any]:
        """Take over each thread whose lease expired and resume it from its checkpoint.

        Only the lease that was listed is taken over: a thread that another standby
        claimed or finished in the meantime is skipped. A resumed run that fails does
        not stop the others; the first such error is raised at the end (the others
        are logged, and every failed thread shows in ``failed_runs()``).

        Returns:
            The final state of each thread this worker resumed. ``kwargs`` go to
            ``invoke``.
        """
        results: dict[str, Any] = {}
        errors: list[Exception] = []
        for orphan in self.leases.expired():
            thread_id = orphan.thread_id
            config = _config(None, thread_id)
            if self.graph.checkpointer.get_tuple(config) is None:
                self._nothing_to_resume(orphan)
                continue
            try:
                with self._leased(thread_id, orphan) as control:
                    results[thread_id] = self.graph.invoke(None, config, control=control, **kwargs)
            except LeaseHeldError:  # another standby was quicker
                continue
            except Exception as exc:
                self._failed(thread_id, exc, errors)
        if errors:
            raise errors[0]
        return results

    async def arecover(self, **kwargs: Any) -> dict[str, Any]:
        """Async ``recover``."""
        results: dict[str, Any] = {}
        errors: list[Exception] = []
        for orphan in self.leases.expired():
            thread_id = orphan.thread_id
            config = _config(None, thread_id)
            if await self.graph.checkpointer.aget_tuple(config) is None:
                self._nothing_to_resume(orphan)
                continue
            try:
                with self._leased(thread_id, orphan) as control:
                    results[thread_id] = await self.graph.ainvoke(
                        None, config, control=control, **kwargs
                    )
            except LeaseHeldError:
                continue
            except Exception as exc:
                self._failed(thread_id, exc, errors)
        if errors:
            raise errors[0]
        return results

    def _failed(self, thread_id: str, error: Exception, errors: list[Exception]) -> None:
        if errors:  # the first is raised at the end; the others would be lost
            logger.error("thread %r: the resumed run failed: %r", thread_id, error)
        errors.append(error)

    def _nothing_to_resume(self, lease: Lease) -> None:
        """A worker that died before its first checkpoint saved nothing, not even the
        input: drop its lease with a warning (the thread must be submitted again)."""
        if self.leases.release(lease):
            logger.warning(
                "thread %r: worker %r died before its first checkpoint; nothing to resume, "
                "submit the thread again",
                lease.thread_id,
                lease.owner,
            )

    @contextmanager
    def _leased(self, thread_id: str, orphan: Lease | None) -> Iterator[RunControl]:
        """Hold the thread's lease (``orphan``: take over exactly that expired lease)
        with a heartbeat, and give it back at the end unless it was lost. The run is
        given a ``RunControl`` that the heartbeat drains if the lease is lost; that
        drain comes out as ``LeaseLostError``."""
        with self._lock:
            if thread_id in self._running:
                raise LeaseHeldError(thread_id, self.owner, 0.0)
            self._running.add(thread_id)
        try:
            if orphan is None:
                lease = self.leases.claim(thread_id, owner=self.owner)
            else:
                lease = self.leases.take_over(orphan, owner=self.owner)
            if lease is None:
                held = self.leases.holder(thread_id)
                raise LeaseHeldError(
                    thread_id,
                    "?" if held is None else held.owner,
                    0.0 if held is None else held.expires_at,
                )
            control, lost = RunControl(), threading.Event()
            beat = _Heartbeat(self.leases, lease, self.heartbeat, lambda: _lose(control, lost))
            beat.start()
            try:
                yield control
            except GraphDrained:
                if lost.is_set():
                    raise LeaseLostError(thread_id, self.owner) from None
                raise
            finally:
                final = beat.stop()
                if not lost.is_set():
                    self.leases.release(final)
        finally:
            with self._lock:
                self._running.discard(thread_id)

    def __repr__(self) -> str:
        return f"<RunWorker {self.owner!r} {self.leases!r}>"


def _lose(control: RunControl, lost: threading.Event) -> None:
    lost.set()
    control.request_drain(_LOST)


def _config(config: RunnableConfig | None, thread_id: str) -> RunnableConfig:
    merged: dict[str, Any] = dict(config or {})
    configurable = dict(merged.get("configurable") or {})
    configurable["thread_id"] = thread_id
    merged["configurable"] = configurable
    return merged  # type: ignore[return-value]


class _Heartbeat:
    """Renews a lease every ``interval`` seconds in a daemon thread until stopped.

    A renewal refused by the store means another worker claimed the thread; a store
    that cannot be reached is tried again until the lease would have lapsed. Either
    way the run is told to stop (``on_lost``).
    """

    def __init__(
        self, leases: RunLeases, lease: Lease, interval: float, on_lost: Callable[[], None]
    ) -> None:
        self._leases = leases
        self.lease = lease
        self._interval = interval
        self._on_lost = on_lost
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"langgraph-resilience-lease-{lease.thread_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> Lease:
        self._stopped.set()
        self._thread.join()
        return self.lease

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                renewed = self._leases.renew(self.lease)
            except Exception:
                if self.lease.expired(self._leases.now()):
                    self._on_lost()
                    return
                continue  # the store is unreachable: try again before the lease lapses
            if renewed is None:
                self._on_lost()
                return
            self.lease = renewed
