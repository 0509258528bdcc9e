"""Where breaker state lives. Optional backends are imported from their own modules."""

from .base import BreakerCell, BreakerStore
from .memory import InMemoryBreakerStore, LocalBreakerCell, default_breaker_store

__all__ = [
    "BreakerCell",
    "BreakerStore",
    "InMemoryBreakerStore",
    "LocalBreakerCell",
    "default_breaker_store",
]
