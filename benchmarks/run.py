"""``make bench``: closed-breaker overhead, guard's cost per node-step, fail-fast, the
ledger's cost per node-step, the dead-letter queue's ``put`` against the raw drivers,
``ResilientSaver``'s cost per step, failover latency and lost checkpoints, and what
watching costs (the health monitor per node-step, decisions with tracing off).

Usage::

    .venv/bin/python -m benchmarks.run            # the full run, about 7-8 minutes
    .venv/bin/python -m benchmarks.run --quick    # a smoke test, about 30 seconds
    .venv/bin/python -m benchmarks.run --parts 1  # only the overhead table

Prints Markdown tables and writes ``benchmarks/results.json``. Read medians and
ratios, not absolute times: the numbers move with the load on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from .dead_letters import GOAL_DLQ_RATIO, MEMORY_WAYS, run_dead_letters
from .fail_fast import run_fail_fast
from .graph_step import run_graph_step
from .ledger import NODES as NODES_BREAKDOWN
from .ledger import run_ledger
from .monitoring import run_monitoring
from .overhead import run_overhead
from .saver import BACKEND_LABELS as SAVER_LABELS
from .saver import GOAL_LOST, GOAL_MIRROR_PCT, GOAL_PASS_PCT, VARIANT_LABELS, run_saver

RESULTS = Path(__file__).with_name("results.json")

# Overhead ns/call from /work/shared/notes/anchors.md section 2 (run 1, an earlier
# session on a similar machine), printed beside this run's figures for reference.
ANCHORS = {
    "sync": {
        "circuitbreaker": 529,
        "purgatory": 871,
        "aiobreaker": 1112,
        "pybreaker.call": 1190,
        "pybreaker.decorator": 1337,
    },
    "async": {"circuitbreaker": 665, "aiobreaker": 1440, "purgatory": 1469},
}

GOAL_RATIO = 1.0  # our closed-breaker overhead / the fastest peer's
GOAL_STEP_PCT = 2.0  # guard's cost per node-step, % of an unguarded step
GOAL_FAIL_FAST = 20.0  # wall time of case A / case D
GOAL_LEDGER_PCT = 5.0  # the ledger's cost per node-step, % of a guarded step without it
GOAL_MONITOR_PCT = 5.0  # the health monitor's cost per node-step, % of a guarded step
GOAL_TRACING_OFF_NS = 1000.0  # one decision's annotate + publish with tracing off and no listener
# GOAL_DLQ_RATIO (1.5, in dead_letters.py): DeadLetterQueue.put / the raw driver's write
# GOAL_PASS_PCT (3), GOAL_MIRROR_PCT (15), GOAL_LOST (0), in saver.py: ResilientSaver's
# cost per step over the raw saver, pass-through and mirrored; checkpoints lost

PACKAGES = [
    "langgraph",
    "langchain-core",
    "langgraph-resilience",
    "pybreaker",
    "circuitbreaker",
    "aiobreaker",
    "purgatory",
]


def _say(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def _table(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _environment() -> dict[str, Any]:
    versions = {name: _version(name) for name in PACKAGES}
    return {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "versions": versions,
    }


# ---- reports


def report_overhead(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    out = []
    goals = []
    for mode in ("sync", "async"):
        part = res[mode]
        rows = part["rows"]
        fastest = part["fastest_peer"]
        table = []
        for key, r in rows.items():
            ns = r["ns_per_call"]
            ratio = r.get("ratio_to_fastest_peer")
            anchor = ANCHORS[mode].get(key)
            table.append(
                [
                    r["label"],
                    f"{ns['median']:,.0f}",
                    f"{ns['min']:,.0f}",
                    "-" if r["group"] == "baseline" else f"**{r['overhead_ns']:,.0f}**",
                    "-" if r["group"] == "baseline" else f"{r['overhead_ns_paired']:,.0f}",
                    f"{ratio:.2f}x" if ratio is not None else "",
                    f"{anchor:,}" if anchor is not None else "",
                ]
            )
            if key in ("ours.call", "ours.decorator") and ratio is not None:
                goals.append((f"{mode} {key}: <= {GOAL_RATIO:.1f}x {fastest}", ratio <= GOAL_RATIO))
        header = [
            f"{mode.capitalize()} (no-op, closed breaker)",
            "median ns/call",
            "min ns/call",
            "overhead ns",
            "paired overhead ns",
            f"ours / {fastest}",
            "anchor overhead ns",
        ]
        out.append(f"**{mode.capitalize()}** ({res['repeats']} interleaved repeats)\n")
        out.append(_table(header, table) + "\n")
    return "\n".join(out), goals


def report_graph(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    rows = []
    goals = []
    for key, label, situ_key in (
        ("sync_invoke", "sync `invoke`", "sync"),
        ("async_ainvoke", "async `ainvoke`", "async"),
    ):
        r = res[key]
        situ = res["in_situ"][situ_key]
        situ_pct = 100 * situ["guard_ns"] / 1000 / r["step_us_unguarded"]
        rows.append(
            [
                label,
                f"{r['invoke_us_unguarded']:,.0f}",
                f"{r['invoke_us_guarded']:,.0f}",
                f"{r['step_us_unguarded']:.0f}",
                f"**{r['added_us_per_step']:.2f}**",
                f"**{r['added_pct_of_step']:.2f} %**",
                " / ".join(f"{x:.1f}" for x in r["added_us_per_step_by_round"]),
                f"{situ['guard_ns'] / 1000:.2f} ({situ_pct:.2f} %)",
            ]
        )
        goals.append(
            (
                f"guard {label}: <= {GOAL_STEP_PCT:g} % per step",
                r["added_pct_of_step"] <= GOAL_STEP_PCT,
            )
        )
        goals.append(
            (f"guard {label}, in situ: <= {GOAL_STEP_PCT:g} % per step", situ_pct <= GOAL_STEP_PCT)
        )
    header = [
        f"{res['nodes']}-node graph",
        "unguarded µs/invoke",
        "guarded µs/invoke",
        "µs/step",
        "added µs/step",
        "% of step",
        "added µs/step by round",
        "in situ µs/node (% of step)",
    ]
    text = (
        f"{res['rounds']} rounds x {res['invocations_per_round']} interleaved invocations "
        "of each graph. Added = median of all guarded invocations - median of all unguarded "
        "ones, per step; in situ = the guard wrapper timed from inside the run.\n\n"
        + _table(header, rows)
        + "\n"
    )
    return text, goals


def report_monitoring(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    m, off = res["monitor"], res["tracing_off"]
    rows = [
        [
            "sync `invoke`, 10 guarded nodes",
            f"{m['invoke_us_unguarded']:,.0f}",
            f"{m['invoke_us_guarded']:,.0f}",
            f"{m['invoke_us_guarded_monitored']:,.0f}",
            f"**{m['added_us_per_step']:.2f}**",
            f"**{m['added_pct_of_guarded_step']:.2f} %**",
        ]
    ]
    header = [
        "graph",
        "unguarded µs/invoke",
        "guarded µs/invoke",
        "guarded + monitor µs/invoke",
        "monitor µs/step",
        "% of a guarded step",
    ]
    off_rows = [
        ["an empty function call", f"{off['empty_call_ns']:.0f}"],
        ["`annotate(name, data)`, no run", f"{off['annotate_ns']:.0f}"],
        ["`publish(event)`, no run, no listener", f"{off['publish_ns']:.0f}"],
    ]
    per_decision = off["publish_ns"]  # what every decision calls (it annotates, then notifies)
    goals = [
        (
            f"health monitor: <= {GOAL_MONITOR_PCT:g} % of a guarded step",
            m["added_pct_of_guarded_step"] <= GOAL_MONITOR_PCT,
        ),
        (
            f"a decision with tracing off: <= {GOAL_TRACING_OFF_NS:g} ns",
            per_decision <= GOAL_TRACING_OFF_NS,
        ),
    ]
    text = (
        f"{m['pairs']} interleaved pairs: the same guarded graph with and without a "
        "`HealthMonitor` subscribed; the unguarded graph for LangGraph's own cost.\n\n"
        + _table(header, rows)
        + "\n\nWith tracing off, what a decision costs (best of repeats, ns per call):\n\n"
        + _table(["call", "ns"], off_rows)
        + "\n"
    )
    return text, goals


def report_fail_fast(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    rows = []
    for key, case in res["cases"].items():
        brk = case.get("breaker")
        rows.append(
            [
                f"{key}: {case['label']}",
                f"{case['total_seconds']:.2f}",
                f"{case['first_run_seconds'] * 1000:.0f}",
                f"{case['last_run_ms']:.2f}",
                str(case["dependency_entered"]),
                ", ".join(f"{n} x{c}" for n, c in case["errors"].items()),
                f"{brk['state']}, opened {brk['times_opened']}x" if brk else "-",
                f"**{case['speedup_vs_A']:.1f}x**" if "speedup_vs_A" in case else "1x",
            ]
        )
    header = [
        f"{res['runs']} runs, hung dependency, T={res['timeout_seconds']:g}s",
        "total s",
        "first run ms",
        "last run ms",
        "dependency entered",
        "errors",
        "breaker at end",
        "A / case",
    ]
    # D is "the same plus guard": A's LangGraph timeout and RetryPolicy kept, and guard
    # (breaker + its own deadline) added. B shows why guard needs its own deadline:
    # LangGraph's timeout cancels the node like a sibling, which guard does not count.
    c = res["cases"]["C"]["speedup_vs_A"]
    d = res["cases"]["D"]["speedup_vs_A"]
    goals = [
        (
            f"fail-fast A/D >= {GOAL_FAIL_FAST:g}x (A plus guard with its deadline)",
            d >= GOAL_FAIL_FAST,
        ),
        (
            f"fail-fast A/C >= {GOAL_FAIL_FAST:g}x (guard's deadline instead of LangGraph's)",
            c >= GOAL_FAIL_FAST,
        ),
    ]
    return _table(header, rows) + "\n", goals


def report_ledger(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    rows = []
    goals = []
    for r in res["rows"].values():
        us = r["invoke_us"]
        plain = us.get("plain")
        rows.append(
            [
                r["label"],
                str(r["nodes"]),
                f"{us['guarded']:,.0f}",
                f"{us['ledger']:,.0f}",
                f"{r['step_us_guarded']:.0f}",
                f"**{r['ledger_us_per_step']:.2f}**",
                f"**{r['ledger_pct_of_step']:.2f} %**",
                " / ".join(f"{x:.1f}" for x in r["ledger_pct_of_step_by_round"]),
                "-" if plain is None else f"{plain:,.0f}",
                "-" if plain is None else f"{r['guard_us_per_step']:.2f}",
            ]
        )
        goals.append(
            (
                f"ledger {r['label']}, {r['nodes']} nodes: <= {GOAL_LEDGER_PCT:g} % per step",
                r["ledger_pct_of_step"] <= GOAL_LEDGER_PCT,
            )
        )
    header = [
        "row",
        "nodes",
        "A: guarded µs/invoke",
        "B: + ledger µs/invoke",
        "A µs/step",
        "ledger µs/step",
        "% of A's step",
        "% by round",
        "C: plain µs/invoke",
        "guard µs/step (A - C)",
    ]
    first = next(iter(res["rows"].values()))
    text = (
        f"Rounds x interleaved groups per row: {first['rounds']} x "
        f"{first['invocations_per_round']} for the first (see results.json for each). "
        "Ledger = (median of all B invocations - median of all A ones) / nodes; A = every "
        "node `guard(node)`, state without `ResilienceState`; B = the same with it; C = "
        "plain nodes. Checkpointer rows use a fresh `thread_id` per invocation.\n\n"
        + _table(header, rows)
        + "\n"
    )
    b = res.get("breakdown")
    if b is not None:
        step = b["step_us_guarded"]
        parts = [
            ("LangGraph: one more state key written every step (E - C)", "framework", None),
            (
                "guard's ledger path, LangGraph carrying its write ((B' - A) - (E - C))",
                "guard",
                b["in_situ_guard_us_per_step"],
            ),
            ("`merge_ledgers` (B - B')", "merge", b["in_situ_merge_us_per_call"]),
            ("**total: the ledger (B - A)**", "ledger", None),
        ]
        brows = [
            [
                name,
                f"{b[key + '_us_per_step']:.2f}",
                f"{100 * b[key + '_us_per_step'] / step:.2f} %",
                "" if situ is None else f"{situ:.2f}",
            ]
            for name, key, situ in parts
        ]
        text += (
            f"\nWhere it goes (sync `invoke`, {NODES_BREAKDOWN} nodes, no checkpointer; "
            f"{b['groups']} interleaved groups of 5 graphs, A = {step:.0f} µs/step; "
            f"in situ over {b['in_situ_invocations']} pairs):\n\n"
            + _table(["part", "µs/step", "% of A's step", "in situ µs/step"], brows)
            + "\n"
        )
    return text, goals


MEMORY_LABELS = {
    "put": "`DeadLetterQueue.put` on the in-memory store",
    "prepare": "`_prepare`: redact + snapshot input and metadata, `model_copy`",
    "redact": "the default redactor on the input",
    "redact_empty": "the same on `{}` (its fixed cost per call)",
    "snapshot": "`snapshot` of the redacted input",
    "dump_json": "the stored letter's `model_dump_json()`",
    "validate_json": "`DeadLetter.model_validate_json` of it (a read-back)",
}


def _ops(ops: dict[str, dict[str, float]]) -> str:
    """``4 / 3 statements, 6 / 2 WAL pages``: put / raw per write, for every unit."""
    return ", ".join(f"{v:,.4g} / {ops['raw'][unit]:,.4g} {unit}" for unit, v in ops["put"].items())


def report_dead_letters(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    rows = []
    goals = []
    first = None
    for key, b in res["backends"].items():
        if "skipped" in b:
            rows.append([key, f"skipped: {b['skipped']}"] + [""] * 8)
            continue
        first = first or b
        us = b["us"]
        ops = b.get("ops_per_write")
        rows.append(
            [
                b["label"],
                b["raw_label"],
                f"{us['raw']:,.0f}",
                f"{us['put']:,.0f}",
                f"**{b['ratio']:.2f}x**",
                " / ".join(f"{x:.2f}" for x in b["ratio_by_round"]),
                f"{b['ratio_of_means']:.2f}x",
                f"{us['add']:,.0f}",
                f"{b['add_ratio']:.2f}x",
                "" if ops is None else _ops(ops),
            ]
        )
        goals.append(
            (
                f"dead letters, {key}: put <= {GOAL_DLQ_RATIO:g}x the raw driver write",
                b["ratio"] <= GOAL_DLQ_RATIO,
            )
        )
    header = [
        "backend",
        "raw driver write",
        "raw µs",
        "`put` µs",
        "put / raw",
        "put / raw by round",
        "ratio of means",
        "`store.add` µs",
        "add / raw",
        "per write: put / raw",
    ]
    letter = res["letter"]
    text = ""
    if first is not None:
        text += (
            f"{first['rounds']} rounds x {first['puts_per_round']} interleaved groups "
            "(put, raw, add) for the first backend; see results.json for each. "
        )
    text += (
        f"Input {letter['input_json_bytes']:,} bytes of JSON, stored letter "
        f"{letter['stored_json_bytes']:,} bytes. Ratio = median of all puts / median of "
        "all raw writes of the same JSON; add = the store's `add` of an already prepared "
        "letter.\n\n" + _table(header, rows) + "\n"
    )
    mem = res["memory"]
    mrows = [
        [
            MEMORY_LABELS[k],
            f"{mem['us'][k]:.1f}",
            " / ".join(f"{x:.1f}" for x in mem["round_medians_us"][k]),
        ]
        for k in MEMORY_WAYS
    ]
    text += (
        f"\nThe queue's own work (no raw peer; {mem['rounds']} rounds x "
        f"{mem['puts_per_round']} interleaved groups):\n\n"
        + _table(["in memory", "µs", "µs by round"], mrows)
        + "\n"
    )
    for key, b in res["backends"].items():
        prof = b.get("profile")
        if prof is None:
            continue
        put, raw = prof["put"], prof["raw"]
        prows = [
            [
                "**queue's work in situ (put - add), not profiled**",
                "",
                f"{b['prepare_in_situ_us']:.0f}",
            ],
            [
                "**store's extra over raw (add - raw), not profiled**",
                "",
                f"{b['store_extra_us']:.0f}",
            ],
        ]
        prows += [[p["part"], f"{p['calls']:g}", f"{p['cumtime_us']:.0f}"] for p in put["probes"]]
        text += (
            f"\nWhere {key}'s extra time goes ({prof['writes']} puts and raw writes under "
            f"cProfile: {put['us_per_write_profiled']:.0f} µs per put, "
            f"{raw['us_per_write_profiled']:.0f} µs per raw write):\n\n"
            + _table(["part", "calls / put", "µs / put"], prows)
            + "\n"
        )
        server = prof.get("server")
        if server is not None:
            sp, sr = server["put"], server["raw"]
            text += (
                f"\nServer side (`INFO commandstats`): a put runs {sp['commands_per_write']:g} "
                f"commands ({', '.join(f'{c} x{n:g}' for c, n in sp['by_command'].items())}) "
                f"in {sp['server_us']:.1f} µs; a raw write {sr['commands_per_write']:g} in "
                f"{sr['server_us']:.1f} µs.\n"
            )
    return text, goals


def _pcts(values: list[float]) -> str:
    return " / ".join(f"{x:+.0f}" for x in values)


def report_saver(res: dict[str, Any]) -> tuple[str, list[tuple[str, bool]]]:
    cost = res["cost"]
    rows = []
    crows = []
    first = None
    # per saver: [rows, pass-through met, pass-through in situ met, mirrored met]
    by_saver: dict[str, list[int]] = {}
    for r in cost["rows"].values():
        if "skipped" in r:
            rows.append([r["label"], f"skipped: {r['skipped']}"] + [""] * 5)
            continue
        first = first or r
        us, pct, added, situ = r["step_us"], r["overhead_pct"], r["added_us_per_step"], r["in_situ"]
        cpu = r["cpu_overhead_pct"]
        rows.append(
            [
                r["label"],
                f"{us['raw']:,.0f}",
                f"{added['pass']:+,.0f} (**{pct['pass']:+.1f} %**)",
                f"{added['no_deadline']:+,.0f} ({pct['no_deadline']:+.1f} %)",
                f"{added['mirrored']:+,.0f} (**{pct['mirrored']:+.1f} %**)",
                _pcts(r["overhead_pct_by_round"]["pass"]),
                _pcts(r["overhead_pct_by_round"]["mirrored"]),
            ]
        )
        crows.append(
            [
                r["label"],
                f"{r['cpu_us_per_step']['raw']:,.0f}",
                " / ".join(f"{cpu[v]:+.1f}" for v in ("pass", "no_deadline", "mirrored")),
                f"{situ['pass']['us_per_call']:,.1f} ({situ['pass']['pct_of_raw_step']:.1f} %)",
                f"{situ['no_deadline']['us_per_call']:,.1f} "
                f"({situ['no_deadline']['pct_of_raw_step']:.1f} %)",
                f"{situ['pass']['calls_per_invoke']:g}",
                f"{situ['mirrored']['standby_us_per_step']:,.0f}",
            ]
        )
        tally = by_saver.setdefault(r["backend"], [0, 0, 0, 0])
        for i, ok in enumerate((True, r["met_pass"], r["met_pass_in_situ"], r["met_mirrored"])):
            tally[i] += ok
    goals = []
    for key, (n, met_pass, met_situ, met_mirror) in by_saver.items():
        name = SAVER_LABELS[key]
        goals += [
            (f"saver pass-through <= {GOAL_PASS_PCT:g} % per step, {name}", met_pass == n),
            (
                f"saver pass-through <= {GOAL_PASS_PCT:g} % per step, {name}, in situ",
                met_situ == n,
            ),
            (f"saver mirrored <= {GOAL_MIRROR_PCT:g} % per step, {name}", met_mirror == n),
        ]
    header = [
        f"{res['nodes']}-node graph, fresh thread per invocation",
        "raw µs/step",
        "pass-through: added µs/step (%)",
        "no deadline: added µs/step (%)",
        "mirrored: added µs/step (%)",
        "pass % by round",
        "mirrored % by round",
    ]
    cheader = [
        "same rows",
        "raw CPU µs/step",
        "CPU %: pass / no deadline / mirrored",
        "in situ pass: µs/call (% of step)",
        "in situ no deadline: µs/call (% of step)",
        "saver calls / invoke",
        "standby µs/step (mirror thread)",
    ]
    text = ""
    if first is not None:
        text += (
            f"{first['rounds']} rounds x {first['groups_per_round']} interleaved groups "
            f"(Williams square) of one batch of {first['invocations_per_batch']} invocations "
            "per variant for the first row; see results.json for each. Pass-through = "
            f"{VARIANT_LABELS['pass']}, default policy; no deadline = "
            f"{VARIANT_LABELS['no_deadline']}; mirrored = {VARIANT_LABELS['mirrored']}, "
            "its batch ending with `saver.flush()` (the mirror's work is counted). Added = "
            "median batch - median raw batch, per step. Goals per saver: met when every "
            "row of that saver meets it.\n\n"
        )
    text += _table(header, rows) + "\n"
    if crows:
        text += (
            "\nWhere it comes from. CPU % = the process's CPU time per batch (every "
            "thread), median against raw's. In situ = time inside the adapter's method "
            "minus the raw saver's, per call, and summed over a step's calls as a % of the "
            "raw step (an upper bound: calls that overlap count twice; the probe's own "
            f"cost, {cost['probe_us']['sync']:.2f} µs sync and "
            f"{cost['probe_us']['async']:.2f} µs async per call in a tight loop, taken "
            "off). Standby = the mirror thread's writes to the standby.\n\n"
            + _table(cheader, crows)
            + "\n"
        )
    h = cost["handoff_us"]
    text += (
        f"\nThe deadline's hand-off on this machine, a no-op in a tight loop (median): "
        f"direct {h['direct']:.2f} µs, `call_with_deadline` {h['call_with_deadline']:.1f} µs, "
        f"`await_with_deadline` {h['await_with_deadline']:.1f} µs.\n"
    )
    for key, prof in cost["profiles"].items():
        prows = [[p["part"], f"{p['calls']:g}", f"{p['cumtime_us']:,.1f}"] for p in prof["probes"]]
        if prof["deadline_s"] is not None:
            prows.append(
                [
                    "the raw call in the worker thread (timed around it, not profiled)",
                    "1",
                    f"{prof['raw_us_per_call']:,.1f}",
                ]
            )
        text += (
            f"\nWhere {key}'s pass-through time goes (the {prof['calls_per_invoke']} calls of "
            f'one invocation, `durability="sync"`, replayed {prof["replays"]}x through '
            f"`ResilientSaver(raw)` in one thread under cProfile: "
            f"{prof['us_per_call_profiled']:,.0f} µs per call):\n\n"
            + _table(["part", "calls / call", "µs / call"], prows)
            + "\n"
        )
    fo = res["failover"]
    if "skipped" in fo:
        text += f"\nFailover: skipped ({fo['skipped']}).\n"
        return text, goals
    frows = []
    lost = 0
    for fault, label in (("kill", "kill -9"), ("freeze", "SIGSTOP")):
        f = fo[fault]
        lost += f["lost"]
        runs = fo["runs"][fault]
        frows.append(
            [
                f"{label}: {runs[0]['policy']}",
                str(len(runs)),
                f"{f['fault_to_failover_s']['median']:.2f} / {f['fault_to_failover_s']['max']:.2f}",
                f"**{f['fault_to_next_put_s']['median']:.2f}** / "
                f"{f['fault_to_next_put_s']['max']:.2f}",
                f"{f['stall_after_s']['median']:.2f} / {f['stall_after_s']['max']:.2f}",
                ", ".join(f["errors"]),
                f"{f['put_us_before_fault']['median']:,.0f} / "
                f"{f['put_us_on_standby']['median']:,.0f}",
                f"{f['reconcile_s']['median']:.2f} / {f['reconcile_s']['max']:.2f}",
                f"{f['checkpoints_written']} ({f['written_after_fault']})",
                str(f["missing_before_reconcile"]),
                f"**{f['lost']}**",
            ]
        )
    fheader = [
        f"{fo['steps']}-step loop on Postgres + SQLite standby, fault at step {fo['fault_at']}",
        "runs",
        "fault → failover s (median / max)",
        "fault → next checkpoint written s (median / max)",
        "then the longest wait for a checkpoint or the end s (median / max)",
        "failed over on",
        "put µs: primary / standby",
        "reconcile s (median / max)",
        "checkpoints written (after the fault)",
        "not on the primary before `reconcile()`",
        "lost after `reconcile()`",
    ]
    text += (
        f"\nFailover (a private server; pool timeout {fo['pool_timeout_s']:g} s; "
        '`durability="sync"`):\n\n' + _table(fheader, frows) + "\n"
    )
    goals.append((f"saver checkpoints lost in failovers: {GOAL_LOST}", lost <= GOAL_LOST))
    return text, goals


# ---- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--parts", default="1,2,3,4,5,6,7", help="which parts to run, e.g. 1,3")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write JSON")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    q = args.quick

    env = _environment()
    results: dict[str, Any] = {"environment": env, "quick": q}
    sections: list[str] = []
    goals: list[tuple[str, bool]] = []
    t0 = time.perf_counter()
    print(
        f"# langgraph_resilience benchmarks\n\nPython {env['python']} on {env['cpus']} CPUs, "
        f"load average {env['loadavg_start'][0]:.2f} at start. Medians; ratios matter, "
        "absolute times move with the machine's load.\n",
        flush=True,
    )
    if "1" in parts:
        _say("part 1: closed-breaker overhead")
        res = run_overhead(repeats=5 if q else 21, target=0.02 if q else 0.1, progress=None)
        results["overhead"] = res
        text, g = report_overhead(res)
        sections.append("## 1. Closed-breaker overhead per call\n\n" + text)
        goals += g
        print(sections[-1], flush=True)
    if "2" in parts:
        _say("part 2: guard per node-step")
        res = run_graph_step(
            rounds=2 if q else 5,
            per_round=100 if q else 1000,
            warmup=30 if q else 200,
            in_situ_invocations=100 if q else 1000,
            progress=_say,
        )
        results["graph_step"] = res
        text, g = report_graph(res)
        sections.append("## 2. What guard adds per node-step\n\n" + text)
        goals += g
        print(sections[-1], flush=True)
    if "3" in parts:
        _say("part 3: fail fast")
        res = run_fail_fast(runs=20 if q else 100, timeout=0.02, interval=0.01, progress=_say)
        results["fail_fast"] = res
        text, g = report_fail_fast(res)
        sections.append("## 3. Fail fast against a hung dependency\n\n" + text)
        goals += g
        print(sections[-1], flush=True)
    if "4" in parts:
        _say("part 4: the ledger per node-step")
        res = run_ledger(q, progress=_say)
        results["ledger"] = res
        text, g = report_ledger(res)
        sections.append("## 4. What the ledger adds per node-step\n\n" + text)
        goals += g
        print(sections[-1], flush=True)
    if "5" in parts:
        _say("part 5: dead letters, put against the raw driver")
        res = run_dead_letters(q, progress=_say)
        results["dead_letters"] = res
        text, g = report_dead_letters(res)
        sections.append("## 5. Dead letters: `put` against the raw driver\n\n" + text)
        goals += g
        print(sections[-1], flush=True)
    if "6" in parts:
        _say("part 6: ResilientSaver, cost per step, failover, lost checkpoints")
        res = run_saver(q, progress=_say)
        results["saver"] = res
        text, g = report_saver(res)
        sections.append(
            "## 6. `ResilientSaver`: cost per step, failover, lost checkpoints\n\n" + text
        )
        goals += g
        print(sections[-1], flush=True)

    if "7" in parts:
        _say("part 7: the health monitor per node-step, decisions with tracing off")
        res = run_monitoring(q, progress=_say)
        results["monitoring"] = res
        text, g = report_monitoring(res)
        sections.append("## 7. What watching costs: the health monitor, tracing off\n\n" + text)
        goals += g
        print(sections[-1], flush=True)

    env["loadavg_end"] = os.getloadavg()
    env["seconds"] = time.perf_counter() - t0
    results["goals"] = dict(goals)
    print("## Goals\n")
    print(_table(["goal", "result"], [[name, _verdict(ok)] for name, ok in goals]))
    print(
        f"\nTotal {env['seconds']:.0f} s; load average {env['loadavg_end'][0]:.2f} at end. "
        f"Results written to {args.output}."
    )
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
