"""``guard``: put a circuit breaker, a per-attempt deadline, loop limits and the run's
ledger around a graph node.

The wrapper keeps the node's signature (so LangGraph still injects ``config``,
``runtime``, ``store``) and its sync or async nature. It composes with LangGraph's own
policies: each ``retry_policy`` attempt goes through the breaker, an open breaker raises
``CircuitOpenError`` (a ``RuntimeError``, which the default ``RetryPolicy`` does not
retry), and an ``error_handler`` receives that error through ``NodeError``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar, cast

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph._internal._runnable import RunnableCallable
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langsmith import get_current_run_tree

from langgraph_resilience._deadline import await_with_deadline, call_with_deadline
from langgraph_resilience.breaker import CircuitBreaker, is_async_callable
from langgraph_resilience.core.clock import MonotonicClock, to_seconds
from langgraph_resilience.core.events import LoopLimitReached, NodeFailed, NodeSucceeded
from langgraph_resilience.core.failures import error_code
from langgraph_resilience.core.ledger import LedgerView, successful_visit
from langgraph_resilience.core.loops import LoopPolicy
from langgraph_resilience.errors import AttemptTimeoutError, LoopLimitExceeded
from langgraph_resilience.events import hub, publish
from langgraph_resilience.graph._context import (
    METADATA_KEY,
    Step,
    attempt_of,
    hides_ledger,
    ledger_in,
    ledger_of_run,
    require_ledger,
    takes_parameter,
    with_ledger_update,
)
from langgraph_resilience.stores.base import BreakerCell
from langgraph_resilience.stores.memory import default_breaker_store

__all__ = ["guard"]

NodeT = TypeVar("NodeT")


def guard(
    node: NodeT,
    *,
    breaker: CircuitBreaker | str | None = None,
    timeout: float | timedelta | None = None,
    loop: LoopPolicy | None = None,
    name: str | None = None,
) -> NodeT:
    """Wrap a node (function, async function or runnable) for ``StateGraph.add_node``.

    Example:
        ```python
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import RetryPolicy
        from langgraph_resilience import BreakerPolicy, CircuitBreaker, guard

        researcher = CircuitBreaker("researcher", BreakerPolicy(failure_threshold=3))

        def research(state: dict) -> dict:
            return {"notes": "..."}

        builder = StateGraph(dict)
        builder.add_node(
            "research",
            guard(research, breaker=researcher, timeout=20),
            retry_policy=RetryPolicy(max_attempts=3),  # each attempt is recorded
        )
        ```

    When the state has the run's ledger (``ResilienceState``), every successful visit is
    recorded there: visits, path, and the node's outcome with its attempts and duration.
    ``guard(node)`` with no other argument does only that.

    Args:
        node: the node to wrap.
        breaker: a ``CircuitBreaker``, or a name (the process-wide breaker of that name).
            While it is open the node is not called and ``CircuitOpenError`` is raised.
            ``None`` wraps without a breaker.
        timeout: a deadline per attempt, in seconds, for sync and async nodes alike. An
            async attempt is cancelled at the deadline; a sync one keeps running in its
            worker thread, abandoned (its result is dropped). Either way
            ``AttemptTimeoutError`` is raised and counts as a failure.
        loop: a safety net against runaway loops: entering the node beyond the policy's
            limits raises ``LoopLimitExceeded`` (before the breaker is asked, so it is
            not counted against the dependency). Needs the ledger in the state.
        name: the name used in errors; defaults to the function's name.

    Interrupts and ``Command(graph=PARENT)`` (LangGraph's ``GraphBubbleUp``) pass
    through untouched and are never counted; neither is a cancelled async attempt.

    Raises:
        TypeError: ``node`` is not callable or a runnable, or ``loop`` is not a
            ``LoopPolicy``.
        ValueError: ``timeout`` is not a positive duration.
    """
    if isinstance(breaker, str):
        # The process-wide breaker of that name, whatever its policy; a new one with the
        # default policy if there is none yet.
        existing = default_breaker_store().get(breaker)
        breaker = CircuitBreaker(breaker, existing.policy if existing is not None else None)
    elif breaker is not None and not isinstance(breaker, CircuitBreaker):
        raise TypeError(f"breaker must be a CircuitBreaker, a name or None, got {breaker!r}")
    if loop is not None and not isinstance(loop, LoopPolicy):
        raise TypeError(f"loop must be a LoopPolicy or None, got {loop!r}")
    deadline = None if timeout is None else to_seconds(timeout, field="timeout", allow_zero=False)

    if isinstance(node, Runnable):
        runnable: Runnable[Any, Any] = node
        label = name or runnable.get_name()
        core = _Guard(breaker, deadline, loop, label)

        def invoke(state: Any, config: RunnableConfig) -> Any:
            return runnable.invoke(state, config)

        async def ainvoke(state: Any, config: RunnableConfig) -> Any:
            return await runnable.ainvoke(state, config)

        # Untraced, as LangGraph wraps a plain function: the node's run is the guard's,
        # so breaker events land on it and the runnable's own run is its child.
        wrapped = RunnableCallable(
            _guard_sync(invoke, core, strip_config=False),
            _guard_async(ainvoke, core, strip_config=False),
            name=label,
            trace=False,
        )
        return cast(NodeT, wrapped)

    if not callable(node):
        raise TypeError(
            f"guard() wraps a node function, an async function or a runnable, got {node!r}"
        )
    label = name or getattr(node, "__name__", None) or type(node).__name__
    core = _Guard(breaker, deadline, loop, label, hides_ledger=hides_ledger(node))
    strip = not takes_parameter(node, "config")
    if is_async_callable(node):
        return cast(NodeT, _with_config(_guard_async(node, core, strip_config=strip), node, strip))
    return cast(NodeT, _with_config(_guard_sync(node, core, strip_config=strip), node, strip))


class _Guard:
    """The decisions around one call, shared by the sync and async fronts."""

    __slots__ = ("breaker", "cell", "deadline", "hides_ledger", "info", "label", "loop", "now")

    def __init__(
        self,
        breaker: CircuitBreaker | None,
        deadline: float | None,
        loop: LoopPolicy | None,
        label: str,
        *,
        hides_ledger: bool = False,
    ) -> None:
        self.hides_ledger = hides_ledger
        self.breaker = breaker.name if breaker is not None else None
        self.cell = breaker.cell if breaker is not None else _NO_BREAKER
        self.now = breaker.cell.now if breaker is not None else MonotonicClock().now
        self.deadline = deadline
        self.loop = loop
        self.label = label
        self.info = _info(breaker, deadline)

    def enter(self, state: Any, config: RunnableConfig | None) -> Step | None:
        """Check loop limits; the step to record in the ledger, if the run has one."""
        if self.loop is not None:
            ledger = require_ledger(state, "guard(loop=...)", config)
            step = Step.of(config)
            if step is not None:
                breach = self.loop.breach(LedgerView.of(ledger), step.node, depth=step.depth)
                if breach is not None:
                    publish(
                        LoopLimitReached(
                            node=step.node,
                            limit=breach.limit,
                            count=breach.count,
                            maximum=breach.maximum,
                            routed_to=None,  # the node raises LoopLimitExceeded
                        )
                    )
                    raise LoopLimitExceeded(
                        step.node,
                        limit=breach.limit,
                        count=breach.count,
                        maximum=breach.maximum,
                        detail=breach.describe(),
                    )
            return step
        if ledger_in(state) is None and not (
            self.hides_ledger and ledger_of_run(state, config) is not None
        ):
            return None
        return Step.of(config)

    def failed(
        self, exc: BaseException, config: RunnableConfig | None, started: float | None
    ) -> None:
        """Leave the failure's details where the node's error handler will look."""
        details = dict(self.info)
        details["attempts"] = attempt_of(config)
        details["error_code"] = error_code(exc)
        duration = None if started is None else self.now() - started
        if duration is not None:
            details["duration_ms"] = duration * 1000.0
        _tag_task(details, config)
        if hub.listeners and not isinstance(exc, GraphBubbleUp):
            hub.notify(
                NodeFailed(
                    node=self.node_of(config),
                    breaker=self.breaker,
                    duration=duration,
                    error=type(exc).__name__,
                )
            )

    def observe(self, config: RunnableConfig | None, started: float) -> None:
        """Tell the event hub's listeners (the health monitor) that an attempt returned."""
        hub.notify(
            NodeSucceeded(
                node=self.node_of(config), breaker=self.breaker, duration=self.now() - started
            )
        )

    def node_of(self, config: RunnableConfig | None) -> str:
        """The graph node this attempt runs as; the function's name outside a graph."""
        metadata = (config or {}).get("metadata") or {}
        node = metadata.get("langgraph_node")
        return node if isinstance(node, str) else self.label

    def succeeded(
        self, result: Any, step: Step, config: RunnableConfig | None, started: float
    ) -> Any:
        duration_ms = (self.now() - started) * 1000.0
        update = successful_visit(step.node, step.id, step.depth, attempt_of(config), duration_ms)
        return with_ledger_update(result, update)


def _guard_sync(fn: Callable[..., Any], core: _Guard, *, strip_config: bool) -> Callable[..., Any]:
    cell, deadline = core.cell, core.deadline
    timed_out = functools.partial(AttemptTimeoutError, core.label, deadline or 0.0)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        config = kwargs.pop("config", None) if strip_config else kwargs.get("config")
        step = core.enter(args[0] if args else None, config)
        _tag_trace(core.info)
        try:
            permit = cell.acquire()
        except BaseException as exc:
            core.failed(exc, config, None)  # the error handler's config is this task's
            raise
        timed = step is not None or cell.timed or bool(hub.listeners)
        started = core.now() if timed else 0.0
        try:
            if deadline is None:
                result = fn(*args, **kwargs)
            else:
                result = call_with_deadline(fn, args, kwargs, deadline, timed_out)
        except GraphBubbleUp:
            cell.release(permit)
            raise
        except BaseException as exc:
            core.failed(exc, config, started if timed else None)
            cell.record_error(permit, exc, started)
            raise
        cell.record_result(permit, result, started)
        if timed and hub.listeners:  # `started` is a reading only if the attempt was timed
            core.observe(config, started)
        if step is None:
            return result
        return core.succeeded(result, step, config, started)

    guarded.__langgraph_resilience__ = core.info  # type: ignore[attr-defined]
    return guarded


def _guard_async(
    fn: Callable[..., Awaitable[Any]], core: _Guard, *, strip_config: bool
) -> Callable[..., Awaitable[Any]]:
    cell, deadline = core.cell, core.deadline
    timed_out = functools.partial(AttemptTimeoutError, core.label, deadline or 0.0)

    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        config = kwargs.pop("config", None) if strip_config else kwargs.get("config")
        step = core.enter(args[0] if args else None, config)
        _tag_trace(core.info)
        try:
            permit = cell.acquire()
        except BaseException as exc:
            core.failed(exc, config, None)
            raise
        timed = step is not None or cell.timed or bool(hub.listeners)
        started = core.now() if timed else 0.0
        try:
            if deadline is None:
                result = await fn(*args, **kwargs)
            else:
                result = await await_with_deadline(fn(*args, **kwargs), deadline, timed_out)
        except (GraphBubbleUp, asyncio.CancelledError):
            # Interrupts are control flow; a cancelled attempt (a sibling failed, the run
            # was stopped) says nothing about this dependency's health.
            cell.release(permit)
            raise
        except BaseException as exc:
            core.failed(exc, config, started if timed else None)
            cell.record_error(permit, exc, started)
            raise
        cell.record_result(permit, result, started)
        if timed and hub.listeners:  # `started` is a reading only if the attempt was timed
            core.observe(config, started)
        if step is None:
            return result
        return core.succeeded(result, step, config, started)

    guarded.__langgraph_resilience__ = core.info  # type: ignore[attr-defined]
    return guarded


def _with_config(
    guarded: Callable[..., Any], node: Callable[..., Any], strip: bool
) -> Callable[..., Any]:
    """Give ``guarded`` the node's signature, plus a ``config`` parameter if it lacks one.

    LangGraph injects ``config`` by parameter name, so the wrapper always receives the
    run's config (which it needs for the ledger) and passes it on only if the node
    asked for it. This works on Python 3.10 too, where async nodes cannot read the
    config from a context variable.
    """
    if not strip:
        return guarded
    signature = _add_config_parameter(node)
    if signature is not None:
        guarded.__signature__ = signature  # type: ignore[attr-defined]
        annotations = dict(getattr(node, "__annotations__", {}))
        annotations["config"] = RunnableConfig
        guarded.__annotations__ = annotations
    return guarded


def _add_config_parameter(node: Callable[..., Any]) -> inspect.Signature | None:
    try:
        signature = inspect.signature(node)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())
    config = inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=RunnableConfig
    )
    at = next(
        (i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD),
        len(params),
    )
    params.insert(at, config)
    return signature.replace(parameters=params)


def _info(breaker: CircuitBreaker | None, deadline: float | None) -> dict[str, Any]:
    return {"breaker": breaker.name if breaker is not None else None, "timeout": deadline}


def _tag_task(details: dict[str, Any], config: RunnableConfig | None) -> None:
    """Put the guard's settings and the failure's details in ``config["metadata"]``.

    Done only when the attempt fails: LangGraph derives an error handler's config from
    the failed task's, so the handler sees
    ``config["metadata"]["langgraph_resilience"]`` (breaker, timeout, attempts,
    error_code, duration_ms).
    """
    if config is None:
        try:
            config = get_config()
        except RuntimeError:  # called outside a graph run
            return
    metadata = config.get("metadata")
    if metadata is not None:
        metadata[METADATA_KEY] = details


def _tag_trace(info: dict[str, Any]) -> None:
    """With LangSmith tracing on, the node's run carries the guard's settings."""
    run = get_current_run_tree()  # None unless tracing is on
    if run is not None:
        run.add_metadata({METADATA_KEY: info})


class _NoBreakerCell:
    """Stands in for a breaker's cell when the node has no breaker: admits everything."""

    __slots__ = ()
    timed = False

    def now(self) -> float:
        return 0.0

    def acquire(self) -> int:
        return 0

    def record_result(self, permit: int, result: Any, started: float) -> None:
        pass

    def record_error(self, permit: int, error: BaseException, started: float) -> None:
        pass

    def release(self, permit: int) -> None:
        pass


_NO_BREAKER = cast(BreakerCell, _NoBreakerCell())
