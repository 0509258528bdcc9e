"""Typed events: every decision worth knowing about (a breaker's, a graph node's, a
checkpoint saver's) is one of these values.

Listeners are plain callables taking an event. Transitions are
:class:`BreakerTransition` subclasses, so ``isinstance(event, BreakerTransition)``
picks out state changes. Graph events (:class:`NodeEvent` subclasses) carry no clock
reading: they are delivered as they happen, and a receiver that keeps time (the
health monitor) stamps them with its own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, TypeAlias

__all__ = [
    "BreakerClosed",
    "BreakerEvent",
    "BreakerHalfOpened",
    "BreakerOpened",
    "BreakerState",
    "BreakerTransition",
    "CallRejected",
    "DeadLettered",
    "FallbackSkipped",
    "FallbackTaken",
    "FallbacksSpent",
    "GateVerdict",
    "Listener",
    "LoopLimitReached",
    "MirrorFailed",
    "NodeEvent",
    "NodeFailed",
    "NodeSucceeded",
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


# ---- graph events: published by guard, fallback_to, dead_letter, gates and loop guards


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeEvent:
    """Something that happened at a graph node.

    ``kind`` names the event in LangSmith (``langgraph_resilience.<kind>``, the tag
    ``resilience:<kind>``, the metadata ``resilience.<kind>``).
    """

    kind: ClassVar[str] = "node_event"

    node: str
    """The graph node it happened at (the failed node, for fallbacks and letters)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSucceeded(NodeEvent):
    """A guarded node's attempt returned."""

    kind: ClassVar[str] = "node_succeeded"

    breaker: str | None
    """The breaker guarding it, if any."""
    duration: float
    """Seconds the attempt took, on the breaker's clock."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFailed(NodeEvent):
    """A guarded node's attempt raised, timed out, or was rejected by its breaker."""

    kind: ClassVar[str] = "node_failed"

    breaker: str | None
    """The breaker guarding it, if any."""
    duration: float | None
    """Seconds the attempt took (``None`` when the breaker rejected it unrun)."""
    error: str
    """The error's type name (``CircuitOpenError`` for a rejection)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackTaken(NodeEvent):
    """A node failed and ``fallback_to`` routed to ``target``."""

    kind: ClassVar[str] = "fallback_taken"

    target: str
    """The fallback node taken."""
    error: str
    """The failed node's error type name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackSkipped(NodeEvent):
    """A fallback was passed over because its own breaker is open."""

    kind: ClassVar[str] = "fallback_skipped"

    target: str
    """The fallback node skipped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbacksSpent(NodeEvent):
    """A node failed with no usable fallback left; the failure goes to the dead-letter sink."""

    kind: ClassVar[str] = "fallbacks_spent"

    error: str
    """The failed node's error type name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLettered(NodeEvent):
    """A failure was written to the dead-letter queue."""

    kind: ClassVar[str] = "dead_lettered"

    letter: str
    """The letter's id."""
    error_code: str
    """The failure's error code (``timeout``, ``circuit_open``, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GateVerdict(NodeEvent):
    """A verification gate judged an output (``node`` is the gate)."""

    kind: ClassVar[str] = "gate_verdict"

    passed: bool
    """Whether the output passed."""
    score: float
    """The output's score, 0 to 1."""
    reasons: tuple[str, ...]
    """Why it failed (empty when it passed)."""
    rounds: int
    """Verifier rounds taken."""
    route: str
    """The node the gate routed to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopLimitReached(NodeEvent):
    """Entering ``node`` again would break a loop limit."""

    kind: ClassVar[str] = "loop_limit"

    limit: str
    """Which limit (``max_visits``, ``max_depth``, ...)."""
    count: int
    """The count that reached it."""
    maximum: int
    """The limit's value."""
    routed_to: str | None
    """Where the run went instead (``None`` when the node raised ``LoopLimitExceeded``)."""
