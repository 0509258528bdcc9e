"""A worker process killed with SIGKILL in the middle of a run: its lease outlives it until
the ttl, then a standby process claims the lease and completes the thread from its
checkpoint, and the side-effect log shows that no completed node ran twice.

The processes are ``tests/_lease_worker.py``: ``run`` blocks in node ``c`` (of
``a -> b -> c -> d``) so the test can kill it there; a ``standby`` process, started at the
same time so that its imports overlap the run, then does one recover pass with the real
clock (the lease is live: nothing to do) and one with its clock shifted past the lease's
ttl, so nobody waits for the lease to lapse.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver

from langgraph_resilience import RunLeases
from tests._lease_worker import NODES, THREAD_ID, TTL, build, effects, leases_url

REPO = Path(__file__).resolve().parent.parent
CONFIG: RunnableConfig = {"configurable": {"thread_id": THREAD_ID}}


def start(*args: str | Path, stdin: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests._lease_worker", *map(str, args)],
        cwd=REPO,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Standby:
    """A standby process, started early; each ``recover`` is one pass in it."""

    def __init__(self, work: Path) -> None:
        self.process = start("standby", work, stdin=subprocess.PIPE)
        assert self.process.stdout is not None
        assert self.process.stdin is not None
        self._out, self._in = self.process.stdout, self.process.stdin

    def wait_ready(self) -> None:
        if self._out.readline() != "ready\n":
            _, err = self.process.communicate(timeout=30)
            pytest.fail(f"the standby did not start:\n{err}")

    def recover(self, mode: str) -> dict[str, Any]:
        self._in.write(f"{mode}\n")
        self._in.flush()
        line = self._out.readline()
        if not line:
            _, err = self.process.communicate(timeout=30)
            pytest.fail(f"the standby died in {mode}:\n{err}")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.communicate(timeout=30)  # closes stdin: the standby ends
            finally:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.communicate()
        assert self.process.returncode == 0


def saved_next(work: Path) -> tuple[str, ...] | None:
    """The nodes the thread's last checkpoint waits on; ``None`` before any checkpoint."""
    with SqliteSaver.from_conn_string(str(work / "checkpoints.db")) as saver:
        if saver.get_tuple(CONFIG) is None:
            return None
        return tuple(build(saver, work, block_in_c=False).get_state(CONFIG).next)


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen[str], what: str) -> None:
    """Poll for up to 30 s, failing at once if the worker exits."""
    for _ in range(600):
        if condition():
            return
        if worker.poll() is not None:
            _, err = worker.communicate()
            pytest.fail(f"the worker exited {worker.returncode} before {what}:\n{err}")
        threading.Event().wait(0.05)  # real time: another process is starting up
    pytest.fail(f"timed out waiting for {what}")


def kill_in_c(work: Path, durability: str | None) -> int:
    """Start a run, wait until it blocks in c, SIGKILL it; the killed pid."""
    worker = start("run", work, *([durability] if durability else []))
    try:
        wait_until((work / "ready").exists, worker, "node c started")
        if durability == "sync":
            # the checkpoint after b was written before c started
            assert saved_next(work) == ("c",)
        else:
            # with LangGraph's default ("async") durability a background thread writes the
            # checkpoint after b while c runs: wait for it, or a kill could legitimately
            # lose it (and the standby would run b again)
            wait_until(lambda: saved_next(work) == ("c",), worker, "the checkpoint after b")
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == -signal.SIGKILL
    return worker.pid


@pytest.mark.parametrize("durability", [None, "sync"], ids=["default", "sync"])
def test_a_standby_completes_the_thread_of_a_killed_worker(
    tmp_path: Path, durability: str | None
) -> None:
    """The standby waits for the lease to lapse, then runs only c and d."""
    standby = Standby(tmp_path)  # imports while the run goes
    try:
        killed = kill_in_c(tmp_path, durability)
        standby.wait_ready()
        check_the_takeover(tmp_path, killed, standby)
    finally:
        standby.close()


def check_the_takeover(tmp_path: Path, killed: int, standby: Standby) -> None:
    """What the killed worker left, the standby's two passes, and the side effects."""
    assert effects(tmp_path) == [(killed, "a"), (killed, "b"), (killed, "c")]

    # the dead worker's lease is still live for the real clock: nobody may take it yet
    with RunLeases.from_url(leases_url(tmp_path), ttl=TTL) as leases:
        held = leases.holder(THREAD_ID)
        assert held is not None
        assert held.owner == f"run:{killed}"
        assert leases.expired() == []
    early = standby.recover("recover-now")
    assert early["resumed"] == {}
    assert len(effects(tmp_path)) == 3  # nothing ran

    # once the lease has lapsed (the standby's clock is past the ttl) it takes over
    late = standby.recover("recover")
    assert late["resumed"] == {THREAD_ID: {"log": list(NODES)}}
    log = effects(tmp_path)
    assert log == [
        (killed, "a"),
        (killed, "b"),
        (killed, "c"),  # killed here, before c completed
        (late["pid"], "c"),
        (late["pid"], "d"),
    ]
    # no completed node ran twice: only c, which never completed in the killed worker
    assert Counter(node for _, node in log) == Counter({"a": 1, "b": 1, "c": 2, "d": 1})
    with RunLeases.from_url(leases_url(tmp_path), ttl=TTL) as leases:
        assert leases.store.get(THREAD_ID) is None  # the standby released it at the end
    assert saved_next(tmp_path) == ()
