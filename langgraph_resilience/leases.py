"""``RunLeases``: which worker runs which thread, so a standby worker can take over the
threads of a worker that died, and two workers never run one thread.

``RunWorker`` (in ``graph/worker.py``) holds a lease on every thread it runs and
renews it while the run lasts; ``RunWorker.recover()`` claims the threads whose lease
expired and resumes them from their last checkpoint.
"""

from __future__ import annotations

from datetime import timedelta
from types import TracebackType
from typing import Any

from langgraph_resilience.core.clock import Clock, WallClock, to_seconds
from langgraph_resilience.stores.leases import InMemoryLeaseStore, Lease, LeaseStore
from langgraph_resilience.stores.urls import open_lease_store

__all__ = ["Lease", "RunLeases"]


class RunLeases:
    """Leases on threads, with a time-to-live, in a store shared by the workers.

    Example:
        ```python
        from langgraph_resilience import FakeClock, RunLeases

        clock = FakeClock(start=1_000.0)
        leases = RunLeases.from_url("sqlite:///:memory:", ttl=30, clock=clock)
        mine = leases.claim("thread-1", owner="worker-a")
        assert leases.claim("thread-1", owner="worker-b") is None  # held
        clock.advance(31)                                          # worker-a died
        theirs = leases.claim("thread-1", owner="worker-b")
        assert theirs is not None and leases.renew(mine) is None   # a has lost it
        ```

    Args:
        store: where the leases live: ``InMemoryLeaseStore`` (one process),
            ``SqliteLeaseStore`` (one machine) or ``PostgresLeaseStore``.
        ttl: how long a lease lasts without renewal (seconds or a timedelta).
        clock: wall-clock seconds shared by the workers; ``FakeClock`` in tests.
    """

    def __init__(
        self,
        store: LeaseStore | None = None,
        *,
        ttl: float | timedelta = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.ttl = to_seconds(ttl, field="ttl", allow_zero=False)
        """Seconds a lease lasts without renewal."""
        self.store: LeaseStore = InMemoryLeaseStore() if store is None else store
        """The backing store."""
        self._clock = clock or WallClock()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl: float | timedelta = 30.0,
        clock: Clock | None = None,
        store_options: dict[str, Any] | None = None,
    ) -> RunLeases:
        """Leases in ``memory://``, ``sqlite:///path`` or ``postgresql://...``."""
        return cls(open_lease_store(url, **(store_options or {})), ttl=ttl, clock=clock)

    def now(self) -> float:
        """The clock's reading (seconds since the epoch)."""
        return self._clock.now()

    def claim(self, thread_id: str, *, owner: str) -> Lease | None:
        """Take the thread's lease for ``ttl`` seconds; ``None`` if another owner holds it."""
        if not isinstance(thread_id, str) or not thread_id:
            raise ValueError(f"thread_id must be a non-empty string, got {thread_id!r}")
        if not isinstance(owner, str) or not owner:
            raise ValueError(f"owner must be a non-empty string, got {owner!r}")
        now = self._clock.now()
        return self.store.claim(thread_id, owner, now=now, expires_at=now + self.ttl)

    def take_over(self, lease: Lease, *, owner: str) -> Lease | None:
        """Claim ``lease``'s thread only if ``lease`` is still its current, expired
        lease (not claimed or released since it was listed by ``expired()``)."""
        now = self._clock.now()
        return self.store.take_over(lease, owner, now=now, expires_at=now + self.ttl)

    def renew(self, lease: Lease) -> Lease | None:
        """Extend ``lease`` by ``ttl`` from now; ``None`` if it was claimed by another."""
        return self.store.renew(lease, expires_at=self._clock.now() + self.ttl)

    def release(self, lease: Lease) -> bool:
        """Drop ``lease`` (the run ended); ``False`` if it was not held any more."""
        return self.store.release(lease)

    def holder(self, thread_id: str) -> Lease | None:
        """The live lease on ``thread_id``, or ``None`` when free or expired."""
        lease = self.store.get(thread_id)
        return None if lease is None or lease.expired(self._clock.now()) else lease

    def expired(self) -> list[Lease]:
        """Leases that lapsed: their worker stopped renewing them (oldest first)."""
        return self.store.expired(now=self._clock.now())

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> RunLeases:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RunLeases ttl={self.ttl:g}s store={self.store!r}>"
