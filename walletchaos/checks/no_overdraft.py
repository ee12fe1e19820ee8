"""No overdraft: no balance is ever negative — in the final snapshot, the audit, or any balance read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "no_overdraft"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "negative_final_balance", "audit_negative_account", "negative_balance_read",
)


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    export = final["export"]
    for a in export["accounts"]:
        if a["balance"] < 0:
            found.add("negative_final_balance", account_id=a["account_id"], balance=a["balance"])
    for account_id in export["audit"].get("negative_accounts", ()):
        found.add("audit_negative_account", account_id=account_id)
    reads = ix.balance_reads
    for op in ix.negative_reads:
        found.add("negative_balance_read", op_id=op["op_id"], account_id=op["account_id"],
                  request_id=op["request_id"], balance=op["balance"], ts=op["invoke_ts"])
    return found.result(NAME, f"no negative balance in {len(export['accounts'])} accounts and {reads} reads",
                        {"accounts": len(export["accounts"]), "balance_reads": reads})
