"""Store URLs: which backend a URL opens, and how to print one without its password."""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit, urlunsplit

from langgraph_resilience.stores.letters import InMemoryLetterStore, LetterStore

__all__ = ["mask_url", "open_letter_store"]

# scheme -> (module, class) of the dead-letter store; imported only when used, so the
# Postgres and Redis drivers stay optional extras.
_LETTER_STORES = {
    "sqlite": ("langgraph_resilience.stores.sqlite_letters", "SqliteLetterStore"),
    "postgresql": ("langgraph_resilience.stores.postgres_letters", "PostgresLetterStore"),
    "postgres": ("langgraph_resilience.stores.postgres_letters", "PostgresLetterStore"),
    "redis": ("langgraph_resilience.stores.redis_letters", "RedisLetterStore"),
    "rediss": ("langgraph_resilience.stores.redis_letters", "RedisLetterStore"),
}


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (safe to print and log).

    Example:
        >>> mask_url("postgresql://app:s3cret@db:5432/prod")
        'postgresql://app:***@db:5432/prod'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_letter_store(url: str) -> LetterStore:
    """The dead-letter store for ``url``.

    Raises:
        ValueError: an unknown scheme (the message lists the known ones).
        ImportError: the backend's driver is not installed (the message names the extra).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return InMemoryLetterStore()
    if scheme not in _LETTER_STORES:
        known = ", ".join(["memory://", *(f"{s}://" for s in _LETTER_STORES)])
        raise ValueError(f"unknown dead-letter store URL {mask_url(url)!r}: use one of {known}")
    module_name, class_name = _LETTER_STORES[scheme]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ValueError(f"the {scheme} dead-letter store is not available yet") from None
        extra = "postgres" if scheme.startswith("postgres") else "redis"
        hint = f"pip install 'langgraph-resilience[{extra}]'"
        raise ImportError(f"{mask_url(url)!r} needs the {extra} extra: {hint}") from exc
    store: LetterStore = getattr(module, class_name).from_url(url)
    return store
