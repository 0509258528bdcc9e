"""The contract every run-lease store passes: memory, SQLite and Postgres.

A backend's test module subclasses :class:`LeaseStoreContract` and provides a ``store``
fixture that yields a store and cleans up after. Thread ids start with the test's
``prefix`` (a fresh uuid), so a store shared with other runs (the one Postgres table)
never mixes their leases with this test's; ``mine`` keeps only this test's leases.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from langgraph_resilience.stores.leases import Lease, LeaseStore

T0 = 1_000_000.0
"""The contract's "now" (seconds since the epoch); times are given to the store, never read."""
TTL = 30.0


def mine(leases: list[Lease], prefix: str) -> list[Lease]:
    """The leases of this test's threads, in the order the store returned them."""
    return [lease for lease in leases if lease.thread_id.startswith(prefix)]


def race(stores: list[LeaseStore], thread_id: str, *, now: float) -> list[Lease]:
    """Owner ``worker-<n>`` claims ``thread_id`` through ``stores[n]``, all at once (one OS
    thread each): the leases granted."""
    owners = [f"worker-{n}" for n in range(len(stores))]
    start = threading.Barrier(len(owners))
    granted: list[Lease] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(store: LeaseStore, owner: str) -> None:
        try:
            start.wait()
            lease = store.claim(thread_id, owner, now=now, expires_at=now + TTL)
        except BaseException as exc:  # reported below, not lost in the thread
            with lock:
                errors.append(exc)
            return
        if lease is not None:
            with lock:
                granted.append(lease)

    threads = [
        threading.Thread(target=claim, args=pair) for pair in zip(stores, owners, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return granted


class LeaseStoreContract:
    """Behaviour shared by every :class:`LeaseStore`."""

    @pytest.fixture
    def store(self) -> Iterator[LeaseStore]:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def prefix(self) -> str:
        """This test's thread-id prefix (the Postgres fixture deletes its rows by it)."""
        return f"lease-test-{uuid.uuid4().hex[:12]}-"

    # ---- claim ---------------------------------------------------------------------

    def test_a_fresh_claim_gets_token_1(self, store: LeaseStore, prefix: str) -> None:
        lease = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert lease == Lease(
            thread_id=prefix + "t", owner="worker-a", token=1, expires_at=T0 + TTL
        )
        assert store.get(prefix + "t") == lease
        assert not lease.expired(T0 + TTL - 0.5)
        assert lease.expired(T0 + TTL)

    def test_another_owner_is_refused_while_the_lease_is_live(
        self, store: LeaseStore, prefix: str
    ) -> None:
        held = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        for now in (T0, T0 + 1, T0 + TTL - 0.001):
            assert store.claim(prefix + "t", "worker-b", now=now, expires_at=now + TTL) is None
        assert store.get(prefix + "t") == held  # the refused claims changed nothing

    def test_the_holder_reclaims_and_the_token_grows(self, store: LeaseStore, prefix: str) -> None:
        first = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert first is not None
        again = store.claim(prefix + "t", "worker-a", now=T0 + 10, expires_at=T0 + 40)
        assert again == Lease(thread_id=prefix + "t", owner="worker-a", token=2, expires_at=T0 + 40)
        assert store.get(prefix + "t") == again
        assert store.renew(first, expires_at=T0 + 99) is None  # the older claim is superseded

    def test_after_expiry_another_owner_takes_over(self, store: LeaseStore, prefix: str) -> None:
        store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        now = T0 + TTL  # a lease has lapsed at its expiry instant
        taken = store.claim(prefix + "t", "worker-b", now=now, expires_at=now + TTL)
        assert taken == Lease(
            thread_id=prefix + "t", owner="worker-b", token=2, expires_at=now + TTL
        )
        later = T0 + 3 * TTL
        third = store.claim(prefix + "t", "worker-c", now=later, expires_at=later + TTL)
        assert third is not None
        assert third.token == 3
        assert store.get(prefix + "t") == third

    # ---- renew and release ---------------------------------------------------------------

    def test_renew_extends_the_expiry(self, store: LeaseStore, prefix: str) -> None:
        lease = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert lease is not None
        renewed = store.renew(lease, expires_at=T0 + 50)
        assert renewed == Lease(
            thread_id=prefix + "t", owner="worker-a", token=1, expires_at=T0 + 50
        )
        assert store.get(prefix + "t") == renewed
        # past the first expiry, the renewed lease still keeps other owners out
        assert store.claim(prefix + "t", "worker-b", now=T0 + 40, expires_at=T0 + 70) is None
        assert store.renew(renewed, expires_at=T0 + 80) == Lease(
            thread_id=prefix + "t", owner="worker-a", token=1, expires_at=T0 + 80
        )

    def test_a_lapsed_lease_nobody_took_over_can_still_be_renewed(
        self, store: LeaseStore, prefix: str
    ) -> None:
        """Renewal names the token, not the time: late is fine while nobody claimed it."""
        lease = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert lease is not None
        renewed = store.renew(lease, expires_at=T0 + 100)
        assert renewed is not None
        assert renewed.token == 1
        assert store.claim(prefix + "t", "worker-b", now=T0 + 60, expires_at=T0 + 90) is None

    def test_a_stale_lease_cannot_renew_or_release_after_a_takeover(
        self, store: LeaseStore, prefix: str
    ) -> None:
        old = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert old is not None
        now = T0 + TTL + 1
        new = store.claim(prefix + "t", "worker-b", now=now, expires_at=now + TTL)
        assert new is not None
        assert store.renew(old, expires_at=now + 100) is None
        assert store.release(old) is False
        assert store.get(prefix + "t") == new  # the new holder's lease is untouched
        assert store.claim(prefix + "t", "worker-a", now=now + 1, expires_at=now + 31) is None

    def test_release_frees_the_thread(self, store: LeaseStore, prefix: str) -> None:
        lease = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert lease is not None
        assert store.release(lease) is True
        assert store.get(prefix + "t") is None
        assert store.release(lease) is False  # only once
        assert store.renew(lease, expires_at=T0 + 60) is None
        fresh = store.claim(prefix + "t", "worker-b", now=T0 + 1, expires_at=T0 + 31)
        # the released row stays, so the next claim's token grows: a lease from before the
        # release can never pass for it (test_a_lease_from_before_a_release_...)
        assert fresh == Lease(thread_id=prefix + "t", owner="worker-b", token=2, expires_at=T0 + 31)

    def test_a_lease_from_before_a_release_never_touches_a_later_claim(
        self, store: LeaseStore, prefix: str
    ) -> None:
        """A: token 1, stalls past its ttl; B takes over (2) and releases; C claims."""
        stale = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert stale is not None
        now = T0 + TTL + 1
        taken = store.claim(prefix + "t", "worker-b", now=now, expires_at=now + TTL)
        assert taken is not None
        assert store.release(taken)
        current = store.claim(prefix + "t", "worker-c", now=now + 1, expires_at=now + 31)
        assert current is not None
        assert store.renew(stale, expires_at=now + 100) is None
        assert store.release(stale) is False
        assert store.get(prefix + "t") == current

    def test_leases_of_different_threads_are_independent(
        self, store: LeaseStore, prefix: str
    ) -> None:
        one = store.claim(prefix + "one", "worker-a", now=T0, expires_at=T0 + TTL)
        two = store.claim(prefix + "two", "worker-b", now=T0, expires_at=T0 + TTL)
        assert one is not None
        assert two is not None
        assert two.token == 1  # tokens count per thread
        assert store.release(one)
        assert store.get(prefix + "two") == two
        assert store.renew(two, expires_at=T0 + 60) is not None

    # ---- get and expired -----------------------------------------------------------------

    def test_get_of_an_unknown_thread_is_none(self, store: LeaseStore, prefix: str) -> None:
        assert store.get(prefix + "nobody") is None

    def test_get_returns_a_lapsed_lease_too(self, store: LeaseStore, prefix: str) -> None:
        lease = store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
        assert store.get(prefix + "t") == lease  # get takes no time: expired or not

    def test_expired_lists_only_lapsed_leases_oldest_expiry_first(
        self, store: LeaseStore, prefix: str
    ) -> None:
        expiries = {"a": T0 + 50, "b": T0 + 20, "c": T0 + 100, "d": T0 + 20, "e": T0 + 60}
        for name, expires_at in expiries.items():
            assert store.claim(prefix + name, f"worker-{name}", now=T0, expires_at=expires_at)
        assert mine(store.expired(now=T0), prefix) == []
        lapsed = mine(store.expired(now=T0 + 60), prefix)
        # b and d lapse together: the thread id breaks the tie; e lapses at exactly T0+60
        assert [lease.thread_id for lease in lapsed] == [prefix + n for n in "bdae"]
        assert lapsed[0] == Lease(
            thread_id=prefix + "b", owner="worker-b", token=1, expires_at=T0 + 20
        )
        renewed = store.renew(lapsed[0], expires_at=T0 + 200)
        assert renewed is not None
        store.release(lapsed[1])
        after = mine(store.expired(now=T0 + 60), prefix)
        assert [lease.thread_id for lease in after] == [prefix + "a", prefix + "e"]
        everything = mine(store.expired(now=T0 + 1000), prefix)
        assert [lease.thread_id for lease in everything] == [prefix + n for n in "aecb"]

    # ---- concurrency ---------------------------------------------------------------------

    def test_concurrent_claims_of_a_free_thread_have_one_winner(
        self, store: LeaseStore, prefix: str
    ) -> None:
        granted = race([store] * 8, prefix + "t", now=T0)
        assert len(granted) == 1
        [winner] = granted
        assert winner.token == 1
        assert store.get(prefix + "t") == winner

    def test_concurrent_takeovers_of_a_lapsed_lease_have_one_winner(
        self, store: LeaseStore, prefix: str
    ) -> None:
        store.claim(prefix + "t", "dead", now=T0, expires_at=T0 + TTL)
        granted = race([store] * 8, prefix + "t", now=T0 + TTL + 1)
        assert len(granted) == 1
        [winner] = granted
        assert winner.token == 2  # taken over exactly once
        assert store.get(prefix + "t") == winner
