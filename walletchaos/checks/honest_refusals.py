"""Honest refusals: an answer that says "nothing was applied" never comes with an effect of its own.

By contract every problem answer except GATEWAY_TIMEOUT (left pending) and INTERNAL_ERROR applied
nothing (DATABASE_UNAVAILABLE, GATEWAY_ERROR, MAINTENANCE, RATE_LIMITED, INVALID_PIN,
INSUFFICIENT_FUNDS, ACCOUNT_FROZEN, ACCOUNT_LOCKED, VALIDATION_ERROR, ...: catalog.DEFINITE_REFUSALS).

Rule refusal_with_effect: a write answered with such a refusal, whose idempotency key has a succeeded
or pending transaction (money moved, or held) in the export created (server clock, `created_ts`, else
`created_at`) while that attempt was in flight — [invoke − skew, complete + skew] — and while no other
attempt of the same key was in flight. A transaction created during another attempt of the key (an attempt
that got no answer at all counts as in flight from its invoke on) is that attempt's effect, and a refusal replayed later for a key that succeeded earlier is the wallet telling
an earlier outcome, neither is this attempt's own effect. A failed transaction (e.g. GATEWAY_ERROR
after the hold was reversed) moved nothing and is fine.
Clock assumption: harness and wallet share one clock (one machine or synced clocks); ctx.clock_skew_s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.catalog import DEFINITE_REFUSALS
from walletchaos.checks.index import RunIndex, get_index
from walletchaos.checks.owners import EFFECT_STATUSES, Owners, created_ts
from walletchaos.history import WRITE_KINDS

NAME = "honest_refusals"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "refusal_with_effect",
)


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    skew = ctx.clock_skew_s
    txns = ix.export.transactions
    suspects: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    refusals = 0
    for op, i in ix.refused_writes:
        if op.get("status") is None or op.get("code") not in DEFINITE_REFUSALS:
            continue
        refusals += 1
        if i is None:
            continue
        key = op["idempotency_key"]
        group = ix.export.duplicates.get(key) or [txns[i]]
        effects = [t for t in group if t.get("status") in EFFECT_STATUSES]
        if effects:
            suspects.append((op, effects))
    if suspects:
        owners = Owners(ix.ops(("register",), ("ok",)), final["export"])
        keys = {op["idempotency_key"] for op, _ in suspects}
        attempts: dict[str, list[dict[str, Any]]] = {}
        for op in ix.ops(WRITE_KINDS):
            if op.get("idempotency_key") in keys:
                attempts.setdefault(op["idempotency_key"], []).append(op)
        for op, effects in suspects:
            t0, t1 = op["invoke_ts"] - skew, (op.get("complete_ts") or op["invoke_ts"]) + skew
            actor_id = owners.user_id.get(owners.actor(op) or "")
            for t in effects:
                ts = created_ts(t)
                if ts is None or not t0 <= ts <= t1:
                    continue
                if actor_id is not None and t.get("user_id") not in (None, actor_id):
                    continue  # keys are per user: another user's transaction under the same key
                # an attempt that got no answer at all may still be travelling to the wallet (a slow
                # network): it counts as in flight from its invoke on
                others = [o for o in attempts.get(op["idempotency_key"], ()) if o["op_id"] != op["op_id"]
                          and o["invoke_ts"] - skew <= ts
                          and (o.get("status") is None or ts <= (o.get("complete_ts") or float("inf")) + skew)]
                if others:
                    continue  # another attempt of the key was in flight: its effect, or ambiguous
                found.add("refusal_with_effect", op_id=op["op_id"], request_id=op.get("request_id"),
                          kind=op["kind"], code=op.get("code"), status=op.get("status"),
                          idempotency_key=op["idempotency_key"], invoke_ts=op["invoke_ts"],
                          complete_ts=op.get("complete_ts"), txn_id=t["transaction_id"],
                          txn_status=t["status"], amount=t.get("amount"), created_ts=ts,
                          args=op.get("args"))
    return found.result(
        NAME, f"{refusals} definite refusals, none with an effect of its own",
        {"definite_refusals": refusals, "refusals_with_a_txn_under_the_key": len(suspects)})
