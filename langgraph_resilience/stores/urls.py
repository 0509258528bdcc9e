"""Store URLs: which backend a URL opens, and how to print one without its password."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from langgraph_resilience.stores.leases import InMemoryLeaseStore, LeaseStore
from langgraph_resilience.stores.letters import InMemoryLetterStore, LetterStore

__all__ = ["mask_url", "open_lease_store", "open_letter_store"]

_SECRET_PARAM = re.compile(r"((?:^|&)(?:password|passwd|pass|sslpassword|token)=)[^&]*", re.I)

# scheme -> (module, class) of the dead-letter store; imported only when used, so the
# Postgres and Redis drivers stay optional extras.
_LETTER_STORES = {
    "sqlite": ("langgraph_resilience.stores.sqlite_letters", "SqliteLetterStore"),
    "postgresql": ("langgraph_resilience.stores.postgres_letters", "PostgresLetterStore"),
    "postgres": ("langgraph_resilience.stores.postgres_letters", "PostgresLetterStore"),
    "redis": ("langgraph_resilience.stores.redis_letters", "RedisLetterStore"),
    "rediss": ("langgraph_resilience.stores.redis_letters", "RedisLetterStore"),
}

_LEASE_STORES = {
    "sqlite": ("langgraph_resilience.stores.leases", "SqliteLeaseStore"),
    "postgresql": ("langgraph_resilience.stores.postgres_leases", "PostgresLeaseStore"),
    "postgres": ("langgraph_resilience.stores.postgres_leases", "PostgresLeaseStore"),
}


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print and log).

    Example:
        >>> mask_url("postgresql://app:s3cret@db:5432/prod")
        'postgresql://app:***@db:5432/prod'
        >>> mask_url("redis://db:6379/0?password=s3cret&namespace=app")
        'redis://db:6379/0?password=***&namespace=app'
    """
    parts = urlsplit(url)
    masked = url  # edited in place: re-assembling would drop sqlite:/// slashes
    if parts.password is not None:
        user = parts.username or ""
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        masked = masked.replace(parts.netloc, f"{user}:***@{host}", 1)
    if parts.query:  # libpq and redis-py also take a password as a query parameter
        query = _SECRET_PARAM.sub(r"\1***", parts.query)
        masked = masked.replace(f"?{parts.query}", f"?{query}", 1)
    return masked


def open_letter_store(url: str, **options: Any) -> LetterStore:
    """The dead-letter store for ``url``; ``options`` go to the backend (e.g. ``table=``
    for Postgres, ``namespace=`` for Redis).

    Raises:
        ValueError: an unknown scheme (the message lists the known ones).
        ImportError: the backend's driver is not installed (the message names the extra).
    """
    store: LetterStore = _open(url, options, "dead-letter", _LETTER_STORES, InMemoryLetterStore)
    return store


def open_lease_store(url: str, **options: Any) -> LeaseStore:
    """The run-lease store for ``url`` (``memory://``, ``sqlite:///...``,
    ``postgresql://...``); ``options`` go to the backend.

    Raises:
        ValueError: an unknown scheme (the message lists the known ones).
        ImportError: the backend's driver is not installed (the message names the extra).
    """
    store: LeaseStore = _open(url, options, "run-lease", _LEASE_STORES, InMemoryLeaseStore)
    return store


def _open(
    url: str,
    options: dict[str, Any],
    kind: str,
    backends: dict[str, tuple[str, str]],
    in_memory: Callable[[], Any],
) -> Any:
    """The ``kind`` store for ``url``: ``memory://``, or a backend imported on use."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        if options:
            raise ValueError(f"memory:// takes no store options, got {sorted(options)}")
        return in_memory()
    if scheme not in backends:
        known = ", ".join(["memory://", *(f"{s}://" for s in backends)])
        raise ValueError(f"unknown {kind} store URL {mask_url(url)!r}: use one of {known}")
    module_name, class_name = backends[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"the {scheme} {kind} store is not available yet") from None
        extra = "postgres" if scheme.startswith("postgres") else "redis"
        hint = f"pip install 'langgraph-resilience[{extra}]'"
        raise ImportError(f"{mask_url(url)!r} needs the {extra} extra: {hint}") from exc
    return getattr(module, class_name).from_url(url, **options)
