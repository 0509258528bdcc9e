"""Fault tolerance for LangGraph graphs: circuit breakers around nodes, and more.

Example:
    ```python
    from langgraph.graph import START, StateGraph
    from langgraph_resilience import BreakerPolicy, CircuitBreaker, guard

    search_breaker = CircuitBreaker("search", BreakerPolicy(failure_threshold=3))
    builder = StateGraph(dict)
    builder.add_node("search", guard(search_node, breaker=search_breaker, timeout=30))
    ```
"""

import logging

from .breaker import Attempt, CircuitBreaker
from .checkpoint import (
    ReconcileReport,
    ResilientSaver,
    SaverListener,
    SaverPolicy,
    SaverStatus,
    StoredRun,
    is_transient,
)
from .core.breaker import BreakerSnapshot
from .core.clock import Clock, FakeClock, MonotonicClock, WallClock
from .core.events import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerState,
    BreakerTransition,
    CallRejected,
    DeadLettered,
    FallbackSkipped,
    FallbacksSpent,
    FallbackTaken,
    GateVerdict,
    Listener,
    LoopLimitReached,
    MirrorFailed,
    NodeEvent,
    NodeFailed,
    NodeSucceeded,
    SaverEvent,
    SaverFailedBack,
    SaverFailedOver,
)
from .core.ledger import Ledger, LedgerView, Outcome
from .core.letters import LetterStatus
from .core.loops import LoopPolicy
from .core.policy import BreakerPolicy, CountWindow, TimeWindow
from .core.verdicts import GatePolicy, Verdict
from .dead_letter import DeadLetterQueue
from .errors import (
    AttemptTimeoutError,
    CircuitOpenError,
    LeaseHeldError,
    LeaseLostError,
    LedgerMissingError,
    LoopLimitExceeded,
    ResilienceError,
    SaverUnavailableError,
    StoreTimeoutError,
)
from .graph.dead_letter import dead_letter
from .graph.fallback import fallback_to, route_on_outcome
from .graph.gate import VerifiedOutput, quality_below, verification_gate
from .graph.guard import guard
from .graph.loops import loop_guard
from .graph.state import ResilienceState, ledger, reset_ledger
from .graph.worker import RunWorker
from .health import (
    Alert,
    AlertPolicy,
    AlertSink,
    BreakerHealth,
    HealthMonitor,
    HealthSnapshot,
    LoggingSink,
    NodeHealth,
    SaverHealth,
    Severity,
    Timeline,
)
from .leases import Lease, RunLeases
from .stores.leases import InMemoryLeaseStore, LeaseStore, SqliteLeaseStore
from .stores.letters import DeadLetter, InMemoryLetterStore, LetterQuery, LetterStore
from .stores.memory import InMemoryBreakerStore, default_breaker_store

__version__ = "0.1.0"

# A library stays quiet unless the application configures logging.
logging.getLogger("langgraph_resilience").addHandler(logging.NullHandler())

__all__ = [
    "Alert",
    "AlertPolicy",
    "AlertSink",
    "Attempt",
    "AttemptTimeoutError",
    "BreakerClosed",
    "BreakerEvent",
    "BreakerHalfOpened",
    "BreakerHealth",
    "BreakerOpened",
    "BreakerPolicy",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "CallRejected",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "CountWindow",
    "DeadLetter",
    "DeadLetterQueue",
    "DeadLettered",
    "FakeClock",
    "FallbackSkipped",
    "FallbackTaken",
    "FallbacksSpent",
    "GatePolicy",
    "GateVerdict",
    "HealthMonitor",
    "HealthSnapshot",
    "InMemoryBreakerStore",
    "InMemoryLeaseStore",
    "InMemoryLetterStore",
    "Lease",
    "LeaseHeldError",
    "LeaseLostError",
    "LeaseStore",
    "Ledger",
    "LedgerMissingError",
    "LedgerView",
    "LetterQuery",
    "LetterStatus",
    "LetterStore",
    "Listener",
    "LoggingSink",
    "LoopLimitExceeded",
    "LoopLimitReached",
    "LoopPolicy",
    "MirrorFailed",
    "MonotonicClock",
    "NodeEvent",
    "NodeFailed",
    "NodeHealth",
    "NodeSucceeded",
    "Outcome",
    "ReconcileReport",
    "ResilienceError",
    "ResilienceState",
    "ResilientSaver",
    "RunLeases",
    "RunWorker",
    "SaverEvent",
    "SaverFailedBack",
    "SaverFailedOver",
    "SaverHealth",
    "SaverListener",
    "SaverPolicy",
    "SaverStatus",
    "SaverUnavailableError",
    "Severity",
    "SqliteLeaseStore",
    "StoreTimeoutError",
    "StoredRun",
    "TimeWindow",
    "Timeline",
    "Verdict",
    "VerifiedOutput",
    "WallClock",
    "dead_letter",
    "default_breaker_store",
    "fallback_to",
    "guard",
    "is_transient",
    "ledger",
    "loop_guard",
    "quality_below",
    "reset_ledger",
    "route_on_outcome",
    "verification_gate",
]
