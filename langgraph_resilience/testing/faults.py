"""``FaultySaver``: a checkpointer that goes down when told to, for testing failover.

It wraps a real saver and, while it is *down*, raises the error you chose from every
call instead of reaching it; while it *hangs*, every call blocks until ``recover()``
(a frozen database). It counts the calls that reached it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

__all__ = ["FaultySaver"]


def _outage() -> BaseException:
    return ConnectionError("checkpoint store is down (injected by FaultySaver)")


class FaultySaver(BaseCheckpointSaver[Any]):
    """A saver that fails on demand.

    Example:
        ```python
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph_resilience.testing import FaultySaver

        primary = FaultySaver(InMemorySaver())
        primary.go_down()                   # every call raises ConnectionError
        try:
            primary.get_tuple({"configurable": {"thread_id": "t"}})
        except ConnectionError:
            pass
        primary.recover()                   # calls reach the real saver again
        assert primary.get_tuple({"configurable": {"thread_id": "t"}}) is None
        ```

    Args:
        inner: the real saver.
        error: makes the exception a call raises while the saver is down.
    """

    def __init__(
        self, inner: BaseCheckpointSaver[Any], *, error: Callable[[], BaseException] = _outage
    ) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        """The real saver."""
        self.calls: Counter[str] = Counter()
        """Calls that reached the real saver, by method (``put``, ``aput``...)."""
        self.refused: Counter[str] = Counter()
        """Calls refused while down or hung, by method."""
        self._error = error
        self._down = False
        self._fail_next = 0
        self._running = threading.Event()  # cleared while hung
        self._running.set()

    # ---- what a test does

    @property
    def down(self) -> bool:
        """Whether calls fail now."""
        return self._down

    def go_down(self, error: Callable[[], BaseException] | None = None) -> None:
        """Fail every call from now on (with ``error()`` if given) until ``recover()``."""
        if error is not None:
            self._error = error
        self._down = True

    def fail_next(self, calls: int = 1, error: Callable[[], BaseException] | None = None) -> None:
        """Fail only the next ``calls`` calls, then work again (a blip)."""
        if error is not None:
            self._error = error
        self._fail_next = calls

    def hang(self) -> None:
        """Block every call until ``recover()``: a frozen server."""
        self._running.clear()

    def recover(self) -> None:
        """Work again, and release the calls that hang."""
        self._down = False
        self._fail_next = 0
        self._running.set()

    # ---- the saver

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

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self._aenter("aget_tuple")
        return await self.inner.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        await self._aenter("alist")
        async for item in self.inner.alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self._aenter("aput")
        return await self.inner.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._aenter("aput_writes")
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._aenter("adelete_thread")
        await self.inner.adelete_thread(thread_id)

    def __repr__(self) -> str:
        state = "hung" if not self._running.is_set() else "down" if self._down else "up"
        return f"FaultySaver({self.inner!r}, {state})"

    # ---- the fault

    def _enter(self, method: str) -> None:
        if not self._running.is_set():
            self.refused[method] += 1
            self._running.wait()  # a frozen server: blocks until recover()
        self._check(method)

    async def _aenter(self, method: str) -> None:
        if not self._running.is_set():
            self.refused[method] += 1
            # Like a frozen socket under asyncio: the caller's task waits, the loop runs.
            while not self._running.is_set():
                await _a_moment()
        self._check(method)

    def _check(self, method: str) -> None:
        if self._down or self._fail_next > 0:
            if self._fail_next > 0:
                self._fail_next -= 1
            self.refused[method] += 1
            raise self._error()
        self.calls[method] += 1


async def _a_moment() -> None:
    await asyncio.sleep(0.01)  # polling a test switch, not breaker timing
