"""An async face for a sync saver, so that async-only tools test its sync methods.

LangGraph's conformance suite calls only ``aput``, ``alist``, ... To run it against a
saver's *sync* methods, ``to_thread_shim(saver)`` returns an object whose ``a*`` methods
run the sync ones through ``asyncio.to_thread``. Its class is built with ``type(...)``
from ``BaseCheckpointSaver`` alone (it does not subclass the wrapped saver's class) and
defines only the ``a*`` methods whose sync counterpart the wrapped saver's class
overrides: the suite takes an overridden method to mean "supported", so a capability
the wrapped saver lacks stays undetected.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

__all__ = ["to_thread_shim"]


async def _aget_tuple(self: Any, config: RunnableConfig) -> CheckpointTuple | None:
    return await asyncio.to_thread(self.inner.get_tuple, config)


async def _alist(
    self: Any,
    config: RunnableConfig | None,
    *,
    filter: dict[str, Any] | None = None,
    before: RunnableConfig | None = None,
    limit: int | None = None,
) -> AsyncIterator[CheckpointTuple]:
    def collect() -> list[CheckpointTuple]:
        return list(self.inner.list(config, filter=filter, before=before, limit=limit))

    for item in await asyncio.to_thread(collect):
        yield item


async def _aput(
    self: Any,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
) -> RunnableConfig:
    return await asyncio.to_thread(self.inner.put, config, checkpoint, metadata, new_versions)


async def _aput_writes(
    self: Any,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str = "",  # declared: LangGraph passes it only to savers that name it
) -> None:
    await asyncio.to_thread(self.inner.put_writes, config, writes, task_id, task_path)


async def _adelete_thread(self: Any, thread_id: str) -> None:
    await asyncio.to_thread(self.inner.delete_thread, thread_id)


async def _adelete_for_runs(self: Any, run_ids: Sequence[str]) -> None:
    await asyncio.to_thread(self.inner.delete_for_runs, run_ids)


async def _acopy_thread(self: Any, source_thread_id: str, target_thread_id: str) -> None:
    await asyncio.to_thread(self.inner.copy_thread, source_thread_id, target_thread_id)


async def _aprune(self: Any, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
    await asyncio.to_thread(self.inner.prune, thread_ids, strategy=strategy)


def _get_next_version(self: Any, current: Any, channel: None) -> Any:
    return self.inner.get_next_version(current, channel)


# sync method -> the async method that runs it in a thread
_ASYNC_FRONTS: dict[str, Callable[..., Any]] = {
    "get_tuple": _aget_tuple,
    "list": _alist,
    "put": _aput,
    "put_writes": _aput_writes,
    "delete_thread": _adelete_thread,
    "delete_for_runs": _adelete_for_runs,
    "copy_thread": _acopy_thread,
    "prune": _aprune,
}


def overridden(saver: BaseCheckpointSaver[Any], method: str) -> bool:
    """Whether ``saver``'s class (``ResilientSaver``'s dynamic one included) overrides
    ``BaseCheckpointSaver.<method>``."""
    return getattr(type(saver), method) is not getattr(BaseCheckpointSaver, method)


def to_thread_shim(saver: BaseCheckpointSaver[Any]) -> BaseCheckpointSaver[Any]:
    """``saver`` behind ``a*`` methods that run its sync methods in a worker thread."""
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": f"{type(saver).__name__}'s sync methods, run through asyncio.to_thread.",
        "get_next_version": _get_next_version,
    }
    for method, front in _ASYNC_FRONTS.items():
        if overridden(saver, method):
            attrs["a" + method] = front
    cls = type(f"ToThread{type(saver).__name__}", (BaseCheckpointSaver,), attrs)
    shim = cls(serde=saver.serde)
    shim.inner = saver
    return shim
