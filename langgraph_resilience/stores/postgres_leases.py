"""Run leases in PostgreSQL (``postgresql://`` URLs), for workers on several machines.

The same statements as the SQLite store (``stores/leases.py``), on a small connection
pool in autocommit mode: each call is one statement, atomic on its own.

Needs the ``postgres`` extra (``pip install 'langgraph-resilience[postgres]'``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from langgraph_resilience.stores.leases import TABLE, SqlLeaseStore
from langgraph_resilience.stores.urls import mask_url

__all__ = ["PostgresLeaseStore"]


class PostgresLeaseStore(SqlLeaseStore):
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

    placeholder = "%s"

    def _execute(self, statement: str, params: tuple[object, ...], fetch: str) -> Any:
        with self._pool.connection() as conn:
            cursor = conn.execute(statement.encode(), params)  # the table is a constant
            if fetch == "one":
                return cursor.fetchone()
            return cursor.fetchall() if fetch == "all" else cursor.rowcount

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"<PostgresLeaseStore {self.url}>"
