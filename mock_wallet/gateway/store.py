"""The gateway's own ledger of what it applied (SQLite), so the harness can compare it with the wallet."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

Kind = Literal["charges", "payouts"]
KINDS: tuple[Kind, ...] = ("charges", "payouts")


class GatewayStore:
    """One SQLite file; a record per reference (primary key) makes applying idempotent by construction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            for kind in KINDS:
                self._conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS {kind} (reference TEXT PRIMARY KEY, amount INTEGER NOT NULL,
                        status TEXT NOT NULL, applied_at REAL NOT NULL)""")

    def get(self, kind: Kind, reference: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(f"SELECT reference, amount, status, applied_at FROM {kind} WHERE reference = ?",
                                     (reference,)).fetchone()
        return _record(row) if row else None

    def insert(self, kind: Kind, reference: str, amount: int, status: str) -> dict[str, Any]:
        with self._lock:
            self._conn.execute(f"INSERT INTO {kind} (reference, amount, status, applied_at) VALUES (?, ?, ?, ?)",
                               (reference, amount, status, time.time()))
        return {"reference": reference, "amount": amount, "status": status}

    def records(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                kind: [_record(r) for r in self._conn.execute(
                    f"SELECT reference, amount, status, applied_at FROM {kind} ORDER BY applied_at")]
                for kind in KINDS}
        out["charged_total"] = sum(r["amount"] for r in out["charges"] if r["status"] == "succeeded")
        out["paid_out_total"] = sum(r["amount"] for r in out["payouts"] if r["status"] == "succeeded")
        return out

    def ping(self) -> None:
        with self._lock:
            self._conn.execute("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _record(row: tuple) -> dict[str, Any]:
    reference, amount, status, applied_at = row
    return {"reference": reference, "amount": amount, "status": status, "applied_at": applied_at}
