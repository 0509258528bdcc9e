"""``dead_letter``: an error handler that files the failure in a ``DeadLetterQueue``.

Use it on its own (``add_node(..., error_handler=dead_letter(dlq))``) or as the last
link of a fallback chain (``fallback_to(..., dead_letter=dead_letter(dlq))``).
"""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import NodeError
from langgraph.graph import END
from langgraph.runtime import Runtime
from langgraph.types import Command

from langgraph_resilience.core.events import DeadLettered
from langgraph_resilience.core.failures import error_code, error_name, revive_error
from langgraph_resilience.core.ledger import Ledger
from langgraph_resilience.core.policy import ExceptionMatcher, compile_matcher
from langgraph_resilience.dead_letter import REPLAY_KEY, DeadLetter, DeadLetterQueue
from langgraph_resilience.events import publish
from langgraph_resilience.graph._context import (
    METADATA_KEY,
    Step,
    ledger_of_run,
    node_exists,
    surfaced,
    visit,
    with_ledger_update,
)

__all__ = ["dead_letter"]

logger = logging.getLogger("langgraph_resilience.dead_letter")

RETRIABLE_CODES = frozenset({"CONNECTION", "TIMEOUT", "CIRCUIT_OPEN"})


def _transient(error: BaseException) -> bool:
    return error_code(error) in RETRIABLE_CODES


def dead_letter(
    dlq: DeadLetterQueue,
    *,
    then: str = END,
    retry_on: ExceptionMatcher = _transient,
    correlation_id: Callable[[Any, RunnableConfig], str | None] | None = None,
) -> Callable[..., Any]:
    """An ``error_handler`` that writes the failure to ``dlq`` and routes to ``then``.

    Example:
        ```python
        from langgraph.graph import START, StateGraph
        from langgraph_resilience import DeadLetterQueue, ResilienceState, dead_letter

        class State(ResilienceState):
            query: str

        def search(state: State) -> dict:
            raise ConnectionError("search API down")

        dlq = DeadLetterQueue.from_url("memory://")
        builder = StateGraph(State)
        builder.add_node("search", search, error_handler=dead_letter(dlq))
        builder.add_edge(START, "search")
        builder.compile().invoke({"query": "tides"})

        (letter,) = dlq.list()
        assert letter.node == "search" and letter.error_code == "CONNECTION"
        assert letter.next_attempt_at is not None  # a transient error: a drain retries it
        ```

    The letter holds the node's input (redacted, size-bounded), the error's type,
    message, traceback (when the exception itself is at hand: after a resume LangGraph
    keeps only its ``repr``), code and attempts, the run's thread, namespace, checkpoint
    and task, and the guard's details (breaker name). Writing it is idempotent:
    LangGraph may run a handler twice on resume, and the second run finds the first
    letter. The ledger records the node as ``failed`` and the run as degraded.

    Args:
        dlq: where to file the letter.
        then: where the run goes next (``END`` by default).
        retry_on: errors worth retrying later (types or predicates); their letters get
            a ``next_attempt_at`` for ``drain_retriable``. Others wait for a person. By
            default: connection errors, timeouts and open breakers.
        correlation_id: ``(state, config) -> str`` to tag the letter; by default the
            run's ``run_id`` when LangGraph provides one.
    """
    if not isinstance(dlq, DeadLetterQueue):
        raise TypeError(f"dead_letter() takes a DeadLetterQueue, got {dlq!r}")
    if not isinstance(then, str) or not then:
        raise TypeError(f"dead_letter(then=...) takes a node name or END, got {then!r}")
    retriable = compile_matcher(retry_on, field="dead_letter(retry_on=...)")

    def file_letter(
        state: Any, error: NodeError, config: RunnableConfig, runtime: Runtime[Any]
    ) -> Command[Any]:
        if node_exists(config, then) is False:
            raise ValueError(f"dead_letter(then={then!r}): {then!r} is not a node of this graph")
        if (config.get("configurable") or {}).get(REPLAY_KEY):
            # A replay of a letter failed again: the replay counts it on that letter.
            raise surfaced(revive_error(error.error), error)
        letter = dlq.put(_letter(state, error, config, runtime, retriable, dlq, correlation_id))
        logger.warning(
            "node %r failed (%s): dead-lettered as %s", error.node, letter.error_code, letter.id
        )
        publish(DeadLettered(node=error.node, letter=letter.id, error_code=letter.error_code))
        update: dict[str, Any] = {}
        step = Step.of(config, node=error.node)
        if step is not None and ledger_of_run(state, config) is not None:
            record: Ledger = visit(
                step,
                status="failed",
                error_code=letter.error_code,
                error=f"{letter.error_type}: {letter.error_message}",
                attempts=letter.attempts,
            )
            record["degraded"] = True
            update = with_ledger_update(update, record)
        return Command(goto=then, update=update or None)

    file_letter.__name__ = f"dead_letter_to_{then.strip('_')}"
    return file_letter


def _letter(
    state: Any,
    error: NodeError,
    config: RunnableConfig,
    runtime: Runtime[Any],
    retriable: Callable[[BaseException], bool],
    dlq: DeadLetterQueue,
    correlation_id: Callable[[Any, RunnableConfig], str | None] | None,
) -> DeadLetter:
    exc = revive_error(error.error)
    info = runtime.execution_info
    configurable = config.get("configurable") or {}
    metadata = config.get("metadata") or {}
    guard_details = dict(metadata.get(METADATA_KEY) or {})
    # The handler runs in the failed task's namespace: "...|node:<task id>|handler:<id>".
    segments = str(configurable.get("checkpoint_ns", "")).split("|")
    failed_segment = segments[-2] if len(segments) >= 2 else ""
    graph_ns = "|".join(segments[:-2])
    failed_task = failed_segment.rpartition(":")[2] or (info.task_id if info else None)
    code = error_code(exc)
    next_attempt = dlq.first_retry_at() if retriable(exc) else None
    trace = None
    if isinstance(error.error, BaseException) and error.error.__traceback__ is not None:
        trace = "".join(tb.format_exception(error.error))
    run_id = config.get("run_id") or metadata.get("run_id")
    return DeadLetter(
        thread_id=configurable.get("thread_id"),
        checkpoint_ns=graph_ns,
        checkpoint_id=(info.checkpoint_id if info else None) or configurable.get("checkpoint_id"),
        task_id=failed_task,
        node=error.node,
        input=state,
        error_type=error_name(exc),
        error_message=str(exc),
        traceback=trace,
        error_code=code,
        attempts=int(guard_details.pop("attempts", 1)),
        correlation_id=(
            correlation_id(state, config) if correlation_id else (str(run_id) if run_id else None)
        ),
        next_attempt_at=next_attempt,
        metadata={
            **guard_details,
            "langgraph_step": metadata.get("langgraph_step"),
            "error_was_text": isinstance(error.error, str),
        },
    )
