"""Read consistency: what clients were shown matches the ledger at the time they asked.

Two rules, both judged against the export's ledger `entries` (per-account `seq`, `balance_after`,
server `created_at`; docs/internals.md "Export ledger entries"):

* **Balance reads are linearizable.** Each account's balance is a register written by its ledger
  entries in `seq` order. Entry k takes effect at some instant e_k with
  created_at_k ≤ e_k ≤ hi_k, where hi_k is the earliest evidence that it was visible: the next entry
  of the same account was written (it read this one's balance), a client was told the transaction's
  outcome (201/202 answer), or the transaction's `committed_ts`. An ok balance read invoked at t0 and
  completed at t1 must return a balance the account could have had at some instant in [t0, t1]. When
  every e_k is known (a tiny interval), this is exactly linearizability of a register per account (the
  test cross-checks it against porcupine); when it is not, the rule is the sound relaxation that never
  accuses a read racing a commit.
* **History pages are complete and true.** An ok `history` op (field `items`: the transaction ids
  served, in order) holds only transactions that exist, touch that account and were created before
  the read completed; newest first (`created_ts` descending, the contract wallet's order); and every
  transaction of the account known committed before the read was invoked, unless the page was full
  and that transaction is older than everything on it (limit = newest N).

Clock assumption: harness and wallet share one clock (one machine or synced clocks); times from the
two sides are compared with a skew allowance of SKEW_S seconds.
An export without `entries` (a wallet that does not provide them) is "not judged", and passes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex

NAME = "read_consistency"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "entry_chain_broken", "stale_or_unknown_balance", "history_duplicate_row", "history_row_never_existed",
    "history_row_of_other_account", "history_row_from_the_future", "history_out_of_order",
    "history_missing_row",
)
SKEW_S = 0.05  # harness and wallet clocks may differ by this much (same machine: far less)
ORDER_EPS_S = 1e-6  # created_ts compared for order: float noise, not a clock allowance
ACK_STATUSES = frozenset({201, 202})  # answers that prove the transaction's row was committed
NOT_JUDGED = "not judged: export has no entries"

Op = dict[str, Any]


@dataclass(frozen=True)
class State:
    """One balance the account held: from (at the earliest) `start` until (at the latest) `end`."""

    value: int
    start: float
    end: float
    seq: int  # the entry that set it (0: the opening balance)
    txn_id: str | None


def acknowledgements(history: Iterable[Op]) -> dict[str, float]:
    """txn id → the earliest instant a client was told it exists (a 201/202 answer naming it)."""
    acks: dict[str, float] = {}
    for op in history:
        txn_id = op.get("txn_id")
        if txn_id is None or op.get("status") not in ACK_STATUSES or op.get("complete_ts") is None:
            continue
        if op["complete_ts"] < acks.get(txn_id, math.inf):
            acks[txn_id] = op["complete_ts"]
    return acks


def visible_by(txn: Mapping[str, Any] | None, ack: float | None) -> float:
    """The instant by which a transaction's row was surely committed (inf: no evidence)."""
    committed = txn.get("committed_ts") if txn is not None else None
    return min(ack if ack is not None else math.inf, committed if committed is not None else math.inf)


def timelines(entries: Sequence[Mapping[str, Any]], txns: Mapping[str, Mapping[str, Any]],
              acks: Mapping[str, float], found: Findings) -> dict[str, list[State]]:
    """account → its balances in seq order, each with the window in which it may have been current."""
    by_account: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in entries:
        by_account[e["account_id"]].append(e)
    out: dict[str, list[State]] = {}
    for account, es in by_account.items():
        es.sort(key=lambda e: e["seq"])
        # hi_k: latest instant entry k can have taken effect
        his: list[float] = []
        for k, e in enumerate(es):
            created = float(e["created_at"])
            hi = visible_by(txns.get(e["txn_id"]), acks.get(e["txn_id"]))
            if hi < created:  # evidence about an earlier commit of that transaction (e.g. a hold), not this entry
                hi = math.inf
            if k + 1 < len(es):
                hi = min(hi, float(es[k + 1]["created_at"]))
            his.append(max(hi, created))
        opening = es[0]["balance_after"] - es[0]["amount"]
        states = [State(opening, -math.inf, his[0], 0, None)]
        prev = opening
        for k, e in enumerate(es):
            if e["balance_after"] != prev + e["amount"]:
                found.add("entry_chain_broken", account_id=account, seq=e["seq"], txn_id=e["txn_id"],
                          entry_id=e.get("entry_id"), previous_balance=prev, amount=e["amount"],
                          balance_after=e["balance_after"])
            prev = e["balance_after"]
            states.append(State(prev, float(e["created_at"]), his[k + 1] if k + 1 < len(es) else math.inf,
                                e["seq"], e["txn_id"]))
        out[account] = states
    return out


def judge_balance_read(op: Op, states: Sequence[State], found: Findings) -> None:
    t0, t1, value = op["invoke_ts"] - SKEW_S, op["complete_ts"] + SKEW_S, op["balance"]
    if any(s.value == value and s.start <= t1 and s.end >= t0 for s in states):
        return
    during = [s for s in states if s.start <= t1 and s.end >= t0]
    latest = during[-1] if during else states[-1]
    found.add("stale_or_unknown_balance", op_id=op["op_id"], request_id=op.get("request_id"),
              account_id=op["account_id"], balance_read=value, invoke_ts=op["invoke_ts"],
              complete_ts=op["complete_ts"], balances_possible_during_read=[s.value for s in during],
              latest_entry={"seq": latest.seq, "txn_id": latest.txn_id, "balance_after": latest.value,
                            "created_at": latest.start if math.isfinite(latest.start) else None},
              skew_s=SKEW_S)


def judge_page(op: Op, account_txns: Sequence[Mapping[str, Any]], txns: Mapping[str, Mapping[str, Any]],
               acks: Mapping[str, float], found: Findings) -> None:
    account, items = op["account_id"], op["items"]
    t0, t1 = op["invoke_ts"], op["complete_ts"]
    where = {"op_id": op["op_id"], "request_id": op.get("request_id"), "account_id": account,
             "invoke_ts": t0, "complete_ts": t1}
    served: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for pos, txn_id in enumerate(items):
        txn = txns.get(txn_id)
        if txn_id in seen:
            found.add("history_duplicate_row", **where, txn_id=txn_id, position=pos)
        seen.add(txn_id)
        if txn is None:
            found.add("history_row_never_existed", **where, txn_id=txn_id, position=pos)
            continue
        if account not in (txn.get("from_account_id"), txn.get("to_account_id")):
            found.add("history_row_of_other_account", **where, txn_id=txn_id, position=pos,
                      from_account_id=txn.get("from_account_id"), to_account_id=txn.get("to_account_id"))
            continue
        created = txn.get("created_ts")
        if created is not None and created > t1 + SKEW_S:
            found.add("history_row_from_the_future", **where, txn_id=txn_id, position=pos, created_ts=created,
                      skew_s=SKEW_S)
        served.append(txn)
    ordered = [t for t in served if t.get("created_ts") is not None]
    for newer, older in zip(ordered, ordered[1:]):
        if older["created_ts"] > newer["created_ts"] + ORDER_EPS_S:
            found.add("history_out_of_order", **where, txn_id=older["transaction_id"],
                      created_ts=older["created_ts"], listed_after=newer["transaction_id"],
                      listed_after_created_ts=newer["created_ts"], order="newest first (created_ts descending)")
            break
    if op.get("args", {}).get("cursor"):
        return  # a later page: completeness is judged on first pages only
    limit = op.get("args", {}).get("limit")
    full = limit is not None and len(items) >= limit
    oldest = min((t["created_ts"] for t in ordered), default=math.inf)
    missing = []
    for t in account_txns:
        if t["transaction_id"] in seen or visible_by(t, acks.get(t["transaction_id"])) >= t0 - SKEW_S:
            continue
        created = t.get("created_ts")
        if full and (created is None or created <= oldest + ORDER_EPS_S):
            continue  # a full page holds the newest `limit`: older ones (or ties) belong to the next page
        missing.append(t)
    for t in missing[:3]:
        found.add("history_missing_row", **where, txn_id=t["transaction_id"], kind=t.get("kind"),
                  status=t.get("status"), created_ts=t.get("created_ts"),
                  visible_since=visible_by(t, acks.get(t["transaction_id"])), page_size=len(items), limit=limit,
                  skew_s=SKEW_S)


def check(history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    export = final["export"]
    entries = export.get("entries")
    if entries is None:
        return CheckResult(NAME, True, f"{NOT_JUDGED} (this wallet's /admin/export has no `entries` list)", [],
                           {"judged": False, "note": NOT_JUDGED})
    found = Findings(ctx.max_counterexamples)
    ops: Iterable[Op] = (index.ops(("balance", "history"), ("ok",)) if index is not None and index.history is history
                         else (o for o in history if o["kind"] in ("balance", "history") and o["outcome"] == "ok"))
    txns = {t["transaction_id"]: t for t in export["transactions"]}
    acks = acknowledgements(history)
    lines = timelines(entries, txns, acks, found)
    by_account: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for t in export["transactions"]:
        for side in ("from_account_id", "to_account_id"):
            if t.get(side) is not None:
                by_account[t[side]].append(t)
    opening = [State(0, -math.inf, math.inf, 0, None)]
    reads = pages = unpaged = 0
    for op in ops:
        if op.get("account_id") is None or op.get("complete_ts") is None:
            continue
        if op["kind"] == "balance":
            if op.get("balance") is None:
                continue
            reads += 1
            judge_balance_read(op, lines.get(op["account_id"], opening), found)
        elif op.get("items") is None:
            unpaged += 1
        else:
            pages += 1
            judge_page(op, by_account.get(op["account_id"], ()), txns, acks, found)
    stats = {"judged": True, "balance_reads": reads, "history_pages": pages, "history_pages_without_items": unpaged,
             "entries": len(entries), "accounts_with_entries": len(lines), "skew_s": SKEW_S}
    return found.result(NAME, f"{reads} balance reads linearizable against {len(entries)} ledger entries; "
                              f"{pages} history pages complete and in order", stats)
