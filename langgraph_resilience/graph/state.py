"""``ResilienceState``: the run's ledger as a key of the graph's own state."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langgraph.types import Overwrite

from langgraph_resilience.core.ledger import Ledger, LedgerView, merge_ledgers
from langgraph_resilience.errors import LedgerMissingError
from langgraph_resilience.graph._context import LEDGER_KEY, MISSING_LEDGER_HINT, ledger_in

__all__ = ["ResilienceState", "ledger", "reset_ledger"]


class ResilienceState(TypedDict, total=False):
    """A TypedDict mixin that gives a graph's state the run's ledger.

    Example:
        ```python
        from langgraph.graph import StateGraph
        from langgraph_resilience import ResilienceState, guard, ledger

        class State(ResilienceState):
            question: str
            answer: str

        def answer(state: State) -> dict:
            return {"answer": "42"}

        builder = StateGraph(State)
        builder.add_node("answer", guard(answer))
        builder.set_entry_point("answer")
        final = builder.compile().invoke({"question": "?"})
        assert ledger(final).visits_of("answer") == 1
        ```

    The key is plain JSON (strict msgpack mode keeps working), merged by
    :func:`~langgraph_resilience.core.ledger.merge_ledgers`, which is deterministic for
    parallel branches and idempotent for whole ledgers coming back from subgraphs.
    Being state, it is checkpointed: counts survive a crash and resume. It lasts as long
    as the thread; start a new request on an old thread with :func:`reset_ledger`.
    """

    resilience: Annotated[Ledger, merge_ledgers]


def ledger(state: Any) -> LedgerView:
    """A typed, read-only view of the ledger in ``state`` (a node's input or a result).

    Raises:
        LedgerMissingError: the state has no ledger; add ``ResilienceState`` to the
            state schema.
    """
    value = ledger_in(state)
    if value is None:
        raise LedgerMissingError(f"this state has no {LEDGER_KEY!r} key: {MISSING_LEDGER_HINT}")
    return LedgerView.of(value)


def reset_ledger() -> dict[str, Any]:
    """An input fragment that starts the ledger afresh on a thread that already has one.

    Example: ``graph.invoke({"question": q, **reset_ledger()}, config)``.
    """
    return {LEDGER_KEY: Overwrite({})}
