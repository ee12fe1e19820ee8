"""Exactly-once: one transaction per idempotency key (per user), one gateway application per reference,
and the gateway's own records match the wallet's succeeded deposits/withdrawals one-to-one (same amount).

The gateway reference of a transaction is its `gateway_reference` field when the export has one, else
its transaction_id (CONTRACT.md: the wallet charges "idempotent by transaction id").
A succeeded gateway charge without a succeeded deposit is money taken from the customer but never
credited; a payout without a succeeded withdrawal is money paid out that nobody was debited for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, gateway_reference, get_index

NAME = "exactly_once"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "key_applied_more_than_once", "gateway_reference_applied_twice", "deposit_without_gateway_charge",
    "withdrawal_without_gateway_payout", "charged_not_credited", "paid_out_not_debited",
    "deposit_amount_differs_from_gateway", "withdrawal_amount_differs_from_gateway",
)

# wallet transaction kind → (rule when the gateway lacks it, rule when the wallet does)
_SIDES = {
    "deposit": ("deposit_without_gateway_charge", "charged_not_credited"),
    "withdrawal": ("withdrawal_without_gateway_payout", "paid_out_not_debited"),
}


def _duplicate_keys(ix: RunIndex, found: Findings) -> None:
    """Keys with several transactions *of the same user* (keys are scoped per user by the contract)."""
    for key, group in ix.export.duplicates.items():
        per_user: dict[Any, list[Mapping[str, Any]]] = {}
        for t in group:
            per_user.setdefault(t.get("user_id"), []).append(t)
        for user_id, txns in per_user.items():
            if len(txns) > 1:
                found.add("key_applied_more_than_once", idempotency_key=key, user_id=user_id,
                          txn_ids=[t["transaction_id"] for t in txns], statuses=[t["status"] for t in txns])


def _orphans(ix: RunIndex, kind: str, by_ref: Mapping[str, Mapping[str, Any]], rule: str, found: Findings) -> None:
    """Succeeded gateway records no succeeded wallet txn of `kind` accounts for (only run when some exist)."""
    refs = {gateway_reference(t) for t in ix.export.transactions if t["kind"] == kind and t["status"] == "succeeded"}
    for ref, r in by_ref.items():
        if r.get("status") == "succeeded" and ref not in refs:
            t = ix.export.by_id.get(ref)
            found.add(rule, reference=ref, amount=r["amount"], txn_id=None if t is None else t["transaction_id"],
                      wallet_status=None if t is None else t["status"])


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    _duplicate_keys(ix, found)
    exp = ix.export
    for records, r in exp.gateway_duplicates:
        found.add("gateway_reference_applied_twice", records=records, reference=r["reference"])
    for t, r in exp.gateway_missing:
        found.add(_SIDES[t["kind"]][0], txn_id=t["transaction_id"], reference=gateway_reference(t),
                  amount=t["amount"], gateway_status=None if r is None else r.get("status"))
    for t, r in exp.gateway_amount:
        found.add(f"{t['kind']}_amount_differs_from_gateway", txn_id=t["transaction_id"],
                  reference=gateway_reference(t), wallet_amount=t["amount"], gateway_amount=r["amount"])
    for kind, by_ref in exp.gateway_by_ref.items():
        if exp.gateway_succeeded[kind] != exp.gateway_paired[kind]:
            _orphans(ix, kind, by_ref, _SIDES[kind][1], found)
    matched = sum(exp.gateway_paired.values()) - len(exp.gateway_amount)
    return found.result(NAME, f"every key applied once; {matched} gateway records match the ledger",
                        {"duplicate_keys": len(exp.duplicates), "gateway_matched": matched})
