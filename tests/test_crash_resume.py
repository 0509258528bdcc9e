"""A process killed mid-run resumes from its SQLite checkpoint in another process with the
ledger intact: visits, outcomes, the degraded flag and loop counts.

The graph is ``tests/_crash_worker.py``: a fallback chain taken before the crash, then a
``loop_guard``'ed draft/critic loop whose critic calls ``os._exit(137)`` on its second
visit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from langgraph_resilience import ledger
from tests._crash_worker import CRASH_EXIT_CODE, MAX_DRAFTS, THREAD, build

REPO = Path(__file__).resolve().parent.parent

BEFORE_CRASH = ["fetch", "fetch_mirror", "fetch_cache", "draft", "critic", "draft"]
"""The visits recorded before ``critic`` killed the process on the second draft."""
AFTER_CRASH = ["critic", "draft", "critic", "publish"]
FULL_PATH = BEFORE_CRASH + AFTER_CRASH


def worker(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests._crash_worker", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, f"worker exited {done.returncode}:\n{done.stderr}"
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def marks_by_pid(marks: Path) -> dict[int, list[str]]:
    """Which nodes each process started, in order."""
    runs: dict[int, list[str]] = {}
    for line in marks.read_text().splitlines():
        pid, node = line.split()
        runs.setdefault(int(pid), []).append(node)
    return runs


def without_step_ids(outcome: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in outcome.items() if k not in ("step", "duration_ms")}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same graph run to the end without a crash, for comparison."""
    with SqliteSaver.from_conn_string(str(tmp_path_factory.mktemp("clean") / "clean.db")) as saver:
        final: dict[str, Any] = build(saver).invoke({"topic": "tides"}, THREAD, durability="sync")
    return final


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Process 1 dies in ``critic``; process 2 inspects the checkpoint and resumes."""
    work = tmp_path_factory.mktemp("crash")
    db, marks = work / "run.db", work / "marks.txt"
    dying = worker(db, "crash", marks)
    assert dying.returncode == CRASH_EXIT_CODE, (
        f"expected the worker to die with {CRASH_EXIT_CODE}, got {dying.returncode}:\n"
        f"{dying.stderr}"
    )
    assert dying.stdout == ""  # it never got to print a result
    report = report_of(worker(db, "resume", marks))
    report["marks"] = marks_by_pid(marks)
    return report


def test_the_crash_left_a_checkpoint_waiting_on_the_crashed_node(crashed: dict[str, Any]) -> None:
    before = crashed["before"]
    assert before["next"] == ["critic"]
    values = before["values"]
    assert values["drafts"] == 2
    assert values["log"] == ["fetch_cache", "draft 1", "critic on draft 1", "draft 2"]

    view = ledger(values)
    assert list(view.path) == BEFORE_CRASH
    assert dict(view.visits) == dict(Counter(BEFORE_CRASH))
    assert view.degraded is True
    assert view.fallbacks == ("fetch", "fetch_mirror")
    assert view.failed == ("fetch", "fetch_mirror")
    assert view.outcome("fetch")["error"] == "ConnectionError: search API down"  # type: ignore[index]
    assert view.outcome("fetch_mirror")["error_code"] == "CONNECTION"  # type: ignore[index]
    assert view.status("fetch_cache") == "success"
    assert dict(view.routes) == {"draft": 1}  # critic's first route back to draft
    assert view.limits == ()


def test_the_resumed_run_completes_in_the_second_process(crashed: dict[str, Any]) -> None:
    marks = crashed["marks"]
    assert len(marks) == 2, marks
    first, second = marks.values()
    # the first process ran up to the second critic visit and died there
    assert first == [*BEFORE_CRASH, "critic"]
    # the second ran only what had not finished: nothing before the crash ran again
    assert second == AFTER_CRASH
    assert crashed["pid"] in marks
    assert marks[crashed["pid"]] == AFTER_CRASH


def test_the_ledger_counts_each_visit_once_across_the_crash(crashed: dict[str, Any]) -> None:
    before = ledger(crashed["before"]["values"])
    after = ledger(crashed["after"])
    assert list(after.path) == FULL_PATH
    assert dict(after.visits) == {
        "fetch": 1,
        "fetch_mirror": 1,
        "fetch_cache": 1,
        "draft": MAX_DRAFTS,
        "critic": MAX_DRAFTS,  # the crashed visit of critic is counted once
        "publish": 1,
    }
    steps = crashed["after"]["resilience"]["steps"]
    assert len(steps) == len(set(steps)) == len(FULL_PATH)
    # the visits made before the crash are the same entries, with the same step ids
    assert steps[: len(BEFORE_CRASH)] == crashed["before"]["values"]["resilience"]["steps"]
    # the fallback chain's outcomes are exactly as they were saved
    for node in ("fetch", "fetch_mirror", "fetch_cache"):
        assert after.outcome(node) == before.outcome(node)
    assert after.degraded is True
    assert after.status("critic") == "success"
    assert after.status("publish") == "success"


def test_the_loop_limit_holds_with_counts_carried_over(crashed: dict[str, Any]) -> None:
    final = crashed["after"]
    assert final["drafts"] == MAX_DRAFTS
    view = ledger(final)
    assert dict(view.routes) == {"draft": MAX_DRAFTS - 1}
    [limit] = view.limits
    assert limit["node"] == "draft"
    assert limit["limit"] == "max_visits_per_node"
    assert (limit["count"], limit["maximum"]) == (MAX_DRAFTS, MAX_DRAFTS)
    assert limit["routed_to"] == "publish"


def test_the_resumed_run_ends_like_an_uncrashed_one(
    crashed: dict[str, Any], clean_run: dict[str, Any]
) -> None:
    resumed, clean = ledger(crashed["after"]), ledger(clean_run)
    assert resumed.path == clean.path
    assert resumed.visits == clean.visits
    assert resumed.routes == clean.routes
    assert resumed.degraded == clean.degraded
    assert resumed.depth == clean.depth
    assert {n: without_step_ids(dict(o)) for n, o in resumed.outcomes.items()} == {
        n: without_step_ids(dict(o)) for n, o in clean.outcomes.items()
    }
    assert [without_step_ids(dict(r)) for r in resumed.limits] == [
        without_step_ids(dict(r)) for r in clean.limits
    ]
    for key in ("topic", "notes", "drafts", "log"):
        assert crashed["after"][key] == clean_run[key]


def test_a_flat_graph_ledger_says_depth_1_after_a_fallback(clean_run: dict[str, Any]) -> None:
    """Every node of the worker's graph is on the top level (depth 1).

    The ledger's ``depth`` is "the deepest graph level a recorded node ran at (1 is the
    top graph, 2 a subgraph)"; a fallback handler records the failed node's visit, and
    the failed node ran at depth 1.
    """
    assert ledger(clean_run).depth == 1
