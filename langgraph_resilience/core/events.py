"""Typed events: every breaker and checkpoint-saver decision worth knowing about is one
of these values.

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
    "MirrorFailed",
    "SaverEvent",
    "SaverFailedBack",
    "SaverFailedOver",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class SaverEvent:
    """Something a ``ResilientSaver`` did."""

    saver: str
    """The saver's name."""
    at: float
    """The saver's clock reading when it happened (seconds)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SaverFailedOver(SaverEvent):
    """The primary store failed; reads and writes now go to the standby."""

    operation: str
    """The saver method that found the primary failing."""
    error: str
    """The primary's error, as ``Type: message``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SaverFailedBack(SaverEvent):
    """The primary is back: what only the standby held was copied to it, and reads and
    writes go to the primary again."""

    threads: int
    """Threads reconciled."""
    checkpoints: int
    """Checkpoints copied to the primary."""
    writes: int
    """Tasks whose pending writes were copied to the primary."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorFailed(SaverEvent):
    """A write could not be mirrored to the standby; that thread's copy there is
    incomplete until it is written again."""

    operation: str
    """The saver method that was mirrored."""
    thread_id: str | None
    """The thread it wrote to (``None`` for calls that span threads)."""
    error: str
    """The standby's error, as ``Type: message``."""
