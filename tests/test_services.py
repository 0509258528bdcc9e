"""The test command starts real Postgres and Redis servers (scripts/services.sh).

Later store backends run their contract suites against these; here we only prove they
answer. Locally without the servers these skip; under CI=true they fail instead.
"""

from __future__ import annotations

import pytest


@pytest.mark.postgres
def test_postgres_answers(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT %s::int + 1", (41,)).fetchone()
    assert row == (42,)


@pytest.mark.redis
def test_redis_answers(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        key = "langgraph_resilience:test:ping"
        client.set(key, "pong", ex=10)
        assert client.get(key) == b"pong"
    finally:
        client.close()
