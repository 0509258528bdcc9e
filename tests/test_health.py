"""The health monitor on real graphs: guarded nodes, breakers on a FakeClock, chaos
outages, fallbacks, dead letters, gates, loop limits and a failing-over checkpointer."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

import langgraph_resilience.health as health_module
import langgraph_resilience.notebook as notebook_module
from langgraph_resilience import (
    Alert,
    AlertPolicy,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    DeadLetterQueue,
    FakeClock,
    HealthMonitor,
    HealthSnapshot,
    InMemoryBreakerStore,
    LoggingSink,
    LoopPolicy,
    ResilienceState,
    ResilientSaver,
    Severity,
    Timeline,
    dead_letter,
    fallback_to,
    guard,
    loop_guard,
    verification_gate,
)
from langgraph_resilience.core.events import NodeSucceeded
from langgraph_resilience.events import hub
from langgraph_resilience.testing import Chaos, Faults, FaultySaver, Outage

MODES = ["sync", "async"]


class State(ResilienceState, total=False):
    topic: str
    notes: str
    extra: str


@pytest.fixture(autouse=True)
def _no_monitor_left_subscribed() -> Any:
    yield
    assert hub.listeners == (), "a test left a listener subscribed"


def rules(alerts: list[Alert] | tuple[Alert, ...]) -> list[tuple[float, str, str, str]]:
    return [(alert.at, alert.severity.value, alert.rule, alert.subject) for alert in alerts]


class Team:
    """A research graph: search (breaker, chaos outage 10-50 s) falls back to a cache;
    enrich (breaker, same outage) dead-letters its failures."""

    def __init__(self, mode: str, store: InMemoryBreakerStore, clock: FakeClock) -> None:
        self.mode = mode
        self.clock = clock
        self.search_breaker = CircuitBreaker(
            "search-api",
            BreakerPolicy(failure_threshold=3, recovery_timeout=30),
            clock=clock,
            store=store,
        )
        self.enrich_breaker = CircuitBreaker(
            "enrich-api",
            BreakerPolicy(failure_threshold=2, recovery_timeout=30),
            clock=clock,
            store=store,
        )
        self.idle_breaker = CircuitBreaker("idle-api", clock=clock, store=store)
        self.dlq = DeadLetterQueue.from_url("memory://")
        chaos = Chaos(seed=7, clock=clock)
        down = Faults(outages=(Outage(10, 50),))

        if mode == "sync":

            def search(state: State) -> dict[str, Any]:
                clock.advance(0.25)  # the call takes 250 ms on the fake clock
                return {"notes": "fresh"}

            def enrich(state: State) -> dict[str, Any]:
                clock.advance(0.5)
                return {"extra": "enriched"}

            search_node: Callable[..., Any] = search
            enrich_node: Callable[..., Any] = enrich
        else:

            async def asearch(state: State) -> dict[str, Any]:
                clock.advance(0.25)
                return {"notes": "fresh"}

            async def aenrich(state: State) -> dict[str, Any]:
                clock.advance(0.5)
                return {"extra": "enriched"}

            search_node, enrich_node = asearch, aenrich

        builder = StateGraph(State)
        builder.add_node(
            "search",
            guard(chaos.node(search_node, down, name="search"), breaker=self.search_breaker),
            error_handler=fallback_to("cached"),
        )
        builder.add_node("cached", lambda state: {"notes": "cached"})
        builder.add_node("writer", lambda state: {})
        builder.add_node(
            "enrich",
            guard(chaos.node(enrich_node, down, name="enrich"), breaker=self.enrich_breaker),
            error_handler=dead_letter(self.dlq),
        )
        builder.add_edge(START, "search")
        builder.add_edge("search", "writer")
        builder.add_edge("cached", "writer")
        builder.add_edge("writer", "enrich")
        builder.add_edge("enrich", END)
        self.graph = builder.compile(checkpointer=InMemorySaver())
        self.runs = 0

    async def run(self) -> dict[str, Any]:
        self.runs += 1
        config = {"configurable": {"thread_id": f"{self.mode}-{self.runs}"}}
        if self.mode == "sync":
            return self.graph.invoke({"topic": "tides"}, config)
        return await self.graph.ainvoke({"topic": "tides"}, config)

    async def run_until(self, until: float, *, every: float = 1.0) -> list[str]:
        notes = []
        while self.clock.now() < until:
            notes.append((await self.run())["notes"])
            self.clock.advance(every)
        return notes


@pytest.mark.parametrize("mode", MODES)
async def test_an_outage_through_breakers_fallbacks_and_dead_letters(
    mode: str, store: InMemoryBreakerStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    team = Team(mode, store, clock)
    received: list[Alert] = []

    def broken_pager(alert: Alert) -> None:
        raise RuntimeError("pager is down")

    monitor = HealthMonitor(clock=clock, sinks=[broken_pager, received.append])
    monitor.watch(team.search_breaker, team.enrich_breaker, team.idle_breaker)
    with monitor:
        assert set(monitor.snapshot().breakers) == {"search-api", "enrich-api", "idle-api"}
        assert await team.run_until(8) == ["fresh"] * 5  # t = 0 .. 8.75: healthy
        assert monitor.alerts == []
        clock.advance(10 - clock.now())
        # t = 10, 11, 12, 13: inside the outage; every run still finishes, from the cache
        assert await team.run_until(13.5) == ["cached"] * 4
        clock.advance(60 - clock.now())  # the outage is over and 30 s have passed
        assert await team.run_until(64) == ["fresh"] * 3
    assert not monitor.started

    # Alerts fire when their condition starts, once: not for every failed or rejected call.
    assert rules(monitor.alerts) == [
        (10.0, "medium", "success_rate", "search"),  # 5 of 6 calls ok < 90%
        (10.0, "medium", "fallback", "search"),
        (10.0, "medium", "success_rate", "enrich"),
        (10.0, "medium", "dead_letter", "enrich"),
        (11.0, "high", "breaker_open", "enrich-api"),  # 2 consecutive failures
        (12.0, "low", "errors_rising", "search"),  # 3 failures this minute, 0 before
        (12.0, "high", "breaker_open", "search-api"),  # 3 consecutive failures
        (12.0, "critical", "breakers_open", "system"),  # two open at once
    ]
    assert received == monitor.alerts  # the broken sink did not stop the next one
    failures = [r for r in caplog.records if "sink" in r.getMessage()]
    assert len(failures) == len(received)
    assert all(r.name == "langgraph_resilience.health" for r in failures)
    assert "pager is down" in (failures[0].exc_text or "")

    snapshot = monitor.snapshot()
    search = snapshot.nodes["search"]
    # 5 ok, 3 failed (then open), 1 rejected, 3 ok after recovery
    assert (search.calls, search.successes, search.failures, search.rejected) == (12, 8, 3, 1)
    assert search.fallbacks == 4
    assert search.dead_letters == 0
    assert search.breaker == "search-api"
    assert (search.p50, search.p95, search.baseline) == (0.25, 0.25, 0.25)
    assert search.last_error == "ConnectionError"
    enrich = snapshot.nodes["enrich"]
    assert (enrich.calls, enrich.successes, enrich.failures, enrich.rejected) == (12, 8, 2, 2)
    assert enrich.dead_letters == 4 == len(team.dlq.list(status="pending"))
    assert enrich.p95 == 0.5

    search_api = snapshot.breakers["search-api"]
    assert search_api.state is BreakerState.CLOSED
    assert search_api.opened == 1
    assert search_api.mttf == 12.0  # watched closed from 0 until it opened at 12
    assert search_api.mttr == pytest.approx(50.0)  # open at 12, closed by the trials at 62
    assert search_api.rejected == 1
    observed = snapshot.taken_at
    assert search_api.availability == pytest.approx(1 - 48.0 / observed)  # open 12 -> 60
    assert (search_api.calls, search_api.failures) == (12, 3)
    idle = snapshot.breakers["idle-api"]  # watched, never used: still listed
    assert (idle.state, idle.opened, idle.availability) == (BreakerState.CLOSED, 0, 1.0)
    assert idle.since == observed

    # The stream is no longer watched: nothing more is counted.
    await team.run()
    assert monitor.snapshot().nodes["search"].calls == 12


async def test_slow_calls_gates_and_loop_limits_async(
    clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    durations = iter([0.1] * 10 + [0.5, 0.5])
    confidences = iter([0.9, 0.2, 0.9])

    async def analyst(state: dict[str, Any]) -> dict[str, Any]:
        clock.advance(next(durations))
        return {"analysis": {"content": "tides", "confidence": next(confidences, 0.9)}}

    builder = StateGraph(GateState)
    # guard times attempts on its breaker's clock: the fake one here
    analyst_breaker = CircuitBreaker("analyst-model", clock=clock, store=store)
    builder.add_node("analyst", guard(analyst, breaker=analyst_breaker))
    builder.add_node(
        "gate",
        verification_gate(
            field="analysis", min_confidence=0.75, on_pass="writer", on_fail="review"
        ),
    )
    builder.add_node("writer", lambda state: {"report": "done"})
    builder.add_node("review", lambda state: {"report": "held"})
    builder.add_edge(START, "analyst")
    builder.add_edge("analyst", "gate")
    graph = builder.compile()

    loops = StateGraph(GateState)
    loops.add_node("supervisor", guard(lambda state: {}))
    loops.add_node("worker", guard(lambda state: {}))
    loops.add_edge(START, "supervisor")
    loops.add_conditional_edges(
        "supervisor",
        loop_guard(lambda state: "worker", policy=LoopPolicy(max_visits_per_node=2)),
    )
    loops.add_edge("worker", "supervisor")
    looping = loops.compile()

    async with _started(HealthMonitor(clock=clock, sinks=[])) as monitor:
        reports = []
        for _ in range(12):
            reports.append((await graph.ainvoke({}))["report"])
            clock.advance(1)
        await looping.ainvoke({})

    assert reports.count("held") == 1
    snapshot = monitor.snapshot()
    analyst_health = snapshot.nodes["analyst"]
    assert analyst_health.calls == 12
    assert analyst_health.baseline == pytest.approx(0.1)
    assert analyst_health.slow_calls == 2
    assert analyst_health.p95 == 0.5  # 2 of 12 samples: the top 5% is slow
    assert analyst_health.status == "degraded"
    gate = snapshot.nodes["gate"]
    assert (gate.gate_passes, gate.gate_failures) == (11, 1)
    assert snapshot.nodes["worker"].loop_limits == 1
    assert snapshot.nodes["worker"].calls == 2
    slow_at = 10 * 1.1 + 0.5  # ten 0.1 s calls with a second between runs, then the slow one
    assert rules(monitor.alerts) == [
        (pytest.approx(slow_at), "low", "slow_calls", "analyst"),
        (pytest.approx(slow_at), "medium", "latency", "analyst"),
    ]
    assert "5.0x the baseline 100 ms" in monitor.alerts[0].detail


class GateState(ResilienceState, total=False):
    analysis: dict[str, Any]
    report: str


class _started:
    """``async with`` over a monitor (the monitor is a plain, sync context manager)."""

    def __init__(self, monitor: HealthMonitor) -> None:
        self.monitor = monitor

    async def __aenter__(self) -> HealthMonitor:
        return self.monitor.start()

    async def __aexit__(self, *exc: object) -> None:
        self.monitor.stop()


def test_a_checkpointer_failover_and_failback(clock: FakeClock) -> None:
    primary = FaultySaver(InMemorySaver())
    saver = ResilientSaver(primary, standby="memory://", clock=clock)

    def step(state: dict[str, Any]) -> dict[str, Any]:
        primary.fail()  # the database stops answering in the middle of the run
        return {"done": True}

    builder = StateGraph(dict)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t1"}}
    with HealthMonitor(clock=clock, sinks=[]) as monitor:
        graph.invoke({"done": False}, config, durability="sync")
        assert saver.status().active == "standby"
        name = saver.status().name
        on_standby = monitor.snapshot().savers[name]
        assert (on_standby.active, on_standby.failovers, on_standby.failbacks) == (
            "standby",
            1,
            0,
        )
        assert on_standby.last_error is not None
        primary.heal()
        clock.advance(30)
        graph.get_state(config)  # the breaker lets a trial call through: fail back
    assert saver.status().active == "primary"
    back = monitor.snapshot().savers[name]
    assert (back.active, back.failovers, back.failbacks, back.since) == ("primary", 1, 1, 0.0)
    # the saver's own breaker opened, and the saver failed over: two facts, two alerts
    assert rules(monitor.alerts) == [
        (0.0, "high", "breaker_open", f"checkpointer:{name}"),
        (0.0, "high", "failed_over", name),
    ]
    assert monitor.alerts[1].title == f"checkpointer {name!r} failed over"
    assert monitor.snapshot().breakers[f"checkpointer:{name}"].state is BreakerState.CLOSED


# ---- the monitor itself


def test_a_watched_breaker_is_listed_before_any_event(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    quiet = CircuitBreaker("quiet", clock=clock, store=store)
    broken = CircuitBreaker(
        "broken", BreakerPolicy(failure_threshold=1, recovery_timeout=30), clock=clock, store=store
    )
    with pytest.raises(ZeroDivisionError):
        broken.call(lambda: 1 / 0)  # opened before anyone watched
    got: list[Alert] = []
    monitor = HealthMonitor(clock=clock, sinks=[got.append])  # not even started
    assert monitor.watch(quiet, broken) is monitor
    snapshot = monitor.snapshot()
    assert snapshot.breakers["quiet"].state is BreakerState.CLOSED
    assert snapshot.breakers["broken"].state is BreakerState.OPEN
    assert snapshot.open_breakers == ["broken"]
    assert rules(got) == [(0.0, "high", "breaker_open", "broken")]  # found open: alert now
    with pytest.raises(TypeError, match="CircuitBreaker"):
        monitor.watch("quiet")  # type: ignore[arg-type]


def test_a_snapshot_shows_a_breaker_whose_timeout_has_passed_as_half_open(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker(
        "api", BreakerPolicy(failure_threshold=1, recovery_timeout=30), clock=clock, store=store
    )
    with HealthMonitor(clock=clock, sinks=[]).watch(breaker) as monitor:
        with pytest.raises(ZeroDivisionError):
            breaker.call(lambda: 1 / 0)
        clock.advance(30)  # no call comes: only reading the breaker notices
        snapshot = monitor.snapshot()
    assert snapshot.breakers["api"].state is BreakerState.HALF_OPEN
    assert snapshot.breakers["api"].availability == 0.0  # open the whole 30 s


def test_no_monitor_no_listener(store: InMemoryBreakerStore) -> None:
    monitor = HealthMonitor(sinks=[])
    assert hub.listeners == ()
    assert monitor.start() is monitor
    monitor.start()  # idempotent
    assert hub.listeners == (monitor.record,)
    monitor.stop()
    monitor.stop()
    assert hub.listeners == ()

    builder = StateGraph(dict)
    builder.add_node("n", guard(lambda state: {}, breaker=CircuitBreaker("b", store=store)))
    builder.add_edge(START, "n")
    builder.compile().invoke({})
    assert monitor.snapshot().nodes == {}


def test_reset_forgets_everything_but_the_watched_breakers(
    store: InMemoryBreakerStore, clock: FakeClock
) -> None:
    breaker = CircuitBreaker("api", clock=clock, store=store)
    monitor = HealthMonitor(clock=clock, sinks=[]).watch(breaker)
    monitor.record(NodeSucceeded(node="n", breaker="api", duration=0.1))
    breaker.force_open()  # not started: nothing arrives...
    monitor.record(NodeSucceeded(node="n", breaker="api", duration=0.1))
    assert monitor.snapshot().nodes["n"].calls == 2
    monitor.reset()
    snapshot = monitor.snapshot()
    assert snapshot.nodes == {}
    assert snapshot.breakers["api"].state is BreakerState.OPEN  # ...but re-watching reads it
    assert [a.rule for a in monitor.alerts] == ["breaker_open"]


def test_events_from_many_threads_are_all_counted() -> None:
    monitor = HealthMonitor(policy=AlertPolicy(min_calls=10_000), sinks=[])
    snapshots: list[int] = []

    def reentrant(alert: Alert) -> None:  # a sink may read the monitor: no lock is held
        snapshots.append(len(monitor.snapshot().nodes))

    monitor.add_sink(reentrant)
    threads, per_thread = 8, 500
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            monitor.record(NodeSucceeded(node=f"n{index % 2}", breaker=None, duration=0.01))
            if i == per_thread // 2:
                monitor.record(_fallback(f"n{index % 2}"))

    with monitor:
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    nodes = monitor.snapshot().nodes
    assert nodes["n0"].calls + nodes["n1"].calls == threads * per_thread
    assert nodes["n0"].fallbacks == nodes["n1"].fallbacks == threads // 2
    assert len(monitor.alerts) == 2 == len(snapshots)  # one fallback alert per node


def _fallback(node: str) -> Any:
    from langgraph_resilience.core.events import FallbackTaken

    return FallbackTaken(node=node, target="cache", error="ConnectionError")


def test_construction_is_checked() -> None:
    with pytest.raises(TypeError, match="clock must have a now"):
        HealthMonitor(clock=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sink is a callable"):
        HealthMonitor(sinks=["pager"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="AlertPolicy"):
        HealthMonitor(policy={"window": 5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_alerts"):
        HealthMonitor(max_alerts=0)
    default = HealthMonitor()
    assert [type(s) for s in default.sinks] == [LoggingSink]
    assert default.policy == AlertPolicy()


def test_alerts_are_bounded() -> None:
    monitor = HealthMonitor(clock=FakeClock(), sinks=[], max_alerts=2)
    for node in ("a", "b", "c"):
        monitor.record(_fallback(node))
    assert [a.subject for a in monitor.alerts] == ["b", "c"]


def test_sinks_can_be_added_and_removed() -> None:
    got: list[Alert] = []
    monitor = HealthMonitor(clock=FakeClock(), sinks=[])
    assert monitor.add_sink(got.append) == got.append
    monitor.record(_fallback("a"))
    monitor.remove_sink(got.append)
    monitor.record(_fallback("b"))
    assert [a.subject for a in got] == ["a"]


def test_logging_sink_levels_follow_severity(caplog: pytest.LogCaptureFixture) -> None:
    sink = LoggingSink()
    assert repr(sink) == "LoggingSink('langgraph_resilience.health')"
    caplog.set_level(logging.DEBUG, logger="langgraph_resilience.health")
    for severity in Severity:
        sink(Alert(severity=severity, title="t", detail="d", subject="s", at=1.0, rule="r"))
    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("langgraph_resilience.health", logging.CRITICAL),
        ("langgraph_resilience.health", logging.ERROR),
        ("langgraph_resilience.health", logging.WARNING),
        ("langgraph_resilience.health", logging.INFO),
    ]
    assert caplog.records[1].getMessage() == "HIGH alert: t: d"
    assert caplog.records[1].alert["rule"] == "r"  # type: ignore[attr-defined]
    assert LoggingSink("myapp.alerts").logger.name == "myapp.alerts"
    with pytest.raises(TypeError, match=r"logging\.Logger"):
        LoggingSink(42)  # type: ignore[arg-type]


# ---- output: JSON, text, HTML, timeline, plots


def _small_monitor(store: InMemoryBreakerStore) -> HealthMonitor:
    clock = FakeClock()
    monitor = HealthMonitor(clock=clock, sinks=[])
    api = CircuitBreaker("api", BreakerPolicy(failure_threshold=2), clock=clock, store=store)
    monitor.watch(api)
    with monitor:
        for _ in range(3):
            api.call(clock.advance, 0.25)
            monitor.record(NodeSucceeded(node="search", breaker="api", duration=0.25))
        clock.advance(10)
        for _ in range(2):
            with pytest.raises(ConnectionError):
                api.call(_down)
        clock.advance(5)
    return monitor


def _down() -> None:
    raise ConnectionError("down")


def test_snapshot_json_round_trip(store: InMemoryBreakerStore, tmp_path: Path) -> None:
    monitor = _small_monitor(store)
    snapshot = monitor.snapshot()
    assert HealthSnapshot.from_json(snapshot.to_json()) == snapshot
    assert HealthSnapshot.from_dict(json.loads(snapshot.to_json(indent=None))) == snapshot
    path = monitor.save(tmp_path / "health.json")
    assert path == tmp_path / "health.json"
    saved = HealthSnapshot.from_json(path.read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", saved.saved_at or "")
    assert saved.breakers == snapshot.breakers
    assert saved.alerts == snapshot.alerts
    assert [p.name for p in tmp_path.iterdir()] == ["health.json"]  # no scratch file left


def test_save_gives_the_file_the_usual_mode(store: InMemoryBreakerStore, tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        path = _small_monitor(store).save(tmp_path / "health.json")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a health snapshot is a JSON object"),
        ({"format": "other"}, "not a health snapshot: 'format' is 'other'"),
        ({"format": "langgraph-resilience/health", "version": 9}, "version 9 is not supported"),
        (
            {"format": "langgraph-resilience/health", "version": 1, "taken_at": "now"},
            "snapshot.taken_at must be a number",
        ),
        (
            {"format": "langgraph-resilience/health", "version": 1, "taken_at": 1, "nodes": []},
            "snapshot.nodes must be a JSON object",
        ),
        (
            {
                "format": "langgraph-resilience/health",
                "version": 1,
                "taken_at": 1,
                "nodes": {"n": {"name": "n"}},
            },
            r"nodes\['n'\] is missing 'breaker'",
        ),
        (
            {"format": "langgraph-resilience/health", "version": 1, "taken_at": 1, "alerts": [{}]},
            r"alerts\[0\] is missing 'severity'",
        ),
    ],
)
def test_reading_a_bad_snapshot_says_what_is_wrong(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HealthSnapshot.from_dict(data)


def test_reading_bad_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="must be JSON"):
        HealthSnapshot.from_json("{not json")


SMALL_TABLE = """\
health at t=15.75s: 1 node (1 failing), 1 breaker (1 not closed), 1 alert
nodes

 node    status   calls    ok  fail  rej  err/min    p50    p95  base  slow  fb  dlq
 ───────────────────────────────────────────────────────────────────────────────────
 search  failing      3  100%     0    0      0.0  250ms  250ms     -     0   0    0

breakers

 breaker  state   for  opened  avail   MTTF  MTTR  rejected  reason
 ──────────────────────────────────────────────────────────────────────────────────
 api      open   5.0s       1  68.3%  10.8s     -         0  2 consecutive failures

alerts

 at     severity  alert
 ──────────────────────────────────────────────────────────────────────────────────────────────────
 10.75  high      breaker 'api' opened: 2 consecutive failures; calls are rejected while it is open

"""


def test_the_table_is_plain_stable_text(store: InMemoryBreakerStore) -> None:
    text = _small_monitor(store).table()
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text == SMALL_TABLE
    assert _small_monitor(InMemoryBreakerStore()).table(width=60).count("\n") > text.count("\n")


def test_html_for_notebooks(store: InMemoryBreakerStore) -> None:
    monitor = _small_monitor(store)
    monitor.record(NodeSucceeded(node="<b>x</b>", breaker=None, duration=0.1))
    html = monitor._repr_html_()
    assert html.startswith("<div>")
    assert html.endswith("</div>")
    assert "<caption style='text-align:left'>breakers</caption>" in html
    assert '<b style="color:#cf222e">open</b>' in html  # the open breaker, in red
    assert '<b style="color:#cf222e">failing</b>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in html
    assert monitor.snapshot()._repr_html_() == html


def test_reprs(store: InMemoryBreakerStore) -> None:
    monitor = _small_monitor(store)
    assert repr(monitor) == "<HealthMonitor stopped: 1 nodes, 1 breakers, 0 savers, 1 alerts>"
    assert repr(monitor.snapshot()).startswith("<HealthSnapshot health at t=15.75s: 1 node")


def test_timeline_for_plotting(store: InMemoryBreakerStore) -> None:
    timeline = _small_monitor(store).timeline()
    assert isinstance(timeline, Timeline)
    assert timeline.bands() == {
        "api": [(0.0, 10.75, BreakerState.CLOSED), (10.75, 15.75, BreakerState.OPEN)]
    }
    assert [c.duration for c in timeline.calls] == [0.25, 0.25, 0.25]


@pytest.fixture
def matplotlib_agg() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def test_plot_timeline_draws_bands_and_points(
    matplotlib_agg: Any, store: InMemoryBreakerStore
) -> None:
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from langgraph_resilience.notebook import STATE_COLOURS, plot_timeline

    clock = FakeClock()
    api = CircuitBreaker(
        "api",
        BreakerPolicy(failure_threshold=1, recovery_timeout=30, success_threshold=1),
        clock=clock,
        store=store,
    )
    with HealthMonitor(clock=clock, sinks=[]).watch(api) as monitor:
        for duration in (0.2, 0.3):
            clock.advance(1)
            monitor.record(NodeSucceeded(node="search", breaker="api", duration=duration))
        with pytest.raises(ZeroDivisionError):
            api.call(lambda: 1 / 0)
        monitor.record(_failed("search", 0.4))
        monitor.record(_failed("search", None, "CircuitOpenError"))
        clock.advance(30)
        assert api.state is BreakerState.HALF_OPEN
        clock.advance(1)
        api.call(lambda: None)  # a good trial closes it
        clock.advance(5)

    fig = plot_timeline(monitor)
    assert isinstance(fig, Figure)
    bands_ax, calls_ax = fig.axes
    bars = bands_ax.collections
    colours = [to_hex(bar.get_facecolor()[0]) for bar in bars]
    assert colours == [
        STATE_COLOURS[BreakerState.CLOSED],
        STATE_COLOURS[BreakerState.OPEN],
        STATE_COLOURS[BreakerState.HALF_OPEN],
        STATE_COLOURS[BreakerState.CLOSED],
    ]
    assert [t.get_text() for t in bands_ax.get_yticklabels()] == ["api"]
    points = {c.get_label(): len(c.get_offsets()) for c in calls_ax.collections}
    assert points == {"search": 2, "search failed": 1, "rejected": 1}
    assert calls_ax.get_xlabel() == "time (s)"
    fig.savefig(io.BytesIO(), format="png")  # renders under Agg

    assert isinstance(monitor.plot(), Figure)
    assert plot_timeline(monitor.timeline()).axes[0].get_title(loc="left") == "breakers"

    one = Figure()
    ax = one.add_subplot()
    assert plot_timeline(monitor, ax=ax) is one
    assert len(one.axes) == 2  # the latencies on a twin y-axis

    pair = Figure()
    axes = pair.subplots(1, 2)
    assert plot_timeline(monitor, ax=list(axes)) is pair
    with pytest.raises(ValueError, match="pair"):
        plot_timeline(monitor, ax=[ax])

    import numpy as np

    stacked = Figure()
    assert plot_timeline(monitor, ax=stacked.subplots(2)) is stacked  # a numpy array
    with pytest.raises(ValueError, match="pair"):
        plot_timeline(monitor, ax=np.array(Figure().subplots(1, 3)))
    with pytest.raises(ValueError, match="pair"):
        plot_timeline(monitor, ax=[ax, "not axes"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="HealthMonitor or a Timeline"):
        plot_timeline("monitor")  # type: ignore[arg-type]


def test_plot_timeline_of_nothing(matplotlib_agg: Any) -> None:
    from langgraph_resilience.notebook import plot_timeline

    fig = plot_timeline(HealthMonitor(clock=FakeClock(), sinks=[]))
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["no breakers seen", "no guarded calls yet"]


def test_plot_timeline_without_matplotlib_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # None in sys.modules makes `import matplotlib...` raise ImportError, as if not installed
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'langgraph-resilience\[notebook\]'"):
        notebook_module.plot_timeline(HealthMonitor(sinks=[]))


def _failed(node: str, duration: float | None, error: str = "ConnectionError") -> Any:
    from langgraph_resilience.core.events import NodeFailed

    return NodeFailed(node=node, breaker="api", duration=duration, error=error)


# ---- docs


@pytest.mark.parametrize("module", [health_module, notebook_module], ids=lambda m: m.__name__)
def test_module_examples_run(module: Any, matplotlib_agg: Any) -> None:
    blocks = re.findall(r"```python\n(.*?)```", module.__doc__, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(textwrap.dedent(block), module.__name__, "exec"), {"__name__": "doc"})


def test_the_table_never_cuts_names_or_numbers() -> None:
    monitor = HealthMonitor(clock=FakeClock(), sinks=[])
    names = ["researcher", "cached_research", "analyst", "gate", "writer", "supervisor"]
    for name in names:
        monitor.record(NodeSucceeded(node=name, breaker=None, duration=0.123))
    monitor.record(_verdict("gate"))  # adds the gate and loop columns
    long_name = "a-breaker-with-a-rather-long-name-" * 2
    monitor.record(_failed("researcher", 0.5))
    from langgraph_resilience.core.events import BreakerOpened

    monitor.record(
        BreakerOpened(
            breaker=long_name,
            at=0.0,
            old=BreakerState.CLOSED,
            new=BreakerState.OPEN,
            reason="3 consecutive failures",
            retry_after=60,
        )
    )
    text = monitor.table()
    assert "…" not in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    for name in names:
        assert rows[name][2] in ("1", "2")  # calls, whole
        assert "123ms" in rows[name]
    assert rows["gate"][-2:] == ["1/0", "0"]
    assert rows[long_name][1] == "open"
    # text columns wrap instead: every word of the alert is there
    alert_section = " ".join(text[text.index("\nalerts\n") :].split())
    last = monitor.alerts[-1]
    assert f"high {last.title}: {last.detail}" in alert_section


def _verdict(node: str) -> Any:
    from langgraph_resilience.core.events import GateVerdict

    return GateVerdict(node=node, passed=True, score=1.0, reasons=(), rounds=0, route="next")
