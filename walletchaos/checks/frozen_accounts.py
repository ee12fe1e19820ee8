"""Frozen accounts: no money leaves or enters an account while risk control has it frozen.

The freeze windows come from the freeze fault's events: `fault_start.details.frozen_at` (account →
epoch seconds its freeze call was answered: frozen for certain from then) and
`fault_end.details.unfreezing_at` (account → epoch seconds its unfreeze call was sent: frozen for
certain until then). An older events file without those times falls back to the fault's window
[fault_start, fault_end] for every account in `details.accounts`.

Rules:
- moved_while_frozen (ledger, from the export): a succeeded or pending transaction touching a frozen
  account (from or to) created and committed inside its freeze window, by the server's clock
  (`created_ts`, else `created_at`; `committed_ts` when exported, else the creation time).
- acknowledged_while_frozen (client view): a deposit/withdrawal/transfer touching a frozen account,
  invoked and answered inside its window, answered ok or 202 — unless its idempotency key was first sent
  before the freeze (then it replays an earlier outcome).
- freeze_froze_nothing: a freeze fault ran but found no account to freeze (e.g. it started before any
  user had registered): the run cannot judge what it claims to, so it does not pass.
- wrong_refusal: such an op refused with a code that neither is ACCOUNT_FROZEN (403) nor can come
  before the account's state is looked at (bad request, session, PIN, key; see catalog.PRECEDES_FREEZE),
  nor is an infrastructure code the scenario allows in that phase.
Clock assumption: the harness and the wallet share one clock (one machine, or synced clocks), so the
wallet's `created_ts` compares with the harness's event times; ctx.clock_skew_s (0.05 s) shrinks every
window on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.catalog import INFRA_CODES, PRECEDES_FREEZE
from walletchaos.checks.index import RunIndex, get_index
from walletchaos.checks.owners import EFFECT_STATUSES, created_ts, money_accounts, txn_accounts
from walletchaos.history import WRITE_KINDS

NAME = "frozen_accounts"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "freeze_froze_nothing", "moved_while_frozen", "acknowledged_while_frozen", "wrong_refusal",
    "no_server_times",
)
FREEZE_FAULT = "freeze"


def freeze_windows(events: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """account → [(frozen from, frozen until)] from the freeze faults' events."""
    out: dict[str, list[tuple[float, float]]] = {}
    starts: dict[str, Mapping[str, Any]] = {}
    last_ts = max((e["ts"] for e in events), default=0.0)
    for e in sorted(events, key=lambda e: e["ts"]):
        details = e.get("details") or {}
        if details.get("fault") != FREEZE_FAULT:
            continue
        if e["kind"] == "fault_start":
            starts[e["name"]] = e
        elif e["kind"] == "fault_end" and e["name"] in starts:
            start = starts.pop(e["name"])
            _add(out, start, e["ts"], details.get("unfreezing_at") or {})
    for start in starts.values():  # never ended (aborted run): frozen until the last event
        _add(out, start, last_ts, {})
    return out


def _add(out: dict[str, list[tuple[float, float]]], start: Mapping[str, Any], end_ts: float,
         unfreezing_at: Mapping[str, float]) -> None:
    details = start.get("details") or {}
    frozen_at = details.get("frozen_at") or {}
    for acct in details.get("accounts") or ():
        lo = frozen_at.get(acct, start["ts"])
        hi = unfreezing_at.get(acct, end_ts)
        if hi > lo:
            out.setdefault(acct, []).append((lo, hi))


def _inside(windows: list[tuple[float, float]] | None, t0: float, t1: float, skew: float) -> tuple[float, float] | None:
    for lo, hi in windows or ():
        if t0 >= lo + skew and t1 <= hi - skew:
            return (lo, hi)
    return None


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    frozen = freeze_windows(ctx.events)
    skew = ctx.clock_skew_s
    if not frozen:
        empty = [e for e in ctx.events if e["kind"] == "fault_start"
                 and (e.get("details") or {}).get("fault") == FREEZE_FAULT]
        for e in empty:  # a freeze that froze nothing cannot show what this invariant judges
            found.add("freeze_froze_nothing", fault=e["name"], ts=e["ts"], details=e.get("details"))
        return found.result(NAME, "no account was frozen in this run", {"frozen_accounts": 0})

    untimed = 0
    txns_checked = 0
    for t in ix.export.transactions:
        accts = [a for a in txn_accounts(t) if a in frozen]
        if not accts:
            continue
        ts = created_ts(t)
        if ts is None:
            untimed += 1
            continue
        txns_checked += 1
        # created (transaction start) and committed inside: PostgreSQL's now() is the transaction's start,
        # so a transaction begun just before the unfreeze may read the account after it
        done = t.get("committed_ts") if isinstance(t.get("committed_ts"), (int, float)) else ts
        for acct in accts:
            window = _inside(frozen[acct], ts, max(ts, done), skew)
            if window is not None and t.get("status") in EFFECT_STATUSES:
                found.add("moved_while_frozen", txn_id=t["transaction_id"], kind=t.get("kind"),
                          status=t.get("status"), amount=t.get("amount"), account_id=acct, created_ts=ts,
                          frozen_from=window[0], frozen_until=window[1],
                          idempotency_key=t.get("idempotency_key"))

    first_sent: dict[str, float] = {}  # key → invoke time of its first attempt
    for op in ix.ops(WRITE_KINDS):
        key = op.get("idempotency_key")
        if key is not None and op["invoke_ts"] < first_sent.get(key, float("inf")):
            first_sent[key] = op["invoke_ts"]
    ops_in_window = frozen_answers = 0
    for op in ix.ops(WRITE_KINDS):
        key = op.get("idempotency_key")
        if op.get("status") is None:
            continue
        t0, t1 = op["invoke_ts"], op.get("complete_ts") or op["invoke_ts"]
        for acct in money_accounts(op["kind"], op.get("args") or {}):
            window = _inside(frozen.get(acct), t0, t1, skew)
            if window is None:
                continue
            ops_in_window += 1
            ev = {"op_id": op["op_id"], "request_id": op.get("request_id"), "kind": op["kind"],
                  "account_id": acct, "args": op.get("args"), "invoke_ts": t0, "complete_ts": t1,
                  "frozen_from": window[0], "frozen_until": window[1], "status": op.get("status"),
                  "code": op.get("code"), "idempotency_key": key}
            code = op.get("code")
            if op["outcome"] == "ok" or op.get("status") == 202:
                if key is None or first_sent.get(key, t0) >= window[0] + skew:
                    found.add("acknowledged_while_frozen", **ev, txn_id=op.get("txn_id"))
            elif code == "ACCOUNT_FROZEN":
                frozen_answers += 1
            elif not (code in PRECEDES_FREEZE or (code in INFRA_CODES and ctx.phase_allows(code, op))
                      or (key is not None and first_sent.get(key, t0) < window[0])):
                found.add("wrong_refusal", **ev, expected="ACCOUNT_FROZEN")
            break
    stats = {"frozen_accounts": len(frozen), "windows": {a: w for a, w in sorted(frozen.items())},
             "txns_touching_frozen": txns_checked, "txns_without_time": untimed,
             "money_ops_in_window": ops_in_window, "answered_account_frozen": frozen_answers}
    if untimed and not txns_checked:
        found.add("no_server_times", detail="the export's transactions carry neither created_ts nor a "
                  "parseable created_at: the ledger side cannot be judged", transactions=untimed)
    return found.result(
        NAME, f"{len(frozen)} frozen accounts: {ops_in_window} money ops inside their windows, none applied "
              f"({frozen_answers} answered ACCOUNT_FROZEN); no transaction moved their money", stats)
