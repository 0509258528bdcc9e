"""``langgraph-resilience dlq ...`` on a real SQLite store: tables, JSON, every action,
replay through ``--graph module:attribute``, masked URLs and clear usage errors."""

from __future__ import annotations

import io
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from langgraph_resilience import DeadLetter, DeadLetterQueue, LetterStatus
from langgraph_resilience.cli import STORE_ENV, main, parse_duration


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'letters.db'}"
    monkeypatch.setenv(STORE_ENV, url)
    return url


@pytest.fixture
def letters(store_url: str) -> list[DeadLetter]:
    dlq = DeadLetterQueue.from_url(store_url)
    made = [
        dlq.put(
            DeadLetter(
                thread_id=f"t{n}",
                checkpoint_id="cp",
                task_id=f"task{n}",
                node="search" if n < 2 else "write",
                error_type="ConnectionError",
                error_message=f"down #{n}",
                error_code="CONNECTION",
                input={"n": n},
            )
        )
        for n in range(3)
    ]
    dlq.close()
    return made


def test_list_prints_a_table_and_json(letters: list[DeadLetter]) -> None:
    code, out = cli("dlq", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "created", "status", "node", "error", "retries", "thread"]
    assert len(lines) == 4
    assert all(letter.id in out for letter in letters)
    code, out = cli("dlq", "--json", "list", "--node", "write")
    assert code == 0
    assert [item["id"] for item in json.loads(out)] == [letters[2].id]


def test_show_discard_resolve_and_stats(letters: list[DeadLetter]) -> None:
    code, out = cli("dlq", "show", letters[0].id)
    assert code == 0
    assert "down #0" in out
    assert '{"n": 0}' in out
    assert cli("dlq", "discard", letters[0].id) == (0, f"{letters[0].id}: discarded\n")
    assert cli("dlq", "resolve", letters[1].id)[0] == 0
    code, out = cli("dlq", "--json", "stats")
    stats = json.loads(out)
    assert (stats["pending"], stats["resolved"], stats["discarded"], stats["total"]) == (1, 1, 1, 3)
    code, out = cli("dlq", "list", "--status", "pending")
    assert letters[2].id in out
    assert letters[0].id not in out


def test_purge_takes_an_age(letters: list[DeadLetter], store_url: str) -> None:
    cli("dlq", "discard", letters[0].id)
    assert cli("dlq", "--json", "purge", "--older-than", "0s") == (0, '{\n  "purged": 1\n}\n')
    assert parse_duration("7d").days == 7
    assert parse_duration("1.5h").total_seconds() == 5400


def test_usage_errors_are_clear(
    letters: list[DeadLetter], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("dlq", "show", "nope")[0] == 2
    assert "no dead letter 'nope'" in capsys.readouterr().err
    assert cli("dlq", "purge", "--older-than", "soon")[0] == 2
    assert "such as 7d" in capsys.readouterr().err
    assert cli("dlq", "discard", letters[0].id)[0] == 0
    assert cli("dlq", "discard", letters[0].id)[0] == 2  # already discarded
    assert "already discarded" in capsys.readouterr().err
    monkeypatch.delenv(STORE_ENV)
    assert cli("dlq", "list")[0] == 2
    assert STORE_ENV in capsys.readouterr().err


def test_passwords_never_reach_the_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = cli("dlq", "--store", "mongodb://admin:hunter2@db/x", "stats")
    assert code == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err
    assert "admin:***@db" in err


GRAPH_MODULE = """
import operator
import sqlite3
from typing import Annotated, Any, cast

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import START, StateGraph

from langgraph_resilience import DeadLetterQueue, ResilienceState, dead_letter

BROKEN = [True]
CALLS: list[str] = []


class State(ResilienceState, total=False):
    log: Annotated[list[str], operator.add]


def step(name: str) -> Any:
    def node(state: State) -> dict[str, Any]:
        CALLS.append(name)
        if name == "b" and BROKEN[0]:
            raise ConnectionError("b is down")
        return {{"log": [name]}}

    return node


def build() -> Any:
    builder = StateGraph(State)
    builder.add_node("a", step("a"))
    dlq = DeadLetterQueue.from_url({store!r})
    builder.add_node("b", step("b"), error_handler=cast(Any, dead_letter(dlq)))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    saver = SqliteSaver(sqlite3.connect({db!r}, check_same_thread=False))
    return builder.compile(checkpointer=saver)
"""


def test_replay_through_a_graph_named_on_the_command_line(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "cli_graph_app.py"
    module.write_text(
        textwrap.dedent(GRAPH_MODULE).format(store=store_url, db=str(tmp_path / "ckpt.db"))
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import cli_graph_app  # type: ignore[import-not-found]

    app: Any = cli_graph_app
    app.build().invoke({"log": []}, {"configurable": {"thread_id": "t"}})
    (letter,) = DeadLetterQueue.from_url(store_url).list()

    code, out = cli("dlq", "replay", letter.id, "--graph", "cli_graph_app:build")
    assert code == 1  # still broken: counted, rescheduled
    assert "failed again" in out
    assert DeadLetterQueue.from_url(store_url).get(letter.id).retry_count == 1  # type: ignore[union-attr]

    app.BROKEN[0] = False
    app.CALLS.clear()
    assert cli("dlq", "replay", letter.id, "--graph", "cli_graph_app:build") == (
        0,
        f"{letter.id}: resolved\n",
    )
    assert app.CALLS == ["b"]  # only the failed node ran again
    assert DeadLetterQueue.from_url(store_url).get(letter.id).status is LetterStatus.RESOLVED  # type: ignore[union-attr]
    assert cli("dlq", "replay", letter.id, "--graph", "nope_module:x")[0] == 2
    sys.modules.pop("cli_graph_app", None)
