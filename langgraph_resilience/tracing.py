"""Annotate the current LangSmith run with the plugin's decisions.

Every decision worth seeing in a trace (a breaker opening, a call rejected, a fallback
taken, a gate's verdict, a loop limit, a dead letter, a checkpointer failover) calls
:func:`annotate` where it happens. With tracing on, the run of the node (or error
handler) that made the decision gets:

- an **event** ``langgraph_resilience.<name>`` with the decision's fields,
- a **tag** ``resilience:<name>``, so runs can be filtered by what happened,
- **metadata** ``resilience.<name>``: the latest fields of that kind of decision.

With tracing off there is no current run, and ``annotate`` returns at once.

Example:
    ```python
    from langgraph_resilience.tracing import annotate


    def answer_from_cache(state: dict) -> dict:
        # With tracing on, this node's run gets the event, the tag
        # "resilience:cache_used" and the metadata; with tracing off, nothing happens.
        annotate("cache_used", {"query": state["query"]})
        return {"answer": "from the cache"}


    answer_from_cache({"query": "tides"})
    ```
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import langsmith
from langsmith import get_current_run_tree
from langsmith.utils import tracing_is_enabled

__all__ = ["annotate", "annotate_event", "trace_event"]

PREFIX = "langgraph_resilience"


def annotate(name: str, data: dict[str, Any]) -> bool:
    """Add the decision ``name`` with ``data`` to the current LangSmith run.

    Returns whether there was a run to annotate (``False`` when tracing is off).
    """
    run = get_current_run_tree()  # a context-variable read: None unless tracing is on
    if run is None:
        return False
    fields = {key: _plain(value) for key, value in data.items()}
    run.add_event(
        {
            "name": f"{PREFIX}.{name}",
            "time": _now(),
            "kwargs": fields,
        }
    )
    run.add_tags([f"resilience:{name}"])
    run.add_metadata({f"resilience.{name}": fields})
    return True


def annotate_event(event: object) -> bool:
    """:func:`annotate` for a typed event (``BreakerOpened``, ``SaverFailedOver``...):
    the name is the event's ``kind`` (else its class name in snake case), the data its
    fields."""
    if get_current_run_tree() is None:
        return False  # skip checking and building the fields when nobody will see them
    return annotate(*_described(event))


def trace_event(event: object) -> bool:
    """:func:`annotate_event`, or, outside every run with tracing on, a short run of its
    own named ``langgraph_resilience.<kind>`` carrying the event.

    For decisions made where LangGraph keeps no run: the checkpointer is called from
    the graph's loop, outside the node runs, so a failover would otherwise reach no
    trace. Returns whether the event reached LangSmith.
    """
    if annotate_event(event):
        return True
    if not tracing_is_enabled():
        return False
    kind, data = _described(event)
    with langsmith.trace(f"{PREFIX}.{kind}", inputs=_plain(data), tags=[PREFIX]) as run:
        annotate(kind, data)  # the new run is the current one
        run.end(outputs={})
    return True


def _described(event: object) -> tuple[str, dict[str, Any]]:
    """An event's name in LangSmith and its fields."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        raise TypeError(f"annotate_event() takes an event dataclass, got {event!r}")
    data = {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}
    return getattr(type(event), "kind", None) or _snake(type(event).__name__), data


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _plain(value: Any) -> Any:
    """A JSON-friendly form: enums by value, infinities and others as text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return repr(value)
