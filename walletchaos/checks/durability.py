"""Durability: an acknowledged write is never lost — every ok deposit/withdrawal/transfer is in the final
export, succeeded, with the amount the client asked for; every ok register's account still exists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "durability"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "acknowledged_write_lost", "acknowledged_write_not_succeeded", "acknowledged_amount_changed",
    "acknowledged_account_lost",
)


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    for op, t in ix.ack_mismatch:
        if t is None and op["idempotency_key"] is None and op["txn_id"] is not None:
            t = ix.export.by_id.get(op["txn_id"])  # a write without key: match by the txn id it was given
            if t is not None and t["status"] == "succeeded" and t["amount"] == op["args"].get("amount", t["amount"]):
                continue
        if t is None:
            found.add("acknowledged_write_lost", op_id=op["op_id"], kind=op["kind"], txn_id=op["txn_id"],
                      idempotency_key=op["idempotency_key"], request_id=op["request_id"],
                      amount=op["args"].get("amount"))
        elif t["status"] != "succeeded":
            found.add("acknowledged_write_not_succeeded", op_id=op["op_id"], kind=op["kind"],
                      txn_id=t["transaction_id"], final_status=t["status"], request_id=op["request_id"])
        else:
            found.add("acknowledged_amount_changed", op_id=op["op_id"], txn_id=t["transaction_id"],
                      acknowledged=op["args"]["amount"], final=t["amount"])
    acked_writes = ix.acked_writes
    accounts = {a["account_id"] for a in final["export"]["accounts"]}
    acked_registers = 0
    for op in ix.ops(("register",), ("ok",)):
        acked_registers += 1
        if op["account_id"] not in accounts:
            found.add("acknowledged_account_lost", op_id=op["op_id"], account_id=op["account_id"],
                      request_id=op["request_id"])
    return found.result(NAME, f"all {acked_writes} acknowledged writes and {acked_registers} registrations durable",
                        {"acknowledged_writes": acked_writes, "acknowledged_registers": acked_registers})
