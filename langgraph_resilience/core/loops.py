"""Loop limits: how often a run may enter a node, and how deep delegation may nest.

LangGraph's only loop bound is ``recursion_limit``, which counts supersteps per
invocation (10,007 by default) and starts afresh on every resume. These limits count
visits recorded in the run's ledger instead, so they hold across a crash and resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, TypeAlias

from .ledger import LedgerView

__all__ = ["LimitName", "LoopBreach", "LoopPolicy"]

LimitName: TypeAlias = Literal["max_visits", "max_visits_per_node", "max_depth"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopPolicy:
    """Bounds on how often a run may enter nodes, checked against the ledger.

    Example:
        >>> policy = LoopPolicy(max_visits_per_node=3, max_depth=2)
        >>> policy.limit_for("worker")
        3
    """

    max_visits: int | None = None
    """Visits to all nodes together, over the whole run; ``None`` for no bound."""
    max_visits_per_node: int | Mapping[str, int] | None = None
    """Visits to any one node: one number for every node, or a number per node name
    (nodes not named are unbounded); ``None`` for no bound."""
    max_depth: int | None = None
    """Deepest graph level at which a node may still be entered: 1 is the top graph,
    2 a subgraph running as one of its nodes, and so on. A team nested deeper may not
    delegate; ``None`` for no bound."""

    def __post_init__(self) -> None:
        _check_limit("max_visits", self.max_visits)
        per_node = self.max_visits_per_node
        if isinstance(per_node, Mapping):
            # A read-only copy: changing the caller's dict later cannot skip validation.
            per_node = MappingProxyType(dict(per_node))
            object.__setattr__(self, "max_visits_per_node", per_node)
            for node, limit in per_node.items():
                if not isinstance(node, str):
                    raise TypeError(
                        f"LoopPolicy.max_visits_per_node keys must be node names, got {node!r}"
                    )
                _check_limit(f"max_visits_per_node[{node!r}]", limit)
        else:
            _check_limit("max_visits_per_node", per_node)
        _check_limit("max_depth", self.max_depth)

    def limit_for(self, node: str) -> int | None:
        """The per-node visit limit that applies to ``node``, if any."""
        per_node = self.max_visits_per_node
        if isinstance(per_node, Mapping):
            return per_node.get(node)
        return per_node

    def breach(
        self,
        ledger: LedgerView,
        node: str,
        *,
        depth: int,
        granted: Mapping[str, int] | None = None,
    ) -> LoopBreach | None:
        """What entering ``node`` once more at ``depth`` would exceed, or ``None``.

        Counts are the ledger's recorded visits, or the routes a loop guard took to the
        node when those are higher (a node without a guard records no visits), plus
        ``granted``: entries already allowed in the same decision (a fan-out), per node.
        """
        if self.max_depth is not None and depth > self.max_depth:
            return LoopBreach(node=node, limit="max_depth", count=depth, maximum=self.max_depth)
        granted = granted or {}
        if self.max_visits is not None:
            total = max(len(ledger.path), sum(ledger.routes.values())) + sum(granted.values())
            if total + 1 > self.max_visits:
                return LoopBreach(
                    node=node, limit="max_visits", count=total, maximum=self.max_visits
                )
        limit = self.limit_for(node)
        if limit is not None:
            count = max(ledger.visits.get(node, 0), ledger.routes.get(node, 0))
            count += granted.get(node, 0)
            if count + 1 > limit:
                return LoopBreach(
                    node=node, limit="max_visits_per_node", count=count, maximum=limit
                )
        return None


@dataclass(frozen=True, slots=True)
class LoopBreach:
    """A limit that entering ``node`` would exceed."""

    node: str
    limit: LimitName
    count: int
    """Visits so far (or the depth, for ``max_depth``)."""
    maximum: int

    def describe(self) -> str:
        if self.limit == "max_depth":
            return (
                f"{self.node!r} would run at graph depth {self.count}, "
                f"beyond max_depth={self.maximum}"
            )
        if self.limit == "max_visits":
            return (
                f"the run has made {self.count} visits; entering {self.node!r} "
                f"would exceed max_visits={self.maximum}"
            )
        return (
            f"{self.node!r} was entered {self.count} times; "
            f"max_visits_per_node allows {self.maximum}"
        )


def _check_limit(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"LoopPolicy.{name} must be an integer >= 1 or None, got {value!r}")
