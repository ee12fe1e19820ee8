"""Recovery: after the last fault ends the system is healthy again within ctx.recovery_within_s, and
nothing is left in limbo (no pending transaction after reconcile, no unknown op unresolved).

Health = success rate (ok, or a correct replay of an outcome recorded during the fault: 202 pending, GATEWAY_ERROR
of a transaction that failed then) / (ok + fail + unknown) over sliding windows of ctx.recovery_window_s
(step = window/4), not counting the client's own expected errors (ctx.always_allowed). The system has
recovered at the start of the earliest window from which every later window with at least
ctx.recovery_min_ops ops stays ≥ ctx.recovery_threshold; that offset from the fault's end is the
measured recovery time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import STEPS_PER_WINDOW, RunIndex, get_index
from walletchaos.history import WRITE_KINDS

NAME = "recovery"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "never_recovered", "recovered_too_late", "pending_after_reconcile", "pending_transaction",
    "unknown_op_unresolved",
)


def _counted(op: Mapping[str, Any], expected: frozenset[str]) -> bool:
    return not (op["outcome"] == "fail" and op.get("code") in expected)


def _windows(ix: RunIndex) -> list[tuple[float, int, int]]:
    """[(offset_s, ops, ok)] per sliding window (STEPS_PER_WINDOW buckets, sliding by one bucket)."""
    ops_b, ok_b, step = ix.bucket_ops, ix.bucket_ok, ix.bucket_s
    n_full = max(len(ops_b) - STEPS_PER_WINDOW + 1, 1 if ops_b else 0)
    return [(w * step, sum(ops_b[w:w + STEPS_PER_WINDOW]), sum(ok_b[w:w + STEPS_PER_WINDOW]))
            for w in range(n_full)]


def _recovery_offset(windows: list[tuple[float, int, int]], ctx: CheckContext) -> float | None:
    """Offset of the earliest measurable window at/above the threshold after which the system stays
    healthy: every later window is at/above the threshold, or (a lone failure in a small window should
    not erase a recovery) all ops from that window on taken together are."""
    recovered: float | None = None
    suffix_ops = suffix_ok = 0
    suffix: list[tuple[int, int]] = []
    for _, n, ok in reversed(windows):
        suffix_ops, suffix_ok = suffix_ops + n, suffix_ok + ok
        suffix.append((suffix_ops, suffix_ok))
    suffix.reverse()
    for i, (offset, n, ok) in enumerate(windows):
        if n < ctx.recovery_min_ops:
            continue
        if ok / n >= ctx.recovery_threshold:
            if recovered is None:
                recovered = offset
            total, good = suffix[i]
            if good / total >= ctx.recovery_threshold:
                return offset
        else:
            recovered = None
    return recovered


def _failing_op_ids(after: Sequence[dict[str, Any]], t0: float, t1: float, ctx: CheckContext) -> list[str]:
    return [op["op_id"] for op in after
            if t0 <= op["invoke_ts"] < t1 and op["outcome"] != "ok" and _counted(op, ctx.always_allowed)][:5]


def _measure(ix: RunIndex, ctx: CheckContext, found: Findings, stats: dict[str, Any]) -> None:
    """Recovery time after the last fault; findings if never or too late."""
    fault_end = ix.fault_end
    stats["last_fault_end"] = fault_end
    windows = _windows(ix)
    observed_s = ix.observed_after_fault_s
    offset = _recovery_offset(windows, ctx)
    stats.update(recovery_time_s=offset, observed_after_fault_s=round(observed_s, 3), windows=len(windows))
    if offset is None:
        last = [w for w in windows if w[1] >= ctx.recovery_min_ops][-3:]
        found.add("never_recovered", observed_after_fault_s=round(observed_s, 3),
                  last_windows=[{"offset_s": round(o, 3), "ops": n, "success_rate": round(ok / n, 4),
                                 "failing_op_ids": _failing_op_ids(ix.after_fault, fault_end + o,
                                                                   fault_end + o + ctx.recovery_window_s, ctx)}
                                for o, n, ok in last])
    elif offset > ctx.recovery_within_s:
        found.add("recovered_too_late", recovery_time_s=round(offset, 3), within_s=ctx.recovery_within_s,
                  failing_op_ids=_failing_op_ids(ix.after_fault, fault_end, fault_end + offset, ctx))


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    stats: dict[str, Any] = {"threshold": ctx.recovery_threshold, "within_s": ctx.recovery_within_s,
                             "recovery_time_s": 0.0}
    if ix.fault_end is not None:
        _measure(ix, ctx, found, stats)
    still_pending = int(final.get("reconcile", {}).get("still_pending", 0))
    if still_pending:
        found.add("pending_after_reconcile", still_pending=still_pending)
    for t in ix.export.pending:
        found.add("pending_transaction", txn_id=t["transaction_id"])
    res = ix.resolutions
    unresolved = 0
    for op in ix.ops(WRITE_KINDS, ("unknown",)):
        r = res.get(op["op_id"])
        if r is None or r["status"] == "pending":
            unresolved += 1
            found.add("unknown_op_unresolved", op_id=op["op_id"], idempotency_key=op["idempotency_key"],
                      txn_id=None if r is None else r["txn_id"])
    stats.update(still_pending=still_pending, pending_transactions=len(ix.export.pending),
                 unresolved_ops=unresolved)
    measured = stats["recovery_time_s"]
    when = "no faults" if ix.fault_end is None else (
        "never recovered" if measured is None else f"recovered {measured:.2f}s after the last fault")
    return found.result(NAME, f"{when}; nothing left pending", stats)
