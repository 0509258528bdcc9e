"""Dead letters in PostgreSQL (``postgresql://`` and ``postgres://`` URLs).

One table holds every letter: the whole record as ``jsonb`` plus the columns the
queue filters and sorts on. The table and its indexes are created on first use.
Concurrent workers claim due letters with ``FOR UPDATE SKIP LOCKED``, so two drains,
in one process or many, never get the same letter.

Needs the ``postgres`` extra (``pip install 'langgraph-resilience[postgres]'``).

Example:
    ```python
    from langgraph_resilience import DeadLetterQueue

    dlq = DeadLetterQueue.from_url("postgresql://app:secret@db:5432/app")
    print(dlq)  # <DeadLetterQueue postgresql://app:***@db:5432/app>
    ```
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from langgraph_resilience.core.letters import LetterStatus
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery
from langgraph_resilience.stores.urls import mask_url

__all__ = ["DEFAULT_TABLE", "PostgresLetterStore"]

DEFAULT_TABLE = "langgraph_resilience_dead_letters"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_TABLE_NAME = 48
"""Leaves room for the index suffixes within Postgres's 63-byte identifiers."""

_RETRYING = LetterStatus.RETRYING.value


def _table_parts(table: str) -> tuple[str, ...]:
    """``table`` or ``schema.table``, checked: plain identifiers only."""
    parts = tuple(table.split("."))
    if len(parts) > 2 or not all(_NAME.fullmatch(part) for part in parts):
        raise ValueError(
            f"table must be a name like 'dead_letters' or 'schema.dead_letters' "
            f"(letters, digits and '_', not starting with a digit), got {table!r}"
        )
    if len(parts[-1]) > _MAX_TABLE_NAME:
        raise ValueError(f"table name must be at most {_MAX_TABLE_NAME} characters: {table!r}")
    return parts


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def _letter(body: Any) -> DeadLetter:
    return DeadLetter.model_validate(body)


class PostgresLetterStore:
    """Dead letters in a PostgreSQL table, shared by every process that opens it.

    Args:
        url: a libpq URL (``postgresql://user:password@host:5432/db``). Never printed:
            ``repr`` shows it with the password masked.
        table: the table's name, optionally schema-qualified; created if missing.
        min_size: connections the pool keeps open.
        max_size: the most connections the pool opens.
        timeout: seconds to wait for a free connection before ``PoolTimeout``.
        connect_timeout: seconds to wait for the server when connecting (unless the
            URL sets its own ``connect_timeout``).
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,
        connect_timeout: int = 5,
    ) -> None:
        parts = _table_parts(table)
        if min_size < 0 or max_size < max(min_size, 1):
            raise ValueError(
                f"need 0 <= min_size <= max_size and max_size >= 1, "
                f"got min_size={min_size!r}, max_size={max_size!r}"
            )
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self.url = mask_url(url)
        """The URL, with any password masked."""
        self.table = table
        self._table = sql.Identifier(*parts)
        self._insert = sql.SQL(
            "INSERT INTO {t} (id, key, status, node, thread_id, created_at,"
            " next_attempt_at, retry_count, body)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING id"
        ).format(t=self._table)
        self._select_by_key = sql.SQL("SELECT body FROM {t} WHERE key = %s").format(t=self._table)
        self._status_index = sql.Identifier(f"{parts[-1]}_status_due_idx")
        self._created_index = sql.Identifier(f"{parts[-1]}_created_idx")
        try:
            explicit = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise ValueError(f"not a valid Postgres URL: {self.url!r}") from None
        kwargs: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in explicit:
            kwargs["connect_timeout"] = connect_timeout
        self._setup_lock = threading.Lock()
        self._ready = False
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs=kwargs,
            check=ConnectionPool.check_connection,
            name="langgraph_resilience.dead_letters",
            open=True,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresLetterStore:
        """The store for ``url``; ``options`` are the constructor's keyword arguments."""
        return cls(url, **options)

    # ---- LetterStore -----------------------------------------------------------------

    def add(self, letter: DeadLetter) -> DeadLetter:
        """Store ``letter`` unless one with the same ``key`` exists; return the stored one."""
        self._setup()
        # One statement in autocommit: ON CONFLICT waits for a concurrent insert of the
        # same key to commit, so no explicit transaction (and its round trips) is needed.
        with self._pool.connection() as conn:
            try:
                inserted = conn.execute(
                    self._insert, (letter.id, letter.key, *self._columns(letter))
                ).fetchone()
            except psycopg.errors.UniqueViolation:
                # ON CONFLICT (key) covers the failure's identity; this is the id.
                raise ValueError(
                    f"another dead letter with id {letter.id!r} is already stored"
                ) from None
            if inserted is not None:
                return letter  # stored as given: no need to read it back
            row = conn.execute(self._select_by_key, (letter.key,)).fetchone()
        if row is None:  # pragma: no cover - a purge raced the insert
            raise RuntimeError(f"dead letter with key {letter.key!r} vanished while adding")
        return _letter(row[0])

    def get(self, letter_id: str) -> DeadLetter | None:
        self._setup()
        query = sql.SQL("SELECT body FROM {t} WHERE id = %s").format(t=self._table)
        with self._pool.connection() as conn:
            row = conn.execute(query, (letter_id,)).fetchone()
        return None if row is None else _letter(row[0])

    def query(self, query: LetterQuery) -> list[DeadLetter]:
        """Letters matching every filter in ``query``, oldest first (created, then id)."""
        self._setup()
        where: list[sql.Composable] = []
        params: list[Any] = []
        if query.status is not None:
            where.append(sql.SQL("status = %s"))
            params.append(LetterStatus(query.status).value)
        if query.node is not None:
            where.append(sql.SQL("node = %s"))
            params.append(query.node)
        if query.thread_id is not None:
            where.append(sql.SQL("thread_id = %s"))
            params.append(query.thread_id)
        if query.since is not None:
            where.append(sql.SQL("created_at >= %s"))
            params.append(_aware(query.since, "since"))
        if query.until is not None:
            where.append(sql.SQL("created_at < %s"))
            params.append(_aware(query.until, "until"))
        condition = sql.SQL(" AND ").join(where) if where else sql.SQL("TRUE")
        statement = sql.SQL(
            "SELECT body FROM {t} WHERE {condition} ORDER BY created_at, id LIMIT %s OFFSET %s"
        ).format(t=self._table, condition=condition)
        params += [query.limit, query.offset]
        with self._pool.connection() as conn:
            rows = conn.execute(statement, params).fetchall()
        return [_letter(row[0]) for row in rows]

    def replace(self, letter: DeadLetter, *, expect: Iterable[LetterStatus]) -> bool:
        """Overwrite the letter with ``letter.id`` if its stored status is one of ``expect``."""
        allowed = [LetterStatus(status).value for status in expect]
        self._setup()
        statement = sql.SQL(
            "UPDATE {t} SET key = %s, status = %s, node = %s, thread_id = %s,"
            " created_at = %s, next_attempt_at = %s, retry_count = %s, body = %s"
            " WHERE id = %s AND status = ANY(%s::text[])"
        ).format(t=self._table)
        with self._pool.connection() as conn:
            cursor = conn.execute(
                statement, (letter.key, *self._columns(letter), letter.id, allowed)
            )
            return cursor.rowcount == 1

    def claim(self, *, now: datetime, limit: int, max_retries: int) -> list[DeadLetter]:
        """Mark up to ``limit`` due letters ``retrying`` and return them, longest overdue
        first. Rows another worker is claiming are skipped, never waited for."""
        _aware(now, "now")
        self._setup()
        statement = sql.SQL(
            "WITH claimed AS ("
            " UPDATE {t} SET status = %s, body = jsonb_set(body, '{{status}}', to_jsonb(%s::text))"
            " WHERE id IN ("
            "  SELECT id FROM {t}"
            "  WHERE status = %s AND next_attempt_at <= %s AND retry_count < %s"
            "  ORDER BY next_attempt_at, created_at, id"
            "  LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING body, next_attempt_at, created_at, id)"
            " SELECT body FROM claimed ORDER BY next_attempt_at, created_at, id"
        ).format(t=self._table)
        params = (
            _RETRYING,
            _RETRYING,
            LetterStatus.PENDING.value,
            now,
            max_retries,
            limit,
        )
        with self._pool.connection() as conn:
            rows = conn.execute(statement, params).fetchall()
        return [_letter(row[0]) for row in rows]

    def counts(self) -> dict[str, int]:
        """Letters per status (every status present, 0 when none)."""
        self._setup()
        statement = sql.SQL("SELECT status, count(*) FROM {t} GROUP BY status").format(
            t=self._table
        )
        with self._pool.connection() as conn:
            rows = conn.execute(statement).fetchall()
        counts = {status.value: 0 for status in LetterStatus}
        for status, count in rows:
            counts[status] = int(count)
        return counts

    def purge(self, *, older_than: datetime, statuses: Iterable[LetterStatus]) -> int:
        """Delete letters created before ``older_than`` in ``statuses``; return how many."""
        allowed = [LetterStatus(status).value for status in statuses]
        _aware(older_than, "older_than")
        self._setup()
        statement = sql.SQL(
            "DELETE FROM {t} WHERE created_at < %s AND status = ANY(%s::text[])"
        ).format(t=self._table)
        with self._pool.connection() as conn:
            return conn.execute(statement, (older_than, allowed)).rowcount

    def close(self) -> None:
        """Close the pool's connections; the store can't be used afterwards."""
        self._pool.close()

    # ---- helpers ---------------------------------------------------------------------

    @staticmethod
    def _columns(letter: DeadLetter) -> tuple[Any, ...]:
        """status, node, thread_id, created_at, next_attempt_at, retry_count, body."""
        return (
            letter.status.value,
            letter.node,
            letter.thread_id,
            letter.created_at,
            letter.next_attempt_at,
            letter.retry_count,
            Jsonb(letter.model_dump(mode="json")),
        )

    def _setup(self) -> None:
        """Create the table and its indexes once, whoever gets here first."""
        if self._ready:
            return
        with self._setup_lock:
            if self._ready:
                return
            statements = [
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {t} ("
                    " id text PRIMARY KEY,"
                    " key text NOT NULL UNIQUE,"
                    " status text NOT NULL,"
                    " node text NOT NULL,"
                    " thread_id text,"
                    " created_at timestamptz NOT NULL,"
                    " next_attempt_at timestamptz,"
                    " retry_count integer NOT NULL DEFAULT 0,"
                    " body jsonb NOT NULL)"
                ).format(t=self._table),
                sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (status, next_attempt_at)").format(
                    i=self._status_index, t=self._table
                ),
                sql.SQL("CREATE INDEX IF NOT EXISTS {i} ON {t} (created_at)").format(
                    i=self._created_index, t=self._table
                ),
            ]
            with self._pool.connection() as conn, conn.transaction():
                # concurrent CREATE ... IF NOT EXISTS can still collide: serialise them
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                for statement in statements:
                    conn.execute(statement)
            self._ready = True

    def __enter__(self) -> PostgresLetterStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresLetterStore {self.url} table={self.table}>"
