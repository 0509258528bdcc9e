"""Run leases in PostgreSQL (``postgresql://`` URLs), for workers on several machines.

The same statements as the SQLite store (``stores/leases.py``), on a small connection
pool in autocommit mode: each call is one statement, atomic on its own.

Needs the ``postgres`` extra (``pip install 'langgraph-resilience[postgres]'``).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from langgraph_resilience.stores.leases import (
    CLAIM_SQL,
    EXPIRED_SQL,
    GET_SQL,
    RELEASE_SQL,
    RENEW_SQL,
    TABLE,
    TAKE_OVER_SQL,
    Lease,
    _lease,
)
from langgraph_resilience.stores.urls import mask_url

__all__ = ["PostgresLeaseStore"]


def _pg(statement: str) -> bytes:
    """A shared statement with Postgres placeholders (the table name is a constant)."""
    return statement.format(table=TABLE).replace("?", "%s").encode()


_CLAIM, _RENEW, _RELEASE = _pg(CLAIM_SQL), _pg(RENEW_SQL), _pg(RELEASE_SQL)
_TAKE_OVER = _pg(TAKE_OVER_SQL)
_GET, _EXPIRED = _pg(GET_SQL), _pg(EXPIRED_SQL)


class PostgresLeaseStore:
    """Leases in a Postgres table, created on first use.

    Args:
        url: a ``postgresql://`` URL (printed with its password masked).
        max_size: the most connections the pool opens.
        timeout: seconds to wait for a free connection.
        connect_timeout: seconds to wait for the server when connecting.
    """

    def __init__(
        self, url: str, *, max_size: int = 2, timeout: float = 10.0, connect_timeout: int = 5
    ) -> None:
        self.url = mask_url(url)
        """The URL, with any password masked."""
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": connect_timeout},
            check=ConnectionPool.check_connection,
            name="langgraph_resilience.leases",
            open=True,
        )
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (thread_id text PRIMARY KEY,"
                    " owner text NOT NULL, token bigint NOT NULL,"
                    " expires_at double precision NOT NULL)".encode()
                )
        except BaseException:
            self._pool.close()
            raise

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresLeaseStore:
        """The store for ``url``; ``options`` are the constructor's keyword arguments."""
        return cls(url, **options)

    def claim(self, thread_id: str, owner: str, *, now: float, expires_at: float) -> Lease | None:
        row = self._one(_CLAIM, (thread_id, owner, expires_at, now))
        if row is None:
            return None
        return Lease(thread_id=thread_id, owner=owner, token=int(row[0]), expires_at=expires_at)

    def take_over(self, lease: Lease, owner: str, *, now: float, expires_at: float) -> Lease | None:
        row = self._one(
            _TAKE_OVER, (owner, expires_at, lease.thread_id, lease.token, lease.owner, now)
        )
        if row is None:
            return None
        return Lease(
            thread_id=lease.thread_id, owner=owner, token=int(row[0]), expires_at=expires_at
        )

    def renew(self, lease: Lease, *, expires_at: float) -> Lease | None:
        with self._pool.connection() as conn:
            cursor = conn.execute(_RENEW, (expires_at, lease.thread_id, lease.token, lease.owner))
        if cursor.rowcount != 1:
            return None
        return Lease(
            thread_id=lease.thread_id, owner=lease.owner, token=lease.token, expires_at=expires_at
        )

    def release(self, lease: Lease) -> bool:
        with self._pool.connection() as conn:
            cursor = conn.execute(_RELEASE, (lease.thread_id, lease.token, lease.owner))
        return cursor.rowcount == 1

    def get(self, thread_id: str) -> Lease | None:
        row = self._one(_GET, (thread_id,))
        return None if row is None else _lease(row)

    def expired(self, *, now: float) -> list[Lease]:
        with self._pool.connection() as conn:
            rows = conn.execute(_EXPIRED, (now,)).fetchall()
        return [_lease(row) for row in rows]

    def close(self) -> None:
        self._pool.close()

    def _one(self, statement: bytes, params: tuple[object, ...]) -> tuple[Any, ...] | None:
        with self._pool.connection() as conn:
            return conn.execute(statement, params).fetchone()

    def __enter__(self) -> PostgresLeaseStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresLeaseStore {self.url}>"
