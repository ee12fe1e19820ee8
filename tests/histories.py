"""Builders for hand-made histories: a tiny scripted wallet whose final state stays consistent with the
ops you write, so a test reads like the story it checks and then breaks exactly one thing.

    run = RunBuilder()
    run.register("alice")
    dep = run.deposit("alice", 1000)                  # ok: txn succeeded, gateway charged, balance 1000
    run.withdrawal("alice", 300, outcome="unknown")   # transport error, but the wallet applied it
    run.forget(dep)                                   # break it: the acknowledged deposit is lost
    result = durability.check(run.history, run.final(), run.ctx())
"""

from __future__ import annotations

import copy
from typing import Any

from walletchaos.checks.base import CheckContext
from walletchaos.checks.catalog import CATALOG
from walletchaos.history import new_op
from walletchaos.synth import audit_of

T0 = 1_000.0


def problem_body(code: str, request_id: str, /, **overrides: Any) -> dict[str, Any]:
    """A contract-conforming problem+json body for any catalog code (override members to break it)."""
    entry = CATALOG[code]
    body = {"type": f"https://walletchaos.dev/problems/{code.lower()}", "title": code.replace("_", " ").title(),
            "status": entry.status, "detail": f"{code} for this request", "code": code,
            "request_id": request_id, "retryable": entry.retryable}
    body.update(overrides)
    return body


class RunBuilder:
    """Ops are appended at an advancing clock (0.1 s apart unless `at=` is given)."""

    def __init__(self) -> None:
        self.clock = T0
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.balances: dict[str, int] = {}
        self.txns: list[dict[str, Any]] = []
        self.charges: list[dict[str, Any]] = []
        self.payouts: list[dict[str, Any]] = []
        self.reconcile = {"resolved": 0, "still_pending": 0}
        self._n = 0

    # --- timeline ---------------------------------------------------------------------------------
    def phase(self, name: str, at: float | None = None) -> None:
        self.events.append({"ts": self._ts(at), "kind": "phase", "name": name, "target": None, "details": {}})

    def fault(self, start: float, end: float, name: str = "reset_peer", target: str = "wallet_db") -> None:
        for ts, kind in ((start, "fault_start"), (end, "fault_end")):
            self.events.append({"ts": ts, "kind": kind, "name": name, "target": target, "details": {}})

    def at(self, ts: float) -> RunBuilder:
        """Move the clock: the next op is invoked 0.1 s after `ts`."""
        self.clock = ts
        return self

    def _ts(self, at: float | None) -> float:
        self.clock = self.clock + 0.1 if at is None else at
        return self.clock

    # --- ops --------------------------------------------------------------------------------------
    def op(self, kind: str, *, at: float | None = None, latency_ms: float = 20.0, **fields: Any) -> dict[str, Any]:
        """Any op; fields go straight into the record (outcome, status, code, problem, ...)."""
        self._n += 1
        ts = self._ts(at)
        fields.setdefault("request_id", f"req-{self._n}")
        complete = None if fields.get("status") is None and fields.get("error") else ts + latency_ms / 1000.0
        op = new_op(f"op-{self._n}", kind, ts, worker="w1", user="u1", complete_ts=complete, **fields)
        if complete is None:
            op["complete_ts"], op["latency_ms"] = ts + 5.0, None
        self.history.append(op)
        return op

    def register(self, account: str, **kw: Any) -> dict[str, Any]:
        self.balances[account] = 0
        return self.op("register", outcome="ok", status=201, account_id=account, args={"username": account},
                       content_type="application/json", **kw)

    def balance(self, account: str, value: int | None = None, **kw: Any) -> dict[str, Any]:
        """A balance read returning the current balance (or `value`, to plant a bad read)."""
        return self.op("balance", outcome="ok", status=200, account_id=account,
                       balance=self.balances[account] if value is None else value,
                       content_type="application/json", **kw)

    def error(self, kind: str, code: str, *, account: str | None = None, **kw: Any) -> dict[str, Any]:
        """A clean problem response for `code` (fail, or unknown for 504) that applied nothing."""
        status = CATALOG[code].status
        kw.setdefault("account_id", account)
        if code in ("RATE_LIMITED", "MAINTENANCE"):  # the contract's Retry-After on these two
            kw.setdefault("retry_after", "1")
        op = self.op(kind, outcome="unknown" if status == 504 else "fail", status=status, code=code,
                     content_type="application/problem+json", **kw)
        op["problem"] = problem_body(code, op["request_id"])
        return op

    def transport_error(self, kind: str = "balance", error: str = "ReadTimeout", **kw: Any) -> dict[str, Any]:
        outcome = "unknown" if kind in ("deposit", "withdrawal", "transfer") else "fail"
        return self.op(kind, outcome=outcome, status=None, error=error, **kw)

    def deposit(self, account: str, amount: int, **kw: Any) -> dict[str, Any]:
        return self._write("deposit", amount, None, account, **kw)

    def withdrawal(self, account: str, amount: int, **kw: Any) -> dict[str, Any]:
        return self._write("withdrawal", amount, account, None, **kw)

    def transfer(self, src: str, dst: str, amount: int, **kw: Any) -> dict[str, Any]:
        return self._write("transfer", amount, src, dst, **kw)

    def _write(self, kind: str, amount: int, src: str | None, dst: str | None, *, outcome: str = "ok",
               applied: bool | None = None, key: str | None = None, txn_status: str = "succeeded",
               **kw: Any) -> dict[str, Any]:
        """outcome ok → applied; unknown → transport error, applied iff `applied`; fail → 503, not applied.
        txn_status "pending"/"failed" records an unknown write the wallet left pending / failed."""
        key = key or f"key-{self._n + 1}"
        args: dict[str, Any] = {"amount": amount}
        if src:
            args["from_account_id"] = src
        if dst:
            args["to_account_id"] = dst
        common = {"args": args, "idempotency_key": key, "account_id": src or dst}
        applied = (outcome == "ok") if applied is None else applied
        txn = self.apply(kind, amount, src, dst, key, txn_status) if applied else None
        if outcome == "ok":
            assert txn is not None
            return self.op(kind, outcome="ok", status=201, txn_id=txn["transaction_id"], txn_status="succeeded",
                           content_type="application/json", **common, **kw)
        if outcome == "unknown":
            return self.transport_error(kind, **common, **kw)
        return self.error(kind, kw.pop("code", "DATABASE_UNAVAILABLE"), **common, **kw)

    # --- the wallet's and gateway's state -------------------------------------------------------------
    def apply(self, kind: str, amount: int, src: str | None, dst: str | None, key: str | None,
              status: str = "succeeded") -> dict[str, Any]:
        """Create a transaction the way the wallet would (and the gateway record when it succeeded)."""
        txn = {"transaction_id": f"txn-{len(self.txns) + 1}", "kind": kind, "status": status, "amount": amount,
               "from_account_id": src, "to_account_id": dst, "idempotency_key": key, "created_at": "",
               "failure_code": None, "user_id": f"user-{src or dst}", "entries_sum": 0}
        self.txns.append(txn)
        if status == "succeeded":
            if src:
                self.balances[src] -= amount
            if dst:
                self.balances[dst] += amount
            if kind == "deposit":
                self.gateway_charge(txn["transaction_id"], amount)
            elif kind == "withdrawal":
                self.gateway_payout(txn["transaction_id"], amount)
        return txn

    def gateway_charge(self, reference: str, amount: int, status: str = "succeeded") -> None:
        self.charges.append({"reference": reference, "amount": amount, "status": status, "applied_at": 0.0})

    def gateway_payout(self, reference: str, amount: int, status: str = "succeeded") -> None:
        self.payouts.append({"reference": reference, "amount": amount, "status": status, "applied_at": 0.0})

    def find(self, kind: str, amount: int | None = None, **fields: Any) -> dict[str, Any]:
        """The first op of `kind` (with that amount and field values) — tests name ops by what they did."""
        for op in self.history:
            if op["kind"] == kind and (amount is None or op["args"].get("amount") == amount) \
                    and all(op.get(k) == v for k, v in fields.items()):
                return op
        raise LookupError(f"no {kind} op with amount={amount} {fields}")

    def txn_of(self, op: dict[str, Any]) -> dict[str, Any]:
        return next(t for t in self.txns if t["idempotency_key"] == op["idempotency_key"])

    def forget(self, op: dict[str, Any]) -> None:
        """Break durability: the wallet loses the op's transaction and its effect (gateway keeps its record)."""
        txn = self.txn_of(op)
        self.txns.remove(txn)
        if txn["status"] == "succeeded":
            if txn["from_account_id"]:
                self.balances[txn["from_account_id"]] += txn["amount"]
            if txn["to_account_id"]:
                self.balances[txn["to_account_id"]] -= txn["amount"]

    def final(self, **overrides: Any) -> dict[str, Any]:
        """final.json for the current state (a deep copy: tests may mutate it freely)."""
        export = {"accounts": [{"account_id": a, "user_id": f"user-{a}", "username": a, "balance": b,
                                "status": "active"} for a, b in self.balances.items()],
                  "transactions": copy.deepcopy(self.txns)}
        export["audit"] = audit_of(export)
        final = {"export": export,
                 "gateway": {"charges": copy.deepcopy(self.charges), "payouts": copy.deepcopy(self.payouts)},
                 "opening_total": 0, "reconcile": dict(self.reconcile)}
        final.update(overrides)
        return final

    def ctx(self, errors_allowed: tuple[str, ...] = ("DATABASE_UNAVAILABLE",), **kw: Any) -> CheckContext:
        return CheckContext.for_scenario(self.events, errors_allowed, scenario="hand-made", **kw)


def healthy_run(recovered_ops: int = 60) -> RunBuilder:
    """A small run that passes every checker: warmup traffic, a DB fault [T0+10, T0+20) with 503s,
    transport errors and unknown writes (one applied, one not), then `recovered_ops` healthy ops."""
    run = RunBuilder()
    run.phase("warmup", at=T0)
    run.register("alice")
    run.register("bob")
    run.deposit("alice", 10_000)
    run.deposit("bob", 5_000)
    run.transfer("alice", "bob", 2_000)
    run.withdrawal("bob", 1_000)
    run.balance("alice")
    run.error("withdrawal", "INSUFFICIENT_FUNDS", account="bob")  # the client's own error: always fine

    run.phase("fault", at=T0 + 10)
    run.fault(T0 + 10, T0 + 20)
    run.at(T0 + 10)
    run.deposit("alice", 300, outcome="unknown", applied=True)
    run.deposit("alice", 700, outcome="unknown", applied=False)
    run.deposit("bob", 50, outcome="fail", code="DATABASE_UNAVAILABLE")
    run.transport_error("balance", account_id="alice")
    run.error("balance", "DATABASE_UNAVAILABLE", account="alice")

    run.phase("heal", at=T0 + 20)
    run.phase("recover", at=T0 + 21)
    run.at(T0 + 21)
    for i in range(recovered_ops):
        if i % 3 == 0:
            run.deposit("bob", 100)
        else:
            run.balance("alice" if i % 2 else "bob")
    run.phase("final", at=run.clock + 1)
    return run
