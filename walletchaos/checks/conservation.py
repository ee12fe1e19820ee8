"""Conservation: money is neither created nor destroyed.

Four views must agree: the wallet's balances (Σ accounts), its books (audit external_in/out, and the
succeeded transactions behind them), the gateway's record of what it really charged / paid out, and
what the clients were told: Σ acknowledged ≤ actual ≤ Σ (acknowledged + unknown-resolved-succeeded),
per kind. Retries share an idempotency key, so the client view counts each key once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index

NAME = "conservation"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "balances_vs_books", "audit_total_vs_accounts", "audit_vs_transactions", "gateway_charged_vs_external_in",
    "gateway_paid_out_vs_external_out", "deposits_below_acknowledged", "withdrawals_below_acknowledged",
    "deposits_above_possible", "withdrawals_above_possible", "deposit_applied_but_not_acknowledged",
    "withdrawal_applied_but_not_acknowledged",
)
EXTERNAL = ("deposit", "withdrawal")  # the kinds that move money across the wallet's boundary


def books_total(opening: int, audit: Mapping[str, Any]) -> int:
    """What Σ user balances must be by the books: opening + money in − money out."""
    return opening + audit["external_in"] - audit["external_out"]


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    export = final["export"]
    audit = export["audit"]
    opening = int(final.get("opening_total", 0))

    total = sum(a["balance"] for a in export["accounts"])
    ext_in, ext_out = audit["external_in"], audit["external_out"]
    expected = books_total(opening, audit)
    if total != expected:
        found.add("balances_vs_books", sum_balances=total, opening_total=opening, external_in=ext_in,
                  external_out=ext_out, expected=expected, difference=total - expected)
    if audit.get("total_balance", total) != total:
        found.add("audit_total_vs_accounts", audit_total_balance=audit["total_balance"], sum_balances=total)

    txn_in, txn_out = ix.export.amount("deposit"), ix.export.amount("withdrawal")
    if (txn_in, txn_out) != (ext_in, ext_out):
        found.add("audit_vs_transactions", external_in=ext_in, succeeded_deposits=txn_in,
                  external_out=ext_out, succeeded_withdrawals=txn_out)

    gw_in, gw_out = ix.export.gateway_total["deposit"], ix.export.gateway_total["withdrawal"]
    if gw_in != ext_in:
        found.add("gateway_charged_vs_external_in", gateway_charged=gw_in, external_in=ext_in,
                  difference=gw_in - ext_in)
    if gw_out != ext_out:
        found.add("gateway_paid_out_vs_external_out", gateway_paid_out=gw_out, external_out=ext_out,
                  difference=gw_out - ext_out)

    low, high = ix.acknowledged, ix.possible
    actual = {"deposit": ext_in, "withdrawal": ext_out}
    for kind in EXTERNAL:
        if actual[kind] < low[kind]:
            found.add(f"{kind}s_below_acknowledged", acknowledged=low[kind], actual=actual[kind],
                      missing=low[kind] - actual[kind])
        if actual[kind] > high[kind]:
            found.add(f"{kind}s_above_possible", possible=high[kind], actual=actual[kind],
                      excess=actual[kind] - high[kind])
            possible = ix.possibly_applied_keys(kind)
            for t in export["transactions"]:
                if t["kind"] == kind and t["status"] == "succeeded" and t.get("idempotency_key") not in possible:
                    found.add(f"{kind}_applied_but_not_acknowledged", txn_id=t["transaction_id"],
                              idempotency_key=t.get("idempotency_key"), amount=t["amount"])

    bounds = {k: {"acknowledged": low[k], "possible": high[k], "actual": actual[k]} for k in EXTERNAL}
    stats = {"sum_balances": total, "opening_total": opening, "external_in": ext_in, "external_out": ext_out,
             "gateway_charged": gw_in, "gateway_paid_out": gw_out, "client_bounds": bounds}
    return found.result(NAME, f"Σ balances {total} = {opening} + {ext_in} − {ext_out}; gateway and clients agree",
                        stats)
