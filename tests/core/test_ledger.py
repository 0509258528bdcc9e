"""merge_ledgers (the ledger's reducer) and LedgerView, on their own.

Updates are built with the wrappers' own ``visit()`` so they have exactly the shape the
graph layer writes: ``"update": True`` with ``path``/``steps``/``outcomes``/``depth``.
Route updates are built by ``routes()``/``route()`` in ``loop_guard``'s shape: one
``[route id, node]`` pair per route taken, with ``routes`` as its per-node summary.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from collections import Counter
from collections.abc import Iterable
from functools import reduce
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given
from langgraph.graph import START, StateGraph

from langgraph_resilience import (
    LedgerMissingError,
    LedgerView,
    ResilienceError,
    ResilienceState,
    guard,
    ledger,
)
from langgraph_resilience.core.ledger import (
    Ledger,
    LimitRecord,
    OutcomeStatus,
    VerdictRecord,
    expand_visit,
    merge_ledgers,
    successful_visit,
)
from langgraph_resilience.graph._context import Step, visit

# -- builders -----------------------------------------------------------------------------


def record(
    node: str,
    step: str,
    *,
    status: OutcomeStatus = "success",
    depth: int = 1,
    fallback_used: bool = False,
) -> Ledger:
    """A wrapper's update recording one visit of ``node`` at ``step``."""
    failed = status in ("failed", "skipped")
    return visit(
        Step(node=node, id=step, depth=depth),
        status=status,
        error_code="CONNECTION" if failed else None,
        error="ConnectionError: down" if failed else None,
        fallback_used=fallback_used,
    )


def routes(step: str, counts: dict[str, int]) -> Ledger:
    """A ``loop_guard`` update routing ``counts[node]`` times to each node at ``step``.

    Route ids are ``"<step>><index>"``, numbered across the whole update, as
    ``loop_guard`` writes them, so they are unique as long as ``step`` is.
    """
    pairs = [node for node, count in counts.items() for _ in range(count)]
    return {
        "update": True,
        "routes": {node: count for node, count in counts.items() if count},
        "route_steps": [[f"{step}>{index}", node] for index, node in enumerate(pairs)],
    }


def route(node: str, step: str, count: int = 1) -> Ledger:
    """A ``loop_guard`` update routing ``count`` times to ``node`` at ``step``."""
    return routes(step, {node: count})


def limit(node: str, step: str, *, routed_to: str | None = "fallback") -> LimitRecord:
    return {
        "node": node,
        "limit": "max_visits_per_node",
        "count": 3,
        "maximum": 3,
        "routed_to": routed_to,
        "step": step,
    }


def verdict(step: str, *, passed: bool = True, score: float = 1.0) -> VerdictRecord:
    return {
        "passed": passed,
        "score": score,
        "reasons": [] if passed else ["too vague"],
        "rounds": 0,
        "routed_to": "next",
        "step": step,
    }


def fold(updates: Iterable[Ledger | None], start: Ledger | None = None) -> Ledger:
    """Apply ``updates`` in order, the way LangGraph's channel applies writes."""
    return reduce(merge_ledgers, updates, start or {})


def frozen(value: Any) -> Any:
    """A deep copy, to compare inputs against after a merge."""
    return copy.deepcopy(value)


# -- wrapper updates ------------------------------------------------------------------------


def test_updates_add_visits_path_and_steps() -> None:
    result = fold([record("a", "t1"), record("b", "t2"), record("a", "t3")])

    assert result["visits"] == {"a": 2, "b": 1}
    assert result["path"] == ["a", "b", "a"]
    assert result["steps"] == ["t1", "t2", "t3"]


def test_an_update_on_an_empty_ledger_starts_it() -> None:
    for start in (None, {}):
        result = merge_ledgers(start, record("a", "t1", depth=2))
        assert result == {
            "path": ["a"],
            "steps": ["t1"],
            "visits": {"a": 1},
            "outcomes": {"a": record("a", "t1")["outcomes"]["a"]},
            "depth": 2,
        }


def test_outcomes_are_replaced_per_node_by_the_latest_visit() -> None:
    result = fold(
        [
            record("a", "t1", status="failed"),
            record("b", "t2", status="partial"),
            record("a", "t3", status="success"),
        ]
    )

    assert set(result["outcomes"]) == {"a", "b"}
    assert result["outcomes"]["a"]["status"] == "success"
    assert result["outcomes"]["a"]["step"] == "t3"
    assert result["outcomes"]["b"]["status"] == "partial"


def test_an_update_without_path_keeps_path_and_visits() -> None:
    current = fold([record("a", "t1")])
    skipped: Ledger = {
        "update": True,
        "outcomes": {"b": {**record("b", "t1:b", status="skipped")["outcomes"]["b"]}},
    }

    result = merge_ledgers(current, skipped)

    assert result["path"] == ["a"]
    assert result["visits"] == {"a": 1}
    assert result["outcomes"]["b"]["status"] == "skipped"
    assert result["outcomes"]["a"] == current["outcomes"]["a"]


def test_degraded_is_sticky() -> None:
    degraded = merge_ledgers({}, {"update": True, "degraded": True})
    assert degraded["degraded"] is True

    after = merge_ledgers(degraded, {**record("a", "t1"), "degraded": False})
    assert after["degraded"] is True
    after_whole = merge_ledgers(degraded, {"degraded": False, "path": [], "steps": []})
    assert after_whole["degraded"] is True


def test_degraded_stays_unset_until_an_update_sets_it() -> None:
    result = fold([record("a", "t1"), {**record("b", "t2"), "degraded": False}])
    assert not result.get("degraded", False)
    assert LedgerView.of(result).degraded is False


def test_depth_is_the_deepest_seen() -> None:
    result = fold([record("a", "t1", depth=2), record("b", "t2", depth=1)])
    assert result["depth"] == 2

    assert merge_ledgers(result, record("c", "t3", depth=3))["depth"] == 3
    assert merge_ledgers(result, {"depth": 1})["depth"] == 2


def test_routes_add_up_across_updates() -> None:
    result = fold(
        [
            route("worker", "s1"),
            routes("s2", {"worker": 2, "critic": 1}),
            route("worker", "s3"),
        ]
    )
    assert result["routes"] == {"worker": 4, "critic": 1}
    assert result["route_steps"] == [
        ["s1>0", "worker"],
        ["s2>0", "worker"],
        ["s2>1", "worker"],
        ["s2>2", "critic"],
        ["s3>0", "worker"],
    ]


def test_routes_are_counted_from_route_steps_only() -> None:
    # An update's ``routes`` is informational: one pair is one route, whatever it says.
    result = fold(
        [
            {**route("worker", "s1"), "routes": {"worker": 5, "critic": 2}},
            {"update": True, "routes": {"worker": 3}},
        ]
    )
    assert result["routes"] == {"worker": 1}
    assert result["route_steps"] == [["s1>0", "worker"]]


def test_updates_count_every_route_pair_even_a_repeated_id() -> None:
    # Updates carry only new entries, as visits do: they are never deduplicated.
    result = fold([route("worker", "s1"), route("worker", "s1")])
    assert result["routes"] == {"worker": 2}
    assert len(result["route_steps"]) == 2


def test_a_whole_ledger_adds_only_the_routes_the_current_ledger_has_not_seen() -> None:
    current = fold([route("worker", "s1", 2), route("critic", "s2")])
    # A subgraph started from a copy of ``current`` and routed twice more.
    whole = fold([route("worker", "s3"), route("new", "s4")], current)

    result = merge_ledgers(current, whole)

    assert result["routes"] == {"worker": 3, "critic": 1, "new": 1}
    assert result["route_steps"] == [
        ["s1>0", "worker"],
        ["s1>1", "worker"],
        ["s2>0", "critic"],
        ["s3>0", "worker"],
        ["s4>0", "new"],
    ]
    # A whole ledger's ``routes`` is not trusted either: only unseen pairs count.
    inflated: Ledger = {**whole, "routes": {"worker": 9, "critic": 9}}
    assert merge_ledgers(current, inflated)["routes"] == result["routes"]


def test_merging_the_same_whole_ledger_twice_adds_no_routes() -> None:
    current = fold([route("worker", "s1")])
    whole = fold([route("worker", "s2"), route("critic", "s3")], current)

    once = merge_ledgers(current, whole)
    twice = merge_ledgers(once, whole)

    assert once["routes"] == {"worker": 2, "critic": 1}
    assert twice == once
    # The same ledger merged into itself does not double its routes.
    assert merge_ledgers(whole, frozen(whole)) == whole


def test_sibling_whole_ledgers_routing_to_the_same_node_add_up() -> None:
    current = fold([record("a", "t1"), route("critic", "s0")])
    # Two parallel subgraphs, each started from ``current``, each routing once to worker.
    left = fold([route("worker", "left")], frozen(current))
    right = fold([route("worker", "right")], frozen(current))

    result = fold([left, right], current)

    assert result["routes"] == {"critic": 1, "worker": 2}
    assert sorted(map(tuple, result["route_steps"])) == [
        ("left>0", "worker"),
        ("right>0", "worker"),
        ("s0>0", "critic"),
    ]
    assert fold([right, left], current)["routes"] == result["routes"]
    # Either sibling coming back again changes nothing.
    assert merge_ledgers(result, left) == result
    assert merge_ledgers(result, right) == result


def test_route_steps_in_the_result_are_plain_json_and_inputs_are_untouched() -> None:
    current = fold([record("a", "t1"), route("a", "s0")])
    # Pairs that arrive as tuples (a loosely typed writer) still come out as lists.
    update: Ledger = {
        "update": True,
        "routes": {"b": 2},
        "route_steps": [("s1>0", "b"), ("s1>1", "b")],  # type: ignore[list-item]
    }
    whole = fold([route("c", "s2")], current)
    current_before, update_before, whole_before = frozen(current), frozen(update), frozen(whole)

    result = fold([update, whole], current)

    assert result["route_steps"] == [["s0>0", "a"], ["s1>0", "b"], ["s1>1", "b"], ["s2>0", "c"]]
    for pair in result["route_steps"]:
        assert type(pair) is list
        assert len(pair) == 2
        assert all(type(part) is str for part in pair)
    assert json.loads(json.dumps(result)) == result
    assert current == current_before
    assert update == update_before
    assert whole == whole_before
    # The result's list is its own: changing it leaves every input alone.
    result["route_steps"].clear()
    result["routes"].clear()
    assert current == current_before
    assert update == update_before
    assert whole == whole_before


def test_limits_are_appended_in_order() -> None:
    result = fold(
        [
            {"update": True, "limits": [limit("worker", "s1")]},
            {"update": True, "limits": [limit("critic", "s2"), limit("worker", "s2")]},
        ]
    )
    assert [(r["step"], r["node"]) for r in result["limits"]] == [
        ("s1", "worker"),
        ("s2", "critic"),
        ("s2", "worker"),
    ]


def test_limits_are_deduplicated_by_step_and_node() -> None:
    current = merge_ledgers({}, {"update": True, "limits": [limit("worker", "s1")]})

    again = merge_ledgers(current, {"update": True, "limits": [limit("worker", "s1")]})
    assert again["limits"] == [limit("worker", "s1")]

    # The same step may stop two different nodes, and one node at two steps.
    more = merge_ledgers(
        current, {"update": True, "limits": [limit("critic", "s1"), limit("worker", "s2")]}
    )
    assert [(r["step"], r["node"]) for r in more["limits"]] == [
        ("s1", "worker"),
        ("s1", "critic"),
        ("s2", "worker"),
    ]


def test_verdicts_are_replaced_per_gate() -> None:
    first = {**record("gate", "t1", status="partial"), "verdicts": {"gate": verdict("t1")}}
    second = {**record("gate", "t2"), "verdicts": {"gate": verdict("t2", passed=False)}}
    other = {**record("check", "t3"), "verdicts": {"check": verdict("t3")}}

    result = fold([first, second, other])

    assert result["verdicts"]["gate"]["step"] == "t2"
    assert result["verdicts"]["gate"]["passed"] is False
    assert result["verdicts"]["check"]["step"] == "t3"


def test_the_update_flag_never_reaches_the_result() -> None:
    assert "update" not in merge_ledgers({}, record("a", "t1"))
    assert "update" not in merge_ledgers(None, record("a", "t1"))
    assert "update" not in fold([record("a", "t1"), record("b", "t2")])
    # Even when the current value itself carries the flag (an update used as a base).
    assert "update" not in merge_ledgers(record("a", "t1"), record("b", "t2"))
    assert "update" not in merge_ledgers({}, {"update": True})


# -- empty values ---------------------------------------------------------------------------


def test_empty_values_merge_to_an_empty_ledger() -> None:
    assert merge_ledgers(None, None) == {}
    assert merge_ledgers(None, {}) == {}
    assert merge_ledgers({}, None) == {}
    assert merge_ledgers({}, {}) == {}
    assert merge_ledgers({}, {"update": True}) == {}


def test_an_empty_update_leaves_the_ledger_as_it_is() -> None:
    current = fold([record("a", "t1"), route("a", "s1")])
    before = frozen(current)

    assert merge_ledgers(current, None) == before
    assert merge_ledgers(current, {}) == before
    assert merge_ledgers(current, {"update": True}) == before
    assert current == before


# -- copy on write --------------------------------------------------------------------------


def test_merging_never_mutates_its_inputs() -> None:
    current = fold(
        [
            record("a", "t1", fallback_used=True),
            {**route("a", "s0"), "limits": [limit("a", "s0")]},
            {**record("gate", "t2"), "verdicts": {"gate": verdict("t2")}},
        ]
    )
    update: Ledger = {
        **record("a", "t3", status="failed", depth=2),
        **route("a", "t3", 2),
        "degraded": True,
        "limits": [limit("a", "t3")],
        "verdicts": {"gate": verdict("t3", passed=False)},
    }
    current_before, update_before = frozen(current), frozen(update)

    result = merge_ledgers(current, update)

    assert current == current_before
    assert update == update_before
    assert result != current_before


def test_the_result_shares_no_changed_container_with_its_inputs() -> None:
    current = fold([record("a", "t1"), route("a", "s1")])
    current_before = frozen(current)
    update: Ledger = {
        **record("b", "t2"),
        **route("b", "t2"),
        "limits": [limit("b", "t2")],
        "verdicts": {"b": verdict("t2")},
    }
    update_before = frozen(update)

    result = merge_ledgers(current, update)
    keys = ("path", "steps", "visits", "outcomes", "routes", "route_steps", "limits", "verdicts")
    for key in keys:
        result[key].clear()  # type: ignore[literal-required]

    assert current == current_before
    assert update == update_before


def test_a_whole_ledger_merged_in_is_not_mutated() -> None:
    current = fold([record("a", "t1")])
    whole = merge_ledgers(current, record("b", "t2"))
    whole_before = frozen(whole)

    merge_ledgers(current, whole)

    assert whole == whole_before


# -- whole ledgers (a subgraph's state, or a node returning its input) ----------------------


def test_a_node_returning_the_state_it_got_changes_nothing() -> None:
    current = fold(
        [
            record("a", "t1", depth=2),
            {**route("b", "t1", 2), "limits": [limit("b", "t1")]},
            {**record("gate", "t2", status="partial"), "verdicts": {"gate": verdict("t2")}},
            {"update": True, "degraded": True},
        ]
    )

    assert merge_ledgers(current, frozen(current)) == current
    assert merge_ledgers(current, current) == current


def test_a_whole_ledger_adds_only_its_new_entries() -> None:
    current = fold([record("a", "t1"), record("b", "t2")])
    # A subgraph started from a copy of ``current`` and recorded two more visits.
    subgraph_state = fold([record("a", "t3", depth=2), record("c", "t4", depth=2)], current)
    assert "update" not in subgraph_state

    result = merge_ledgers(current, subgraph_state)

    assert result["visits"] == {"a": 2, "b": 1, "c": 1}
    assert result["path"] == ["a", "b", "a", "c"]
    assert result["steps"] == ["t1", "t2", "t3", "t4"]
    assert result["outcomes"]["a"]["step"] == "t3"
    assert result["depth"] == 2


def test_merging_the_same_whole_ledger_twice_is_idempotent() -> None:
    current = fold([record("a", "t1"), route("a", "s1")])
    whole = fold(
        [
            record("b", "t2", fallback_used=True),
            {**route("b", "t2"), "limits": [limit("b", "t2")]},
            {"update": True, "degraded": True},
        ],
        current,
    )

    once = merge_ledgers(current, whole)
    twice = merge_ledgers(once, whole)

    assert twice == once
    assert once["visits"] == {"a": 1, "b": 1}
    assert once["routes"] == {"a": 1, "b": 1}
    assert once["route_steps"] == [["s1>0", "a"], ["t2>0", "b"]]
    assert len(once["limits"]) == 1


def test_a_stale_whole_ledger_does_not_roll_outcomes_back() -> None:
    snapshot = fold([record("a", "t1", status="failed")])
    current = merge_ledgers(snapshot, record("a", "t2", status="success"))

    result = merge_ledgers(current, snapshot)

    assert result == current
    assert result["outcomes"]["a"]["status"] == "success"
    assert result["visits"] == {"a": 2}


def test_a_whole_ledger_without_the_flag_is_not_treated_as_an_update() -> None:
    current = fold([record("a", "t1")])
    unflagged = {key: value for key, value in record("a", "t1").items() if key != "update"}

    assert merge_ledgers(current, unflagged)["visits"] == {"a": 1}  # type: ignore[arg-type]
    # The same entries flagged as an update count again: updates carry only new visits.
    assert merge_ledgers(current, record("a", "t1"))["visits"] == {"a": 2}


def test_the_merged_ledger_is_plain_json() -> None:
    result = fold(
        [
            record("a", "t1", status="failed", fallback_used=True),
            {**route("a", "t1"), "limits": [limit("a", "t1")]},
            {**record("gate", "t2"), "verdicts": {"gate": verdict("t2")}},
        ]
    )
    assert json.loads(json.dumps(result)) == result


# -- properties -----------------------------------------------------------------------------

NODES = ("a", "b", "c", "d")
STATUSES: tuple[OutcomeStatus, ...] = ("success", "partial", "failed", "skipped")


def make_update(kind: str, node: str, step: str, status: OutcomeStatus, depth: int) -> Ledger:
    """One write of a given kind, as the graph layer produces them."""
    if kind == "route":  # a loop_guard's router write: routes, no visit
        return route(node, step, count=depth)  # ``depth`` doubles as a 1..3 route count
    if kind == "limit":  # a loop_guard that routed elsewhere
        return {"update": True, "limits": [limit(node, step)]}
    update = record(node, step, status=status, depth=depth, fallback_used=kind == "fallback")
    if kind == "fallback":
        update["degraded"] = True
    if kind == "gate":
        update["verdicts"] = {node: verdict(step, passed=status == "success")}
    return update


KINDS = ("visit", "visit", "fallback", "gate", "route", "limit")


@st.composite
def update_sequences(
    draw: st.DrawFn, nodes: tuple[str, ...] = NODES, prefix: str = "t", max_size: int = 12
) -> list[Ledger]:
    """Updates in the order a run would write them, each with its own step id."""
    specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(KINDS),
                st.sampled_from(nodes),
                st.sampled_from(STATUSES),
                st.integers(min_value=1, max_value=3),
            ),
            max_size=max_size,
        )
    )
    return [
        make_update(kind, node, f"{prefix}{i}", status, depth)
        for i, (kind, node, status, depth) in enumerate(specs)
    ]


@given(update_sequences())
def test_visits_count_the_path_and_each_visit_has_a_step(updates: list[Ledger]) -> None:
    result = fold(updates)

    path, steps = result.get("path", []), result.get("steps", [])
    assert result.get("visits", {}) == dict(Counter(path))
    assert len(path) == len(steps)
    assert len(set(steps)) == len(steps)
    assert path == [node for u in updates for node in u.get("path", [])]
    assert "update" not in result


@given(update_sequences())
def test_the_ledger_summarises_every_update(updates: list[Ledger]) -> None:
    result = fold(updates)

    assert result.get("depth", 0) == max((u.get("depth", 0) for u in updates), default=0)
    assert bool(result.get("degraded")) == any(u.get("degraded") for u in updates)
    expected_routes: Counter[str] = Counter()
    for u in updates:
        expected_routes.update(u.get("routes", {}))
    assert result.get("routes", {}) == dict(expected_routes)
    route_steps = result.get("route_steps", [])
    assert route_steps == [pair for u in updates for pair in u.get("route_steps", [])]
    assert len({route_id for route_id, _ in route_steps}) == len(route_steps)
    assert dict(Counter(node for _, node in route_steps)) == result.get("routes", {})
    latest = {node: o for u in updates for node, o in u.get("outcomes", {}).items()}
    assert result.get("outcomes", {}) == latest


@given(update_sequences(), st.data())
def test_a_stale_copy_of_the_ledger_merges_as_a_no_op(
    updates: list[Ledger], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(updates)), label="cut")
    snapshot = fold(updates[:cut])
    full = fold(updates[cut:], snapshot)

    assert merge_ledgers(full, snapshot) == full
    assert merge_ledgers(full, full) == full
    assert merge_ledgers(merge_ledgers(full, snapshot), snapshot) == full


@given(update_sequences(), st.data())
def test_a_subgraph_returning_its_state_equals_its_updates_applied_directly(
    updates: list[Ledger], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(updates)), label="cut")
    parent = fold(updates[:cut])
    # The subgraph starts from a copy of the parent's ledger and writes the rest.
    subgraph_state = fold(updates[cut:], frozen(parent))

    once = merge_ledgers(parent, subgraph_state)

    assert once == fold(updates)
    assert merge_ledgers(once, subgraph_state) == once


@given(update_sequences())
def test_merging_is_deterministic_and_leaves_updates_alone(updates: list[Ledger]) -> None:
    before = frozen(updates)

    first, second = fold(updates), fold(frozen(updates))

    assert first == second
    assert json.dumps(first) == json.dumps(second)  # same key and list order too
    assert updates == before


def _branch_summary(ledger: Ledger) -> dict[str, Any]:
    """What must not depend on how two parallel branches' writes interleave."""
    return {
        "visits": ledger.get("visits", {}),
        "outcomes": ledger.get("outcomes", {}),
        "verdicts": ledger.get("verdicts", {}),
        "routes": ledger.get("routes", {}),
        "route_steps": sorted(map(tuple, ledger.get("route_steps", []))),
        "degraded": bool(ledger.get("degraded")),
        "depth": ledger.get("depth", 0),
        "visited": sorted(zip(ledger.get("path", []), ledger.get("steps", []), strict=True)),
        "limits": sorted((r["step"], r["node"]) for r in ledger.get("limits", [])),
    }


def _interleave(left: list[Ledger], right: list[Ledger], picks: list[bool]) -> list[Ledger]:
    """Both lists, each in its own order, interleaved as ``picks`` says."""
    merged, i, j = [], 0, 0
    for take_left in picks:
        if take_left and i < len(left):
            merged.append(left[i])
            i += 1
        elif j < len(right):
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]


@given(
    update_sequences(nodes=("a", "b"), prefix="x", max_size=8),
    update_sequences(nodes=("c", "d"), prefix="y", max_size=8),
    st.lists(st.booleans(), max_size=16),
)
def test_parallel_branches_on_disjoint_nodes_commute(
    left: list[Ledger], right: list[Ledger], picks: list[bool]
) -> None:
    start = fold([record("start", "s0")])

    left_first = fold(left + right, start)
    right_first = fold(right + left, start)
    interleaved = fold(_interleave(left, right, picks), start)

    assert _branch_summary(left_first) == _branch_summary(right_first)
    assert _branch_summary(left_first) == _branch_summary(interleaved)


# -- LedgerView ---------------------------------------------------------------------------


def sample_ledger() -> Ledger:
    return fold(
        [
            record("research", "t1", status="failed", fallback_used=True),
            {"update": True, "degraded": True},
            record("backup", "t2", depth=2),
            record("research", "t3", status="partial"),
            record("writer", "t4", status="skipped", fallback_used=True),
            {**route("research", "t4", 3), "limits": [limit("research", "t4")]},
            {**record("gate", "t5"), "verdicts": {"gate": verdict("t5", score=0.8)}},
        ]
    )


def test_view_of_nothing_is_empty() -> None:
    for data in (None, {}):
        view = LedgerView.of(data)
        assert view == LedgerView()
        assert view.visits == {}
        assert view.path == ()
        assert view.degraded is False
        assert view.depth == 0
        assert view.limits == ()
        assert view.fallbacks == ()
        assert view.failed == ()
        assert view.visits_of("anything") == 0
        assert view.outcome("anything") is None
        assert view.status("anything") is None


def test_view_reads_every_field() -> None:
    data = sample_ledger()

    view = LedgerView.of(data)

    assert view.visits == {"research": 2, "backup": 1, "writer": 1, "gate": 1}
    assert view.path == ("research", "backup", "research", "writer", "gate")
    assert view.degraded is True
    assert view.depth == 2
    assert view.routes == {"research": 3}
    assert view.limits == (limit("research", "t4"),)
    assert view.verdicts["gate"]["score"] == 0.8
    assert view.outcomes == data["outcomes"]


def test_view_helpers() -> None:
    view = LedgerView.of(sample_ledger())

    assert view.visits_of("research") == 2
    assert view.visits_of("nobody") == 0
    outcome = view.outcome("research")
    assert outcome is not None
    assert outcome["step"] == "t3"
    assert view.outcome("nobody") is None
    assert view.status("research") == "partial"
    assert view.status("writer") == "skipped"
    assert view.status("backup") == "success"
    assert view.status("nobody") is None


def test_fallbacks_and_failed_list_nodes_in_name_order() -> None:
    view = LedgerView.of(
        fold(
            [
                record("zeta", "t1", status="failed", fallback_used=True),
                record("alpha", "t2", status="skipped"),
                record("mid", "t3", status="partial", fallback_used=True),
                record("ok", "t4"),
            ]
        )
    )

    assert view.fallbacks == ("mid", "zeta")
    assert view.failed == ("alpha", "zeta")  # partial and success are not failures


def test_failed_reflects_only_the_latest_outcome() -> None:
    view = LedgerView.of(
        fold([record("a", "t1", status="failed"), record("a", "t2", status="success")])
    )
    assert view.failed == ()
    assert view.visits_of("a") == 2


def test_view_is_frozen() -> None:
    view = LedgerView.of(sample_ledger())
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.degraded = False  # type: ignore[misc]


def test_view_coerces_loose_json() -> None:
    view = LedgerView.of({"path": ["a", "b"], "limits": [limit("a", "s")], "depth": 2.0})
    assert view.path == ("a", "b")
    assert isinstance(view.limits, tuple)
    assert view.depth == 2
    assert isinstance(view.depth, int)


def test_html_repr_lists_nodes_and_flags_degraded_runs() -> None:
    html = LedgerView.of(sample_ledger())._repr_html_()

    for node in ("research", "backup", "writer", "gate"):
        assert f"<td>{node}</td>" in html
    assert "<td>research</td><td>2</td><td>partial</td>" in html
    assert "CONNECTION" in html
    assert "5 visits" in html
    assert "depth 2" in html
    assert "(degraded)" in html
    assert "(degraded)" not in LedgerView.of(fold([record("a", "t1")]))._repr_html_()


def test_html_repr_escapes_node_names() -> None:
    evil = "<script>alert('x')</script>"
    html = LedgerView.of(fold([record(evil, "t1", status="failed")]))._repr_html_()

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


# -- LedgerMissingError ---------------------------------------------------------------------


def test_ledger_missing_error_is_a_lookup_error() -> None:
    error = LedgerMissingError("add ResilienceState")

    assert isinstance(error, LookupError)
    assert isinstance(error, ResilienceError)
    assert not isinstance(error, KeyError)
    with pytest.raises(LookupError, match="add ResilienceState"):
        raise error


def test_ledger_missing_error_survives_pickling() -> None:
    revived = pickle.loads(pickle.dumps(LedgerMissingError("add ResilienceState")))

    assert type(revived) is LedgerMissingError
    assert str(revived) == "add ResilienceState"


# -- the compact form a guard writes for a successful visit ----------------------------------


def test_a_compact_visit_merges_like_its_expanded_update() -> None:
    before = merge_ledgers({}, visit(Step("a", "t1", 1), status="failed", error_code="X"))
    compact = successful_visit("b", "t2", 2, 3, 12.5)
    expanded = expand_visit(compact)

    assert expanded["update"] is True
    assert merge_ledgers(before, compact) == merge_ledgers(before, expanded)
    merged = merge_ledgers(before, compact)
    assert merged["path"] == ["a", "b"]
    assert merged["steps"] == ["t1", "t2"]
    assert merged["depth"] == 2
    assert merged["outcomes"]["b"] == {
        "status": "success",
        "error_code": None,
        "error": None,
        "attempts": 3,
        "fallback_used": False,
        "duration_ms": 12.5,
        "step": "t2",
    }
    assert merged["outcomes"]["a"]["status"] == "failed"  # other nodes' outcomes stay
    assert json.loads(json.dumps(merged)) == merged
    assert before["path"] == ["a"]  # copy-on-write


def test_nested_guards_record_one_visit() -> None:
    class State(ResilienceState):
        x: int

    def node(state: State) -> dict[str, int]:
        return {"x": state["x"] + 1}

    builder = StateGraph(State)
    builder.add_node("n", guard(guard(node)))
    builder.add_edge(START, "n")
    final = builder.compile().invoke({"x": 0})
    assert final["x"] == 1
    assert ledger(final).visits == {"n": 1}
    assert ledger(final).path == ("n",)
