"""Typed events: every breaker decision worth knowing about is one of these values.

Listeners are plain callables taking an event. Transitions are
:class:`BreakerTransition` subclasses, so ``isinstance(event, BreakerTransition)``
picks out state changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TypeAlias

__all__ = [
    "BreakerClosed",
    "BreakerEvent",
    "BreakerHalfOpened",
    "BreakerOpened",
    "BreakerState",
    "BreakerTransition",
    "CallRejected",
    "Listener",
]


class BreakerState(str, Enum):
    """Where a circuit breaker is: letting calls through, rejecting them, or testing."""

    CLOSED = "closed"
    """Calls run normally; outcomes are recorded."""
    OPEN = "open"
    """Calls are rejected with ``CircuitOpenError`` until ``recovery_timeout`` passes."""
    HALF_OPEN = "half_open"
    """A few trial calls run; their outcomes decide between closed and open."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerEvent:
    """Something a breaker did."""

    breaker: str
    """The breaker's name."""
    at: float
    """The breaker's clock reading when it happened (seconds)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerTransition(BreakerEvent):
    """The breaker changed state."""

    old: BreakerState
    """The state before."""
    new: BreakerState
    """The state after."""
    reason: str
    """Why, in words (``"3 consecutive failures"``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerOpened(BreakerTransition):
    """The breaker opened: calls are rejected for ``retry_after`` seconds."""

    retry_after: float
    """Seconds until trial calls are admitted (``inf`` when forced open)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerHalfOpened(BreakerTransition):
    """The recovery timeout passed: trial calls are admitted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerClosed(BreakerTransition):
    """The breaker closed: calls run normally again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRejected(BreakerEvent):
    """A call was rejected without running."""

    state: BreakerState
    """The state that rejected it."""
    retry_after: float
    """Seconds the caller was told to wait."""


Listener: TypeAlias = Callable[[BreakerEvent], object]
"""A callable that receives each event; its return value is ignored."""
