"""``CircuitBreaker``: the object users hold. Sync and async fronts over one state cell.

The decisions live in :mod:`langgraph_resilience.core.breaker`; this module only admits a
call, runs it with no lock held, and reports how it ended.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from .core.breaker import NO_RESULT, BreakerSnapshot
from .core.clock import Clock
from .core.events import BreakerState, Listener
from .core.policy import BreakerPolicy
from .stores.base import BreakerCell, BreakerStore
from .stores.memory import default_breaker_store

__all__ = ["Attempt", "CircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")

# Attempts opened by `with breaker:` blocks, innermost last. A ContextVar keeps them
# apart between threads and between asyncio tasks sharing one breaker.
_open_blocks: ContextVar[tuple[Attempt, ...]] = ContextVar(
    "langgraph_resilience_blocks", default=()
)


class Attempt:
    """One admitted call, for integrations that run the call themselves.

    Get one from :meth:`CircuitBreaker.begin`, run the call, then report exactly one of
    :meth:`succeed`, :meth:`fail` or :meth:`abandon`; later reports are ignored.
    """

    __slots__ = ("_cell", "_done", "_permit", "_started")

    def __init__(self, cell: BreakerCell, permit: int, started: float) -> None:
        self._cell = cell
        self._permit = permit
        self._started = started
        self._done = False

    def succeed(self, result: Any = NO_RESULT) -> None:
        """The call returned ``result`` (the policy's ``record_result`` judges it; with
        no argument the call counts as a plain success)."""
        if not self._done:
            self._done = True
            self._cell.record_result(self._permit, result, self._started)

    def fail(self, error: BaseException) -> None:
        """The call raised ``error`` (the policy's ``record_on``/``ignore_on`` judge it)."""
        if not self._done:
            self._done = True
            self._cell.record_error(self._permit, error, self._started)

    def abandon(self) -> None:
        """Give the permit back without counting the call (interrupted, cancelled)."""
        if not self._done:
            self._done = True
            self._cell.release(self._permit)

    def __repr__(self) -> str:
        status = "reported" if self._done else "running"
        return f"<Attempt on {self._cell.name!r}: {status}>"


class CircuitBreaker:
    """Stops calling a dependency that keeps failing, and tries it again later.

    Use it around a call (``call``/``acall``), as a decorator, or as a (async) context
    manager. Breakers are shared by name: every ``CircuitBreaker("search")`` in a process
    (in one store) is the same breaker.

    Example:
        ```python
        from langgraph_resilience import BreakerPolicy, CircuitBreaker, CircuitOpenError

        breaker = CircuitBreaker("search-api", BreakerPolicy(failure_threshold=3))

        @breaker
        def search(query: str) -> list[str]:
            return ["result for " + query]

        search("langgraph")                    # runs normally while closed
        try:
            breaker.call(search, "again")
        except CircuitOpenError as exc:        # only once the breaker has opened
            print(f"skipped; retry in {exc.retry_after:.0f}s")
        ```

    Args:
        name: the breaker's name, shown in errors, events and traces.
        policy: when to open and close; defaults to ``BreakerPolicy()``.
        clock: a ``Clock``; defaults to the monotonic clock (``FakeClock`` in tests).
        store: where the state lives; defaults to the process-wide in-memory store.

    Raises:
        ValueError: a breaker of that name exists in the store with another policy.
    """

    __slots__ = ("__weakref__", "_cell")

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock | None = None,
        store: BreakerStore | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        if policy is None:
            policy = BreakerPolicy()
        elif not isinstance(policy, BreakerPolicy):
            raise TypeError(f"policy must be a BreakerPolicy, got {policy!r}")
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise TypeError(f"clock must have a now() method returning seconds, got {clock!r}")
        self._cell: BreakerCell = (store or default_breaker_store()).attach(name, policy, clock)

    # ---- running calls

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` if the breaker admits it.

        Raises:
            CircuitOpenError: the breaker is open (``fn`` was not called).
        """
        cell = self._cell
        permit = cell.acquire()
        started = cell.now() if cell.timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            cell.record_error(permit, exc, started)
            raise
        cell.record_result(permit, result, started)
        return result

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await ``fn(*args, **kwargs)`` if the breaker admits it.

        A cancelled call gives its permit back and is not counted.

        Raises:
            CircuitOpenError: the breaker is open (``fn`` was not called).
        """
        cell = self._cell
        permit = cell.acquire()
        started = cell.now() if cell.timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            cell.record_error(permit, exc, started)
            raise
        cell.record_result(permit, result, started)
        return result

    def begin(self) -> Attempt:
        """Admit one call that the caller runs itself, and return its :class:`Attempt`.

        Raises:
            CircuitOpenError: the breaker is open.
        """
        cell = self._cell
        permit = cell.acquire()
        return Attempt(cell, permit, cell.now() if cell.timed else 0.0)

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a sync or async function so every call goes through the breaker."""
        if not callable(fn):
            raise TypeError(f"a breaker decorates callables, got {fn!r}")
        if is_async_callable(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(fn, *args, **kwargs)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def __enter__(self) -> CircuitBreaker:
        attempt = self.begin()
        _open_blocks.set((*_open_blocks.get(), attempt))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        blocks = _open_blocks.get()
        for i in range(len(blocks) - 1, -1, -1):
            if blocks[i]._cell is self._cell:  # noqa: SLF001 - same module
                attempt = blocks[i]
                _open_blocks.set(blocks[:i] + blocks[i + 1 :])
                break
        else:  # pragma: no cover - only reachable by calling __exit__ by hand
            raise RuntimeError(f"breaker {self.name!r}: __exit__ without a matching __enter__")
        if exc is None:
            attempt.succeed()  # a block has no result for record_result to judge
        else:
            attempt.fail(exc)

    async def __aenter__(self) -> CircuitBreaker:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # ---- state and control

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def cell(self) -> BreakerCell:
        """The shared state behind this breaker (see ``stores.base.BreakerCell``), for
        integrations that admit and record calls themselves, as ``guard`` does."""
        return self._cell

    @property
    def policy(self) -> BreakerPolicy:
        return self._cell.policy

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has passed reads half-open)."""
        return self._cell.state()

    def snapshot(self) -> BreakerSnapshot:
        """Counts, rates and timings at this moment."""
        return self._cell.snapshot()

    def reset(self) -> None:
        """Close the breaker and forget its failures."""
        self._cell.reset()

    def force_open(self) -> None:
        """Open the breaker and keep it open until :meth:`reset` (maintenance, drills)."""
        self._cell.force_open()

    def add_listener(self, listener: Listener) -> Listener:
        """Call ``listener(event)`` for each event of this breaker; returns the listener,
        so it also works as a decorator."""
        self._cell.add_listener(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        self._cell.remove_listener(listener)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CircuitBreaker) and other._cell is self._cell

    def __hash__(self) -> int:
        return id(self._cell)

    def __repr__(self) -> str:
        snap = self._cell.snapshot()
        if snap.state is BreakerState.HALF_OPEN:
            detail = f"trial successes {snap.trial_successes}/{self.policy.success_threshold}"
        else:
            threshold = self.policy.failure_threshold
            detail = "failures " + (
                f"{snap.consecutive_failures}/{threshold}" if threshold else "streak rule off"
            )
            if snap.state is BreakerState.OPEN:
                detail += f", retry in {snap.retry_after:.3g}s"
        return f"<CircuitBreaker {self.name!r} {snap.state.value}, {detail}>"

    def _repr_html_(self) -> str:
        return self._cell.snapshot()._repr_html_()


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns an awaitable (coroutine functions, partials of
    them, objects with an async ``__call__``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    # an object whose __call__ is a coroutine function is async too
    call_method = inspect.getattr_static(type(fn), "__call__", None)
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call_method)
