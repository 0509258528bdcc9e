"""The contract every dead-letter store passes: memory, SQLite, Postgres and Redis.

A backend's test module subclasses :class:`LetterStoreContract` and provides a ``store``
fixture that yields an empty store (and cleans up after).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from langgraph_resilience.core.letters import LetterStatus
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery, LetterStore

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def letter(n: int = 0, **changes: Any) -> DeadLetter:
    """A letter from a graph run: thread ``t<n>``, task ``task<n>``, created ``n`` s after T0."""
    fields: dict[str, Any] = {
        "thread_id": f"t{n}",
        "checkpoint_ns": "",
        "checkpoint_id": f"cp{n}",
        "task_id": f"task{n}",
        "node": "search",
        "input": {"query": f"q{n}", "nested": {"list": [1, 2.5, None, "x"]}},
        "error_type": "ConnectionError",
        "error_message": "down",
        "error_code": "CONNECTION",
        "created_at": T0 + timedelta(seconds=n),
        "metadata": {"breaker": "search"},
    }
    fields.update(changes)
    return DeadLetter(**fields)


class LetterStoreContract:
    """Behaviour shared by every :class:`LetterStore`."""

    @pytest.fixture
    def store(self) -> Iterator[LetterStore]:  # pragma: no cover - overridden
        raise NotImplementedError

    def test_add_then_get_round_trips_every_field(self, store: LetterStore) -> None:
        original = letter(
            1,
            traceback="Traceback...\n  line 1",
            correlation_id="corr",
            attempts=3,
            retry_count=2,
            next_attempt_at=T0 + timedelta(minutes=5),
            input_truncated=True,
            input_unserializable=True,
            metadata={"breaker": "search", "route": ["a", "b"], "n": 1.5},
        )
        assert store.add(original) == original
        assert store.get(original.id) == original

    def test_get_of_an_unknown_id_is_none(self, store: LetterStore) -> None:
        assert store.get("no-such-letter") is None

    def test_add_is_idempotent_on_the_failure_key(self, store: LetterStore) -> None:
        first = store.add(letter(1))
        again = store.add(letter(1, error_message="seen twice on resume"))
        assert again == first  # the stored letter, not the new one
        assert len(store.query(LetterQuery())) == 1
        other_node = store.add(letter(1, node="other"))
        assert other_node.id != first.id
        assert len(store.query(LetterQuery())) == 2

    def test_an_id_taken_by_another_failure_is_refused(self, store: LetterStore) -> None:
        first = store.add(letter(1))
        with pytest.raises(ValueError, match="already stored"):
            store.add(letter(2, id=first.id))
        assert store.get(first.id) == first
        assert len(store.query(LetterQuery())) == 1

    def test_letters_without_a_run_are_never_merged(self, store: LetterStore) -> None:
        bare = {"thread_id": None, "checkpoint_id": None, "task_id": None}
        store.add(letter(1, **bare))
        store.add(letter(2, **bare))
        assert len(store.query(LetterQuery())) == 2

    def test_query_filters_and_pages_oldest_first(self, store: LetterStore) -> None:
        for n in range(6):
            store.add(
                letter(
                    n,
                    node="a" if n % 2 else "b",
                    status=LetterStatus.RESOLVED if n == 5 else LetterStatus.PENDING,
                )
            )
        ids = [item.task_id for item in store.query(LetterQuery())]
        assert ids == [f"task{n}" for n in range(6)]
        assert [x.task_id for x in store.query(LetterQuery(node="a"))] == [
            "task1",
            "task3",
            "task5",
        ]
        resolved = store.query(LetterQuery(status=LetterStatus.RESOLVED))
        assert [x.task_id for x in resolved] == ["task5"]
        assert [x.task_id for x in store.query(LetterQuery(thread_id="t2"))] == ["task2"]
        window = LetterQuery(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
        assert [x.task_id for x in store.query(window)] == ["task2", "task3"]
        page = store.query(LetterQuery(limit=2, offset=2))
        assert [x.task_id for x in page] == ["task2", "task3"]
        assert store.query(LetterQuery(offset=10)) == []

    def test_replace_checks_the_stored_status(self, store: LetterStore) -> None:
        stored = store.add(letter(1))
        resolved = stored.model_copy(update={"status": LetterStatus.RESOLVED})
        assert store.replace(resolved, expect=[LetterStatus.PENDING])
        assert store.get(stored.id) == resolved
        again = stored.model_copy(update={"status": LetterStatus.DISCARDED})
        assert not store.replace(again, expect=[LetterStatus.PENDING])
        assert store.get(stored.id) == resolved
        assert not store.replace(letter(9), expect=list(LetterStatus))  # unknown id

    def test_claim_takes_due_letters_once(self, store: LetterStore) -> None:
        now = T0 + timedelta(hours=1)
        due = [store.add(letter(n, next_attempt_at=now - timedelta(seconds=n))) for n in range(3)]
        store.add(letter(10, next_attempt_at=now + timedelta(seconds=1)))  # not yet
        store.add(letter(11))  # waits for a person
        store.add(letter(12, next_attempt_at=now, retry_count=5))  # retried enough
        store.add(letter(13, next_attempt_at=now, status=LetterStatus.DISCARDED))

        first = store.claim(now=now, limit=2, max_retries=5)
        assert [x.id for x in first] == [due[2].id, due[1].id]  # the longest overdue first
        assert all(x.status is LetterStatus.RETRYING for x in first)
        assert store.get(due[2].id).status is LetterStatus.RETRYING  # type: ignore[union-attr]
        second = store.claim(now=now, limit=10, max_retries=5)
        assert [x.id for x in second] == [due[0].id]
        assert store.claim(now=now, limit=10, max_retries=5) == []

    def test_concurrent_claims_never_share_a_letter(self, store: LetterStore) -> None:
        now = T0 + timedelta(hours=1)
        ids = {store.add(letter(n, next_attempt_at=T0)).id for n in range(40)}
        claimed: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(4)

        def worker() -> None:
            start.wait()
            while batch := store.claim(now=now, limit=3, max_retries=5):
                with lock:
                    claimed.extend(x.id for x in batch)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed) == sorted(ids)  # every letter once, none twice

    def test_counts_cover_every_status(self, store: LetterStore) -> None:
        assert store.counts() == {"pending": 0, "retrying": 0, "resolved": 0, "discarded": 0}
        store.add(letter(1))
        store.add(letter(2, status=LetterStatus.RESOLVED))
        store.add(letter(3, status=LetterStatus.RESOLVED))
        assert store.counts() == {"pending": 1, "retrying": 0, "resolved": 2, "discarded": 0}

    def test_purge_deletes_old_letters_in_the_given_statuses(self, store: LetterStore) -> None:
        old_done = store.add(letter(1, status=LetterStatus.RESOLVED))
        old_open = store.add(letter(2))
        new_done = store.add(letter(100, status=LetterStatus.DISCARDED))
        cutoff = T0 + timedelta(seconds=50)
        removed = store.purge(
            older_than=cutoff, statuses=[LetterStatus.RESOLVED, LetterStatus.DISCARDED]
        )
        assert removed == 1
        assert store.get(old_done.id) is None
        assert store.get(old_open.id) is not None
        assert store.get(new_done.id) is not None
        # the purged failure's key is free again
        assert store.add(letter(1)).id != old_done.id
