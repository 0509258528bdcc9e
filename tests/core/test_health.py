"""The pure health statistics and alert rules, driven with explicit times."""

from __future__ import annotations

import doctest
import math
from dataclasses import dataclass
from datetime import timedelta

import pytest

from langgraph_resilience.core import health
from langgraph_resilience.core.events import (
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerState,
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
from langgraph_resilience.core.health import (
    Alert,
    AlertPolicy,
    BreakerHealth,
    HealthStats,
    NodeHealth,
    SaverHealth,
    Severity,
    percentile,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def ok(node: str = "search", duration: float = 0.1, breaker: str | None = None) -> NodeSucceeded:
    return NodeSucceeded(node=node, breaker=breaker, duration=duration)


def fail(
    node: str = "search",
    duration: float | None = 0.1,
    error: str = "ConnectionError",
    breaker: str | None = None,
) -> NodeFailed:
    return NodeFailed(node=node, breaker=breaker, duration=duration, error=error)


def rejected(node: str = "search", breaker: str = "api") -> NodeFailed:
    return NodeFailed(node=node, breaker=breaker, duration=None, error="CircuitOpenError")


def opened(name: str, old: BreakerState = CLOSED, reason: str = "3 consecutive failures"):
    return BreakerOpened(breaker=name, at=0.0, old=old, new=OPEN, reason=reason, retry_after=60)


def half_opened(name: str) -> BreakerHalfOpened:
    return BreakerHalfOpened(breaker=name, at=0.0, old=OPEN, new=HALF_OPEN, reason="timeout")


def closed(name: str) -> BreakerClosed:
    return BreakerClosed(breaker=name, at=0.0, old=HALF_OPEN, new=CLOSED, reason="2 trials ok")


def rules(alerts: tuple[Alert, ...] | list[Alert]) -> list[tuple[Severity, str]]:
    return [(alert.severity, alert.rule) for alert in alerts]


def feed(stats: HealthStats, events: list[tuple[float, object]]) -> list[Alert]:
    out: list[Alert] = []
    for at, event in events:
        out.extend(stats.record(event, at))
    return out


def test_the_module_doctests_pass() -> None:
    assert doctest.testmod(health, optionflags=doctest.ELLIPSIS).failed == 0


# ---- the policy


def test_policy_defaults_follow_the_seed() -> None:
    policy = AlertPolicy()
    assert policy.critical_open_breakers == 2
    assert policy.slow_multiple == 3.0
    assert policy.window_seconds == 60.0
    assert AlertPolicy(window=timedelta(minutes=5)).window_seconds == 300.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("critical_open_breakers", 0),
        ("critical_open_breakers", True),
        ("slow_multiple", 1.0),
        ("slow_multiple", math.inf),
        ("slow_multiple", "3"),
        ("min_success_rate", 1.5),
        ("min_success_rate", -0.1),
        ("window", 0),
        ("window", -5),
        ("min_calls", 0),
        ("rising_errors", 0),
    ],
)
def test_policy_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        AlertPolicy(**{field: value})  # type: ignore[arg-type]


def test_policy_is_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        AlertPolicy(2)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        AlertPolicy().window = 5  # type: ignore[misc]


def test_stats_validate_their_sizes() -> None:
    with pytest.raises(ValueError, match="latency_sample"):
        HealthStats(latency_sample=0)
    with pytest.raises(ValueError, match="timeline_size"):
        HealthStats(timeline_size=-1)
    with pytest.raises(TypeError, match="AlertPolicy"):
        HealthStats(policy={"window": 5})  # type: ignore[arg-type]


# ---- node statistics


def test_node_counts_rates_and_latency() -> None:
    stats = HealthStats(AlertPolicy(min_calls=100))  # no alerts in the way
    feed(
        stats,
        [
            (1.0, ok(duration=0.1, breaker="api")),
            (2.0, ok(duration=0.4)),
            (3.0, ok(duration=0.2)),
            (4.0, fail(duration=0.5, error="TimeoutError")),
            (5.0, rejected()),
        ],
    )
    node = stats.nodes(now=5.0)["search"]
    assert (node.calls, node.successes, node.failures, node.rejected) == (5, 3, 1, 1)
    assert node.success_rate == 3 / 5
    assert node.recent_calls == 5
    assert node.recent_success_rate == 3 / 5
    assert node.breaker == "api"  # remembered from a guarded call
    assert node.error_rate == 1.0  # one failure in the last 60 s: one per minute
    # successful attempts only, nearest rank: [0.1, 0.2, 0.4]
    assert (node.p50, node.p95) == (0.2, 0.4)
    assert node.last_error == "TimeoutError"
    assert node.baseline is None  # not before min_calls successful attempts


def test_error_rate_and_recent_rate_cover_only_the_window() -> None:
    stats = HealthStats(AlertPolicy(window=30, min_calls=100))
    feed(stats, [(0.0, fail()), (1.0, fail()), (40.0, fail()), (41.0, ok())])
    node = stats.nodes(now=45.0)["search"]
    assert node.error_rate == 2.0  # 1 failure in the last 30 s, per minute
    assert node.recent_calls == 2
    assert node.recent_success_rate == 0.5
    later = stats.nodes(now=500.0)["search"]
    assert later.error_rate == 0.0
    assert later.recent_calls == 0
    assert later.recent_success_rate is None
    assert later.success_rate == 0.25  # since the start


def test_latency_sample_is_bounded() -> None:
    stats = HealthStats(AlertPolicy(min_calls=100), latency_sample=3)
    for i, duration in enumerate([9.0, 9.0, 1.0, 2.0, 3.0]):
        stats.record(ok(duration=duration), float(i))
    node = stats.nodes(now=5.0)["search"]
    assert (node.p50, node.p95) == (2.0, 3.0)  # the two 9 s calls have left the sample


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0], 0.95) == 1.0
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0


def test_baseline_is_the_median_of_the_first_calls_then_a_moving_average() -> None:
    stats = HealthStats(AlertPolicy(min_calls=3))
    feed(stats, [(1.0, ok(duration=0.1)), (2.0, ok(duration=5.0)), (3.0, ok(duration=0.3))])
    assert stats.nodes(now=3.0)["search"].baseline == 0.3  # median: the cold start is ignored
    stats.record(ok(duration=0.5), 4.0)  # normal (< 3x): moves the baseline by a tenth
    assert stats.nodes(now=4.0)["search"].baseline == pytest.approx(0.32)
    stats.record(ok(duration=2.0), 5.0)  # slow: counted, but does not move the baseline
    node = stats.nodes(now=5.0)["search"]
    assert node.baseline == pytest.approx(0.32)
    assert node.slow_calls == 1


def test_failed_attempts_can_be_slow_but_do_not_move_the_baseline() -> None:
    stats = HealthStats(AlertPolicy(min_calls=2))
    feed(stats, [(1.0, ok(duration=1.0)), (2.0, ok(duration=1.0))])
    stats.record(fail(duration=30.0, error="AttemptTimeoutError"), 3.0)
    node = stats.nodes(now=3.0)["search"]
    assert node.slow_calls == 1
    assert node.baseline == 1.0
    assert node.p95 == 1.0  # latency percentiles are of successful attempts


def test_a_zero_baseline_judges_nothing_slow() -> None:
    # calls faster than the clock's resolution (a FakeClock nobody advances)
    stats = HealthStats(AlertPolicy(min_calls=2))
    feed(stats, [(0.0, ok(duration=0.0)), (0.0, ok(duration=0.0))])
    assert stats.record(ok(duration=0.001), 0.0) == ()
    assert stats.nodes(now=0.0)["search"].slow_calls == 0


def verdict(*, passed: bool) -> GateVerdict:
    return GateVerdict(
        node="gate", passed=passed, score=0.9 if passed else 0.1, reasons=(), rounds=0, route="w"
    )


def test_routes_gates_and_loops_are_counted_on_their_node() -> None:
    stats = HealthStats()
    feed(
        stats,
        [
            (1.0, FallbackTaken(node="search", target="cache", error="ConnectionError")),
            (2.0, DeadLettered(node="search", letter="L1", error_code="CONNECTION")),
            (3.0, verdict(passed=True)),
            (4.0, verdict(passed=False)),
            (5.0, LoopLimitReached(node="worker", limit="max_visits", count=3, maximum=3,
                                   routed_to=None)),
        ],
    )  # fmt: skip
    nodes = stats.nodes(now=5.0)
    assert (nodes["search"].fallbacks, nodes["search"].dead_letters) == (1, 1)
    assert (nodes["gate"].gate_passes, nodes["gate"].gate_failures) == (1, 1)
    assert nodes["worker"].loop_limits == 1
    assert nodes["gate"].calls == 0
    assert nodes["gate"].success_rate is None


def test_unknown_events_are_ignored_and_subclasses_are_understood() -> None:
    stats = HealthStats()
    assert stats.record("not an event", 1.0) == ()
    assert stats.record(object(), 1.0) == ()

    @dataclass(frozen=True, slots=True, kw_only=True)
    class TimedSuccess(NodeSucceeded):
        attempt: int = 1

    stats.record(TimedSuccess(node="n", breaker=None, duration=0.5), 2.0)
    stats.record(TimedSuccess(node="n", breaker=None, duration=0.5), 3.0)
    assert stats.nodes(now=3.0)["n"].successes == 2
    assert stats.counts() == (1, 0, 0)


# ---- node status


def test_node_status_follows_the_worst_condition() -> None:
    policy = AlertPolicy(min_calls=2, window=10, rising_errors=2, min_success_rate=0.5)
    stats = HealthStats(policy)
    feed(stats, [(i / 100, ok(duration=1.0)) for i in range(40)])  # p95 stays normal
    assert stats.nodes(now=1.0)["search"].status == "healthy"
    stats.record(ok(duration=4.0), 2.0)  # a slow call: an early warning
    assert stats.nodes(now=2.0)["search"].status == "warning"
    assert stats.nodes(now=20.0)["search"].status == "healthy"  # a window later
    stats.record(FallbackTaken(node="search", target="cache", error="E"), 21.0)
    assert stats.nodes(now=21.0)["search"].status == "degraded"
    stats.record(fail(breaker="api"), 40.0)
    stats.record(opened("api"), 40.0)
    assert stats.nodes(now=40.0)["search"].status == "failing"  # its breaker is open
    stats.record(half_opened("api"), 100.0)
    assert stats.nodes(now=100.0)["search"].status == "failing"  # not closed yet
    stats.record(closed("api"), 101.0)
    assert stats.nodes(now=200.0)["search"].status == "healthy"


# ---- alert rules


def test_success_rate_alert_fires_when_the_rate_drops_and_again_after_it_recovers() -> None:
    stats = HealthStats(AlertPolicy(min_calls=4, min_success_rate=0.75, rising_errors=99))
    assert feed(stats, [(0.0, ok()), (1.0, ok()), (2.0, ok()), (3.0, ok())]) == []
    first = feed(stats, [(4.0, fail()), (5.0, fail())])  # 4 of 6: 67%
    assert rules(first) == [(Severity.MEDIUM, "success_rate")]
    assert first[0].title == "search: success rate 67%"
    assert first[0].detail == "4 of 6 calls in the last 60 s succeeded (degraded below 75%)"
    assert first[0].subject == "search"
    assert first[0].at == 5.0
    assert feed(stats, [(6.0, fail()), (7.0, fail()), (8.0, rejected())]) == []  # no flood
    # the window moves on: only good calls are recent, the condition clears ...
    assert feed(stats, [(100.0, ok()), (101.0, ok()), (102.0, ok()), (103.0, ok())]) == []
    # ... and a new drop is a new alert
    again = feed(stats, [(104.0, fail()), (105.0, fail())])
    assert rules(again) == [(Severity.MEDIUM, "success_rate")]


def test_success_rate_is_not_judged_before_min_calls() -> None:
    stats = HealthStats(AlertPolicy(min_calls=5, rising_errors=10))
    assert feed(stats, [(float(i), fail()) for i in range(4)]) == []
    assert rules(stats.record(fail(), 4.0)) == [(Severity.MEDIUM, "success_rate")]


def test_rejected_calls_count_against_the_success_rate() -> None:
    stats = HealthStats(AlertPolicy(min_calls=2, min_success_rate=0.9))
    stats.record(ok(), 0.0)
    assert rules(stats.record(rejected(), 1.0)) == [(Severity.MEDIUM, "success_rate")]


def test_slow_call_alert_fires_once_per_slow_spell() -> None:
    stats = HealthStats(AlertPolicy(min_calls=3, window=60))
    feed(stats, [(i / 100, ok(duration=0.1)) for i in range(100)])  # p95 stays at 0.1
    assert stats.record(ok(duration=0.3), 3.0) == ()  # exactly 3x is not slow
    first = stats.record(ok(duration=0.5), 4.0)
    assert rules(first) == [(Severity.LOW, "slow_calls")]
    assert "4.2x the baseline 120 ms" in first[0].detail  # the 0.3 s call moved it
    assert stats.record(ok(duration=0.5), 30.0) == ()  # same spell: within a window
    assert rules(stats.record(ok(duration=0.5), 200.0)) == [(Severity.LOW, "slow_calls")]
    assert stats.nodes(now=200.0)["search"].slow_calls == 3


def test_p95_above_the_slow_multiple_is_a_degradation() -> None:
    stats = HealthStats(AlertPolicy(min_calls=5, window=60))
    feed(stats, [(float(i), ok(duration=0.1)) for i in range(19)])
    alerts = stats.record(ok(duration=1.0), 19.0)  # 1 of 20 slow: p95 still 0.1
    assert rules(alerts) == [(Severity.LOW, "slow_calls")]
    alerts = stats.record(ok(duration=1.0), 20.0)  # 2 of 21: p95 = 1.0 > 0.3
    assert rules(alerts) == [(Severity.MEDIUM, "latency")]
    assert alerts[0].title == "search: p95 latency 1 s"
    assert feed(stats, [(21.0, ok(duration=1.0)), (22.0, ok(duration=1.0))]) == []
    # normal calls push the slow ones out of the top 5%: the condition clears ...
    feed(stats, [(30.0 + i, ok(duration=0.1)) for i in range(80)])
    assert stats.nodes(now=110.0)["search"].p95 == pytest.approx(0.1)
    assert stats.nodes(now=110.0)["search"].status == "healthy"
    # ... and comes back with the next slow spell
    again = feed(stats, [(200.0 + i, ok(duration=2.0)) for i in range(6)])
    assert rules(again) == [(Severity.LOW, "slow_calls"), (Severity.MEDIUM, "latency")]


def test_errors_rising_is_an_early_warning() -> None:
    stats = HealthStats(AlertPolicy(rising_errors=3, window=60, min_calls=1000))
    assert feed(stats, [(0.0, fail()), (10.0, fail())]) == []
    alerts = stats.record(fail(), 20.0)
    assert rules(alerts) == [(Severity.LOW, "errors_rising")]
    assert alerts[0].detail.startswith("3 failures in the last 60 s, 0 in the 60 s before")
    assert feed(stats, [(30.0, fail()), (40.0, fail())]) == []  # still rising: no repeat
    assert stats.nodes(now=40.0)["search"].status == "warning"
    # a minute later there were fewer failures than the minute before: not rising
    assert stats.nodes(now=150.0)["search"].status == "healthy"
    # quiet for long enough, then a new burst
    assert rules(feed(stats, [(500.0, fail()), (501.0, fail()), (502.0, fail())])) == [
        (Severity.LOW, "errors_rising")
    ]


def test_rejections_are_not_rising_errors() -> None:
    stats = HealthStats(AlertPolicy(rising_errors=2, min_calls=1000))
    assert feed(stats, [(float(i), rejected()) for i in range(10)]) == []
    assert stats.nodes(now=10.0)["search"].error_rate == 0.0


def test_fallbacks_and_dead_letters_alert_once_per_window() -> None:
    stats = HealthStats(AlertPolicy(window=60))
    taken = FallbackTaken(node="search", target="cache", error="ConnectionError")
    letter = DeadLettered(node="search", letter="L1", error_code="CONNECTION")
    first = stats.record(taken, 0.0)
    assert rules(first) == [(Severity.MEDIUM, "fallback")]
    assert first[0].title == "'search' fell back to 'cache'"
    assert rules(stats.record(letter, 1.0)) == [(Severity.MEDIUM, "dead_letter")]
    assert feed(stats, [(30.0, taken), (59.0, taken), (60.0, letter)]) == []
    assert feed(stats, [(100.0, taken)]) == []  # 41 s after the previous one
    assert rules(feed(stats, [(200.0, taken), (200.0, letter)])) == [
        (Severity.MEDIUM, "fallback"),
        (Severity.MEDIUM, "dead_letter"),
    ]
    assert stats.nodes(now=200.0)["search"].fallbacks == 5


def test_a_breaker_opening_is_high_once_per_outage() -> None:
    stats = HealthStats()
    alerts = stats.record(opened("api"), 10.0)
    assert rules(alerts) == [(Severity.HIGH, "breaker_open")]
    assert alerts[0].title == "breaker 'api' opened"
    assert alerts[0].detail.startswith("3 consecutive failures")
    assert stats.record(CallRejected(breaker="api", at=0, state=OPEN, retry_after=5), 11.0) == ()
    assert stats.record(half_opened("api"), 70.0) == ()
    assert stats.record(opened("api", old=HALF_OPEN, reason="trial failed"), 71.0) == ()
    assert stats.record(half_opened("api"), 131.0) == ()
    assert stats.record(closed("api"), 132.0) == ()
    assert rules(stats.record(opened("api"), 500.0)) == [(Severity.HIGH, "breaker_open")]


def test_several_open_breakers_are_critical_once() -> None:
    stats = HealthStats(AlertPolicy(critical_open_breakers=2))
    assert rules(stats.record(opened("a"), 1.0)) == [(Severity.HIGH, "breaker_open")]
    alerts = stats.record(opened("b"), 2.0)
    assert rules(alerts) == [(Severity.HIGH, "breaker_open"), (Severity.CRITICAL, "breakers_open")]
    assert alerts[1].title == "2 breakers open"
    assert alerts[1].subject == "system"
    assert "'a', 'b'" in alerts[1].detail
    assert rules(stats.record(opened("c"), 3.0)) == [(Severity.HIGH, "breaker_open")]
    # a half-open breaker is still down: no new CRITICAL when it re-opens
    assert stats.record(half_opened("a"), 60.0) == ()
    assert stats.record(opened("a", old=HALF_OPEN), 61.0) == ()
    stats.record(closed("b"), 100.0)
    stats.record(closed("c"), 100.0)  # one left open: the condition clears
    assert rules(stats.record(opened("b"), 200.0)) == [
        (Severity.HIGH, "breaker_open"),
        (Severity.CRITICAL, "breakers_open"),
    ]


def test_a_checkpointer_failover_is_high_until_it_fails_back() -> None:
    stats = HealthStats()
    over = SaverFailedOver(saver="db", at=0.0, operation="put", error="OperationalError: gone")
    alerts = stats.record(over, 5.0)
    assert rules(alerts) == [(Severity.HIGH, "failed_over")]
    assert alerts[0].title == "checkpointer 'db' failed over"
    assert stats.record(over, 6.0) == ()
    stats.record(MirrorFailed(saver="db", at=0, operation="put", thread_id="t", error="E: x"), 7.0)
    stats.record(SaverFailedBack(saver="db", at=0.0, threads=1, checkpoints=2, writes=0), 35.0)
    saver = stats.savers(now=40.0)["db"]
    assert saver == SaverHealth(
        name="db",
        active="primary",
        since=5.0,
        failovers=2,
        failbacks=1,
        mirror_failures=1,
        last_error="E: x",
    )
    assert rules(stats.record(over, 50.0)) == [(Severity.HIGH, "failed_over")]
    assert stats.savers(now=60.0)["db"].active == "standby"


# ---- breaker statistics


def test_breaker_times_availability_mttf_and_mttr() -> None:
    stats = HealthStats()
    assert stats.watch("api", CLOSED, 0.0) == ()
    feed(
        stats,
        [
            (1.0, ok(breaker="api")),
            (2.0, fail(breaker="api")),
            (3.0, rejected(breaker="api")),
            (100.0, opened("api")),  # closed 100 s
            (101.0, CallRejected(breaker="api", at=0, state=OPEN, retry_after=59)),
            (160.0, half_opened("api")),  # open 60 s
            (161.0, opened("api", old=HALF_OPEN)),  # half-open 1 s
            (221.0, half_opened("api")),  # open 60 s
            (225.0, closed("api")),  # outage: 125 s; half-open 4 s
            (325.0, opened("api")),  # closed 100 s
        ],
    )
    b = stats.breakers(now=400.0)["api"]  # open for the last 75 s
    assert b.state is OPEN
    assert b.since == 75.0
    assert b.opened == 3
    assert b.availability == pytest.approx(1 - (60 + 60 + 75) / 400)
    assert b.mttf == 100.0
    assert b.mttr == 125.0
    assert b.rejected == 1
    assert (b.calls, b.successes, b.failures) == (3, 1, 1)  # from the guarded node
    assert b.reason == "3 consecutive failures"


def test_a_breaker_first_seen_mid_outage_has_no_invented_history() -> None:
    stats = HealthStats()
    stats.record(half_opened("api"), 50.0)  # never saw it open
    stats.record(closed("api"), 51.0)
    b = stats.breakers(now=51.0)["api"]
    assert b.state is CLOSED
    assert (b.mttf, b.mttr) == (None, None)
    assert b.opened == 0


def test_watching_an_open_breaker_raises_its_alert_at_once() -> None:
    stats = HealthStats(AlertPolicy(critical_open_breakers=2))
    alerts = stats.watch("api", OPEN, 5.0)
    assert rules(alerts) == [(Severity.HIGH, "breaker_open")]
    assert alerts[0].detail.startswith("it was open when the monitor began")
    assert rules(stats.watch("db", HALF_OPEN, 6.0)) == [(Severity.CRITICAL, "breakers_open")]
    assert stats.watch("api", CLOSED, 7.0) == ()  # known already: a no-op
    assert stats.breakers(now=7.0)["api"].state is OPEN
    assert stats.breakers(now=5.0)["api"].availability == 0.0  # open for all of no time


def test_availability_of_a_breaker_never_open() -> None:
    stats = HealthStats()
    stats.watch("api", CLOSED, 0.0)
    assert stats.breakers(now=0.0)["api"].availability == 1.0
    assert stats.breakers(now=100.0)["api"].availability == 1.0


# ---- timeline


def test_timeline_holds_state_changes_and_attempts() -> None:
    stats = HealthStats()
    stats.watch("api", CLOSED, 0.0)
    feed(
        stats,
        [
            (1.0, ok(breaker="api", duration=0.2)),
            (2.0, fail(breaker="api", duration=0.3)),
            (10.0, opened("api")),
            (11.0, rejected(breaker="api")),
            (70.0, half_opened("api")),
            (71.0, closed("api")),
        ],
    )
    timeline = stats.timeline(now=100.0)
    assert (timeline.start, timeline.end) == (0.0, 100.0)
    assert timeline.breakers() == ["api"]
    assert timeline.nodes() == ["search"]
    assert [(c.at, c.duration, c.error, c.ok) for c in timeline.calls] == [
        (1.0, 0.2, None, True),
        (2.0, 0.3, "ConnectionError", False),
        (11.0, None, "CircuitOpenError", False),
    ]
    assert timeline.bands() == {
        "api": [
            (0.0, 10.0, CLOSED),
            (10.0, 70.0, OPEN),
            (70.0, 71.0, HALF_OPEN),
            (71.0, 100.0, CLOSED),
        ]
    }
    data = timeline.to_dict()
    assert data["changes"][1] == {"breaker": "api", "at": 10.0, "state": "open"}
    assert data["calls"][2] == {
        "node": "search",
        "at": 11.0,
        "duration": None,
        "error": "CircuitOpenError",
    }


def test_timeline_is_bounded_and_can_be_turned_off() -> None:
    stats = HealthStats(timeline_size=2)
    feed(stats, [(float(i), ok(duration=float(i))) for i in range(5)])
    assert [c.at for c in stats.timeline(now=5.0).calls] == [3.0, 4.0]
    off = HealthStats(timeline_size=0)
    off.record(ok(), 1.0)
    assert off.timeline(now=2.0).calls == ()
    assert off.nodes(now=2.0)["search"].calls == 1


def test_a_breaker_first_seen_through_a_transition_has_a_band_from_then() -> None:
    stats = HealthStats()
    stats.record(opened("api"), 5.0)
    assert stats.timeline(now=8.0).bands() == {"api": [(5.0, 8.0, OPEN)]}


# ---- JSON


def test_values_round_trip_through_dicts() -> None:
    stats = HealthStats(AlertPolicy(min_calls=1))
    stats.watch("api", CLOSED, 0.0)
    alerts = feed(
        stats,
        [(1.0, ok(breaker="api")), (2.0, fail(breaker="api")), (3.0, opened("api"))],
    )
    stats.record(SaverFailedOver(saver="db", at=0, operation="put", error="E: x"), 4.0)
    node = stats.nodes(now=5.0)["search"]
    breaker = stats.breakers(now=5.0)["api"]
    saver = stats.savers(now=5.0)["db"]
    assert NodeHealth.from_dict(node.to_dict()) == node
    assert BreakerHealth.from_dict(breaker.to_dict()) == breaker
    assert breaker.to_dict()["state"] == "open"
    assert SaverHealth.from_dict(saver.to_dict()) == saver
    for alert in alerts:
        assert Alert.from_dict(alert.to_dict()) == alert


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"calls": "3"}, r"node\.calls must be an integer, got '3'"),
        ({"calls": True}, r"node\.calls must be an integer"),
        ({"p50": "fast"}, r"node\.p50 must be a number or null"),
        ({"name": None}, r"node\.name must not be null"),
    ],
)
def test_reading_a_bad_node_names_the_field(change: dict[str, object], message: str) -> None:
    stats = HealthStats()
    stats.record(ok(), 1.0)
    data = stats.nodes(now=1.0)["search"].to_dict() | change
    with pytest.raises(ValueError, match=message):
        NodeHealth.from_dict(data)


def test_reading_bad_values_names_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="is missing 'state'"):
        BreakerHealth.from_dict({"name": "x"})
    stats = HealthStats()
    stats.watch("api", CLOSED, 0.0)
    data = stats.breakers(now=1.0)["api"].to_dict() | {"state": "broken"}
    with pytest.raises(ValueError, match=r"state must be one of closed, open, half_open"):
        BreakerHealth.from_dict(data)
    with pytest.raises(ValueError, match="severity must be one of critical, high, medium, low"):
        Alert.from_dict({"severity": "urgent"})
    with pytest.raises(ValueError, match="must be a JSON object"):
        SaverHealth.from_dict([1, 2])  # type: ignore[arg-type]


def test_reprs_read_well() -> None:
    stats = HealthStats(AlertPolicy(min_calls=1))
    alerts = feed(stats, [(1.0, ok(duration=0.25, breaker="api")), (2.0, opened("api"))])
    assert repr(stats.nodes(now=2.0)["search"]) == (
        "<NodeHealth 'search' failing: 1 calls, 100% ok, p95 250 ms>"
    )
    assert repr(stats.breakers(now=2.0)["api"]) == (
        "<BreakerHealth 'api' open for 0 s: opened 1x, availability 0.0%>"
    )
    assert str(alerts[0]) == (
        "[HIGH] breaker 'api' opened: 3 consecutive failures; calls are rejected while it is open"
    )
    assert repr(alerts[0]) == "Alert(HIGH, \"breaker 'api' opened\", subject='api', at=2)"
    assert str(Severity.LOW) == "low"


def test_a_sample_smaller_than_min_calls_never_judges_p95() -> None:
    stats = HealthStats(AlertPolicy(min_calls=5), latency_sample=3)
    feed(stats, [(float(i), ok(duration=0.1)) for i in range(5)])  # baseline from 5 calls
    alerts = feed(stats, [(10.0 + i, ok(duration=1.0)) for i in range(5)])
    assert rules(alerts) == [(Severity.LOW, "slow_calls")]  # no p95 rule on 3 samples
    assert stats.nodes(now=20.0)["search"].p95 == 1.0


def test_a_full_sample_judges_p95_like_a_sort_would() -> None:
    stats = HealthStats(AlertPolicy(min_calls=5), latency_sample=20)
    feed(stats, [(float(i), ok(duration=0.1)) for i in range(40)])  # full, all normal
    assert stats.record(ok(duration=1.0), 40.0) != ()  # 1 slow of 20: p95 is still 0.1
    assert stats.nodes(now=40.0)["search"].p95 == pytest.approx(0.1)
    alerts = stats.record(ok(duration=1.0), 41.0)  # 2 of 20: the 19th of 20 is slow
    assert rules(alerts) == [(Severity.MEDIUM, "latency")]
    assert stats.nodes(now=41.0)["search"].p95 == 1.0
    # 18 normal calls push out the 18 normal samples older than the slow ones ...
    feed(stats, [(42.0 + i, ok(duration=0.1)) for i in range(18)])
    assert stats.nodes(now=60.0)["search"].status == "degraded"
    # ... the 19th pushes out a slow one: 1 of 20 again, and the rule clears
    stats.record(ok(duration=0.1), 60.0)
    assert stats.nodes(now=61.0)["search"].status == "warning"  # a recent slow call only


# ---- review fixes


def test_a_breaker_first_seen_opening_has_no_zero_mttf() -> None:
    stats = HealthStats()
    stats.record(opened("api"), 10.0)  # never saw its closed period start
    stats.record(half_opened("api"), 70.0)
    stats.record(closed("api"), 71.0)
    stats.record(opened("api"), 171.0)  # a closed period the monitor saw whole: 100 s
    assert stats.breakers(now=171.0)["api"].mttf == 100.0


def test_a_breaker_first_seen_opening_has_no_mttf_sample() -> None:
    stats = HealthStats()
    stats.record(opened("api"), 10.0)
    assert stats.breakers(now=20.0)["api"].mttf is None


def test_an_open_to_open_transition_does_not_count_open_time_twice() -> None:
    stats = HealthStats()
    stats.watch("api", CLOSED, 0.0)
    stats.record(opened("api"), 50.0)
    stats.record(opened("api", old=OPEN), 75.0)  # a repeated report of the same state
    b = stats.breakers(now=100.0)["api"]
    assert b.availability == pytest.approx(0.5)


def test_a_breaker_first_seen_rejecting_is_judged_critical_at_once() -> None:
    stats = HealthStats(AlertPolicy(critical_open_breakers=2))
    assert rules(stats.record(opened("a"), 1.0)) == [(Severity.HIGH, "breaker_open")]
    alerts = stats.record(CallRejected(breaker="b", at=0, state=OPEN, retry_after=30), 2.0)
    assert rules(alerts) == [(Severity.CRITICAL, "breakers_open")]


def test_errors_rising_fires_again_after_a_quiet_spell_with_one_error() -> None:
    stats = HealthStats(AlertPolicy(rising_errors=1, window=60, min_calls=1000))
    assert rules(stats.record(fail(), 0.0)) == [(Severity.LOW, "errors_rising")]
    assert stats.record(fail(), 10.0) == ()  # still rising
    assert rules(stats.record(fail(), 500.0)) == [(Severity.LOW, "errors_rising")]


def test_unknown_event_types_are_cached_as_misses() -> None:
    @dataclass
    class Other:
        pass

    stats = HealthStats()
    assert stats.record(Other(), 1.0) == ()
    assert Other in stats._handlers
    assert stats.record(Other(), 2.0) == ()


def test_reading_non_finite_numbers_is_refused() -> None:
    alert = Alert(severity=Severity.LOW, title="t", detail="d", subject="s", at=1.0).to_dict()
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="finite"):
            Alert.from_dict({**alert, "at": bad})
