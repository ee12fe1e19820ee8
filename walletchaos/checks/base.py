"""Shared types of the checkers: CheckContext (scenario expectations), CheckResult, Findings.

Every checker is `check(history, final, ctx) -> CheckResult`, pure: same inputs, same verdict, so a
failed run can be re-judged offline from its history.jsonl + final.json (`walletchaos check`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from walletchaos.checks.catalog import CLIENT_ERROR_CODES
from walletchaos.history import FaultWindow, fault_windows

DEFAULT_MAX_COUNTEREXAMPLES = 20
DEFAULT_LOCKOUT_S = 300.0  # the mock wallet's WALLET_LOCKOUT_S default; scenarios may shorten it


@dataclass(frozen=True)
class CheckContext:
    """What the scenario expects; every field has a default so a bare CheckContext() is usable.

    errors_allowed: phase name → codes allowed (beyond `always_allowed`) for ops *invoked* in that
      phase; the key "*" applies to every phase. Codes allowed in phase "fault" are also allowed for
      ops invoked up to `grace_s` after a fault window ends (stragglers while pools reconnect).
    grace_s: None → recovery_within_s. Also the window after a fault in which transport errors
      (no HTTP response at all) are tolerated.
    transport_fault_targets: None → any fault window tolerates transport errors; a set (e.g.
      {"wallet_api", "wallet"}) → only faults on those targets do, which enforces the contract rule
      that a slow/dead dependency must become a 503/504 problem, never a hung socket.
    """

    scenario: str = ""
    errors_allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    always_allowed: frozenset[str] = CLIENT_ERROR_CODES
    deadline_s: float = 5.0
    deadline_slack_s: float = 0.5
    recovery_within_s: float = 10.0
    recovery_threshold: float = 0.95
    recovery_window_s: float = 2.0
    recovery_min_ops: int = 5
    grace_s: float | None = None
    transport_fault_targets: frozenset[str] | None = None
    fault_windows: Sequence[FaultWindow] = ()
    events: Sequence[dict[str, Any]] = ()
    max_counterexamples: int = DEFAULT_MAX_COUNTEREXAMPLES
    # security invariants: how long a lockout lasts at least (credentials), regexes of server ERROR lines
    # the scenario expects during its faults (server_logs), and the clock skew tolerated between server
    # timestamps and the client's invoke/complete times (one machine or synced clocks, docs/target-contract.md)
    lockout_s: float = DEFAULT_LOCKOUT_S
    logs_allowed: Sequence[str] = ()
    clock_skew_s: float = 0.05

    @classmethod
    def for_scenario(
        cls,
        events: Sequence[dict[str, Any]],
        errors_allowed: Iterable[str] = (),
        *,
        allowed_phases: Iterable[str] = ("fault", "heal"),
        **kwargs: Any,
    ) -> CheckContext:
        """Build from a scenario's flat `expect.errors_allowed` list and the run's events."""
        codes = frozenset(errors_allowed)
        return cls(
            errors_allowed={phase: codes for phase in allowed_phases},
            fault_windows=tuple(fault_windows(events)),
            events=tuple(events),
            **kwargs,
        )

    @property
    def effective_grace_s(self) -> float:
        return self.recovery_within_s if self.grace_s is None else self.grace_s

    def phase_allows(self, code: str | None, op: Mapping[str, Any]) -> bool:
        """The scenario allows `code` in the phase the op was invoked in (or in every phase)."""
        if code is None:
            return False
        return code in self.errors_allowed.get("*", ()) or code in self.errors_allowed.get(op.get("phase"), ())


@dataclass
class CheckResult:
    """One invariant's verdict; `counterexamples` is capped, `stats["violations"]` counts them all."""

    name: str
    passed: bool
    summary: str
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        return cls(name=d["name"], passed=d["passed"], summary=d["summary"],
                   counterexamples=list(d.get("counterexamples", [])), stats=dict(d.get("stats", {})))


class Findings:
    """Collects violations: keeps the first `cap` as counterexamples, counts every one."""

    __slots__ = ("cap", "items", "count", "by_rule")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[dict[str, Any]] = []
        self.count = 0
        self.by_rule: dict[str, int] = {}

    def add(self, rule: str, **evidence: Any) -> None:
        self.count += 1
        self.by_rule[rule] = self.by_rule.get(rule, 0) + 1
        if len(self.items) < self.cap:
            self.items.append({"rule": rule, **evidence})

    def result(self, name: str, ok_summary: str, stats: dict[str, Any] | None = None) -> CheckResult:
        """Pass iff nothing was found; the summary lists the rules broken, most frequent first."""
        stats = {**(stats or {}), "violations": self.count, "violations_by_rule": dict(self.by_rule)}
        if not self.count:
            return CheckResult(name, True, ok_summary, [], stats)
        rules = ", ".join(f"{r} ×{n}" for r, n in sorted(self.by_rule.items(), key=lambda kv: -kv[1]))
        return CheckResult(name, False, f"{self.count} violation(s): {rules}", self.items, stats)


class WindowIndex:
    """Answers "does [t0, t1] overlap any (merged) window?" in O(log w)."""

    def __init__(self, windows: Iterable[tuple[float, float]]) -> None:
        merged: list[list[float]] = []
        for s, e in sorted(windows):
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        self._starts = [w[0] for w in merged]
        self._ends = [w[1] for w in merged]

    def overlaps(self, t0: float, t1: float) -> bool:
        i = bisect.bisect_right(self._starts, t1) - 1
        return i >= 0 and self._ends[i] >= t0
