"""Where a wrapper runs, and how it writes the ledger: the one place that reads
LangGraph's run config and Command objects.

A wrapper learns its node's name, the step id (the task id, stable across retries and
resume) and its graph depth from the config LangGraph injects; it adds its ledger
update to whatever the node returns.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph._internal._constants import CONFIG_KEY_READ, CONFIG_KEY_RUNTIME, CONFIG_KEY_SEND
from langgraph.errors import EmptyChannelError, NodeError
from langgraph.graph import END
from langgraph.types import Command

from langgraph_resilience.core.failures import RecordedError, error_name
from langgraph_resilience.core.ledger import (
    Ledger,
    Outcome,
    OutcomeStatus,
    SuccessfulVisit,
    expand_visit,
    merge_ledgers,
)
from langgraph_resilience.errors import LedgerMissingError

METADATA_KEY = "langgraph_resilience"
"""Key of the plugin's entry in ``config["metadata"]`` (set by ``guard`` on failure)."""

LEDGER_KEY = "resilience"
"""The state key ``ResilienceState`` adds."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})  # a default that allocates nothing

_HANDLER_PREFIXES = ("__error_handler__", "__default_error_handler__")

MISSING_LEDGER_HINT = (
    "add the ledger to the graph's state schema: "
    "`class State(ResilienceState): ...` (from langgraph_resilience import ResilienceState); "
    "a node whose first parameter is annotated with a narrower schema is given only that "
    "schema's keys"
)


class Step:
    """One task of a run, as a wrapper sees it."""

    __slots__ = ("depth", "id", "node")

    node: str
    """The graph node's name (``config["metadata"]["langgraph_node"]``)."""
    id: str
    """The task id: the same on every retry and on resume, different per visit."""
    depth: int
    """Graph level: 1 for the top graph, 2 inside a subgraph node, and so on."""

    def __init__(self, node: str, id: str, depth: int) -> None:
        self.node, self.id, self.depth = node, id, depth

    def __repr__(self) -> str:
        return f"Step(node={self.node!r}, id={self.id!r}, depth={self.depth})"

    @classmethod
    def of(cls, config: RunnableConfig | None, *, node: str | None = None) -> Step | None:
        if not config:
            return None
        ns: str = (config.get("configurable") or _EMPTY).get("checkpoint_ns", "")
        if not ns:
            return None
        name = node or (config.get("metadata") or _EMPTY).get("langgraph_node")
        if not name:
            return None
        last = ns[ns.rfind("|") + 1 :]  # "node:task_id", the innermost segment
        depth = ns.count("|") + 1
        if depth > 1 and last.startswith(_HANDLER_PREFIXES):
            depth -= 1  # a handler runs in its failed task's namespace, at the same level
        return cls(name, last[last.rfind(":") + 1 :] or last, depth)


def field_of(state: Any, name: str) -> Any:
    """``state[name]`` for dict states, ``state.name`` for pydantic or dataclass ones."""
    if type(state) is dict or isinstance(state, Mapping):
        return state.get(name)
    return getattr(state, name, None)


def ledger_in(state: Any) -> Ledger | None:
    """The ledger in ``state``, or ``None`` when the state schema has none."""
    value = field_of(state, LEDGER_KEY)
    return cast(Ledger, value) if isinstance(value, dict) else None


def ledger_of_run(state: Any, config: RunnableConfig | None) -> Ledger | None:
    """The ledger in ``state``, else the one in the running graph's channels.

    A node whose first parameter is annotated with a narrower schema (LangGraph takes
    the node's input schema from it) is not given the ``resilience`` key even when the
    graph's state has it; the channel still holds it.
    """
    ledger = ledger_in(state)
    if ledger is not None:
        return ledger
    read = ((config or _EMPTY).get("configurable") or _EMPTY).get(CONFIG_KEY_READ)
    if read is None:
        return None
    try:
        value = read(LEDGER_KEY)
    except (KeyError, EmptyChannelError):  # the graph has no ledger
        return None
    return cast(Ledger, value) if isinstance(value, dict) else None


def hides_ledger(fn: Callable[..., Any]) -> bool:
    """Whether ``fn``'s first parameter is annotated with a schema that lacks the ledger.

    Such a node is given only its schema's keys; wrappers then look for the ledger in
    the graph's channels (see :func:`ledger_of_run`).
    """
    try:
        first = next(iter(inspect.signature(fn).parameters), None)
        hint = typing.get_type_hints(fn).get(first) if first is not None else None
    except Exception:  # unresolvable annotations: assume the node gets the whole state
        return False
    if not isinstance(hint, type):
        return False
    fields = getattr(hint, "model_fields", None) or getattr(hint, "__dataclass_fields__", None)
    if fields is None and typing.is_typeddict(hint):
        fields = hint.__annotations__
    return fields is not None and LEDGER_KEY not in fields


def require_ledger(state: Any, feature: str, config: RunnableConfig | None = None) -> Ledger:
    ledger = ledger_of_run(state, config)
    if ledger is None:
        raise LedgerMissingError(
            f"{feature} keeps its counts in the run's ledger: {MISSING_LEDGER_HINT}"
        )
    return ledger


def attempt_of(config: RunnableConfig | None) -> int:
    """The current attempt under LangGraph's ``RetryPolicy`` (1-based)."""
    runtime = ((config or _EMPTY).get("configurable") or _EMPTY).get(CONFIG_KEY_RUNTIME)
    info = getattr(runtime, "execution_info", None)
    return int(getattr(info, "node_attempt", 1) or 1)


def visit(
    step: Step,
    *,
    status: OutcomeStatus,
    duration_ms: float = 0.0,
    attempts: int = 1,
    error_code: str | None = None,
    error: str | None = None,
    fallback_used: bool = False,
    node: str | None = None,
) -> Ledger:
    """A ledger update recording one visit of ``node`` (default: the step's own node)."""
    name = node or step.node
    outcome: Outcome = {
        "status": status,
        "error_code": error_code,
        "error": error,
        "attempts": attempts,
        "fallback_used": fallback_used,
        "duration_ms": duration_ms,
        "step": step.id,
    }
    return {
        "update": True,
        "path": [name],
        "steps": [step.id],
        "outcomes": {name: outcome},
        "depth": step.depth,
    }


def with_ledger_update(result: Any, update: Ledger | SuccessfulVisit) -> Any:
    """``result`` (what a node returned) with ``update`` added for the ledger key.

    Handles ``None``, dict updates and ``Command(update=...)``. Other results (a
    pydantic model, a list of commands) are returned unchanged: the visit is not
    recorded, and the node's own update is never altered.
    """
    if result is None:
        return {LEDGER_KEY: update}
    if isinstance(result, dict):
        if LEDGER_KEY not in result:
            return {**result, LEDGER_KEY: update}
        return {**result, LEDGER_KEY: _combine(result[LEDGER_KEY], update)}
    if isinstance(result, Command) and result.graph is None:
        inner = result.update
        if inner is None:
            new: Any = {LEDGER_KEY: update}
        elif isinstance(inner, dict):
            new = {**inner, LEDGER_KEY: _combine(inner.get(LEDGER_KEY), update)}
        elif isinstance(inner, Sequence) and not isinstance(inner, str):
            new = [*inner, (LEDGER_KEY, update)]
        else:
            return result
        return dataclasses.replace(result, update=new)
    return result


def without_ledger_update(result: Any) -> Any:
    """``result`` without a ledger update of its own (a handler's, to be replaced)."""
    if isinstance(result, dict) and LEDGER_KEY in result:
        return {k: v for k, v in result.items() if k != LEDGER_KEY}
    if (
        isinstance(result, Command)
        and isinstance(result.update, dict)
        and LEDGER_KEY in result.update
    ):
        stripped = {k: v for k, v in result.update.items() if k != LEDGER_KEY}
        return dataclasses.replace(result, update=stripped or None)
    return result


def _combine(value: Any, update: Ledger | SuccessfulVisit) -> Ledger | SuccessfulVisit:
    if isinstance(value, list):
        value = expand_visit(value)
    if not isinstance(value, dict) or not value:
        return update
    if isinstance(update, list):
        update = expand_visit(update)
    existing = cast(Ledger, value)
    if set(update.get("steps", ())) & set(existing.get("steps", ())):
        return existing  # an inner wrapper already recorded this step (nested guards)
    if existing.get("update"):
        combined = merge_ledgers(existing, update)
        combined["update"] = True
        return combined
    return merge_ledgers(existing, update)  # a whole ledger: stays whole, plus this visit


def write_from_router(config: RunnableConfig | None, update: Ledger) -> bool:
    """Write a ledger update from a conditional-edge function.

    A path function runs inside its source node's task, so it can add writes to that
    task the way LangGraph's own channel writers do. Returns ``False`` outside a run.
    """
    send = ((config or _EMPTY).get("configurable") or _EMPTY).get(CONFIG_KEY_SEND)
    if send is None:
        return False
    send([(LEDGER_KEY, update)])
    return True


def node_exists(config: RunnableConfig | None, name: str) -> bool | None:
    """Whether ``name`` is a node of the running graph; ``None`` when it cannot tell.

    LangGraph silently ignores a ``goto`` to an unknown node (it logs "wrote to unknown
    channel"), so routes are checked here. Every node of a compiled ``StateGraph`` has a
    ``branch:to:<name>`` channel; reading one that does not exist raises ``KeyError``.
    """
    if name == END:
        return True
    read = ((config or _EMPTY).get("configurable") or _EMPTY).get(CONFIG_KEY_READ)
    if read is None:
        return None
    try:
        read(f"branch:to:{name}")
    except EmptyChannelError:
        return True
    except KeyError:
        return False
    except Exception:  # a LangGraph change: do not block the run
        return None
    return True


def takes_parameter(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn``'s signature has a parameter called ``name``."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def surfaced(exc: BaseException, error: NodeError) -> BaseException:
    """The error to raise from the handler so that the caller sees it.

    Not the very object LangGraph handed over: LangGraph remembers the errors it gave to
    a handler (by identity) and would then save the thread as finished, so a resume
    would not retry the failed node.
    """
    if exc is not error.error:
        return exc
    try:
        fresh = copy.copy(exc)
    except Exception:  # an exception that cannot be rebuilt from its args
        fresh = RecordedError(error_name(exc), str(exc))
    fresh.__cause__, fresh.__context__ = exc.__cause__, exc.__context__
    return fresh.with_traceback(exc.__traceback__)
