"""DeadLetterQueue's own decisions, on the in-memory store: redaction, bounded input,
idempotent put, status moves, backoff, draining, purging, the async twins, URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from langgraph_resilience import DeadLetter, DeadLetterQueue, LetterStatus
from langgraph_resilience.stores.urls import mask_url, open_letter_store

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:  # overrides the breaker FakeClock fixture: a wall clock here
    return Clock()


@pytest.fixture
def dlq(clock: Clock) -> DeadLetterQueue:
    return DeadLetterQueue.from_url("memory://", now=clock, retry_base=30, retry_cap=100)


def letter(n: int = 0, **changes: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "thread_id": "t",
        "checkpoint_id": "cp",
        "task_id": f"task{n}",
        "node": "search",
        "input": {"query": "tides"},
        "error_type": "ConnectionError",
        "error_message": "down",
        "error_code": "CONNECTION",
        "created_at": T0,
    }
    fields.update(changes)
    return DeadLetter(**fields)


def test_put_redacts_secrets_in_input_and_metadata(dlq: DeadLetterQueue) -> None:
    stored = dlq.put(
        letter(
            input={"query": "q", "headers": {"Authorization": "Bearer x"}, "OPENAI_API_KEY": "k"},
            metadata={"db_password": "p", "breaker": "search"},
        )
    )
    assert stored.input == {
        "query": "q",
        "headers": {"Authorization": "[REDACTED]"},
        "OPENAI_API_KEY": "[REDACTED]",
    }
    assert stored.metadata == {"db_password": "[REDACTED]", "breaker": "search"}
    assert dlq.get(stored.id) == stored


def test_a_custom_redactor_replaces_the_default(clock: Clock) -> None:
    dlq = DeadLetterQueue.from_url("memory://", redactor=lambda value: "hidden", now=clock)
    assert dlq.put(letter(input={"anything": 1})).input == "hidden"


def test_large_input_is_truncated_and_flagged_never_dropped(clock: Clock) -> None:
    dlq = DeadLetterQueue.from_url("memory://", max_input_bytes=1000, now=clock)
    stored = dlq.put(letter(input={"text": "x" * 5000}))
    assert stored.input_truncated
    assert stored.input["truncated_json"].startswith('{"text": "xxx')
    assert len(stored.input["truncated_json"]) <= 1000


def test_input_that_is_not_json_is_kept_as_repr_and_flagged(dlq: DeadLetterQueue) -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque thing>"

    stored = dlq.put(letter(input={"obj": Opaque(), "n": float("nan")}))
    assert stored.input_unserializable
    assert stored.input == {"obj": "<Opaque thing>", "n": "NaN"}


def test_put_is_idempotent_on_the_failure(dlq: DeadLetterQueue) -> None:
    first = dlq.put(letter(1))
    assert dlq.put(letter(1, error_message="again")) == first
    assert dlq.stats() == {"pending": 1, "retrying": 0, "resolved": 0, "discarded": 0, "total": 1}


def test_resolve_and_discard_close_a_letter_once(dlq: DeadLetterQueue) -> None:
    a, b = dlq.put(letter(1)), dlq.put(letter(2))
    assert dlq.resolve(a.id).status is LetterStatus.RESOLVED
    assert dlq.discard(b.id).status is LetterStatus.DISCARDED
    with pytest.raises(ValueError, match="already resolved"):
        dlq.discard(a.id)
    with pytest.raises(KeyError, match="no dead letter 'nope'"):
        dlq.resolve("nope")
    assert dlq.stats()["resolved"] == 1
    assert dlq.stats()["discarded"] == 1


def test_retries_back_off_exponentially_up_to_the_cap(dlq: DeadLetterQueue, clock: Clock) -> None:
    stored = dlq.put(letter(1, next_attempt_at=T0))
    waits = []
    for _ in range(4):
        (claimed,) = dlq.drain_retriable(max_retries=10)
        assert claimed.id == stored.id
        assert claimed.status is LetterStatus.RETRYING
        assert dlq.drain_retriable(max_retries=10) == []  # claimed: nobody else gets it
        retried = dlq.retry_later(stored.id)
        assert retried.status is LetterStatus.PENDING
        assert dlq.drain_retriable(max_retries=10) == []  # not due yet
        assert retried.next_attempt_at is not None
        waits.append((retried.next_attempt_at - clock.now).total_seconds())
        clock.now = retried.next_attempt_at
    assert waits == [30, 60, 100, 100]  # doubling, capped at retry_cap
    assert dlq.get(stored.id).retry_count == 4  # type: ignore[union-attr]


def test_drain_stops_at_max_retries(dlq: DeadLetterQueue) -> None:
    dlq.put(letter(1, next_attempt_at=T0, retry_count=3))
    assert dlq.drain_retriable(max_retries=3) == []
    assert len(dlq.drain_retriable(max_retries=4)) == 1


def test_letters_without_next_attempt_wait_for_a_person(dlq: DeadLetterQueue) -> None:
    dlq.put(letter(1))
    assert dlq.drain_retriable() == []


def test_list_filters(dlq: DeadLetterQueue, clock: Clock) -> None:
    dlq.put(letter(1, node="a"))
    b = dlq.put(letter(2, node="b", created_at=T0 + timedelta(hours=1)))
    dlq.resolve(b.id)
    assert [x.node for x in dlq.list()] == ["a", "b"]
    assert [x.node for x in dlq.list(status="resolved")] == ["b"]
    assert [x.node for x in dlq.list(node="a")] == ["a"]
    assert [x.node for x in dlq.list(since=T0 + timedelta(minutes=1))] == ["b"]
    assert [x.node for x in dlq.list(limit=1, offset=1)] == ["b"]


def test_purge_by_age_keeps_open_letters(dlq: DeadLetterQueue, clock: Clock) -> None:
    done = dlq.put(letter(1))
    dlq.resolve(done.id)
    still_open = dlq.put(letter(2))
    clock.now = T0 + timedelta(days=8)
    assert dlq.purge(older_than=timedelta(days=7)) == 1
    assert dlq.get(done.id) is None
    assert dlq.get(still_open.id) is not None


def test_a_letter_is_dated_by_the_queue_clock(dlq: DeadLetterQueue, clock: Clock) -> None:
    """Proves: without an explicit created_at, a letter is dated by the queue's clock, the
    one purge and the list filters compare it with (not the wall clock)."""
    fields = letter(1).model_dump(exclude={"created_at", "id"})
    undated = dlq.put(DeadLetter(**fields))
    assert undated.created_at == T0
    dlq.discard(undated.id)
    clock.now = T0 + timedelta(days=30)
    assert dlq.purge(older_than=timedelta(days=7)) == 1


async def test_async_twins_run_the_same_calls(dlq: DeadLetterQueue) -> None:
    stored = await dlq.aput(letter(1, next_attempt_at=T0))
    assert await dlq.aget(stored.id) == stored
    assert [x.id for x in await dlq.alist()] == [stored.id]
    (claimed,) = await dlq.adrain_retriable()
    assert (await dlq.aresolve(claimed.id)).status is LetterStatus.RESOLVED
    assert (await dlq.astats())["resolved"] == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_input_bytes"):
        DeadLetterQueue.from_url("memory://", max_input_bytes=10)
    with pytest.raises(ValueError, match="retry_base"):
        DeadLetterQueue.from_url("memory://", retry_base=10, retry_cap=5)
    with pytest.raises(ValueError, match="max_retries"):
        DeadLetterQueue.from_url("memory://").drain_retriable(max_retries=0)


def test_urls_mask_passwords_everywhere() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert mask_url("redis://:pw@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert mask_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    with pytest.raises(ValueError) as info:
        open_letter_store("mongodb://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    assert "memory://" in str(info.value)
    dlq = DeadLetterQueue(open_letter_store("memory://"), url="memory://user:pw@x")
    assert "pw" not in repr(dlq)
    assert "pw" not in dlq._repr_html_()


def test_text_every_store_accepts(dlq: DeadLetterQueue) -> None:
    # Postgres refuses the NUL character in text and jsonb: it is replaced, not dropped
    stored = dlq.put(letter(1, error_message="bad\x00byte", input={"raw": "a\x00b"}))
    assert stored.error_message == "bad\ufffdbyte"
    assert stored.input == {"raw": "a\ufffdb"}


def test_store_options_reach_the_backend() -> None:
    with pytest.raises(ValueError, match="memory:// takes no store options"):
        DeadLetterQueue.from_url("memory://", store_options={"table": "x"})
    assert mask_url("postgresql://db/x?sslmode=require&password=pw") == (
        "postgresql://db/x?sslmode=require&password=***"
    )
