"""Helpers shared by the graph tests: run modes, sync/async nodes, checkpointers, configs."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

MODES = ["sync", "async"]
"""How a test runs its graph: ``invoke`` with sync nodes, or ``ainvoke`` with async ones."""

# Before Python 3.11 asyncio cannot start a task in a given context, so LangGraph's config
# does not reach async nodes: interrupt() and get_config() fail there (a LangGraph
# limitation on 3.10, not the library's).
needs_async_context = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="async nodes see the run's config only on Python 3.11+"
)
CONTEXT_MODES = ["sync", pytest.param("async", marks=needs_async_context)]
"""MODES, with "async" skipped where async nodes cannot see the run's config."""


async def run(graph: Any, mode: str, inp: Any, config: RunnableConfig | None = None) -> Any:
    """Run ``graph`` on ``inp`` with ``invoke`` ("sync") or ``ainvoke`` ("async")."""
    if mode == "sync":
        return graph.invoke(inp, config)
    return await graph.ainvoke(inp, config)


def node_pair(body: Callable[[Any], dict[str, Any]], mode: str) -> Callable[..., Any]:
    """The same node body as a sync or an async function."""
    if mode == "sync":

        def sync_node(state: Any) -> dict[str, Any]:
            return body(state)

        return sync_node

    async def async_node(state: Any) -> dict[str, Any]:
        return body(state)

    return async_node


def thread(name: str) -> RunnableConfig:
    """A run config for the checkpointer thread ``name``."""
    return {"configurable": {"thread_id": name}}


@asynccontextmanager
async def sqlite_saver(mode: str, path: Path) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """A SQLite checkpointer on ``path``: SqliteSaver for "sync", AsyncSqliteSaver for "async"."""
    if mode == "sync":
        with SqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
    else:
        async with AsyncSqliteSaver.from_conn_string(str(path)) as asaver:
            yield asaver
