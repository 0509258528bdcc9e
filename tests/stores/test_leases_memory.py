"""The in-memory run-lease store passes the contract; the ``RunLeases`` front (clock,
ttl, checks, URLs) is tested on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from langgraph_resilience import FakeClock
from langgraph_resilience.leases import RunLeases
from langgraph_resilience.stores.leases import InMemoryLeaseStore, Lease, LeaseStore
from tests.stores.lease_contract import LeaseStoreContract


class TestInMemoryLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self) -> Iterator[LeaseStore]:
        store = InMemoryLeaseStore()
        yield store
        store.close()


def test_memory_url_opens_a_private_store() -> None:
    """Each memory:// store is its own: two of them share nothing."""
    one = RunLeases.from_url("memory://", ttl=30)
    two = RunLeases.from_url("memory://", ttl=30)
    assert isinstance(one.store, InMemoryLeaseStore)
    assert one.claim("t", owner="a") is not None
    assert two.claim("t", owner="b") is not None
    with pytest.raises(ValueError, match="memory:// takes no store options"):
        RunLeases.from_url("memory://", store_options={"timeout": 1})


# ---- the RunLeases front, on the memory store ----------------------------------------


def test_run_leases_reads_times_from_its_clock() -> None:
    """claim/renew put expiries at clock + ttl; holder and expired judge by the clock."""
    clock = FakeClock(start=1_000.0)
    leases = RunLeases(ttl=timedelta(seconds=30), clock=clock)
    mine = leases.claim("t", owner="worker-a")
    assert mine == Lease(thread_id="t", owner="worker-a", token=1, expires_at=1_030.0)
    assert leases.holder("t") == mine
    assert leases.claim("t", owner="worker-b") is None
    clock.advance(20)
    renewed = leases.renew(mine)
    assert renewed is not None
    assert renewed.expires_at == 1_050.0
    clock.advance(30)  # exactly at the expiry: lapsed
    assert leases.holder("t") is None
    assert leases.expired() == [renewed]
    assert leases.store.get("t") == renewed  # still stored, just not live
    theirs = leases.claim("t", owner="worker-b")
    assert theirs is not None
    assert leases.renew(renewed) is None
    assert leases.release(renewed) is False
    assert leases.release(theirs) is True
    assert leases.holder("t") is None


@pytest.mark.parametrize(("thread_id", "owner"), [("", "a"), ("t", ""), (None, "a"), ("t", 7)])
def test_run_leases_refuses_empty_names(thread_id: object, owner: object) -> None:
    leases = RunLeases(ttl=30)
    with pytest.raises(ValueError, match="must be a non-empty string"):
        leases.claim(thread_id, owner=owner)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, timedelta(0)])
def test_run_leases_needs_a_positive_ttl(ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        RunLeases(ttl=ttl)  # type: ignore[arg-type]


def test_unknown_lease_store_urls_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"memory://, sqlite://, postgresql://"):
        RunLeases.from_url("redis://localhost:6379/0")
