"""Ledger: the double-entry books are internally consistent (balance = Σ entries, txn entries sum to 0)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "ledger"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "balance_not_sum_of_entries", "audit_unbalanced_transaction", "total_balance_vs_ledger_total",
    "entries_do_not_sum_to_zero",
)


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    export = final["export"]
    audit = export["audit"]
    for account_id in audit.get("mismatched_accounts", ()):
        found.add("balance_not_sum_of_entries", account_id=account_id)
    for txn_id in audit.get("unbalanced_transactions", ()):
        found.add("audit_unbalanced_transaction", txn_id=txn_id)
    if audit.get("ledger_total") is not None and audit.get("total_balance") != audit["ledger_total"]:
        found.add("total_balance_vs_ledger_total", total_balance=audit.get("total_balance"),
                  ledger_total=audit["ledger_total"])
    for t in ix.export.unbalanced:
        found.add("entries_do_not_sum_to_zero", txn_id=t["transaction_id"], kind=t["kind"],
                  status=t["status"], entries_sum=t.get("entries_sum"))
    n = len(export["transactions"])
    return found.result(NAME, f"{n} transactions balanced; every balance equals its entries", {"transactions": n})
