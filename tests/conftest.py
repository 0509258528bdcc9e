"""Shared fixtures: a fake clock, a private breaker store, and the real servers' URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from langgraph_resilience import FakeClock, InMemoryBreakerStore, default_breaker_store

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when the test says so."""
    return FakeClock()


@pytest.fixture
def store() -> InMemoryBreakerStore:
    """A breaker store private to the test, so names never collide between tests."""
    return InMemoryBreakerStore()


@pytest.fixture(autouse=True)
def _fresh_default_store() -> Iterator[None]:
    """Breakers created by name land in the process-wide store: empty it around each test."""
    default_breaker_store().clear()
    yield
    default_breaker_store().clear()


def _server_url(var: str, marker: str) -> str:
    url = os.environ.get(var)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{var} is not set: under CI=true the {marker} server must be running")
    pytest.skip(f"{var} not set; run `make test` (scripts/services.sh starts {marker})")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the Postgres started by scripts/services.sh (skips locally if absent)."""
    return _server_url("LGR_PG_URI", "postgres")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the Redis started by scripts/services.sh (skips locally if absent)."""
    return _server_url("LGR_REDIS_URL", "redis")
