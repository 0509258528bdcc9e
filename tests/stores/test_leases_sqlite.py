"""The SQLite run-lease store: the contract, plus what a file adds: URLs, WAL, other
connections and other processes on the same file racing for one thread."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path

import pytest

from langgraph_resilience import FakeClock
from langgraph_resilience.leases import RunLeases
from langgraph_resilience.stores.leases import TABLE, LeaseStore, SqliteLeaseStore
from tests.stores.lease_contract import T0, TTL, LeaseStoreContract, race

REPO = Path(__file__).resolve().parents[2]


class TestSqliteLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LeaseStore]:
        store = SqliteLeaseStore(tmp_path / "leases.db")
        yield store
        store.close()


class TestSqliteInMemoryLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[LeaseStore]:
        store = SqliteLeaseStore.from_url("sqlite:///:memory:")
        yield store
        store.close()


# ---- URLs and the file -------------------------------------------------------------


def test_an_absolute_url_creates_the_file_and_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "leases.db"
    leases = RunLeases.from_url(f"sqlite:///{path}", ttl=30)  # sqlite:////tmp/...: four slashes
    try:
        assert isinstance(leases.store, SqliteLeaseStore)
        assert leases.store.path == str(path)
        assert repr(leases.store) == f"<SqliteLeaseStore {path}>"
        assert repr(leases) == f"<RunLeases ttl=30s store=<SqliteLeaseStore {path}>>"
        assert path.is_file()
    finally:
        leases.close()


def test_a_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with SqliteLeaseStore.from_url("sqlite:///data/leases.db") as store:
        assert store.path == "data/leases.db"
        assert store.claim("t", "worker-a", now=T0, expires_at=T0 + TTL) is not None
    assert (tmp_path / "data" / "leases.db").is_file()


def test_memory_url_is_a_private_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with (
        SqliteLeaseStore.from_url("sqlite:///:memory:") as one,
        SqliteLeaseStore.from_url("sqlite:///:memory:") as two,
    ):
        assert one.claim("t", "worker-a", now=T0, expires_at=T0 + TTL) is not None
        assert two.get("t") is None
    assert list(tmp_path.iterdir()) == []  # no file called ":memory:"


@pytest.mark.parametrize(
    "url", ["sqlite://host/leases.db", "sqlite:///", "sqlite://", "sqlite:///x.db?mode=ro"]
)
def test_bad_urls_say_what_to_use(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite URL"):
        SqliteLeaseStore.from_url(url)


def test_an_empty_path_is_refused() -> None:
    with pytest.raises(ValueError, match="file path"):
        SqliteLeaseStore("")


def test_store_options_reach_the_store(tmp_path: Path) -> None:
    leases = RunLeases.from_url(
        f"sqlite:///{tmp_path / 'leases.db'}", ttl=30, store_options={"timeout": 0.25}
    )
    try:
        assert isinstance(leases.store, SqliteLeaseStore)
        # sqlite3's timeout becomes the busy timeout, in milliseconds
        assert leases.store._conn.execute("PRAGMA busy_timeout").fetchone() == (250,)
    finally:
        leases.close()


def test_the_file_is_in_wal_mode_with_one_row_per_thread(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    with SqliteLeaseStore(path) as store:
        store.claim("t", "worker-a", now=T0, expires_at=T0 + TTL)
        store.claim("t", "worker-a", now=T0 + 1, expires_at=T0 + 31)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute(f"SELECT thread_id, owner, token, expires_at FROM {TABLE}").fetchall()
    assert rows == [("t", "worker-a", 2, T0 + 31)]


def test_no_transaction_is_left_open_after_a_claim(tmp_path: Path) -> None:
    """The claim's RETURNING row is read with fetchone: the write must still commit at once,
    or other connections would wait on the lock."""
    path = tmp_path / "leases.db"
    with SqliteLeaseStore(path) as store, SqliteLeaseStore(path, timeout=0.2) as other:
        assert store.claim("t", "worker-a", now=T0, expires_at=T0 + TTL) is not None
        assert store.claim("u", "worker-a", now=T0, expires_at=T0 + TTL) is not None
        assert not store._conn.in_transaction
        assert other.claim("v", "worker-b", now=T0, expires_at=T0 + TTL) is not None


# ---- other connections, other processes --------------------------------------------


def test_a_second_store_on_the_file_sees_the_leases(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    with SqliteLeaseStore(path) as first, SqliteLeaseStore(path) as second:
        held = first.claim("t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert second.get("t") == held
        assert second.claim("t", "worker-b", now=T0 + 1, expires_at=T0 + 31) is None
        assert second.expired(now=T0 + TTL) == [held]
        now = T0 + TTL + 1
        taken = second.claim("t", "worker-b", now=now, expires_at=now + TTL)
        assert taken is not None
        assert taken.token == 2
        assert first.renew(held, expires_at=now + 60) is None  # fenced off from the other side
        assert first.get("t") == taken
    with SqliteLeaseStore(path) as reopened:
        assert reopened.get("t") == taken


def test_claims_through_several_connections_have_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "leases.db"
    with ExitStack() as stack:
        stores: list[LeaseStore] = [stack.enter_context(SqliteLeaseStore(path)) for _ in range(6)]
        stores[0].claim("lapsed", "dead", now=T0, expires_at=T0 + TTL)
        for thread_id, token in (("fresh", 1), ("lapsed", 2)):
            granted = race(stores, thread_id, now=T0 + TTL + 1)
            assert len(granted) == 1, (thread_id, granted)
            assert granted[0].token == token
            assert stores[-1].get(thread_id) == granted[0]


CLAIMER = """
import json, os, sys
from langgraph_resilience.stores.leases import SqliteLeaseStore

path, now = sys.argv[1], float(sys.argv[2])
store = SqliteLeaseStore(path)
print("ready", flush=True)
sys.stdin.readline()  # the parent starts every claimer at once
tokens = {}
for thread_id in ("fresh", "lapsed"):
    lease = store.claim(thread_id, f"pid-{os.getpid()}", now=now, expires_at=now + 30)
    tokens[thread_id] = None if lease is None else lease.token
store.close()
print(json.dumps(tokens), flush=True)
"""


def test_claims_from_several_processes_have_one_winner(tmp_path: Path) -> None:
    """Processes race for a thread nobody holds and for one whose holder died."""
    path = tmp_path / "leases.db"
    with SqliteLeaseStore(path) as store:
        store.claim("lapsed", "dead", now=T0, expires_at=T0 + TTL)
    now = T0 + TTL + 1
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(path), repr(now)],
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
        results = [claimer.communicate(timeout=60) for claimer in claimers]
    finally:
        for claimer in claimers:
            if claimer.poll() is None:
                claimer.kill()
                claimer.communicate()
    tokens: list[dict[str, int | None]] = []
    for claimer, (out, err) in zip(claimers, results, strict=True):
        assert claimer.returncode == 0, err
        tokens.append(json.loads(out))
    with SqliteLeaseStore(path) as store:
        for thread_id, token in (("fresh", 1), ("lapsed", 2)):
            won = [n for n, got in enumerate(tokens) if got[thread_id] is not None]
            assert len(won) == 1, tokens  # one process won, the others were refused
            assert tokens[won[0]][thread_id] == token
            lease = store.get(thread_id)
            assert lease is not None
            assert lease.owner == f"pid-{claimers[won[0]].pid}"


def test_a_worker_in_another_process_sees_the_clock_of_the_leases(tmp_path: Path) -> None:
    """Two RunLeases on one file with their own clocks: expiry is judged by the reader's."""
    url = f"sqlite:///{tmp_path / 'leases.db'}"
    here = FakeClock(start=T0)
    there = FakeClock(start=T0 + TTL - 1)
    with (
        RunLeases.from_url(url, ttl=TTL, clock=here) as ours,
        RunLeases.from_url(url, ttl=TTL, clock=there) as theirs,
    ):
        held = ours.claim("t", owner="worker-a")
        assert theirs.holder("t") == held
        assert theirs.expired() == []
        there.advance(1)
        assert theirs.holder("t") is None
        assert theirs.expired() == [held]
        assert theirs.claim("t", owner="worker-b") is not None
        assert ours.renew(held) is None  # type: ignore[arg-type]
