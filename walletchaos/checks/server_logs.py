"""Server logs: the ERROR-level lines of the wallet, the gateway and PostgreSQL, per phase, judged.

Input: final["server_logs"] = walletchaos.server_logs.read_server_logs(<run>/logs) (the runner adds it
while judging; absent → nothing to judge, the check passes and says so).

Each ERROR / CRITICAL / FATAL / PANIC line (and each Python traceback) gets the phase of its time
("startup" before the load began, "teardown" after the last event). Rules:
- unexplained_error: a line in a load phase, outside every fault window (+ grace, the scenario's
  recovery_within), that nothing explains. Inside a fault window (+ grace) a line is explained when it
  matches the defaults for that fault's target (ALLOWED_DURING_FAULT: e.g. PostgreSQL "terminating
  connection" while the database is down) or the scenario's `expect.logs_allowed` regexes.
- never_expected: a line that no fault explains anywhere (deadlock detected, unhandled exception /
  traceback, too many clients / pool exhaustion), unless the scenario's logs_allowed matches it. Also
  judged in startup and teardown.
Clock: log times are the services' wall clock, the fault windows the harness's (one machine).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings

NAME = "server_logs"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "never_expected", "unexplained_error",
)
SHOWN_LINES = 40  # lines listed in the stats (the report), per run

_DB_DOWN = [r"terminating connection", r"the database system is (starting up|shutting down|not yet accepting|in recovery)",
            r"could not (receive|send) data (from|to) client", r"connection to client lost",
            r"unexpected EOF", r"database unavailable", r"server closed the connection",
            r"canceling statement due to (statement timeout|user request)", r"Connection reset by peer"]
# fault target → regexes of ERROR lines it explains while active (+ grace)
ALLOWED_DURING_FAULT: dict[str, list[str]] = {
    "postgres": _DB_DOWN,
    "wallet_db": _DB_DOWN,
    "wallet": _DB_DOWN,  # the wallet dying drops its database connections
    "wallet_api": [r"canceling statement due to user request"],
    "gateway": [r"gateway", r"canceling statement due to user request"],
}
# during any fault: the wallet cancelling a statement at its deadline
ALLOWED_DURING_ANY_FAULT = [r"canceling statement due to (statement timeout|user request)"]
NEVER_EXPECTED = [r"deadlock detected", r"Traceback", r"[Uu]nhandled", r"Exception in ASGI application",
                  r"too many clients", r"remaining connection slots", r"pool.*(leak|exhaust)",
                  r"PANIC"]


def _rx(patterns: Sequence[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: Any = None) -> CheckResult:
    found = Findings(ctx.max_counterexamples)
    logs = final.get("server_logs")
    if not logs or not any(n is not None for n in (logs.get("files") or {"?": 0}).values()):
        return found.result(NAME, "no service logs in this run's final state: nothing to judge",
                            {"lines": 0, "judged": False})
    phases = sorted((e["ts"], e["name"]) for e in ctx.events if e["kind"] == "phase")
    starts, names = [p[0] for p in phases], [p[1] for p in phases]
    last_event = max((e["ts"] for e in ctx.events), default=None)
    grace = ctx.effective_grace_s
    windows = [(s, e + grace, target) for s, e, _, target in ctx.fault_windows]
    scenario_rx = _rx(list(ctx.logs_allowed))
    never_rx = _rx(NEVER_EXPECTED)
    any_fault_rx = _rx(ALLOWED_DURING_ANY_FAULT)
    target_rx = {t: _rx(p) for t, p in ALLOWED_DURING_FAULT.items()}

    by_phase: dict[str, dict[str, int]] = {}
    # phase → distinct "service LEVEL text" → [count, first line]; at most SHOWN_LINES distinct in all
    shown: dict[str, dict[str, list[Any]]] = {}
    n_shown = 0
    explained = outside_load = 0
    for rec in logs.get("lines", ()):
        ts, text = rec.get("ts"), rec.get("text", "")
        if ts is None or not phases:
            phase = "unknown"
        elif ts < starts[0]:
            phase = "startup"
        elif last_event is not None and ts > last_event:
            phase = "teardown"
        else:
            phase = names[bisect.bisect_right(starts, ts) - 1]
        counts = by_phase.setdefault(phase, {})
        counts[rec["service"]] = counts.get(rec["service"], 0) + 1
        entry = shown.setdefault(phase, {}).get(f"{rec['service']} {rec.get('level')} {text}")
        if entry is not None:
            entry[0] += 1
        elif n_shown < SHOWN_LINES:
            shown[phase][f"{rec['service']} {rec.get('level')} {text}"] = [1, f"{rec['service']}.log:{rec.get('line')}"]
            n_shown += 1
        ev = {"service": rec["service"], "line": rec.get("line"), "ts": ts, "phase": phase,
              "level": rec.get("level"), "text": text}
        if scenario_rx is not None and scenario_rx.search(text):
            explained += 1
            continue
        if never_rx.search(text):
            found.add("never_expected", **ev)
            continue
        if phase in ("startup", "teardown"):
            outside_load += 1
            continue
        active = [t for s, e, t in windows if ts is not None and s <= ts <= e]
        if active and (any_fault_rx.search(text) or any(
                target_rx.get(t) is not None and target_rx[t].search(text) for t in active)):
            explained += 1
            continue
        found.add("unexplained_error", **ev, during_faults=active)
    n = len(logs.get("lines", ()))
    stats = {"lines": n, "explained": explained, "startup_or_teardown": outside_load, "by_phase": by_phase, "files": logs.get("files", {}),
             "lines_by_phase": {phase: [f"{key} (×{n}, first at {where})" for key, (n, where) in lines.items()]
                                for phase, lines in shown.items() if lines}}
    return found.result(NAME, f"{n} ERROR-level server log lines: {explained} explained by a fault or the "
                        f"scenario, {outside_load} at startup/teardown" if n else "no ERROR-level server log lines",
                        stats)
