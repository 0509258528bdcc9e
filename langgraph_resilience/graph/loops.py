"""``loop_guard``: bound a conditional edge's loops with counts kept in the ledger.

LangGraph has no per-node visit counter (langgraph#5883), and its ``recursion_limit``
(10,007 supersteps by default) restarts on every resume. A supervisor and a worker can
hand a task back and forth for thousands of steps before it trips. ``loop_guard``
counts visits in the run's ledger, which is checkpointed, and sends the run elsewhere
when a limit is reached.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.types import Send

from langgraph_resilience.breaker import is_async_callable
from langgraph_resilience.core.events import LoopLimitReached
from langgraph_resilience.core.ledger import Ledger, LedgerView, LimitRecord
from langgraph_resilience.core.loops import LoopPolicy
from langgraph_resilience.events import publish
from langgraph_resilience.graph._context import (
    Step,
    node_exists,
    require_ledger,
    takes_parameter,
    write_from_router,
)

__all__ = ["loop_guard"]

logger = logging.getLogger("langgraph_resilience.loops")


def loop_guard(
    path: Callable[..., Any],
    *,
    policy: LoopPolicy,
    on_exceeded: str = END,
) -> Callable[..., Any]:
    """Wrap a conditional-edge path function so it never routes past a loop limit.

    When ``path`` picks a node that has reached a limit of ``policy``, the run goes to
    ``on_exceeded`` instead, and the ledger records which limit, the count and where
    the run went (``ledger(state).limits``). Routes it takes are counted too, so a
    target that is not wrapped with ``guard()`` is still bounded.

    Example:
        ```python
        from langgraph.graph import END, START, StateGraph
        from langgraph_resilience import LoopPolicy, ResilienceState, guard, ledger, loop_guard

        class State(ResilienceState):
            drafts: int

        def supervisor(state: State) -> dict:
            return {}

        def worker(state: State) -> dict:
            return {"drafts": state.get("drafts", 0) + 1}

        def next_step(state: State) -> str:
            return "worker"  # never satisfied: a runaway delegation loop

        builder = StateGraph(State)
        builder.add_node("supervisor", guard(supervisor))
        builder.add_node("worker", guard(worker))
        builder.add_edge(START, "supervisor")
        builder.add_conditional_edges(
            "supervisor", loop_guard(next_step, policy=LoopPolicy(max_visits_per_node=3))
        )
        builder.add_edge("worker", "supervisor")
        final = builder.compile().invoke({"drafts": 0})
        assert final["drafts"] == 3
        assert ledger(final).limits[0]["limit"] == "max_visits_per_node"
        ```

    Args:
        path: the path function (sync or async; it may take ``config``). It returns a
            node name, ``END``, a ``Send``, or a list of these. With a ``path_map``,
            its keys must be node names, and ``on_exceeded`` one of them.
        policy: the limits.
        on_exceeded: where to go instead; ``END`` by default.

    Raises:
        TypeError: ``path`` is not callable or ``policy`` is not a ``LoopPolicy``.
        LedgerMissingError: at the first step, when the state has no ledger.
        ValueError: at the first step, when ``on_exceeded`` is not a node of the graph.
    """
    if not callable(path):
        raise TypeError(f"loop_guard() wraps a path function, got {path!r}")
    if not isinstance(policy, LoopPolicy):
        raise TypeError(f"loop_guard(policy=...) takes a LoopPolicy, got {policy!r}")
    if not isinstance(on_exceeded, str) or not on_exceeded:
        raise TypeError(
            f"loop_guard(on_exceeded=...) takes a node name or END, got {on_exceeded!r}"
        )
    pass_config = takes_parameter(path, "config")
    name = getattr(path, "__name__", "path")

    def decide(state: Any, config: RunnableConfig, chosen: Any) -> Any:
        view = LedgerView.of(require_ledger(state, "loop_guard", config))
        if node_exists(config, on_exceeded) is False:
            raise ValueError(
                f"loop_guard(on_exceeded={on_exceeded!r}): {on_exceeded!r} is not a node "
                "of this graph"
            )
        step = Step.of(config)
        if step is None:  # not inside a graph run: nothing to count against
            return chosen
        destinations = chosen if isinstance(chosen, list | tuple) else [chosen]
        routes: dict[str, int] = {}
        route_steps: list[list[str]] = []
        limits: list[LimitRecord] = []
        kept: list[Any] = []
        for destination in destinations:
            target = destination.node if isinstance(destination, Send) else destination
            if not isinstance(target, str) or target == END:
                kept.append(destination)
                continue
            breach = policy.breach(view, target, depth=step.depth, granted=routes)
            if breach is None:
                routes[target] = routes.get(target, 0) + 1
                route_steps.append([f"{step.id}>{len(route_steps)}", target])
                kept.append(destination)
                continue
            logger.warning("loop limit: %s; routing to %r instead", breach.describe(), on_exceeded)
            publish(
                LoopLimitReached(
                    node=target,
                    limit=breach.limit,
                    count=breach.count,
                    maximum=breach.maximum,
                    routed_to=on_exceeded,
                )
            )
            limits.append(
                {
                    "node": target,
                    "limit": breach.limit,
                    "count": breach.count,
                    "maximum": breach.maximum,
                    "routed_to": on_exceeded,
                    "step": step.id,
                }
            )
            if on_exceeded not in kept:
                kept.append(on_exceeded)
        update: Ledger = {"update": True}
        if routes:
            update["routes"] = routes
            update["route_steps"] = route_steps
        if limits:
            update["limits"] = limits
        if len(update) > 1:
            write_from_router(config, update)
        if not limits:
            return chosen
        return kept if isinstance(chosen, list | tuple) or len(kept) > 1 else kept[0]

    if is_async_callable(path):
        apath: Callable[..., Awaitable[Any]] = path

        async def guarded_async(state: Any, config: RunnableConfig) -> Any:
            chosen = await (apath(state, config=config) if pass_config else apath(state))
            return decide(state, config, chosen)

        guarded_async.__name__ = f"loop_guard_{name}"
        return guarded_async

    def guarded(state: Any, config: RunnableConfig) -> Any:
        chosen = path(state, config=config) if pass_config else path(state)
        return decide(state, config, chosen)

    guarded.__name__ = f"loop_guard_{name}"
    return guarded
