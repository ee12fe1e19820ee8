"""Aggregate a run's history for the report: per-second buckets, error codes per phase, resolutions.

Plain Python on purpose (numpy is not a dependency): `analyze` walks the ops once, then sorts each
bucket's latencies, which is O(n log n) overall and handles 100k+ ops in well under a second.
Times are seconds since the run's start (`t0`, the first phase event), because "fault at 10 s,
recovered at 34 s" is what a reader compares, not epoch timestamps.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from walletchaos.history import AUDIT_KIND, PHASES, fault_windows

RESOLUTION_STATUSES = ("succeeded", "failed", "absent", "pending")
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence; None when empty (no data, not zero)."""
    if not sorted_values:
        return None
    rank = max(math.ceil(q * len(sorted_values)), 1)
    return sorted_values[rank - 1]


def is_client_error(op: Mapping[str, Any]) -> bool:
    """A 4xx other than 429: the wallet refused the client's own request, which says nothing about
    the system's health, so the "server/transport error" rate and recovery leave these out."""
    status = op.get("status")
    return op.get("outcome") == "fail" and isinstance(status, int) and 400 <= status < 500 and status != 429


def error_label(op: Mapping[str, Any]) -> str:
    """What went wrong, in one token: the catalog code, else the transport error, else the status."""
    if op.get("code"):
        return str(op["code"])
    if op.get("error"):
        return f"{op['error']} (transport)"
    if op.get("status") is not None:
        return f"HTTP {op['status']}"
    return "no response"


@dataclass(frozen=True)
class FaultSpan:
    """One fault window in seconds since t0."""

    start: float
    end: float
    name: str
    target: str | None

    @property
    def label(self) -> str:
        return f"{self.name} → {self.target}" if self.target else self.name


@dataclass(frozen=True)
class Recovery:
    """Seconds from a fault's end until the first healthy bucket; None = never healthy again."""

    fault: FaultSpan
    seconds: float | None


@dataclass
class Series:
    """Dense per-bucket series (empty seconds included, so an outage shows as zero throughput)."""

    t: list[float] = field(default_factory=list)
    ok: list[int] = field(default_factory=list)
    fail: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)
    p50: list[float | None] = field(default_factory=list)
    p95: list[float | None] = field(default_factory=list)
    p99: list[float | None] = field(default_factory=list)
    error_pct: list[float | None] = field(default_factory=list)  # non-ok / completed
    server_error_pct: list[float | None] = field(default_factory=list)  # same without client 4xx


@dataclass
class RunAnalysis:
    t0: float
    width_s: float
    series: Series
    ops: int
    outcomes: Counter[str]
    by_kind: dict[str, Counter[str]]
    latency_ms: dict[str, float | None]
    errors_by_phase: dict[str, Counter[str]]
    error_totals: Counter[str]
    faults: list[FaultSpan]
    phase_marks: list[tuple[float, str]]
    resolutions: Counter[str]
    reconcile: dict[str, Any]
    recovery: list[Recovery]
    span_s: float

    @property
    def phases(self) -> list[str]:
        """Phases that have errors, in run order (unknown phase names last, alphabetically)."""
        order = {p: i for i, p in enumerate(PHASES)}
        return sorted(self.errors_by_phase, key=lambda p: (order.get(p, len(order)), p))

    @property
    def error_codes(self) -> list[str]:
        """Error labels, most frequent first: the columns of the phase × code table."""
        return [code for code, _ in self.error_totals.most_common()]


def _start_ts(ops: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> float:
    phase_ts = [e["ts"] for e in events if e.get("kind") == "phase"]
    if phase_ts:
        return min(phase_ts)
    if ops:
        return min(op["invoke_ts"] for op in ops)
    return min((e["ts"] for e in events), default=0.0)


def analyze(
    ops: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    final: Mapping[str, Any],
    *,
    width_s: float = 1.0,
    recovery_threshold: float = 0.95,
    recovery_min_ops: int = 5,
) -> RunAnalysis:
    """Everything the report plots and tabulates, from one pass over the history.

    Ops are bucketed by completion time (throughput = completions per second); an op without
    complete_ts falls back to its invoke_ts.
    """
    t0 = _start_ts(ops, events)
    buckets: dict[int, list[Any]] = {}  # index → [ok, fail, unknown, client_errors, latencies]
    outcomes: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    errors_by_phase: dict[str, Counter[str]] = {}
    all_latencies: list[float] = []
    health: dict[int, list[int]] = {}  # invoke-time index → [ops, healthy ops], for recovery
    slot = {"ok": 0, "fail": 1, "unknown": 2}
    for op in ops:
        if op.get("kind") == AUDIT_KIND:  # the harness's bank snapshots (report/snapshot_figure.py)
            continue
        outcome = op.get("outcome", "unknown")
        ts = op.get("complete_ts") or op["invoke_ts"]
        b = buckets.get(i := math.floor((ts - t0) / width_s))
        if b is None:
            b = buckets[i] = [0, 0, 0, 0, []]
        b[slot.get(outcome, 2)] += 1
        outcomes[outcome] += 1
        by_kind.setdefault(op.get("kind", "?"), Counter())[outcome] += 1
        latency = op.get("latency_ms")
        if latency is not None:
            b[4].append(latency)
            all_latencies.append(latency)
        h = health.get(j := math.floor((op["invoke_ts"] - t0) / width_s))
        if h is None:
            h = health[j] = [0, 0]
        h[0] += 1
        if outcome == "ok":
            h[1] += 1
        else:
            if is_client_error(op):
                b[3] += 1
                h[1] += 1
            errors_by_phase.setdefault(op.get("phase") or "(none)", Counter())[error_label(op)] += 1

    series = _series(buckets, width_s)
    all_latencies.sort()
    faults = [FaultSpan(s - t0, e - t0, name, target) for s, e, name, target in fault_windows(events)]
    error_totals: Counter[str] = Counter()
    for counts in errors_by_phase.values():
        error_totals.update(counts)
    resolutions = Counter(str(r.get("status")) for r in (final.get("resolutions") or {}).values())
    end_of_data = series.t[-1] + width_s if series.t else 0.0
    span_s = max([end_of_data, *(e["ts"] - t0 for e in events)])
    return RunAnalysis(
        t0=t0, width_s=width_s, series=series, ops=sum(outcomes.values()), outcomes=outcomes,
        by_kind=dict(sorted(by_kind.items())),
        latency_ms={name: percentile(all_latencies, q) for name, q in QUANTILES},
        errors_by_phase=errors_by_phase, error_totals=error_totals, faults=faults,
        phase_marks=sorted((e["ts"] - t0, e["name"]) for e in events if e.get("kind") == "phase"),
        resolutions=resolutions, reconcile=dict(final.get("reconcile") or {}),
        recovery=recovery_times(health, faults, width_s, recovery_threshold, recovery_min_ops),
        span_s=span_s,
    )


def _round(v: float | None, digits: int) -> float | None:
    """Plot precision only (0.1 ms, 0.01 %): keeps hours-long runs' figure JSON small."""
    return None if v is None else round(v, digits)


def _series(buckets: Mapping[int, list[Any]], width_s: float) -> Series:
    s = Series()
    if not buckets:
        return s
    for i in range(min(buckets), max(buckets) + 1):
        ok, fail, unknown, client, latencies = buckets.get(i, (0, 0, 0, 0, []))
        latencies.sort()
        total = ok + fail + unknown
        s.t.append(i * width_s)
        s.ok.append(ok)
        s.fail.append(fail)
        s.unknown.append(unknown)
        s.p50.append(_round(percentile(latencies, 0.50), 1))
        s.p95.append(_round(percentile(latencies, 0.95), 1))
        s.p99.append(_round(percentile(latencies, 0.99), 1))
        s.error_pct.append(round(100.0 * (fail + unknown) / total, 2) if total else None)
        s.server_error_pct.append(round(100.0 * (fail + unknown - client) / total, 2) if total else None)
    return s


def recovery_times(
    health: Mapping[int, Sequence[int]],
    faults: Sequence[FaultSpan],
    width_s: float,
    threshold: float,
    min_ops: int,
) -> list[Recovery]:
    """Per fault: seconds from its end to the start of the first bucket (the one holding the end
    included) of ops *invoked* then, with ≥ min_ops ops of which ≥ threshold were ok or client errors.

    Invoke time, not completion, because a request sent during the fault that times out later says
    nothing about whether requests sent after the heal succeed. Resolution is one bucket; the
    recovery invariant stays the authoritative pass/fail.
    """
    healthy = sorted(i for i, (n, good) in health.items() if n >= min_ops and good / n >= threshold)
    out = []
    for f in faults:
        k = bisect.bisect_left(healthy, math.floor(f.end / width_s))
        out.append(Recovery(f, max(healthy[k] * width_s - f.end, 0.0) if k < len(healthy) else None))
    return out


def resolution_rows(a: RunAnalysis) -> list[tuple[str, int]]:
    """Resolution counts in a fixed order (unexpected statuses after), zeros kept so gaps are visible."""
    rows = [(s, a.resolutions.get(s, 0)) for s in RESOLUTION_STATUSES]
    rows += sorted((s, n) for s, n in a.resolutions.items() if s not in RESOLUTION_STATUSES)
    return rows


def run_stats(a: RunAnalysis) -> dict[str, Any]:
    """The history-derived numbers the Markdown summary prints (plain JSON-able dict)."""
    return {
        "ops": a.ops,
        "outcomes": {k: a.outcomes.get(k, 0) for k in ("ok", "fail", "unknown")},
        "latency_ms": dict(a.latency_ms),
        "top_error_codes": a.error_totals.most_common(5),
        "recovery_s": [{"fault": r.fault.label, "seconds": r.seconds} for r in a.recovery],
        "resolutions": dict(resolution_rows(a)),
        "reconcile": dict(a.reconcile),
    }
