"""Breaker state in this process: the default store, and the process-wide registry."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from langgraph_resilience.core.breaker import (
    IGNORED,
    REJECTED,
    SUCCESS,
    BreakerMachine,
    BreakerSnapshot,
)
from langgraph_resilience.core.clock import Clock, MonotonicClock
from langgraph_resilience.core.events import (
    BreakerEvent,
    BreakerOpened,
    BreakerState,
    BreakerTransition,
    CallRejected,
    Listener,
)
from langgraph_resilience.core.policy import BreakerPolicy
from langgraph_resilience.errors import CircuitOpenError
from langgraph_resilience.events import publish

__all__ = ["InMemoryBreakerStore", "LocalBreakerCell", "default_breaker_store"]

logger = logging.getLogger("langgraph_resilience.breaker")


class LocalBreakerCell:
    """One breaker's state machine behind a lock that is held only while it decides.

    With a policy that has no sliding window and no ``record_result`` predicate, the
    common case (a closed breaker admitting a call that succeeds, with no failure streak
    to reset) takes no lock at all.
    """

    __slots__ = (
        "_delivering",
        "_dispatch_lock",
        "_listeners",
        "_lock",
        "_machine",
        "_queue",
        "clock",
        "name",
        "now",
        "policy",
        "timed",
    )

    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.now = clock.now
        self._lock = threading.Lock()
        self._machine = BreakerMachine(name, policy, now=clock.now())
        self.timed = self._machine.needs_timing
        self._listeners: tuple[Listener, ...] = ()
        # Events are queued under the state lock (so in decision order) and delivered
        # under a separate re-entrant lock, outside the state lock.
        self._queue: deque[BreakerEvent] = deque()
        self._dispatch_lock = threading.RLock()
        self._delivering = False  # this cell's delivery loop is running (under the lock)

    def acquire(self) -> int:
        machine = self._machine
        permit = machine.closed_generation
        if permit >= 0:
            return permit
        with self._lock:
            now = self.now()
            permit = machine.acquire(now)
            if permit == REJECTED:
                retry_after = machine.retry_after(now)
                state = machine.state
            self._queue.extend(machine.take_events())
        self._deliver()
        if permit == REJECTED:
            raise CircuitOpenError(self.name, retry_after=retry_after, state=state.value)
        return permit

    def record_result(self, permit: int, result: Any, started: float) -> None:
        machine = self._machine
        if machine.simple_success and permit == machine.closed_generation:
            if machine.consecutive_failures:
                self._record(permit, SUCCESS, None)
            return
        outcome = SUCCESS if machine.record_result is None else self._classify(permit, result)
        self._record(permit, outcome, started)

    def _classify(self, permit: int, result: Any) -> int:
        """Judge a result with the policy's predicate, outside the lock (user code)."""
        try:
            return self._machine.classify_result(result)
        except BaseException:
            self._record(permit, IGNORED, None)
            raise

    def record_error(self, permit: int, error: BaseException, started: float) -> None:
        try:
            outcome = self._machine.classify_error(error)
        except BaseException:
            self._record(permit, IGNORED, None)
            raise
        self._record(permit, outcome, started)

    def release(self, permit: int) -> None:
        self._record(permit, IGNORED, None)

    def state(self) -> BreakerState:
        with self._lock:
            state = self._machine.poll(self.now())
            self._queue.extend(self._machine.take_events())
        self._deliver()
        return state

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            machine = self._machine
            now = self.now()
            machine.poll(now)
            snap = machine.snapshot(now)
            self._queue.extend(machine.take_events())
        self._deliver()
        return snap

    def reset(self) -> None:
        with self._lock:
            self._machine.reset(self.now())
            self._queue.extend(self._machine.take_events())
        self._deliver()

    def force_open(self) -> None:
        with self._lock:
            self._machine.force_open(self.now())
            self._queue.extend(self._machine.take_events())
        self._deliver()

    def add_listener(self, listener: Listener) -> None:
        if not callable(listener):
            raise TypeError(f"a listener must be callable with one event, got {listener!r}")
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x != listener)

    def _record(self, permit: int, outcome: int, started: float | None) -> None:
        now = self.now()
        duration = now - started if started is not None and self.timed else None
        machine = self._machine
        lock = self._lock
        lock.acquire()  # cheaper than `with` on the hot path of windowed policies
        try:
            machine.record(permit, outcome, now, duration)
            if machine.pending_events:
                self._queue.extend(machine.take_events())
        finally:
            lock.release()
        if self._queue:
            self._deliver()

    def _deliver(self) -> None:
        queue = self._queue
        if not queue:
            return
        with self._dispatch_lock:
            if self._delivering:
                # A listener acted on this breaker: the loop running further up this
                # thread's stack delivers the new events once every listener has had the
                # current one, so no listener sees them out of order.
                return
            self._delivering = True
            try:
                while queue:
                    try:
                        event = queue.popleft()
                    except IndexError:  # another thread drained it between the check and here
                        return
                    _log(event)
                    publish(event)  # to the current LangSmith run and the event hub
                    for listener in self._listeners:
                        try:
                            listener(event)
                        except Exception:  # noqa: PERF203 - a failing listener must not stop the others
                            logger.exception("breaker %r: listener %r failed", self.name, listener)
            finally:
                self._delivering = False


def _log(event: BreakerEvent) -> None:
    if isinstance(event, BreakerTransition):
        level = logging.WARNING if isinstance(event, BreakerOpened) else logging.INFO
        logger.log(
            level, "breaker %r %s -> %s: %s", event.breaker, event.old, event.new, event.reason
        )
    elif isinstance(event, CallRejected) and logger.isEnabledFor(logging.DEBUG):
        logger.debug("breaker %r rejected a call (%s)", event.breaker, event.state)


class InMemoryBreakerStore:
    """Breaker state held in this process. One name means one breaker per store.

    Example:
        ```python
        from langgraph_resilience import CircuitBreaker, InMemoryBreakerStore

        store = InMemoryBreakerStore()
        a = CircuitBreaker("search", store=store)
        b = CircuitBreaker("search", store=store)  # the same breaker: shared state
        assert a.snapshot() == b.snapshot()
        ```
    """

    def __init__(self) -> None:
        self._cells: dict[str, LocalBreakerCell] = {}
        self._lock = threading.Lock()

    def attach(self, name: str, policy: BreakerPolicy, clock: Clock | None) -> LocalBreakerCell:
        with self._lock:
            cell = self._cells.get(name)
            if cell is None:
                cell = LocalBreakerCell(name, policy, clock if clock is not None else _MONOTONIC)
                self._cells[name] = cell
                return cell
        if cell.policy != policy:
            raise ValueError(
                f"a breaker named {name!r} already exists with a different policy "
                f"({cell.policy!r}); reuse that policy, pick another name, or "
                f"remove({name!r}) it from the store first"
            )
        if clock is not None and clock != cell.clock:
            raise ValueError(
                f"a breaker named {name!r} already exists with another clock ({cell.clock!r}); "
                "pass the same clock, or use a separate InMemoryBreakerStore"
            )
        return cell

    def get(self, name: str) -> LocalBreakerCell | None:
        """The cell for ``name``, if a breaker of that name was created."""
        return self._cells.get(name)

    def names(self) -> list[str]:
        return sorted(self._cells)

    def snapshots(self) -> list[BreakerSnapshot]:
        """A snapshot of every breaker in the store, by name."""
        return [self._cells[name].snapshot() for name in self.names()]

    def remove(self, name: str) -> None:
        """Forget a breaker; the next one created with this name starts closed."""
        with self._lock:
            self._cells.pop(name, None)

    def clear(self) -> None:
        """Forget every breaker (handy between tests)."""
        with self._lock:
            self._cells.clear()

    def __repr__(self) -> str:
        return f"<InMemoryBreakerStore breakers={self.names()}>"


_MONOTONIC = MonotonicClock()
_DEFAULT_STORE = InMemoryBreakerStore()


def default_breaker_store() -> InMemoryBreakerStore:
    """The process-wide store used when a breaker is created without ``store=``."""
    return _DEFAULT_STORE
