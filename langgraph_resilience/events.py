"""Every decision the plugin makes, in one stream: subscribe to it.

Breakers, guarded nodes, fallback routes, gates, loop guards, the dead-letter sink and
``ResilientSaver`` publish typed events (``langgraph_resilience.core.events``) here.
Each event also annotates the current LangSmith run when tracing is on. The health
monitor is a subscriber; so is anything you pass to :func:`subscribe`.

Publishing costs one attribute read when nobody listens: guards time their calls and
build per-call events only while there is a subscriber.

Example:
    ```python
    from langgraph_resilience import BreakerPolicy, CircuitBreaker
    from langgraph_resilience.events import listening

    seen = []
    breaker = CircuitBreaker("events-doc", BreakerPolicy(failure_threshold=1))
    with listening(seen.append):
        breaker.force_open()
    assert [type(event).__name__ for event in seen] == ["BreakerOpened"]
    ```
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from langgraph_resilience.tracing import annotate_event

__all__ = ["EventHub", "hub", "listening", "publish", "subscribe", "unsubscribe"]

logger = logging.getLogger("langgraph_resilience.events")

EventListener = Callable[[object], object]


class EventHub:
    """Listeners for every event, called in the publisher's thread, in order.

    A listener that raises is logged and the others still run: a broken dashboard must
    never break the graph it watches.
    """

    __slots__ = ("_lock", "listeners")

    def __init__(self) -> None:
        self.listeners: tuple[EventListener, ...] = ()
        """The current listeners; a tuple swapped whole, so publishing takes no lock."""
        self._lock = threading.Lock()

    def subscribe(self, listener: EventListener) -> EventListener:
        """Call ``listener(event)`` for every event from now on; returns the listener."""
        if not callable(listener):
            raise TypeError(f"subscribe() takes a callable of one event, got {listener!r}")
        with self._lock:
            self.listeners = (*self.listeners, listener)
        return listener

    def unsubscribe(self, listener: EventListener) -> None:
        """Stop calling ``listener`` (a no-op if it was not subscribed)."""
        with self._lock:
            kept = list(self.listeners)
            if listener in kept:
                kept.remove(listener)
            self.listeners = tuple(kept)

    def notify(self, event: object) -> None:
        """Deliver ``event`` to the listeners only (no LangSmith annotation)."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # noqa: PERF203 - a failing listener must not stop the others
                logger.exception("event listener %r failed on %r", listener, event)

    def __repr__(self) -> str:
        return f"<EventHub listeners={len(self.listeners)}>"


hub = EventHub()
"""The process-wide hub every component publishes to."""


def publish(event: object, *, trace: bool = True) -> None:
    """Annotate the current LangSmith run with ``event`` (when ``trace`` and tracing is
    on) and deliver it to the subscribers."""
    if trace:
        annotate_event(event)
    if hub.listeners:
        hub.notify(event)


def subscribe(listener: EventListener) -> EventListener:
    """Call ``listener(event)`` for every event the plugin publishes; returns it."""
    return hub.subscribe(listener)


def unsubscribe(listener: EventListener) -> None:
    """Stop calling ``listener``."""
    hub.unsubscribe(listener)


@contextmanager
def listening(listener: EventListener) -> Iterator[EventListener]:
    """Subscribe ``listener`` for the duration of a ``with`` block."""
    hub.subscribe(listener)
    try:
        yield listener
    finally:
        hub.unsubscribe(listener)
