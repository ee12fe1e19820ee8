"""Bank snapshots: every GET /admin/audit the harness took during the run balances (Jepsen's bank test).

The final state can look right after an anomaly healed (a transfer whose two halves committed apart,
a balance briefly wrong during a fault). So the harness snapshots the books every ~0.35 s from stack
start until the load ends (walletchaos/snapshots.py, ops of kind `audit`), and in every ok snapshot:
* Σ user balances == opening + external_in − external_out − pending_withdrawal_holds (a pending
  withdrawal has debited its hold but not yet paid out; a wallet whose audit lacks the holds field is
  held to Σ balances ≤ opening + in − out, the bound any hold keeps);
* Σ balances == Σ ledger entries on user accounts (`ledger_total`);
* no account is negative or mismatched (balance ≠ Σ its entries), no transaction is unbalanced.
A snapshot that failed (e.g. the database was down) is counted, not judged. A run without snapshots
(a history recorded before they existed) is "not judged" and passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.conservation import books_total
from walletchaos.checks.index import RunIndex
from walletchaos.history import AUDIT_KIND

NAME = "bank_snapshots"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "total_vs_books", "total_above_books", "total_vs_ledger", "negative_accounts", "mismatched_accounts",
    "unbalanced_transactions",
)
LISTS = ("negative_accounts", "mismatched_accounts", "unbalanced_transactions")
HOLDS = "pending_withdrawal_holds"


def _faults_at(ctx: CheckContext, t0: float, t1: float) -> list[str]:
    return [f"{name}@{target}" if target else name for s, e, name, target in ctx.fault_windows if s <= t1 and e >= t0]


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    if index is not None and index.history is history:
        snaps = sorted(index.ops((AUDIT_KIND,), ("ok", "fail", "unknown")), key=lambda o: o["invoke_ts"])
    else:
        snaps = [o for o in history if o["kind"] == AUDIT_KIND]
    if not snaps:
        return CheckResult(NAME, True, "not judged: no audit snapshots in the history", [],
                           {"judged": False, "snapshots": 0})
    found = Findings(ctx.max_counterexamples)
    opening = int(final.get("opening_total", 0))
    ok = 0
    for op in snaps:
        audit = op.get("audit")
        if op["outcome"] != "ok" or not isinstance(audit, Mapping):
            continue
        ok += 1
        where = {"op_id": op["op_id"], "request_id": op.get("request_id"), "invoke_ts": op["invoke_ts"],
                 "complete_ts": op["complete_ts"], "phase": op.get("phase"),
                 "faults_active": _faults_at(ctx, op["invoke_ts"], op["complete_ts"])}
        total = audit["total_balance"]
        books = books_total(opening, audit)
        holds = audit.get(HOLDS)
        numbers = {"total_balance": total, "opening_total": opening, "external_in": audit["external_in"],
                   "external_out": audit["external_out"], HOLDS: holds}
        if holds is not None and total != books - holds:
            found.add("total_vs_books", **where, **numbers, expected=books - holds,
                      difference=total - (books - holds))
        elif holds is None and total > books:
            found.add("total_above_books", **where, **numbers, expected_at_most=books, difference=total - books)
        if "ledger_total" in audit and audit["ledger_total"] != total:
            found.add("total_vs_ledger", **where, total_balance=total, ledger_total=audit["ledger_total"],
                      difference=total - audit["ledger_total"])
        for name in LISTS:
            if audit.get(name):
                found.add(name, **where, ids=list(audit[name])[:10], count=len(audit[name]))
    starts = [o["invoke_ts"] for o in snaps]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    stats = {"judged": True, "snapshots": len(snaps), "snapshots_ok": ok, "snapshots_failed": len(snaps) - ok,
             "max_gap_s": round(max(gaps), 3) if gaps else None,
             "first_ts": starts[0], "last_ts": starts[-1]}
    return found.result(NAME, f"all {ok} ok audit snapshots balanced ({len(snaps) - ok} failed, not judged; "
                              f"largest gap {stats['max_gap_s']} s)", stats)
