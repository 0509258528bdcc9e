"""The finished demo (``make demo``, last part) tells the whole story, in order, the same way
in-process and as ``python -m examples.multi_agent``: outages, breakers, fallbacks, the
gate, the bounded loop, a dead letter and its replay, a killed child process whose run is
resumed without re-running finished nodes, and the health table last. ``--model`` explains
what is missing and exits with code 2."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from examples import multi_agent
from langgraph_resilience import DeadLetterQueue, ledger
from langgraph_resilience.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent
NODES = ["researcher", "cached_research", "analyst", "gate", "writer", "supervisor", "publisher"]
BREAKERS = ["researcher", "cached_research", "analyst", "writer", "supervisor", "publisher"]
TABLE_INTRO = "the HealthMonitor's table:"


def normalise(text: str) -> str:
    """The output with the dead letter's random id masked."""
    return re.sub(r"\b[0-9a-f]{32}\b", "<letter-id>", text)


def run_in_process(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert multi_agent.main(list(argv)) == 0
    return out.getvalue()


def run_as_module(
    *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.multi_agent", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def from_scene_one(text: str) -> str:
    """The story without its introduction (which names the working folder)."""
    return text[text.index("== 1.") :]


def requests(story: str) -> dict[int, list[str]]:
    """The lines printed for each request, by request number (up to the next heading)."""
    blocks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in story.splitlines():
        match = re.match(r"request (\d+) at t=", line)
        if match:
            current = blocks.setdefault(int(match.group(1)), [])
        elif current is not None and line.startswith("  "):
            current.append(line.strip())
        else:
            current = None
    return blocks


@pytest.fixture(scope="module")
def story() -> str:
    """One run of the demo, in this process, as ``make demo`` runs it."""
    return run_in_process()


def test_the_story_is_told_in_order(story: str) -> None:
    milestones = [
        "== 1. Chaos scripts the outages ==",
        "researcher failed: ConnectionError: injected outage of 'search API' (0s to 90s)",
        "fallback: cached_research stands in for the researcher",
        "breaker 'researcher' OPENED (3 consecutive failures): calls are turned away for 60s",
        "breaker 'researcher' turns the call away at once (open, retry in 50s)",
        "-- fast-forward to t=100s",
        "breaker 'researcher' HALF-OPEN (recovery timeout of 60s elapsed)",
        "breaker 'researcher' CLOSED (2 successful trial calls)",
        "== 3. A verification gate ==",
        "gate: the analysis has confidence 0.40, below 0.75: sent back to the analyst",
        "analyst revised it: confidence 0.90, citing Planck 2018 results",
        "gate passed after 1 revision (score 0.90) -> writer",
        "== 4. A bounded delegation loop ==",
        "supervisor: draft 1 -> REVISE",
        "supervisor: draft 3 -> REVISE",
        "loop_guard stops the delegation: writer reached max_visits_per_node=3 -> publisher",
        'published: "Catch the tide."',
        "== 5. A dead letter, replayed ==",
        "publisher failed: ConnectionError: injected outage of 'knowledge base' (140s to 200s)",
        "dead letter filed in dead_letters.db (CONNECTION, retry due at t=185s)",
        "dead letters: 1 pending",
        "retry worker at t=200s: dlq.replay_due(graph)",
        "1 letter replayed: publisher ran again",
        "dead letters: 1 resolved",
        "== 6. A crash, and a resume ==",
        "child: researcher done",
        "child: analyst done",
        "child: writer started",
        "the child was killed",
        "interrupted run: thread request-10, next node: writer",
        "resumed here: writer, supervisor, publisher ran",
        "not run again: researcher, analyst (their results came from the checkpoint)",
        "== 7. Health: what the monitor saw ==",
        TABLE_INTRO,
    ]
    positions = [story.find(text) for text in milestones]
    missing = [m for m, p in zip(milestones, positions, strict=True) if p == -1]
    assert not missing, missing
    assert positions == sorted(positions), "the story is told out of order"
    assert "Traceback" not in story


def test_the_outage_is_absorbed_by_fallbacks_and_the_breaker(story: str) -> None:
    blocks = requests(story)
    assert sorted(blocks) == list(range(1, 11))
    for number in (1, 2, 3, 4):  # the search API is down: cached research, said so
        lines = blocks[number]
        assert "fallback: cached_research stands in for the researcher" in lines
        assert lines[-1].startswith("published:")
        assert lines[-1].endswith('(from cached research)"')
    for number in (1, 2, 3):  # each one a real failure...
        assert any(line.startswith("researcher failed: ConnectionError") for line in blocks[number])
    # ...until the breaker is open: the researcher is not even called
    assert not any(line.startswith("researcher failed") for line in blocks[4])
    assert any("turns the call away at once" in line for line in blocks[4])
    assert story.count("researcher failed") == 3
    assert story.count("turns the call away") == 1
    for number in range(5, 11):  # the search API is back: live research, no caveat
        assert not any("cached" in line for line in blocks[number]), blocks[number]
    assert any("answered live" in line for line in blocks[5])
    assert any("CLOSED" in line for line in blocks[6])


def test_the_gate_and_the_loop(story: str) -> None:
    blocks = requests(story)
    assert blocks[7] == [
        "gate: the analysis has confidence 0.40, below 0.75: sent back to the analyst for revision",
        "analyst revised it: confidence 0.90, citing Planck 2018 results",
        "gate passed after 1 revision (score 0.90) -> writer",
        'published: "The universe is about 13.8 billion years old."',
    ]
    reviews = [line for line in blocks[8] if line.startswith("supervisor:")]
    assert len(reviews) == multi_agent.MAX_DRAFTS  # then loop_guard, not the supervisor, ends it
    assert "loop_guard stops the delegation" in blocks[8][-2]
    assert story.count("sent back to the analyst") == 1
    assert story.count("loop_guard stops") == 1


def test_the_dead_letter_is_replayed_once_the_dependency_is_back(story: str) -> None:
    lines = story[story.index("== 5.") : story.index("== 6.")].splitlines()
    assert "  not published; dead letters: 1 pending" in lines
    replayed = lines.index("  1 letter replayed: publisher ran again")
    assert lines[replayed + 1] == (
        "  not run again: researcher, analyst, writer, supervisor "
        "(their results are in the checkpoint)"
    )
    assert lines[replayed + 2].startswith('  published: "Chlorophyll')
    assert lines[replayed + 3] == "  dead letters: 1 resolved"


def test_the_killed_run_resumes_without_rerunning_finished_nodes(story: str) -> None:
    scene = story[story.index("== 6.") : story.index("== 7.")]
    child = [line.strip() for line in scene.splitlines() if line.strip().startswith("child:")]
    assert child == ["child: researcher done", "child: analyst done", "child: writer started"]
    if os.name == "posix":
        assert "the child was killed by SIGKILL in the middle of the writer" in scene
    assert "resumed here: writer, supervisor, publisher ran" in scene
    assert "not run again: researcher, analyst (their results came from the checkpoint)" in scene
    assert (
        "visits in the ledger: researcher 1, analyst 1, gate 1, writer 1, supervisor 1, publisher 1"
    ) in scene
    assert 'published: "Light knocks electrons loose' in scene


def test_the_health_table_comes_last(story: str) -> None:
    table = story[story.index(TABLE_INTRO) + len(TABLE_INTRO) :].strip("\n")
    assert table.startswith("health at t=212s: 7 nodes (1 degraded), 6 breakers")
    lines = table.splitlines()
    sections = [lines.index(title) for title in ("nodes", "breakers", "alerts")]
    assert sections == sorted(sections)
    nodes = [line.split() for line in lines[sections[0] : sections[1]]]
    breakers = [line.split() for line in lines[sections[1] : sections[2]]]
    rows = {row[0]: row for row in nodes if row}
    assert set(NODES) <= set(rows), f"node names missing from the table: {sorted(rows)}"
    assert rows["researcher"][2] == "9"  # calls: 3 failed, 1 rejected, 5 live
    assert rows["publisher"][2] == "11"  # 9 in this process, the replay, the resume
    states = {row[0]: row[1] for row in breakers if len(row) > 1}
    assert {name: states.get(name) for name in BREAKERS} == dict.fromkeys(BREAKERS, "closed")
    alerts = "\n".join(lines[sections[2] :])
    assert "breaker 'researcher' opened" in alerts
    assert "dead letter from 'publisher'" in alerts
    # nothing after the table: the demo ends with it
    assert story.rstrip("\n").endswith(lines[-1])


def test_the_same_story_as_a_module_on_a_kept_workdir(story: str, tmp_path: Path) -> None:
    done = run_as_module("--workdir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"in {tmp_path} (kept" in done.stdout
    saved = f"saved: `langgraph-resilience status {tmp_path / 'health.json'}`\n"
    assert done.stdout.endswith(saved)
    told = done.stdout.removesuffix(saved)
    assert normalise(from_scene_one(told)) == normalise(from_scene_one(story))

    # The health table the demo ended with, read back by the CLI from the saved snapshot.
    status = io.StringIO()
    assert cli_main(["status", str(tmp_path / "health.json")], out=status) == 0
    table = status.getvalue()
    headline = next(line for line in told.splitlines() if line.startswith("health at t="))
    assert table.splitlines()[0].startswith(headline)
    assert "researcher" in table
    assert "dead letter from 'publisher'" in table

    dlq = DeadLetterQueue.from_url(f"sqlite:///{tmp_path / 'dead_letters.db'}")
    try:
        (letter,) = dlq.list()
        assert (letter.node, letter.thread_id, letter.status) == (
            "publisher",
            "request-9",
            "resolved",
        )
    finally:
        dlq.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "checkpoints.db")) as conn:
        saver = SqliteSaver(conn)
        for number in range(1, 11):
            latest = saver.get_tuple({"configurable": {"thread_id": f"request-{number}"}})
            assert latest is not None, number
            values = latest.checkpoint["channel_values"]
            assert values["published"] is True, number
        assert ledger(values).visits_of("writer") == 1  # request 10, across the crash

    # A second run on the same folder starts afresh, and tells the same story.
    again = run_in_process("--workdir", str(tmp_path)).removesuffix(saved)
    assert normalise(from_scene_one(again)) == normalise(from_scene_one(story))


# ---- --model ---------------------------------------------------------------------------

LANGCHAIN_OPENAI = all(importlib.util.find_spec(m) for m in ("langchain", "langchain_openai"))


def test_model_without_its_key_exits_2_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert multi_agent.main(["--model", "openai:gpt-4.1-mini"]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # nothing ran
    assert "--model openai:gpt-4.1-mini cannot run yet" in err
    assert "set OPENAI_API_KEY" in err
    if not LANGCHAIN_OPENAI:
        assert "pip install langchain langchain-openai" in err


@pytest.mark.skipif(LANGCHAIN_OPENAI, reason="langchain and langchain-openai are installed")
def test_model_without_langchain_exits_2_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-a-real-key")
    assert multi_agent.main(["--model", "openai:gpt-4.1-mini"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "pip install" in err
    assert "langchain-openai" in err
    assert "OPENAI_API_KEY" not in err  # the key is there: only the packages are missing


def test_model_needs_provider_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert multi_agent.main(["--model", "gpt-4.1-mini"]) == 2
    assert "--model takes provider:name, such as openai:gpt-4.1-mini" in capsys.readouterr().err


def test_model_problems_per_provider() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-ant"}
    assert not any("KEY" in p for p in multi_agent.model_problems("anthropic:claude", env))
    assert "set GROQ_API_KEY to your groq API key" in multi_agent.model_problems("groq:llama", {})
    # a local provider needs no key, only its package
    assert all("pip install" in p for p in multi_agent.model_problems("ollama:llama3", {}))


def test_model_error_as_a_module() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = run_as_module("--model", "openai:gpt-4.1-mini", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "set OPENAI_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


def test_unscripted_answers_still_make_a_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``--model`` meets: prose where JSON was asked for, a supervisor that never says
    APPROVE. The gate flags the analysis, the loop stays bounded, nothing breaks."""
    prose = multi_agent.ScriptedModel(default="Well, it depends on many things.")
    models = multi_agent.Models(researcher=prose, analyst=prose, writer=prose, supervisor=prose)
    desk = multi_agent.build_desk(
        models,
        clock=multi_agent.FakeClock(),
        checkpoints=tmp_path / "checkpoints.db",
        dead_letters=tmp_path / "dead_letters.db",
        say=multi_agent.say,
    )
    try:
        multi_agent.outages_and_breakers(desk)
        multi_agent.gate_and_loop(desk)
        multi_agent.dead_letter_and_replay(desk)
    finally:
        desk.close()
    out = capsys.readouterr().out
    assert out.count("gate failed after 1 revision (score 0.50) -> flag_unverified") == 9
    assert out.count("loop_guard stops the delegation") == 9
    assert out.count("(The analysis could not be verified.)") == 9
    assert "dead letters: 1 resolved" in out
    assert desk.runs["writer"] == 9 * multi_agent.MAX_DRAFTS
    assert len(desk.published) == 9
