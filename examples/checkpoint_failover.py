"""A graph that keeps its checkpoints while its checkpoint database is down.

An order-handling graph checkpoints every step into its primary database. Halfway
through a run the primary goes down::

    START -> receive -> check_stock -> charge -> ship -> END
                             ^
                             | the primary database goes down here

``ResilientSaver`` notices (three failed tries open its breaker), fails over to the
standby, a SQLite file that has mirrored every write, and the run finishes without an
error. A second order runs entirely on the standby. When the primary is back and the
breaker's 30 s have passed, the next call copies what only the standby holds to the
primary and fails back; both databases then hold the same history.

The primary is a SQLite file wrapped in ``FaultySaver`` (from
``langgraph_resilience.testing``) so the demo can take it down; in production it would
be Postgres. Time is a ``FakeClock``: the demo moves it instead of waiting.

Run it with ``make demo`` or ``python -m examples.checkpoint_failover``.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any, TypedDict

import tenacity
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from langgraph_resilience import (
    FakeClock,
    ResilientSaver,
    SaverEvent,
    SaverFailedBack,
    SaverFailedOver,
    SaverPolicy,
)
from langgraph_resilience.testing import FaultySaver

STEPS = ("receive", "check_stock", "charge", "ship")


class Order(TypedDict, total=False):
    item: str
    log: list[str]


def build(saver: ResilientSaver, primary: FaultySaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The order graph; ``check_stock`` takes the primary down on the first order."""

    def step(name: str) -> Any:
        def node(state: Order) -> Order:
            if name == "check_stock" and state["item"] == "teapot":
                primary.fail()  # the database server stops answering, mid-run
            print(f"    {name:<12} {state['item']}")
            return {"log": [*state.get("log", []), name]}

        return node

    builder = StateGraph(Order)
    previous = START
    for name in STEPS:
        builder.add_node(name, step(name))
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def history(saver: SqliteSaver, thread_id: str) -> list[str]:
    """The checkpoint ids one database holds for a thread."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    return [item.config["configurable"]["checkpoint_id"] for item in saver.list(config)]


def report(event: SaverEvent) -> None:
    if isinstance(event, SaverFailedOver):
        print(f"  !! failover: the primary failed on {event.operation} ({event.error})")
    elif isinstance(event, SaverFailedBack):
        print(
            f"  ok fail-back: copied {event.checkpoints} checkpoints and {event.writes} "
            f"task writes from {event.threads} threads to the primary"
        )


def main(workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = workdir or Path(tmp)
        primary_db = SqliteSaver(sqlite3.connect(folder / "primary.db", check_same_thread=False))
        primary = FaultySaver(primary_db)
        clock = FakeClock()
        saver = ResilientSaver(
            primary,
            standby=f"sqlite:///{folder / 'standby.db'}",
            policy=SaverPolicy(wait=tenacity.wait_none()),  # no pause between tries
            clock=clock,
            listeners=[report],
        )
        graph = build(saver, primary)

        print("order 1: the primary database goes down during check_stock")
        first = graph.invoke(
            {"item": "teapot"}, {"configurable": {"thread_id": "order-1"}}, durability="sync"
        )
        print(f"  finished: {first['log']}; active store: {saver.status().active}")

        print("order 2: the primary is still down; the standby carries the run")
        second = graph.invoke(
            {"item": "kettle"}, {"configurable": {"thread_id": "order-2"}}, durability="sync"
        )
        status = saver.status()
        print(f"  finished: {second['log']}; waiting to reconcile: {status.pending_threads}")

        print("the primary is back; 30 s later the breaker lets a trial call through")
        primary.heal()
        clock.advance(30)
        third = graph.invoke(
            {"item": "mug"}, {"configurable": {"thread_id": "order-3"}}, durability="sync"
        )
        print(f"  order 3 finished on the {saver.status().active}: {third['log']}")

        saver.flush()
        standby = saver.standby
        assert isinstance(standby, SqliteSaver)
        same = all(
            history(primary_db, thread) == history(standby, thread)
            for thread in ("order-1", "order-2", "order-3")
        )
        print(f"  primary and standby hold the same history for every order: {same}")
        return {
            "orders": [first, second, third],
            "status": saver.status(),
            "same_history": same,
        }


if __name__ == "__main__":
    main()
