"""Recovery of runs from their checkpoints: which threads stopped before the end, and
how to run them on (``resume``) or go back to an earlier checkpoint (``rollback``).

These work on any LangGraph saver; ``ResilientSaver`` offers them as methods.

Without the graph, a run's unfinished nodes are read from its latest checkpoint: the
channels the last step updated say which nodes it triggered (``branch:to:<node>``,
``join:...:<node>``, ``__start__`` and pending ``Send``s). Pass ``graph=`` to ask
LangGraph itself instead (``graph.get_state``). Neither can tell a run paused by a
static ``interrupt_before``/``interrupt_after`` from one cut off just there: both are
listed as interrupted. (A ``RunWorker`` knows the difference: a paused run released
its lease, a dead worker's lease expires.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, copy_checkpoint
from langgraph.checkpoint.base.id import uuid6

__all__ = [
    "StoredRun",
    "afailed_runs",
    "ainterrupted_runs",
    "arollback",
    "failed_runs",
    "interrupted_runs",
    "rollback",
    "stored_run",
]

ERROR = "__error__"  # langgraph.constants.ERROR; the task's exception, as a repr string
INTERRUPT = "__interrupt__"  # langgraph.constants.INTERRUPT; an interrupt() waiting
_CONTROL = frozenset({ERROR, INTERRUPT, "__resume__", "__scheduled__"})  # not a task's output
_START = "__start__"
_TASKS = "__pregel_tasks"


class _Graph(Protocol):
    """What recovery needs of a compiled graph."""

    def get_state(self, config: RunnableConfig) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class StoredRun:
    """A thread's latest checkpoint, read for recovery."""

    thread_id: str
    """The thread."""
    checkpoint_id: str
    """Its latest checkpoint, where a resume starts."""
    step: int
    """The step that checkpoint closed (``-1`` for the input)."""
    next: tuple[str, ...]
    """Nodes the latest checkpoint scheduled (empty when the run completed).

    Read from the checkpoint alone, this also names a node that finished and saved its
    writes before the run was cut off (``saved_tasks``; resume applies its writes
    without running it again). With ``graph=`` it is LangGraph's ``get_state().next``,
    which names only the nodes still to run."""
    errors: tuple[str, ...]
    """Errors of the tasks that failed at that checkpoint (repr strings)."""
    waiting: bool
    """An ``interrupt()`` is waiting for input: paused on purpose, not cut off."""
    saved_tasks: int = 0
    """Tasks of the unfinished step that completed and saved their writes."""

    @property
    def status(self) -> Literal["failed", "interrupted", "waiting", "done"]:
        """``failed`` (a task raised), ``waiting`` (an interrupt waits for input),
        ``interrupted`` (cut off with work left: a crash, a kill, a drain; also when
        every task of the step had saved its writes but the next checkpoint was never
        written) or ``done``."""
        if self.errors:
            return "failed"
        if self.waiting:
            return "waiting"
        return "interrupted" if self.next or self.saved_tasks else "done"

    @property
    def config(self) -> RunnableConfig:
        """The config that resumes the thread: ``graph.invoke(None, run.config)``."""
        return {"configurable": {"thread_id": self.thread_id}}


def stored_run(item: CheckpointTuple, graph: _Graph | None = None) -> StoredRun:
    """Read one thread's latest checkpoint (from ``saver.get_tuple``)."""
    conf = item.config["configurable"]
    writes = item.pending_writes or ()
    errors = tuple(str(value) for _, channel, value in writes if channel == ERROR)
    waiting = any(channel == INTERRUPT for _, channel, _ in writes)
    saved = {task_id for task_id, channel, _ in writes if channel not in _CONTROL}
    if graph is not None:
        state = graph.get_state({"configurable": {"thread_id": conf["thread_id"]}})
        next_nodes = tuple(state.next)
        waiting = waiting or bool(getattr(state, "interrupts", ()))
    else:
        next_nodes = _triggered(item)
    return StoredRun(
        thread_id=str(conf["thread_id"]),
        checkpoint_id=str(conf["checkpoint_id"]),
        step=int(item.metadata.get("step", -1)),
        next=next_nodes,
        errors=errors,
        waiting=waiting,
        saved_tasks=len(saved),
    )


def failed_runs(saver: BaseCheckpointSaver[Any], *, graph: _Graph | None = None) -> list[StoredRun]:
    """Threads whose latest checkpoint has a failed task, newest first."""
    return _newest_first(_latest_runs(saver, graph), "failed")


def interrupted_runs(
    saver: BaseCheckpointSaver[Any], *, graph: _Graph | None = None
) -> list[StoredRun]:
    """Threads cut off with work left (no failed task, no interrupt waiting), newest first."""
    return _newest_first(_latest_runs(saver, graph), "interrupted")


async def afailed_runs(
    saver: BaseCheckpointSaver[Any], *, graph: _Graph | None = None
) -> list[StoredRun]:
    """Async ``failed_runs``."""
    return _newest_first([run async for run in _alatest_runs(saver, graph)], "failed")


async def ainterrupted_runs(
    saver: BaseCheckpointSaver[Any], *, graph: _Graph | None = None
) -> list[StoredRun]:
    """Async ``interrupted_runs``."""
    return _newest_first([run async for run in _alatest_runs(saver, graph)], "interrupted")


def rollback(saver: BaseCheckpointSaver[Any], thread_id: str, checkpoint_id: str) -> RunnableConfig:
    """Make an earlier checkpoint the thread's latest again, as a fork of it.

    History is kept: a new checkpoint, a copy of ``checkpoint_id`` with
    ``source="fork"``, is written after the current latest one. ``graph.invoke(None,
    config)`` then runs on from that earlier state; the pending writes of the old
    checkpoint are not copied, so its tasks all run again.

    Returns:
        The new checkpoint's config.

    Raises:
        ValueError: the thread has no checkpoint ``checkpoint_id``.
    """
    target = saver.get_tuple(_at(thread_id, checkpoint_id))
    latest = saver.get_tuple(_at(thread_id, None))
    checkpoint, metadata, versions = _fork(thread_id, checkpoint_id, target)
    assert latest is not None  # the target exists, so the thread has a latest
    return saver.put(latest.config, checkpoint, metadata, versions)


async def arollback(
    saver: BaseCheckpointSaver[Any], thread_id: str, checkpoint_id: str
) -> RunnableConfig:
    """Async ``rollback``."""
    target = await saver.aget_tuple(_at(thread_id, checkpoint_id))
    latest = await saver.aget_tuple(_at(thread_id, None))
    checkpoint, metadata, versions = _fork(thread_id, checkpoint_id, target)
    assert latest is not None
    return await saver.aput(latest.config, checkpoint, metadata, versions)


# ---- reading the latest checkpoint of every thread


def _latest_runs(saver: BaseCheckpointSaver[Any], graph: _Graph | None) -> Iterator[StoredRun]:
    # The thread ids are collected first: the SQLite savers hold their lock while a
    # list() is being iterated, so reading a thread inside the loop would deadlock.
    for thread_id in _threads(saver.list(None)):
        latest = saver.get_tuple(_at(thread_id, None))
        if latest is not None:
            yield stored_run(latest, graph)


async def _alatest_runs(
    saver: BaseCheckpointSaver[Any], graph: _Graph | None
) -> AsyncIterator[StoredRun]:
    for thread_id in _threads([item async for item in saver.alist(None)]):
        latest = await saver.aget_tuple(_at(thread_id, None))
        if latest is not None:
            yield stored_run(latest, graph)


def _threads(items: Iterable[CheckpointTuple]) -> list[str]:
    """Every thread with a root checkpoint, once, in the order the saver listed them
    (all its checkpoints are listed: this is an operator's tool, not a hot path)."""
    return list(dict.fromkeys(_thread_of(item) for item in items if _is_root(item)))


def _newest_first(runs: Iterable[StoredRun], status: str) -> list[StoredRun]:
    # Checkpoint ids are time-ordered (uuid6); savers list threads in their own order.
    chosen = [run for run in runs if run.status == status]
    return sorted(chosen, key=lambda run: run.checkpoint_id, reverse=True)


def _is_root(item: CheckpointTuple) -> bool:
    return not item.config["configurable"].get("checkpoint_ns")


def _thread_of(item: CheckpointTuple) -> str:
    return str(item.config["configurable"]["thread_id"])


def _triggered(item: CheckpointTuple) -> tuple[str, ...]:
    """The nodes the checkpoint's last step triggered, from the channels it updated."""
    checkpoint = item.checkpoint
    updated = checkpoint.get("updated_channels")
    if updated is None:  # checkpoints from before LangGraph 0.4: compare versions seen
        seen = checkpoint["versions_seen"]
        updated = [
            channel
            for channel, version in checkpoint["channel_versions"].items()
            if all(version != node.get(channel) for node in seen.values())
        ]
    nodes: dict[str, None] = {}
    for channel in updated:
        if channel == _START:
            nodes[_START] = None
        elif channel.startswith("branch:to:"):
            nodes[channel.removeprefix("branch:to:")] = None
        elif channel.startswith("join:"):
            nodes[channel.rpartition(":")[2]] = None
        elif channel == _TASKS:
            for send in checkpoint["channel_values"].get(_TASKS) or ():
                nodes[str(getattr(send, "node", send))] = None
    return tuple(nodes)


def _at(thread_id: str, checkpoint_id: str | None) -> RunnableConfig:
    if not isinstance(thread_id, str) or not thread_id:
        raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}")
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _fork(
    thread_id: str, checkpoint_id: str, target: CheckpointTuple | None
) -> tuple[Any, Any, dict[str, Any]]:
    if target is None:
        raise ValueError(
            f"checkpoint_id {checkpoint_id!r} is not a checkpoint of thread {thread_id!r}: "
            "pick one from graph.get_state_history(config)"
        )
    checkpoint = copy_checkpoint(target.checkpoint)
    step = int(target.metadata.get("step", -1))
    checkpoint["id"] = str(uuid6(clock_seq=step))
    checkpoint["ts"] = datetime.now(timezone.utc).isoformat()
    metadata = {**target.metadata, "source": "fork", "parents": {}}
    return checkpoint, metadata, dict(checkpoint["channel_versions"])
