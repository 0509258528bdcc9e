"""``FaultySaver``: a checkpointer that fails when told to, for testing failover.

It wraps a real saver (an ``InMemorySaver`` by default). While a fault is set, the
chosen methods raise it, for ever or a given number of times (a dead database, a blip);
``block()`` makes them wait until ``release()`` (a frozen database). Every call is
counted, so a test can tell whether anything touched the store at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver

__all__ = ["FaultySaver"]

METHODS = frozenset({"get_tuple", "list", "put", "put_writes", "delete_thread", "copy_thread"})
"""The methods a fault applies to unless told otherwise (sync and async alike)."""


class FaultySaver(BaseCheckpointSaver[Any]):
    """A saver that fails on demand.

    Example:
        ```python
        from langgraph_resilience.testing import FaultySaver

        primary = FaultySaver()                 # wraps an InMemorySaver
        primary.fail()                          # every call raises ConnectionError
        try:
            primary.get_tuple({"configurable": {"thread_id": "t"}})
        except ConnectionError:
            pass
        primary.heal()                          # calls reach the real saver again
        assert primary.get_tuple({"configurable": {"thread_id": "t"}}) is None
        assert primary.calls["get_tuple"] == 2  # both calls were made
        ```

    Args:
        inner: the real saver; a fresh ``InMemorySaver`` by default.
    """

    def __init__(self, inner: BaseCheckpointSaver[Any] | None = None) -> None:
        self.inner = InMemorySaver() if inner is None else inner
        """The real saver."""
        super().__init__(serde=self.inner.serde)
        self.calls: Counter[str] = Counter()
        """Every call made, failed or not, by method (async calls under the sync name)."""
        self.blocked = threading.Event()
        """Set once a call is waiting in ``block()``."""
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._times: int | None = None
        self._methods = METHODS
        self._blocking: frozenset[str] = frozenset()
        self._gate = threading.Event()

    # ---- the switch

    def fail(
        self,
        error: BaseException | None = None,
        *,
        times: int | None = None,
        methods: Iterable[str] = METHODS,
    ) -> None:
        """Raise ``error`` (a ``ConnectionError`` by default) from ``methods``: ``times``
        times, or until ``heal()``."""
        if error is None:
            error = ConnectionError("checkpoint store is down (injected by FaultySaver)")
        with self._lock:
            self._error, self._times, self._methods = error, times, frozenset(methods)

    def heal(self) -> None:
        """Stop raising."""
        with self._lock:
            self._error, self._times = None, None

    def block(self, *methods: str) -> None:
        """Make ``methods`` (all of them by default) wait until ``release()``: a frozen
        server. Always ``release()`` in a ``finally``."""
        self._gate.clear()
        self._blocking = frozenset(methods or METHODS)

    def release(self) -> None:
        """Let every blocked call go on, and stop blocking new ones."""
        self._blocking = frozenset()
        self._gate.set()

    @property
    def failing(self) -> bool:
        """Whether calls raise now."""
        return self._error is not None

    def peek(self, thread_id: str) -> list[CheckpointTuple]:
        """The thread's checkpoints in the real saver, past any fault and uncounted."""
        return list(self.inner.list({"configurable": {"thread_id": thread_id}}))

    def peek_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple`` on the real saver, past any fault and uncounted."""
        return self.inner.get_tuple(config)

    # ---- the saver, sync

    @property
    def config_specs(self) -> list[Any]:
        return list(self.inner.config_specs)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._enter("get_tuple")
        return self.inner.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        self._enter("list")
        return iter([*self.inner.list(config, filter=filter, before=before, limit=limit)])

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._enter("put")
        return self.inner.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._enter("put_writes")
        self.inner.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._enter("delete_thread")
        self.inner.delete_thread(thread_id)

    # ---- the saver, async: a blocked call waits in a thread, never blocking the loop

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self._aenter("get_tuple")
        result: CheckpointTuple | None = await self._ainner("get_tuple", config)
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        await self._aenter("list")
        kwargs = {"filter": filter, "before": before, "limit": limit}
        for item in await self._ainner("list", config, **kwargs):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._aenter("put")
        result: RunnableConfig = await self._ainner(
            "put", config, checkpoint, metadata, new_versions
        )
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._aenter("put_writes")
        await self._ainner("put_writes", config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._aenter("delete_thread")
        await self._ainner("delete_thread", thread_id)

    def __repr__(self) -> str:
        state = "blocking" if self._blocking else "failing" if self.failing else "healthy"
        return f"FaultySaver({type(self.inner).__name__}, {state})"

    # ---- the fault

    def _enter(self, method: str) -> None:
        self._raise_if_failing(method)
        if method in self._blocking:
            self.blocked.set()
            self._gate.wait()  # a frozen server: until release()

    async def _aenter(self, method: str) -> None:
        self._raise_if_failing(method)
        if method in self._blocking:
            self.blocked.set()
            await asyncio.to_thread(self._gate.wait)  # abandoned at a deadline, never stuck

    def _raise_if_failing(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1
            error = self._error if method in self._methods else None
            if error is not None and self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._error, self._times = None, None
        if error is not None:
            raise error

    async def _ainner(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """The real saver's async method, or its sync one in a thread (SqliteSaver)."""
        try:
            if method == "list":
                return [item async for item in self.inner.alist(*args, **kwargs)]
            return await getattr(self.inner, "a" + method)(*args, **kwargs)
        except NotImplementedError:
            sync = getattr(self.inner, method)
            if method == "list":
                return await asyncio.to_thread(lambda: [*sync(*args, **kwargs)])
            return await asyncio.to_thread(sync, *args, **kwargs)
