"""The interfaces breaker state lives behind.

A :class:`BreakerStore` hands out one :class:`BreakerCell` per breaker name: every
``CircuitBreaker`` with that name (in that store) shares the cell, hence the state.
The in-memory cell keeps the state in this process; shared backends (Redis, SQLite)
implement the same two protocols and pass the same contract tests.

A cell admits and records calls. It never runs the guarded call itself, so no store
ever holds a lock, or a connection, across user code.
"""

from __future__ import annotations

from typing import Any, Protocol

from langgraph_resilience.core.breaker import BreakerSnapshot
from langgraph_resilience.core.clock import Clock
from langgraph_resilience.core.events import BreakerState, Listener
from langgraph_resilience.core.policy import BreakerPolicy

__all__ = ["BreakerCell", "BreakerStore"]


class BreakerCell(Protocol):
    """The shared state of one named breaker, with its admit/record protocol."""

    name: str
    policy: BreakerPolicy
    clock: Clock
    timed: bool
    """Whether outcomes need the call's start time (slow-call rules, time windows)."""

    def now(self) -> float:
        """The breaker clock's reading (pass it as ``started`` when ``timed``)."""
        ...

    def acquire(self) -> int:
        """Admit a call and return its permit, or raise ``CircuitOpenError``."""
        ...

    def record_result(self, permit: int, result: Any, started: float) -> None:
        """Record a call that returned ``result`` (judged by ``record_result``)."""
        ...

    def record_error(self, permit: int, error: BaseException, started: float) -> None:
        """Record a call that raised ``error`` (judged by ``record_on``/``ignore_on``)."""
        ...

    def release(self, permit: int) -> None:
        """Give a permit back without counting the call (cancelled, interrupted)."""
        ...

    def state(self) -> BreakerState: ...

    def snapshot(self) -> BreakerSnapshot: ...

    def reset(self) -> None: ...

    def force_open(self) -> None: ...

    def add_listener(self, listener: Listener) -> None: ...

    def remove_listener(self, listener: Listener) -> None: ...


class BreakerStore(Protocol):
    """Where breaker state lives: one cell per name."""

    def attach(self, name: str, policy: BreakerPolicy, clock: Clock | None) -> BreakerCell:
        """The cell for ``name``, created on first use.

        Raises:
            ValueError: the name is already in use with a different policy or clock.
        """
        ...

    def names(self) -> list[str]:
        """Names of the breakers in this store, sorted."""
        ...
