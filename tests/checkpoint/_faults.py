"""Savers that fail on demand, for the ``ResilientSaver`` tests.

``FaultySaver`` is a real ``InMemorySaver`` (it stores checkpoints like one) with a
switch: while a fault is set, the chosen methods raise it (for ever, or a given number
of times), or block until ``release()``. It counts every call that reaches it, so a test
can tell whether the adapter touched the store at all.

``CopyingSaver`` is an ``InMemorySaver`` that also implements the optional
``copy_thread`` (by listing the source thread and putting each checkpoint again);
``FaultyCopyingSaver`` is a ``FaultySaver`` that does too.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver

__all__ = ["CopyingSaver", "FaultyCopyingSaver", "FaultySaver"]

METHODS = frozenset({"get_tuple", "list", "put", "put_writes", "delete_thread", "copy_thread"})


class FaultySaver(InMemorySaver):
    """An ``InMemorySaver`` whose methods raise or block while a fault is switched on.

    The async methods go through the sync ones (as ``InMemorySaver``'s do), so each call
    is counted once in ``calls`` whichever front it came from; a blocked async call waits
    in a thread, so it never blocks the event loop.
    """

    def __init__(self, *, serde: Any = None) -> None:
        super().__init__(serde=serde)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._times: int | None = None
        self._methods: frozenset[str] = METHODS
        self._blocking: frozenset[str] = frozenset()
        self._gate = threading.Event()
        self.blocked = threading.Event()  # set once a call is waiting on the gate

    # ---- the switch

    def fail(
        self,
        error: BaseException,
        *,
        times: int | None = None,
        methods: Iterable[str] = METHODS,
    ) -> None:
        """Raise ``error`` from ``methods`` (``times`` times, or until ``heal()``)."""
        with self._lock:
            self._error, self._times, self._methods = error, times, frozenset(methods)

    def heal(self) -> None:
        """Stop raising."""
        with self._lock:
            self._error, self._times = None, None

    def block(self, *methods: str) -> None:
        """Make ``methods`` wait until ``release()``."""
        self._gate.clear()
        self._blocking = frozenset(methods)

    def release(self) -> None:
        """Let every blocked call go on (and stop blocking new ones)."""
        self._blocking = frozenset()
        self._gate.set()

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def peek(self, thread_id: str) -> list[CheckpointTuple]:
        """The thread's checkpoints, newest first, past any fault and uncounted."""
        return list(InMemorySaver.list(self, {"configurable": {"thread_id": thread_id}}))

    def peek_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple``, past any fault and uncounted."""
        return InMemorySaver.get_tuple(self, config)

    def _enter(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1
            error = self._error if method in self._methods else None
            if error is not None and self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._error, self._times = None, None
        if error is not None:
            raise error
        if method in self._blocking:
            self.blocked.set()
            self._gate.wait()

    # ---- sync

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._enter("get_tuple")
        return super().get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        self._enter("list")
        return super().list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._enter("put")
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._enter("put_writes")
        super().put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._enter("delete_thread")
        super().delete_thread(thread_id)

    # ---- async: never block the loop, then the sync body (which counts the call)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        if "get_tuple" in self._blocking:
            await asyncio.to_thread(self._gate.wait)
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if "list" in self._blocking:
            await asyncio.to_thread(self._gate.wait)
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if "put" in self._blocking:
            self.blocked.set()
            await asyncio.to_thread(self._gate.wait)  # cancelled at the deadline, never stuck
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if "put_writes" in self._blocking:
            self.blocked.set()
            await asyncio.to_thread(self._gate.wait)
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


def copy_thread_by_put(saver: InMemorySaver, source: str, target: str) -> None:
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
        copy_thread_by_put(self, source_thread_id, target_thread_id)
