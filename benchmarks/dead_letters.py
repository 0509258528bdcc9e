"""Part 5: what ``DeadLetterQueue.put`` costs per letter, against the raw driver.

For each backend the same JSON is written two ways, interleaved, plus a third way that
splits the first:

    put   ``DeadLetterQueue.put(letter)``: a fresh letter (its own task id, so its own
          failure key) with a ~1 KB input holding a nested dict and secret keys. The
          queue redacts the input and the metadata, takes their bounded JSON snapshots,
          copies the model, and calls the store's ``add``.
    raw   the driver alone doing the same durable write of the same letter's JSON (the
          stored letter's ``model_dump_json()``, built before the timed window):
          SQLite ``INSERT INTO t (id, body) VALUES (?, ?)`` + ``commit()`` on a
          connection opened like the store's (WAL, ``synchronous=FULL``); psycopg
          ``INSERT`` + ``commit()`` on a connection from a pool sized like the store's;
          redis-py ``HSET`` of the body (one command, the round trips of a naive write).
    add   the store's ``add`` of a letter the queue already prepared (outside the timed
          window): put - add is the queue's own work in situ, add - raw the store's.

SQLite writes a file in a temporary directory (its own file for the raw table); Postgres
a table with a unique name at ``$LGR_PG_URI``; Redis a unique namespace at
``$LGR_REDIS_URL``. A backend whose URL is unset is skipped with a note. Everything is
dropped at the end.

Each timed group writes one letter each way, timed with ``perf_counter_ns``; the groups
cycle through the six orders of the three ways, and every round starts with a
``gc.collect()``. The headline is the median of all puts / the median of all raw
writes; the per-round ratios show the spread.

The in-memory store has no raw peer: its ``put`` is the queue's own overhead (redaction,
snapshots, model copies) plus a dict insert. It is timed the same way, beside its pieces:
the queue's ``_prepare``, the redactor on the input and on ``{}`` (its fixed cost per
call), ``snapshot`` of the input, and the stored letter's ``model_dump_json`` and
``model_validate_json`` (what a store pays to write a letter, and to read one back).

For every backend the statements or round trips (and WAL or server commands) of each
write are counted. When a backend's ratio misses the goal, more puts and raw writes run
under ``cProfile`` to show where the extra time goes.
"""

from __future__ import annotations

import contextlib
import cProfile
import gc
import itertools
import json
import os
import pstats
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph_resilience import DeadLetter, DeadLetterQueue, InMemoryLetterStore
from langgraph_resilience.core.letters import snapshot

__all__ = ["GOAL_DLQ_RATIO", "INPUT", "MEMORY_WAYS", "run_dead_letters"]

GOAL_DLQ_RATIO = 1.5  # DeadLetterQueue.put / the raw driver writing the same JSON

# A realistic failed node's input: a chat with a tool call, retrieved documents, and the
# node's config with secrets at two depths (redacted by the queue's default redactor).
INPUT: dict[str, Any] = {
    "query": "tide times at Saint-Malo for 2026-11-21, and the coefficient",
    "messages": [
        {"role": "user", "content": "When is high tide in Saint-Malo tomorrow?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_7f3a", "name": "search", "args": {"q": "saint-malo tides"}}
            ],
        },
    ],
    "documents": [
        {
            "id": f"doc-{i}",
            "score": round(0.91 - 0.07 * i, 2),
            "title": f"Horaires des marées, Saint-Malo, page {i}",
            "url": f"https://example.org/marees/saint-malo/{i}",
        }
        for i in range(3)
    ],
    "config": {
        "model": "gpt-4o-mini",
        "temperature": 0.2,
        "max_retries": 3,
        "api_key": "sk-live-4f9c2d7e1b8a6f3c5d2e9b7a1c4f8e2d",
        "search": {"endpoint": "https://search.example.org/v2", "token": "tok_9a8b7c6d5e4f"},
    },
    "step": 7,
}
METADATA: dict[str, Any] = {"breaker": "search-api", "route": "dead_letter", "timeout_s": 5.0}
TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "app/nodes/search.py", line 42, in search\n'
    "    response = client.get(endpoint, params=params, timeout=5.0)\n"
    "ConnectionError: HTTPSConnectionPool(host='search.example.org', port=443): "
    "Max retries exceeded\n"
)

PUT, RAW, ADD = "put", "raw", "add"
WAYS = (PUT, RAW, ADD)
# the in-memory reference: the put, and the pieces of the queue's and the stores' work
MEMORY_WAYS = (
    "put",  # DeadLetterQueue.put on the in-memory store
    "prepare",  # DeadLetterQueue._prepare: redact + snapshot input and metadata, model_copy
    "redact",  # the default redactor on the input
    "redact_empty",  # the same on {}: its fixed cost per call
    "snapshot",  # snapshot() of the redacted input
    "dump_json",  # the stored letter's model_dump_json()
    "validate_json",  # DeadLetter.model_validate_json of it (a store reading a letter back)
)


@dataclass(frozen=True)
class Sizes:
    rounds: int
    # groups per round: a multiple of the number of orders (6 for three ways, 7 for the
    # in-memory reference's seven), so that every order comes up equally often
    per_round: int
    # writes each way before timing; SQLite's is past the first ~330 commits of the raw
    # file, while its WAL file still grows and each commit costs about twice as much
    warmup: int
    profile: int  # puts (and raw writes) under cProfile when a backend misses the goal


def sizes_for(quick: bool) -> dict[str, Sizes]:
    if quick:
        return {
            "memory": Sizes(2, 252, 50, 0),
            "sqlite": Sizes(2, 60, 400, 50),
            "postgres": Sizes(2, 60, 10, 50),
            "redis": Sizes(2, 120, 20, 100),
        }
    return {
        "memory": Sizes(5, 2520, 300, 0),
        "sqlite": Sizes(5, 1200, 400, 300),
        "postgres": Sizes(5, 1200, 60, 300),
        "redis": Sizes(5, 2400, 120, 1000),
    }


# ---- letters


class _Letters:
    """Fresh letters, each with its own task id (so its own failure key)."""

    def __init__(self) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.count = itertools.count()

    def fresh(self) -> DeadLetter:
        return DeadLetter(
            thread_id=f"bench-{self.run}",
            checkpoint_id="1f0c7a2e-3b4d-6e5f-8a9b-0c1d2e3f4a5b",
            task_id=f"task-{next(self.count):09d}",
            node="search",
            input=INPUT,
            metadata=METADATA,
            error_type="ConnectionError",
            error_message="search.example.org: Max retries exceeded",
            traceback=TRACEBACK,
            error_code="CONNECTION",
            attempts=3,
        )

    def many(self, n: int) -> list[DeadLetter]:
        return [self.fresh() for _ in range(n)]


# ---- backends


@dataclass
class _Backend:
    """One backend: its queue, the raw driver write beside it, and how to count ops."""

    key: str
    label: str
    raw_label: str
    where: str
    queue: DeadLetterQueue
    raw: Callable[[str, str], None]
    stored: Callable[[], tuple[int, int]]  # rows written (store, raw), for a sanity check
    close: Callable[[], None]
    # what a batch of writes costs in countable units: fn(thunk) -> {unit: count}
    count_ops: Callable[[Callable[[], None]], dict[str, float]] | None = None
    server: Callable[[Callable[[], None], Callable[[], None], int], dict[str, Any]] | None = None
    probes: list[tuple[str, str, str]] = field(default_factory=list)


def _sqlite_backend(tmp: Path) -> _Backend:
    from langgraph_resilience.stores.sqlite_letters import SqliteLetterStore

    store = SqliteLetterStore(tmp / "letters.db")
    # The store's connection, minus what the raw write does not need: the same busy
    # timeout, WAL and synchronous=FULL; the default isolation level, so the INSERT
    # opens a transaction and commit() ends it.
    conn = sqlite3.connect(tmp / "raw.db", timeout=30.0, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    conn.commit()

    def raw(letter_id: str, body: str) -> None:
        conn.execute("INSERT INTO t (id, body) VALUES (?, ?)", (letter_id, body))
        conn.commit()

    def stored() -> tuple[int, int]:
        with store._lock:
            (a,) = store._conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
        (b,) = conn.execute("SELECT COUNT(*) FROM t").fetchone()
        return a, b

    files = (tmp / "letters.db", tmp / "raw.db")
    (page,) = conn.execute("PRAGMA page_size").fetchone()

    def count_ops(thunk: Callable[[], None]) -> dict[str, float]:
        """SQL statements run (BEGIN and COMMIT included), from SQLite's trace hook, and
        the pages appended to the write-ahead logs (emptied first), all synced at COMMIT."""
        seen: list[str] = []
        with store._lock:
            for c in (store._conn, conn):
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                c.set_trace_callback(seen.append)
        try:
            thunk()
        finally:
            for c in (store._conn, conn):
                c.set_trace_callback(None)
        wal = sum(max(0, _size(f"{f}-wal") - 32) // (page + 24) for f in files)
        return {"statements": len(seen), "WAL pages": wal}

    def close() -> None:
        store.close()
        conn.close()

    return _Backend(
        key="sqlite",
        label="SQLite file (WAL, synchronous=FULL)",
        raw_label="sqlite3 `INSERT` + `commit()`",
        where=str(tmp),
        queue=DeadLetterQueue(store, url=f"sqlite:///{tmp / 'letters.db'}"),
        raw=raw,
        stored=stored,
        close=close,
        count_ops=count_ops,
        probes=[
            ("SQLite `execute` (C: parse, b-trees, WAL fsync at COMMIT)", "~", "execute' of"),
            ("`SqliteLetterStore._row` (incl. `model_dump_json`)", "sqlite_letters.py", "_row"),
        ],
    )


def _postgres_backend(url: str) -> _Backend:
    from psycopg_pool import ConnectionPool

    from langgraph_resilience.stores.postgres_letters import PostgresLetterStore

    table = f"lgr_bench_dlq_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    store = PostgresLetterStore(url, table=table)
    store._setup()
    # Sized like the store's pool, with the pool's defaults otherwise: connections not
    # in autocommit, so the INSERT opens a transaction and commit() ends it.
    pool: ConnectionPool[Any] = ConnectionPool(
        url, min_size=1, max_size=4, timeout=10.0, kwargs={"connect_timeout": 5}, open=True
    )
    raw_table = f"{table}_raw"
    with pool.connection() as conn:
        conn.execute(f"CREATE TABLE {raw_table} (id text PRIMARY KEY, body jsonb NOT NULL)")
    insert = f"INSERT INTO {raw_table} (id, body) VALUES (%s, %s::jsonb)"

    def raw(letter_id: str, body: str) -> None:
        with pool.connection() as conn:
            conn.execute(insert, (letter_id, body))
            conn.commit()

    def stored() -> tuple[int, int]:
        with pool.connection() as conn:
            (a,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            (b,) = conn.execute(f"SELECT count(*) FROM {raw_table}").fetchone()
        return int(a), int(b)

    def wal_lsn() -> int:
        with pool.connection() as conn:
            (lsn,) = conn.execute("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn").fetchone()
            conn.commit()
        return int(lsn)

    def count_ops(thunk: Callable[[], None]) -> dict[str, float]:
        """Round trips (the client's Sync and Query messages, from libpq's PQtrace) and
        bytes of WAL the server wrote meanwhile (server-wide: others may add some)."""
        conns = [*store._pool._pool, *pool._pool]
        lsn = wal_lsn()
        with tempfile.TemporaryFile("w+") as f:
            for c in conns:
                c.pgconn.trace(f.fileno())
                c.pgconn.set_trace_flags(_trace_flags())
            try:
                thunk()
            finally:
                for c in conns:
                    c.pgconn.untrace()
            f.seek(0)
            lines = f.read().splitlines()
        wal = wal_lsn() - lsn
        trips = sum(1 for line in lines if line.split("\t")[:1] == ["F"] and _ends_exchange(line))
        return {"round trips": trips, "WAL bytes": wal}

    def close() -> None:
        with pool.connection() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {raw_table}")
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.commit()
        pool.close()
        store.close()

    return _Backend(
        key="postgres",
        label="PostgreSQL",
        raw_label="psycopg `INSERT` + `commit()`",
        where=store.url,
        queue=DeadLetterQueue(store, url=url),
        raw=raw,
        stored=stored,
        close=close,
        count_ops=count_ops,
        probes=[
            ("psycopg waiting on the server (`Connection.wait`)", "psycopg/connection.py", "wait"),
            ("pool checkout (`getconn`, incl. the check)", "psycopg_pool/pool.py", "getconn"),
            ("`check_connection` (one empty query)", "psycopg_pool/pool.py", "check_connection"),
            (
                "`PostgresLetterStore._columns` (`model_dump` + `Jsonb`)",
                "postgres_letters",
                "_columns",
            ),
            ("SQL composition (`sql.SQL.format`)", "psycopg/sql.py", "format"),
        ],
    )


def _trace_flags() -> Any:
    from psycopg import pq

    return pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE


def _ends_exchange(line: str) -> bool:
    """A frontend message after which the client waits for the server: Sync or Query."""
    parts = line.split("\t")
    return len(parts) > 2 and parts[2].split(" ")[0] in ("Sync", "Query")


def _redis_backend(url: str) -> _Backend:
    import redis

    from langgraph_resilience.stores.redis_letters import RedisLetterStore

    namespace = f"lgr:bench:dlq:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    store = RedisLetterStore.from_url(url, namespace=f"{namespace}:store")
    client = redis.Redis.from_url(url, decode_responses=True)  # as the store's from_url
    client.ping()
    raw_key = f"{namespace}:raw"

    def raw(letter_id: str, body: str) -> None:
        client.hset(raw_key, letter_id, body)

    def stored() -> tuple[int, int]:
        return int(client.hlen(f"{namespace}:store:letters")), int(client.hlen(raw_key))

    def count_ops(thunk: Callable[[], None]) -> dict[str, float]:
        """Commands sent (round trips: calls of redis-py's ``send_packed_command``) and
        commands the server ran, scripts' included (``INFO commandstats``, server-wide)."""
        before = client.info("commandstats")
        trips = _calls(thunk, "redis/connection.py", "send_packed_command")
        after = client.info("commandstats")
        ran = sum(
            v["calls"] - before.get(k, {"calls": 0})["calls"]
            for k, v in after.items()
            if k != "cmdstat_info"
        )
        return {"round trips": trips, "server commands": ran}

    def server(put: Callable[[], None], write: Callable[[], None], n: int) -> dict[str, Any]:
        """What the server itself spends, from ``INFO commandstats`` before and after."""
        out: dict[str, Any] = {}
        for key, thunk in (("put", put), ("raw", write)):
            before = client.info("commandstats")
            thunk()
            after = client.info("commandstats")
            calls = usec = 0
            top = {}
            for name, stat in after.items():
                old = before.get(name, {"calls": 0, "usec": 0})
                dc, du = stat["calls"] - old["calls"], stat["usec"] - old["usec"]
                if name == "cmdstat_info" or dc <= 0:
                    continue
                top[name.removeprefix("cmdstat_")] = round(dc / n, 2)
                if name in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_hset"):
                    usec += du
                calls += dc
            out[key] = {"commands_per_write": calls / n, "server_us": usec / n, "by_command": top}
        return out

    def close() -> None:
        keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        store.close()
        client.close()

    return _Backend(
        key="redis",
        label="Redis",
        raw_label="redis-py `HSET` (1 command)",
        where=store._where(),
        queue=DeadLetterQueue(store, url=url),
        raw=raw,
        stored=stored,
        close=close,
        count_ops=count_ops,
        server=server,
        probes=[
            ("`Script.__call__` (EVALSHA, incl. the wait)", "redis/commands/core.py", "__call__"),
            ("reading the reply (`read_response`)", "redis/connection.py", "read_response"),
            ("`redis_letters._body` (`model_dump_json`)", "redis_letters.py", "_body"),
            ("`redis_letters._meta` (`json.dumps`, key)", "redis_letters.py", "_meta"),
        ],
    )


# probes common to every backend: (label, file fragment, function name fragment)
_COMMON_PROBES = [
    ("`DeadLetterQueue._prepare`", "dead_letter.py", "_prepare"),
    ("  `redact` (input + metadata)", "core/letters.py", "redact"),
    ("  `snapshot` (input + metadata)", "core/letters.py", "snapshot"),
    ("  `model_copy`", "pydantic/main.py", "model_copy"),
    ("store `add`", "_letters.py", "add"),
    ("  `model_dump_json`", "pydantic/main.py", "model_dump_json"),
    ("  `model_dump`", "pydantic/main.py", "model_dump"),
    (
        "  `model_validate_json` (the stored letter read back)",
        "pydantic/main.py",
        "model_validate_json",
    ),
    ("  `model_validate` (the stored letter read back)", "pydantic/main.py", "model_validate"),
    ("  `DeadLetter.key`", "stores/letters.py", "key"),
]


# ---- timing


def _interleave(
    ways: list[tuple[Callable[[int], list[Any]], Callable[[Any], Any]]],
    sizes: Sizes,
) -> list[list[list[int]]]:
    """``ways`` = (make n items outside the timed window, one timed call on an item).

    Returns ns per call: [round][way][sample]. Each group times every way once, the
    groups cycling through every order of up to three ways, or every rotation of more.
    """
    for make, call in ways:
        for item in make(sizes.warmup):
            call(item)
    k = len(ways)
    if k <= 3:
        orders = list(itertools.permutations(range(k)))
    else:
        orders = [tuple((r + i) % k for i in range(k)) for r in range(k)]
    clock = time.perf_counter_ns
    rounds: list[list[list[int]]] = []
    for _ in range(sizes.rounds):
        items = [make(sizes.per_round) for make, _ in ways]
        gc.collect()
        samples: list[list[int]] = [[] for _ in ways]
        for i in range(sizes.per_round):
            for j in orders[i % len(orders)]:
                call, item = ways[j][1], items[j][i]
                t0 = clock()
                call(item)
                samples[j].append(clock() - t0)
        rounds.append(samples)
    return rounds


def _medians(rounds: list[list[list[int]]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        "us": {
            k: statistics.median(t for r in rounds for t in r[j]) / 1000 for j, k in enumerate(keys)
        },
        "mean_us": {
            k: statistics.fmean(t for r in rounds for t in r[j]) / 1000 for j, k in enumerate(keys)
        },
        "round_medians_us": {
            k: [statistics.median(r[j]) / 1000 for r in rounds] for j, k in enumerate(keys)
        },
    }


def _run_memory(letters: _Letters, sizes: Sizes) -> dict[str, Any]:
    queue = DeadLetterQueue(InMemoryLetterStore())
    prep, redactor = queue._prepare, queue._redact
    redacted = redactor(INPUT)
    body = prep(letters.fresh()).model_dump_json()

    def prepared(n: int) -> list[DeadLetter]:
        return [prep(x) for x in letters.many(n)]

    def same(value: Any) -> Callable[[int], list[Any]]:
        return lambda n: [value] * n

    rounds = _interleave(
        [
            (letters.many, queue.put),
            (letters.many, prep),
            (same(INPUT), redactor),
            (same({}), redactor),
            (same(redacted), snapshot),
            (prepared, DeadLetter.model_dump_json),
            (same(body), DeadLetter.model_validate_json),
        ],
        sizes,
    )
    out = _medians(rounds, MEMORY_WAYS)
    out.update(rounds=sizes.rounds, puts_per_round=sizes.per_round)
    return out


def _ways(backend: _Backend, letters: _Letters) -> list[tuple[Any, Any]]:
    queue = backend.queue
    prep = queue._prepare
    add = queue.store.add
    raw = backend.raw

    def bodies(n: int) -> list[tuple[str, str]]:
        return [(x.id, x.model_dump_json()) for x in (prep(y) for y in letters.many(n))]

    def raw_write(item: tuple[str, str]) -> None:
        raw(*item)

    def prepared(n: int) -> list[DeadLetter]:
        return [prep(x) for x in letters.many(n)]

    return [(letters.many, queue.put), (bodies, raw_write), (prepared, add)]


def _check(backend: _Backend, letters: _Letters) -> None:
    """One put before timing: redacted, stored, idempotent on the failure key."""
    letter = letters.fresh()
    stored = backend.queue.put(letter)
    assert stored.input["config"]["api_key"] == "[REDACTED]", stored.input
    assert stored.input["config"]["search"]["token"] == "[REDACTED]", stored.input
    assert backend.queue.get(stored.id) == stored
    assert backend.queue.put(letter.model_copy(update={"id": "other"})).id == stored.id


def _run_backend(backend: _Backend, letters: _Letters, sizes: Sizes) -> dict[str, Any]:
    _check(backend, letters)
    before = backend.stored()
    rounds = _interleave(_ways(backend, letters), sizes)
    after = backend.stored()
    written = sizes.rounds * sizes.per_round + sizes.warmup
    assert after[0] - before[0] == 2 * written, (before, after)  # put + add
    assert after[1] - before[1] == written, (before, after)
    out = _medians(rounds, WAYS)
    us, rm = out["us"], out["round_medians_us"]
    out.update(
        label=backend.label,
        raw_label=backend.raw_label,
        where=backend.where,
        rounds=sizes.rounds,
        puts_per_round=sizes.per_round,
        ratio=us[PUT] / us[RAW],
        ratio_by_round=[p / r for p, r in zip(rm[PUT], rm[RAW], strict=True)],
        ratio_of_means=out["mean_us"][PUT] / out["mean_us"][RAW],
        add_ratio=us[ADD] / us[RAW],
        prepare_in_situ_us=us[PUT] - us[ADD],
        store_extra_us=us[ADD] - us[RAW],
    )
    out["met"] = out["ratio"] <= GOAL_DLQ_RATIO
    if backend.count_ops is not None:
        out["ops_per_write"] = _ops(backend, letters)
    return out


def _ops(
    backend: _Backend, letters: _Letters, n: int = 20, tries: int = 3
) -> dict[str, dict[str, float]]:
    """Per write, the smallest of ``tries`` batches of ``n`` (server-wide counters can
    only be inflated by other clients)."""
    count = backend.count_ops
    assert count is not None
    out: dict[str, dict[str, float]] = {}
    for key in (PUT, RAW):
        best: dict[str, float] = {}
        for _ in range(tries):
            if key == PUT:
                thunk = _each(backend.queue.put, letters.many(n))
            else:
                prepared = map(backend.queue._prepare, letters.many(n))
                thunk = _each(backend.raw, [(x.id, x.model_dump_json()) for x in prepared], True)
            for unit, value in count(thunk).items():
                best[unit] = min(best.get(unit, value), value / n)
        out[key] = best
    return out


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


# ---- where the time goes


def _calls(thunk: Callable[[], None], path: str, name: str) -> int:
    prof = cProfile.Profile()
    prof.runcall(thunk)
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    return sum(v[1] for k, v in stats.items() if path in k[0] and k[2] == name)


def _matches(key: tuple[str, int, str], path: str, name: str) -> bool:
    """A profiled function is a probe's: a builtin whose name holds ``name`` (path "~"),
    or a Python function called ``name`` in a file whose path holds ``path``."""
    if path == "~":
        return key[0] == "~" and name in key[2]
    return path in key[0] and key[2] == name


def _each(fn: Callable[..., Any], items: list[Any], star: bool = False) -> Callable[[], None]:
    """A thunk calling ``fn`` on every item (unpacked when ``star``)."""

    def thunk() -> None:
        for item in items:
            if star:
                fn(*item)
            else:
                fn(item)

    return thunk


def _label(key: tuple[str, int, str]) -> str:
    path, line, name = key
    if path == "~":
        return name
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{short}:{line}({name})"


def _profile(backend: _Backend, letters: _Letters, n: int) -> dict[str, Any]:
    """``n`` puts, then ``n`` raw writes, each under cProfile; per-write figures in µs."""
    puts = letters.many(n)
    raws = [(x.id, x.model_dump_json()) for x in map(backend.queue._prepare, letters.many(n))]
    put, raw = backend.queue.put, backend.raw
    out: dict[str, Any] = {"writes": n}
    for key, thunk in (
        (PUT, _each(put, puts)),
        (RAW, _each(raw, raws, star=True)),
    ):
        prof = cProfile.Profile()
        gc.collect()
        prof.runcall(thunk)
        stats: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        total = sum(v[2] for v in stats.values())
        top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
        section: dict[str, Any] = {
            "us_per_write_profiled": 1e6 * total / n,
            "top_tottime": [
                {
                    "function": _label(k),
                    "calls": v[1] / n,
                    "tottime_us": 1e6 * v[2] / n,
                    "cumtime_us": 1e6 * v[3] / n,
                }
                for k, v in top
            ],
        }
        if key == PUT:
            probes = []
            for label, path, name in [*_COMMON_PROBES, *backend.probes]:
                hits = [v for k, v in stats.items() if _matches(k, path, name)]
                if hits:
                    probes.append(
                        {
                            "part": label,
                            "calls": sum(v[1] for v in hits) / n,
                            "cumtime_us": 1e6 * sum(v[3] for v in hits) / n,
                        }
                    )
            section["probes"] = probes
        out[key] = section
    if backend.server is not None:
        more_puts = letters.many(n)
        more_raws = [
            (x.id, x.model_dump_json()) for x in map(backend.queue._prepare, letters.many(n))
        ]
        out["server"] = backend.server(
            _each(put, more_puts),
            _each(raw, more_raws, star=True),
            n,
        )
    return out


# ---- the part


@contextlib.contextmanager
def _opened(
    key: str, opener: Callable[[], _Backend], notes: dict[str, Any]
) -> Iterator[_Backend | None]:
    try:
        backend = opener()
    except Exception as exc:  # no server: note it, go on with the others
        notes[key] = {"skipped": f"could not open: {type(exc).__name__}: {exc}"}
        yield None
        return
    try:
        yield backend
    finally:
        backend.close()


def run_dead_letters(quick: bool, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The in-memory reference, then every backend whose URL is set."""
    say = progress or (lambda _msg: None)
    sizes = sizes_for(quick)
    letters = _Letters()
    sample = letters.fresh()
    queue = DeadLetterQueue(InMemoryLetterStore())
    body = queue._prepare(sample).model_dump_json()
    result: dict[str, Any] = {
        "goal_ratio": GOAL_DLQ_RATIO,
        "letter": {
            "input_json_bytes": len(json.dumps(INPUT, ensure_ascii=False).encode()),
            "stored_json_bytes": len(body.encode()),
        },
    }
    m = sizes["memory"]
    say(
        f"dead letters: in-memory store, {m.rounds} rounds x {m.per_round} groups of "
        f"{len(MEMORY_WAYS)}"
    )
    result["memory"] = _run_memory(letters, m)

    tmp = Path(tempfile.mkdtemp(prefix="lgr-bench-dlq-"))
    openers: list[tuple[str, str | None, str, Callable[[], _Backend]]] = [
        ("sqlite", str(tmp), "", lambda: _sqlite_backend(tmp)),
        (
            "postgres",
            os.environ.get("LGR_PG_URI"),
            "LGR_PG_URI",
            lambda: _postgres_backend(os.environ["LGR_PG_URI"]),
        ),
        (
            "redis",
            os.environ.get("LGR_REDIS_URL"),
            "LGR_REDIS_URL",
            lambda: _redis_backend(os.environ["LGR_REDIS_URL"]),
        ),
    ]
    backends: dict[str, Any] = {}
    try:
        for key, url, env, opener in openers:
            if not url:
                backends[key] = {"skipped": f"${env} is not set"}
                continue
            s = sizes[key]
            with _opened(key, opener, backends) as backend:
                if backend is None:
                    continue
                say(f"dead letters: {key}, {s.rounds} rounds x {s.per_round} groups of 3")
                res = _run_backend(backend, letters, s)
                if not res["met"]:
                    say(f"dead letters: {key} misses the goal: {s.profile} puts under cProfile")
                    res["profile"] = _profile(backend, letters, s.profile)
                backends[key] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["backends"] = backends
    return result
