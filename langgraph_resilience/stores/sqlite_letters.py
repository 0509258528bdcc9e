"""Dead letters in a SQLite file: the embedded default (``sqlite:///path``).

One table, ``dead_letters``: the letter itself is the ``body`` column, JSON written by
``DeadLetter.model_dump_json`` (never pickle); ``key``, ``status``, ``node``,
``thread_id``, ``created_at``, ``next_attempt_at`` and ``retry_count`` are copies kept
for constraints, filters and ordering, always written together with the body.
Timestamps are stored as fixed-width UTC ISO text (``2026-11-22T12:00:00.000000Z``), so
text order is time order.

The file (and its directory) is created on demand, in WAL mode so that readers never
wait for a writer. Several processes may share one file: every write is one
transaction, and ``claim`` takes the write lock (``BEGIN IMMEDIATE``) before it reads,
so two processes draining the same file never claim the same letter.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from langgraph_resilience.core.letters import LetterStatus
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery

__all__ = ["SqliteLetterStore"]

MEMORY = ":memory:"
SCHEMA_VERSION = 1

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        node TEXT NOT NULL,
        thread_id TEXT,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT,
        retry_count INTEGER NOT NULL,
        body TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS dead_letters_due ON dead_letters (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS dead_letters_created ON dead_letters (created_at, id)",
)

_COLUMNS = "id, key, status, node, thread_id, created_at, next_attempt_at, retry_count, body"


def _ts(moment: datetime) -> str:
    """``moment`` as sortable UTC text; a naive datetime is refused (as in memory)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TypeError(f"need a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _row(letter: DeadLetter) -> tuple[Any, ...]:
    """The values of ``_COLUMNS`` for ``letter``."""
    return (
        letter.id,
        letter.key,
        letter.status.value,
        letter.node,
        letter.thread_id,
        _ts(letter.created_at),
        None if letter.next_attempt_at is None else _ts(letter.next_attempt_at),
        letter.retry_count,
        letter.model_dump_json(),
    )


def _marks(values: Iterable[object]) -> str:
    """``?, ?, ?``: one placeholder per value, for an ``IN (...)`` list."""
    return ", ".join("?" for _ in values)


class SqliteLetterStore:
    """Dead letters in a SQLite file, shared by threads and by processes.

    Example:
        ```python
        from langgraph_resilience.stores.sqlite_letters import SqliteLetterStore

        # a file: "sqlite:///dlq/letters.db" (relative) or "sqlite:////var/dlq.db"
        with SqliteLetterStore.from_url("sqlite:///:memory:") as store:
            assert store.counts()["pending"] == 0
        ```

    Args:
        path: the database file (created with its directory if missing), or
            ``":memory:"`` for a private in-memory database.
        timeout: seconds to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        """The database file, as given (``":memory:"`` for an in-memory database)."""
        if not self.path:
            raise ValueError("the SQLite dead-letter store needs a file path or ':memory:'")
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per store, guarded by a lock: every call is a short transaction
        # that never runs user code, so threads (the queue's async front runs stores in
        # worker threads) queue up for microseconds. One connection also keeps
        # ":memory:" a single database, which a connection per thread would split.
        # Other processes are kept apart by SQLite's own file locks.
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path,
            timeout=timeout,  # the busy timeout: wait for another writer, then fail
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # safe: every use holds self._lock
        )
        try:
            self._setup()
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SqliteLetterStore:
        """Open ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or
        ``sqlite:///:memory:``."""
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqlite" or parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                f"bad SQLite URL {url!r}: use sqlite:///relative/path, "
                "sqlite:////absolute/path or sqlite:///:memory:"
            )
        path = parts.path[1:]  # "/rel" -> "rel", "//abs" -> "/abs", "/:memory:" -> ":memory:"
        if not path:
            raise ValueError(f"bad SQLite URL {url!r}: no file path after sqlite:///")
        return cls(path, timeout=timeout)

    def _setup(self) -> None:
        with self._lock:
            conn = self._conn
            # WAL: readers never block the writer, and one writer per file at a time.
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL syncs the WAL on every commit: a letter whose put returned survives
            # a killed process *and* a power loss (NORMAL may lose the last commits on
            # power loss, which the queue's "nothing is lost" promise does not allow).
            conn.execute("PRAGMA synchronous=FULL")
        with self._transaction() as conn:
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} holds dead letters in schema version {version}; this "
                    f"langgraph-resilience reads up to {SCHEMA_VERSION}: upgrade it"
                )
            for statement in _SCHEMA:
                conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION:d}")  # an int, not input

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the file's write lock from its first statement."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # ---- the LetterStore protocol ------------------------------------------------------

    def add(self, letter: DeadLetter) -> DeadLetter:
        with self._transaction() as conn:
            try:
                inserted = conn.execute(
                    f"INSERT INTO dead_letters ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO NOTHING",
                    _row(letter),
                ).rowcount
            except sqlite3.IntegrityError as exc:  # the id is taken by another failure
                raise ValueError(
                    f"letter id {letter.id!r} is already stored for a different failure"
                ) from exc
            if inserted == 1:
                return letter  # stored as given: no need to read it back
            row = conn.execute(
                "SELECT body FROM dead_letters WHERE key = ?", (letter.key,)
            ).fetchone()
        return DeadLetter.model_validate_json(row[0])

    def get(self, letter_id: str) -> DeadLetter | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM dead_letters WHERE id = ?", (letter_id,)
            ).fetchone()
        return None if row is None else DeadLetter.model_validate_json(row[0])

    def query(self, query: LetterQuery) -> list[DeadLetter]:
        where: list[str] = []
        params: list[Any] = []
        if query.status is not None:
            where.append("status = ?")
            params.append(LetterStatus(query.status).value)
        if query.node is not None:
            where.append("node = ?")
            params.append(query.node)
        if query.thread_id is not None:
            where.append("thread_id = ?")
            params.append(query.thread_id)
        if query.since is not None:
            where.append("created_at >= ?")
            params.append(_ts(query.since))
        if query.until is not None:
            where.append("created_at < ?")
            params.append(_ts(query.until))
        sql = "SELECT body FROM dead_letters"
        if where:
            sql += " WHERE " + " AND ".join(where)  # fixed fragments; values are bound
        sql += " ORDER BY created_at, id LIMIT ? OFFSET ?"
        params += [query.limit, query.offset]
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [DeadLetter.model_validate_json(body) for (body,) in rows]

    def replace(self, letter: DeadLetter, *, expect: Iterable[LetterStatus]) -> bool:
        allowed = [LetterStatus(status).value for status in set(expect)]
        if not allowed:
            return False
        letter_id, *values = _row(letter)
        with self._transaction() as conn:
            try:
                cursor = conn.execute(
                    "UPDATE dead_letters SET key = ?, status = ?, node = ?, thread_id = ?, "
                    "created_at = ?, next_attempt_at = ?, retry_count = ?, body = ? "
                    f"WHERE id = ? AND status IN ({_marks(allowed)})",
                    (*values, letter_id, *allowed),
                )
            except sqlite3.IntegrityError as exc:  # the new key belongs to another letter
                raise ValueError(
                    f"cannot replace letter {letter_id!r}: another letter has key {letter.key!r}"
                ) from exc
            return cursor.rowcount == 1

    def claim(self, *, now: datetime, limit: int, max_retries: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT body FROM dead_letters WHERE status = ? "
                "AND next_attempt_at IS NOT NULL AND next_attempt_at <= ? AND retry_count < ? "
                "ORDER BY next_attempt_at, created_at, id LIMIT ?",
                (LetterStatus.PENDING.value, _ts(now), max_retries, limit),
            ).fetchall()
            claimed = [
                DeadLetter.model_validate_json(body).model_copy(
                    update={"status": LetterStatus.RETRYING}
                )
                for (body,) in rows
            ]
            conn.executemany(
                "UPDATE dead_letters SET status = ?, body = ? WHERE id = ?",
                [(letter.status.value, letter.model_dump_json(), letter.id) for letter in claimed],
            )
        return claimed

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in LetterStatus}
        with self._lock:
            rows = self._conn.execute(
                "SELECT status, COUNT(*) FROM dead_letters GROUP BY status"
            ).fetchall()
        counts.update(rows)
        return counts

    def purge(self, *, older_than: datetime, statuses: Iterable[LetterStatus]) -> int:
        allowed = [LetterStatus(status).value for status in set(statuses)]
        if not allowed:
            return 0
        with self._transaction() as conn:
            cursor = conn.execute(
                f"DELETE FROM dead_letters WHERE created_at < ? AND status IN ({_marks(allowed)})",
                (_ts(older_than), *allowed),
            )
            return cursor.rowcount

    def close(self) -> None:
        """Close the connection (again is a no-op); the file stays."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteLetterStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SqliteLetterStore {self.path}>"
