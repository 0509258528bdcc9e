"""Fallback routes: ``fallback_to`` error handlers and the ``route_on_outcome`` edge.

Built on LangGraph's own mechanism: a node's ``error_handler=`` runs after its retries
are spent and returns ``Command(goto=...)``. ``fallback_to`` picks the first usable
target of a chain, records the failure in the ledger and marks the run degraded.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from langchain_core.runnables import RunnableConfig
from langgraph.errors import NodeError
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from langgraph_resilience.breaker import CircuitBreaker, is_async_callable
from langgraph_resilience.core.events import (
    BreakerState,
    FallbackSkipped,
    FallbacksSpent,
    FallbackTaken,
)
from langgraph_resilience.core.failures import (
    error_code,
    error_name,
    revive_error,
)
from langgraph_resilience.core.ledger import Ledger, LimitRecord, OutcomeStatus, merge_ledgers
from langgraph_resilience.core.policy import ExceptionMatcher, compile_matcher
from langgraph_resilience.errors import LoopLimitExceeded
from langgraph_resilience.events import publish
from langgraph_resilience.graph._context import (
    METADATA_KEY,
    Step,
    ledger_of_run,
    node_exists,
    surfaced,
    visit,
    with_ledger_update,
    without_ledger_update,
)
from langgraph_resilience.graph.state import ledger
from langgraph_resilience.stores.memory import default_breaker_store

__all__ = ["ErrorHandler", "fallback_to", "route_on_outcome"]

logger = logging.getLogger("langgraph_resilience.fallback")

ErrorHandler: TypeAlias = Callable[..., Any]
"""A LangGraph error handler: ``(state, error: NodeError, [config], [runtime]) -> update``."""


def fallback_to(
    *targets: str,
    on: ExceptionMatcher = Exception,
    raise_on: ExceptionMatcher = (),
    breakers: Mapping[str, CircuitBreaker | str] | None = None,
    dead_letter: ErrorHandler | None = None,
    update: Callable[[Any, BaseException], Mapping[str, Any]] | None = None,
) -> ErrorHandler:
    """An ``error_handler`` that sends a failed node's run to the first usable fallback.

    Declare a chain once and give the same handler to every link: when a target fails
    in turn, the run continues with the targets after it.

    Example:
        ```python
        from langgraph.graph import START, StateGraph
        from langgraph_resilience import CircuitBreaker, ResilienceState, fallback_to, guard

        class State(ResilienceState):
            notes: str

        def search_api(state: State) -> dict:
            raise ConnectionError("search API down")

        def search_mirror(state: State) -> dict:
            raise ConnectionError("mirror down too")

        def cached_notes(state: State) -> dict:
            return {"notes": "from the cache"}

        research = fallback_to("search_mirror", "cached_notes")
        builder = StateGraph(State)
        builder.add_node("search_api", guard(search_api), error_handler=research)
        builder.add_node("search_mirror", guard(search_mirror), error_handler=research)
        builder.add_node("cached_notes", guard(cached_notes))
        builder.add_edge(START, "search_api")
        final = builder.compile().invoke({})
        assert final["notes"] == "from the cache"
        assert final["resilience"]["degraded"]
        ```

    Args:
        *targets: node names, in the order to try them.
        on: errors that fall back (types or predicates); others surface.
        raise_on: errors that always surface, even if ``on`` matches them.
        breakers: a breaker per target (or a breaker name). A target whose breaker is
            open is skipped (recorded as ``skipped``) without a wasted step. Targets
            not listed are looked up by node name among the process-wide breakers.
        dead_letter: an error handler to hand the failure to when the chain is
            exhausted (the dead-letter sink); without one the error surfaces.
        update: ``(state, error) -> dict``: extra state to write with the route, such
            as a note for the user.

    Errors are classified by type even after a resume, when LangGraph hands the
    handler the error's ``repr`` instead of the exception: the exception is rebuilt
    from its class name. The ledger (when the state has one) gets the failed node's
    outcome (``failed``, or ``skipped`` if its breaker was open), its error, error
    code, attempts and duration, ``fallback_used``, and ``degraded`` is set.

    Raises:
        ValueError: no targets, a target named twice, or ``END`` among them; at run
            time, a target that is not a node of the graph.
    """
    if not targets:
        raise ValueError("fallback_to() needs at least one target node name")
    for target in targets:
        if not isinstance(target, str) or not target:
            raise TypeError(f"fallback_to() targets are node names, got {target!r}")
        if target == END:
            raise ValueError("END is not a fallback: use dead_letter= or let the error surface")
    if len(set(targets)) != len(targets):
        raise ValueError(f"fallback_to() names a target twice: {targets!r}")
    falls_back = compile_matcher(on, field="fallback_to(on=...)")
    surfaces = compile_matcher(raise_on, field="fallback_to(raise_on=...)")
    given = dict(breakers or {})
    for key in given:
        if key not in targets:
            raise ValueError(f"fallback_to(breakers=...) names {key!r}, which is not a target")
    sink = _Sink(dead_letter) if dead_letter is not None else None
    chain = tuple(targets)

    def decide(state: Any, error: NodeError, config: RunnableConfig) -> tuple[Any, Ledger | None]:
        """The route to take (a ``Command``), or ``None`` with the record for the sink."""
        exc = revive_error(error.error)
        if surfaces(exc) or not falls_back(exc):
            raise surfaced(exc, error)
        for target in chain:
            if node_exists(config, target) is False:
                raise ValueError(
                    f"fallback_to(): target {target!r} is not a node of this graph; "
                    f"add it with builder.add_node({target!r}, ...)"
                )
        remaining = chain[chain.index(error.node) + 1 :] if error.node in chain else chain
        step = Step.of(config, node=error.node)
        record = (
            _failure_record(error.node, exc, step, config)
            if ledger_of_run(state, config) is not None
            else None
        )

        for target in remaining:
            if _is_open(given.get(target, target)):
                if record is not None and step is not None:
                    record = merge_ledgers(record, _skipped(target, step))
                    record["update"] = True
                logger.info("fallback %r skipped: its breaker is open", target)
                publish(FallbackSkipped(node=error.node, target=target))
                continue
            logger.info(
                "node %r failed (%s); falling back to %r", error.node, error_name(exc), target
            )
            publish(FallbackTaken(node=error.node, target=target, error=error_name(exc)))
            return _route(target, record, update(state, exc) if update else None), record

        if sink is None:
            raise surfaced(exc, error)
        logger.warning("node %r failed and its fallbacks are spent: dead-lettering", error.node)
        publish(FallbacksSpent(node=error.node, error=error_name(exc)))
        return None, record

    def handle(state: Any, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        route, record = decide(state, error, config)
        if route is not None or sink is None:
            return route
        return _with_record(sink(state, error, config, runtime), record)

    async def ahandle(
        state: Any, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Any:
        route, record = decide(state, error, config)
        if route is not None or sink is None:
            return route
        return _with_record(await sink(state, error, config, runtime), record)

    if sink is not None and sink.is_async:
        # LangGraph runs an async handler under ainvoke/astream only, like any async node.
        handle = ahandle
    handle.__name__ = f"fallback_to_{'_'.join(chain)}"
    handle.__qualname__ = handle.__name__
    handle.fallback_targets = chain  # type: ignore[attr-defined]
    return handle


def _with_record(result: Any, record: Ledger | None) -> Any:
    """The sink's result carrying this chain's record of the failure (which says more
    than the sink's own: the fallbacks tried and skipped) instead of the sink's."""
    if record is None:
        return result
    return with_ledger_update(without_ledger_update(result), record)


def _failure_record(
    node: str, exc: BaseException, step: Step | None, config: RunnableConfig
) -> Ledger | None:
    if step is None:
        return None
    # What guard() left in the failed task's metadata (LangGraph derives the handler's
    # config from it); absent after a resume in another process.
    details = (config.get("metadata") or {}).get(METADATA_KEY) or {}
    code = error_code(exc)
    status: OutcomeStatus = "skipped" if code == "CIRCUIT_OPEN" else "failed"
    record = visit(
        step,
        status=status,
        error_code=code,
        error=f"{error_name(exc)}: {exc}",
        attempts=int(details.get("attempts", 1)),
        duration_ms=float(details.get("duration_ms", 0.0)),
        fallback_used=True,
    )
    record["degraded"] = True
    if isinstance(exc, LoopLimitExceeded):
        limit: LimitRecord = {
            "node": node,
            "limit": exc.limit,
            "count": exc.count,
            "maximum": exc.maximum,
            "routed_to": None,
            "step": step.id,
        }
        record["limits"] = [limit]
    return record


def _skipped(target: str, step: Step) -> Ledger:
    skipped = visit(
        step, status="skipped", error_code="CIRCUIT_OPEN", error="its breaker is open", node=target
    )
    # An outcome, not a visit: the skipped target never ran. It keeps the handler's
    # step id, which the failed node's visit puts in the ledger's steps, so a stale copy
    # coming back in a whole ledger is recognised.
    return {"update": True, "outcomes": skipped["outcomes"]}


def _is_open(breaker: CircuitBreaker | str) -> bool:
    if isinstance(breaker, CircuitBreaker):
        return breaker.state is BreakerState.OPEN
    existing = default_breaker_store().get(breaker)
    return existing is not None and existing.state() is BreakerState.OPEN


def _route(target: str, record: Ledger | None, extra: Mapping[str, Any] | None) -> Command[Any]:
    changes: dict[str, Any] = dict(extra or {})
    if record is not None:
        changes = with_ledger_update(changes, record)
    return Command(goto=target, update=changes or None)


class _Sink:
    """Calls the dead-letter handler with the arguments its signature asks for."""

    def __init__(self, handler: ErrorHandler) -> None:
        if not callable(handler):
            raise TypeError(f"dead_letter must be an error handler (a callable), got {handler!r}")
        try:
            params = inspect.signature(handler).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        if "error" not in params:
            raise TypeError(
                "dead_letter must take the failure as a parameter named `error` "
                "(LangGraph's error-handler convention: `def sink(state, error: NodeError)`)"
            )
        self.handler = handler
        self.is_async = is_async_callable(handler)
        self.wants_config = "config" in params
        self.wants_runtime = "runtime" in params

    def __call__(
        self, state: Any, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Any:
        kwargs: dict[str, Any] = {"error": error}
        if self.wants_config:
            kwargs["config"] = config
        if self.wants_runtime:
            kwargs["runtime"] = runtime
        return self.handler(state, **kwargs)


def route_on_outcome(
    node: str,
    *,
    success: str,
    failed: str,
    partial: str | None = None,
    skipped: str | None = None,
    degraded: str | None = None,
) -> Callable[[Any], str]:
    """A conditional-edge path function that routes on ``node``'s outcome in the ledger.

    For graphs that route with edges instead of handlers: for example, a review step
    after a node whose failures ``fallback_to`` recorded.

    Example:
        ```python
        from langgraph_resilience import route_on_outcome

        route = route_on_outcome("research", success="write", failed="apologise")
        state = {"resilience": {"outcomes": {"research": {"status": "failed"}}}}
        assert route(state) == "apologise"
        ```

    Args:
        node: whose latest outcome decides.
        success: where to go when it succeeded.
        failed: where to go when it failed.
        partial: where to go when it partly worked; defaults to ``success``.
        skipped: where to go when it was skipped (breaker open); defaults to ``failed``.
        degraded: where to go instead of ``success`` when the run is degraded
            (some fallback was used upstream).

    Raises:
        LedgerMissingError: at run time, when the state has no ledger.
        LookupError: at run time, when the ledger has no outcome for ``node``
            (it is not wrapped with ``guard()`` and has no ``fallback_to`` handler).
    """
    routes: dict[str, str] = {
        "success": success,
        "failed": failed,
        "partial": partial or success,
        "skipped": skipped or failed,
    }
    for key, value in (*routes.items(), ("degraded", degraded)):
        if value is not None and (not isinstance(value, str) or not value):
            raise TypeError(f"route_on_outcome({key}=...) takes a node name, got {value!r}")

    def route(state: Any) -> str:
        view = ledger(state)
        status = view.status(node)
        if status is None:
            raise LookupError(
                f"route_on_outcome: the ledger has no outcome for {node!r}; wrap it with "
                "guard() so its visits are recorded"
            )
        if status == "success" and degraded is not None and view.degraded:
            return degraded
        return routes[status]

    route.__name__ = f"route_on_outcome_{node}"
    return route
