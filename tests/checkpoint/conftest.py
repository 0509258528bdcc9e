"""Fixtures for the checkpoint tests: a private PostgreSQL server a test may break."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.checkpoint._private_postgres import PostgresUnavailableError, PrivatePostgres


def _unavailable(reason: str) -> NoReturn:
    # Same rule as tests/conftest.py's _server_url: under CI the server must be there.
    reason = f"cannot run a private Postgres server: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (under CI=true it must be possible)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def private_postgres_template() -> Iterator[Path]:
    """A data directory made by ``initdb`` once per session; each server copies it."""
    try:
        template = PrivatePostgres()
    except PostgresUnavailableError as exc:
        _unavailable(str(exc))
    try:
        yield template.init()
    finally:
        template.remove()


@pytest.fixture
def private_postgres(private_postgres_template: Path) -> Iterator[PrivatePostgres]:
    """A running PostgreSQL server of the test's own (``pg.url``), which the test may
    stop, kill, freeze and restart; thawed, stopped and deleted afterwards."""
    pg = PrivatePostgres(template=private_postgres_template)
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()
