"""``langgraph-resilience status PATH``: a snapshot saved by a monitor on a real graph,
printed as tables or JSON, and clear errors for a missing or broken file."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.graph import START, StateGraph

from langgraph_resilience import (
    BreakerPolicy,
    CircuitBreaker,
    FakeClock,
    HealthMonitor,
    HealthSnapshot,
    InMemoryBreakerStore,
    fallback_to,
    guard,
)
from langgraph_resilience.cli import main


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def saved(tmp_path: Path, store: InMemoryBreakerStore) -> Path:
    """A search node whose API goes down: three failures open its breaker."""
    clock = FakeClock()
    breaker = CircuitBreaker(
        "search-api", BreakerPolicy(failure_threshold=3), clock=clock, store=store
    )
    up = [True]

    def search(state: dict) -> dict:
        clock.advance(0.25)
        if not up[0]:
            raise ConnectionError("search API down")
        return {"notes": "fresh"}

    builder = StateGraph(dict)
    builder.add_node("search", guard(search, breaker=breaker), error_handler=fallback_to("cache"))
    builder.add_node("cache", lambda state: {"notes": "cached"})
    builder.add_edge(START, "search")
    graph = builder.compile()
    with HealthMonitor(clock=clock, sinks=[]).watch(breaker) as monitor:
        for _ in range(5):
            graph.invoke({})
        up[0] = False
        for _ in range(4):
            graph.invoke({})
    return monitor.save(tmp_path / "health.json")


def test_status_prints_the_tables(saved: Path) -> None:
    code, out = cli("status", str(saved))
    assert code == 0
    first, second = out.splitlines()[:2]
    assert first == "health at t=2s: 1 node (1 failing), 1 breaker (1 not closed), 4 alerts"
    assert second.startswith("saved 20")
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["search"][:6] == ["search", "failing", "9", "56%", "3", "1"]
    assert rows["search-api"][:2] == ["search-api", "open"]
    assert "breaker 'search-api' opened: 3 consecutive failures" in out
    assert "\x1b" not in out


def test_status_json_is_the_snapshot(saved: Path) -> None:
    code, out = cli("status", str(saved), "--json")
    assert code == 0
    data = json.loads(out)
    assert data == json.loads(saved.read_text())
    snapshot = HealthSnapshot.from_dict(data)
    assert snapshot.nodes["search"].fallbacks == 4
    assert snapshot.breakers["search-api"].opened == 1
    assert [a.rule for a in snapshot.alerts] == [
        "success_rate",
        "fallback",
        "errors_rising",
        "breaker_open",
    ]


def test_a_missing_file_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert main(["status", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"no health snapshot at {missing}" in err
    assert "HealthMonitor.save(" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{oops", "must be JSON"),
        ('{"format": "dlq"}', "'format' is 'dlq'"),
        (
            '{"format": "langgraph-resilience/health", "version": 1, "taken_at": 1,'
            ' "breakers": {"api": {"name": "api"}}}',
            r"breakers['api'] is missing 'state'",
        ),
    ],
)
def test_a_broken_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "health.json"
    path.write_text(content)
    assert main(["status", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"langgraph-resilience: {path} is not a valid health snapshot: ")
    assert message in err


def test_a_directory_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(tmp_path)]) == 2
    assert "cannot read the health snapshot" in capsys.readouterr().err


def test_the_installed_command(saved: Path) -> None:
    command = Path(sys.executable).parent / "langgraph-resilience"
    done = subprocess.run(
        [str(command), "status", str(saved)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "search-api" in done.stdout
