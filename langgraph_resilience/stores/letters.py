"""Dead letters: the record, the store interface, the query, and the in-memory store.

A store is small and synchronous: the queue in ``dead_letter.py`` adds the async front
(running a store's calls in a worker thread) and every decision (idempotency keys,
backoff, redaction). Every store passes ``tests/stores/letter_contract.py``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from langgraph_resilience.core.letters import LetterStatus

__all__ = ["DeadLetter", "InMemoryLetterStore", "LetterQuery", "LetterStore"]


def _new_id() -> str:
    return uuid.uuid4().hex


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class DeadLetter(BaseModel):
    """One failed task, with what it takes to understand it and to run it again.

    Stored as JSON. ``key`` (thread, namespace, checkpoint, task, node) identifies the
    failure: LangGraph may run an error handler twice on resume, and the second
    ``put`` of the same failure returns the first letter instead of making another.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id)
    created_at: AwareDatetime = Field(default_factory=_utcnow)
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    task_id: str | None = None
    node: str
    input: Any = None
    """A JSON snapshot of what the node received, redacted."""
    input_truncated: bool = False
    """The snapshot was over the size limit and holds only the start of its JSON."""
    input_unserializable: bool = False
    """Parts of the input were not JSON and are stored as their ``repr``."""
    error_type: str
    error_message: str
    traceback: str | None = None
    error_code: str
    attempts: int = 1
    correlation_id: str | None = None
    retry_count: int = 0
    next_attempt_at: AwareDatetime | None = None
    """When a drain may retry it; ``None`` waits for a person."""
    status: LetterStatus = LetterStatus.PENDING
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Breaker name, route taken and other context, redacted."""

    @property
    def key(self) -> str:
        """The failure's identity: the same task failing again on resume has the same key."""
        parts = (
            self.thread_id or "",
            self.checkpoint_ns,
            self.checkpoint_id or "",
            self.task_id or "",
        )
        if not any(parts):
            return self.id  # not from a graph run: every letter is its own failure
        return "|".join((*parts, self.node))

    def is_due(self, now: datetime, *, max_retries: int) -> bool:
        return (
            self.status is LetterStatus.PENDING
            and self.next_attempt_at is not None
            and self.next_attempt_at <= now
            and self.retry_count < max_retries
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LetterQuery:
    """Which letters to list. Every filter is optional; results are oldest first."""

    status: LetterStatus | None = None
    node: str | None = None
    thread_id: str | None = None
    since: datetime | None = None
    """Created at or after."""
    until: datetime | None = None
    """Created before."""
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit!r}")
        if self.offset < 0:
            raise ValueError(f"offset must be >= 0, got {self.offset!r}")
        if self.status is not None:
            object.__setattr__(self, "status", LetterStatus(self.status))

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.status is None or letter.status == self.status)
            and (self.node is None or letter.node == self.node)
            and (self.thread_id is None or letter.thread_id == self.thread_id)
            and (self.since is None or letter.created_at >= self.since)
            and (self.until is None or letter.created_at < self.until)
        )


class LetterStore(Protocol):
    """What a dead-letter backend provides. Every method is atomic."""

    def add(self, letter: DeadLetter) -> DeadLetter:
        """Store ``letter`` unless one with the same ``key`` exists; return the stored one.

        Raises ``ValueError`` if ``letter.id`` is already stored for another failure.
        """
        ...

    def get(self, letter_id: str) -> DeadLetter | None: ...

    def query(self, query: LetterQuery) -> list[DeadLetter]: ...

    def replace(self, letter: DeadLetter, *, expect: Iterable[LetterStatus]) -> bool:
        """Overwrite the letter with ``letter.id`` if its stored status is one of ``expect``."""
        ...

    def claim(self, *, now: datetime, limit: int, max_retries: int) -> list[DeadLetter]:
        """Mark up to ``limit`` due letters ``retrying`` and return them.

        Due: ``pending``, ``next_attempt_at`` set and not after ``now``, and
        ``retry_count < max_retries``. Two workers never claim the same letter.
        """
        ...

    def counts(self) -> dict[str, int]:
        """Letters per status (every status present, 0 when none)."""
        ...

    def purge(self, *, older_than: datetime, statuses: Iterable[LetterStatus]) -> int:
        """Delete letters created before ``older_than`` in ``statuses``; return how many."""
        ...

    def close(self) -> None: ...


class InMemoryLetterStore:
    """Letters in a dict, for tests and notebooks (``memory://``). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, DeadLetter] = {}
        self._by_key: dict[str, str] = {}

    def add(self, letter: DeadLetter) -> DeadLetter:
        with self._lock:
            existing = self._by_key.get(letter.key)
            if existing is not None:
                return self._by_id[existing]
            if letter.id in self._by_id:
                raise ValueError(
                    f"a dead letter with id {letter.id!r} is already stored for another failure"
                )
            self._by_id[letter.id] = letter
            self._by_key[letter.key] = letter.id
            return letter

    def get(self, letter_id: str) -> DeadLetter | None:
        with self._lock:
            return self._by_id.get(letter_id)

    def query(self, query: LetterQuery) -> list[DeadLetter]:
        with self._lock:
            found = [letter for letter in self._by_id.values() if query.matches(letter)]
        found.sort(key=lambda letter: (letter.created_at, letter.id))
        return found[query.offset : query.offset + query.limit]

    def replace(self, letter: DeadLetter, *, expect: Iterable[LetterStatus]) -> bool:
        allowed = set(expect)
        with self._lock:
            current = self._by_id.get(letter.id)
            if current is None or current.status not in allowed:
                return False
            self._by_id[letter.id] = letter
            return True

    def claim(self, *, now: datetime, limit: int, max_retries: int) -> list[DeadLetter]:
        with self._lock:
            due = sorted(
                (
                    letter
                    for letter in self._by_id.values()
                    if letter.is_due(now, max_retries=max_retries)
                ),
                key=lambda letter: (letter.next_attempt_at, letter.created_at, letter.id),
            )[:limit]
            claimed = [
                letter.model_copy(update={"status": LetterStatus.RETRYING}) for letter in due
            ]
            for letter in claimed:
                self._by_id[letter.id] = letter
            return claimed

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in LetterStatus}
        with self._lock:
            for letter in self._by_id.values():
                counts[letter.status.value] += 1
        return counts

    def purge(self, *, older_than: datetime, statuses: Iterable[LetterStatus]) -> int:
        allowed = set(statuses)
        with self._lock:
            doomed = [
                letter
                for letter in self._by_id.values()
                if letter.created_at < older_than and letter.status in allowed
            ]
            for letter in doomed:
                del self._by_id[letter.id]
                del self._by_key[letter.key]
            return len(doomed)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<InMemoryLetterStore: {len(self._by_id)} letters>"
