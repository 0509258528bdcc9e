"""Health statistics and alert rules, computed from the event stream.

Pure: standard library only, no I/O, no logging, and time is passed in. The front,
``langgraph_resilience.health.HealthMonitor``, stamps each event with its clock and feeds
it to :class:`HealthStats`, which keeps per-node, per-breaker and per-saver statistics
and returns the :class:`Alert` values whose conditions just started.

**Alerts fire when a condition starts**, not on every event: a breaker that stays open
for an hour raises one ``HIGH`` alert, not one per rejected call. A condition that has
cleared can fire again. The rules (thresholds in :class:`AlertPolicy`):

- ``CRITICAL`` (``breakers_open``): ``critical_open_breakers`` breakers are not closed
  at once; clears when fewer are.
- ``HIGH`` (``breaker_open``): a closed breaker opens; clears when it closes (a half-open
  breaker that re-opens is the same outage).
- ``HIGH`` (``failed_over``): a checkpointer fails over to its standby; clears when it
  fails back.
- ``MEDIUM`` (``fallback``, ``dead_letter``): a node's failure is routed to a fallback,
  or dead-lettered; clears after a whole ``window`` without another from that node.
- ``MEDIUM`` (``success_rate``): the share of a node's calls in the last ``window`` that
  succeeded falls below ``min_success_rate`` (judged from ``min_calls`` calls).
- ``MEDIUM`` (``latency``): a node's p95 latency exceeds ``slow_multiple`` x its baseline.
- ``LOW`` (``errors_rising``): ``rising_errors`` or more failures in the last ``window``,
  and more than in the window before it.
- ``LOW`` (``slow_calls``): an attempt takes more than ``slow_multiple`` x its node's
  baseline; clears after a whole ``window`` without a slow call.

Example:
    >>> from langgraph_resilience.core.events import NodeFailed, NodeSucceeded
    >>> stats = HealthStats(AlertPolicy(min_calls=2, min_success_rate=0.75))
    >>> stats.record(NodeSucceeded(node="search", breaker=None, duration=0.2), now=1.0)
    ()
    >>> stats.record(NodeFailed(node="search", breaker=None, duration=0.1, error="KeyError"), 2.0)
    (Alert(MEDIUM, 'search: success rate 50%', subject='search', at=2),)
    >>> stats.nodes(now=2.0)["search"].success_rate
    0.5
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

from .clock import to_seconds
from .events import (
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerState,
    BreakerTransition,
    CallRejected,
    DeadLettered,
    FallbackTaken,
    GateVerdict,
    LoopLimitReached,
    MirrorFailed,
    NodeFailed,
    NodeSucceeded,
    SaverFailedBack,
    SaverFailedOver,
)
from .policy import _check_int, _is_number

__all__ = [
    "Alert",
    "AlertPolicy",
    "BreakerHealth",
    "CallPoint",
    "HealthStats",
    "NodeHealth",
    "SaverHealth",
    "Severity",
    "StateChange",
    "Timeline",
    "percentile",
]

_CLOSED = BreakerState.CLOSED
_OPEN = BreakerState.OPEN
_REJECTED = "CircuitOpenError"
"""The error ``guard`` reports for a call its breaker rejected without running it."""
_BASELINE_WEIGHT = 0.1
"""Weight of the newest normal call in a node's exponentially weighted baseline."""
_RECENT_CAP = 4096
"""Most calls per node kept for the recent window (a busier window is judged on these)."""
NO_ALERTS: tuple[Alert, ...] = ()


class Severity(str, Enum):
    """How urgent an alert is (the seed's four levels)."""

    CRITICAL = "critical"
    """Several breakers are open at once: the system's availability is at risk."""
    HIGH = "high"
    """A breaker opened or a checkpointer failed over: a backup is taking over."""
    MEDIUM = "medium"
    """Degradation: fallbacks, dead letters, a low success rate, slow p95 latency."""
    LOW = "low"
    """Early warning: errors rising, slow calls."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A health condition that just started."""

    severity: Severity
    """How urgent it is."""
    title: str
    """One line saying what happened (``"breaker 'search' opened"``)."""
    detail: str
    """The numbers behind it."""
    subject: str
    """The node, breaker or saver it is about (``"system"`` for several breakers)."""
    at: float
    """The monitor's clock reading when the condition started (seconds)."""
    rule: str = ""
    """The rule that raised it (``breaker_open``, ``fallback``, ...; see the module)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "severity": self.severity.value,
            "title": self.title,
            "detail": self.detail,
            "subject": self.subject,
            "at": self.at,
            "rule": self.rule,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "alert") -> Alert:
        """Read what :meth:`to_dict` wrote; a bad value raises ``ValueError`` naming it."""
        data = _mapping(data, where)
        raw = _required(data, "severity", where)
        try:
            severity = Severity(raw)
        except ValueError:
            allowed = ", ".join(s.value for s in Severity)
            raise ValueError(f"{where}.severity must be one of {allowed}, got {raw!r}") from None
        return cls(
            severity=severity,
            title=_typed(data, "title", "str", where),
            detail=_typed(data, "detail", "str", where),
            subject=_typed(data, "subject", "str", where),
            at=_typed(data, "at", "float", where),
            rule=_typed(data, "rule", "str", where) if "rule" in data else "",
        )

    def __str__(self) -> str:
        return f"[{self.severity.name}] {self.title}: {self.detail}"

    def __repr__(self) -> str:
        return (
            f"Alert({self.severity.name}, {self.title!r}, subject={self.subject!r}, at={self.at:g})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPolicy:
    """When the health monitor raises an alert, and what counts as recent.

    Example:
        ```python
        from langgraph_resilience import AlertPolicy

        strict = AlertPolicy(critical_open_breakers=3, min_success_rate=0.95, window=300)
        ```
    """

    critical_open_breakers: int = 2
    """Breakers open at the same time that make a ``CRITICAL`` alert (>= 1). A half-open
    breaker still counts: its trial calls have not yet shown the dependency is back."""

    slow_multiple: float = 3.0
    """An attempt slower than this multiple of its node's baseline latency is slow, and a
    p95 latency above it is a degradation (> 1; the seed's "3x baseline")."""

    min_success_rate: float = 0.9
    """A node whose share of successful calls in the last ``window`` falls below this is
    degraded (0 to 1; rejected calls count as unsuccessful)."""

    window: float | timedelta = 60.0
    """The recent window, in seconds or a ``timedelta`` (> 0): error rates and success
    rates are computed over it, and a fallback, dead letter or slow call alerts again only
    after a whole window without one."""

    min_calls: int = 5
    """Calls a node needs in the window before its success rate is judged, successful
    calls before its baseline latency is set, and latency samples before its p95 is
    judged (>= 1)."""

    rising_errors: int = 3
    """Failures in the last ``window`` (more than in the window before it) that make an
    ``errors rising`` early warning (>= 1)."""

    def __post_init__(self) -> None:
        _check_int("critical_open_breakers", self.critical_open_breakers, minimum=1)
        multiple = self.slow_multiple
        if not _is_number(multiple) or not multiple > 1 or math.isinf(multiple):
            raise ValueError(f"slow_multiple must be a number > 1, e.g. 3.0, got {multiple!r}")
        rate = self.min_success_rate
        if not _is_number(rate) or not 0 <= rate <= 1:
            raise ValueError(f"min_success_rate must be a rate in [0, 1], e.g. 0.9, got {rate!r}")
        to_seconds(self.window, field="window", allow_zero=False)
        _check_int("min_calls", self.min_calls, minimum=1)
        _check_int("rising_errors", self.rising_errors, minimum=1)

    @property
    def window_seconds(self) -> float:
        """``window`` in seconds."""
        return to_seconds(self.window, field="window")


# ---- snapshot values


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeHealth:
    """One graph node's health, from the events it produced."""

    name: str
    """The graph node's name."""
    breaker: str | None
    """The breaker guarding it (from its latest guarded call), if any."""
    status: str
    """``healthy``, ``warning`` (early warning), ``degraded`` (a degradation rule holds) or
    ``failing`` (its breaker is not closed)."""
    calls: int
    """Guarded attempts seen: successes + failures + rejected."""
    successes: int
    """Attempts that returned."""
    failures: int
    """Attempts that raised or timed out (not counting rejections)."""
    rejected: int
    """Attempts its open breaker rejected without running the node."""
    success_rate: float | None
    """``successes / calls`` since the monitor started (``None`` before any call)."""
    recent_calls: int
    """Calls in the recent window."""
    recent_success_rate: float | None
    """Share of the recent window's calls that succeeded (``None`` when there were none)."""
    error_rate: float
    """Failures per minute over the recent window."""
    p50: float | None
    """Median latency of recent successful attempts (seconds)."""
    p95: float | None
    """95th-percentile latency of recent successful attempts (seconds)."""
    baseline: float | None
    """The node's normal latency (seconds): the median of its first ``min_calls``
    successful attempts, then a moving average of the attempts that were not slow."""
    slow_calls: int
    """Attempts (successful or not) slower than ``slow_multiple`` x the baseline."""
    fallbacks: int
    """Failures routed to a fallback by ``fallback_to``."""
    dead_letters: int
    """Failures written to the dead-letter queue."""
    gate_passes: int
    """Outputs this verification gate passed."""
    gate_failures: int
    """Outputs this verification gate failed."""
    loop_limits: int
    """Times a loop limit stopped the run from entering this node."""
    last_error: str | None
    """The type name of the latest failure."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "node") -> NodeHealth:
        """Read what :meth:`to_dict` wrote; a bad value raises ``ValueError`` naming it."""
        return _from_dict(cls, data, where)

    def __repr__(self) -> str:
        rate = "-" if self.success_rate is None else f"{self.success_rate:.0%}"
        p95 = "" if self.p95 is None else f", p95 {_seconds(self.p95)}"
        return f"<NodeHealth {self.name!r} {self.status}: {self.calls} calls, {rate} ok{p95}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerHealth:
    """One circuit breaker's health, from its transitions and the guarded calls."""

    name: str
    """The breaker's name."""
    state: BreakerState
    """Its state, as of its latest event."""
    since: float
    """Seconds it has been in that state (since the monitor first saw it, at most)."""
    opened: int
    """Times it opened (re-opening after a failed trial counts too)."""
    availability: float
    """Share of the observed time it was not open (half-open counts as available)."""
    mttf: float | None
    """Mean time to failure: seconds closed before each opening (``None`` before one)."""
    mttr: float | None
    """Mean time to recovery: seconds from opening to closing again (``None`` before one)."""
    rejected: int
    """Calls it rejected."""
    calls: int
    """Guarded attempts through it (from nodes that ``guard`` reported)."""
    successes: int
    """Those that returned."""
    failures: int
    """Those that raised or timed out."""
    reason: str | None
    """Why it last changed state (``"3 consecutive failures"``)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["state"] = self.state.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "breaker") -> BreakerHealth:
        """Read what :meth:`to_dict` wrote; a bad value raises ``ValueError`` naming it."""
        return _from_dict(cls, data, where)

    def __repr__(self) -> str:
        return (
            f"<BreakerHealth {self.name!r} {self.state.value} for {_seconds(self.since)}: "
            f"opened {self.opened}x, availability {self.availability:.1%}>"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SaverHealth:
    """One ``ResilientSaver``'s health, from its failover events."""

    name: str
    """The saver's name."""
    active: str
    """Which store serves reads and writes: ``primary`` or ``standby``."""
    since: float
    """Seconds on that store (since the monitor first saw the saver, at most)."""
    failovers: int
    """Times it failed over to the standby."""
    failbacks: int
    """Times it went back to the primary."""
    mirror_failures: int
    """Writes that could not be mirrored to the standby."""
    last_error: str | None
    """The latest failover or mirror error, as ``Type: message``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "saver") -> SaverHealth:
        """Read what :meth:`to_dict` wrote; a bad value raises ``ValueError`` naming it."""
        return _from_dict(cls, data, where)

    def __repr__(self) -> str:
        return (
            f"<SaverHealth {self.name!r} on {self.active} for {_seconds(self.since)}: "
            f"{self.failovers} failovers>"
        )


# ---- the timeline, for plotting


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """A breaker entered ``state`` at ``at`` (or was first seen in it)."""

    breaker: str
    """The breaker's name."""
    at: float
    """The monitor's clock reading (seconds)."""
    state: BreakerState
    """The state it entered."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPoint:
    """One guarded attempt at a node."""

    node: str
    """The graph node."""
    at: float
    """When it ended, on the monitor's clock (seconds)."""
    duration: float | None
    """How long it ran (seconds); ``None`` when its breaker rejected it."""
    error: str | None
    """The error's type name, ``None`` for a success."""

    @property
    def ok(self) -> bool:
        """Whether the attempt returned."""
        return self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """Breaker state changes and guarded attempts over time, oldest first (bounded)."""

    start: float
    """The first reading the monitor took (seconds)."""
    end: float
    """The reading when the timeline was taken."""
    changes: tuple[StateChange, ...]
    """Each breaker's first-seen state, then its transitions."""
    calls: tuple[CallPoint, ...]
    """The latest guarded attempts."""

    def bands(self) -> dict[str, list[tuple[float, float, BreakerState]]]:
        """Per breaker, ``(start, end, state)`` spans covering its observed time."""
        out: dict[str, list[tuple[float, float, BreakerState]]] = {}
        open_spans: dict[str, tuple[float, BreakerState]] = {}
        for change in self.changes:
            began = open_spans.get(change.breaker)
            if began is not None and change.at > began[0]:
                out.setdefault(change.breaker, []).append((began[0], change.at, began[1]))
            out.setdefault(change.breaker, [])
            open_spans[change.breaker] = (change.at, change.state)
        for name, (at, state) in open_spans.items():
            out[name].append((at, max(at, self.end), state))
        return out

    def breakers(self) -> list[str]:
        """Breaker names, in the order they were first seen."""
        return list(dict.fromkeys(change.breaker for change in self.changes))

    def nodes(self) -> list[str]:
        """Node names, in the order of their first attempt in the timeline."""
        return list(dict.fromkeys(call.node for call in self.calls))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "start": self.start,
            "end": self.end,
            "changes": [
                {"breaker": c.breaker, "at": c.at, "state": c.state.value} for c in self.changes
            ],
            "calls": [
                {"node": c.node, "at": c.at, "duration": c.duration, "error": c.error}
                for c in self.calls
            ],
        }

    def __repr__(self) -> str:
        return (
            f"<Timeline {self.start:g}..{self.end:g}: {len(self.changes)} state changes, "
            f"{len(self.calls)} calls>"
        )


def percentile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of ascending values (``None`` if empty).

    >>> percentile([0.1, 0.2, 0.3, 0.4], 0.5)
    0.2
    >>> percentile([0.1, 0.2, 0.3, 0.4], 0.95)
    0.4
    """
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# ---- the mutable statistics behind the snapshot values


class _Node:
    """Running numbers for one node (mutated under the monitor's lock)."""

    __slots__ = (
        "baseline",
        "breaker",
        "calls",
        "dead_letters",
        "failures",
        "failures_before",
        "failures_latest",
        "fallbacks",
        "gate_failures",
        "gate_passes",
        "last_dead_letter_at",
        "last_error",
        "last_fallback_at",
        "last_slow_at",
        "latencies",
        "latency_high",
        "loop_limits",
        "name",
        "rate_low",
        "recent",
        "recent_bad",
        "rejected",
        "rising",
        "seed",
        "slow_calls",
        "slow_flags",
        "slow_in_sample",
        "successes",
    )

    def __init__(self, name: str, sample: int) -> None:
        self.name = name
        self.breaker: str | None = None
        self.calls = self.successes = self.failures = self.rejected = 0
        self.slow_calls = self.fallbacks = self.dead_letters = 0
        self.gate_passes = self.gate_failures = self.loop_limits = 0
        self.last_error: str | None = None
        self.latencies: deque[float] = deque(maxlen=sample)
        # which of those were slow when recorded, and how many: the p95 rule in O(1)
        self.slow_flags: deque[bool] = deque(maxlen=sample)
        self.slow_in_sample = 0
        self.baseline: float | None = None
        self.seed: list[float] = []  # the first successful durations, until the baseline is set
        # (time, unsuccessful) of the recent window's calls, and how many were unsuccessful
        self.recent: deque[tuple[float, bool]] = deque()
        self.recent_bad = 0
        # failure times in the latest window and in the one before it (for the rising
        # rule); bounded, so a storm of failures saturates the counts instead of memory
        self.failures_latest: deque[float] = deque(maxlen=_RECENT_CAP)
        self.failures_before: deque[float] = deque(maxlen=_RECENT_CAP)
        self.last_slow_at: float | None = None
        self.last_fallback_at: float | None = None
        self.last_dead_letter_at: float | None = None
        # whether each rate condition held at the latest event (alerts fire on a change)
        self.rate_low = self.latency_high = self.rising = False


class _Breaker:
    """Running numbers for one breaker."""

    __slots__ = (
        "alerting",
        "closed_since",
        "first_seen",
        "name",
        "open_time",
        "opened",
        "outage_start",
        "reason",
        "recoveries",
        "recovery_time",
        "rejected",
        "since",
        "state",
        "up_time",
        "ups",
    )

    def __init__(self, name: str, state: BreakerState, now: float) -> None:
        self.name = name
        self.state = state
        self.since = self.first_seen = now
        self.reason: str | None = None
        self.opened = self.rejected = 0
        self.open_time = 0.0  # completed open spans
        # closed periods that ended in an opening, and outages that ended in a closing
        self.up_time, self.ups = 0.0, 0
        self.recovery_time, self.recoveries = 0.0, 0
        # None when the monitor did not see the period start (watch() or a closing sets it)
        self.closed_since: float | None = None
        self.outage_start: float | None = None
        self.alerting = False  # the HIGH condition: opened and not yet closed again


class _Saver:
    __slots__ = (
        "active",
        "failbacks",
        "failovers",
        "last_error",
        "mirror_failures",
        "name",
        "since",
    )

    def __init__(self, name: str, now: float) -> None:
        self.name = name
        self.active = "primary"
        self.since = now
        self.failovers = self.failbacks = self.mirror_failures = 0
        self.last_error: str | None = None


class HealthStats:
    """Statistics and alert conditions for everything the event stream mentions.

    Not thread-safe: the front holds a lock around each call. ``now`` is the caller's
    clock reading, which must not go backwards between calls.

    Args:
        policy: the alert thresholds and the recent window.
        latency_sample: successful durations kept per node for p50/p95 (>= 1).
        timeline_size: attempts and state changes kept for :meth:`timeline` (>= 0).
    """

    __slots__ = (
        "_breakers",
        "_critical",
        "_handlers",
        "_min_calls",
        "_min_rate",
        "_nodes",
        "_rising",
        "_sample",
        "_savers",
        "_slow",
        "_slow_needed",
        "_start",
        "_timeline_calls",
        "_timeline_changes",
        "_window",
        "policy",
    )

    def __init__(
        self,
        policy: AlertPolicy | None = None,
        *,
        latency_sample: int = 256,
        timeline_size: int = 10_000,
    ) -> None:
        if policy is None:
            policy = AlertPolicy()
        elif not isinstance(policy, AlertPolicy):
            raise TypeError(f"policy must be an AlertPolicy, got {policy!r}")
        _check_int("latency_sample", latency_sample, minimum=1)
        _check_int("timeline_size", timeline_size, minimum=0)
        self.policy = policy
        # the policy's numbers, read once: the per-event path reads plain attributes
        self._window = policy.window_seconds
        self._slow = policy.slow_multiple
        self._min_rate = policy.min_success_rate
        self._min_calls = policy.min_calls
        self._rising = policy.rising_errors
        self._sample = latency_sample
        # slow samples that put a full sample's p95 above the line (never, if the sample
        # is too small to reach min_calls)
        self._slow_needed = (
            latency_sample - math.ceil(0.95 * latency_sample) + 1
            if latency_sample >= policy.min_calls
            else latency_sample + 1
        )
        self._nodes: dict[str, _Node] = {}
        self._breakers: dict[str, _Breaker] = {}
        self._savers: dict[str, _Saver] = {}
        self._critical = False
        self._start: float | None = None
        # raw tuples: the objects are built only when someone asks for the timeline
        self._timeline_calls: deque[tuple[str, float, float | None, str | None]] = deque(
            maxlen=timeline_size
        )
        self._timeline_changes: deque[tuple[str, float, BreakerState]] = deque(maxlen=timeline_size)
        handlers: dict[type, Callable[[Any, float], tuple[Alert, ...]]] = {
            NodeSucceeded: self._succeeded,
            NodeFailed: self._failed,
            FallbackTaken: self._fallback,
            DeadLettered: self._dead_letter,
            GateVerdict: self._gate,
            LoopLimitReached: self._loop_limit,
            BreakerTransition: self._transition,
            BreakerOpened: self._transition,
            BreakerHalfOpened: self._transition,
            BreakerClosed: self._transition,
            CallRejected: self._rejected,
            SaverFailedOver: self._failed_over,
            SaverFailedBack: self._failed_back,
            MirrorFailed: self._mirror_failed,
        }
        self._handlers = handlers

    # ---- feeding events

    def record(self, event: object, now: float) -> tuple[Alert, ...]:
        """Count ``event`` (seen at ``now``); returns the alerts whose conditions started.

        Events of other types are ignored.
        """
        if self._start is None:
            self._start = now
        handler = self._handlers.get(type(event)) or self._handler_for_subclass(event)
        return handler(event, now)

    def watch(self, name: str, state: BreakerState, now: float) -> tuple[Alert, ...]:
        """Include breaker ``name`` from now on, currently in ``state`` (a no-op for a
        breaker already seen); returns the alerts its state starts."""
        if self._start is None:
            self._start = now
        if name in self._breakers:
            return NO_ALERTS
        breaker = self._breaker(name, state, now)
        alerts: list[Alert] = []
        if state is _CLOSED:
            breaker.closed_since = now  # the closed period starts now, as far as it knows
        elif state is _OPEN:
            breaker.outage_start = now
            breaker.alerting = True
            alerts.append(self._breaker_alert(breaker, "it was open when the monitor began", now))
        self._judge_critical(now, alerts)
        return tuple(alerts)

    # ---- reading

    def nodes(self, now: float) -> dict[str, NodeHealth]:
        """Every node seen, by name."""
        return {name: self._node_health(node, now) for name, node in self._nodes.items()}

    def breakers(self, now: float) -> dict[str, BreakerHealth]:
        """Every breaker seen or watched, by name."""
        calls: dict[str, list[int]] = {}
        for node in self._nodes.values():
            if node.breaker is not None:
                counts = calls.setdefault(node.breaker, [0, 0, 0])
                counts[0] += node.calls
                counts[1] += node.successes
                counts[2] += node.failures
        out = {}
        for name, b in self._breakers.items():
            observed = now - b.first_seen
            open_time = b.open_time + (now - b.since if b.state is _OPEN else 0.0)
            if observed > 0:
                availability = max(0.0, min(1.0, 1.0 - open_time / observed))
            else:
                availability = 0.0 if b.state is _OPEN else 1.0
            n_calls, n_ok, n_failed = calls.get(name, (0, 0, 0))
            out[name] = BreakerHealth(
                name=name,
                state=b.state,
                since=now - b.since,
                opened=b.opened,
                availability=availability,
                mttf=b.up_time / b.ups if b.ups else None,
                mttr=b.recovery_time / b.recoveries if b.recoveries else None,
                rejected=b.rejected,
                calls=n_calls,
                successes=n_ok,
                failures=n_failed,
                reason=b.reason,
            )
        return out

    def savers(self, now: float) -> dict[str, SaverHealth]:
        """Every checkpoint saver seen, by name."""
        return {
            name: SaverHealth(
                name=name,
                active=s.active,
                since=now - s.since,
                failovers=s.failovers,
                failbacks=s.failbacks,
                mirror_failures=s.mirror_failures,
                last_error=s.last_error,
            )
            for name, s in self._savers.items()
        }

    def timeline(self, now: float) -> Timeline:
        """State changes and attempts kept so far (the latest ``timeline_size`` of each)."""
        return Timeline(
            start=now if self._start is None else self._start,
            end=now,
            changes=tuple(
                StateChange(breaker=name, at=at, state=state)
                for name, at, state in self._timeline_changes
            ),
            calls=tuple(
                CallPoint(node=node, at=at, duration=duration, error=error)
                for node, at, duration, error in self._timeline_calls
            ),
        )

    # ---- node events

    def _node(self, name: str) -> _Node:
        node = self._nodes.get(name)
        if node is None:
            node = self._nodes[name] = _Node(name, self._sample)
        return node

    def _succeeded(self, event: NodeSucceeded, now: float) -> tuple[Alert, ...]:
        # the hot path: one per guarded attempt while a monitor listens
        node = self._nodes.get(event.node) or self._node(event.node)
        if event.breaker is not None:
            node.breaker = event.breaker
        node.calls += 1
        node.successes += 1
        duration = event.duration
        self._timeline_calls.append((node.name, now, duration, None))
        node.latencies.append(duration)
        flags = node.slow_flags
        if len(flags) == flags.maxlen and flags[0]:
            node.slow_in_sample -= 1  # a slow sample is about to leave
        alerts: list[Alert] | None = None
        baseline = node.baseline
        if baseline is None:
            flags.append(False)
            node.seed.append(duration)
            if len(node.seed) >= self._min_calls:
                node.baseline = statistics.median(node.seed)
                node.seed = []
        elif baseline > 0 and duration > self._slow * baseline:
            flags.append(True)
            node.slow_in_sample += 1
            alerts = self._slow_call(node, duration, now)
        else:
            flags.append(False)
            # only normal calls move the baseline, so a slow spell cannot become normal
            node.baseline = baseline + _BASELINE_WEIGHT * (duration - baseline)
        if node.slow_in_sample or node.latency_high:
            high = self._latency_high(node)
            if high is not node.latency_high:
                alerts = self._judge_latency(node, now, alerts, high)
        recent = node.recent
        recent.append((now, False))
        if len(recent) > _RECENT_CAP and recent.popleft()[1]:
            node.recent_bad -= 1
        if recent[0][0] < now - self._window:
            self._prune_recent(node, now)
        if node.rate_low or node.recent_bad:
            # a success lifts the rate, but old successes leaving the window lower it
            alerts = self._judge_rate(node, now, alerts)
        return NO_ALERTS if alerts is None else tuple(alerts)

    def _failed(self, event: NodeFailed, now: float) -> tuple[Alert, ...]:
        node = self._node(event.node)
        if event.breaker is not None:
            node.breaker = event.breaker
        node.calls += 1
        duration = event.duration
        self._timeline_calls.append((node.name, now, duration, event.error))
        alerts: list[Alert] | None = None
        if duration is None and event.error == _REJECTED:
            node.rejected += 1
        else:
            node.failures += 1
            node.last_error = event.error
            baseline = node.baseline
            if (
                duration is not None
                and baseline is not None
                and baseline > 0
                and duration > self._slow * baseline
            ):
                alerts = self._slow_call(node, duration, now)
            alerts = self._judge_rising(node, now, alerts)
        alerts = self._add_failure(node, now, alerts)
        return NO_ALERTS if alerts is None else tuple(alerts)

    def _slow_call(self, node: _Node, duration: float, now: float) -> list[Alert]:
        node.slow_calls += 1
        previous, node.last_slow_at = node.last_slow_at, now
        if _within(previous, now, self._window):
            return []
        baseline = node.baseline or 0.0
        return [
            Alert(
                severity=Severity.LOW,
                title=f"slow call at {node.name!r}",
                detail=(
                    f"an attempt took {_seconds(duration)}, {duration / baseline:.1f}x the "
                    f"baseline {_seconds(baseline)} (slow above {self._slow:g}x)"
                ),
                subject=node.name,
                at=now,
                rule="slow_calls",
            )
        ]

    def _latency_high(self, node: _Node) -> bool:
        """Whether the p95 of the latency sample is above ``slow_multiple`` x the baseline:
        with nearest-rank p95, exactly when at least ``n - ceil(0.95 n) + 1`` of the ``n``
        samples are slow. Counting them (each judged against the baseline when it was
        recorded) keeps this O(1) per call instead of a sort."""
        n = len(node.latencies)
        if n == self._sample:  # the usual case, once the sample is full
            return node.slow_in_sample >= self._slow_needed
        return n >= self._min_calls and node.slow_in_sample >= n - math.ceil(0.95 * n) + 1

    def _judge_latency(
        self, node: _Node, now: float, alerts: list[Alert] | None, high: bool
    ) -> list[Alert] | None:
        """Raise the p95 alert if ``high`` (:meth:`_latency_high`, already computed) starts."""
        if high and not node.latency_high:
            baseline = node.baseline or 0.0
            p95 = percentile(sorted(node.latencies), 0.95) or 0.0
            alerts = alerts if alerts is not None else []
            alerts.append(
                Alert(
                    severity=Severity.MEDIUM,
                    title=f"{node.name}: p95 latency {_seconds(p95)}",
                    detail=(
                        f"{p95 / baseline:.1f}x the baseline {_seconds(baseline)} over the "
                        f"last {len(node.latencies)} successful attempts "
                        f"(degraded above {self._slow:g}x)"
                    ),
                    subject=node.name,
                    at=now,
                    rule="latency",
                )
            )
        node.latency_high = high
        return alerts

    def _add_failure(
        self, node: _Node, now: float, alerts: list[Alert] | None
    ) -> list[Alert] | None:
        node.recent.append((now, True))
        node.recent_bad += 1
        self._prune_recent(node, now)
        return self._judge_rate(node, now, alerts)

    def _judge_rate(
        self, node: _Node, now: float, alerts: list[Alert] | None
    ) -> list[Alert] | None:
        calls = len(node.recent)
        low = calls >= self._min_calls and (calls - node.recent_bad) / calls < self._min_rate
        if low and not node.rate_low:
            rate = (calls - node.recent_bad) / calls
            alerts = alerts if alerts is not None else []
            alerts.append(
                Alert(
                    severity=Severity.MEDIUM,
                    title=f"{node.name}: success rate {rate:.0%}",
                    detail=(
                        f"{calls - node.recent_bad} of {calls} calls in the last "
                        f"{_seconds(self._window)} succeeded (degraded below "
                        f"{self._min_rate:.0%})"
                    ),
                    subject=node.name,
                    at=now,
                    rule="success_rate",
                )
            )
        node.rate_low = low
        return alerts

    def _prune_recent(self, node: _Node, now: float) -> None:
        recent = node.recent
        horizon = now - self._window
        while recent and (recent[0][0] < horizon or len(recent) > _RECENT_CAP):
            if recent.popleft()[1]:
                node.recent_bad -= 1

    def _judge_rising(
        self, node: _Node, now: float, alerts: list[Alert] | None
    ) -> list[Alert] | None:
        window = self._window
        latest_times = node.failures_latest
        if node.rising and (not latest_times or latest_times[-1] < now - window):
            node.rising = False  # the latest window was empty: a quiet spell ended it
        latest_times.append(now)
        latest, before = self._failure_counts(node, now)
        rising = latest >= self._rising and latest > before
        if rising and not node.rising:
            alerts = alerts if alerts is not None else []
            alerts.append(
                Alert(
                    severity=Severity.LOW,
                    title=f"errors rising at {node.name!r}",
                    detail=(
                        f"{latest} failures in the last {_seconds(window)}, {before} in the "
                        f"{_seconds(window)} before (latest: {node.last_error})"
                    ),
                    subject=node.name,
                    at=now,
                    rule="errors_rising",
                )
            )
        node.rising = rising
        return alerts

    def _failure_counts(self, node: _Node, now: float) -> tuple[int, int]:
        """Failures in the latest window and in the window before it, as of ``now``
        (amortised O(1): each failure moves from one deque to the other once)."""
        latest, before = node.failures_latest, node.failures_before
        boundary = now - self._window
        while latest and latest[0] < boundary:
            before.append(latest.popleft())
        horizon = boundary - self._window
        while before and before[0] < horizon:
            before.popleft()
        return len(latest), len(before)

    def _fallback(self, event: FallbackTaken, now: float) -> tuple[Alert, ...]:
        node = self._node(event.node)
        node.fallbacks += 1
        previous, node.last_fallback_at = node.last_fallback_at, now
        if _within(previous, now, self._window):
            return NO_ALERTS
        return (
            Alert(
                severity=Severity.MEDIUM,
                title=f"{node.name!r} fell back to {event.target!r}",
                detail=f"after {event.error}; the run continues degraded",
                subject=node.name,
                at=now,
                rule="fallback",
            ),
        )

    def _dead_letter(self, event: DeadLettered, now: float) -> tuple[Alert, ...]:
        node = self._node(event.node)
        node.dead_letters += 1
        previous, node.last_dead_letter_at = node.last_dead_letter_at, now
        if _within(previous, now, self._window):
            return NO_ALERTS
        return (
            Alert(
                severity=Severity.MEDIUM,
                title=f"dead letter from {node.name!r}",
                detail=f"letter {event.letter} ({event.error_code}) waits in the queue",
                subject=node.name,
                at=now,
                rule="dead_letter",
            ),
        )

    def _gate(self, event: GateVerdict, now: float) -> tuple[Alert, ...]:
        node = self._node(event.node)
        if event.passed:
            node.gate_passes += 1
        else:
            node.gate_failures += 1
        return NO_ALERTS

    def _loop_limit(self, event: LoopLimitReached, now: float) -> tuple[Alert, ...]:
        self._node(event.node).loop_limits += 1
        return NO_ALERTS

    # ---- breaker events

    def _breaker(self, name: str, state: BreakerState, now: float) -> _Breaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = self._breakers[name] = _Breaker(name, state, now)
            self._timeline_changes.append((name, now, state))
        return breaker

    def _rejected(self, event: CallRejected, now: float) -> tuple[Alert, ...]:
        known = event.breaker in self._breakers
        self._breaker(event.breaker, event.state, now).rejected += 1
        if known or event.state is _CLOSED:
            return NO_ALERTS
        alerts: list[Alert] = []  # a new breaker that is not closed: judge CRITICAL now
        self._judge_critical(now, alerts)
        return tuple(alerts)

    def _transition(self, event: BreakerTransition, now: float) -> tuple[Alert, ...]:
        b = self._breaker(event.breaker, event.old, now)
        old, new = b.state, event.new
        b.reason = event.reason
        alerts: list[Alert] = []
        if old is _OPEN and new is not old:
            b.open_time += now - b.since
        if new is _OPEN:
            b.opened += 1
            if old is _CLOSED:
                if b.closed_since is not None:
                    b.up_time += now - b.closed_since
                    b.ups += 1
                b.closed_since = None
                b.outage_start = now
            if not b.alerting:
                b.alerting = True
                alerts.append(self._breaker_alert(b, event.reason, now))
        elif new is _CLOSED:
            if old is not _CLOSED and b.outage_start is not None:
                b.recovery_time += now - b.outage_start
                b.recoveries += 1
            b.outage_start = None
            if old is not _CLOSED:
                b.closed_since = now
            b.alerting = False
        if new is not old:
            b.state = new
            b.since = now
            self._timeline_changes.append((b.name, now, new))
        self._judge_critical(now, alerts)
        return tuple(alerts)

    def _breaker_alert(self, b: _Breaker, reason: str, now: float) -> Alert:
        return Alert(
            severity=Severity.HIGH,
            title=f"breaker {b.name!r} opened",
            detail=f"{reason}; calls are rejected while it is open",
            subject=b.name,
            at=now,
            rule="breaker_open",
        )

    def _judge_critical(self, now: float, alerts: list[Alert]) -> None:
        down = [b.name for b in self._breakers.values() if b.state is not _CLOSED]
        critical = len(down) >= self.policy.critical_open_breakers
        if critical and not self._critical:
            names = ", ".join(repr(name) for name in down)
            alerts.append(
                Alert(
                    severity=Severity.CRITICAL,
                    title=f"{len(down)} breakers open",
                    detail=f"{names} are not closed: the system's availability is at risk",
                    subject="system",
                    at=now,
                    rule="breakers_open",
                )
            )
        self._critical = critical

    # ---- saver events

    def _saver(self, name: str, now: float) -> _Saver:
        saver = self._savers.get(name)
        if saver is None:
            saver = self._savers[name] = _Saver(name, now)
        return saver

    def _failed_over(self, event: SaverFailedOver, now: float) -> tuple[Alert, ...]:
        saver = self._saver(event.saver, now)
        saver.failovers += 1
        saver.last_error = event.error
        if saver.active == "standby":
            return NO_ALERTS
        saver.active, saver.since = "standby", now
        return (
            Alert(
                severity=Severity.HIGH,
                title=f"checkpointer {saver.name!r} failed over",
                detail=f"{event.operation} failed ({event.error}); the standby serves the runs",
                subject=saver.name,
                at=now,
                rule="failed_over",
            ),
        )

    def _failed_back(self, event: SaverFailedBack, now: float) -> tuple[Alert, ...]:
        saver = self._saver(event.saver, now)
        saver.failbacks += 1
        if saver.active != "primary":
            saver.active, saver.since = "primary", now
        return NO_ALERTS

    def _mirror_failed(self, event: MirrorFailed, now: float) -> tuple[Alert, ...]:
        saver = self._saver(event.saver, now)
        saver.mirror_failures += 1
        saver.last_error = event.error
        return NO_ALERTS

    # ---- helpers

    def _handler_for_subclass(self, event: object) -> Callable[[Any, float], tuple[Alert, ...]]:
        # A subclass of a known event; anything else is ignored. The MRO walk is cached
        # either way (a miss as a no-op), so each event type is walked once.
        for klass in type(event).__mro__[1:]:
            handler = self._handlers.get(klass)
            if handler is not None:
                self._handlers[type(event)] = handler
                return handler
        self._handlers[type(event)] = _ignore
        return _ignore

    def _node_health(self, node: _Node, now: float) -> NodeHealth:
        window = self._window
        self._prune_recent(node, now)
        recent = len(node.recent)
        recent_rate = (recent - node.recent_bad) / recent if recent else None
        latest, before = self._failure_counts(node, now)
        ordered = sorted(node.latencies)
        p95 = percentile(ordered, 0.95)
        baseline = node.baseline
        breaker = self._breakers.get(node.breaker) if node.breaker is not None else None
        if breaker is not None and breaker.state is not _CLOSED:
            status = "failing"
        elif (
            (recent_rate is not None and recent >= self._min_calls and recent_rate < self._min_rate)
            or self._latency_high(node)
            or _within(node.last_fallback_at, now, window)
            or _within(node.last_dead_letter_at, now, window)
        ):
            status = "degraded"
        elif (latest >= self._rising and latest > before) or _within(
            node.last_slow_at, now, window
        ):
            status = "warning"
        else:
            status = "healthy"
        return NodeHealth(
            name=node.name,
            breaker=node.breaker,
            status=status,
            calls=node.calls,
            successes=node.successes,
            failures=node.failures,
            rejected=node.rejected,
            success_rate=node.successes / node.calls if node.calls else None,
            recent_calls=recent,
            recent_success_rate=recent_rate,
            error_rate=latest * 60.0 / window,
            p50=percentile(ordered, 0.5),
            p95=p95,
            baseline=baseline,
            slow_calls=node.slow_calls,
            fallbacks=node.fallbacks,
            dead_letters=node.dead_letters,
            gate_passes=node.gate_passes,
            gate_failures=node.gate_failures,
            loop_limits=node.loop_limits,
            last_error=node.last_error,
        )

    def counts(self) -> tuple[int, int, int]:
        """How many nodes, breakers and savers it has seen."""
        return len(self._nodes), len(self._breakers), len(self._savers)

    def __repr__(self) -> str:
        return (
            f"<HealthStats {len(self._nodes)} nodes, {len(self._breakers)} breakers, "
            f"{len(self._savers)} savers>"
        )


def _ignore(event: object, now: float) -> tuple[Alert, ...]:
    """The cached handler of an event type the statistics do not count."""
    return NO_ALERTS


def _within(at: float | None, now: float, window: float) -> bool:
    return at is not None and now - at <= window


def _seconds(value: float) -> str:
    if value == 0:
        return "0 s"
    if value < 1:
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g} s"


# ---- reading JSON back

_T = TypeVar("_T", NodeHealth, BreakerHealth, SaverHealth)


def _from_dict(cls: type[_T], data: Mapping[str, Any], where: str) -> _T:
    data = _mapping(data, where)
    values = {f.name: _typed(data, f.name, str(f.type), where) for f in fields(cls)}
    return cls(**values)


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a JSON object, got {type(data).__name__}")
    return data


def _required(data: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in data:
        raise ValueError(f"{where} is missing {name!r}")
    return data[name]


def _typed(data: Mapping[str, Any], name: str, annotation: str, where: str) -> Any:
    """``data[name]``, checked against a field annotation (``int``, ``float | None``...)."""
    value = _required(data, name, where)
    nullable = annotation.endswith(" | None")
    kind = annotation.removesuffix(" | None")
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{where}.{name} must not be null")
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and _is_number(value):
        if not math.isfinite(value):  # JSON has no NaN or infinity
            raise ValueError(f"{where}.{name} must be a finite number, got {value!r}")
        return float(value)
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "BreakerState":
        try:
            return BreakerState(value)
        except ValueError:
            allowed = ", ".join(s.value for s in BreakerState)
            raise ValueError(f"{where}.{name} must be one of {allowed}, got {value!r}") from None
    expected = {"int": "an integer", "float": "a number", "str": "a string"}.get(kind, kind)
    raise ValueError(
        f"{where}.{name} must be {expected}{' or null' if nullable else ''}, got {value!r}"
    )
