"""Replay of dead letters into a graph: from the failed checkpoint (state-preserving),
afresh when the thread is gone, counted retries when it fails again, one worker per
letter."""

from __future__ import annotations

import operator
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, cast

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from langgraph_resilience import (
    DeadLetterQueue,
    LetterStatus,
    ResilienceState,
    dead_letter,
    guard,
    ledger,
)
from tests.graph._helpers import MODES, node_pair, run, sqlite_saver, thread


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]


class Flaky:
    """Nodes a, b, c; b fails while ``broken``. Counts every call."""

    def __init__(self) -> None:
        self.broken = True
        self.calls: list[str] = []

    def node(self, name: str, mode: str) -> Any:
        def body(state: Any) -> dict[str, Any]:
            self.calls.append(name)
            if name == "b" and self.broken:
                raise ConnectionError("b's service is down")
            return {"log": [name]}

        return guard(node_pair(body, mode))


def pipeline(flaky: Flaky, dlq: DeadLetterQueue, mode: str) -> StateGraph[Any]:
    builder = StateGraph(State)
    builder.add_node("a", flaky.node("a", mode))
    builder.add_node("b", flaky.node("b", mode), error_handler=cast(Any, dead_letter(dlq)))
    builder.add_node("c", flaky.node("c", mode))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    return builder


async def replay(dlq: DeadLetterQueue, letter_id: str, graph: Any, mode: str) -> Any:
    if mode == "sync":
        return dlq.replay(letter_id, graph)
    return await dlq.areplay(letter_id, graph)


@pytest.mark.parametrize("mode", MODES)
async def test_replay_resumes_the_failed_checkpoint(mode: str, tmp_path: Path) -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    async with sqlite_saver(mode, tmp_path / "ckpt.db") as saver:
        graph = pipeline(flaky, dlq, mode).compile(checkpointer=saver)
        first = await run(graph, mode, {"log": []}, thread("t1"))
        assert first["log"] == ["a"]  # b failed and was dead-lettered; c never ran
        (letter,) = dlq.list()

        flaky.broken, flaky.calls = False, []  # the service is fixed
        final = await replay(dlq, letter.id, graph, mode)

    assert flaky.calls == ["b", "c"]  # a, which had succeeded, did not run again
    assert final["log"] == ["a", "b", "c"]
    assert ledger(final).path == ("a", "b", "c")
    assert dlq.get(letter.id).status is LetterStatus.RESOLVED  # type: ignore[union-attr]
    assert len(dlq.list()) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_replay_that_fails_again_is_counted_on_the_same_letter(mode: str) -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    graph = pipeline(flaky, dlq, mode).compile(checkpointer=InMemorySaver())
    await run(graph, mode, {"log": []}, thread("t1"))
    (letter,) = dlq.list()

    with pytest.raises(ConnectionError, match="b's service is down"):
        await replay(dlq, letter.id, graph, mode)

    (again,) = dlq.list()  # no second letter for the same failure
    assert again.id == letter.id
    assert again.status is LetterStatus.PENDING
    assert again.retry_count == 1
    assert again.next_attempt_at is not None
    assert again.next_attempt_at > letter.next_attempt_at  # type: ignore[operator]


def test_only_pending_letters_replay() -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    graph = pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver())
    graph.invoke({"log": []}, thread("t1"))
    (letter,) = dlq.list()
    dlq.discard(letter.id)
    with pytest.raises(ValueError, match="not pending"):
        dlq.replay(letter.id, graph)
    with pytest.raises(KeyError):
        dlq.replay("no-such-letter", graph)
    assert flaky.calls == ["a", "b"]


def test_a_gone_thread_is_replayed_afresh_from_the_stored_input() -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver()).invoke(
        {"log": []}, thread("lost")
    )
    (letter,) = dlq.list()
    flaky.broken, flaky.calls = False, []
    fresh_graph = pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver())  # empty
    final = dlq.replay(letter.id, fresh_graph)
    assert flaky.calls == ["a", "b", "c"]  # a new run, from the input b had received
    assert final["log"] == ["a", "a", "b", "c"]  # the stored input already held a's entry
    assert dlq.get(letter.id).status is LetterStatus.RESOLVED  # type: ignore[union-attr]


def test_two_workers_never_replay_one_letter_twice() -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    graph = pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver())
    graph.invoke({"log": []}, thread("t1"))
    (letter,) = dlq.list()
    flaky.broken, flaky.calls = False, []
    start = threading.Barrier(2)
    results: list[str] = []

    def worker() -> None:
        start.wait()
        try:
            dlq.replay(letter.id, graph)
            results.append("ran")
        except ValueError:
            results.append("skipped")

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(results) == ["ran", "skipped"]
    assert flaky.calls == ["b", "c"]


def test_replay_all_reports_each_letter() -> None:
    dlq, flaky = DeadLetterQueue.from_url("memory://"), Flaky()
    graph = pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver())
    for name in ("t1", "t2", "t3"):
        graph.invoke({"log": []}, thread(name))
    letters = dlq.list()
    dlq.discard(letters[2].id)  # not pending: left alone
    flaky.broken = False
    outcomes = dlq.replay_all(graph)
    assert outcomes == {letters[0].id: None, letters[1].id: None}
    assert dlq.stats()["resolved"] == 2
    assert dlq.stats()["discarded"] == 1


def test_replay_due_is_the_retry_worker() -> None:
    now = [datetime(2026, 11, 22, tzinfo=timezone.utc)]
    dlq, flaky = DeadLetterQueue.from_url("memory://", now=lambda: now[0]), Flaky()
    graph = pipeline(flaky, dlq, "sync").compile(checkpointer=InMemorySaver())
    graph.invoke({"log": []}, thread("t1"))
    (letter,) = dlq.list()
    assert dlq.replay_due(graph) == {}  # its first retry is not due yet

    now[0] += timedelta(minutes=1)
    outcomes = dlq.replay_due(graph, max_retries=2)
    assert isinstance(outcomes[letter.id], ConnectionError)  # still broken: rescheduled
    assert dlq.get(letter.id).retry_count == 1  # type: ignore[union-attr]

    now[0] += timedelta(hours=1)
    flaky.broken, flaky.calls = False, []
    assert dlq.replay_due(graph, max_retries=2) == {letter.id: None}
    assert flaky.calls == ["b", "c"]
    assert dlq.get(letter.id).status is LetterStatus.RESOLVED  # type: ignore[union-attr]
