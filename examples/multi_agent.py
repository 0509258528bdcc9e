"""The finished demo: a multi-agent research desk that keeps working through everything.

Five agents answer questions: a researcher gathers notes, an analyst judges them, a
writer drafts the answer, a supervisor reviews each draft and a publisher files the
answer in the team's knowledge base::

    START -> researcher --(fails)--> cached_research
                 |                         |
                 +-------> analyst <-------+
                              |
                             gate --(unsure)--> back to the analyst for revision
                              |
                           writer <--> supervisor     (at most 3 drafts: loop_guard)
                                           |
                                       publisher --(fails)--> dead letter, replayed later
                                           |
                                          END

The story, in order:

1. **Injected outages.** ``Chaos`` scripts two ``Outage`` windows on a ``FakeClock``:
   the researcher's model is down from t=0 s to t=90 s, the knowledge base from t=140 s
   to t=200 s. Every model call also takes a little (fake) time.
2. **Breakers and fallbacks.** Each agent has its own circuit breaker. The researcher's
   opens after three failures, turns calls away at once while open, half-opens after
   60 s and closes after two good trial calls; meanwhile ``fallback_to`` answers from
   cached research, and the writer says so (degraded mode).
3. **A verification gate.** An unsure analysis (confidence 0.40) is sent back to the
   analyst for revision before anyone builds on it.
4. **A bounded loop.** A picky supervisor sends every draft back; ``loop_guard`` stops
   the delegation at the writer's third visit and the latest draft is published.
5. **A dead letter and its replay.** The knowledge base is down, the publisher has no
   fallback: the failure is filed in the dead-letter queue (a SQLite file). Once the
   knowledge base is back, the retry worker replays it from the checkpoint where it
   failed: only the publisher runs again.
6. **A crash and a resume.** The demo runs a request in a child process
   (``python -m examples.multi_agent --child``) and kills it in the middle of the
   writer. This process finds the cut-off run in the SQLite checkpoint database and
   resumes it: the nodes that had finished do not run again.
7. **The health table** of the ``HealthMonitor`` that watched it all.

Everything is on the embedded defaults: checkpoints and dead letters are SQLite files,
in a temporary folder or in ``--workdir DIR`` (kept, for ``langgraph-resilience dlq``).
The agents are scripted fake chat models, so the story is the same on every run and
needs no network; ``--model provider:name`` (e.g. ``openai:gpt-4.1-mini``) puts a real
model behind every agent instead, through ``langchain.chat_models.init_chat_model``.

Run it with ``make demo`` or ``python -m examples.multi_agent [--workdir DIR] [--model M]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import Field

from langgraph_resilience import (
    BreakerClosed,
    BreakerEvent,
    BreakerHalfOpened,
    BreakerOpened,
    BreakerPolicy,
    BreakerState,
    CallRejected,
    CircuitBreaker,
    DeadLetterQueue,
    HealthMonitor,
    InMemoryBreakerStore,
    LoopPolicy,
    ResilienceState,
    ResilientSaver,
    VerifiedOutput,
    dead_letter,
    fallback_to,
    guard,
    ledger,
    loop_guard,
    verification_gate,
)
from langgraph_resilience.testing import Chaos, FakeClock, Faults, Outage

__all__ = [
    "Desk",
    "DeskState",
    "Models",
    "ScriptedModel",
    "build_desk",
    "main",
    "model_problems",
    "scripted_models",
]

# ---- the scenario --------------------------------------------------------------------

SEED = 7
"""The chaos seed: every run injects the same faults."""

SEARCH_OUTAGE = Outage(0, 90)
"""The researcher's model (its search API) is down from t=0 s to t=90 s."""
KNOWLEDGE_BASE_OUTAGE = Outage(140, 200)
"""The knowledge base the publisher writes to is down from t=140 s to t=200 s."""

LATENCY = {"researcher": 2.0, "analyst": 1.5, "writer": 1.0, "supervisor": 0.5}
"""Seconds each agent's model call takes (on the fake clock)."""
KNOWLEDGE_BASE_LATENCY = 0.5

BREAKER_POLICY = BreakerPolicy(failure_threshold=3, recovery_timeout=60, success_threshold=2)
"""Every agent's breaker: 3 failures in a row open it for 60 s; 2 good trial calls close it."""
MIN_CONFIDENCE = 0.75
"""The gate's bar: a less confident analysis goes back for revision."""
MAX_DRAFTS = 3
"""The supervisor may hand the draft to the writer this many times in all."""
CACHED_NOTES = "Notes from last week's research run (may be out of date)."

EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
"""The wall-clock moment the fake clock's t=0 stands for (dead letters are dated)."""

CRASH_REQUEST = 10
"""The request the child process runs, and is killed in."""
HOLD_IN = "writer"
"""The node in which the child waits to be killed."""
CHILD_TIMEOUT = 120.0
"""Seconds the parent waits for the child to reach the writer (and the child for its end)."""
CHILD_PREFIX = "child| "
"""How the child marks its progress lines, so the parent can tell them from anything else."""

QUESTIONS = {
    1: "Why is the sky blue?",
    2: "What causes ocean tides?",
    3: "How do vaccines train the immune system?",
    4: "Why do cats purr?",
    5: "How does GPS know where I am?",
    6: "What makes bread rise?",
    7: "How old is the universe?",
    8: "Write a slogan for our tide-tables app.",
    9: "Why do leaves change colour in autumn?",
    10: "How do solar panels make electricity?",
}
START_AT = {1: 0, 2: 10, 3: 20, 4: 30, 5: 100, 6: 110, 7: 120, 8: 130, 9: 150, 10: 210}
"""When each request arrives, in seconds on the clock."""
RETRY_WORKER_AT = 200.0
"""When the dead-letter retry worker runs (the knowledge base is back)."""

# ---- scripted agents -----------------------------------------------------------------

ANSWERS = {
    QUESTIONS[1]: "Air scatters blue light more than red, so the sky looks blue.",
    QUESTIONS[2]: "The Moon's gravity pulls the oceans into two bulges.",
    QUESTIONS[3]: "It shows the immune system a harmless copy of a germ.",
    QUESTIONS[4]: "Their voice-box muscles twitch, mostly when they are content.",
    QUESTIONS[5]: "It times signals from four or more satellites.",
    QUESTIONS[6]: "Yeast makes carbon dioxide; gluten traps it as bubbles.",
    QUESTIONS[7]: "The universe is about 13.8 billion years old.",
    QUESTIONS[9]: "Chlorophyll breaks down in the cold, showing the yellows beneath.",
    QUESTIONS[10]: "Light knocks electrons loose in silicon; they flow as a current.",
}
SLOGANS = [
    "Know the tide before you ride: tide tables for every beach, every day.",
    "Tide tables, simply.",
    "Catch the tide.",
]
REVIEWS = ["REVISE: too long", "REVISE: too plain", "REVISE: not catchy enough yet"]


def _analysis(content: str, confidence: float, *sources: str) -> str:
    return json.dumps({"content": content, "confidence": confidence, "sources": list(sources)})


UNSURE = "About 14 billion years, I think."


class ScriptedModel(BaseChatModel):
    """A fake chat model that answers from a script: no network, the same every run.

    The reply is that of the first rule whose cues all appear in the prompt (the text
    of the last message), else ``default``.
    """

    rules: list[tuple[tuple[str, ...], str]] = Field(default_factory=list)
    """``(cues, reply)`` pairs, tried in order."""
    default: str = ""
    """The reply when no rule matches."""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        prompt = messages[-1].text if messages else ""
        reply = next(
            (text for cues, text in self.rules if all(cue in prompt for cue in cues)),
            self.default,
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(reply))])


@dataclass(frozen=True)
class Models:
    """The chat model behind each agent (the analyst also revises its own work)."""

    researcher: BaseChatModel
    analyst: BaseChatModel
    writer: BaseChatModel
    supervisor: BaseChatModel


def scripted_models() -> Models:
    """The fake agents that tell the demo's story."""
    return Models(
        researcher=ScriptedModel(default="Three well-cited sources agree on the main point."),
        analyst=ScriptedModel(
            rules=[
                (
                    ("Revise", UNSURE),
                    _analysis(
                        "13.8 billion years, from the Planck satellite's map of the oldest light.",
                        0.9,
                        "Planck 2018 results",
                    ),
                ),
                ((QUESTIONS[7],), _analysis(UNSURE, 0.4)),
            ],
            default=_analysis("The notes agree on the main point.", 0.9, "research notes"),
        ),
        writer=ScriptedModel(
            rules=[
                *(
                    ((QUESTIONS[8], f"Draft number: {n}"), slogan)
                    for n, slogan in enumerate(SLOGANS, start=1)
                ),
                *(((question,), answer) for question, answer in ANSWERS.items()),
            ],
            default="A short, clear answer.",
        ),
        supervisor=ScriptedModel(
            rules=[((slogan,), review) for slogan, review in zip(SLOGANS, REVIEWS, strict=True)],
            default="APPROVE",
        ),
    )


# ---- a real model (--model provider:name) --------------------------------------------

PROVIDER_KEYS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "fireworks": "FIREWORKS_API_KEY",
    "google_genai": "GOOGLE_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistralai": "MISTRAL_API_KEY",
    "openai": "OPENAI_API_KEY",
    "perplexity": "PPLX_API_KEY",
    "together": "TOGETHER_API_KEY",
    "xai": "XAI_API_KEY",
}
"""The environment variable holding each provider's API key (others need none here)."""
PROVIDER_PACKAGES = {"azure_openai": "langchain-openai", "bedrock": "langchain-aws"}
"""Integration packages not named ``langchain-<provider>``."""


def model_problems(spec: str, environ: dict[str, str] | None = None) -> list[str]:
    """What stops ``--model spec`` from running, as instructions; empty when nothing does."""
    environ = dict(os.environ) if environ is None else environ
    provider, _, name = spec.partition(":")
    if not provider or not name:
        return [f"--model takes provider:name, such as openai:gpt-4.1-mini (got {spec!r})"]
    problems = []
    key = PROVIDER_KEYS.get(provider)
    if key and not environ.get(key):
        problems.append(f"set {key} to your {provider} API key")
    package = PROVIDER_PACKAGES.get(provider, f"langchain-{provider.replace('_', '-')}")
    missing = [
        dist
        for dist, module in (("langchain", "langchain"), (package, package.replace("-", "_")))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        problems.append(f"pip install {' '.join(missing)}")
    return problems


def real_models(spec: str) -> Models:
    """One real chat model behind every agent."""
    from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]

    model = cast(BaseChatModel, init_chat_model(spec, temperature=0))
    return Models(researcher=model, analyst=model, writer=model, supervisor=model)


# ---- the graph -----------------------------------------------------------------------


class DeskState(ResilienceState, total=False):
    """What the agents share. A request starts with just ``question``."""

    question: str
    notes: str
    analysis: dict[str, Any]
    """The analyst's output, ``VerifiedOutput`` fields as plain JSON."""
    caveat: str
    drafts: int
    draft: str
    approved: bool
    answer: str
    published: bool


DeskGraph = CompiledStateGraph[DeskState, None, DeskState, DeskState]

ROLES = {
    "researcher": "You are a researcher. Collect the key facts and name your sources.",
    "analyst": (
        "You are an analyst. Reply with JSON only: "
        '{"content": a one-sentence answer, "confidence": 0 to 1, "sources": [strings]}.'
    ),
    "reviser": (
        "You are an analyst. Revise the answer below: check it, make it precise and cite "
        'sources. Reply with JSON only: {"content": ..., "confidence": 0 to 1, "sources": [...]}.'
    ),
    "writer": "You are a writer. Answer the question in one clear sentence.",
    "supervisor": (
        "You are the supervisor. Reply APPROVE if the draft does the job, "
        "else REVISE: and one short reason."
    ),
}


@dataclass
class Desk:
    """The research desk: its graph and everything around it, for one process."""

    graph: DeskGraph
    clock: FakeClock
    chaos: Chaos
    breakers: dict[str, CircuitBreaker]
    dlq: DeadLetterQueue
    saver: ResilientSaver
    connection: sqlite3.Connection
    """The checkpoint database's connection (the saver does not close it)."""
    runs: Counter[str]
    """How many times each agent started, in this process."""
    published: list[str]
    """What reached the knowledge base, in order."""

    def close(self) -> None:
        """Close the checkpoint saver, the dead-letter queue and their SQLite files."""
        self.saver.close()
        self.dlq.close()
        self.connection.close()


def ask(model: BaseChatModel, role: str, prompt: str) -> str:
    reply = model.invoke([SystemMessage(ROLES[role]), HumanMessage(prompt)])
    return reply.text.strip()


def parse_analysis(text: str) -> dict[str, Any]:
    """The analyst's JSON reply; a real model's prose is taken as an unsure answer."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return {"content": text, "confidence": 0.5, "sources": []}
    try:
        confidence = min(max(float(data.get("confidence", 0.5)), 0.0), 1.0)
    except (TypeError, ValueError):
        confidence = 0.5
    sources = data.get("sources")
    return {
        "content": str(data.get("content", text)),
        "confidence": confidence,
        "sources": [str(s) for s in sources] if isinstance(sources, list) else [],
    }


def build_desk(
    models: Models,
    *,
    clock: FakeClock,
    checkpoints: Path,
    dead_letters: Path,
    say: Callable[[str], None],
    progress: Callable[[str], None] | None = None,
    hold_in: str | None = None,
) -> Desk:
    """The desk's graph on SQLite checkpoints, with chaos, breakers and a dead-letter queue.

    Args:
        models: the agents' chat models.
        clock: the fake clock every part reads.
        checkpoints: the SQLite file for LangGraph's checkpoints.
        dead_letters: the SQLite file for the dead-letter queue.
        say: prints a line of the story.
        progress: prints a line each time an agent finishes (the child's progress).
        hold_in: an agent that, when it starts, waits to be killed (the child's crash).
    """
    chaos = Chaos(seed=SEED, clock=clock)
    store = InMemoryBreakerStore()  # a fresh set of breakers for each desk
    breakers = {
        name: CircuitBreaker(name, BREAKER_POLICY, clock=clock, store=store)
        for name in (
            "researcher",
            "cached_research",
            "analyst",
            "writer",
            "supervisor",
            "publisher",
        )
    }

    def faults(latency: float, *outages: Outage) -> Faults:
        return Faults(latency=latency, outages=outages)

    researcher_model = chaos.chat_model(
        models.researcher, faults(LATENCY["researcher"], SEARCH_OUTAGE), name="search API"
    )
    analyst_model = chaos.chat_model(models.analyst, faults(LATENCY["analyst"]), name="analyst")
    writer_model = chaos.chat_model(models.writer, faults(LATENCY["writer"]), name="writer")
    supervisor_model = chaos.chat_model(
        models.supervisor, faults(LATENCY["supervisor"]), name="supervisor"
    )

    connection = sqlite3.connect(checkpoints, check_same_thread=False)
    saver = ResilientSaver(SqliteSaver(connection), name="desk", clock=clock)
    dlq = DeadLetterQueue.from_url(
        f"sqlite:///{dead_letters}", now=lambda: EPOCH + timedelta(seconds=clock.now())
    )
    runs: Counter[str] = Counter()
    published: list[str] = []

    @tool
    def knowledge_base(question: str, answer: str) -> str:
        """File an answer in the team's knowledge base."""
        published.append(answer)
        return f"filed: {question}"

    kb: BaseTool = chaos.tool(
        knowledge_base, faults(KNOWLEDGE_BASE_LATENCY, KNOWLEDGE_BASE_OUTAGE), name="knowledge base"
    )

    @contextmanager
    def agent(name: str) -> Iterator[None]:
        """Count the agent's start; report it and its end to the child's parent."""
        runs[name] += 1
        if name == hold_in and progress is not None:
            progress(f"{name} started")
            # Wait here until the parent kills this process; give up (and fail loudly)
            # only if nobody does.
            threading.Event().wait(CHILD_TIMEOUT)
            os._exit(3)
        yield
        if progress is not None:
            progress(f"{name} done")

    def researcher(state: DeskState) -> DeskState:
        with agent("researcher"):
            try:
                notes = ask(researcher_model, "researcher", state["question"])
            except ConnectionError as exc:
                say(f"researcher failed: {type(exc).__name__}: {exc}")
                raise  # to the breaker, then to fallback_to
            if breakers["researcher"].state is not BreakerState.CLOSED:
                say("researcher answered live: a good trial call")
            return {"notes": notes}

    def cached_research(state: DeskState) -> DeskState:
        with agent("cached_research"):
            say("fallback: cached_research stands in for the researcher")
            return {"notes": CACHED_NOTES}

    def analyst(state: DeskState) -> DeskState:
        with agent("analyst"):
            prompt = f"Question: {state['question']}\nNotes: {state['notes']}"
            return {"analysis": parse_analysis(ask(analyst_model, "analyst", prompt))}

    def revise(output: VerifiedOutput) -> dict[str, Any]:
        """The gate's verifier: the analyst looks again at an answer it was unsure of."""
        say(
            f"gate: the analysis has confidence {output.confidence:.2f}, below "
            f"{MIN_CONFIDENCE}: sent back to the analyst for revision"
        )
        prompt = f"Revise this answer.\nAnswer: {output.content}\nConfidence: {output.confidence}"
        revised = parse_analysis(ask(analyst_model, "reviser", prompt))
        cited = ", ".join(revised["sources"]) or "no sources"
        say(f"analyst revised it: confidence {revised['confidence']:.2f}, citing {cited}")
        return revised

    def flag_unverified(state: DeskState) -> DeskState:
        return {"caveat": "The analysis could not be verified."}

    def writer(state: DeskState) -> DeskState:
        with agent("writer"):
            number = state.get("drafts", 0) + 1
            prompt = (
                f"Question: {state['question']}\nAnalysis: {state['analysis']['content']}\n"
                f"Draft number: {number}"
            )
            draft = ask(writer_model, "writer", prompt)
            if ledger(state).degraded:  # the research came from a fallback: say so
                draft += " (from cached research)"
            if state.get("caveat"):
                draft += f" ({state['caveat']})"
            return {"draft": draft, "drafts": number}

    def supervisor(state: DeskState) -> DeskState:
        with agent("supervisor"):
            prompt = f"Question: {state['question']}\nDraft: {state['draft']}"
            verdict = ask(supervisor_model, "supervisor", prompt)
            approved = verdict.upper().startswith("APPROVE")
            if not approved:
                reason = verdict.splitlines()[0][:70] if verdict else "REVISE"
                say(f"supervisor: draft {state['drafts']} -> {reason}")
            return {"approved": approved}

    def next_step(state: DeskState) -> str:
        return "publisher" if state.get("approved") else "writer"

    def publisher(state: DeskState) -> DeskState:
        with agent("publisher"):
            try:
                kb.invoke({"question": state["question"], "answer": state["draft"]})
            except ConnectionError as exc:
                say(f"publisher failed: {type(exc).__name__}: {exc}")
                raise  # to the breaker, then to the dead-letter queue
            return {"answer": state["draft"], "published": True}

    builder = StateGraph(DeskState)
    builder.add_node(
        "researcher",
        guard(researcher, breaker=breakers["researcher"]),
        error_handler=cast(Any, fallback_to("cached_research")),
    )
    builder.add_node("cached_research", guard(cached_research, breaker=breakers["cached_research"]))
    builder.add_node("analyst", guard(analyst, breaker=breakers["analyst"]))
    builder.add_node(
        "gate",
        verification_gate(
            field="analysis",
            min_confidence=MIN_CONFIDENCE,
            verifier=revise,
            on_pass="writer",
            on_fail="flag_unverified",
        ),
    )
    builder.add_node("flag_unverified", flag_unverified)
    builder.add_node("writer", guard(writer, breaker=breakers["writer"]))
    builder.add_node("supervisor", guard(supervisor, breaker=breakers["supervisor"]))
    builder.add_node(
        "publisher",
        guard(publisher, breaker=breakers["publisher"]),
        error_handler=cast(Any, dead_letter(dlq)),  # no fallback: file it, replay it later
    )
    builder.add_edge(START, "researcher")
    builder.add_edge("researcher", "analyst")
    builder.add_edge("cached_research", "analyst")
    builder.add_edge("analyst", "gate")
    builder.add_edge("flag_unverified", "writer")
    builder.add_edge("writer", "supervisor")
    builder.add_conditional_edges(
        "supervisor",
        loop_guard(
            next_step,
            policy=LoopPolicy(max_visits_per_node={"writer": MAX_DRAFTS}),
            on_exceeded="publisher",
        ),
        ["writer", "publisher"],
    )
    builder.add_edge("publisher", END)
    return Desk(
        graph=builder.compile(checkpointer=saver),
        clock=clock,
        chaos=chaos,
        breakers=breakers,
        dlq=dlq,
        saver=saver,
        connection=connection,
        runs=runs,
        published=published,
    )


def thread(number: int) -> RunnableConfig:
    """Each request runs on its own thread, so its ledger starts empty."""
    return {"configurable": {"thread_id": f"request-{number}"}}


# ---- telling the story ---------------------------------------------------------------


def say(line: str) -> None:
    print(f"  {line}", flush=True)


def describe_breaker_event(event: BreakerEvent) -> str:
    name = event.breaker
    if isinstance(event, BreakerOpened):
        return (
            f"breaker {name!r} OPENED ({event.reason}): "
            f"calls are turned away for {event.retry_after:g}s"
        )
    if isinstance(event, BreakerHalfOpened):
        return f"breaker {name!r} HALF-OPEN ({event.reason}): a trial call goes through"
    if isinstance(event, BreakerClosed):
        return f"breaker {name!r} CLOSED ({event.reason}): back in service"
    if isinstance(event, CallRejected):
        return (
            f"breaker {name!r} turns the call away at once ({event.state}, retry in "
            f"{event.retry_after:g}s): not called"
        )
    return repr(event)


def at(clock: FakeClock) -> str:
    return f"t={clock.now():g}s"


def move_to(clock: FakeClock, seconds: float) -> None:
    """Move the fake clock forward to ``seconds`` (never back)."""
    clock.advance(max(0.0, seconds - clock.now()))


def fast_forward(clock: FakeClock, seconds: float, why: str) -> None:
    print(f"-- fast-forward to t={seconds:g}s ({why}); nothing sleeps --")
    move_to(clock, seconds)


def run_request(desk: Desk, number: int) -> DeskState:
    """One request, from its arrival time; prints what happened."""
    move_to(desk.clock, START_AT[number])
    print(f"request {number} at {at(desk.clock)}: {QUESTIONS[number]}", flush=True)
    final = cast(
        DeskState,
        desk.graph.invoke(DeskState(question=QUESTIONS[number]), thread(number), durability="sync"),
    )
    report(desk, number, final)
    return final


def report(desk: Desk, number: int, final: DeskState) -> None:
    """What the ledger and the dead-letter queue say about a finished request."""
    view = ledger(final)
    verdict = view.verdicts.get("gate")
    if verdict and verdict["rounds"]:
        result = "passed" if verdict["passed"] else "failed"
        say(
            f"gate {result} after {verdict['rounds']} revision (score {verdict['score']:.2f}) "
            f"-> {verdict['routed_to']}"
        )
    for limit in view.limits:
        say(
            f"loop_guard stops the delegation: {limit['node']} reached "
            f"{limit['limit']}={limit['maximum']} -> {limit['routed_to']}"
        )
    if final.get("published"):
        say(f'published: "{final["answer"]}"')
        return
    for letter in desk.dlq.list(thread_id=f"request-{number}"):
        due = letter.next_attempt_at
        when = f", retry due at t={(due - EPOCH).total_seconds():g}s" if due else ""
        say(f"no fallback: dead letter filed in dead_letters.db ({letter.error_code}{when})")
    say(f"not published; dead letters: {letters(desk.dlq)}")


def letters(dlq: DeadLetterQueue) -> str:
    stats = dlq.stats()
    return ", ".join(f"{n} {status}" for status, n in stats.items() if n and status != "total")


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# ---- the scenes ----------------------------------------------------------------------


def outages_and_breakers(desk: Desk) -> None:
    print()
    print("== 1. Chaos scripts the outages ==")
    print(f"Chaos(seed={SEED}) injects faults on the fake clock:")
    print(
        f"  the researcher's model (search API): down from t={SEARCH_OUTAGE.start:g}s "
        f"to t={SEARCH_OUTAGE.end:g}s"
    )
    print(
        f"  the publisher's knowledge base tool: down from t={KNOWLEDGE_BASE_OUTAGE.start:g}s "
        f"to t={KNOWLEDGE_BASE_OUTAGE.end:g}s"
    )
    fastest, slowest = min(LATENCY.values()), max(LATENCY.values())
    print(f"  and every model call takes {fastest:g}-{slowest:g}s of fake time.")
    print(
        f"Each agent has its own breaker: {BREAKER_POLICY.failure_threshold} failures in a row "
        f"open it for {BREAKER_POLICY.recovery_timeout:g}s, "
        f"{BREAKER_POLICY.success_threshold} good trial calls close it."
    )
    print()
    print("== 2. The search API is down: breakers and fallbacks ==")
    for number in (1, 2, 3, 4):
        run_request(desk, number)
    fast_forward(desk.clock, START_AT[5], f"the search API is back since t={SEARCH_OUTAGE.end:g}s")
    for number in (5, 6):
        run_request(desk, number)


def gate_and_loop(desk: Desk) -> None:
    print()
    print("== 3. A verification gate ==")
    run_request(desk, 7)
    print()
    print("== 4. A bounded delegation loop ==")
    run_request(desk, 8)


def dead_letter_and_replay(desk: Desk) -> None:
    print()
    print("== 5. A dead letter, replayed ==")
    run_request(desk, 9)
    fast_forward(
        desk.clock,
        RETRY_WORKER_AT,
        f"the knowledge base is back at t={KNOWLEDGE_BASE_OUTAGE.end:g}s",
    )
    print(
        f"retry worker at {at(desk.clock)}: dlq.replay_due(graph) replays the due letters, "
        "each from its checkpoint"
    )
    before = Counter(desk.runs)
    outcomes = desk.dlq.replay_due(desk.graph)
    ran = desk.runs - before
    final = cast(DeskState, desk.graph.get_state(thread(9)).values)
    skipped = [node for node in ledger(final).path if node in desk.runs and not ran[node]]
    say(f"{len(outcomes)} letter replayed: {', '.join(ran)} ran again")
    say(f"not run again: {', '.join(dict.fromkeys(skipped))} (their results are in the checkpoint)")
    if final.get("published"):
        say(f'published: "{final["answer"]}"')
    failed = [str(error) for error in outcomes.values() if error is not None]
    say(f"dead letters: {letters(desk.dlq)}" + (f" (failed again: {failed})" if failed else ""))


def crash_and_resume(desk: Desk, workdir: Path, model: str | None) -> None:
    print()
    print("== 6. A crash, and a resume ==")
    move_to(desk.clock, START_AT[CRASH_REQUEST])
    print(f"request {CRASH_REQUEST} at {at(desk.clock)}: {QUESTIONS[CRASH_REQUEST]}")
    say("it runs in a child process (python -m examples.multi_agent --child), killed mid-run:")
    code = run_child_and_kill(workdir, desk.clock.now(), model)
    say(f"the child was {describe_exit(code)} in the middle of the {HOLD_IN}")

    print("this process looks in checkpoints.db for runs cut off with work left:")
    runs = desk.saver.interrupted_runs(graph=desk.graph)
    for run in runs:
        say(f"interrupted run: thread {run.thread_id}, next node: {', '.join(run.next)}")
    name = f"request-{CRASH_REQUEST}"
    if name not in [run.thread_id for run in runs]:
        raise RuntimeError(f"the child's run {name!r} is not in the checkpoint database")
    finished = ledger(desk.graph.get_state(thread(CRASH_REQUEST)).values).path
    before = Counter(desk.runs)
    final = cast(DeskState, desk.saver.resume(desk.graph, name, durability="sync"))
    ran = desk.runs - before
    skipped = [node for node in finished if node in LATENCY and not ran[node]]
    say(f"resumed here: {', '.join(ran)} ran")
    say(f"not run again: {', '.join(skipped)} (their results came from the checkpoint)")
    if final.get("published"):
        say(f'published: "{final["answer"]}"')
    view = ledger(final)
    counts = ", ".join(f"{node} {view.visits_of(node)}" for node in dict.fromkeys(view.path))
    say(f"visits in the ledger: {counts}")


def run_child_and_kill(workdir: Path, start_at: float, model: str | None) -> int:
    """Run the crash request in a child process; kill it once it is inside ``HOLD_IN``.

    The child's progress lines are relayed as they come. Returns its exit status.
    """
    command = [sys.executable, "-m", "examples.multi_agent", "--child", "--workdir", str(workdir)]
    command += ["--start-at", f"{start_at:g}"]
    if model:
        command += ["--model", model]
    root = Path(__file__).resolve().parent.parent  # `-m examples...` runs from the repo root
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    other: list[str] = []
    with subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as child:
        watchdog = threading.Timer(CHILD_TIMEOUT, child.kill)  # in case it never gets there
        watchdog.start()
        try:
            held = False
            assert child.stdout is not None
            for line in child.stdout:
                if not line.startswith(CHILD_PREFIX):
                    other.append(line)
                    continue
                progress = line[len(CHILD_PREFIX) :].rstrip("\n")
                say(f"  child: {progress}")
                if progress == f"{HOLD_IN} started":
                    held = True
                    child.kill()  # a hard kill, mid-node: no cleanup, no last checkpoint
                    break
            code = child.wait()
        finally:
            watchdog.cancel()
    if not held:
        output = "".join(other).strip()
        raise RuntimeError(f"the child ended ({describe_exit(code)}) before the crash:\n{output}")
    return code


def child(workdir: Path, start_at: float, models: Models) -> int:
    """The child process: run the crash request until the parent kills it."""

    def progress(line: str) -> None:
        print(f"{CHILD_PREFIX}{line}", flush=True)

    clock = FakeClock()
    desk = build_desk(
        models,
        clock=clock,
        checkpoints=workdir / "checkpoints.db",
        dead_letters=workdir / "dead_letters.db",
        say=progress,
        progress=progress,
        hold_in=HOLD_IN,
    )
    clock.advance(start_at)  # after the chaos was made: its outage windows line up
    try:
        desk.graph.invoke(
            DeskState(question=QUESTIONS[CRASH_REQUEST]), thread(CRASH_REQUEST), durability="sync"
        )
    finally:
        desk.close()
    print(f"the child was never stopped in the {HOLD_IN}", file=sys.stderr)
    return 1


# ---- main ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.multi_agent",
        description="A multi-agent research desk that survives outages, bad answers, "
        "runaway loops, a dead dependency and a killed process.",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep the SQLite files here (default: a temporary folder)"
    )
    parser.add_argument(
        "--model",
        metavar="PROVIDER:NAME",
        help="a real chat model for every agent, e.g. openai:gpt-4.1-mini "
        "(needs langchain, the provider's package and its API key)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args([] if argv is None else list(argv))
    if args.child and args.workdir is None:
        parser.error("--child needs --workdir")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code (2 when ``--model`` cannot run)."""
    args = parse_args(argv)
    if args.model:
        problems = model_problems(args.model)
        if problems:
            print(f"--model {args.model} cannot run yet:", file=sys.stderr)
            for problem in problems:
                print(f"  - {problem}", file=sys.stderr)
            print("Without --model the demo runs on scripted fake models.", file=sys.stderr)
            return 2
    try:
        models = real_models(args.model) if args.model else scripted_models()
    except (ImportError, ValueError) as exc:  # an unknown provider or model name
        print(f"--model {args.model} cannot run: {exc}", file=sys.stderr)
        return 2
    if args.child:
        return child(args.workdir, args.start_at, models)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run_demo(args.workdir, models, args.model, kept=True)
    with tempfile.TemporaryDirectory(prefix="lgr-demo-") as tmp:
        return run_demo(Path(tmp), models, args.model, kept=False)


def run_demo(workdir: Path, models: Models, model: str | None, *, kept: bool) -> int:
    for name in ("checkpoints.db", "dead_letters.db"):  # a fresh story on every run
        for suffix in ("", "-wal", "-shm"):
            (workdir / f"{name}{suffix}").unlink(missing_ok=True)

    print("A multi-agent research desk: researcher -> analyst -> gate -> writer <-> supervisor")
    print("-> publisher. Everything is on the embedded defaults: LangGraph's checkpoints")
    print("(through ResilientSaver) and the dead letters are two SQLite files, checkpoints.db")
    if kept:
        print(f"and dead_letters.db, in {workdir} (kept: see the letters with")
        print(f"`langgraph-resilience dlq --store sqlite:///{workdir / 'dead_letters.db'} list`).")
    else:
        print("and dead_letters.db, in a temporary folder (--workdir DIR keeps them).")
    if model:
        print(f"Every agent is {model}, and time is a FakeClock that the demo moves forward.")
    else:
        print("The agents are scripted fake chat models (no network; --model provider:name")
        print("for a real one), and time is a FakeClock that the demo moves forward.")

    clock = FakeClock()
    desk = build_desk(
        models,
        clock=clock,
        checkpoints=workdir / "checkpoints.db",
        dead_letters=workdir / "dead_letters.db",
        say=say,
    )
    for breaker in desk.breakers.values():
        breaker.add_listener(lambda event: say(describe_breaker_event(event)))
    try:
        with HealthMonitor(clock=clock) as monitor:
            monitor.watch(*desk.breakers.values())
            outages_and_breakers(desk)
            gate_and_loop(desk)
            dead_letter_and_replay(desk)
            crash_and_resume(desk, workdir, model)
            print()
            print("== 7. Health: what the monitor saw ==")
            kinds = Counter(i.kind for i in desk.chaos.injected)
            print(
                f"Chaos injected {kinds['outage']} outage faults and {kinds['latency']} "
                "latencies; the HealthMonitor's table:"
            )
            print(monitor.table())
            if kept:  # for `langgraph-resilience status`, as a dashboard would read it
                monitor.save(workdir / "health.json")
                print(f"saved: `langgraph-resilience status {workdir / 'health.json'}`")
    finally:
        desk.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
