"""Dead letters as data: statuses, retry backoff, secret redaction, bounded JSON snapshots.

Pure functions; the stores and the queue in ``dead_letter.py`` build on them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

__all__ = [
    "DEFAULT_SECRET_KEYS",
    "REDACTED",
    "LetterStatus",
    "Snapshot",
    "backoff_delay",
    "redact",
    "secret_key_matcher",
    "snapshot",
]

REDACTED = "[REDACTED]"

DEFAULT_SECRET_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "authorization",
        "auth",
        "cookie",
        "private_key",
        "client_secret",
        "session",
    }
)
"""Keys (compared case-insensitively, ignoring ``-``/``_``) whose values are redacted."""


class LetterStatus(str, Enum):
    """Where a dead letter is in its life."""

    PENDING = "pending"
    """Waiting: for its ``next_attempt_at`` (retriable) or for a person."""
    RETRYING = "retrying"
    """Claimed by a worker that is replaying it now."""
    RESOLVED = "resolved"
    """Replayed successfully, or fixed by hand."""
    DISCARDED = "discarded"
    """Given up on."""

    def __str__(self) -> str:
        return self.value


def backoff_delay(
    retry_count: int, *, base: float = 30.0, factor: float = 2.0, cap: float = 3600.0
) -> float:
    """Seconds to wait before retry number ``retry_count + 1``: exponential, capped.

    Example:
        >>> [backoff_delay(n) for n in range(4)]
        [30.0, 60.0, 120.0, 240.0]
    """
    if retry_count < 0:
        raise ValueError(f"retry_count must be >= 0, got {retry_count!r}")
    exponent = min(retry_count, 64)  # beyond that the cap wins anyway
    return float(min(cap, base * factor**exponent))


def _normal(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


@functools.lru_cache(maxsize=32)
def secret_key_matcher(keys: frozenset[str]) -> Callable[[object], bool]:
    """A predicate on dict keys for :func:`redact`, remembering its answers (the same
    few key names come back in every letter)."""
    wanted = tuple({_normal(k) for k in keys})
    seen: dict[str, bool] = {}

    def secret(key: object) -> bool:
        if not isinstance(key, str):
            return False
        answer = seen.get(key)
        if answer is None:
            answer = _normal(key).endswith(wanted)
            if len(seen) < 4096:  # bounded: keys could be data
                seen[key] = answer
        return answer

    return secret


def redact(value: Any, keys: Iterable[str] = DEFAULT_SECRET_KEYS) -> Any:
    """A copy of ``value`` with the values under secret-looking keys replaced.

    Walks dicts, lists and tuples; a key matches when, lowercased and without ``-`` and
    ``_``, it equals or ends with one of ``keys`` (so ``OPENAI_API_KEY`` matches ``api_key``).

    Example:
        >>> redact({"user": "ada", "db": {"Password": "hunter2"}, "x_api_key": "k"})
        {'user': 'ada', 'db': {'Password': '[REDACTED]'}, 'x_api_key': '[REDACTED]'}
    """
    secret = secret_key_matcher(frozenset(keys))

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            return {k: REDACTED if secret(k) else walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


class Snapshot(tuple[Any, bool, bool]):
    """``(value, truncated, unserializable)``: what :func:`snapshot` returns."""

    __slots__ = ()

    @property
    def value(self) -> Any:
        return self[0]

    @property
    def truncated(self) -> bool:
        return bool(self[1])

    @property
    def unserializable(self) -> bool:
        return bool(self[2])


def snapshot(value: Any, *, limit_bytes: int = 64_000) -> Snapshot:
    """``value`` as plain JSON data, at most ``limit_bytes`` when encoded.

    Values JSON cannot encode become their ``repr`` (flagged ``unserializable``); a
    snapshot over the limit is replaced by the start of its JSON text (flagged
    ``truncated``). Nothing is ever dropped silently.
    """
    unserializable = False

    def fallback(item: Any) -> Any:
        nonlocal unserializable
        dump = getattr(item, "model_dump", None)  # pydantic models and LangChain messages
        if callable(dump):
            try:
                return dump(mode="json")
            except Exception:  # not pydantic's signature: fall through to repr
                pass
        unserializable = True
        return repr(item)

    text = json.dumps(value, default=fallback, ensure_ascii=False, allow_nan=True)
    # Postgres' jsonb refuses the NUL character: keep a visible stand-in.
    text = text.replace("\\u0000", "\ufffd")
    # UTF-8 takes at most 4 bytes a character: only encode when it could be too long
    if len(text) * 4 <= limit_bytes or len(text.encode()) <= limit_bytes:
        data = json.loads(text, parse_constant=_keep_constant)
        return Snapshot((data, False, unserializable))
    head = text.encode()[: max(0, limit_bytes - 64)].decode(errors="ignore")
    return Snapshot(({"truncated_json": head}, True, unserializable))


def _keep_constant(name: str) -> Any:
    # NaN and the infinities are not JSON; Postgres' jsonb refuses them. Keep their name.
    return name
