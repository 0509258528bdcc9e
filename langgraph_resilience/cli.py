"""The ``langgraph-resilience`` command: ``version``, ``demo``, ``status`` and ``dlq ...``.

``dlq`` operates a dead-letter queue from a shell::

    langgraph-resilience dlq --store sqlite:///dead_letters.db list --status pending
    langgraph-resilience dlq show LETTER_ID
    langgraph-resilience dlq replay LETTER_ID --graph myapp.graphs:research
    langgraph-resilience dlq discard LETTER_ID
    langgraph-resilience dlq purge --older-than 7d
    langgraph-resilience dlq stats --json

The store comes from ``--store`` or the ``LANGGRAPH_RESILIENCE_DLQ`` environment variable.
Tables are for people, ``--json`` for scripts; passwords in URLs are always masked.

``status`` prints a health snapshot written by ``HealthMonitor.save(path)``::

    langgraph-resilience status health.json
    langgraph-resilience status health.json --json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from langgraph_resilience import __version__
from langgraph_resilience.dead_letter import DeadLetterQueue
from langgraph_resilience.health import HealthSnapshot
from langgraph_resilience.stores.letters import DeadLetter

__all__ = ["main"]

DEMOS = ("research_team", "research_pipeline", "checkpoint_failover", "multi_agent")
"""The example modules ``demo`` runs, in order (the same as ``make demo``)."""

STORE_ENV = "LANGGRAPH_RESILIENCE_DLQ"
"""Environment variable with the dead-letter store's URL, when ``--store`` is not given."""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class UsageError(Exception):
    """A mistake on the command line: printed without a traceback, exit code 2."""


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the process exit code."""
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "version":
            print(f"langgraph-resilience {__version__}", file=out)
            return 0
        if args.command == "demo":
            return _demo()
        if args.command == "status":
            return _status(args.path, as_json=args.json, out=out)
        if args.command == "dlq":
            if args.action is None:
                parser.parse_args(["dlq", "--help"])
            return _dlq(args, out)
    except UsageError as exc:
        print(f"langgraph-resilience: {exc}", file=sys.stderr)
        return 2
    parser.print_help(out)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="langgraph-resilience", description="Fault tolerance for LangGraph graphs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("version", help="print the installed version")
    sub.add_parser("demo", help="run the example graphs (needs a source checkout)")
    status = sub.add_parser(
        "status", help="print a health snapshot saved by HealthMonitor.save(path)"
    )
    status.add_argument("path", help="the snapshot's JSON file")
    status.add_argument("--json", action="store_true", help="print JSON instead of tables")

    dlq = sub.add_parser("dlq", help="inspect, replay and clean up dead letters")
    dlq.add_argument("--store", help=f"the store's URL (default: ${STORE_ENV})")
    dlq.add_argument("--json", action="store_true", help="print JSON instead of tables")
    actions = dlq.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="letters, oldest first")
    listing.add_argument("--status", choices=["pending", "retrying", "resolved", "discarded"])
    listing.add_argument("--node")
    listing.add_argument("--thread")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    for name, text in (
        ("show", "one letter, in full"),
        ("discard", "give up on a letter"),
        ("resolve", "mark a letter fixed by hand"),
    ):
        actions.add_parser(name, help=text).add_argument("letter_id")
    replay = actions.add_parser("replay", help="run a letter's task again")
    replay.add_argument("letter_id")
    replay.add_argument(
        "--graph", required=True, help="module:attribute of the compiled graph (or a factory)"
    )
    purge = actions.add_parser("purge", help="delete old resolved and discarded letters")
    purge.add_argument("--older-than", required=True, help="an age such as 7d, 12h, 30m")
    actions.add_parser("stats", help="letters per status")
    return parser


def _demo() -> int:
    try:
        demos = [importlib.import_module(f"examples.{name}") for name in DEMOS]
    except ModuleNotFoundError:
        print(
            "the demo lives in the repository's examples/ folder: run `make demo` there",
            file=sys.stderr,
        )
        return 2
    for number, demo in enumerate(demos):
        if number:
            print()
        demo.main()
    return 0


def _status(path: str, *, as_json: bool, out: TextIO) -> int:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"no health snapshot at {path}: write one with HealthMonitor.save({path!r})"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the health snapshot {path}: {exc}") from None
    try:
        snapshot = HealthSnapshot.from_json(text)
    except ValueError as exc:
        raise UsageError(f"{path} is not a valid health snapshot: {exc}") from None
    if as_json:
        _print_json(snapshot.to_dict(), out)
    else:
        out.write(snapshot.table())
    return 0


def _dlq(args: argparse.Namespace, out: TextIO) -> int:
    url = args.store or os.environ.get(STORE_ENV)
    if not url:
        raise UsageError(f"say which store: --store URL, or set {STORE_ENV}")
    try:
        dlq = DeadLetterQueue.from_url(url)
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    try:
        return _run_action(dlq, args, out)
    finally:
        dlq.close()


def _run_action(dlq: DeadLetterQueue, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action
    if action == "list":
        letters = dlq.list(
            status=args.status,
            node=args.node,
            thread_id=args.thread,
            limit=args.limit,
            offset=args.offset,
        )
        if args.json:
            _print_json([letter.model_dump(mode="json") for letter in letters], out)
        else:
            _print_table(letters, out)
        return 0
    if action == "stats":
        stats = dlq.stats()
        if args.json:
            _print_json({"store": dlq.url, **stats}, out)
        else:
            print(f"dead letters in {dlq.url}", file=out)
            for status, count in stats.items():
                print(f"  {status:<10} {count:>6}", file=out)
        return 0
    if action == "purge":
        removed = dlq.purge(older_than=parse_duration(args.older_than))
        _say(args, out, {"purged": removed}, f"purged {removed} letters")
        return 0
    letter = dlq.get(args.letter_id)
    if letter is None:
        raise UsageError(f"no dead letter {args.letter_id!r} in {dlq.url}")
    if action == "show":
        if args.json:
            _print_json(letter.model_dump(mode="json"), out)
        else:
            _print_letter(letter, out)
        return 0
    try:
        if action == "discard":
            letter = dlq.discard(letter.id)
        elif action == "resolve":
            letter = dlq.resolve(letter.id)
        else:  # replay
            graph = load_graph(args.graph)
            try:
                dlq.replay(letter.id, graph)
            except ValueError as exc:  # not pending
                raise UsageError(str(exc)) from None
            except Exception as exc:
                retried = dlq.get(letter.id)
                when = retried.next_attempt_at if retried else None
                _say(
                    args,
                    out,
                    {"id": letter.id, "replayed": False, "error": repr(exc)},
                    f"replay of {letter.id} failed again ({type(exc).__name__}: {exc}); "
                    f"next attempt at {when}",
                )
                return 1
            letter = dlq.get(letter.id) or letter
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _say(
        args, out, {"id": letter.id, "status": letter.status.value}, f"{letter.id}: {letter.status}"
    )
    return 0


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s``, ``2w`` as a ``timedelta``."""
    match = _DURATION.match(text)
    if match is None:
        raise UsageError(f"--older-than takes an age such as 7d, 12h, 30m or 45s, got {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def load_graph(spec: str) -> Any:
    """The object named by ``module:attribute``; a callable that is not a graph is called."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"--graph takes module:attribute, got {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise UsageError(f"--graph: cannot import {module_name!r} ({exc})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--graph: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not hasattr(target, "invoke") and callable(target):
        target = target()
    if not hasattr(target, "invoke"):
        raise UsageError(f"--graph: {spec!r} is not a compiled graph")
    return target


def _say(args: argparse.Namespace, out: TextIO, data: dict[str, Any], text: str) -> None:
    if args.json:
        _print_json(data, out)
    else:
        print(text, file=out)


def _print_json(data: Any, out: TextIO) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out)


def _print_table(letters: list[DeadLetter], out: TextIO) -> None:
    if not letters:
        print("no dead letters", file=out)
        return
    header = ("id", "created", "status", "node", "error", "retries", "thread")
    rows = [
        (
            letter.id,
            letter.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.status.value,
            letter.node,
            _clip(f"{letter.error_code}: {letter.error_message}", 48),
            str(letter.retry_count),
            letter.thread_id or "",
        )
        for letter in letters
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip(),
            file=out,
        )


def _print_letter(letter: DeadLetter, out: TextIO) -> None:
    data = letter.model_dump(mode="json")
    trace = data.pop("traceback")
    for key in ("input", "metadata"):
        data[key] = json.dumps(data[key], ensure_ascii=False)
    width = max(len(key) for key in data)
    for key, value in data.items():
        print(f"{key:<{width}}  {value}", file=out)
    if trace:
        print(f"{'traceback':<{width}}", file=out)
        print(trace.rstrip(), file=out)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
