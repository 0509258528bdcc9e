"""``DeadLetterQueue``: the audit trail of failures that no fallback absorbed.

Every letter is JSON, redacted before it is stored, and idempotent on its failure's
identity. Retriable letters are drained with exponential backoff; the rest wait for a
person. The sync methods run on the store directly; each ``a*`` method runs the same
call in a worker thread, so no store needs two implementations.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any, ParamSpec, TypeVar

from langgraph_resilience.core.letters import (
    DEFAULT_SECRET_KEYS,
    LetterStatus,
    backoff_delay,
    redact,
    snapshot,
)
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery, LetterStore
from langgraph_resilience.stores.urls import mask_url, open_letter_store

__all__ = ["DeadLetter", "DeadLetterQueue", "LetterStatus", "Redactor"]

P = ParamSpec("P")
T = TypeVar("T")

Redactor = Callable[[Any], Any]
"""Takes a JSON-able value, returns it with secrets replaced."""

_OPEN = (LetterStatus.PENDING, LetterStatus.RETRYING)


class _NotPending(ValueError):
    """The letter to replay is not pending (another worker may have claimed it)."""


REPLAY_KEY = "langgraph_resilience_replay"
"""Set in ``config["configurable"]`` while a letter is replayed: the ``dead_letter``
sink then raises the failure instead of filing a second letter for it."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _storable(text: str | None) -> str | None:
    """Text every store accepts: Postgres refuses the NUL character."""
    return text.replace("\x00", "\ufffd") if text else text


def _in_thread(method: Callable[P, T]) -> Callable[P, Any]:
    """The async twin of a sync method: the same call, in a worker thread."""

    @functools.wraps(method)
    async def twin(*args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(method, *args, **kwargs)

    twin.__doc__ = f"Async form of ``{method.__name__}``."
    return twin


class DeadLetterQueue:
    """Failed tasks kept for review and replay, on a pluggable store.

    Example:
        ```python
        from langgraph_resilience import DeadLetter, DeadLetterQueue

        dlq = DeadLetterQueue.from_url("memory://")
        letter = dlq.put(
            DeadLetter(node="search", error_type="ConnectionError", error_message="down",
                       error_code="CONNECTION", input={"query": "tides", "api_key": "sk-1"})
        )
        assert dlq.get(letter.id).input == {"query": "tides", "api_key": "[REDACTED]"}
        assert dlq.stats()["pending"] == 1
        ```

    Args:
        store: where letters live (see ``from_url``).
        redactor: applied to each letter's input and metadata before it is stored;
            defaults to replacing values under secret-looking keys.
        max_input_bytes: the largest input snapshot kept whole; a larger one keeps the
            start of its JSON and is flagged ``input_truncated``.
        retry_base: seconds before the first retry; doubles each time, up to ``retry_cap``.
        retry_cap: the longest wait between retries, in seconds.
        now: the wall clock (tests pass a fake one).
    """

    def __init__(
        self,
        store: LetterStore,
        *,
        url: str = "memory://",
        redactor: Redactor | None = None,
        max_input_bytes: int = 64_000,
        retry_base: float = 30.0,
        retry_cap: float = 3600.0,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if max_input_bytes < 256:
            raise ValueError(f"max_input_bytes must be >= 256, got {max_input_bytes!r}")
        if retry_base <= 0 or retry_cap < retry_base:
            raise ValueError(
                f"need 0 < retry_base <= retry_cap, got retry_base={retry_base!r}, "
                f"retry_cap={retry_cap!r}"
            )
        self.store = store
        self.url = mask_url(url)
        """The store's URL, with any password masked."""
        self._redact = redactor or functools.partial(redact, keys=DEFAULT_SECRET_KEYS)
        self._max_input_bytes = max_input_bytes
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._now = now

    @classmethod
    def from_url(
        cls, url: str, *, store_options: dict[str, Any] | None = None, **options: Any
    ) -> DeadLetterQueue:
        """Open a queue on ``memory://``, ``sqlite:///path``, ``postgresql://...`` or
        ``redis://...``. ``store_options`` go to the backend (``table=`` for Postgres,
        ``namespace=`` for Redis); ``options`` are the constructor's keyword arguments."""
        return cls(open_letter_store(url, **(store_options or {})), url=url, **options)

    # ---- writing -------------------------------------------------------------------

    def put(self, letter: DeadLetter) -> DeadLetter:
        """Store ``letter`` (redacted, its input bounded) unless its failure is already
        stored; returns the stored letter either way."""
        return self.store.add(self._prepare(letter))

    def resolve(self, letter_id: str) -> DeadLetter:
        """Mark a pending or retrying letter ``resolved``."""
        return self._move(letter_id, LetterStatus.RESOLVED)

    def discard(self, letter_id: str) -> DeadLetter:
        """Mark a pending or retrying letter ``discarded``: nobody will retry it."""
        return self._move(letter_id, LetterStatus.DISCARDED)

    def retry_later(self, letter_id: str) -> DeadLetter:
        """Record a failed retry: count it and schedule the next one with backoff."""
        letter = self._require(letter_id)
        delay = backoff_delay(letter.retry_count, base=self._retry_base, cap=self._retry_cap)
        updated = letter.model_copy(
            update={
                "status": LetterStatus.PENDING,
                "retry_count": letter.retry_count + 1,
                "next_attempt_at": self._now() + timedelta(seconds=delay),
            }
        )
        if not self.store.replace(updated, expect=_OPEN):
            raise ValueError(f"letter {letter_id!r} is {self._require(letter_id).status}")
        return updated

    def first_retry_at(self) -> datetime:
        """When a new retriable letter becomes due: now plus the first backoff step."""
        delay = backoff_delay(0, base=self._retry_base, cap=self._retry_cap)
        return self._now() + timedelta(seconds=delay)

    def drain_retriable(self, max_retries: int = 5, *, limit: int = 100) -> list[DeadLetter]:
        """Claim the letters whose retry is due (at most ``limit``), marking them
        ``retrying``. Concurrent drains never return the same letter twice."""
        if max_retries < 1 or limit < 1:
            raise ValueError("max_retries and limit must be >= 1")
        return self.store.claim(now=self._now(), limit=limit, max_retries=max_retries)

    def purge(
        self,
        *,
        older_than: timedelta | datetime,
        statuses: Iterable[LetterStatus | str] = (LetterStatus.RESOLVED, LetterStatus.DISCARDED),
    ) -> int:
        """Delete letters created before ``older_than`` (an age or a moment) whose status
        is in ``statuses`` (closed ones by default); returns how many."""
        cutoff = self._now() - older_than if isinstance(older_than, timedelta) else older_than
        return self.store.purge(older_than=cutoff, statuses=[LetterStatus(s) for s in statuses])

    # ---- reading -------------------------------------------------------------------

    def get(self, letter_id: str) -> DeadLetter | None:
        return self.store.get(letter_id)

    def list(
        self,
        *,
        status: LetterStatus | str | None = None,
        node: str | None = None,
        thread_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeadLetter]:
        """Letters matching every filter given, oldest first, a page at a time."""
        query = LetterQuery(
            status=LetterStatus(status) if status is not None else None,
            node=node,
            thread_id=thread_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return self.store.query(query)

    def stats(self) -> dict[str, int]:
        """Letters per status, and ``total``."""
        counts = self.store.counts()
        return {**counts, "total": sum(counts.values())}

    def close(self) -> None:
        self.store.close()

    # ---- replay --------------------------------------------------------------------

    def replay(self, letter_id: str, graph: Any) -> Any:
        """Run a dead-lettered task again, from the checkpoint where it failed.

        The thread resumes at the failed checkpoint, so the failed node runs with the
        state it had and the nodes that had already succeeded do not run again. If
        the thread is gone (or the graph has no checkpointer) the graph is invoked
        afresh with the letter's stored input. Success marks the letter ``resolved``;
        failure counts a retry, schedules the next one with backoff, and raises.

        Only a ``pending`` letter can be replayed, and claiming it is atomic: two
        workers replaying the same letter never both run it.

        Raises:
            KeyError: no such letter.
            ValueError: the letter is not pending (resolved, discarded, or being
                replayed by another worker).
        """
        return self._run_claimed(self._claim(letter_id), graph)

    def _run_claimed(self, letter: DeadLetter, graph: Any) -> Any:
        config, fresh_input = self._replay_plan(letter, graph)
        try:
            result = graph.invoke(fresh_input, config)
        except Exception:
            self.retry_later(letter.id)
            raise
        self.resolve(letter.id)
        return result

    def replay_due(
        self, graph: Any, *, max_retries: int = 5, limit: int = 100
    ) -> dict[str, BaseException | None]:
        """Drain the letters whose retry is due and replay each one (the retry worker).

        Returns each claimed letter's id with ``None`` (resolved) or the error it
        failed with again (its next retry is then scheduled with backoff, until
        ``max_retries`` retries have been made; after that it waits for a person).
        """
        outcomes: dict[str, BaseException | None] = {}
        for letter in self.drain_retriable(max_retries, limit=limit):
            outcomes[letter.id] = self._outcome_of(letter, graph)
        return outcomes

    def _outcome_of(self, letter: DeadLetter, graph: Any) -> BaseException | None:
        try:
            self._run_claimed(letter, graph)
        except Exception as exc:
            return exc
        return None

    async def areplay(self, letter_id: str, graph: Any) -> Any:
        """Async form of ``replay``: the graph runs with ``ainvoke``."""
        letter = await asyncio.to_thread(self._claim, letter_id)
        config, fresh_input = await asyncio.to_thread(self._replay_plan, letter, graph)
        try:
            result = await graph.ainvoke(fresh_input, config)
        except Exception:
            await self.aretry_later(letter_id)
            raise
        await self.aresolve(letter_id)
        return result

    def replay_all(
        self,
        graph: Any,
        *,
        node: str | None = None,
        thread_id: str | None = None,
        limit: int = 100,
    ) -> dict[str, BaseException | None]:
        """Replay the pending letters matching the filters, oldest first.

        Returns each letter's id with ``None`` (resolved) or the error it failed with
        again. Letters another worker claims first are skipped.
        """
        outcomes: dict[str, BaseException | None] = {}
        for letter in self.list(
            status=LetterStatus.PENDING, node=node, thread_id=thread_id, limit=limit
        ):
            taken, error = self._replay_one(letter.id, graph)
            if not taken:
                outcomes[letter.id] = error
        return outcomes

    def _replay_one(self, letter_id: str, graph: Any) -> tuple[bool, BaseException | None]:
        """(claimed by another worker first, the error if it failed again)."""
        try:
            self.replay(letter_id, graph)
        except _NotPending:
            return True, None
        except Exception as exc:
            return False, exc
        return False, None

    def _claim(self, letter_id: str) -> DeadLetter:
        letter = self._require(letter_id)
        claimed = letter.model_copy(update={"status": LetterStatus.RETRYING})
        if letter.status is not LetterStatus.PENDING or not self.store.replace(
            claimed, expect=[LetterStatus.PENDING]
        ):
            raise _NotPending(
                f"letter {letter_id!r} is not pending (it is {self._require(letter_id).status})"
            )
        return claimed

    @staticmethod
    def _replay_plan(letter: DeadLetter, graph: Any) -> tuple[dict[str, Any], Any]:
        """The config to run with, and the input: ``None`` to resume the failed
        checkpoint, or the stored input for a fresh run."""
        marker = {REPLAY_KEY: letter.id}
        if letter.thread_id and letter.checkpoint_id:
            at_failure = {
                "configurable": {
                    "thread_id": letter.thread_id,
                    "checkpoint_ns": letter.checkpoint_ns,
                    "checkpoint_id": letter.checkpoint_id,
                    **marker,
                }
            }
            try:
                snapshot = graph.get_state(at_failure)
            except ValueError:  # the graph has no checkpointer
                snapshot = None
            if snapshot is not None and (snapshot.values or snapshot.next):
                return at_failure, None
        thread = letter.thread_id or f"replay-{letter.id}"
        return {"configurable": {"thread_id": thread, **marker}}, letter.input

    aput = _in_thread(put)
    aresolve = _in_thread(resolve)
    adiscard = _in_thread(discard)
    aretry_later = _in_thread(retry_later)
    adrain_retriable = _in_thread(drain_retriable)
    apurge = _in_thread(purge)
    aget = _in_thread(get)
    alist = _in_thread(list)
    astats = _in_thread(stats)
    aclose = _in_thread(close)

    # ---- helpers -------------------------------------------------------------------

    def _prepare(self, letter: DeadLetter) -> DeadLetter:
        shot = snapshot(self._redact(letter.input), limit_bytes=self._max_input_bytes)
        metadata = snapshot(self._redact(letter.metadata), limit_bytes=self._max_input_bytes)
        update: dict[str, Any] = {
            "error_message": _storable(letter.error_message),
            "traceback": _storable(letter.traceback),
            "input": shot.value,
            "input_truncated": letter.input_truncated or shot.truncated,
            "input_unserializable": letter.input_unserializable or shot.unserializable,
            "metadata": metadata.value if isinstance(metadata.value, dict) else {},
        }
        if "created_at" not in letter.model_fields_set:
            # The queue's clock, like next_attempt_at and purge's cutoff: one clock per queue.
            update["created_at"] = self._now()
        return letter.model_copy(update=update)

    def _require(self, letter_id: str) -> DeadLetter:
        letter = self.store.get(letter_id)
        if letter is None:
            raise KeyError(f"no dead letter {letter_id!r} in {self.url}")
        return letter

    def _move(self, letter_id: str, status: LetterStatus) -> DeadLetter:
        letter = self._require(letter_id)
        updated = letter.model_copy(update={"status": status, "next_attempt_at": None})
        if not self.store.replace(updated, expect=_OPEN):
            raise ValueError(
                f"letter {letter_id!r} is already {self._require(letter_id).status}; "
                f"only pending or retrying letters can be marked {status}"
            )
        return updated

    def __repr__(self) -> str:
        return f"<DeadLetterQueue {self.url}>"

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in self.stats().items())
        return f"<div><b>DeadLetterQueue</b> {escape(self.url)}<table>{rows}</table></div>"
