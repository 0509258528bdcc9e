"""The run's ledger: what each node did, how often it ran, and whether the run degraded.

The ledger is plain JSON kept in graph state under ``"resilience"`` (see
``ResilienceState``), so it is checkpointed with the run and survives a crash and
resume. Wrappers write small *updates*; :func:`merge_ledgers` is the state reducer that
folds them in.

Merging is deterministic and idempotent. Every visit carries a step id (LangGraph's
task id, which is the same when a task re-runs on resume), so a whole ledger coming
back from a subgraph, or a node that returns the state it was given, adds only the
visits the current ledger has not seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypedDict

__all__ = [
    "Ledger",
    "LedgerView",
    "LimitRecord",
    "Outcome",
    "OutcomeStatus",
    "VerdictRecord",
    "merge_ledgers",
]

OutcomeStatus: TypeAlias = Literal["success", "partial", "failed", "skipped"]
"""The seed's agent statuses: ``partial`` is usable but degraded, ``skipped`` never ran."""


class Outcome(TypedDict):
    """How a node's latest visit ended."""

    status: OutcomeStatus
    error_code: str | None
    """A short code such as ``"CONNECTION"`` or ``"CIRCUIT_OPEN"``; ``None`` on success."""
    error: str | None
    """``"ExceptionName: message"`` of the failure; ``None`` on success."""
    attempts: int
    """Attempts made in this visit (LangGraph retries included)."""
    fallback_used: bool
    """The run carried on through a fallback instead of this node's own result."""
    duration_ms: float
    step: str
    """Id of the step that recorded this outcome (a LangGraph task id)."""


class LimitRecord(TypedDict):
    """A loop limit that stopped a node from being entered."""

    node: str
    limit: str
    """Which limit: ``"max_visits"``, ``"max_visits_per_node"`` or ``"max_depth"``."""
    count: int
    maximum: int
    routed_to: str | None
    """Where the run went instead (``None`` when a guard raised)."""
    step: str


class VerdictRecord(TypedDict):
    """What a verification gate decided."""

    passed: bool
    score: float
    reasons: list[str]
    rounds: int
    """Verifier rounds used (0 when the output passed as it was)."""
    routed_to: str
    step: str


class Ledger(TypedDict, total=False):
    """The ledger's JSON shape. Every key is optional: a fresh ledger is ``{}``."""

    visits: dict[str, int]
    """Recorded visits per node."""
    path: list[str]
    """Nodes in the order their visits were recorded."""
    steps: list[str]
    """One step id per ``path`` entry; what makes merging idempotent."""
    outcomes: dict[str, Outcome]
    """Each node's latest outcome."""
    degraded: bool
    """Some node's output was replaced by a fallback: downstream work is degraded."""
    depth: int
    """Deepest graph level a recorded node ran at (1 is the top graph, 2 a subgraph)."""
    routes: dict[str, int]
    """How many times a ``loop_guard`` sent the run to each node."""
    route_steps: list[list[str]]
    """One ``[route id, node]`` pair per route counted in ``routes``; what makes
    merging them idempotent."""
    limits: list[LimitRecord]
    """Loop limits that were hit, in order."""
    verdicts: dict[str, VerdictRecord]
    """Each verification gate's latest verdict."""
    update: bool
    """Marks a wrapper's update (only new entries), as opposed to a whole ledger."""


def merge_ledgers(current: Ledger | None, update: Ledger | SuccessfulVisit | None) -> Ledger:
    """The ``resilience`` key's reducer: fold ``update`` into ``current``, copying.

    ``update`` is a guard's compact :data:`SuccessfulVisit`, a wrapper's update
    (``"update": True``, only new entries), or a whole ledger (from a subgraph, or a
    node returning its state); entries of a whole ledger whose step id ``current``
    already has are skipped.
    """
    base: Ledger = current or {}
    if not update:
        return base
    if isinstance(update, list):  # a successful visit, in its compact form
        return _add_visit(base, update)
    is_update = update.get("update", False)
    known: frozenset[str] | set[str] = frozenset() if is_update else set(base.get("steps", ()))
    merged: Ledger = dict(base)  # type: ignore[assignment]
    merged.pop("update", None)

    new_path = update.get("path")
    if new_path:
        new_steps = update.get("steps", [])
        path, steps = list(base.get("path", ())), list(base.get("steps", ()))
        visits = dict(base.get("visits", {}))
        for node, step in zip(new_path, new_steps, strict=True):
            if step in known:
                continue
            path.append(node)
            steps.append(step)
            visits[node] = visits.get(node, 0) + 1
        merged["path"], merged["steps"], merged["visits"] = path, steps, visits

    outcomes = _merge_by_step(base.get("outcomes"), update.get("outcomes"), known)
    if outcomes is not None:
        merged["outcomes"] = outcomes
    verdicts = _merge_by_step(base.get("verdicts"), update.get("verdicts"), known)
    if verdicts is not None:
        merged["verdicts"] = verdicts

    new_limits = [r for r in update.get("limits", ()) if r["step"] not in known]
    if new_limits:
        seen = {(r["step"], r["node"]) for r in base.get("limits", ())}
        merged["limits"] = list(base.get("limits", ())) + [
            r for r in new_limits if (r["step"], r["node"]) not in seen
        ]

    new_route_steps = update.get("route_steps")
    if new_route_steps:
        seen_routes: frozenset[str] | set[str] = (
            frozenset() if is_update else {pair[0] for pair in base.get("route_steps", ())}
        )
        routes = dict(base.get("routes", {}))
        route_steps = list(base.get("route_steps", ()))
        for route_id, node in new_route_steps:
            if route_id in seen_routes:
                continue
            routes[node] = routes.get(node, 0) + 1
            route_steps.append([route_id, node])
        merged["routes"], merged["route_steps"] = routes, route_steps

    if update.get("degraded") and not base.get("degraded"):
        merged["degraded"] = True
    if update.get("depth", 0) > base.get("depth", 0):
        merged["depth"] = update["depth"]
    return merged


SuccessfulVisit: TypeAlias = list[Any]
"""``[node, step, depth, attempts, duration_ms]``: what a guard writes for a visit that
succeeded, the most common update. A list keeps it plain JSON in LangGraph's pending
writes; the reducer expands it into the ledger's entries."""


def successful_visit(
    node: str, step: str, depth: int, attempts: int, duration_ms: float
) -> SuccessfulVisit:
    return [node, step, depth, attempts, duration_ms]


def expand_visit(visit: SuccessfulVisit) -> Ledger:
    """The same visit as a regular ledger update."""
    return _add_visit({}, visit) | {"update": True}


def _add_visit(base: Ledger, visit: SuccessfulVisit) -> Ledger:
    node, step, depth, attempts, duration_ms = visit
    merged: Ledger = dict(base)  # type: ignore[assignment]
    merged["path"] = [*base.get("path", ()), node]
    merged["steps"] = [*base.get("steps", ()), step]
    visits = dict(base.get("visits") or ())
    visits[node] = visits.get(node, 0) + 1
    merged["visits"] = visits
    outcomes = dict(base.get("outcomes") or ())
    outcomes[node] = {
        "status": "success",
        "error_code": None,
        "error": None,
        "attempts": attempts,
        "fallback_used": False,
        "duration_ms": duration_ms,
        "step": step,
    }
    merged["outcomes"] = outcomes
    if depth > base.get("depth", 0):
        merged["depth"] = depth
    return merged


def _merge_by_step(
    base: Mapping[str, Any] | None, new: Mapping[str, Any] | None, known: Iterable[str]
) -> dict[str, Any] | None:
    if not new:
        return None
    fresh = {key: record for key, record in new.items() if record["step"] not in known}
    if not fresh:
        return None
    return {**(base or {}), **fresh}


@dataclass(frozen=True)
class LedgerView:
    """A typed, read-only view of a ledger. Get one with ``ledger(state)``.

    Example:
        >>> view = LedgerView.of({"visits": {"research": 2}, "degraded": True})
        >>> view.visits_of("research"), view.degraded
        (2, True)
    """

    visits: Mapping[str, int] = field(default_factory=dict)
    path: tuple[str, ...] = ()
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    degraded: bool = False
    depth: int = 0
    routes: Mapping[str, int] = field(default_factory=dict)
    limits: tuple[LimitRecord, ...] = ()
    verdicts: Mapping[str, VerdictRecord] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> LedgerView:
        data = data or {}
        return cls(
            visits=data.get("visits", {}),
            path=tuple(data.get("path", ())),
            outcomes=data.get("outcomes", {}),
            degraded=bool(data.get("degraded", False)),
            depth=int(data.get("depth", 0)),
            routes=data.get("routes", {}),
            limits=tuple(data.get("limits", ())),
            verdicts=data.get("verdicts", {}),
        )

    def visits_of(self, node: str) -> int:
        """Recorded visits of ``node`` (0 if it never ran under a plugin wrapper)."""
        return self.visits.get(node, 0)

    def outcome(self, node: str) -> Outcome | None:
        """``node``'s latest outcome, or ``None``."""
        return self.outcomes.get(node)

    def status(self, node: str) -> OutcomeStatus | None:
        """``node``'s latest status (``"success"``, ``"failed"``...), or ``None``."""
        outcome = self.outcomes.get(node)
        return outcome["status"] if outcome is not None else None

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """Nodes whose result was replaced by a fallback, in name order."""
        return tuple(sorted(n for n, o in self.outcomes.items() if o["fallback_used"]))

    @property
    def failed(self) -> tuple[str, ...]:
        """Nodes whose latest visit failed or was skipped, in name order."""
        return tuple(
            sorted(n for n, o in self.outcomes.items() if o["status"] in ("failed", "skipped"))
        )

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(node)}</td><td>{self.visits.get(node, 0)}</td>"
            f"<td>{escape(o['status'])}</td><td>{escape(o['error_code'] or '')}</td>"
            f"<td>{o['attempts']}</td><td>{'yes' if o['fallback_used'] else ''}</td>"
            f"<td>{o['duration_ms']:.1f}</td></tr>"
            for node, o in sorted(self.outcomes.items())
        )
        head = (
            "<tr><th>node</th><th>visits</th><th>status</th><th>error</th>"
            "<th>attempts</th><th>fallback</th><th>ms</th></tr>"
        )
        flag = " <b>(degraded)</b>" if self.degraded else ""
        return (
            f"<div><b>Ledger</b>: {len(self.path)} visits, depth {self.depth}{flag}"
            f"<table>{head}{rows}</table></div>"
        )
