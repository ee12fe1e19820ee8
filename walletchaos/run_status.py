"""The status of one scenario run, and the harness's exit code for a set of runs.

A run ends in exactly one of `STATUSES`:

    passed   every invariant held
    failed   an invariant was violated (a finding about the wallet)
    error    the scenario could not run: the stack did not start, or the run crashed; verdict.json
             carries `"error"` (one readable line first) and the run has no invariant results
    skipped  the scenario was not run on purpose (e.g. it needs a stack the target cannot offer);
             verdict.json carries `"reason"`

Verdict dicts (verdict.json form) from the checkers have `passed` and no `status`; `status_of` reads
both forms. Build error and skipped verdicts with `error_verdict` / `skipped_verdict`.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping
from typing import Any

STATUSES = ("passed", "failed", "error", "skipped")
SKIPPED = "skipped"  # a scenario not run on purpose (e.g. url mode: the target gives no process/DB/gateway control)

# walletchaos exit codes (README "Exit codes"); 130/143 (interrupted) come from walletchaos.interrupts
EXIT_PASSED = 0          # every run passed (or was skipped)
EXIT_INVARIANT_FAILED = 1  # an invariant failed in some run: a finding, it wins over EXIT_COULD_NOT_RUN
EXIT_COULD_NOT_RUN = 2   # usage error, or a scenario that could not run (status error)


def status_of(verdict: Mapping[str, Any]) -> str:
    """passed | failed | error | skipped. A verdict without `passed` and without a status is an error."""
    status = verdict.get("status")
    if status in STATUSES:
        return status
    if "passed" not in verdict:
        return "error"
    return "passed" if verdict["passed"] else "failed"


def error_verdict(scenario: str, error: BaseException | str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The verdict of a run that could not run: no invariant results, `error` = the cause."""
    if isinstance(error, BaseException):
        message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        trace = "".join(traceback.format_exception(error))
    else:
        message, trace = str(error), None
    verdict: dict[str, Any] = {"scenario": scenario, "status": "error", "passed": False, "error": message,
                               "results": [], "meta": dict(meta or {})}
    if trace:
        verdict["traceback"] = trace
    return verdict


def skipped_verdict(scenario: str, reason: str, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The verdict of a scenario not run on purpose; `passed` is absent-as-False so nothing counts it a pass."""
    return {"scenario": scenario, "status": "skipped", "passed": False, "reason": reason, "results": [],
            "meta": dict(meta or {})}


def error_line(verdict: Mapping[str, Any]) -> str:
    """The first line of a run's error (or skip reason), for tables and one-line reports."""
    text = str(verdict.get("error") or verdict.get("reason") or "")
    return text.splitlines()[0] if text else ""


def exit_code(verdicts: Iterable[Mapping[str, Any]]) -> int:
    """0 if every run passed or was skipped (and there was at least one), 1 if an invariant failed,
    else 2 if a run could not run."""
    statuses = [status_of(v) for v in verdicts]
    if "failed" in statuses:
        return EXIT_INVARIANT_FAILED
    if "error" in statuses or not statuses:
        return EXIT_COULD_NOT_RUN
    return EXIT_PASSED
