"""A small graph that a test kills mid-run with ``os._exit`` and resumes in another process.

Used by ``tests/test_crash_resume.py``; run as ``python -m tests._crash_worker DB MODE``
from the repository root. The graph has everything the ledger must carry across a crash:

    START -> fetch (always fails) --fallback--> fetch_mirror (always fails)
          --fallback--> fetch_cache -> draft -> critic --loop_guard--> draft ...
                                                        (at the limit) -> publish -> END

``draft`` may be entered 3 times; ``critic`` kills its process on its second visit when
the graph is built with ``crash_at=2``. Every node writes ``<pid> <node>`` to a marks
file when it starts, so the test can tell which process ran what.

Modes (the result is printed to stdout as one JSON document):

- ``crash``: run from the start with ``durability="sync"``; ``critic`` calls
  ``os._exit(137)``, so nothing is printed.
- ``resume``: print the thread's saved state (``before``), resume with
  ``invoke(None, config)`` and print the final state (``after``).
- ``clean``: run from the start without crashing; print the final state (``after``).
"""

from __future__ import annotations

import json
import operator
import os
import sys
from pathlib import Path
from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from langgraph_resilience import LoopPolicy, ResilienceState, fallback_to, guard, loop_guard

THREAD: RunnableConfig = {"configurable": {"thread_id": "crash-resume"}}
CRASH_EXIT_CODE = 137
MAX_DRAFTS = 3
"""``draft`` may be entered this many times; then ``critic`` routes to ``publish``."""


class State(ResilienceState, total=False):
    topic: str
    notes: str
    drafts: int
    log: Annotated[list[str], operator.add]


def build(
    checkpointer: BaseCheckpointSaver[Any] | None,
    *,
    crash_at: int | None = None,
    marks: Path | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The graph; ``critic`` kills the process when it sees ``crash_at`` drafts."""

    def mark(node: str) -> None:
        if marks is not None:
            with marks.open("a") as out:
                out.write(f"{os.getpid()} {node}\n")

    def fetch(state: State) -> dict[str, Any]:
        mark("fetch")
        raise ConnectionError("search API down")

    def fetch_mirror(state: State) -> dict[str, Any]:
        mark("fetch_mirror")
        raise ConnectionError("mirror down too")

    def fetch_cache(state: State) -> dict[str, Any]:
        mark("fetch_cache")
        return {"notes": f"cached notes on {state['topic']}", "log": ["fetch_cache"]}

    def draft(state: State) -> dict[str, Any]:
        mark("draft")
        number = state.get("drafts", 0) + 1
        return {"drafts": number, "log": [f"draft {number}"]}

    def critic(state: State) -> dict[str, Any]:
        mark("critic")
        if crash_at is not None and state.get("drafts") == crash_at:
            sys.stdout.flush()
            os._exit(CRASH_EXIT_CODE)  # no cleanup, no final checkpoint: a hard kill
        return {"log": [f"critic on draft {state['drafts']}"]}

    def again(state: State) -> str:
        return "draft"  # never satisfied: only the loop limit ends the loop

    def publish(state: State) -> dict[str, Any]:
        mark("publish")
        return {"log": ["publish"]}

    research = fallback_to("fetch_mirror", "fetch_cache")
    builder = StateGraph(State)
    builder.add_node("fetch", guard(fetch), error_handler=research)
    builder.add_node("fetch_mirror", guard(fetch_mirror), error_handler=research)
    builder.add_node("fetch_cache", guard(fetch_cache))
    builder.add_node("draft", guard(draft))
    builder.add_node("critic", guard(critic))
    builder.add_node("publish", guard(publish))
    builder.add_edge(START, "fetch")
    builder.add_edge("fetch_cache", "draft")
    builder.add_edge("draft", "critic")
    builder.add_conditional_edges(
        "critic",
        loop_guard(
            again,
            policy=LoopPolicy(max_visits_per_node={"draft": MAX_DRAFTS}),
            on_exceeded="publish",
        ),
        ["draft", "publish"],
    )
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=checkpointer)


def main(argv: list[str]) -> int:
    db, mode = argv[0], argv[1]
    marks = Path(argv[2]) if len(argv) > 2 else None
    with SqliteSaver.from_conn_string(db) as saver:
        if mode == "crash":
            build(saver, crash_at=2, marks=marks).invoke(
                {"topic": "tides"}, THREAD, durability="sync"
            )
            print("the crash did not happen", file=sys.stderr)
            return 1
        graph = build(saver, marks=marks)
        report: dict[str, Any] = {"pid": os.getpid()}
        if mode == "resume":
            saved = graph.get_state(THREAD)
            report["before"] = {"next": list(saved.next), "values": saved.values}
            report["after"] = graph.invoke(None, THREAD, durability="sync")
        elif mode == "clean":
            report["after"] = graph.invoke({"topic": "tides"}, THREAD, durability="sync")
        else:
            print(f"unknown mode {mode!r}: use crash, resume or clean", file=sys.stderr)
            return 2
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
