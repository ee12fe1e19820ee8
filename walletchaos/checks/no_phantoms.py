"""No phantoms: every transaction in the ledger traces back to a write some client issued (any outcome),
by its idempotency key. A transaction without a key, or with a key no client sent, came from nowhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "no_phantoms"


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    issued = ix.write_by_key
    exp = ix.export
    for t in exp.keyless:
        found.add("transaction_without_key", txn_id=t["transaction_id"], kind=t["kind"],
                  status=t["status"], amount=t["amount"])
    for key, txn in exp.by_key.items():
        if key not in issued:
            for t in exp.duplicates.get(key, (txn,)):
                found.add("transaction_with_unissued_key", txn_id=t["transaction_id"], idempotency_key=key,
                          kind=t["kind"], status=t["status"], amount=t["amount"])
    n = len(exp.transactions)
    return found.result(NAME, f"all {n} transactions trace to {len(issued)} issued keys",
                        {"transactions": n, "issued_keys": len(issued)})
