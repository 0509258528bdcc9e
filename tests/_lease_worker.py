"""A worker process that a test kills with SIGKILL mid-run, and the standby that takes
its thread over.

Used by ``tests/test_worker_crash.py``; run as ``python -m tests._lease_worker MODE DIR``
from the repository root. The graph is ``a -> b -> c -> d`` on a ``SqliteSaver`` in
``DIR/checkpoints.db``, run by a ``RunWorker`` under ``RunLeases`` in ``DIR/leases.db``.
Every node appends ``<pid> <node>`` to ``DIR/effects.log`` (fsynced) when it starts: the
side effects the test counts.

Modes:

- ``run [DURABILITY]``: run thread ``order-1`` from the start (``durability`` as given,
  LangGraph's default when omitted); ``c`` writes ``DIR/ready`` and then blocks for
  ever, so the test can kill the process there.
- ``recover-now``: ``RunWorker.recover()`` with the real clock: the killed worker's lease
  is still live, so nothing should be resumed.
- ``recover``: ``RunWorker.recover()`` with a clock shifted past the lease's ttl, as if
  the standby ran after the lease lapsed (no real waiting).

- ``standby``: print ``ready``, then for each line read (``recover`` or ``recover-now``)
  do that pass. The test starts it while the run is going, so its slow imports (a second
  or two) overlap the run's.

The recover passes print ``{"pid": ..., "resumed": {thread_id: final state}}`` as JSON
(one line each).
"""

from __future__ import annotations

import json
import operator
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from langgraph_resilience import FakeClock, RunLeases, RunWorker, WallClock

THREAD_ID = "order-1"
TTL = 60.0
"""The lease's ttl (seconds); the test kills the run long before a renewal is due."""
NODES = ("a", "b", "c", "d")


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def leases_url(work: Path) -> str:
    return f"sqlite:///{work / 'leases.db'}"


def effects(work: Path) -> list[tuple[int, str]]:
    """The side-effect log: ``(pid, node)`` for every node start, in order."""
    path = work / "effects.log"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [(int(pid), node) for pid, node in (line.split() for line in lines)]


def build(saver: BaseCheckpointSaver[Any], work: Path, *, block_in_c: bool) -> Any:
    def effect(name: str) -> None:
        with (work / "effects.log").open("a") as log:
            log.write(f"{os.getpid()} {name}\n")
            log.flush()
            os.fsync(log.fileno())

    def node(name: str) -> Any:
        def run(state: State) -> dict[str, Any]:
            effect(name)
            if name == "c" and block_in_c:
                ready = work / "ready.tmp"
                ready.write_text(str(os.getpid()))
                ready.rename(work / "ready")  # appears whole
                threading.Event().wait()  # blocks until the test kills the process
            return {"log": [name]}

        return run

    builder = StateGraph(State)
    for name in NODES:
        builder.add_node(name, node(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder.compile(checkpointer=saver)


def recover(mode: str, work: Path) -> dict[str, Any]:
    """One standby pass: ``recover`` (clock past the ttl) or ``recover-now`` (real clock)."""
    clock = WallClock() if mode == "recover-now" else FakeClock(WallClock().now() + TTL + 1)
    with (
        SqliteSaver.from_conn_string(str(work / "checkpoints.db")) as saver,
        RunLeases.from_url(leases_url(work), ttl=TTL, clock=clock) as leases,
    ):
        graph = build(saver, work, block_in_c=False)
        resumed = RunWorker(graph, leases, owner=f"standby:{os.getpid()}").recover()
    return {"pid": os.getpid(), "resumed": resumed}


def main(argv: list[str]) -> int:
    mode, work = argv[0], Path(argv[1])
    if mode == "run":
        kwargs = {"durability": argv[2]} if len(argv) > 2 else {}
        with (
            SqliteSaver.from_conn_string(str(work / "checkpoints.db")) as saver,
            RunLeases.from_url(leases_url(work), ttl=TTL) as leases,
        ):
            graph = build(saver, work, block_in_c=True)
            RunWorker(graph, leases, owner=f"run:{os.getpid()}").run(
                THREAD_ID, {"log": []}, **kwargs
            )
        print("c did not block", file=sys.stderr)
        return 1
    if mode in ("recover", "recover-now"):
        print(json.dumps(recover(mode, work)), flush=True)
        return 0
    if mode == "standby":  # started ahead (imports are slow); one pass per mode read
        print("ready", flush=True)
        for line in sys.stdin:
            print(json.dumps(recover(line.strip(), work)), flush=True)
        return 0
    print(f"unknown mode {mode!r}: use run, recover, recover-now or standby", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
