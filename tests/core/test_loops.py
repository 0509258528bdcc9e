"""LoopPolicy (validation, per-node limits, breach) and LoopLimitExceeded."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from langgraph_resilience import LedgerView, LoopLimitExceeded, LoopPolicy, ResilienceError
from langgraph_resilience.core.loops import LoopBreach


def view(*path: str, routes: dict[str, int] | None = None, depth: int = 1) -> LedgerView:
    """A ledger that recorded one visit per name in ``path``."""
    visits: dict[str, int] = {}
    for node in path:
        visits[node] = visits.get(node, 0) + 1
    return LedgerView.of(
        {
            "visits": visits,
            "path": list(path),
            "steps": [f"t{i}" for i in range(len(path))],
            "routes": routes or {},
            "depth": depth,
        }
    )


# -- construction and validation ------------------------------------------------------------


def test_defaults_bound_nothing() -> None:
    policy = LoopPolicy()

    assert policy.max_visits is None
    assert policy.max_visits_per_node is None
    assert policy.max_depth is None
    assert policy.limit_for("anything") is None
    busy = view(*(["worker"] * 1000), routes={"worker": 5000})
    assert policy.breach(busy, "worker", depth=50, granted={"worker": 100}) is None


def test_policy_is_frozen_and_keyword_only() -> None:
    policy = LoopPolicy(max_visits=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_visits = 20  # type: ignore[misc]
    with pytest.raises(TypeError):
        LoopPolicy(10)  # type: ignore[misc]
    assert policy == LoopPolicy(max_visits=10)
    assert policy != LoopPolicy(max_visits=11)


@pytest.mark.parametrize("field", ["max_visits", "max_visits_per_node", "max_depth"])
@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, 2.5, "3", [3]])
def test_limits_must_be_integers_of_at_least_one(field: str, value: Any) -> None:
    with pytest.raises(
        ValueError, match=rf"^LoopPolicy\.{field} must be an integer >= 1 or None"
    ) as info:
        LoopPolicy(**{field: value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("field", ["max_visits", "max_visits_per_node", "max_depth"])
def test_one_and_none_are_valid_limits(field: str) -> None:
    assert getattr(LoopPolicy(**{field: 1}), field) == 1
    assert getattr(LoopPolicy(**{field: None}), field) is None


@pytest.mark.parametrize("value", [0, -2, True, 1.5, "2"])
def test_per_node_mapping_values_are_validated_by_name(value: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^LoopPolicy\.max_visits_per_node\['critic'\] must be an integer"
    ):
        LoopPolicy(max_visits_per_node={"worker": 3, "critic": value})


@pytest.mark.parametrize("key", [1, None, ("a",)])
def test_per_node_mapping_keys_must_be_node_names(key: Any) -> None:
    with pytest.raises(TypeError, match=r"max_visits_per_node keys must be node names") as info:
        LoopPolicy(max_visits_per_node={key: 3})
    assert repr(key) in str(info.value)


def test_limit_for_one_number_applies_to_every_node() -> None:
    policy = LoopPolicy(max_visits_per_node=3)
    assert policy.limit_for("worker") == 3
    assert policy.limit_for("critic") == 3


def test_limit_for_a_mapping_bounds_only_the_named_nodes() -> None:
    policy = LoopPolicy(max_visits_per_node={"worker": 2, "critic": 5})
    assert policy.limit_for("worker") == 2
    assert policy.limit_for("critic") == 5
    assert policy.limit_for("writer") is None
    assert LoopPolicy(max_visits_per_node={}).limit_for("worker") is None


# -- breach: max_visits -----------------------------------------------------------------------


def test_max_visits_allows_entries_up_to_the_limit() -> None:
    policy = LoopPolicy(max_visits=3)

    assert policy.breach(view(), "a", depth=1) is None
    assert policy.breach(view("a", "b"), "c", depth=1) is None  # the third visit


def test_max_visits_breaches_past_the_limit() -> None:
    policy = LoopPolicy(max_visits=3)

    breach = policy.breach(view("a", "b", "a"), "c", depth=1)

    assert breach == LoopBreach(node="c", limit="max_visits", count=3, maximum=3)


def test_max_visits_counts_routes_when_they_are_higher() -> None:
    policy = LoopPolicy(max_visits=3)

    # Unguarded nodes record no visits, only the routes a loop guard took to them.
    breach = policy.breach(view(routes={"a": 2, "b": 1}), "a", depth=1)
    assert breach == LoopBreach(node="a", limit="max_visits", count=3, maximum=3)
    assert policy.breach(view("a", "b", routes={"a": 1}), "a", depth=1) is None


def test_max_visits_with_several_entries_at_once() -> None:
    policy = LoopPolicy(max_visits=4)
    two_visits = view("a", "b")

    # two entries already granted in this decision (to any nodes) count towards the total
    assert policy.breach(two_visits, "c", depth=1, granted={"d": 1}) is None
    breach = policy.breach(two_visits, "c", depth=1, granted={"c": 1, "d": 1})
    assert breach is not None
    assert breach.limit == "max_visits"
    assert breach.count == 4


# -- breach: max_visits_per_node ----------------------------------------------------------------


def test_per_node_limit_counts_only_that_node() -> None:
    policy = LoopPolicy(max_visits_per_node=2)
    ledger = view("worker", "critic", "worker", "critic")

    assert policy.breach(ledger, "worker", depth=1) == LoopBreach(
        node="worker", limit="max_visits_per_node", count=2, maximum=2
    )
    assert policy.breach(ledger, "writer", depth=1) is None
    assert policy.breach(view("worker"), "worker", depth=1) is None


def test_per_node_mapping_leaves_unnamed_nodes_unbounded() -> None:
    policy = LoopPolicy(max_visits_per_node={"worker": 1})
    ledger = view("worker", *(["critic"] * 10))

    assert policy.breach(ledger, "critic", depth=1) is None
    breach = policy.breach(ledger, "worker", depth=1)
    assert breach == LoopBreach(node="worker", limit="max_visits_per_node", count=1, maximum=1)


def test_per_node_count_is_the_higher_of_visits_and_routes() -> None:
    policy = LoopPolicy(max_visits_per_node=3)

    routed_more = policy.breach(view("worker", routes={"worker": 3}), "worker", depth=1)
    assert routed_more is not None
    assert routed_more.count == 3
    visited_more = policy.breach(view(*(["worker"] * 3), routes={"worker": 1}), "worker", depth=1)
    assert visited_more is not None
    assert visited_more.count == 3
    # Visits and routes of the same entries are not added together.
    assert policy.breach(view("worker", "worker", routes={"worker": 2}), "worker", depth=1) is None


def test_granted_counts_the_entries_already_allowed_in_this_decision() -> None:
    policy = LoopPolicy(max_visits_per_node=3)
    ledger = view("worker")

    assert policy.breach(ledger, "worker", depth=1, granted={"worker": 1}) is None
    assert policy.breach(ledger, "worker", depth=1, granted={"other": 5}) is None
    breach = policy.breach(ledger, "worker", depth=1, granted={"worker": 2})
    # the count says how many entries there are with the ones just granted
    assert breach == LoopBreach(node="worker", limit="max_visits_per_node", count=3, maximum=3)


# -- breach: max_depth --------------------------------------------------------------------------


def test_max_depth_one_allows_only_the_top_graph() -> None:
    policy = LoopPolicy(max_depth=1)

    assert policy.breach(view(), "team", depth=1) is None
    assert policy.breach(view(), "team", depth=2) == LoopBreach(
        node="team", limit="max_depth", count=2, maximum=1
    )


def test_max_depth_allows_its_own_level() -> None:
    policy = LoopPolicy(max_depth=2)
    assert policy.breach(view(), "worker", depth=2) is None
    breach = policy.breach(view(), "worker", depth=3)
    assert breach is not None
    assert (breach.limit, breach.count, breach.maximum) == ("max_depth", 3, 2)


def test_max_depth_is_checked_first() -> None:
    policy = LoopPolicy(max_visits=1, max_visits_per_node=1, max_depth=1)
    ledger = view("worker")

    breach = policy.breach(ledger, "worker", depth=2)
    assert breach is not None
    assert breach.limit == "max_depth"
    over_total = policy.breach(ledger, "worker", depth=1)
    assert over_total is not None
    assert over_total.limit == "max_visits"


# -- LoopBreach ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("breach", "expected"),
    [
        (
            LoopBreach(node="worker", limit="max_visits_per_node", count=3, maximum=3),
            ["'worker'", "3 times", "max_visits_per_node allows 3"],
        ),
        (
            LoopBreach(node="critic", limit="max_visits", count=10, maximum=10),
            ["'critic'", "10 visits", "max_visits=10"],
        ),
        (
            LoopBreach(node="team", limit="max_depth", count=3, maximum=2),
            ["'team'", "depth 3", "max_depth=2"],
        ),
    ],
)
def test_describe_names_the_node_and_the_limit(breach: LoopBreach, expected: list[str]) -> None:
    text = breach.describe()
    for fragment in expected:
        assert fragment in text


def test_breach_is_frozen() -> None:
    breach = LoopBreach(node="a", limit="max_visits", count=1, maximum=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        breach.count = 2  # type: ignore[misc]


# -- LoopLimitExceeded --------------------------------------------------------------------------


def loop_error() -> LoopLimitExceeded:
    return LoopLimitExceeded(
        "worker",
        limit="max_visits_per_node",
        count=3,
        maximum=3,
        detail="'worker' was entered 3 times; max_visits_per_node allows 3",
    )


def test_loop_limit_exceeded_is_a_recursion_error() -> None:
    error = loop_error()

    assert isinstance(error, RecursionError)
    assert isinstance(error, RuntimeError)  # never retried by LangGraph's default policy
    assert isinstance(error, ResilienceError)
    assert str(error) == "loop limit reached: 'worker' was entered 3 times; " + (
        "max_visits_per_node allows 3"
    )


def test_loop_limit_exceeded_keeps_its_attributes() -> None:
    error = loop_error()
    assert (error.node, error.limit, error.count, error.maximum) == (
        "worker",
        "max_visits_per_node",
        3,
        3,
    )
    assert error.detail.startswith("'worker'")


@pytest.mark.parametrize(
    "clone",
    [
        lambda e: pickle.loads(pickle.dumps(e)),
        copy.copy,
        copy.deepcopy,
    ],
    ids=["pickle", "copy", "deepcopy"],
)
def test_loop_limit_exceeded_survives_pickle_and_copy(clone: Any) -> None:
    error = loop_error()

    revived = clone(error)

    assert type(revived) is LoopLimitExceeded
    assert (revived.node, revived.limit, revived.count, revived.maximum, revived.detail) == (
        error.node,
        error.limit,
        error.count,
        error.maximum,
        error.detail,
    )
    assert str(revived) == str(error)
    assert revived.args == error.args


def test_a_breach_describes_a_loop_limit_error() -> None:
    breach = LoopPolicy(max_visits_per_node=2).breach(view("w", "w"), "w", depth=1)
    assert breach is not None

    error = LoopLimitExceeded(
        breach.node,
        limit=breach.limit,
        count=breach.count,
        maximum=breach.maximum,
        detail=breach.describe(),
    )

    assert "max_visits_per_node allows 2" in str(error)
    assert error.count == 2
