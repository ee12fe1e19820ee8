"""RunIndex: one pass over the history and one over the export, shared by every checker.

At 1M ops each op is a large dict, so every pass over the history is cache-miss bound (~0.1 s bare)
and every big dict built costs ~0.5 µs per entry; eight checkers each walking the history and
re-indexing the export missed the 500k ops/s target by 4×. So run_checks builds one RunIndex and
hands it to each checker (a checker called alone builds its own). The index only groups and
looks up; judging stays in the checkers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from itertools import chain
from typing import Any

from walletchaos.checks.base import CheckContext
from walletchaos.history import KINDS, WRITE_KINDS
from walletchaos.reconcile import STATUS_RANK, resolve_unknowns

Op = dict[str, Any]
Txn = dict[str, Any]
# which op stands for an idempotency key when a client sent it several times (retries)
_OUTCOME_RANK = {"ok": 3, "unknown": 2, "fail": 1}


class ExportIndex:
    """One pass over final["export"]["transactions"]."""

    def __init__(self, transactions: Sequence[Txn]) -> None:
        by_key: dict[str, Txn] = {}
        duplicates: dict[str, list[Txn]] = {}
        succeeded_total: dict[str, int] = {}
        pending: list[Txn] = []
        unbalanced: list[Txn] = []
        keyless: list[Txn] = []
        rank = STATUS_RANK
        for t in transactions:
            status = t["status"]
            if status == "succeeded":
                kind = t["kind"]
                succeeded_total[kind] = succeeded_total.get(kind, 0) + t["amount"]
            elif status == "pending":
                pending.append(t)
            if t.get("entries_sum") != 0:
                unbalanced.append(t)
            key = t.get("idempotency_key")
            if key is None:
                keyless.append(t)
                continue
            prev = by_key.get(key)
            if prev is None:
                by_key[key] = t
                continue
            group = duplicates.get(key)
            if group is None:
                duplicates[key] = [prev, t]
            else:
                group.append(t)
            if rank.get(status, 0) > rank.get(prev["status"], 0):
                by_key[key] = t
        self.transactions = transactions
        self.by_key = by_key                    # key → most-applied txn (succeeded > pending > failed)
        self.duplicates = duplicates            # key → all its txns, only keys with more than one
        self.succeeded_total = succeeded_total  # kind → Σ amount of succeeded txns
        self.pending = pending
        self.unbalanced = unbalanced            # entries_sum != 0
        self.keyless = keyless                  # no idempotency_key at all

    @cached_property
    def by_id(self) -> dict[str, Txn]:
        return {t["transaction_id"]: t for t in self.transactions}

    def amount(self, kind: str) -> int:
        return self.succeeded_total.get(kind, 0)


class RunIndex:
    """Ops grouped by kind then outcome; per idempotency key its representative write op; the few ops
    clear_errors and recovery inspect one by one; and (lazily) the ExportIndex."""

    def __init__(self, history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext) -> None:
        self.history = history
        self.final = final
        self.n_ops = len(history)
        self.fault_end = max((e for _, e, _, _ in ctx.fault_windows), default=None)
        after_ts = self.fault_end if self.fault_end is not None and math.isfinite(self.fault_end) else math.inf
        slow_ms = (ctx.deadline_s + ctx.deadline_slack_s) * 1000.0
        groups: dict[str, dict[str, list[Op]]] = {k: {"ok": [], "fail": [], "unknown": []} for k in KINDS}
        by_key: dict[str, Op] = {}
        transport: list[Op] = []
        errors: list[Op] = []
        slow: list[Op] = []
        after: list[Op] = []
        writes, rank = WRITE_KINDS, _OUTCOME_RANK
        for op in history:
            kind, outcome = op["kind"], op["outcome"]
            try:
                groups[kind][outcome].append(op)
            except KeyError:  # a kind/outcome outside the format: keep it, checkers may ask for it
                groups.setdefault(kind, {}).setdefault(outcome, []).append(op)
            if kind in writes:
                key = op["idempotency_key"]
                if key is not None:
                    prev = by_key.get(key)
                    if prev is None or rank[outcome] > rank[prev["outcome"]]:
                        by_key[key] = op
            status = op["status"]
            if status is None:
                if op["error"]:
                    transport.append(op)
            else:
                latency = op["latency_ms"]
                if latency is not None and latency > slow_ms:
                    slow.append(op)
                if status >= 300 or status < 200:
                    errors.append(op)
            if op["invoke_ts"] >= after_ts:
                after.append(op)
        self.groups = groups
        self.write_by_key = by_key  # key → its best-outcome write op (ok > unknown > fail)
        self.transport = transport  # no HTTP response at all
        self.errors = errors        # non-2xx responses
        self.slow = slow            # answered later than deadline + slack
        self.after_fault = after    # invoked after the last fault ended (history order)

    def ops(self, kinds: Iterable[str], outcomes: Iterable[str] = ("ok", "fail", "unknown")) -> Iterator[Op]:
        """Ops of the given kinds and outcomes (grouped, so not in history order across groups)."""
        outcomes = tuple(outcomes)
        groups = self.groups
        return chain.from_iterable(groups.get(k, {}).get(o, ()) for k in kinds for o in outcomes)

    @cached_property
    def export(self) -> ExportIndex:
        return ExportIndex(self.final["export"]["transactions"])

    @cached_property
    def resolutions(self) -> dict[str, dict[str, Any]]:
        """final["resolutions"] when the runner stored it, else recomputed from the export (same rule)."""
        stored = self.final.get("resolutions")
        if stored is not None:
            return stored
        return resolve_unknowns(self.ops(WRITE_KINDS, ("unknown",)), self.final["export"],
                                (self.export.by_id, self.export.by_key))


def get_index(history: Sequence[Op], final: Mapping[str, Any], ctx: CheckContext,
              index: RunIndex | None) -> RunIndex:
    """The shared index when run_checks passed one for these inputs, else a fresh one."""
    if index is not None and index.history is history and index.final is final:
        return index
    return RunIndex(history, final, ctx)
