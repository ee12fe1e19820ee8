"""Verdict of one scenario run: every selected checker's result, pass iff all passed.

A checker that raises does not abort the run: it becomes a failed result carrying the exception, so
one harness bug cannot hide the other invariants' verdicts (and can never turn into a pass).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from walletchaos.checks import CHECKS
from walletchaos.checks.fault_efficacy import fault_write_rate
from walletchaos.checks.base import CheckContext, CheckResult
from walletchaos.checks.index import RunIndex
from walletchaos.history import gc_paused


@dataclass
class Verdict:
    scenario: str
    passed: bool
    results: list[CheckResult]
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "passed": self.passed,
                "results": [r.to_dict() for r in self.results], "stats": self.stats}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        return cls(scenario=d["scenario"], passed=d["passed"],
                   results=[CheckResult.from_dict(r) for r in d["results"]], stats=dict(d.get("stats", {})))

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]


def run_checks(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext,
               names: Iterable[str] | None = None) -> Verdict:
    """Run the named checkers (default: all, in registry order) over one shared RunIndex; time each."""
    selected = list(CHECKS) if names is None else list(names)
    unknown = [n for n in selected if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; known: {list(CHECKS)}")
    results: list[CheckResult] = []
    with gc_paused():
        t_all = time.perf_counter()
        try:
            index: RunIndex | None = RunIndex(history, final, ctx)
        except Exception:  # noqa: BLE001 - malformed input: let each checker fail on it on its own below
            index = None
        durations: dict[str, float] = {"index": round(time.perf_counter() - t_all, 6)}
        for name in selected:
            t0 = time.perf_counter()
            try:
                result = CHECKS[name](history, final, ctx, index=index)
            except Exception as exc:  # noqa: BLE001 - a crashing checker must fail the verdict, not the run
                result = CheckResult(name, False, f"checker crashed: {type(exc).__name__}: {exc}",
                                     [{"rule": "checker_crashed", "error": repr(exc)}], {"violations": 1})
            durations[name] = round(time.perf_counter() - t0, 6)
            results.append(result)
        total_s = time.perf_counter() - t_all
    stats = {"ops": len(history), "check_seconds": durations, "total_seconds": round(total_s, 6),
             "ops_per_s": round(len(history) / total_s) if total_s > 0 else None,
             "fault_write_rate": fault_write_rate(history, ctx.fault_windows)}  # money writes/s during faults
    return Verdict(ctx.scenario, all(r.passed for r in results), results, stats)


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """0 only if at least one verdict exists and every one passed (nothing checked is not a pass)."""
    verdicts = list(verdicts)
    return 0 if verdicts and all(v.passed for v in verdicts) else 1
