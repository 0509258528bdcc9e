"""The research-team demo (``make demo``) tells its story, and its graph behaves, sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from examples import research_team
from examples.research_team import Agents, ResearchGraph, build_graph, researcher_breaker
from langgraph_resilience import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    CallRejected,
    CircuitBreaker,
    FakeClock,
    InMemoryBreakerStore,
)

# One request per row: seconds the clock moves before it, then what should hold after it.
# The research API is down until t=75 s and each failed call takes 10 s, so the third
# failure (t=30 s) opens the breaker; 60 s later two good trial calls close it.
SCENARIO = [
    # advance, researcher calls, breaker state, where the notes came from
    (0, 1, "closed", "cache"),  # ConnectionError, answered from the cache
    (0, 2, "closed", "cache"),
    (0, 3, "open", "cache"),  # third failure in a row: the breaker opens
    (0, 3, "open", "cache"),  # rejected: the researcher is NOT called
    (0, 3, "open", "cache"),
    (60, 4, "half_open", "live"),  # recovery timeout passed: first trial call works
    (0, 5, "closed", "live"),  # second trial call works: closed
    (0, 6, "closed", "live"),  # normal service
]
EXPECTED_EVENTS = [BreakerOpened, CallRejected, CallRejected, BreakerHalfOpened, BreakerClosed]


class Team:
    """A fresh demo graph with its clock, agents, breaker and recorded events."""

    def __init__(self, clock: FakeClock, store: InMemoryBreakerStore) -> None:
        self.clock = clock
        self.agents: Agents = research_team.scripted_agents(clock)
        self.breaker: CircuitBreaker = researcher_breaker(clock, store=store)
        self.events: list[BreakerEvent] = []
        self.breaker.add_listener(self.events.append)
        self.graph: ResearchGraph = build_graph(self.agents, self.breaker)

    def check(
        self, step: int, state: dict[str, Any], calls: int, breaker_state: str, source: str
    ) -> None:
        where = f"request {step}"
        assert self.agents.researcher.calls == calls, where
        assert self.breaker.state.value == breaker_state, where
        assert state["notes_source"] == source, where
        assert state["answer"], where
        if source == "cache":
            assert state["research_error"], where
        if step in (4, 5):
            assert state["research_error"].startswith("breaker open"), where


@pytest.fixture
def team(clock: FakeClock, store: InMemoryBreakerStore) -> Team:
    return Team(clock, store)


def test_demo_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    research_team.main()
    out = capsys.readouterr().out

    milestones = [
        "call #1 failed after 10 s (ConnectionError: research API unreachable)",
        "breaker OPENED (3 consecutive failures)",
        "NOT called (call count still 3)",
        "breaker rejected the call at once (it is open",
        "Fast-forward 60 s",
        "breaker HALF-OPEN (recovery timeout of 60s elapsed)",
        "breaker CLOSED (2 successful trial calls)",
        "call #6 answered",
        "The breaker is closed again",
    ]
    positions = [out.find(text) for text in milestones]
    assert -1 not in positions, [m for m, p in zip(milestones, positions, strict=True) if p == -1]
    assert positions == sorted(positions), "the story is told out of order"

    assert out.count("NOT called") == 2
    answers = [line for line in out.splitlines() if line.strip().startswith("answer")]
    assert len(answers) == len(research_team.QUESTIONS)
    assert all(line.split(": ", 1)[1].strip() for line in answers)
    assert "8 requests answered, 5 from cached research" in out
    assert "The researcher was called 6 times" in out
    assert "Traceback" not in out
    assert 30 <= len(out.splitlines()) <= 50


def test_demo_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    research_team.main()
    first = capsys.readouterr().out
    research_team.main()  # a second run in the same process starts from scratch
    assert capsys.readouterr().out == first


def test_open_breaker_skips_the_researcher_sync(team: Team) -> None:
    for step, (advance, calls, breaker_state, source) in enumerate(SCENARIO, start=1):
        team.clock.advance(advance)
        state = team.graph.invoke({"question": f"question {step}"})
        team.check(step, state, calls, breaker_state, source)
    assert [type(e) for e in team.events] == EXPECTED_EVENTS
    assert team.breaker.snapshot().rejected_calls == 2


async def test_open_breaker_skips_the_researcher_async(team: Team) -> None:
    for step, (advance, calls, breaker_state, source) in enumerate(SCENARIO, start=1):
        team.clock.advance(advance)
        state = await team.graph.ainvoke({"question": f"question {step}"})
        team.check(step, state, calls, breaker_state, source)
    assert [type(e) for e in team.events] == EXPECTED_EVENTS
    assert team.breaker.snapshot().rejected_calls == 2


def test_rejection_costs_no_time(team: Team) -> None:
    for _ in range(3):  # three failures open the breaker, each after a 10 s timeout
        team.graph.invoke({"question": "q"})
    assert team.clock.now() == 30
    team.graph.invoke({"question": "q"})
    assert team.clock.now() == 30  # rejected without waiting for the dead API
    assert team.agents.researcher.calls == 3
