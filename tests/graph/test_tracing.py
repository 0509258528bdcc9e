"""With LangSmith tracing on, a guarded node's run names its breaker (no network)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any, TypedDict

import langsmith as ls
import pytest
from langgraph.graph import END, START, StateGraph
from langsmith import Client

from langgraph_resilience import CircuitBreaker, InMemoryBreakerStore, guard


class CapturingClient(Client):
    """Records what the tracer hands to the client, instead of sending it."""

    def __init__(self) -> None:
        super().__init__(
            api_url="http://capture.invalid", api_key="x", auto_batch_tracing=False, info={}
        )
        self.ops: list[dict[str, Any]] = []

    def create_run(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.ops.append(copy.deepcopy(kwargs))

    def update_run(self, run_id: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.ops.append(copy.deepcopy({"id": run_id, **kwargs}))

    def runs_named(self, name: str) -> list[dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for op in self.ops:
            merged.setdefault(str(op["id"]), {}).update({k: v for k, v in op.items() if v})
        return [run for run in merged.values() if run.get("name") == name]


@pytest.fixture
def traced() -> Iterator[CapturingClient]:
    client = CapturingClient()
    with ls.tracing_context(client=client, enabled=True, project_name="unit"):
        yield client


class State(TypedDict, total=False):
    x: int


def test_guarded_node_run_carries_the_breaker_name(
    traced: CapturingClient, store: InMemoryBreakerStore
) -> None:
    def work(state: State) -> State:
        return {"x": 1}

    builder = StateGraph(State)
    builder.add_node("work", guard(work, breaker=CircuitBreaker("search", store=store)))
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    builder.compile().invoke({"x": 0})
    (run,) = traced.runs_named("work")
    assert run["extra"]["metadata"]["langgraph_resilience"] == {
        "breaker": "search",
        "timeout": None,
    }
