"""The Postgres run-lease store passes the contract against a real server, and keeps its
promises across store instances.

The lease table's name is a constant shared by every run, so each test's thread ids
start with a fresh uuid prefix and the fixture deletes those rows afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlsplit, urlunsplit

import pytest

psycopg = pytest.importorskip("psycopg")

from langgraph_resilience.leases import RunLeases  # noqa: E402
from langgraph_resilience.stores.leases import TABLE, LeaseStore  # noqa: E402
from langgraph_resilience.stores.postgres_leases import PostgresLeaseStore  # noqa: E402
from tests.stores.lease_contract import T0, TTL, LeaseStoreContract, mine, race  # noqa: E402

pytestmark = pytest.mark.postgres


def delete_rows(url: str, prefix: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DELETE FROM {TABLE} WHERE thread_id LIKE %s", (prefix + "%",))


def count_rows(url: str, prefix: str) -> int:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE thread_id LIKE %s", (prefix + "%",)
        ).fetchone()
    assert row is not None
    return int(row[0])


class TestPostgresLeaseStore(LeaseStoreContract):
    @pytest.fixture
    def store(self, postgres_url: str, prefix: str) -> Iterator[LeaseStore]:
        store = PostgresLeaseStore(postgres_url)
        yield store
        store.close()
        delete_rows(postgres_url, prefix)


@pytest.fixture
def prefix(postgres_url: str) -> Iterator[str]:
    """This test's thread-id prefix; its rows are deleted afterwards."""
    value = f"lease-test-{uuid.uuid4().hex[:12]}-"
    yield value
    delete_rows(postgres_url, value)


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[PostgresLeaseStore]:
    store = PostgresLeaseStore(postgres_url)
    yield store
    store.close()


def with_password(url: str, password: str, *, port: int | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    netloc = f"{parts.username or 'postgres'}:{password}@{host}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


# ---- URLs and passwords ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_from_url_opens_a_postgres_store(postgres_url: str, prefix: str, scheme: str) -> None:
    url = scheme + postgres_url[postgres_url.index("://") :]
    with RunLeases.from_url(url, ttl=TTL, store_options={"max_size": 3}) as leases:
        assert isinstance(leases.store, PostgresLeaseStore)
        assert leases.store._pool.max_size == 3
        lease = leases.claim(prefix + "t", owner="worker-a")
        assert lease is not None
        assert leases.holder(prefix + "t") == lease
    assert count_rows(postgres_url, prefix) == 1


def test_repr_never_shows_the_password(postgres_url: str) -> None:
    real_password = urlsplit(postgres_url).password
    assert real_password, "the services URL carries a password"
    with RunLeases.from_url(postgres_url, ttl=TTL) as leases:
        store = leases.store
        assert isinstance(store, PostgresLeaseStore)
        for text in (repr(store), str(store), repr(leases), store.url):
            assert f":{real_password}@" not in text
            assert ":***@" in text


def test_an_unreachable_server_fails_without_showing_the_password(postgres_url: str) -> None:
    secret = "pw-" + uuid.uuid4().hex
    url = with_password(postgres_url, secret, port=1)  # nothing listens on port 1
    with pytest.raises(psycopg.OperationalError) as failure:  # PoolTimeout is one
        PostgresLeaseStore(url, timeout=0.5, connect_timeout=1)
    assert secret not in str(failure.value)


def test_the_table_has_one_row_per_thread(
    postgres_url: str, pg_store: PostgresLeaseStore, prefix: str
) -> None:
    pg_store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
    pg_store.claim(prefix + "t", "worker-a", now=T0 + 1, expires_at=T0 + 31)
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        rows = conn.execute(
            f"SELECT thread_id, owner, token, expires_at FROM {TABLE} WHERE thread_id LIKE %s",
            (prefix + "%",),
        ).fetchall()
    assert rows == [(prefix + "t", "worker-a", 2, T0 + 31)]


# ---- several instances -------------------------------------------------------------------


def test_a_second_store_sees_the_leases(
    postgres_url: str, pg_store: PostgresLeaseStore, prefix: str
) -> None:
    held = pg_store.claim(prefix + "t", "worker-a", now=T0, expires_at=T0 + TTL)
    with PostgresLeaseStore.from_url(postgres_url, max_size=1) as other:
        assert other.get(prefix + "t") == held
        assert other.claim(prefix + "t", "worker-b", now=T0 + 1, expires_at=T0 + 31) is None
        assert mine(other.expired(now=T0 + TTL), prefix) == [held]
        now = T0 + TTL + 1
        taken = other.claim(prefix + "t", "worker-b", now=now, expires_at=now + TTL)
        assert taken is not None
        assert taken.token == 2
    assert held is not None
    assert pg_store.renew(held, expires_at=T0 + 999) is None  # fenced off from the other side
    assert pg_store.release(held) is False
    assert pg_store.get(prefix + "t") == taken


def test_claims_through_several_stores_have_one_winner(
    postgres_url: str, pg_store: PostgresLeaseStore, prefix: str
) -> None:
    pg_store.claim(prefix + "lapsed", "dead", now=T0, expires_at=T0 + TTL)
    with ExitStack() as stack:
        others = [
            stack.enter_context(PostgresLeaseStore(postgres_url, max_size=1)) for _ in range(3)
        ]
        stores: list[LeaseStore] = [pg_store, *others] * 2
        for thread_id, token in ((prefix + "fresh", 1), (prefix + "lapsed", 2)):
            granted = race(stores, thread_id, now=T0 + TTL + 1)
            assert len(granted) == 1, (thread_id, granted)
            assert granted[0].token == token
            assert pg_store.get(thread_id) == granted[0]
