"""The SQLite dead-letter store: the contract, plus what a file adds: URLs, WAL and
durable commits, JSON bodies, other connections and other processes on the same file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from langgraph_resilience import DeadLetter, DeadLetterQueue, LetterStatus
from langgraph_resilience.stores.letters import LetterQuery, LetterStore
from langgraph_resilience.stores.sqlite_letters import SqliteLetterStore
from langgraph_resilience.stores.urls import open_letter_store
from tests.stores.letter_contract import T0, LetterStoreContract, letter

REPO = Path(__file__).resolve().parents[2]
CRASH_EXIT_CODE = 137


class TestSqliteLetterStore(LetterStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LetterStore]:
        store = SqliteLetterStore(tmp_path / "letters.db")
        yield store
        store.close()


class TestSqliteInMemoryLetterStore(LetterStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[LetterStore]:
        store = SqliteLetterStore.from_url("sqlite:///:memory:")
        yield store
        store.close()


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the store's file, to look under the hood."""
    return sqlite3.connect(path)


# ---- URLs and the file -------------------------------------------------------------


def test_an_absolute_url_creates_the_file_and_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "letters.db"
    store = open_letter_store(f"sqlite:///{path}")  # sqlite:////tmp/...: four slashes
    try:
        assert isinstance(store, SqliteLetterStore)
        assert store.path == str(path)
        assert repr(store) == f"<SqliteLetterStore {path}>"
        assert path.is_file()
    finally:
        store.close()


def test_a_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SqliteLetterStore.from_url("sqlite:///data/letters.db") as store:
        assert store.path == "data/letters.db"
        store.add(letter(1))
    assert (tmp_path / "data" / "letters.db").is_file()


def test_memory_url_is_a_private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with (
        SqliteLetterStore.from_url("sqlite:///:memory:") as one,
        SqliteLetterStore.from_url("sqlite:///:memory:") as two,
    ):
        one.add(letter(1))
        assert len(one.query(LetterQuery())) == 1
        assert two.query(LetterQuery()) == []
    assert list(tmp_path.iterdir()) == []  # no file called ":memory:"


@pytest.mark.parametrize(
    "url", ["sqlite://host/letters.db", "sqlite:///", "sqlite://", "sqlite:///x.db?mode=ro"]
)
def test_bad_urls_say_what_to_use(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite URL"):
        SqliteLetterStore.from_url(url)


def test_the_file_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    with SqliteLetterStore(tmp_path / "letters.db") as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    with closing(raw(tmp_path / "letters.db")) as conn:  # WAL is a property of the file
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_letters_are_json_rows_with_their_indexed_columns(tmp_path: Path) -> None:
    path = tmp_path / "letters.db"
    with SqliteLetterStore(path) as store:
        stored = store.add(letter(3, next_attempt_at=T0 + timedelta(minutes=1), retry_count=2))
    with closing(raw(path)) as conn:
        row = conn.execute(
            "SELECT id, key, status, node, thread_id, created_at, next_attempt_at, "
            "retry_count, body FROM dead_letters"
        ).fetchone()
    *columns, body = row
    assert columns == [
        stored.id,
        "t3||cp3|task3|search",
        "pending",
        "search",
        "t3",
        "2026-11-22T12:00:03.000000Z",
        "2026-11-22T12:01:00.000000Z",
        2,
    ]
    assert json.loads(body) == json.loads(stored.model_dump_json())


def test_filter_values_are_bound_not_spliced(tmp_path: Path) -> None:
    with SqliteLetterStore(tmp_path / "letters.db") as store:
        store.add(letter(1))
        assert store.query(LetterQuery(node="x' OR '1'='1")) == []
        assert store.query(LetterQuery(thread_id="t1' --")) == []
        assert len(store.query(LetterQuery())) == 1


def test_a_taken_id_for_another_failure_is_refused(tmp_path: Path) -> None:
    with SqliteLetterStore(tmp_path / "letters.db") as store:
        first = store.add(letter(1))
        with pytest.raises(ValueError, match="already stored"):
            store.add(letter(2, id=first.id))
        assert store.get(first.id) == first


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "letters.db"
    SqliteLetterStore(path).close()
    with closing(raw(path)) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(RuntimeError, match="schema version 99"):
        SqliteLetterStore(path)


# ---- other connections, other processes --------------------------------------------


def test_a_second_store_on_the_file_sees_the_letters(tmp_path: Path) -> None:
    path = tmp_path / "letters.db"
    with SqliteLetterStore(path) as writer, SqliteLetterStore(path) as reader:
        stored = writer.add(letter(1, next_attempt_at=T0))
        assert reader.get(stored.id) == stored
        assert reader.add(letter(1)) == stored  # idempotent across connections
        (claimed,) = reader.claim(now=T0, limit=5, max_retries=3)
        assert writer.get(stored.id) == claimed
    with SqliteLetterStore(path) as reopened:
        assert reopened.get(stored.id) == claimed
        assert reopened.counts()["retrying"] == 1


CLAIMER = """
import json, sys
from datetime import datetime
from langgraph_resilience.stores.sqlite_letters import SqliteLetterStore

store = SqliteLetterStore(sys.argv[1])
now = datetime.fromisoformat(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # the parent starts every claimer at once
claimed = []
while batch := store.claim(now=now, limit=2, max_retries=5):
    assert all(letter.status.value == "retrying" for letter in batch)
    claimed.extend(letter.id for letter in batch)
store.close()
print(json.dumps(claimed), flush=True)
"""


def test_claims_from_several_processes_never_share_a_letter(tmp_path: Path) -> None:
    path = tmp_path / "letters.db"
    with SqliteLetterStore(path) as store:
        ids = {store.add(letter(n, next_attempt_at=T0)).id for n in range(150)}
    now = (T0 + timedelta(hours=1)).isoformat()
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path), now],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for claimer in claimers:
            assert claimer.stdout is not None
            assert claimer.stdout.readline() == "ready\n", claimer.communicate()[1]
        for claimer in claimers:
            assert claimer.stdin is not None
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
        results = [claimer.communicate(timeout=120) for claimer in claimers]
    finally:
        for claimer in claimers:
            if claimer.poll() is None:
                claimer.kill()
                claimer.communicate()
    claimed: list[str] = []
    for claimer, (out, err) in zip(claimers, results, strict=True):
        assert claimer.returncode == 0, err
        claimed.extend(json.loads(out))
    assert sorted(claimed) == sorted(ids)  # every letter once, none twice
    with SqliteLetterStore(path) as store:
        assert store.counts()["retrying"] == len(ids)


CRASHER = """
import os, sys
from langgraph_resilience import DeadLetter, DeadLetterQueue

url, resolved_id, pending_id = sys.argv[1:]
dlq = DeadLetterQueue.from_url(url)
common = dict(thread_id="t", checkpoint_id="cp", node="search", error_type="ConnectionError",
              error_message="down", error_code="CONNECTION")
dlq.put(DeadLetter(id=resolved_id, task_id="a", **common))
dlq.resolve(resolved_id)
dlq.put(DeadLetter(id=pending_id, task_id="b", input={"query": "tides", "api_key": "sk"}, **common))
os._exit(137)  # killed right after put returned: no close, no cleanup
"""


def test_a_letter_survives_its_process_being_killed_right_after_put(tmp_path: Path) -> None:
    path = tmp_path / "dlq" / "letters.db"
    url = f"sqlite:///{path}"
    done = subprocess.run(
        [sys.executable, "-c", CRASHER, url, "resolved-1", "pending-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == CRASH_EXIT_CODE, done.stderr
    dlq = DeadLetterQueue.from_url(url)
    try:
        kept = dlq.get("pending-1")
        assert kept is not None
        assert kept.status is LetterStatus.PENDING
        assert kept.input == {"query": "tides", "api_key": "[REDACTED]"}
        assert dlq.get("resolved-1").status is LetterStatus.RESOLVED  # type: ignore[union-attr]
        assert dlq.stats() == {
            "pending": 1,
            "retrying": 0,
            "resolved": 1,
            "discarded": 0,
            "total": 2,
        }
    finally:
        dlq.close()


# ---- the queue on SQLite, end to end -----------------------------------------------


def failure(task: str, **changes: object) -> DeadLetter:
    """A failure of task ``a``, ``b``, ...: created 0, 1, ... seconds after T0."""
    fields: dict[str, object] = {
        "thread_id": "t",
        "checkpoint_id": "cp",
        "task_id": task,
        "node": "search",
        "input": {"query": "tides", "token": "secret"},
        "error_type": "ConnectionError",
        "error_message": "down",
        "error_code": "CONNECTION",
        "created_at": T0 + timedelta(seconds=ord(task) - ord("a")),
    }
    fields.update(changes)
    return DeadLetter.model_validate(fields)


def test_the_queue_works_end_to_end_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'letters.db'}"
    now = T0 + timedelta(hours=1)
    dlq = DeadLetterQueue.from_url(url, retry_base=30, retry_cap=100, now=lambda: now)
    try:
        assert dlq.url == url
        assert isinstance(dlq.store, SqliteLetterStore)
        first = dlq.put(failure("a"))
        assert dlq.put(failure("a", error_message="again on resume")) == first
        assert first.input == {"query": "tides", "token": "[REDACTED]"}
        retriable = dlq.put(failure("b", next_attempt_at=T0))
        dlq.put(failure("c", node="write"))

        assert [x.task_id for x in dlq.list()] == ["a", "b", "c"]
        assert [x.task_id for x in dlq.list(node="write")] == ["c"]

        assert dlq.resolve(first.id).status is LetterStatus.RESOLVED
        with pytest.raises(ValueError, match="already resolved"):
            dlq.discard(first.id)
        assert [x.task_id for x in dlq.list(status="resolved")] == ["a"]

        (claimed,) = dlq.drain_retriable()
        assert claimed.id == retriable.id
        assert dlq.drain_retriable() == []
        later = dlq.retry_later(claimed.id)
        assert later.retry_count == 1
        assert later.next_attempt_at == now + timedelta(seconds=30)
        assert dlq.get(claimed.id) == later

        assert dlq.stats() == {
            "pending": 2,
            "retrying": 0,
            "resolved": 1,
            "discarded": 0,
            "total": 3,
        }
        assert dlq.purge(older_than=timedelta(hours=2)) == 0  # created after the cutoff
        assert dlq.purge(older_than=timedelta(minutes=30)) == 1  # the resolved one only
        assert dlq.get(first.id) is None
    finally:
        dlq.close()
    reopened = DeadLetterQueue.from_url(url)
    try:
        assert reopened.stats()["total"] == 2
    finally:
        reopened.close()


async def test_the_async_front_works_on_sqlite(tmp_path: Path) -> None:
    dlq = DeadLetterQueue.from_url(f"sqlite:///{tmp_path / 'letters.db'}")
    try:
        stored = await dlq.aput(failure("a"))
        assert await dlq.aget(stored.id) == stored
        assert [x.id for x in await dlq.alist()] == [stored.id]
        assert (await dlq.aresolve(stored.id)).status is LetterStatus.RESOLVED
        assert (await dlq.astats())["resolved"] == 1
    finally:
        await dlq.aclose()
