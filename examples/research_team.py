"""A research team that keeps answering while its research API is down.

Three LLM agents work in a row: a researcher gathers notes, an analyst checks them and a
writer answers the user's question::

    START -> researcher -> analyst -> writer -> END
                 |            ^
                 | (fails)    |
                 +--> cached_research

The researcher is wrapped with ``guard(...)`` and a :class:`CircuitBreaker`. When the
research API goes down, each request still gets an answer from cached research (the
researcher's ``error_handler`` routes there), and after three failures in a row the
breaker opens: later requests skip the dead API at once instead of waiting for it to
time out. After 60 s the breaker lets a trial call through; two good trial calls close it.

The agents are scripted fake chat models from langchain-core, so the demo needs no
network and no API key, and time is a :class:`FakeClock`: the demo moves the clock
forward instead of waiting, and prints the same story on every run.

Run it with ``make demo`` or ``python -m examples.research_team``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langgraph.errors import NodeError
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from langgraph_resilience import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerPolicy,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    FakeClock,
    InMemoryBreakerStore,
    guard,
)

__all__ = [
    "Agents",
    "EventLog",
    "ResearchGraph",
    "ResearchState",
    "ScriptedChatModel",
    "build_graph",
    "main",
    "researcher_breaker",
    "scripted_agents",
]

# ---- the scenario --------------------------------------------------------------------

QUESTIONS = [
    "Why is the sky blue?",
    "How do vaccines train the immune system?",
    "What causes ocean tides?",
    "How do solar panels make electricity?",
    "Why do cats purr?",
    "How does GPS know where I am?",
    "What makes bread rise?",
    "Why do leaves change colour in autumn?",
]

# The writer's scripted replies, one per question above, in order.
ANSWERS = [
    "Air scatters blue light more than red, so the sky glows blue.",
    "They show it a harmless look-alike of a germ to remember.",
    "The Moon's gravity pulls the oceans into two bulges.",
    "Light frees electrons in silicon, and they flow as a current.",
    "Quick twitches of the voice-box muscles, mostly when content.",
    "It times signals from four or more satellites to fix its spot.",
    "Yeast makes carbon dioxide, and gluten traps it as bubbles.",
    "Chlorophyll fades in the cold, revealing the yellows beneath.",
]

RESEARCH_NOTES = ["Found three recent, well-cited sources that agree on the main point."]
ANALYST_NOTES = ["The sources agree; no caveats needed for a short answer."]
CACHED_NOTES = "Cached notes from the last good research run (may be out of date)."

OUTAGE_ENDS_AT = 75.0
"""The research API is unreachable from t=0 until this clock reading (seconds)."""
CONNECT_TIMEOUT = 10.0
"""Seconds a call to the unreachable research API hangs before it fails."""
RESEARCH_LATENCY = 2.0
"""Seconds a healthy research call takes."""
REQUEST_GAP = 5.0
"""Seconds between one request's answer and the next request."""
REQUESTS_BEFORE_WAIT = 5
"""Requests sent during the outage, before the demo fast-forwards the clock."""

RECOVERY_TIMEOUT = 60.0
"""Seconds the researcher's breaker stays open before it lets a trial call through."""
RESEARCHER_POLICY = BreakerPolicy(
    failure_threshold=3, recovery_timeout=RECOVERY_TIMEOUT, success_threshold=2
)
"""Open after 3 failures in a row, stay open 60 s, close after 2 successful trial calls."""


# ---- state ---------------------------------------------------------------------------


class ResearchState(TypedDict, total=False):
    """What the agents share. A request starts with just ``question``."""

    question: str
    notes: str
    notes_source: Literal["live", "cache"]
    """Where ``notes`` came from: the research API, or the cache (degraded mode)."""
    research_error: str
    """Why live research was skipped, when it was."""
    analysis: str
    answer: str


# ---- scripted LLMs -------------------------------------------------------------------


class ScriptedChatModel(FakeListChatModel):
    """langchain-core's fake chat model, plus a call counter, latency and an outage.

    Replies cycle through ``responses``. Time is simulated: a call moves ``clock``
    forward instead of sleeping. While ``clock.now() < down_until`` every call hangs
    for ``connect_timeout`` seconds and then raises ``ConnectionError``.
    """

    clock: FakeClock
    latency: float = 0.0
    down_until: float = 0.0
    connect_timeout: float = CONNECT_TIMEOUT
    outage_message: str = "research API unreachable"
    """The ``ConnectionError`` message during the outage."""
    calls: int = 0
    """How many times the model was called (failed calls included)."""
    disable_streaming: bool | Literal["tool_calling"] = True
    """Always go through ``_call``, even under ``stream_mode="messages"``."""

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.clock.now() < self.down_until:
            self.clock.advance(self.connect_timeout)
            raise ConnectionError(self.outage_message)
        self.clock.advance(self.latency)
        return super()._call(*args, **kwargs)


@dataclass(frozen=True)
class Agents:
    """The chat model behind each agent."""

    researcher: ScriptedChatModel
    analyst: ScriptedChatModel
    writer: ScriptedChatModel


def scripted_agents(
    clock: FakeClock,
    *,
    outage_ends_at: float = OUTAGE_ENDS_AT,
    answers: Sequence[str] = ANSWERS,
) -> Agents:
    """Fake agents whose research API is down until ``outage_ends_at`` on ``clock``."""
    return Agents(
        researcher=ScriptedChatModel(
            responses=RESEARCH_NOTES,
            clock=clock,
            latency=RESEARCH_LATENCY,
            down_until=outage_ends_at,
        ),
        analyst=ScriptedChatModel(responses=ANALYST_NOTES, clock=clock),
        writer=ScriptedChatModel(responses=list(answers), clock=clock),
    )


def researcher_breaker(
    clock: FakeClock, *, store: InMemoryBreakerStore | None = None
) -> CircuitBreaker:
    """The researcher's breaker. Pass a fresh ``store`` to get a fresh breaker: breakers
    are shared by name within a store."""
    return CircuitBreaker("researcher", RESEARCHER_POLICY, clock=clock, store=store)


# ---- nodes ---------------------------------------------------------------------------


def research_prompt(state: ResearchState) -> list[BaseMessage]:
    return [
        SystemMessage("You are a researcher. Collect facts and sources."),
        HumanMessage(state["question"]),
    ]


def analysis_prompt(state: ResearchState) -> list[BaseMessage]:
    return [
        SystemMessage("You are an analyst. Check the notes and pick what matters."),
        HumanMessage(f"Question: {state['question']}\nNotes: {state['notes']}"),
    ]


def writing_prompt(state: ResearchState) -> list[BaseMessage]:
    return [
        SystemMessage("You are a writer. Answer in one clear sentence."),
        HumanMessage(f"Question: {state['question']}\nAnalysis: {state['analysis']}"),
    ]


def to_notes(reply: AIMessage) -> ResearchState:
    return {"notes": reply.text, "notes_source": "live"}


def to_analysis(reply: AIMessage) -> ResearchState:
    return {"analysis": reply.text}


def to_answer(reply: AIMessage) -> ResearchState:
    return {"answer": reply.text}


def cached_research(state: ResearchState) -> ResearchState:
    """The backup for the researcher: older notes from a cache, no API call."""
    return {"notes": CACHED_NOTES, "notes_source": "cache"}


def use_cached_research(
    state: ResearchState, error: NodeError
) -> Command[Literal["cached_research"]]:
    """The researcher's error handler: note why, and carry on from the cache.

    LangGraph injects the failure as ``error`` (the parameter name and the ``NodeError``
    annotation are what it looks for). Returning a ``Command`` with ``goto`` keeps the
    run going; the failed node's own edges are not followed.
    """
    return Command(goto="cached_research", update={"research_error": describe_error(error.error)})


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, CircuitOpenError):
        return f"breaker {exc.state.replace('_', '-')}, retry in {exc.retry_after:g} s"
    return f"{type(exc).__name__}: {exc}"


def agent(
    prompt: Callable[[ResearchState], list[BaseMessage]],
    model: BaseChatModel,
    parse: Callable[[AIMessage], ResearchState],
) -> Runnable[ResearchState, ResearchState]:
    """An LLM agent as a node: state -> prompt -> model -> state update.

    A runnable chain, so the graph runs it with ``invoke`` or ``ainvoke`` alike.
    """
    return RunnableLambda(prompt) | model | RunnableLambda(parse)


ResearchGraph = CompiledStateGraph[ResearchState, None, ResearchState, ResearchState]


def build_graph(agents: Agents, breaker: CircuitBreaker) -> ResearchGraph:
    """researcher -> analyst -> writer, with the researcher behind ``breaker``."""
    builder = StateGraph(ResearchState)
    builder.add_node(
        "researcher",
        guard(agent(research_prompt, agents.researcher, to_notes), breaker=breaker),
        # cast: LangGraph 1.2's add_node overloads do not list the (state, error: NodeError)
        # handler shape, though that is the documented way to receive the error.
        error_handler=cast(Any, use_cached_research),
    )
    builder.add_node("cached_research", cached_research)
    builder.add_node("analyst", agent(analysis_prompt, agents.analyst, to_analysis))
    builder.add_node("writer", agent(writing_prompt, agents.writer, to_answer))
    builder.add_edge(START, "researcher")
    builder.add_edge("researcher", "analyst")
    builder.add_edge("cached_research", "analyst")
    builder.add_edge("analyst", "writer")
    builder.add_edge("writer", END)
    return builder.compile()


# ---- the demo ------------------------------------------------------------------------


class EventLog:
    """A breaker listener that keeps each event as a sentence, to print after a request."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, event: BreakerEvent) -> None:
        self.lines.append(describe_event(event))

    def drain(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def describe_event(event: BreakerEvent) -> str:
    if isinstance(event, BreakerOpened):
        return (
            f"breaker OPENED ({event.reason}): the researcher is skipped "
            f"for the next {event.retry_after:g} s"
        )
    if isinstance(event, BreakerHalfOpened):
        return f"breaker HALF-OPEN ({event.reason}): this request went through as a trial"
    if isinstance(event, BreakerClosed):
        return f"breaker CLOSED ({event.reason}): the researcher is back in service"
    if isinstance(event, CallRejected):
        return (
            f"breaker rejected the call at once (it is {event.state}, "
            f"retry in {event.retry_after:g} s)"
        )
    return repr(event)


def describe_research(state: ResearchState, calls_before: int, calls: int, took: float) -> str:
    """What happened to the researcher during one request, judged by its call counter."""
    if calls == calls_before:
        return (
            f"NOT called (call count still {calls}): skipped in {took:g} s, "
            f"no {CONNECT_TIMEOUT:g} s timeout"
        )
    if state["notes_source"] == "live":
        return f"call #{calls} answered in {took:g} s"
    return f"call #{calls} failed after {took:g} s ({state['research_error']})"


def main() -> None:
    clock = FakeClock()
    agents = scripted_agents(clock)
    breaker = researcher_breaker(clock, store=InMemoryBreakerStore())
    events = EventLog()
    breaker.add_listener(events)
    graph = build_graph(agents, breaker)
    wait = RECOVERY_TIMEOUT

    print("Research team: researcher -> analyst -> writer (scripted fake LLMs, no network).")
    print("A circuit breaker guards the researcher: 3 failures in a row open it, it stays")
    print(f"open {wait:g} s, then 2 successful trial calls close it. When research fails, the")
    print("team answers from cached research. Time is a FakeClock: the demo fast-forwards")
    print(f"it instead of really waiting {wait:g} s, so the whole story runs in a blink.")
    print()
    print(f"== The research API goes down at t=0 s and stays down until t={OUTAGE_ENDS_AT:g} s ==")

    live = cached = 0
    for number, question in enumerate(QUESTIONS, start=1):
        if number == REQUESTS_BEFORE_WAIT + 1:
            print()
            print(f"== Fast-forward {wait:g} s with FakeClock.advance({wait:g}): nothing sleeps ==")
            clock.advance(wait)
        elif number > 1:
            clock.advance(REQUEST_GAP)

        calls_before, started = agents.researcher.calls, clock.now()
        print(f"Request {number} at t={started:g} s: {question}")
        state = cast(ResearchState, graph.invoke({"question": question}))
        calls, took = agents.researcher.calls, clock.now() - started

        print(f"  researcher: {describe_research(state, calls_before, calls, took)}")
        for line in events.drain():
            print(f"  {line}")
        if state["notes_source"] == "live":
            live += 1
            print(f"  answer: {state['answer']}")
        else:
            cached += 1
            print(f"  answer (from cached research): {state['answer']}")

    snap = breaker.snapshot()
    print()
    print(f"== Summary: {live + cached} requests answered, {cached} from cached research ==")
    print(
        f"The researcher was called {agents.researcher.calls} times: "
        f"{snap.failed_calls} failed after a {CONNECT_TIMEOUT:g} s timeout each, the rest worked."
    )
    print(f"While open, the breaker turned away {snap.rejected_calls} requests in 0 s each,")
    print(f"instead of letting each one wait {CONNECT_TIMEOUT:g} s for a dead API.")
    print(f"The breaker is {snap.state} again: service is back to normal.")


if __name__ == "__main__":
    main()
