"""The ``langgraph-resilience`` command.

Subcommands grow with the features that need operating from a shell (the dead-letter
queue adds ``dlq ...``). Today: ``version`` and ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from langgraph_resilience import __version__

__all__ = ["main"]

DEMOS = ("research_team", "research_pipeline")
"""The example modules ``demo`` runs, in order (the same as ``make demo``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="langgraph-resilience",
        description="Fault tolerance for LangGraph graphs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("version", help="print the installed version")
    sub.add_parser("demo", help="run the example graphs (needs a source checkout)")
    args = parser.parse_args(argv)

    if args.command == "version":
        print(f"langgraph-resilience {__version__}")
        return 0
    if args.command == "demo":
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
    parser.print_help()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
