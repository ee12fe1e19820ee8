"""Synthetic runs: a consistent history + events + final state of n ops, optionally with one planted bug.

Shared by the checker tests (a good run must pass every checker, each bug must be caught by the
checkers in EXPECTED_FAILURES[bug]) and by the checker benchmark (1M ops). The simulation is a tiny
model of the wallet: balances, idempotency keys, gateway records, a DB fault in the middle of the run
that turns some requests into 503s, transport errors and 504/pending deposits, and client retries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from walletchaos.checks.base import CheckContext
from walletchaos.checks.catalog import CATALOG
from walletchaos.history import gc_paused, new_op
from walletchaos.reconcile import resolve_unknowns

FAULT_CODES = ("DATABASE_UNAVAILABLE", "GATEWAY_TIMEOUT", "GATEWAY_ERROR")

# bug → checkers that must fail on it (and only those)
EXPECTED_FAILURES: dict[str, frozenset[str]] = {
    "lost_write": frozenset({"durability", "exactly_once", "conservation"}),
    "double_apply": frozenset({"exactly_once", "conservation"}),
    "charge_no_credit": frozenset({"exactly_once", "conservation"}),
    "negative_read": frozenset({"no_overdraft"}),
    "leaky_500": frozenset({"clear_errors"}),
    "phantom": frozenset({"no_phantoms"}),
    "unbalanced": frozenset({"ledger"}),
    "slow": frozenset({"clear_errors"}),
    "disallowed_503": frozenset({"clear_errors"}),
    "no_recovery": frozenset({"recovery", "clear_errors"}),
    "stuck_pending": frozenset({"recovery"}),
    "balance_drift": frozenset({"ledger", "conservation"}),
}
BUGS = tuple(EXPECTED_FAILURES)

_PROBLEM_CT = "application/problem+json"


@dataclass
class SynthRun:
    history: list[dict[str, Any]]
    events: list[dict[str, Any]]
    final: dict[str, Any]

    def ctx(self, **kwargs: Any) -> CheckContext:
        """The context a scenario allowing the synthetic fault's codes would produce."""
        return CheckContext.for_scenario(self.events, FAULT_CODES, scenario="synthetic", **kwargs)


def problem(code: str, request_id: str, detail: str = "") -> dict[str, Any]:
    status, retryable = CATALOG[code]
    return {"type": f"https://walletchaos.dev/problems/{code.lower().replace('_', '-')}",
            "title": code.replace("_", " ").capitalize(), "status": status, "detail": detail or code,
            "code": code, "request_id": request_id, "retryable": retryable}


class _Sim:
    """The model wallet. One instance generates one run; kept small and sequential for speed."""

    def __init__(self, n: int, seed: int, bug: str | None) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.bug = bug
        self.duration = max(60.0, n / 2000.0)
        self.t0 = 1_763_900_000.0
        d = self.duration
        self.phase_starts = [(0.0, "warmup"), (0.3 * d, "fault"), (0.5 * d, "heal"), (0.55 * d, "recover"),
                             (0.9 * d, "final")]
        self.fault = (self.t0 + 0.3 * d, self.t0 + 0.5 * d)
        self.fault_effect_end = self.t0 + d if bug == "no_recovery" else self.fault[1]
        self.dt = d / max(n, 1)
        self.n_users = max(4, min(1000, n // 200))
        self.accounts = [f"acc-{u}" for u in range(self.n_users)]
        self.balances = dict.fromkeys(self.accounts, 0)
        self.txns: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.charges: list[dict[str, Any]] = []
        self.payouts: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.stuck_done = False

    # --- helpers -------------------------------------------------------------------------------
    def phase(self, ts: float) -> str:
        off = ts - self.t0
        name = "warmup"
        for start, p in self.phase_starts:
            if off >= start:
                name = p
        return name

    def emit(self, i: int, kind: str, ts: float, u: int, tag: str | None = None, **kw: Any) -> dict[str, Any]:
        latency_s = kw.pop("latency_s", None)
        if latency_s is None:
            latency_s = self.rng.uniform(0.005, 0.05)
        tag = tag or str(i)
        op = new_op(f"w0-u{u}-{tag}", kind, ts, worker="w0", user=f"u{u}", complete_ts=ts + latency_s,
                    request_id=f"r{tag}", phase=self.phase(ts), **kw)
        self.history.append(op)
        return op

    def error(self, i: int, kind: str, ts: float, u: int, code: str, tag: str | None = None,
              **kw: Any) -> dict[str, Any]:
        status = CATALOG[code].status
        return self.emit(i, kind, ts, u, tag, outcome="unknown" if status == 504 else "fail", status=status,
                         code=code, content_type=_PROBLEM_CT,
                         problem=problem(code, f"r{tag or i}"), **kw)

    def apply(self, i: int, kind: str, amount: int, src: str | None, dst: str | None, key: str,
              status: str = "succeeded") -> dict[str, Any]:
        txn = {"transaction_id": f"t{i}", "kind": kind, "status": status, "amount": amount,
               "from_account_id": src, "to_account_id": dst, "idempotency_key": key,
               "created_at": "2026-11-23T00:00:00Z", "failure_code": None,
               "user_id": (src or dst).replace("acc", "usr"), "entries_sum": 0}
        self.txns[txn["transaction_id"]] = txn
        self.by_key[key] = txn["transaction_id"]
        if status == "succeeded":
            self.settle(txn)
        return txn

    def settle(self, txn: dict[str, Any]) -> None:
        amount, src, dst = txn["amount"], txn["from_account_id"], txn["to_account_id"]
        if src:
            self.balances[src] -= amount
        if dst:
            self.balances[dst] += amount
        record = {"reference": txn["transaction_id"], "amount": amount, "status": "succeeded", "applied_at": 0.0}
        if txn["kind"] == "deposit":
            self.charges.append(record)
        elif txn["kind"] == "withdrawal":
            self.payouts.append(record)

    # --- operations ----------------------------------------------------------------------------
    def write(self, i: int, ts: float, u: int, kind: str) -> None:
        rng, acc = self.rng, self.accounts[u]
        amount = rng.randint(1, 500) * 100
        src, dst = {"deposit": (None, acc), "withdrawal": (acc, None),
                    "transfer": (acc, self.accounts[(u + 1 + rng.randrange(self.n_users - 1)) % self.n_users])}[kind]
        key = f"k{i}"
        args: dict[str, Any] = {"amount": amount}
        if src:
            args["from_account_id" if kind == "transfer" else "account_id"] = src
        if dst:
            args["to_account_id" if kind == "transfer" else "account_id"] = dst
        common = {"args": args, "idempotency_key": key, "account_id": acc}
        funded = src is None or self.balances[src] >= amount
        faulty = self.fault[0] <= ts < self.fault_effect_end and rng.random() < 0.3
        if faulty:
            roll = rng.random()
            if roll < 0.4:
                self.error(i, kind, ts, u, "DATABASE_UNAVAILABLE", latency_s=rng.uniform(0.1, 2.0), **common)
            elif roll < 0.7 and kind != "transfer" and funded:
                self.gateway_timeout(i, ts, u, kind, amount, src, dst, key, common)
            else:
                if funded and rng.random() < 0.5:
                    self.apply(i, kind, amount, src, dst, key)
                self.emit(i, kind, ts, u, outcome="unknown", error="ReadTimeout", latency_s=5.0, **common)
                if rng.random() < 0.5:  # the client retries with the same key; the wallet must dedupe
                    self.commit(i, ts + 0.5 * self.dt, u, kind, amount, src, dst, key, common, tag=f"{i}r")
            return
        self.commit(i, ts, u, kind, amount, src, dst, key, common)

    def commit(self, i: int, ts: float, u: int, kind: str, amount: int, src: str | None, dst: str | None,
               key: str, common: dict[str, Any], tag: str | None = None) -> None:
        """A write that gets a definite answer: the existing txn for a retried key, else apply or 409."""
        existing = self.by_key.get(key)
        if existing is None and src is not None and self.balances[src] < amount:
            self.error(i, kind, ts, u, "INSUFFICIENT_FUNDS", tag=tag, **common)
            return
        txn = self.txns[existing] if existing else self.apply(i, kind, amount, src, dst, key)
        self.emit(i, kind, ts, u, outcome="ok", status=201, txn_id=txn["transaction_id"], txn_status="succeeded",
                  content_type="application/json", tag=tag, **common)

    def gateway_timeout(self, i: int, ts: float, u: int, kind: str, amount: int, src: str | None,
                        dst: str | None, key: str, common: dict[str, Any]) -> None:
        """504: the txn stays pending; reconcile later settles it (or, for bug stuck_pending, never)."""
        txn = self.apply(i, kind, amount, src, dst, key, status="pending")
        if self.bug == "stuck_pending" and not self.stuck_done:
            self.stuck_done = True
        elif self.rng.random() < 0.5:
            txn["status"] = "succeeded"
            self.settle(txn)
        else:
            txn["status"], txn["failure_code"] = "failed", "GATEWAY_ERROR"
        self.error(i, kind, ts, u, "GATEWAY_TIMEOUT", txn_id=txn["transaction_id"], txn_status="pending",
                   latency_s=2.0, **common)

    def read(self, i: int, ts: float, u: int, kind: str) -> None:
        acc = self.accounts[u]
        if self.fault[0] <= ts < self.fault_effect_end and self.rng.random() < 0.3:
            self.error(i, kind, ts, u, "DATABASE_UNAVAILABLE", account_id=acc, latency_s=1.0)
        elif kind == "balance":
            self.emit(i, kind, ts, u, outcome="ok", status=200, account_id=acc, balance=self.balances[acc],
                      content_type="application/json")
        elif kind == "lookup" and self.rng.random() < 0.5:
            self.error(i, kind, ts, u, "TRANSACTION_NOT_FOUND", account_id=acc)
        else:
            self.emit(i, kind, ts, u, outcome="ok", status=200, account_id=acc, content_type="application/json")

    def run(self) -> SynthRun:
        rng, dt = self.rng, self.dt
        for u, acc in enumerate(self.accounts[: self.n]):
            self.emit(u, "register", self.t0 + u * dt, u, outcome="ok", status=201, account_id=acc,
                      args={"username": f"user{u}"}, content_type="application/json")
        kinds = ("deposit", "deposit", "deposit", "withdrawal", "transfer", "transfer",
                 "balance", "balance", "balance", "history", "lookup", "login")
        for i in range(len(self.history), self.n):
            ts = self.t0 + i * dt
            u = rng.randrange(self.n_users)
            kind = kinds[rng.randrange(len(kinds))]
            if kind in ("deposit", "withdrawal", "transfer"):
                self.write(i, ts, u, kind)
            else:
                self.read(i, ts, u, kind)
        return SynthRun(self.history, self.events(), self.final())

    def events(self) -> list[dict[str, Any]]:
        ev = [{"ts": self.t0 + s, "kind": "phase", "name": p, "target": None, "details": {}}
              for s, p in self.phase_starts]
        ev.append({"ts": self.fault[0], "kind": "fault_start", "name": "reset_peer", "target": "wallet_db",
                   "details": {}})
        ev.append({"ts": self.fault[1], "kind": "fault_end", "name": "reset_peer", "target": "wallet_db",
                   "details": {}})
        ev.sort(key=lambda e: e["ts"])
        return ev

    def final(self) -> dict[str, Any]:
        txns = list(self.txns.values())
        export = {
            "accounts": [{"account_id": a, "user_id": a.replace("acc", "usr"), "username": a.replace("acc-", "user"),
                          "balance": b, "status": "active"} for a, b in self.balances.items()],
            "transactions": txns,
        }
        export["audit"] = audit_of(export)
        pending = sum(1 for t in txns if t["status"] == "pending")
        return {"export": export,
                "gateway": {"charges": self.charges, "payouts": self.payouts,
                            "charged_total": sum(c["amount"] for c in self.charges),
                            "paid_out_total": sum(p["amount"] for p in self.payouts)},
                "opening_total": 0,
                "resolutions": resolve_unknowns(self.history, export),
                "reconcile": {"resolved": sum(1 for t in txns if t["failure_code"]), "still_pending": pending}}


def ledger_sums(export: dict[str, Any]) -> dict[str, int]:
    """Σ ledger entries per user account: from the export's `entries` (docs: export ledger entries) when it
    has them, else each account's balance (a model wallet whose books agree with its balances)."""
    entries = export.get("entries")
    if entries is None:
        return {a["account_id"]: a["balance"] for a in export["accounts"]}
    sums = dict.fromkeys((a["account_id"] for a in export["accounts"]), 0)
    for e in entries:
        sums[e["account_id"]] = sums.get(e["account_id"], 0) + e["amount"]
    return sums


def audit_of(export: dict[str, Any], ledger: dict[str, int] | None = None) -> dict[str, Any]:
    """GET /admin/audit as the wallet would compute it from this export (used after planting bugs too).

    `ledger`: Σ entries per account (default: ledger_sums(export)). ledger_total is Σ entries and
    mismatched_accounts lists the accounts whose balance differs from their entries, so a balance that
    moved without an entry shows up exactly as in the wallet's own audit."""
    accounts, txns = export["accounts"], export["transactions"]
    total = sum(a["balance"] for a in accounts)
    ledger = ledger_sums(export) if ledger is None else ledger
    return {"accounts": len(accounts), "total_balance": total, "ledger_total": sum(ledger.values()),
            "external_in": sum(t["amount"] for t in txns if t["kind"] == "deposit" and t["status"] == "succeeded"),
            "external_out": sum(t["amount"] for t in txns
                                if t["kind"] == "withdrawal" and t["status"] == "succeeded"),
            "pending_count": sum(1 for t in txns if t["status"] == "pending"),
            "negative_accounts": [a["account_id"] for a in accounts if a["balance"] < 0],
            "mismatched_accounts": [a["account_id"] for a in accounts
                                    if a["balance"] != ledger.get(a["account_id"], 0)],
            "unbalanced_transactions": [t["transaction_id"] for t in txns if t["entries_sum"] != 0]}


# --- planted bugs: each mutates a consistent run into one with exactly that defect ----------------------
def _first(history: list[dict[str, Any]], kind: str, outcome: str, phase: str | None = None) -> dict[str, Any]:
    for op in history:
        if op["kind"] == kind and op["outcome"] == outcome and (phase is None or op["phase"] == phase):
            return op
    raise ValueError(f"synthetic run has no {outcome} {kind} op (phase {phase}); use a larger n")


def _account(export: dict[str, Any], account_id: str) -> dict[str, Any]:
    return next(a for a in export["accounts"] if a["account_id"] == account_id)


def _plant(run: SynthRun, bug: str) -> None:
    h, final = run.history, run.final
    export = final["export"]
    txns = export["transactions"]
    ledger = None  # the bugs below keep balances and entries in step (the books agree), except balance_drift
    if bug == "balance_drift":  # a balance moved without a ledger entry (a lost update of the balance row)
        ledger = ledger_sums(export)
        op = _first(h, "deposit", "ok")
        _account(export, op["account_id"])["balance"] += op["args"]["amount"]
    elif bug == "lost_write":  # the wallet forgot an acknowledged deposit entirely (txn and credit)
        op = _first(h, "deposit", "ok")
        txns.remove(next(t for t in txns if t["transaction_id"] == op["txn_id"]))
        _account(export, op["account_id"])["balance"] -= op["args"]["amount"]
    elif bug == "double_apply":  # same key applied twice: second txn, second credit, second charge
        op = _first(h, "deposit", "ok")
        dup = {**next(t for t in txns if t["transaction_id"] == op["txn_id"]), "transaction_id": "t-dup"}
        txns.append(dup)
        _account(export, op["account_id"])["balance"] += dup["amount"]
        final["gateway"]["charges"].append({"reference": "t-dup", "amount": dup["amount"], "status": "succeeded",
                                           "applied_at": 0.0})
    elif bug == "charge_no_credit":  # a 503'd deposit was charged at the gateway anyway
        op = next(o for o in h if o["kind"] == "deposit" and o["code"] == "DATABASE_UNAVAILABLE")
        final["gateway"]["charges"].append({"reference": f"t{op['op_id'].rsplit('-', 1)[1]}",
                                           "amount": op["args"]["amount"], "status": "succeeded", "applied_at": 0.0})
    elif bug == "negative_read":
        _first(h, "balance", "ok")["balance"] = -100
    elif bug == "leaky_500":
        op = _first(h, "balance", "ok", "warmup")
        op.update(outcome="fail", status=500, content_type="text/html", problem=None, balance=None,
                  body_excerpt='<html><pre>Traceback (most recent call last):\n  File "/app/db.py", line 3'
                               "\nasyncpg.exceptions.ConnectionDoesNotExistError</pre></html>")
    elif bug == "phantom":  # money moved between two accounts by nobody's request (total unchanged)
        a, b = export["accounts"][0], export["accounts"][1]
        txns.append({"transaction_id": "t-phantom", "kind": "transfer", "status": "succeeded", "amount": 1,
                     "from_account_id": a["account_id"], "to_account_id": b["account_id"],
                     "idempotency_key": None, "created_at": "", "failure_code": None,
                     "user_id": a["user_id"], "entries_sum": 0})
        a["balance"] -= 1
        b["balance"] += 1
    elif bug == "unbalanced":
        txns[0]["entries_sum"] = 5
    elif bug == "slow":
        op = _first(h, "balance", "ok", "warmup")
        op["complete_ts"] = op["invoke_ts"] + 9.0
        op["latency_ms"] = 9000.0
    elif bug == "disallowed_503":
        op = _first(h, "balance", "ok", "warmup")
        op.update(outcome="fail", status=503, code="DATABASE_UNAVAILABLE", balance=None,
                  content_type=_PROBLEM_CT, problem=problem("DATABASE_UNAVAILABLE", op["request_id"]))
    export["audit"] = audit_of(export, ledger)


def generate_history(n: int, seed: int = 0, *, bug: str | None = None) -> SynthRun:
    """A consistent synthetic run of n ops (≥ ~300 for every bug to find its target op)."""
    if bug is not None and bug not in EXPECTED_FAILURES:
        raise ValueError(f"unknown bug {bug!r}; known: {BUGS}")
    with gc_paused():
        run = _Sim(n, seed, bug).run()
    if bug is not None and bug not in ("no_recovery", "stuck_pending"):  # those two are simulated, not planted
        _plant(run, bug)
    return run
