"""The Redis dead-letter store passes the contract, against the real server from services.sh."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

from langgraph_resilience.core.letters import LetterStatus  # noqa: E402
from langgraph_resilience.dead_letter import DeadLetterQueue  # noqa: E402
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery, LetterStore  # noqa: E402
from langgraph_resilience.stores.redis_letters import RedisLetterStore  # noqa: E402
from langgraph_resilience.stores.urls import mask_url, open_letter_store  # noqa: E402
from tests.stores.letter_contract import T0, LetterStoreContract, letter  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.fixture
def namespaces(redis_url: str) -> Iterator[Callable[[], str]]:
    """Hands out fresh namespaces and deletes every key under them afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"lgr-test:{uuid.uuid4().hex}")
        return made[-1]

    yield new
    client = redis.Redis.from_url(redis_url)
    try:
        for namespace in made:
            doomed = list(client.scan_iter(match=f"{namespace}:*", count=1000))
            if doomed:
                client.delete(*doomed)
    finally:
        client.close()


@pytest.fixture
def namespace(namespaces: Callable[[], str]) -> str:
    return namespaces()


@pytest.fixture
def redis_store(redis_url: str, namespace: str) -> Iterator[RedisLetterStore]:
    store = RedisLetterStore.from_url(redis_url, namespace=namespace)
    yield store
    store.close()


def _keys(redis_url: str, namespace: str) -> list[str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return sorted(client.scan_iter(match=f"{namespace}:*", count=1000))
    finally:
        client.close()


class TestRedisLetterStore(LetterStoreContract):
    @pytest.fixture
    def store(self, redis_store: RedisLetterStore) -> LetterStore:
        return redis_store


def test_open_letter_store_takes_the_namespace_from_the_url(redis_url: str, namespace: str) -> None:
    store = open_letter_store(_with_query(redis_url, f"namespace={namespace}"))
    try:
        assert isinstance(store, RedisLetterStore)
        assert store.namespace == namespace
        stored = store.add(letter(1))
        assert f"{namespace}:letters" in _keys(redis_url, namespace)
        assert store.get(stored.id) == stored
    finally:
        store.close()


def test_two_namespaces_on_one_server_do_not_see_each_other(
    redis_url: str, namespaces: Callable[[], str]
) -> None:
    left = RedisLetterStore.from_url(redis_url, namespace=namespaces())
    right = RedisLetterStore.from_url(redis_url, namespace=namespaces())
    try:
        now = T0 + timedelta(hours=1)
        in_left = left.add(letter(1, next_attempt_at=T0))
        # the same failure is a different letter in the other namespace
        in_right = right.add(letter(1, next_attempt_at=T0))
        assert in_right.id != in_left.id
        resolved = left.add(letter(2, status=LetterStatus.RESOLVED))

        assert [x.id for x in left.query(LetterQuery())] == [in_left.id, resolved.id]
        assert [x.id for x in right.query(LetterQuery())] == [in_right.id]
        assert right.get(in_left.id) is None
        assert right.counts() == {"pending": 1, "retrying": 0, "resolved": 0, "discarded": 0}

        assert [x.id for x in right.claim(now=now, limit=10, max_retries=5)] == [in_right.id]
        assert left.get(in_left.id).status is LetterStatus.PENDING  # type: ignore[union-attr]
        assert right.purge(older_than=now, statuses=list(LetterStatus)) == 1
        assert len(left.query(LetterQuery())) == 2
    finally:
        left.close()
        right.close()


def test_a_second_client_on_the_namespace_sees_the_letters(
    redis_url: str, namespace: str, redis_store: RedisLetterStore
) -> None:
    other = RedisLetterStore.from_url(_with_query(redis_url, f"namespace={namespace}"))
    try:
        stored = redis_store.add(letter(1, next_attempt_at=T0))
        assert other.get(stored.id) == stored
        assert other.query(LetterQuery(thread_id="t1")) == [stored]
        assert other.add(letter(1, error_message="again")) == stored  # idempotent across clients
        claimed = other.claim(now=T0, limit=5, max_retries=5)
        assert [x.id for x in claimed] == [stored.id]
        assert redis_store.get(stored.id) == claimed[0]
        assert redis_store.claim(now=T0, limit=5, max_retries=5) == []
    finally:
        other.close()


_CLAIMER = """
import json, sys
from datetime import datetime
from langgraph_resilience.stores.redis_letters import RedisLetterStore

url, namespace, now = sys.argv[1:4]
store = RedisLetterStore.from_url(url, namespace=namespace)
store.client.rpush(namespace + ":test:ready", "1")
assert store.client.blpop([namespace + ":test:go"], timeout=60) is not None
ids = []
while batch := store.claim(now=datetime.fromisoformat(now), limit=1, max_retries=5):
    ids.extend(x.id for x in batch)
print(json.dumps(ids))
"""


def test_concurrent_claims_from_two_processes_never_share_a_letter(
    redis_url: str, namespace: str, redis_store: RedisLetterStore
) -> None:
    ids = {redis_store.add(letter(n, next_attempt_at=T0)).id for n in range(300)}
    now = (T0 + timedelta(hours=1)).isoformat()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _CLAIMER, redis_url, namespace, now],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        client = redis_store.client
        for _ in workers:  # both are connected and waiting: start them together
            assert client.blpop([f"{namespace}:test:ready"], timeout=60) is not None
        client.rpush(f"{namespace}:test:go", "1", "1")
        results = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0], [err for _, err in results]
    claimed = [json.loads(out) for out, _ in results]
    everything = claimed[0] + claimed[1]
    assert sorted(everything) == sorted(ids)  # every letter once, none twice
    assert all(claimed), "both workers should have claimed letters"
    assert redis_store.counts()["retrying"] == 300


def test_claim_breaks_ties_by_created_at_then_id(redis_store: RedisLetterStore) -> None:
    due = T0 + timedelta(minutes=1)
    later = redis_store.add(letter(5, next_attempt_at=due))
    same_time = [
        redis_store.add(letter(n, id=f"id-{name}", next_attempt_at=due, created_at=T0))
        for n, name in ((1, "b"), (2, "a"))
    ]
    earliest = redis_store.add(letter(9, next_attempt_at=due - timedelta(seconds=1)))
    claimed = redis_store.claim(now=due, limit=10, max_retries=5)
    expected = [earliest.id, same_time[1].id, same_time[0].id, later.id]
    assert [x.id for x in claimed] == expected


def test_claim_skips_letters_out_of_retries_without_stalling(
    redis_store: RedisLetterStore,
) -> None:
    # more exhausted letters than one script batch, all due before the claimable ones
    for n in range(300):
        redis_store.add(letter(n, next_attempt_at=T0, retry_count=3))
    fresh = [redis_store.add(letter(1000 + n, next_attempt_at=T0 + timedelta(1))) for n in range(3)]
    now = T0 + timedelta(days=2)
    assert [x.id for x in redis_store.claim(now=now, limit=2, max_retries=3)] == [
        fresh[0].id,
        fresh[1].id,
    ]
    assert [x.id for x in redis_store.claim(now=now, limit=2, max_retries=3)] == [fresh[2].id]
    # a higher limit makes the exhausted ones due again
    assert len(redis_store.claim(now=now, limit=1000, max_retries=4)) == 300


def test_replace_moves_the_letter_between_indexes(redis_store: RedisLetterStore) -> None:
    stored = redis_store.add(letter(1, next_attempt_at=T0))
    resolved = stored.model_copy(update={"status": LetterStatus.RESOLVED})
    assert redis_store.replace(resolved, expect=[LetterStatus.PENDING])
    assert redis_store.query(LetterQuery(status=LetterStatus.PENDING)) == []
    assert redis_store.query(LetterQuery(status=LetterStatus.RESOLVED)) == [resolved]
    assert redis_store.claim(now=T0, limit=5, max_retries=5) == []  # no longer due

    again = resolved.model_copy(
        update={"status": LetterStatus.PENDING, "retry_count": 1, "next_attempt_at": T0}
    )
    assert redis_store.replace(again, expect=[LetterStatus.RESOLVED])
    assert redis_store.counts() == {"pending": 1, "retrying": 0, "resolved": 0, "discarded": 0}
    assert redis_store.claim(now=T0, limit=5, max_retries=1) == []  # retry_count is 1 now
    claimed = redis_store.claim(now=T0, limit=5, max_retries=2)
    assert claimed == [again.model_copy(update={"status": LetterStatus.RETRYING})]
    assert redis_store.add(letter(1)) == claimed[0]  # the failure key still finds it
    assert not redis_store.replace(again, expect=[])


def test_query_combines_filters_with_paging(redis_store: RedisLetterStore) -> None:
    for n in range(12):
        redis_store.add(
            letter(
                n,
                node="a" if n % 2 else "b",
                thread_id="shared" if n < 8 else f"t{n}",
                status=LetterStatus.RESOLVED if n % 3 == 0 else LetterStatus.PENDING,
            )
        )
    both = LetterQuery(node="a", status=LetterStatus.PENDING)
    assert [x.task_id for x in redis_store.query(both)] == ["task1", "task5", "task7", "task11"]
    page = LetterQuery(node="a", status=LetterStatus.PENDING, offset=1, limit=2)
    assert [x.task_id for x in redis_store.query(page)] == ["task5", "task7"]
    every = LetterQuery(
        node="a",
        thread_id="shared",
        status=LetterStatus.PENDING,
        since=T0 + timedelta(seconds=2),
        until=T0 + timedelta(seconds=7),
    )
    assert [x.task_id for x in redis_store.query(every)] == ["task5"]
    assert redis_store.query(LetterQuery(node="nobody", status=LetterStatus.PENDING)) == []


def test_purge_leaves_no_key_behind(
    redis_url: str, namespace: str, redis_store: RedisLetterStore
) -> None:
    for n in range(5):
        stored = redis_store.add(letter(n, node=f"n{n}", next_attempt_at=T0))
        redis_store.replace(
            stored.model_copy(update={"status": LetterStatus.DISCARDED}),
            expect=[LetterStatus.PENDING],
        )
    redis_store.add(letter(99, thread_id=None, checkpoint_id=None, task_id=None))
    assert _keys(redis_url, namespace)
    removed = redis_store.purge(
        older_than=T0 + timedelta(days=1), statuses=[LetterStatus.DISCARDED, LetterStatus.PENDING]
    )
    assert removed == 6
    assert _keys(redis_url, namespace) == []


def test_purge_works_through_more_than_one_batch(redis_store: RedisLetterStore) -> None:
    for n in range(1203):
        redis_store.add(letter(n, status=LetterStatus.RESOLVED))
    cutoff = T0 + timedelta(days=1)
    assert redis_store.purge(older_than=cutoff, statuses=[LetterStatus.RESOLVED]) == 1203
    assert redis_store.counts()["resolved"] == 0


def test_letters_are_stored_as_json(redis_store: RedisLetterStore) -> None:
    stored = redis_store.add(letter(1))
    raw = redis_store.client.hget(f"{redis_store.namespace}:letters", stored.id)
    assert json.loads(raw)["status"] == "pending"
    assert DeadLetter.model_validate_json(raw) == stored


def test_naive_datetimes_are_refused(redis_store: RedisLetterStore) -> None:
    naive = datetime(2026, 1, 1)  # noqa: DTZ001
    with pytest.raises(TypeError, match="timezone-aware"):
        redis_store.claim(now=naive, limit=1, max_retries=1)
    with pytest.raises(TypeError, match="since"):
        redis_store.query(LetterQuery(since=naive))


def test_two_namespaces_in_the_url_and_the_argument_are_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="two namespaces"):
        RedisLetterStore.from_url(_with_query(redis_url, "namespace=a"), namespace="b")


def test_repr_never_shows_the_password() -> None:
    url = "redis://app:s3cret-pw@127.0.0.1:6399/2?namespace=billing&password=qs-s3cret"
    store = RedisLetterStore.from_url(url)  # connects lazily: no server needed
    try:
        shown = repr(store)
        assert "s3cret" not in shown
        assert "redis://app:***@127.0.0.1:6399/2" in shown
        assert "'billing'" in shown
        assert store.client.get_connection_kwargs()["password"] == "s3cret-pw"
        assert "namespace" not in store.client.get_connection_kwargs()
        dlq = DeadLetterQueue(store, url="redis://app:s3cret-pw@127.0.0.1:6399/2")
        assert "s3cret" not in repr(dlq)
        assert mask_url(url).startswith("redis://app:***@")
    finally:
        store.close()


def test_dead_letter_queue_from_url_end_to_end(redis_url: str, namespace: str) -> None:
    dlq = DeadLetterQueue.from_url(_with_query(redis_url, f"namespace={namespace}"))
    try:
        assert isinstance(dlq.store, RedisLetterStore)
        assert dlq.store.namespace == namespace
        put = dlq.put(
            DeadLetter(
                node="search",
                error_type="ConnectionError",
                error_message="down",
                error_code="CONNECTION",
                input={"query": "tides", "api_key": "sk-1"},
            )
        )
        assert dlq.get(put.id).input == {"query": "tides", "api_key": "[REDACTED]"}  # type: ignore[union-attr]
        assert [x.id for x in dlq.list(node="search")] == [put.id]
        assert dlq.stats() == {
            "pending": 1,
            "retrying": 0,
            "resolved": 0,
            "discarded": 0,
            "total": 1,
        }
        assert dlq.resolve(put.id).status is LetterStatus.RESOLVED
        with pytest.raises(ValueError, match="already resolved"):
            dlq.resolve(put.id)
        later = asyncio.run(
            dlq.aput(
                DeadLetter(
                    thread_id="t",
                    task_id="x",
                    node="write",
                    error_type="TimeoutError",
                    error_message="slow",
                    error_code="TIMEOUT",
                )
            )
        )
        assert dlq.list(status="pending") == [later]
        assert dlq.stats()["total"] == 2
        assert f"{namespace}:letters" in _keys(redis_url, namespace)
    finally:
        dlq.close()
