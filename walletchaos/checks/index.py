"""RunIndex: the joins every checker needs, done in one pass over the history and one over the export.

Why: at 1M ops each op is a large dict, so every touch of an op is a cache miss (~0.1–0.3 µs here) and
every big dict built costs ~0.5 µs per entry. Eight checkers each walking the history and re-indexing
the export ran at ~120k ops/s; the target is 500k. So the index *joins* (client write ↔ ledger
transaction by idempotency key, ledger transaction ↔ gateway record by reference) while each record
is hot, and keeps only what the checkers judge: groups of ops, and the pairs that did not line up.
Checkers still own every rule, counterexample and summary; the index never decides pass/fail.
run_checks builds one index for all checkers; a checker called alone builds its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from itertools import chain
from typing import Any

from walletchaos.checks.base import CheckContext
from walletchaos.history import AUDIT_KIND, KINDS, WRITE_KINDS
from walletchaos.reconcile import STATUS_RANK, resolve_unknowns

Op = dict[str, Any]
Txn = dict[str, Any]
Record = dict[str, Any]
EXTERNAL = {"deposit": "charges", "withdrawal": "payouts"}  # txn kind → gateway record list
_LOW, _HIGH = 1, 2  # marks: this txn's key already counted in the acknowledged / possible bound
STEPS_PER_WINDOW = 4  # recovery: a sliding window is this many consecutive time buckets


def gateway_reference(txn: Mapping[str, Any]) -> str:
    """The reference the wallet used at the gateway: `gateway_reference` if exported, else the txn id
    (CONTRACT.md: the wallet charges the gateway "idempotent by transaction id")."""
    return txn.get("gateway_reference") or txn["transaction_id"]


class ExportIndex:
    """One pass over final["export"]["transactions"], matching each succeeded deposit/withdrawal with
    the gateway's record of the same reference."""

    def __init__(self, transactions: Sequence[Txn], gateway: Mapping[str, Any]) -> None:
        self.transactions = transactions
        self.gateway_duplicates: list[tuple[str, Record]] = []  # (records list, record) seen twice
        self.gateway_succeeded = dict.fromkeys(EXTERNAL, 0)  # kind → succeeded gateway records
        self.gateway_total = dict.fromkeys(EXTERNAL, 0)  # kind → Σ amount of succeeded gateway records
        self.gateway_by_ref: dict[str, dict[str, Record]] = {
            kind: self._by_ref(gateway.get(name, ()), name, kind) for kind, name in EXTERNAL.items()}
        by_key: dict[str, int] = {}
        duplicates: dict[str, list[Txn]] = {}
        succeeded_total: dict[str, int] = {}
        pending: list[Txn] = []
        unbalanced: list[Txn] = []
        keyless: list[Txn] = []
        gateway_missing: list[tuple[Txn, Record | None]] = []  # succeeded txn, gateway lacks a success
        gateway_amount: list[tuple[Txn, Record]] = []  # both succeeded, amounts differ
        paired = dict.fromkeys(EXTERNAL, 0)  # succeeded txns whose gateway record succeeded too
        not_representative = bytearray(len(transactions))  # 1: keyless, or a key's non-chosen duplicate
        rank = STATUS_RANK
        refs = self.gateway_by_ref
        for i, t in enumerate(transactions):
            status = t["status"]
            if status == "succeeded":
                kind = t["kind"]
                succeeded_total[kind] = succeeded_total.get(kind, 0) + t["amount"]
                by_ref = refs.get(kind)
                if by_ref is not None:
                    r = by_ref.get(t.get("gateway_reference") or t["transaction_id"])  # gateway_reference()
                    if r is None or r.get("status") != "succeeded":
                        gateway_missing.append((t, r))
                    else:
                        paired[kind] += 1
                        if r["amount"] != t["amount"]:
                            gateway_amount.append((t, r))
            elif status == "pending":
                pending.append(t)
            if t.get("entries_sum") != 0:
                unbalanced.append(t)
            key = t.get("idempotency_key")
            if key is None:
                keyless.append(t)
                not_representative[i] = 1
                continue
            prev = by_key.get(key)
            if prev is None:
                by_key[key] = i
                continue
            first = transactions[prev]
            group = duplicates.get(key)
            if group is None:
                duplicates[key] = [first, t]
            else:
                group.append(t)
            if rank.get(status, 0) > rank.get(first["status"], 0):
                by_key[key] = i
                not_representative[prev] = 1
            else:
                not_representative[i] = 1
        self.by_key = by_key                    # key → position of its most-applied txn
        self.duplicates = duplicates            # key → all its txns, only keys with more than one
        self.succeeded_total = succeeded_total  # kind → Σ amount of succeeded txns
        self.pending = pending
        self.unbalanced = unbalanced            # entries_sum != 0
        self.keyless = keyless                  # no idempotency_key at all
        self.gateway_missing = gateway_missing
        self.gateway_amount = gateway_amount
        self.gateway_paired = paired
        self.not_representative = not_representative

    def _by_ref(self, records: Iterable[Record], name: str, kind: str) -> dict[str, Record]:
        by_ref: dict[str, Record] = {}
        succeeded = total = 0
        for r in records:
            ref = r["reference"]
            if ref in by_ref:
                self.gateway_duplicates.append((name, r))
            by_ref[ref] = r
            if r.get("status") == "succeeded":
                succeeded += 1
                total += r["amount"]
        self.gateway_succeeded[kind] = succeeded
        self.gateway_total[kind] = total
        return by_ref

    @cached_property
    def by_id(self) -> dict[str, Txn]:
        return {t["transaction_id"]: t for t in self.transactions}

    def amount(self, kind: str) -> int:
        return self.succeeded_total.get(kind, 0)


class _TxnsByKey(Mapping[str, Txn]):
    """key → most-applied txn as a view over ExportIndex.by_key (no second 10⁶-entry dict)."""

    def __init__(self, export: ExportIndex) -> None:
        self._export = export

    def __getitem__(self, key: str) -> Txn:
        return self._export.transactions[self._export.by_key[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._export.by_key)

    def __len__(self) -> int:
        return len(self._export.by_key)


class RunIndex:
    """Ops grouped by kind then outcome; client writes joined with their ledger transaction; the few
    ops clear_errors and recovery inspect one by one."""

    def __init__(self, history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext) -> None:
        self.history = history
        self.final = final
        self.n_ops = len(history)
        self.fault_end = max((e for _, e, _, _ in ctx.fault_windows), default=None)
        self._stored_resolutions: Mapping[str, Mapping[str, Any]] | None = final.get("resolutions")
        export = ExportIndex(final["export"]["transactions"], final.get("gateway", {}))
        self.export = export
        after_ts = self.fault_end if self.fault_end is not None and math.isfinite(self.fault_end) else math.inf
        slow_ms = (ctx.deadline_s + ctx.deadline_slack_s) * 1000.0
        self.bucket_s = bucket_s = ctx.recovery_window_s / STEPS_PER_WINDOW
        expected = ctx.always_allowed
        bucket_ops: list[int] = []
        bucket_ok: list[int] = []
        last_after = after_ts

        groups: dict[str, dict[str, list[Op]]] = {k: {"ok": [], "fail": [], "unknown": []} for k in KINDS}
        transport: list[Op] = []
        errors: list[Op] = []
        slow: list[Op] = []
        after: list[Op] = []
        ack_mismatch: list[tuple[Op, Txn | None]] = []
        refused: list[tuple[Op, int | None]] = []
        refused_append = refused.append
        tagged: list[Op] = []  # ops with a `tag` (deliberate mistakes and attacks), history order
        append_tagged = tagged.append
        keys_before: set[str] = set()  # idempotency keys sent before the last fault ended
        acked = reads = 0
        negative_reads: list[Op] = []
        low = dict.fromkeys(EXTERNAL, 0)
        high = dict.fromkeys(EXTERNAL, 0)
        marks = bytearray(len(export.transactions))
        unmatched_marks: dict[str, int] = {}  # marks for keys with no transaction at all
        issued = bytearray(export.not_representative)  # 1 once a client write carried the txn's key
        writes, txns, by_key = WRITE_KINDS, export.transactions, export.by_key
        # bound methods and constants hoisted out of the loop: at 10⁶ ops every attribute lookup counts
        add_before, append_after = keys_before.add, after.append
        append_transport, append_error, append_slow = transport.append, errors.append, slow.append
        by_key_get, inv_bucket, n_buckets = by_key.get, 1.0 / bucket_s, 0

        for op in history:
            kind, outcome = op["kind"], op["outcome"]
            if op.get("tag") is not None:
                append_tagged(op)
            try:
                groups[kind][outcome].append(op)
            except KeyError:  # outside the format: keep it, a checker may still ask for it
                groups.setdefault(kind, {}).setdefault(outcome, []).append(op)
            if kind == AUDIT_KIND:  # the harness's own snapshots: judged by bank_snapshots alone
                continue
            status = op["status"]
            if status is None:
                if op["error"]:
                    append_transport(op)
            else:
                latency = op["latency_ms"]
                if latency is not None and latency > slow_ms:
                    append_slow(op)
                if not 200 <= status < 300:
                    append_error(op)
            ts = op["invoke_ts"]
            key = op.get("idempotency_key")
            if ts < after_ts:
                if key is not None:
                    add_before(key)
            else:
                append_after(op)
                # not counted: the client's own errors. Healthy: ok, and a correct replay of an outcome
                # recorded during the fault (202: that transaction is pending until reconcile;
                # GATEWAY_ERROR for a key first sent before the fault ended: it failed then)
                if not (outcome == "fail" and op["code"] in expected):
                    b = int((ts - after_ts) * inv_bucket)
                    if b >= n_buckets:
                        bucket_ops.extend([0] * (b + 1 - n_buckets))
                        bucket_ok.extend([0] * (b + 1 - n_buckets))
                        n_buckets = b + 1
                    bucket_ops[b] += 1
                    if outcome == "ok" or status == 202 or (op["code"] == "GATEWAY_ERROR" and key in keys_before):
                        bucket_ok[b] += 1
                    if ts > last_after:
                        last_after = ts
            if kind not in writes:
                if kind == "balance" and outcome == "ok":
                    balance = op["balance"]
                    if balance is not None:
                        reads += 1
                        if balance < 0:
                            negative_reads.append(op)
                continue
            # --- join the client's write with the ledger by idempotency key (`key` read above)
            i = by_key_get(key) if key is not None else None
            if i is not None:
                issued[i] = 1
            if outcome == "ok":
                acked += 1
                txn = None if i is None else txns[i]
                amount = op["args"].get("amount")
                if txn is None or txn["status"] != "succeeded" or (amount is not None and txn["amount"] != amount):
                    ack_mismatch.append((op, txn))
                bits = _LOW | _HIGH
            elif outcome == "unknown":
                bits = _HIGH if self._resolved_status(op, None if i is None else txns[i]) == "succeeded" else 0
                amount = op["args"].get("amount") if bits else None
            else:  # fail: joined with its key's transaction for honest_refusals
                refused_append((op, i))
                continue
            # --- client-view bounds of money in/out, each idempotency key counted once
            if kind not in low or not bits or key is None or amount is None:
                continue
            seen = marks[i] if i is not None else unmatched_marks.get(key, 0)
            if seen | bits == seen:
                continue
            if bits & ~seen & _LOW:
                low[kind] += amount
            if bits & ~seen & _HIGH:
                high[kind] += amount
            if i is not None:
                marks[i] = seen | bits
            else:
                unmatched_marks[key] = seen | bits

        self.groups = groups
        self.transport = transport        # no HTTP response at all
        self.errors = errors              # non-2xx responses
        self.slow = slow                  # answered later than deadline + slack
        self.after_fault = after          # invoked after the last fault ended (history order)
        self.keys_before_fault_end = keys_before  # idempotency keys first sent before the last fault ended
        self.bucket_ops = bucket_ops      # per bucket_s after the last fault: ops counted for recovery
        self.bucket_ok = bucket_ok        # ... of which ok (expected client errors are not counted at all)
        self.observed_after_fault_s = last_after - after_ts if after else 0.0
        self.balance_reads = reads
        self.negative_reads = negative_reads  # ok balance reads that returned a negative balance
        self.acked_writes = acked
        self.ack_mismatch = ack_mismatch  # ok writes whose txn is missing, not succeeded or another amount
        self.acknowledged = low           # kind → Σ amount of keys some client saw succeed
        self.possible = high              # kind → Σ amount of keys acknowledged or unknown-resolved-succeeded
        self.issued = issued              # per export txn: 0 = its key was never sent by any client
        self.refused_writes = refused     # (fail write, position of its key's most-applied txn or None)
        self.tagged = tagged

    def _resolved_status(self, op: Op, txn: Txn | None) -> str:
        """An unknown write's resolution: the stored one, else what resolve_unknowns would say."""
        stored = self._stored_resolutions
        if stored is not None:
            r = stored.get(op["op_id"])
            return "absent" if r is None else r["status"]
        if txn is None and op.get("txn_id") is not None:
            txn = self.export.by_id.get(op["txn_id"])
        return "absent" if txn is None else txn["status"]

    def ops(self, kinds: Iterable[str], outcomes: Iterable[str] = ("ok", "fail", "unknown")) -> Iterator[Op]:
        """Ops of the given kinds and outcomes (grouped, so not in history order across groups)."""
        outcomes = tuple(outcomes)
        groups = self.groups
        return chain.from_iterable(groups.get(k, {}).get(o, ()) for k in kinds for o in outcomes)

    def possibly_applied_keys(self, kind: str) -> set[str]:
        """Keys of `kind` some client saw succeed or sent with an unknown outcome resolved succeeded.
        Built on demand: only the failure path of conservation needs it."""
        res = self.resolutions
        keys = {op["idempotency_key"] for op in self.ops((kind,), ("ok",))}
        keys.update(op["idempotency_key"] for op in self.ops((kind,), ("unknown",))
                    if res.get(op["op_id"], {}).get("status") == "succeeded")
        return keys

    @cached_property
    def resolutions(self) -> Mapping[str, Mapping[str, Any]]:
        """final["resolutions"] when the runner stored it, else recomputed from the export (same rule)."""
        if self._stored_resolutions is not None:
            return self._stored_resolutions
        return resolve_unknowns(self.ops(WRITE_KINDS, ("unknown",)), self.final["export"],
                                (self.export.by_id, _TxnsByKey(self.export)))


def get_index(history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext,
              index: RunIndex | None) -> RunIndex:
    """The shared index when run_checks passed one for these inputs, else a fresh one."""
    if index is not None and index.history is history and index.final is final:
        return index
    return RunIndex(history, final, ctx)
