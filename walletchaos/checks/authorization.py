"""Authorization: nobody reads or moves money of an account, or reads a transaction, that is not theirs.

Rules (the whole class, not only the attacks the load makes on purpose):
- foreign_account_read: an ok balance/history read of an account owned by another user.
- foreign_transaction_read: an ok lookup (by id or by idempotency key) that served a transaction the
  reader neither created nor owns an account of.
- foreign_account_debit (client view): an acknowledged transfer/withdrawal out of another user's account.
- debit_by_non_owner (ledger view, from the export): a succeeded or pending transaction that takes money
  out of a user account was created by someone other than that account's owner (`transactions[].user_id`
  vs `accounts[].user_id`). Catches it even when the client never learned the outcome.
- attack_not_refused: an op tagged `intrusion`, `key_replay` or `bad_token` did not fail with the
  contract's code: 404 ACCOUNT_NOT_FOUND for another user's account, 404 TRANSACTION_NOT_FOUND for
  another user's transaction or idempotency key, 401 UNAUTHENTICATED for a forged token. An answer with
  an infrastructure code the scenario allows in that phase (e.g. DATABASE_UNAVAILABLE during a db fault)
  learned nothing and is not judged; neither is a request that got no answer (the ledger rules judge
  its effect).
- replayed_key_applied: a write tagged `key_replay` (another user's idempotency key, from the
  intruder's session) left a succeeded or pending transaction created by the intruder under that key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.catalog import INFRA_CODES
from walletchaos.checks.index import RunIndex, get_index
from walletchaos.checks.owners import EFFECT_STATUSES, Owners, debited_account
from walletchaos.history import TAG_BAD_TOKEN, TAG_INTRUSION, TAG_KEY_REPLAY, WRITE_KINDS

NAME = "authorization"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "attack_not_refused", "foreign_account_read", "foreign_transaction_read", "foreign_account_debit",
    "debit_by_non_owner", "replayed_key_applied",
)
ATTACK_TAGS = (TAG_INTRUSION, TAG_KEY_REPLAY, TAG_BAD_TOKEN)


def expected_code(op: Mapping[str, Any]) -> str:
    """The contract's answer to an attack op."""
    if op.get("tag") == TAG_BAD_TOKEN:
        return "UNAUTHENTICATED"
    if op["kind"] == "lookup":
        return "TRANSACTION_NOT_FOUND"
    return "ACCOUNT_NOT_FOUND"


def attack_kind(op: Mapping[str, Any]) -> str:
    """Stats bucket of an attack op: intrusion_read, intrusion_write, key_replay_lookup, ..."""
    tag = op.get("tag")
    if tag == TAG_BAD_TOKEN:
        return "bad_token"
    write = op["kind"] in WRITE_KINDS
    if tag == TAG_KEY_REPLAY:
        return "key_replay_write" if write else "key_replay_lookup"
    return "intrusion_write" if write else "intrusion_read"


def _ev(op: Mapping[str, Any], owners: Owners) -> dict[str, Any]:
    return {"op_id": op["op_id"], "request_id": op.get("request_id"), "kind": op["kind"], "tag": op.get("tag"),
            "actor": owners.actor(op), "target_owner": op.get("target_owner"), "args": op.get("args"),
            "status": op.get("status"), "code": op.get("code"), "invoke_ts": op["invoke_ts"],
            "complete_ts": op.get("complete_ts")}


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    export = final["export"]
    owners = Owners(ix.ops(("register",), ("ok",)), export)
    found = Findings(ctx.max_counterexamples)
    by_id = ix.export.by_id
    attacks: dict[str, int] = {}
    refused = 0
    reads = 0  # ok reads judged (balance, history, lookup)

    # --- attacks: answered with the contract's refusal
    for op in ix.tagged:
        if op.get("tag") not in ATTACK_TAGS:
            continue
        kind = attack_kind(op)
        attacks[kind] = attacks.get(kind, 0) + 1
        if op["outcome"] == "ok":
            found.add("attack_not_refused", **_ev(op, owners), expected=expected_code(op),
                      served_txn_id=op.get("txn_id"))
        elif op.get("status") is not None and op["outcome"] == "fail":
            code = op.get("code")
            if code == expected_code(op):
                refused += 1
            elif not (code in INFRA_CODES and ctx.phase_allows(code, op)):
                found.add("attack_not_refused", **_ev(op, owners), expected=expected_code(op))

    # --- client view of everyone else: reads served and writes acknowledged (attacks reported above).
    # The hot loop of this checker (every ok op): locals only, the actor inlined (Owners.actor).
    account_user, registered = owners.account_user, owners.registered
    attack_tags = ATTACK_TAGS
    for op in ix.ops(("balance", "history", "lookup", *WRITE_KINDS), ("ok",)):
        actor = op.get("owner_user") or registered.get((op.get("worker", ""), op.get("user", "")))
        if actor is None or op.get("tag") in attack_tags:
            continue
        kind = op["kind"]
        args = op["args"]
        if kind == "balance" or kind == "history":
            reads += 1
            owner = account_user.get(args.get("account_id"))
            if owner is not None and owner != actor:
                found.add("foreign_account_read", **_ev(op, owners), account_owner=owner)
        elif kind == "lookup":
            reads += 1
            txn = by_id.get(op.get("txn_id") or args.get("transaction_id"))
            if txn is not None and not owners.may_see(actor, txn):
                found.add("foreign_transaction_read", **_ev(op, owners), txn_id=txn["transaction_id"],
                          txn_owner=owners.txn_user(txn))
        else:
            src = debited_account(kind, args)
            owner = account_user.get(src) if src else None
            if owner is not None and owner != actor:
                found.add("foreign_account_debit", **_ev(op, owners), account_id=src, account_owner=owner,
                          txn_id=op.get("txn_id"))

    # --- ledger view: every debit of a user account was ordered by its owner
    debits = 0
    account_user_id = {a["account_id"]: a.get("user_id") for a in export.get("accounts", ())}
    for t in ix.export.transactions:
        if t.get("status") not in EFFECT_STATUSES or t.get("kind") not in ("transfer", "withdrawal"):
            continue
        src = t.get("from_account_id")
        owner_id = account_user_id.get(src)
        if owner_id is None:
            continue  # not a user account (clearing) or unknown
        debits += 1
        if t.get("user_id") != owner_id:
            found.add("debit_by_non_owner", txn_id=t["transaction_id"], kind=t["kind"], status=t["status"],
                      amount=t.get("amount"), account_id=src, account_owner=owners.account_user.get(src),
                      created_by=owners.txn_user(t) or t.get("user_id"),
                      idempotency_key=t.get("idempotency_key"), created_at=t.get("created_at"))

    # --- a replayed idempotency key applied nothing for the intruder
    replays = [op for op in ix.tagged if op.get("tag") == TAG_KEY_REPLAY and op["kind"] in WRITE_KINDS]
    if replays:
        by_key: dict[str, list[dict[str, Any]]] = {}
        for t in ix.export.transactions:
            k = t.get("idempotency_key")
            if k is not None:
                by_key.setdefault(k, []).append(t)
        for op in replays:
            actor_id = owners.user_id.get(owners.actor(op) or "")
            for t in by_key.get(op.get("idempotency_key") or "", ()):
                if t.get("status") in EFFECT_STATUSES and actor_id is not None and t.get("user_id") == actor_id:
                    found.add("replayed_key_applied", **_ev(op, owners), txn_id=t["transaction_id"],
                              txn_status=t["status"], amount=t.get("amount"))

    n_attacks = sum(attacks.values())
    return found.result(
        NAME, f"{n_attacks} attacks all refused with the contract's code; {reads} reads and {debits} "
              "ledger debits all by the owner",
        {"attacks": dict(sorted(attacks.items())), "attacks_refused": refused, "reads": reads,
         "ledger_debits": debits})
