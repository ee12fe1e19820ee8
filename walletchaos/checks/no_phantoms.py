"""No phantoms: every transaction in the ledger traces back to a write some client issued (any outcome),
by its idempotency key. A transaction without a key, or with a key no client sent, came from nowhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "no_phantoms"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "transaction_without_key", "transaction_with_unissued_key",
)


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    exp = ix.export
    for t in exp.keyless:
        found.add("transaction_without_key", txn_id=t["transaction_id"], kind=t["kind"],
                  status=t["status"], amount=t["amount"])
    i = ix.issued.find(0)  # ix.issued[i] == 0: no client write carried the key of txns[i]
    while i != -1:
        txn = exp.transactions[i]
        key = txn["idempotency_key"]
        for t in exp.duplicates.get(key, (txn,)):
            found.add("transaction_with_unissued_key", txn_id=t["transaction_id"], idempotency_key=key,
                      kind=t["kind"], status=t["status"], amount=t["amount"])
        i = ix.issued.find(0, i + 1)
    n = len(exp.transactions)
    return found.result(NAME, f"all {n} transactions trace to a request some client issued",
                        {"transactions": n, "keys": len(exp.by_key)})
