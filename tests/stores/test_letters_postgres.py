"""The Postgres dead-letter store passes the contract against a real server, and keeps
its promises across store instances, processes and crashes.

Each test gets a table of its own (dropped afterwards), so runs never see each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from langgraph_resilience.core.letters import REDACTED, LetterStatus  # noqa: E402
from langgraph_resilience.dead_letter import DeadLetterQueue  # noqa: E402
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery, LetterStore  # noqa: E402
from langgraph_resilience.stores.postgres_letters import (  # noqa: E402
    DEFAULT_TABLE,
    PostgresLetterStore,
)
from langgraph_resilience.stores.urls import open_letter_store  # noqa: E402
from tests.stores.letter_contract import T0, LetterStoreContract, letter  # noqa: E402

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]


def drop_table(url: str, table: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*table.split("."))))


def table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
    assert row is not None
    return bool(row[0])


@pytest.fixture
def table(postgres_url: str) -> Iterator[str]:
    """A fresh table name, dropped after the test."""
    name = f"lgr_test_letters_{uuid.uuid4().hex[:12]}"
    yield name
    drop_table(postgres_url, name)


@pytest.fixture
def pg_store(postgres_url: str, table: str) -> Iterator[PostgresLetterStore]:
    store = PostgresLetterStore.from_url(postgres_url, table=table)
    yield store
    store.close()


class TestPostgresLetterStore(LetterStoreContract):
    @pytest.fixture
    def store(self, pg_store: PostgresLetterStore) -> LetterStore:
        return pg_store


# ---- tables -----------------------------------------------------------------------------


def test_the_table_and_its_indexes_are_created_on_first_use(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    assert not table_exists(postgres_url, table)
    assert pg_store.counts()["pending"] == 0
    assert table_exists(postgres_url, table)
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (table,)
        ).fetchall()
    definitions = " ".join(row[0] for row in rows)
    assert "(status, next_attempt_at)" in definitions
    assert "(created_at)" in definitions
    assert "(key)" in definitions  # the unique constraint idempotency rests on


def test_letters_are_stored_as_json_with_queryable_columns(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    stored = pg_store.add(letter(1, next_attempt_at=T0, retry_count=2, input={"é": "ünï"}))
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        row = conn.execute(
            sql.SQL(
                "SELECT key, status, node, thread_id, created_at, next_attempt_at,"
                " retry_count, jsonb_typeof(body), body FROM {}"
            ).format(sql.Identifier(table))
        ).fetchone()
    assert row is not None
    assert row[:8] == (
        stored.key,
        "pending",
        "search",
        "t1",
        stored.created_at,
        T0,
        2,
        "object",
    )
    assert row[8] == stored.model_dump(mode="json")


def test_a_schema_qualified_table_works(postgres_url: str, table: str) -> None:
    qualified = f"public.{table}"
    with PostgresLetterStore.from_url(postgres_url, table=qualified) as store:
        stored = store.add(letter(1))
        assert store.get(stored.id) == stored
    assert table_exists(postgres_url, qualified)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "letters; DROP TABLE x",
        'letters"',
        "1letters",
        "a.b.c",
        "public.",
        "dead-letters",
        "x" * 49,
    ],
)
def test_table_names_are_checked(postgres_url: str, bad: str) -> None:
    with pytest.raises(ValueError, match="table"):
        PostgresLetterStore(postgres_url, table=bad)


# ---- several instances, threads and processes --------------------------------------------


def test_a_second_store_on_the_same_table_sees_the_letters(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    first = pg_store.add(letter(1))
    with PostgresLetterStore.from_url(postgres_url, table=table) as other:
        assert other.get(first.id) == first
        assert other.add(letter(1, error_message="again")) == first  # idempotent across stores
        assert other.query(LetterQuery()) == [first]
        claimed = other.claim(now=T0, limit=5, max_retries=5)
        assert claimed == []
        resolved = first.model_copy(update={"status": LetterStatus.RESOLVED})
        assert other.replace(resolved, expect=[LetterStatus.PENDING])
    assert pg_store.get(first.id) == resolved
    assert pg_store.counts()["resolved"] == 1


def test_concurrent_adds_of_one_failure_store_it_once(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    other = PostgresLetterStore.from_url(postgres_url, table=table)
    stores = [pg_store, other] * 4
    start = threading.Barrier(len(stores))
    returned: list[str] = []
    lock = threading.Lock()

    def worker(store: PostgresLetterStore, n: int) -> None:
        start.wait()
        stored = store.add(letter(1, error_message=f"attempt {n}"))
        with lock:
            returned.append(stored.id)

    threads = [threading.Thread(target=worker, args=(s, n)) for n, s in enumerate(stores)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert len(returned) == len(stores)
    assert len(set(returned)) == 1  # every caller got the one stored letter
    assert [x.id for x in pg_store.query(LetterQuery())] == returned[:1]


CLAIM_WORKER = """
import json, os, sys
from datetime import datetime, timezone
from langgraph_resilience.stores.postgres_letters import PostgresLetterStore

store = PostgresLetterStore.from_url(os.environ["LGR_TEST_PG"], table=os.environ["LGR_TEST_TABLE"])
store.counts()  # connected and set up before the race starts
print("ready", flush=True)
sys.stdin.readline()
now = datetime(2030, 1, 1, tzinfo=timezone.utc)
claimed = []
while batch := store.claim(now=now, limit=2, max_retries=5):
    claimed.extend(x.id for x in batch)
store.close()
print(json.dumps(claimed), flush=True)
"""


def subprocess_env(postgres_url: str, table: str) -> dict[str, str]:
    return {**os.environ, "LGR_TEST_PG": postgres_url, "LGR_TEST_TABLE": table}


def test_a_claim_skips_letters_another_worker_holds(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    now = T0 + timedelta(hours=1)
    held = pg_store.add(letter(0, next_attempt_at=T0))
    free = pg_store.add(letter(1, next_attempt_at=T0 + timedelta(seconds=1)))
    # a store that gives up on a row lock after 5 s instead of waiting for ever
    parts = urlsplit(postgres_url)
    query = "&".join(filter(None, [parts.query, "options=-c%20lock_timeout%3D5000"]))
    impatient_url = urlunsplit(parts._replace(query=query))
    with psycopg.connect(postgres_url, connect_timeout=5) as conn, conn.transaction():
        locked = sql.SQL("SELECT id FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(table))
        assert conn.execute(locked, (held.id,)).fetchone() == (held.id,)
        with PostgresLetterStore(impatient_url, table=table) as other:
            claimed = other.claim(now=now, limit=10, max_retries=5)
        assert [x.id for x in claimed] == [free.id]  # at once, skipping the held row
    assert [x.id for x in pg_store.claim(now=now, limit=10, max_retries=5)] == [held.id]


def kill_running(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.kill()


def test_claims_from_two_processes_never_share_a_letter(
    postgres_url: str, pg_store: PostgresLetterStore, table: str
) -> None:
    ids = {pg_store.add(letter(n, next_attempt_at=T0)).id for n in range(300)}
    env = subprocess_env(postgres_url, table)
    with contextlib.ExitStack() as stack:
        workers = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", CLAIM_WORKER],
                    cwd=REPO,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(2)
        ]
        stack.callback(kill_running, workers)  # runs before the Popens' own exits
        for worker in workers:  # both connected before either claims
            assert worker.stdout is not None
            assert worker.stderr is not None
            if worker.stdout.readline().strip() != "ready":
                worker.kill()
                pytest.fail(f"claim worker did not start:\n{worker.stderr.read()}")
        for worker in workers:  # release both, then wait for both
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    claimed: list[str] = []
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        claimed.extend(json.loads(out))
    assert len(claimed) == len(ids)  # nothing claimed twice
    assert set(claimed) == ids  # nothing left behind
    assert pg_store.counts()["retrying"] == len(ids)


CRASH_WORKER = """
import os
from langgraph_resilience.dead_letter import DeadLetterQueue
from langgraph_resilience.stores.letters import DeadLetter
from langgraph_resilience.stores.postgres_letters import PostgresLetterStore

url = os.environ["LGR_TEST_PG"]
store = PostgresLetterStore.from_url(url, table=os.environ["LGR_TEST_TABLE"])
dlq = DeadLetterQueue(store, url=url)
stored = dlq.put(
    DeadLetter(
        thread_id="crash-thread", checkpoint_id="cp", task_id="task", node="search",
        error_type="ConnectionError", error_message="down", error_code="CONNECTION",
        input={"query": "tides", "api_key": "sk-live"},
    )
)
print(stored.id, flush=True)
os._exit(137)  # no close, no cleanup: the process dies right after put returned
"""

READ_WORKER = """
import json, os
from langgraph_resilience.dead_letter import DeadLetterQueue
from langgraph_resilience.stores.postgres_letters import PostgresLetterStore

url = os.environ["LGR_TEST_PG"]
store = PostgresLetterStore.from_url(url, table=os.environ["LGR_TEST_TABLE"])
dlq = DeadLetterQueue(store, url=url)
print(json.dumps([x.model_dump(mode="json") for x in dlq.list()]))
dlq.close()
"""


def test_a_letter_put_before_a_crash_is_found_by_a_new_process(
    postgres_url: str, table: str
) -> None:
    env = subprocess_env(postgres_url, table)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_WORKER],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert crashed.returncode == 137, crashed.stderr
    letter_id = crashed.stdout.strip()
    assert letter_id

    found = subprocess.run(
        [sys.executable, "-c", READ_WORKER],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert found.returncode == 0, found.stderr
    letters = [DeadLetter.model_validate(x) for x in json.loads(found.stdout)]
    assert [x.id for x in letters] == [letter_id]
    assert letters[0].input == {"query": "tides", "api_key": REDACTED}
    assert letters[0].status is LetterStatus.PENDING


# ---- URLs and passwords ------------------------------------------------------------------


def with_password(url: str, password: str, *, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    netloc = f"{parts.username or 'postgres'}:{password}@{host}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_open_letter_store_opens_a_postgres_store(postgres_url: str, scheme: str) -> None:
    url = scheme + postgres_url[postgres_url.index("://") :]
    store = open_letter_store(url)
    try:
        assert isinstance(store, PostgresLetterStore)
        assert store.table == DEFAULT_TABLE
    finally:
        store.close()


def test_repr_never_shows_the_password(postgres_url: str, table: str) -> None:
    real_password = urlsplit(postgres_url).password
    assert real_password, "the services URL carries a password"
    with PostgresLetterStore.from_url(postgres_url, table=table) as store:
        dlq = DeadLetterQueue(store, url=postgres_url)
        for text in (repr(store), str(store), repr(dlq), dlq.url, store.url):
            assert f":{real_password}@" not in text
            assert ":***@" in text
        assert table in repr(store)

    secret = "pw-" + uuid.uuid4().hex
    url = with_password(postgres_url, secret, port=1)  # nothing listens on port 1
    store = PostgresLetterStore(url, table=table, timeout=0.5)
    try:
        dlq = DeadLetterQueue(store, url=url)
        for text in (repr(store), str(store), repr(dlq), dlq.url):
            assert secret not in text
        with pytest.raises(psycopg.OperationalError) as failure:  # PoolTimeout is one
            store.get("x")
        assert secret not in str(failure.value)
    finally:
        store.close()


def test_a_bad_url_is_reported_without_its_password() -> None:
    secret = "pw-" + uuid.uuid4().hex
    with pytest.raises(ValueError, match="not a valid Postgres URL") as failure:
        PostgresLetterStore(f"postgresql://app:{secret}@db:5432/app?no_such_option=1")
    assert secret not in str(failure.value)


def test_naive_datetimes_are_refused(pg_store: PostgresLetterStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pg_store.claim(now=T0.replace(tzinfo=None), limit=1, max_retries=1)
    with pytest.raises(ValueError, match="timezone-aware"):
        pg_store.query(LetterQuery(since=T0.replace(tzinfo=None)))


# ---- the queue, end to end ---------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> Any:
        return self.now


def test_the_queue_works_end_to_end(postgres_url: str, pg_store: PostgresLetterStore) -> None:
    clock = Clock()
    dlq = DeadLetterQueue(pg_store, url=postgres_url, now=clock, retry_base=30, retry_cap=60)

    put = dlq.put(letter(1, input={"query": "tides", "password": "hunter2"}))
    assert put.input == {"query": "tides", "password": REDACTED}
    assert dlq.get(put.id) == put
    assert dlq.put(letter(1)) == put  # the same failure again
    review = dlq.put(letter(2, node="writer"))
    retriable = dlq.put(letter(3, next_attempt_at=dlq.first_retry_at()))

    assert [x.id for x in dlq.list()] == [put.id, review.id, retriable.id]
    assert [x.id for x in dlq.list(node="writer")] == [review.id]
    assert [x.id for x in dlq.list(thread_id="t1")] == [put.id]
    assert [x.id for x in dlq.list(limit=1, offset=1)] == [review.id]

    assert dlq.resolve(put.id).status is LetterStatus.RESOLVED
    with pytest.raises(ValueError, match="already resolved"):
        dlq.discard(put.id)
    assert dlq.discard(review.id).status is LetterStatus.DISCARDED
    assert [x.id for x in dlq.list(status="resolved")] == [put.id]

    assert dlq.drain_retriable() == []  # not due yet
    clock.now += timedelta(seconds=30)
    drained = dlq.drain_retriable()
    assert [x.id for x in drained] == [retriable.id]
    assert dlq.get(retriable.id).status is LetterStatus.RETRYING  # type: ignore[union-attr]
    later = dlq.retry_later(retriable.id)
    assert later.retry_count == 1
    assert dlq.get(retriable.id) == later
    assert dlq.drain_retriable() == []

    assert dlq.stats() == {
        "pending": 1,
        "retrying": 0,
        "resolved": 1,
        "discarded": 1,
        "total": 3,
    }
    clock.now += timedelta(days=2)
    assert dlq.purge(older_than=timedelta(days=1)) == 2
    assert [x.id for x in dlq.list()] == [retriable.id]


async def test_the_queue_async_front(postgres_url: str, pg_store: PostgresLetterStore) -> None:
    dlq = DeadLetterQueue(pg_store, url=postgres_url)
    stored = await dlq.aput(letter(1, input={"token": "abc", "q": 1}))
    assert stored.input == {"token": REDACTED, "q": 1}
    assert await dlq.aget(stored.id) == stored
    assert [x.id for x in await dlq.alist()] == [stored.id]
    await dlq.aresolve(stored.id)
    assert (await dlq.astats())["resolved"] == 1
    await dlq.aclose()
