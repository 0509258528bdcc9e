"""Savers with the optional ``copy_thread``, for the ``ResilientSaver`` tests; the
fault-injecting ``FaultySaver`` itself is public (``langgraph_resilience.testing``).

``CopyingSaver`` is an ``InMemorySaver`` that also implements the optional
``copy_thread`` (by listing the source thread and putting each checkpoint again);
``FaultyCopyingSaver`` is a ``FaultySaver`` that does too.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver

from langgraph_resilience.testing import FaultySaver

__all__ = [
    "CopyingSaver",
    "FaultyCopyingSaver",
    "FaultyPruningSaver",
    "FaultySaver",
    "PruningSaver",
]


def copy_thread_by_put(saver: BaseCheckpointSaver[Any], source: str, target: str) -> None:
    """Copy every checkpoint and pending write of ``source`` to ``target``, parents first."""
    items = sorted(
        saver.list({"configurable": {"thread_id": source}}),
        key=lambda t: t.config["configurable"]["checkpoint_id"],
    )
    for item in items:
        conf: dict[str, Any] = {
            "thread_id": target,
            "checkpoint_ns": item.config["configurable"].get("checkpoint_ns", ""),
        }
        if item.parent_config is not None:
            conf["checkpoint_id"] = item.parent_config["configurable"]["checkpoint_id"]
        saved = saver.put(
            {"configurable": conf},
            item.checkpoint,
            item.metadata,
            dict(item.checkpoint["channel_versions"]),
        )
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or ():
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            saver.put_writes(saved, writes, task_id)


class CopyingSaver(InMemorySaver):
    """An ``InMemorySaver`` that supports ``copy_thread`` (sync only, like SqliteSaver)."""

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        copy_thread_by_put(self, source_thread_id, target_thread_id)


class FaultyCopyingSaver(FaultySaver):
    """A ``FaultySaver`` that supports ``copy_thread``."""

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._enter("copy_thread")
        copy_thread_by_put(self.inner, source_thread_id, target_thread_id)


def keep_latest(saver: InMemorySaver, thread_ids: Any, strategy: str) -> None:
    """``prune`` for an ``InMemorySaver``: drop every checkpoint (and its writes) but the
    latest of each namespace, or the whole thread (``strategy="delete"``)."""
    for thread_id in thread_ids:
        if strategy == "delete":
            saver.delete_thread(thread_id)
            continue
        for ns, checkpoints in saver.storage.get(thread_id, {}).items():
            latest = max(checkpoints)
            for checkpoint_id in [c for c in checkpoints if c != latest]:
                del checkpoints[checkpoint_id]
                saver.writes.pop((thread_id, ns, checkpoint_id), None)


class PruningSaver(InMemorySaver):
    """An ``InMemorySaver`` that supports ``prune`` (sync only)."""

    def prune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None:
        keep_latest(self, thread_ids, strategy)


class FaultyPruningSaver(FaultySaver):
    """A ``FaultySaver`` that supports ``prune`` (and fails it like any other method)."""

    def prune(self, thread_ids: Any, *, strategy: str = "keep_latest") -> None:
        self._enter("prune")
        assert isinstance(self.inner, InMemorySaver)
        keep_latest(self.inner, thread_ids, strategy)
