"""Synthetic balance histories with ledger `entries`: each account's balance is a register written by its
entries at known commit instants, read by clients at random intervals; reads are correct or (with
probability `stale`) return a balance the account did not have during the read.

Used by tests/test_read_consistency.py, which judges the same runs with read_consistency and with
porcupine (tests/porcupine/), and by hand-made page tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from walletchaos.history import new_op

T0 = 1_000.0
COMMIT_EPS_S = 1e-6  # an entry commits 1 µs after it is written: a tiny, known effect interval


@dataclass
class ReadRun:
    history: list[dict[str, Any]]
    final: dict[str, Any]
    writes: list[dict[str, Any]]  # (account, value, at) of every entry, for porcupine


def generate(seed: int, *, accounts: int = 3, entries: int = 12, reads: int = 25, stale: float = 0.0,
             span_s: float = 4.0) -> ReadRun:
    rng = random.Random(seed)
    txns: list[dict[str, Any]] = []
    es: list[dict[str, Any]] = []
    writes: list[dict[str, Any]] = []
    timeline: dict[str, list[tuple[float, int]]] = {}
    n = 0
    for a in range(accounts):
        acc = f"acc-{a}"
        # commit instants on a 0.5 ms offset grid: never equal to a read endpoint (whole ms ± 50 ms)
        instants = sorted({round(rng.randrange(0, int(span_s * 1000)) + 0.5, 1) / 1000.0 for _ in range(entries)})
        balance, line = 0, [(-1e9, 0)]
        for seq, off in enumerate(instants, start=1):
            n += 1
            amount = rng.randint(1, 50) * (1 if balance < 100 or rng.random() < 0.6 else -1)
            balance += amount
            at = T0 + off
            txn_id = f"t{n}"
            txns.append({"transaction_id": txn_id, "kind": "deposit" if amount > 0 else "withdrawal",
                         "status": "succeeded", "amount": abs(amount),
                         "from_account_id": acc if amount < 0 else None,
                         "to_account_id": acc if amount > 0 else None, "idempotency_key": f"k{n}",
                         "created_at": "", "failure_code": None, "user_id": f"usr-{a}", "entries_sum": 0,
                         "created_ts": at, "committed_ts": at + COMMIT_EPS_S})
            es.append({"entry_id": n, "account_id": acc, "txn_id": txn_id, "amount": amount, "seq": seq,
                       "balance_after": balance, "created_at": at})
            writes.append({"account": acc, "value": balance, "at": at})
            line.append((at, balance))
        timeline[acc] = line
    history = []
    for r in range(reads):
        acc = f"acc-{rng.randrange(accounts)}"
        start = T0 + rng.randrange(-200, int(span_s * 1000) + 200) / 1000.0
        end = start + rng.randrange(1, 400) / 1000.0
        line = timeline[acc]
        # values the register held at some instant in [start, end] (the truth, computed independently)
        current = [v for i, (at, v) in enumerate(line)
                   if at <= end and (i + 1 == len(line) or line[i + 1][0] + COMMIT_EPS_S >= start)]
        if rng.random() < stale:
            value = rng.choice([v for _, v in line] + [-1, 10_000])
        else:
            value = rng.choice(current)
        op = new_op(f"w1-u1-{r}", "balance", start, worker="w1", user="u1", complete_ts=end, outcome="ok",
                    status=200, account_id=acc, balance=value, request_id=f"req-{r}",
                    args={"account_id": acc})
        history.append(op)
    history.sort(key=lambda o: o["invoke_ts"])
    final = {"export": {"accounts": [{"account_id": a, "balance": line[-1][1]} for a, line in timeline.items()],
                        "transactions": txns, "entries": es, "audit": {}}}
    return ReadRun(history, final, writes)


def porcupine_ops(run: ReadRun, skew_s: float) -> list[dict[str, Any]]:
    """The same run as porcupine register ops (µs): entries as writes [at, at + 1 µs], reads widened by
    the clock-skew allowance the checker grants."""
    def us(t: float) -> int:
        return round(t * 1_000_000)

    ops = [{"account": w["account"], "kind": "write", "value": w["value"], "call": us(w["at"]),
            "return": us(w["at"] + COMMIT_EPS_S)} for w in run.writes]
    ops += [{"account": o["account_id"], "kind": "read", "value": o["balance"], "call": us(o["invoke_ts"] - skew_s),
             "return": us(o["complete_ts"] + skew_s)} for o in run.history]
    return ops
