"""The health monitor: statistics and alerts for every node, breaker and checkpointer.

``HealthMonitor`` subscribes to the event stream (``langgraph_resilience.events``), folds
each event into per-node, per-breaker and per-saver statistics
(:mod:`langgraph_resilience.core.health`), and hands the alerts whose conditions start to
its sinks: the ``langgraph_resilience.health`` logger by default, or any callable.

Example:
    ```python
    from langgraph.graph import START, StateGraph
    from langgraph_resilience import BreakerPolicy, CircuitBreaker, FakeClock, HealthMonitor, guard

    clock = FakeClock()
    breaker = CircuitBreaker("health-doc", BreakerPolicy(failure_threshold=2), clock=clock)

    def search(state: dict) -> dict:
        clock.advance(0.25)  # the call takes 250 ms on the fake clock
        return {"found": True}

    builder = StateGraph(dict)
    builder.add_node("search", guard(search, breaker=breaker))
    builder.add_edge(START, "search")
    graph = builder.compile()

    with HealthMonitor(clock=clock, sinks=[]).watch(breaker) as monitor:
        for _ in range(3):
            graph.invoke({})
        breaker.force_open()  # maintenance: a HIGH alert
    snapshot = monitor.snapshot()
    assert snapshot.nodes["search"].calls == 3
    assert snapshot.nodes["search"].p50 == 0.25
    assert snapshot.breakers["health-doc"].state == "open"
    assert [alert.severity for alert in monitor.alerts] == ["high"]
    print(monitor.table())
    ```
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .breaker import CircuitBreaker
from .core.clock import Clock, MonotonicClock, WallClock
from .core.events import BreakerState
from .core.health import (
    Alert,
    AlertPolicy,
    BreakerHealth,
    CallPoint,
    HealthStats,
    NodeHealth,
    SaverHealth,
    Severity,
    StateChange,
    Timeline,
)
from .core.policy import _check_int
from .events import hub

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "Alert",
    "AlertPolicy",
    "AlertSink",
    "BreakerHealth",
    "CallPoint",
    "HealthMonitor",
    "HealthSnapshot",
    "LoggingSink",
    "NodeHealth",
    "SaverHealth",
    "Severity",
    "StateChange",
    "Timeline",
]

logger = logging.getLogger("langgraph_resilience.health")

AlertSink = Callable[[Alert], object]
"""Anything that takes an :class:`Alert`; its return value is ignored."""

SNAPSHOT_FORMAT = "langgraph-resilience/health"
"""The ``format`` key of a saved snapshot (``monitor.save``), checked when it is read."""
SNAPSHOT_VERSION = 1

_LEVELS = {
    Severity.CRITICAL: logging.CRITICAL,
    Severity.HIGH: logging.ERROR,
    Severity.MEDIUM: logging.WARNING,
    Severity.LOW: logging.INFO,
}
_STATE_COLOURS = {"closed": "#1a7f37", "half_open": "#9a6700", "open": "#cf222e"}
_STATUS_COLOURS = {
    "healthy": "#1a7f37",
    "warning": "#9a6700",
    "degraded": "#bc4c00",
    "failing": "#cf222e",
}
_SEVERITY_COLOURS = {
    "critical": "#82071e",
    "high": "#cf222e",
    "medium": "#bc4c00",
    "low": "#9a6700",
}
_TABLE_ALERTS = 10
"""Latest alerts shown by ``table()`` and in a notebook."""


class LoggingSink:
    """Logs each alert: ``CRITICAL`` at ``logging.CRITICAL``, ``HIGH`` at ``ERROR``,
    ``MEDIUM`` at ``WARNING`` and ``LOW`` at ``INFO``.

    The record carries the alert as ``record.alert`` (a dict), for structured handlers.

    Example:
        ```python
        import logging

        from langgraph_resilience import HealthMonitor, LoggingSink

        monitor = HealthMonitor(sinks=[LoggingSink(logging.getLogger("myapp.alerts"))])
        ```

    Args:
        logger: a ``logging.Logger`` or a logger name; the ``langgraph_resilience.health``
            logger by default.
    """

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | str | None = None) -> None:
        if logger is None or isinstance(logger, str):
            logger = logging.getLogger(logger or "langgraph_resilience.health")
        elif not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger or a name, got {logger!r}")
        self.logger = logger
        """Where the alerts go."""

    def __call__(self, alert: Alert) -> None:
        self.logger.log(
            _LEVELS.get(alert.severity, logging.WARNING),
            "%s alert: %s: %s",
            alert.severity.name,
            alert.title,
            alert.detail,
            extra={"alert": alert.to_dict()},
        )

    def __repr__(self) -> str:
        return f"LoggingSink({self.logger.name!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthSnapshot:
    """Every node's, breaker's and saver's health at one moment, and the alerts so far.

    Plain data: ``to_dict()``/``to_json()`` and back with ``from_dict()``/``from_json()``;
    ``table()`` for a terminal, a rich table in a notebook.
    """

    taken_at: float
    """The monitor's clock reading when it was taken (seconds)."""
    nodes: dict[str, NodeHealth] = field(default_factory=dict)
    """Per graph node, by name."""
    breakers: dict[str, BreakerHealth] = field(default_factory=dict)
    """Per circuit breaker, by name."""
    savers: dict[str, SaverHealth] = field(default_factory=dict)
    """Per ``ResilientSaver``, by name."""
    alerts: tuple[Alert, ...] = ()
    """The alerts raised so far, oldest first (the monitor keeps the latest ``max_alerts``)."""
    saved_at: str | None = None
    """When ``monitor.save()`` wrote it (ISO 8601, UTC); ``None`` for one in memory."""

    @property
    def open_breakers(self) -> list[str]:
        """Names of the breakers that are not closed."""
        return [name for name, b in self.breakers.items() if b.state is not BreakerState.CLOSED]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, with a ``format`` and ``version`` so readers can check it."""
        return {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "taken_at": self.taken_at,
            "saved_at": self.saved_at,
            "nodes": {name: node.to_dict() for name, node in self.nodes.items()},
            "breakers": {name: b.to_dict() for name, b in self.breakers.items()},
            "savers": {name: s.to_dict() for name, s in self.savers.items()},
            "alerts": [alert.to_dict() for alert in self.alerts],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """The snapshot as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthSnapshot:
        """Read what :meth:`to_dict` wrote.

        Raises:
            ValueError: it is not a health snapshot, or a field is missing or has the
                wrong type (the message names it).
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a health snapshot is a JSON object, got {type(data).__name__}")
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(
                f"not a health snapshot: 'format' is {data.get('format')!r}, "
                f"expected {SNAPSHOT_FORMAT!r} (write one with HealthMonitor.save(path))"
            )
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"health snapshot version {data.get('version')!r} is not supported "
                f"(this version reads {SNAPSHOT_VERSION})"
            )
        taken_at = data.get("taken_at")
        if not isinstance(taken_at, (int, float)) or isinstance(taken_at, bool):
            raise ValueError(f"snapshot.taken_at must be a number, got {taken_at!r}")
        saved_at = data.get("saved_at")
        if saved_at is not None and not isinstance(saved_at, str):
            raise ValueError(f"snapshot.saved_at must be a string or null, got {saved_at!r}")
        alerts = data.get("alerts", [])
        if not isinstance(alerts, list):
            raise ValueError(f"snapshot.alerts must be a list, got {type(alerts).__name__}")
        return cls(
            taken_at=float(taken_at),
            saved_at=saved_at,
            nodes=_entries(data, "nodes", NodeHealth.from_dict),
            breakers=_entries(data, "breakers", BreakerHealth.from_dict),
            savers=_entries(data, "savers", SaverHealth.from_dict),
            alerts=tuple(
                Alert.from_dict(alert, where=f"alerts[{i}]") for i, alert in enumerate(alerts)
            ),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> HealthSnapshot:
        """Read what :meth:`to_json` wrote; bad JSON raises ``ValueError``."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a health snapshot must be JSON: {exc}") from None
        return cls.from_dict(data)

    def table(self, *, width: int = 100) -> str:
        """The health tables as plain text (no colour codes), ``width`` characters wide.

        Names and numbers are never cut: text columns (reasons, alerts) wrap to fit, and
        only if the rest cannot fit in ``width`` is the text wider.
        """
        from rich.console import Console, Group
        from rich.measure import Measurement
        from rich.text import Text

        tables: list[Any] = []
        if self.nodes:
            gates = any(
                n.gate_passes or n.gate_failures or n.loop_limits for n in self.nodes.values()
            )
            header = ["node", "status", "calls", "ok", "fail", "rej", "err/min", "p50", "p95"]
            header += ["base", "slow", "fb", "dlq"] + (["gate", "loop"] if gates else [])
            rows = []
            for n in self.nodes.values():
                row = [
                    n.name,
                    n.status,
                    str(n.calls),
                    _percent(n.success_rate),
                    str(n.failures),
                    str(n.rejected),
                    f"{n.error_rate:.1f}",
                    _duration(n.p50),
                    _duration(n.p95),
                    _duration(n.baseline),
                    str(n.slow_calls),
                    str(n.fallbacks),
                    str(n.dead_letters),
                ]
                if gates:
                    row += [f"{n.gate_passes}/{n.gate_failures}", str(n.loop_limits)]
                rows.append(row)
            tables.append(_rich_table("nodes", header, rows, text_columns=0))
        if self.breakers:
            header = ["breaker", "state", "for", "opened", "avail", "MTTF", "MTTR", "rejected"]
            rows = [
                [
                    b.name,
                    b.state.value,
                    _duration(b.since),
                    str(b.opened),
                    f"{b.availability:.1%}",
                    _duration(b.mttf),
                    _duration(b.mttr),
                    str(b.rejected),
                    b.reason or "",
                ]
                for b in self.breakers.values()
            ]
            tables.append(_rich_table("breakers", [*header, "reason"], rows, text_columns=1))
        if self.savers:
            header = ["saver", "active", "for", "failovers", "failbacks", "mirror fails"]
            rows = [
                [
                    s.name,
                    s.active,
                    _duration(s.since),
                    str(s.failovers),
                    str(s.failbacks),
                    str(s.mirror_failures),
                    s.last_error or "",
                ]
                for s in self.savers.values()
            ]
            tables.append(_rich_table("savers", [*header, "last error"], rows, text_columns=1))
        if self.alerts:
            shown = self.alerts[-_TABLE_ALERTS:]
            title = "alerts" if len(shown) == len(self.alerts) else f"latest {len(shown)} alerts"
            rows = [[f"{a.at:g}", a.severity.value, f"{a.title}: {a.detail}"] for a in shown]
            tables.append(_rich_table(title, ["at", "severity", "alert"], rows, text_columns=1))

        def console(columns: int) -> Console:
            # No terminal, no Jupyter, no colour: the same text everywhere, for logs and tests.
            return Console(
                file=io.StringIO(),
                width=columns,
                color_system=None,
                force_terminal=False,
                force_jupyter=False,
                force_interactive=False,
                no_color=True,
                highlight=False,
                emoji=False,
                markup=False,
                legacy_windows=False,
            )

        probe = console(10_000)
        needed = max((Measurement.get(probe, probe.options, t).minimum for t in tables), default=0)
        out = console(max(width, needed))
        out.print(Group(Text(self._summary()), *self._saved_line(), *tables))
        text = out.file.getvalue()  # type: ignore[attr-defined]
        return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"

    def _saved_line(self) -> list[Any]:
        from rich.text import Text

        return [Text(f"saved {self.saved_at}")] if self.saved_at else []

    def _summary(self) -> str:
        text = f"health at t={self.taken_at:g}s"
        statuses: dict[str, int] = {}
        for node in self.nodes.values():
            statuses[node.status] = statuses.get(node.status, 0) + 1
        counts = ", ".join(
            f"{statuses[s]} {s}" for s in ("failing", "degraded", "warning") if s in statuses
        )
        text += f": {_count(len(self.nodes), 'node')}" + (f" ({counts})" if counts else "")
        down = len(self.open_breakers)
        text += f", {_count(len(self.breakers), 'breaker')}"
        text += f" ({down} not closed)" if down else ""
        if self.savers:
            standby = sum(1 for s in self.savers.values() if s.active == "standby")
            text += f", {_count(len(self.savers), 'saver')}"
            text += f" ({standby} on standby)" if standby else ""
        return text + f", {_count(len(self.alerts), 'alert')}"

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{escape(self._summary())}</b></p>"]
        head: tuple[str, ...]
        rows: list[tuple[object, ...]]
        if self.nodes:
            head = (
                "node", "status", "calls", "success", "failures", "rejected", "errors/min",
                "p50", "p95", "baseline", "slow", "fallbacks", "dead letters", "gate ok/fail",
                "loop limits",
            )  # fmt: skip
            rows = [
                (
                    f"<code>{escape(n.name)}</code>",
                    _coloured(n.status, _STATUS_COLOURS),
                    n.calls,
                    _percent(n.success_rate),
                    n.failures,
                    n.rejected,
                    f"{n.error_rate:.1f}",
                    _duration(n.p50),
                    _duration(n.p95),
                    _duration(n.baseline),
                    n.slow_calls,
                    n.fallbacks,
                    n.dead_letters,
                    f"{n.gate_passes}/{n.gate_failures}",
                    n.loop_limits,
                )
                for n in self.nodes.values()
            ]
            parts.append(_html_table("nodes", head, rows))
        if self.breakers:
            head = ("breaker", "state", "for", "opened", "availability", "MTTF", "MTTR",
                    "rejected", "reason")  # fmt: skip
            rows = [
                (
                    f"<code>{escape(b.name)}</code>",
                    _coloured(b.state.value, _STATE_COLOURS),
                    _duration(b.since),
                    b.opened,
                    f"{b.availability:.1%}",
                    _duration(b.mttf),
                    _duration(b.mttr),
                    b.rejected,
                    escape(b.reason or ""),
                )
                for b in self.breakers.values()
            ]
            parts.append(_html_table("breakers", head, rows))
        if self.savers:
            head = ("saver", "active", "for", "failovers", "failbacks", "mirror failures",
                    "last error")  # fmt: skip
            rows = [
                (
                    f"<code>{escape(s.name)}</code>",
                    _coloured(s.active, {"primary": "#1a7f37", "standby": "#cf222e"}),
                    _duration(s.since),
                    s.failovers,
                    s.failbacks,
                    s.mirror_failures,
                    escape(s.last_error or ""),
                )
                for s in self.savers.values()
            ]
            parts.append(_html_table("savers", head, rows))
        if self.alerts:
            rows = [
                (
                    f"{a.at:g}",
                    _coloured(a.severity.value, _SEVERITY_COLOURS),
                    f"{escape(a.title)}: {escape(a.detail)}",
                )
                for a in self.alerts[-_TABLE_ALERTS:]
            ]
            parts.append(_html_table("alerts", ("at", "severity", "alert"), rows))
        return "<div>" + "".join(parts) + "</div>"

    def __repr__(self) -> str:
        return f"<HealthSnapshot {self._summary()}>"


class HealthMonitor:
    """Watches every node, breaker and checkpointer through the event stream, keeps
    their health statistics, and raises alerts when something goes wrong.

    ``start()`` subscribes it to the event hub (or use it as a context manager); from
    then on, ``guard`` reports each attempt and every breaker, fallback, dead letter,
    gate, loop limit and saver failover lands here. The monitor stamps each event with
    its own clock: pass the ``FakeClock`` your breakers use, in tests and notebooks.

    Thread-safe: events arrive from many threads. A lock is held only while the numbers
    are updated, never while a sink runs; a sink that raises is logged and never reaches
    the graph.

    Example:
        ```python
        from langgraph_resilience import (
            BreakerPolicy, CircuitBreaker, FakeClock, HealthMonitor, Severity,
        )

        clock = FakeClock()
        alerts = []
        monitor = HealthMonitor(clock=clock, sinks=[alerts.append]).start()
        api = CircuitBreaker("monitor-doc", BreakerPolicy(failure_threshold=1), clock=clock)
        monitor.watch(api)  # listed from now on, even before it has an event
        try:
            api.call(lambda: 1 / 0)  # one failure opens it
        except ZeroDivisionError:
            pass
        monitor.stop()
        assert [a.severity for a in alerts] == [Severity.HIGH]
        assert monitor.snapshot().breakers["monitor-doc"].opened == 1
        ```

    Args:
        clock: a ``Clock`` for stamping events; the monotonic clock by default.
        policy: the alert thresholds and the recent window; ``AlertPolicy()`` by default.
        sinks: callables each new alert is handed to; ``(LoggingSink(),)`` by default,
            ``()`` for none.
        latency_sample: successful durations kept per node for p50 and p95.
        timeline_size: attempts and state changes kept for :meth:`timeline`.
        max_alerts: alerts kept in :attr:`alerts` (the oldest are dropped).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        policy: AlertPolicy | None = None,
        sinks: Iterable[AlertSink] | None = None,
        *,
        latency_sample: int = 256,
        timeline_size: int = 10_000,
        max_alerts: int = 1000,
    ) -> None:
        if clock is None:
            clock = MonotonicClock()
        elif not callable(getattr(clock, "now", None)):
            raise TypeError(f"clock must have a now() method returning seconds, got {clock!r}")
        sinks = (LoggingSink(),) if sinks is None else tuple(sinks)
        for sink in sinks:
            _check_sink(sink)
        _check_int("max_alerts", max_alerts, minimum=1)
        self._clock = clock
        self._now = clock.now
        self._stats = HealthStats(
            policy, latency_sample=latency_sample, timeline_size=timeline_size
        )
        self._sizes = (latency_sample, timeline_size)
        self._sinks: tuple[AlertSink, ...] = sinks
        self._alerts: deque[Alert] = deque(maxlen=max_alerts)
        self._watched: dict[str, CircuitBreaker] = {}
        self._lock = threading.Lock()
        self._started = False

    # ---- lifecycle

    def start(self) -> HealthMonitor:
        """Subscribe to the event stream (a no-op if started); returns the monitor."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        hub.subscribe(self.record)
        return self

    def stop(self) -> None:
        """Unsubscribe from the event stream; the statistics are kept."""
        with self._lock:
            if not self._started:
                return
            self._started = False
        hub.unsubscribe(self.record)  # bound methods of one monitor compare equal

    @property
    def started(self) -> bool:
        """Whether it is subscribed to the event stream."""
        return self._started

    def __enter__(self) -> HealthMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every statistic and alert (watched breakers stay watched)."""
        latency_sample, timeline_size = self._sizes
        with self._lock:
            self._stats = HealthStats(
                self._stats.policy, latency_sample=latency_sample, timeline_size=timeline_size
            )
            self._alerts.clear()
            watched = list(self._watched.values())
            self._watched.clear()
        self.watch(*watched)

    # ---- input

    def watch(self, *breakers: CircuitBreaker) -> HealthMonitor:
        """List ``breakers`` from now on, in their current state, even before they have an
        event; returns the monitor. An open breaker raises its alert at once."""
        for breaker in breakers:
            if not isinstance(breaker, CircuitBreaker):
                raise TypeError(f"watch() takes CircuitBreaker objects, got {breaker!r}")
        for breaker in breakers:
            # Outside the lock: reading the state may publish a transition (an open
            # breaker whose timeout passed), which comes back through record().
            state = breaker.snapshot().state
            with self._lock:
                self._watched[breaker.name] = breaker
                alerts = self._stats.watch(breaker.name, state, self._now())
                if alerts:
                    self._alerts.extend(alerts)
            if alerts:
                self._send(alerts)
        return self

    def record(self, event: object) -> None:
        """Count one event (the hub calls this; call it yourself for events from
        elsewhere, such as another process). Events of other types are ignored."""
        with self._lock:
            alerts = self._stats.record(event, self._now())
            if alerts:
                self._alerts.extend(alerts)
        if alerts:
            self._send(alerts)

    def add_sink(self, sink: AlertSink) -> AlertSink:
        """Hand every new alert to ``sink`` too; returns it, so it works as a decorator."""
        _check_sink(sink)
        with self._lock:
            self._sinks = (*self._sinks, sink)
        return sink

    def remove_sink(self, sink: AlertSink) -> None:
        """Stop handing alerts to ``sink`` (a no-op if it is not one)."""
        with self._lock:
            self._sinks = tuple(s for s in self._sinks if s != sink)

    # ---- output

    @property
    def policy(self) -> AlertPolicy:
        """The alert thresholds."""
        return self._stats.policy

    @property
    def clock(self) -> Clock:
        """The clock events are stamped with."""
        return self._clock

    @property
    def sinks(self) -> tuple[AlertSink, ...]:
        """Where new alerts go."""
        return self._sinks

    @property
    def alerts(self) -> list[Alert]:
        """Every alert raised so far (the latest ``max_alerts``), oldest first."""
        with self._lock:
            return list(self._alerts)

    def snapshot(self) -> HealthSnapshot:
        """Every node's, breaker's and saver's health now."""
        for breaker in list(self._watched.values()):
            breaker.state  # noqa: B018 - reading it publishes a transition that is due
        with self._lock:
            now = self._now()
            stats = self._stats
            return HealthSnapshot(
                taken_at=now,
                nodes=stats.nodes(now),
                breakers=stats.breakers(now),
                savers=stats.savers(now),
                alerts=tuple(self._alerts),
            )

    def timeline(self) -> Timeline:
        """Breaker state changes and guarded attempts over time, for plotting."""
        with self._lock:
            return self._stats.timeline(self._now())

    def table(self, *, width: int = 100) -> str:
        """The health tables as plain text: ``print(monitor.table())``."""
        return self.snapshot().table(width=width)

    def plot(self, *, ax: Axes | Iterable[Axes] | None = None) -> Figure:
        """Plot the timeline with matplotlib (the ``notebook`` extra): see
        :func:`langgraph_resilience.notebook.plot_timeline`."""
        from .notebook import plot_timeline

        return plot_timeline(self, ax=ax)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the snapshot as JSON to ``path`` (replaced atomically); returns the path.

        ``langgraph-resilience status PATH`` prints it.
        """
        stamp = datetime.fromtimestamp(WallClock().now(), tz=timezone.utc)
        text = replace(self.snapshot(), saved_at=stamp.isoformat(timespec="seconds")).to_json()
        target = Path(path)
        # Write beside the target and rename, so a reader never sees half a file. Opened
        # with mode 0o666 like open() (the umask applies), unlike mkstemp's 0600.
        scratch = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(scratch, target)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        return target

    def _repr_html_(self) -> str:
        return self.snapshot()._repr_html_()

    def __repr__(self) -> str:
        with self._lock:
            nodes, breakers, savers = self._stats.counts()
            alerts = len(self._alerts)
        status = "started" if self._started else "stopped"
        return (
            f"<HealthMonitor {status}: {nodes} nodes, {breakers} breakers, {savers} savers, "
            f"{alerts} alerts>"
        )

    # ---- helpers

    def _send(self, alerts: tuple[Alert, ...]) -> None:
        for alert in alerts:
            for sink in self._sinks:
                try:
                    sink(alert)
                except Exception:  # noqa: PERF203 - a broken sink must never break the graph
                    logger.exception("health alert sink %r failed on %s", sink, alert)


def _check_sink(sink: object) -> None:
    if not callable(sink):
        raise TypeError(f"a sink is a callable taking an Alert, got {sink!r}")


def _entries(data: Mapping[str, Any], key: str, read: Callable[..., Any]) -> dict[str, Any]:
    entries = data.get(key, {})
    if not isinstance(entries, Mapping):
        raise ValueError(f"snapshot.{key} must be a JSON object, got {type(entries).__name__}")
    return {name: read(value, where=f"{key}[{name!r}]") for name, value in entries.items()}


def _rich_table(
    title: str, header: Sequence[str], rows: Iterable[Sequence[str]], *, text_columns: int
) -> Any:
    """A plain rich table: the first column left-aligned, numbers right-aligned and never
    wrapped, and the last ``text_columns`` columns free to wrap."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    wrapping = len(header) - text_columns
    for index, name in enumerate(header):
        if index >= wrapping:
            table.add_column(name, overflow="fold")
        else:
            table.add_column(
                name, justify="left" if index < 2 else "right", no_wrap=True, min_width=len(name)
            )
    for row in rows:
        table.add_row(*row)
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _duration(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0s"
    if value < 1:
        return f"{value * 1000:.0f}ms" if value >= 0.001 else f"{value * 1e6:.0f}us"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _coloured(text: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(text, "inherit")
    return f'<b style="color:{colour}">{escape(text)}</b>'


def _html_table(caption: str, head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    header = "".join(f"<th style='text-align:left'>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    caption = f"<caption style='text-align:left'>{caption}</caption>"
    return f"<table>{caption}<tr>{header}</tr>{body}</table>"
