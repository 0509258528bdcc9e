"""Run leases: which worker runs which thread, until when.

A lease is a row per thread: its owner, an expiry, and a *token* that grows by one at
every claim. A worker renews its lease while it runs the thread; when the worker dies
the lease expires and another worker may claim it. Renewing and releasing name the
owner and the token, so a worker whose lease was taken over can never extend or drop
the new one. Releasing keeps the row (owner ``""``, already expired), so a thread's
tokens never start again from 1.

Times are seconds since the epoch, given by the caller (``RunLeases`` reads them from
its clock), so tests drive expiry with a ``FakeClock`` instead of sleeping.

The stores here (memory and SQLite) and ``postgres_leases.PostgresLeaseStore`` pass
one contract test suite (``tests/stores/lease_contract.py``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

__all__ = [
    "RELEASED",
    "InMemoryLeaseStore",
    "Lease",
    "LeaseStore",
    "SqlLeaseStore",
    "SqliteLeaseStore",
]


@dataclass(frozen=True, kw_only=True)
class Lease:
    """A worker's claim on a thread."""

    thread_id: str
    """The thread."""
    owner: str
    """The worker holding it."""
    token: int
    """Grows by one at every claim of this thread: proof of which claim this is."""
    expires_at: float
    """When it lapses unless renewed (seconds since the epoch)."""

    def expired(self, now: float) -> bool:
        """Whether the lease has lapsed at ``now``."""
        return self.expires_at <= now


class LeaseStore(Protocol):
    """Where leases live. Every method is atomic."""

    def claim(self, thread_id: str, owner: str, *, now: float, expires_at: float) -> Lease | None:
        """Take the thread's lease if nobody holds it, it has expired at ``now``, or
        ``owner`` already holds it; ``None`` when another owner holds it."""
        ...

    def take_over(self, lease: Lease, owner: str, *, now: float, expires_at: float) -> Lease | None:
        """Claim the thread only if ``lease`` (an expired lease that was listed) is still
        its current, expired lease; ``None`` when anyone claimed or released it since."""
        ...

    def renew(self, lease: Lease, *, expires_at: float) -> Lease | None:
        """Extend ``lease``; ``None`` when it was claimed by someone since (lost)."""
        ...

    def release(self, lease: Lease) -> bool:
        """Drop ``lease``; ``False`` when it was not held any more."""
        ...

    def get(self, thread_id: str) -> Lease | None:
        """The thread's lease, expired or not, unless it was released."""
        ...

    def expired(self, *, now: float) -> list[Lease]:
        """Leases that have lapsed at ``now`` without being released, oldest expiry first."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


RELEASED = ""
"""The owner of a released lease: the row stays, so the thread's tokens keep growing."""


class InMemoryLeaseStore:
    """Leases in this process: for tests and notebooks."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def claim(self, thread_id: str, owner: str, *, now: float, expires_at: float) -> Lease | None:
        with self._lock:
            held = self._leases.get(thread_id)
            if held is not None and held.owner not in (owner, RELEASED) and not held.expired(now):
                return None
            return self._grant(thread_id, owner, held, expires_at)

    def take_over(self, lease: Lease, owner: str, *, now: float, expires_at: float) -> Lease | None:
        with self._lock:
            held = self._leases.get(lease.thread_id)
            if held != lease or held.owner == RELEASED or not held.expired(now):
                return None
            return self._grant(lease.thread_id, owner, held, expires_at)

    def _grant(self, thread_id: str, owner: str, held: Lease | None, expires_at: float) -> Lease:
        token = 1 if held is None else held.token + 1
        lease = Lease(thread_id=thread_id, owner=owner, token=token, expires_at=expires_at)
        self._leases[thread_id] = lease
        return lease

    def renew(self, lease: Lease, *, expires_at: float) -> Lease | None:
        with self._lock:
            held = self._leases.get(lease.thread_id)
            if not _same_holder(held, lease):
                return None
            renewed = replace(lease, expires_at=expires_at)
            self._leases[lease.thread_id] = renewed
            return renewed

    def release(self, lease: Lease) -> bool:
        with self._lock:
            held = self._leases.get(lease.thread_id)
            if not _same_holder(held, lease):
                return False
            self._leases[lease.thread_id] = replace(lease, owner=RELEASED, expires_at=0.0)
            return True

    def get(self, thread_id: str) -> Lease | None:
        with self._lock:
            held = self._leases.get(thread_id)
        return None if held is None or held.owner == RELEASED else held

    def expired(self, *, now: float) -> list[Lease]:
        with self._lock:
            lapsed = [
                lease
                for lease in self._leases.values()
                if lease.owner != RELEASED and lease.expired(now)
            ]
        return sorted(lapsed, key=lambda lease: (lease.expires_at, lease.thread_id))

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<InMemoryLeaseStore {len(self._leases)} threads>"


def _same_holder(held: Lease | None, lease: Lease) -> bool:
    return held is not None and held.token == lease.token and held.owner == lease.owner


# One statement claims atomically: insert, or take over a lapsed, released (owner '')
# or our own lease. A fresh thread starts at token 1; every later claim adds one.
# Shared with Postgres, which only spells placeholders differently.
CLAIM_SQL = (
    "INSERT INTO {table} (thread_id, owner, token, expires_at) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (thread_id) DO UPDATE SET owner = excluded.owner,"
    " token = {table}.token + 1, expires_at = excluded.expires_at"
    " WHERE {table}.expires_at <= ? OR {table}.owner IN (excluded.owner, '')"
    " RETURNING token"
)
# Only the listed expired lease: not one claimed or released since it was listed.
TAKE_OVER_SQL = (
    "UPDATE {table} SET owner = ?, token = token + 1, expires_at = ?"
    " WHERE thread_id = ? AND token = ? AND owner = ? AND owner <> '' AND expires_at <= ?"
    " RETURNING token"
)
RENEW_SQL = "UPDATE {table} SET expires_at = ? WHERE thread_id = ? AND token = ? AND owner = ?"
RELEASE_SQL = (
    "UPDATE {table} SET owner = '', expires_at = 0 WHERE thread_id = ? AND token = ? AND owner = ?"
)
GET_SQL = (
    "SELECT thread_id, owner, token, expires_at FROM {table} WHERE thread_id = ? AND owner <> ''"
)
EXPIRED_SQL = (
    "SELECT thread_id, owner, token, expires_at FROM {table}"
    " WHERE expires_at <= ? AND owner <> '' ORDER BY expires_at, thread_id"
)
TABLE = "langgraph_resilience_run_leases"


_Store = TypeVar("_Store", bound="SqlLeaseStore")


class SqlLeaseStore:
    """The lease statements, written once for SQLite and Postgres. A backend runs one
    statement and returns its first row, all rows, or its row count (``_execute``)."""

    placeholder = "?"
    """How the backend's driver spells a parameter."""

    def _execute(
        self, statement: str, params: tuple[object, ...], fetch: str
    ) -> Any:  # pragma: no cover - each backend defines it
        raise NotImplementedError

    def _run(self, template: str, params: tuple[object, ...], fetch: str) -> Any:
        statement = template.format(table=TABLE)
        if self.placeholder != "?":
            statement = statement.replace("?", self.placeholder)
        return self._execute(statement, params, fetch)

    def claim(self, thread_id: str, owner: str, *, now: float, expires_at: float) -> Lease | None:
        row = self._run(CLAIM_SQL, (thread_id, owner, expires_at, now), "one")
        if row is None:
            return None
        return Lease(thread_id=thread_id, owner=owner, token=int(row[0]), expires_at=expires_at)

    def take_over(self, lease: Lease, owner: str, *, now: float, expires_at: float) -> Lease | None:
        params = (owner, expires_at, lease.thread_id, lease.token, lease.owner, now)
        row = self._run(TAKE_OVER_SQL, params, "one")
        if row is None:
            return None
        return Lease(
            thread_id=lease.thread_id, owner=owner, token=int(row[0]), expires_at=expires_at
        )

    def renew(self, lease: Lease, *, expires_at: float) -> Lease | None:
        params = (expires_at, lease.thread_id, lease.token, lease.owner)
        renewed = self._run(RENEW_SQL, params, "count") == 1
        return replace(lease, expires_at=expires_at) if renewed else None

    def release(self, lease: Lease) -> bool:
        params = (lease.thread_id, lease.token, lease.owner)
        return bool(self._run(RELEASE_SQL, params, "count") == 1)

    def get(self, thread_id: str) -> Lease | None:
        row = self._run(GET_SQL, (thread_id,), "one")
        return None if row is None else _lease(row)

    def expired(self, *, now: float) -> list[Lease]:
        return [_lease(row) for row in self._run(EXPIRED_SQL, (now,), "all")]

    def close(self) -> None:  # pragma: no cover - each backend defines it
        raise NotImplementedError

    def __enter__(self: _Store) -> _Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SqliteLeaseStore(SqlLeaseStore):
    """Leases in a SQLite file, shared by the processes of one machine.

    Example:
        ```python
        from langgraph_resilience.stores.leases import SqliteLeaseStore

        store = SqliteLeaseStore(":memory:")
        lease = store.claim("thread-1", "worker-a", now=0.0, expires_at=30.0)
        assert store.claim("thread-1", "worker-b", now=10.0, expires_at=40.0) is None
        assert store.claim("thread-1", "worker-b", now=31.0, expires_at=61.0) is not None
        ```

    Args:
        path: the database file (created with its directory), or ``":memory:"``.
        timeout: seconds to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        """The database file, as given."""
        if not self.path:
            raise ValueError("the SQLite lease store needs a file path or ':memory:'")
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, short statements, no user code
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            with self._lock:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {TABLE} (thread_id TEXT PRIMARY KEY,"
                    " owner TEXT NOT NULL, token INTEGER NOT NULL, expires_at REAL NOT NULL)"
                )
        except BaseException:
            self._conn.close()
            raise

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SqliteLeaseStore:
        """Open ``sqlite:///relative/path``, ``sqlite:////absolute/path`` or
        ``sqlite:///:memory:``."""
        parts = urlsplit(url)
        path = parts.path[1:]
        if parts.scheme.lower() != "sqlite" or parts.netloc or parts.query or not path:
            raise ValueError(
                f"bad SQLite URL {url!r}: use sqlite:///relative/path, "
                "sqlite:////absolute/path or sqlite:///:memory:"
            )
        return cls(path, timeout=timeout)

    def _execute(self, statement: str, params: tuple[object, ...], fetch: str) -> Any:
        with self._lock:
            cursor = self._conn.execute(statement, params)
            if fetch == "one":
                return cursor.fetchone()
            return cursor.fetchall() if fetch == "all" else cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"<SqliteLeaseStore {self.path}>"


def _lease(row: tuple[Any, ...]) -> Lease:
    thread_id, owner, token, expires_at = row
    return Lease(
        thread_id=str(thread_id), owner=str(owner), token=int(token), expires_at=float(expires_at)
    )
