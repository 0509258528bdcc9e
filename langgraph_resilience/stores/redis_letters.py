"""Dead letters in Redis (``redis://`` and ``rediss://``), for queues shared by many workers.

Every key lives under one namespace (``lgr:dlq`` by default; ``?namespace=`` in the URL or
``namespace=`` picks another), so several queues can share a server:

==========================  ==============================================================
``<ns>:letters``            hash, letter id -> the letter's JSON (``status`` written last)
``<ns>:meta``               hash, letter id -> a small JSON array the scripts index by
``<ns>:keys``               hash, failure key -> letter id (what makes ``add`` idempotent)
``<ns>:created``            sorted set of ids by ``created_at`` (epoch seconds)
``<ns>:status:<status>``    sorted set of the ids in that status, by ``created_at``
``<ns>:node:<node>``        sorted set of the ids from that node, by ``created_at``
``<ns>:thread:<thread>``    sorted set of the ids from that thread, by ``created_at``
``<ns>:due``                sorted set of the pending letters with a ``next_attempt_at``,
                            by it; members are ``<created_at, 20 digits>:<id>`` so that
                            equal times fall back to ``created_at``, then ``id``
==========================  ==============================================================

Each write is one Lua script, so it is atomic for every client of the server; reads of
several keys run in a script or a ``MULTI`` too. The scripts build the per-status, node and
thread key names from the namespace, which standalone Redis (and Sentinel) allows; Redis
Cluster is not supported.

Example:
    ```python
    from langgraph_resilience import DeadLetterQueue

    dlq = DeadLetterQueue.from_url("redis://localhost:6379/0?namespace=billing:dlq")
    ```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, cast
from urllib.parse import unquote, urlsplit, urlunsplit

import redis

from langgraph_resilience.core.letters import LetterStatus
from langgraph_resilience.stores.letters import DeadLetter, LetterQuery
from langgraph_resilience.stores.urls import mask_url

__all__ = ["DEFAULT_NAMESPACE", "RedisLetterStore"]

DEFAULT_NAMESPACE = "lgr:dlq"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_SORT_OFFSET = 10**17
"""Added to epoch microseconds so that every datetime (year 1 to 9999) is a positive
20-digit number, whose text sorts like the number."""
_PURGE_BATCH = 1000
"""Letters deleted per script call, so a large purge never blocks the server for long."""

# Shared by the write scripts. KEYS: letters, meta, keys, created, due; ARGV[1]: namespace.
# meta = [failure key, node, thread_id or null, created score, due score or null,
#         retry_count, due member]
_HELPERS = """
local ns = ARGV[1]
local function status_of(body)
  return string.match(body, ',"status":"([%a_]+)"}$')
end
local function index(id, m, status)
  redis.call('ZADD', KEYS[4], m[4], id)
  redis.call('ZADD', ns .. ':status:' .. status, m[4], id)
  redis.call('ZADD', ns .. ':node:' .. m[2], m[4], id)
  if m[3] ~= cjson.null then
    redis.call('ZADD', ns .. ':thread:' .. m[3], m[4], id)
  end
  if status == 'pending' and m[5] ~= cjson.null then
    redis.call('ZADD', KEYS[5], m[5], m[7])
  end
end
local function unindex(id, m, status)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', ns .. ':status:' .. status, id)
  redis.call('ZREM', ns .. ':node:' .. m[2], id)
  if m[3] ~= cjson.null then
    redis.call('ZREM', ns .. ':thread:' .. m[3], id)
  end
  redis.call('ZREM', KEYS[5], m[7])
end
"""

# ARGV: namespace, id, failure key, body, meta, status. Returns the stored letter's body
# when the failure is already stored, else nil.
_ADD = (
    _HELPERS
    + """
local id = ARGV[2]
local existing = redis.call('HGET', KEYS[3], ARGV[3])
if existing then
  local body = redis.call('HGET', KEYS[1], existing)
  if body then
    return body
  end
end
if redis.call('HEXISTS', KEYS[1], id) == 1 then
  -- the same id for another failure: refused, like every store
  return redis.error_reply('DUPLICATE_ID')
end
redis.call('HSET', KEYS[1], id, ARGV[4])
redis.call('HSET', KEYS[2], id, ARGV[5])
redis.call('HSET', KEYS[3], ARGV[3], id)
index(id, cjson.decode(ARGV[5]), ARGV[6])
return false
"""
)

# ARGV: namespace, id, body, meta, expected statuses... Returns 1 if replaced, else 0.
# The failure key keeps pointing at the letter, as it was added.
_REPLACE = (
    _HELPERS
    + """
local id = ARGV[2]
local body = redis.call('HGET', KEYS[1], id)
if not body then
  return 0
end
local status = status_of(body)
local allowed = false
for i = 5, #ARGV do
  if ARGV[i] == status then
    allowed = true
  end
end
if not allowed then
  return 0
end
local om = cjson.decode(redis.call('HGET', KEYS[2], id))
local nm = cjson.decode(ARGV[4])
nm[1] = om[1]
unindex(id, om, status)
redis.call('HSET', KEYS[1], id, ARGV[3])
redis.call('HSET', KEYS[2], id, cjson.encode(nm))
index(id, nm, status_of(ARGV[3]))
return 1
"""
)

# ARGV: namespace, now (score), limit, max_retries. Returns the claimed bodies, longest
# overdue first (ties: created_at, then id, by the due member's text).
_CLAIM = (
    _HELPERS
    + """
local now = ARGV[2]
local limit = tonumber(ARGV[3])
local max_retries = tonumber(ARGV[4])
local pending = ',"status":"pending"}'
local claimed = {}
local skipped = 0
while #claimed < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', skipped, 256)
  if #batch == 0 then
    break
  end
  for _, member in ipairs(batch) do
    local id = string.sub(member, 22)
    local m = cjson.decode(redis.call('HGET', KEYS[2], id))
    if tonumber(m[6]) < max_retries then
      local body = redis.call('HGET', KEYS[1], id)
      local taken = string.sub(body, 1, #body - #pending) .. ',"status":"retrying"}'
      unindex(id, m, 'pending')
      redis.call('HSET', KEYS[1], id, taken)
      index(id, m, 'retrying')
      claimed[#claimed + 1] = taken
      if #claimed >= limit then
        break
      end
    else
      skipped = skipped + 1
    end
  end
end
return claimed
"""
)

# ARGV: namespace, cutoff (exclusive score), batch size, statuses... Deletes up to a batch
# of letters and returns how many.
_PURGE = (
    _HELPERS
    + """
local batch = tonumber(ARGV[3])
local removed = 0
for i = 4, #ARGV do
  local status = ARGV[i]
  local ids = redis.call(
    'ZRANGEBYSCORE', ns .. ':status:' .. status, '-inf', ARGV[2], 'LIMIT', 0, batch - removed
  )
  for _, id in ipairs(ids) do
    local m = cjson.decode(redis.call('HGET', KEYS[2], id))
    unindex(id, m, status)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    if redis.call('HGET', KEYS[3], m[1]) == id then
      redis.call('HDEL', KEYS[3], m[1])
    end
    removed = removed + 1
  end
  if removed >= batch then
    break
  end
end
return removed
"""
)

# KEYS: letters, then one or more index sets; ARGV: min score, max score, offset, limit.
# Returns the matching bodies, oldest first.
_QUERY = """
local min, max = ARGV[1], ARGV[2]
local offset, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
if #KEYS == 2 then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], min, max, 'LIMIT', offset, limit)
  for _, id in ipairs(ids) do
    out[#out + 1] = redis.call('HGET', KEYS[1], id)
  end
  return out
end
-- several filters: walk the smallest set, keep the ids that are in all the others
local best, best_size = 2, redis.call('ZCARD', KEYS[2])
for i = 3, #KEYS do
  local size = redis.call('ZCARD', KEYS[i])
  if size < best_size then
    best, best_size = i, size
  end
end
local seen, start = 0, 0
while #out < limit do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[best], min, max, 'LIMIT', start, 512)
  if #ids == 0 then
    break
  end
  start = start + #ids
  for _, id in ipairs(ids) do
    local keep = true
    for i = 2, #KEYS do
      if i ~= best and not redis.call('ZSCORE', KEYS[i], id) then
        keep = false
        break
      end
    end
    if keep then
      if seen >= offset then
        out[#out + 1] = redis.call('HGET', KEYS[1], id)
        if #out >= limit then
          break
        end
      end
      seen = seen + 1
    end
  end
end
return out
"""


def _micros(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TypeError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return (moment - _EPOCH) // _MICROSECOND


def _score(moment: datetime, name: str = "datetime") -> str:
    """Epoch seconds as Redis reads them back exactly (distinct for distinct microseconds)."""
    return repr(_micros(moment, name) / 1_000_000)


def _body(letter: DeadLetter) -> str:
    """The letter's JSON with ``status`` as its last field, where the scripts rewrite it."""
    rest = letter.model_dump_json(exclude={"status"})
    return f'{rest[:-1]},"status":{json.dumps(letter.status.value)}}}'


def _meta(letter: DeadLetter) -> str:
    sort_key = _micros(letter.created_at, "created_at") + _SORT_OFFSET
    due = letter.next_attempt_at
    return json.dumps(
        [
            letter.key,
            letter.node,
            letter.thread_id,
            _score(letter.created_at),
            None if due is None else _score(due),
            letter.retry_count,
            f"{sort_key:020d}:{letter.id}",
        ]
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _split_namespace(url: str) -> tuple[str, str | None]:
    """``url`` without its ``namespace`` query parameter, and that parameter's value."""
    parts = urlsplit(url)
    kept: list[str] = []
    namespace: str | None = None
    for item in parts.query.split("&") if parts.query else []:
        name, _, value = item.partition("=")
        if unquote(name) == "namespace":
            namespace = unquote(value)
        else:
            kept.append(item)
    return urlunsplit(parts._replace(query="&".join(kept))), namespace


class RedisLetterStore:
    """Dead letters in Redis under one namespace; safe to share across processes.

    Args:
        client: a sync ``redis.Redis``, ideally with ``decode_responses=True``.
        namespace: the prefix of every key this store uses.
        url: where ``client`` points, for ``repr`` only (its password is masked).
        owns_client: ``close()`` closes ``client`` too (``from_url`` sets it).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        url: str | None = None,
        owns_client: bool = False,
    ) -> None:
        if not namespace:
            raise ValueError("namespace must be a non-empty string, e.g. 'lgr:dlq'")
        self.client = client
        self.namespace = namespace
        self._url = url
        self._owns_client = owns_client
        self._letters = f"{namespace}:letters"
        self._meta = f"{namespace}:meta"
        self._keys = f"{namespace}:keys"
        self._created = f"{namespace}:created"
        self._due = f"{namespace}:due"
        self._add = client.register_script(_ADD)
        self._replace = client.register_script(_REPLACE)
        self._claim = client.register_script(_CLAIM)
        self._purge = client.register_script(_PURGE)
        self._query = client.register_script(_QUERY)

    @classmethod
    def from_url(cls, url: str, *, namespace: str | None = None, **kwargs: Any) -> RedisLetterStore:
        """Open ``redis://[user:password@]host:port/db[?namespace=...]`` (or ``rediss://``).

        ``kwargs`` go to ``redis.Redis.from_url``. The client connects on first use.
        """
        plain, from_query = _split_namespace(url)
        if namespace is not None and from_query is not None and namespace != from_query:
            raise ValueError(
                f"two namespaces for {mask_url(plain)!r}: {from_query!r} in the URL and "
                f"{namespace!r} as an argument; give one"
            )
        kwargs.setdefault("decode_responses", True)
        client = redis.Redis.from_url(plain, **kwargs)
        return cls(
            client,
            namespace=namespace or from_query or DEFAULT_NAMESPACE,
            url=plain,
            owns_client=True,
        )

    # ---- LetterStore ---------------------------------------------------------------

    def add(self, letter: DeadLetter) -> DeadLetter:
        try:
            existing = self._add(
                keys=self._fixed_keys(),
                args=[
                    self.namespace,
                    letter.id,
                    letter.key,
                    _body(letter),
                    _meta(letter),
                    letter.status.value,
                ],
            )
        except redis.exceptions.ResponseError as exc:
            if "DUPLICATE_ID" in str(exc):
                raise ValueError(
                    f"a dead letter with id {letter.id!r} is already stored for another failure"
                ) from None
            raise
        return letter if existing is None else self._load(existing)

    def get(self, letter_id: str) -> DeadLetter | None:
        body = self.client.hget(self._letters, letter_id)
        return None if body is None else self._load(body)

    def query(self, query: LetterQuery) -> list[DeadLetter]:
        indexes = [
            f"{self.namespace}:status:{query.status.value}" if query.status is not None else None,
            f"{self.namespace}:node:{query.node}" if query.node is not None else None,
            f"{self.namespace}:thread:{query.thread_id}" if query.thread_id is not None else None,
        ]
        keys = [key for key in indexes if key is not None] or [self._created]
        low = "-inf" if query.since is None else _score(query.since, "since")
        high = "+inf" if query.until is None else "(" + _score(query.until, "until")
        bodies = self._query(
            keys=[self._letters, *keys], args=[low, high, query.offset, query.limit]
        )
        return [self._load(body) for body in cast("Sequence[Any]", bodies)]

    def replace(self, letter: DeadLetter, *, expect: Iterable[LetterStatus]) -> bool:
        expected = [LetterStatus(status).value for status in expect]
        if not expected:
            return False
        done = self._replace(
            keys=self._fixed_keys(),
            args=[self.namespace, letter.id, _body(letter), _meta(letter), *expected],
        )
        return bool(int(done))

    def claim(self, *, now: datetime, limit: int, max_retries: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        bodies = self._claim(
            keys=self._fixed_keys(),
            args=[self.namespace, _score(now, "now"), limit, max_retries],
        )
        return [self._load(body) for body in cast("Sequence[Any]", bodies)]

    def counts(self) -> dict[str, int]:
        with self.client.pipeline(transaction=True) as pipe:
            for status in LetterStatus:
                pipe.zcard(f"{self.namespace}:status:{status.value}")
            sizes = pipe.execute()
        return {status.value: int(size) for status, size in zip(LetterStatus, sizes, strict=True)}

    def purge(self, *, older_than: datetime, statuses: Iterable[LetterStatus]) -> int:
        """Delete in batches of 1000 letters, each batch atomic."""
        chosen = sorted({LetterStatus(status).value for status in statuses})
        if not chosen:
            return 0
        cutoff = "(" + _score(older_than, "older_than")
        total = 0
        while True:
            removed = int(
                self._purge(
                    keys=self._fixed_keys(),
                    args=[self.namespace, cutoff, _PURGE_BATCH, *chosen],
                )
            )
            total += removed
            if removed < _PURGE_BATCH:
                return total

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # ---- helpers -------------------------------------------------------------------

    def _fixed_keys(self) -> list[str]:
        return [self._letters, self._meta, self._keys, self._created, self._due]

    @staticmethod
    def _load(body: Any) -> DeadLetter:
        return DeadLetter.model_validate_json(_text(body))

    def _where(self) -> str:
        if self._url is not None:
            # the query string may carry options (even a password): leave it out
            return mask_url(urlunsplit(urlsplit(self._url)._replace(query="")))
        options = self.client.get_connection_kwargs()
        host = options.get("host", options.get("path", "?"))
        return f"redis://{host}:{options.get('port', '')}/{options.get('db', 0)}"

    def __repr__(self) -> str:
        return f"<RedisLetterStore {self._where()} namespace={self.namespace!r}>"
