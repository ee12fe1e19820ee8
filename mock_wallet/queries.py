"""Read paths: accounts, history (keyset paging), transaction lookups, and the admin audit/export.

The audit and export read in ONE REPEATABLE READ snapshot, so their sums are mutually consistent even
while money keeps moving.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from mock_wallet.db import Database
from mock_wallet.ledger import transaction_json
from mock_wallet.problems import ProblemError


def parse_uuid(value: str, code: str) -> uuid.UUID:
    """Path ids that are not UUIDs are simply unknown (404), like any id that is not yours."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProblemError(code, "No such " + ("account." if code == "ACCOUNT_NOT_FOUND" else "transaction.")) from None


def encode_cursor(created_at: datetime, txn_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{txn_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, txn_id = raw.split("|")
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed, uuid.UUID(txn_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ProblemError("VALIDATION_ERROR", "The cursor is not valid; use next_cursor as returned.") from None


class Queries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def account(self, user_id: uuid.UUID, account_id: uuid.UUID) -> dict[str, Any]:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, balance, currency, status FROM accounts WHERE id = $1 AND user_id = $2",
                account_id, user_id)
        if row is None:
            raise ProblemError("ACCOUNT_NOT_FOUND", "No such account.")
        return {"account_id": str(row["id"]), "balance": row["balance"], "currency": row["currency"],
                "status": row["status"]}

    async def history(self, user_id: uuid.UUID, account_id: uuid.UUID, limit: int,
                      cursor: str | None) -> dict[str, Any]:
        after = decode_cursor(cursor) if cursor else None
        async with self.db.connection() as conn:
            if not await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1 AND user_id = $2", account_id, user_id):
                raise ProblemError("ACCOUNT_NOT_FOUND", "No such account.")
            rows = await conn.fetch(
                """SELECT * FROM transactions
                   WHERE (from_account_id = $1 OR to_account_id = $1)
                     AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
                   ORDER BY created_at DESC, id DESC LIMIT $4""",
                account_id, after[0] if after else None, after[1] if after else None, limit + 1)
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if len(rows) > limit else None
        return {"items": [transaction_json(r) for r in page], "next_cursor": next_cursor}

    async def transaction(self, user_id: uuid.UUID, txn_id: uuid.UUID) -> asyncpg.Record:
        """Visible to its creator and to the owner of either account it touches."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """SELECT t.* FROM transactions t WHERE t.id = $1 AND (t.user_id = $2 OR EXISTS (
                     SELECT 1 FROM accounts a WHERE a.user_id = $2
                       AND a.id IN (t.from_account_id, t.to_account_id)))""", txn_id, user_id)
        if row is None:
            raise ProblemError("TRANSACTION_NOT_FOUND", "No such transaction.")
        return row

    async def by_idempotency_key(self, user_id: uuid.UUID, key: str) -> asyncpg.Record:
        async with self.db.connection() as conn:
            row = await conn.fetchrow("SELECT * FROM transactions WHERE user_id = $1 AND idempotency_key = $2",
                                      user_id, key)
        if row is None:
            raise ProblemError("TRANSACTION_NOT_FOUND", "No transaction was created under this idempotency key.")
        return row

    async def set_account_status(self, account_id: uuid.UUID, status: str) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                "UPDATE accounts SET status = $2 WHERE id = $1 AND kind = 'user' RETURNING id, status",
                account_id, status)
        if row is None:
            raise ProblemError("ACCOUNT_NOT_FOUND", "No such account.")
        return {"account_id": str(row["id"]), "status": row["status"]}

    async def audit(self) -> dict[str, Any]:
        async with self.db.transaction(isolation="repeatable_read", readonly=True) as conn:
            return await _audit(conn)

    async def export(self) -> dict[str, Any]:
        """One REPEATABLE READ snapshot (docs/internals.md "Export"). Times are server epoch seconds:
        `created_ts` when the transaction row was inserted, `committed_ts` when the commit that made it
        succeeded/failed landed (PostgreSQL's commit timestamp of the row's last write; null while
        pending, or when track_commit_timestamp is off)."""
        async with self.db.transaction(isolation="repeatable_read", readonly=True) as conn:
            commit_ts = await conn.fetchval("SELECT current_setting('track_commit_timestamp') = 'on'")
            accounts = await conn.fetch(
                """SELECT a.id, a.user_id, u.username, a.balance, a.status FROM accounts a
                   JOIN users u ON u.id = a.user_id WHERE a.kind = 'user' ORDER BY a.created_at, a.id""")
            txns = await conn.fetch(
                """SELECT t.*, coalesce((SELECT sum(e.amount) FROM ledger_entries e WHERE e.txn_id = t.id), 0)
                          AS entries_sum,
                          extract(epoch FROM t.created_at)::float8 AS created_ts,
                          CASE WHEN $1 AND t.status <> 'pending'
                               THEN extract(epoch FROM pg_xact_commit_timestamp(t.xmin))::float8 END AS committed_ts
                   FROM transactions t ORDER BY t.created_at, t.id""", commit_ts)
            entries = await conn.fetch(
                """SELECT e.id, e.account_id, e.txn_id, e.amount, e.seq, e.balance_after,
                          extract(epoch FROM e.created_at)::float8 AS created_at
                   FROM ledger_entries e JOIN accounts a ON a.id = e.account_id
                   WHERE a.kind = 'user' ORDER BY e.account_id, e.seq""")
            audit = await _audit(conn)
        return {
            "accounts": [{"account_id": str(a["id"]), "user_id": str(a["user_id"]), "username": a["username"],
                          "balance": a["balance"], "status": a["status"]} for a in accounts],
            "transactions": [{**transaction_json(t), "user_id": str(t["user_id"]),
                              "entries_sum": int(t["entries_sum"]), "created_ts": t["created_ts"],
                              "committed_ts": t["committed_ts"]} for t in txns],
            "entries": [{"entry_id": e["id"], "account_id": str(e["account_id"]), "txn_id": str(e["txn_id"]),
                         "amount": e["amount"], "seq": e["seq"], "balance_after": e["balance_after"],
                         "created_at": e["created_at"]} for e in entries],
            "audit": audit,
        }


async def _audit(conn: asyncpg.Connection) -> dict[str, Any]:
    balances = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE kind = 'user') AS accounts,
                  coalesce(sum(balance) FILTER (WHERE kind = 'user'), 0) AS total_balance,
                  coalesce(sum(balance) FILTER (WHERE kind = 'clearing'), 0) AS clearing_balance
           FROM accounts""")
    ledger_total = await conn.fetchval(
        """SELECT coalesce(sum(e.amount), 0) FROM ledger_entries e
           JOIN accounts a ON a.id = e.account_id WHERE a.kind = 'user'""")
    txns = await conn.fetchrow(
        """SELECT coalesce(sum(amount) FILTER (WHERE kind = 'deposit' AND status = 'succeeded'), 0) AS ext_in,
                  coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal' AND status = 'succeeded'), 0) AS ext_out,
                  coalesce(sum(amount) FILTER (WHERE kind = 'withdrawal' AND status = 'pending'), 0) AS holds,
                  count(*) FILTER (WHERE status = 'pending') AS pending
           FROM transactions""")
    negative = await conn.fetch("SELECT id FROM accounts WHERE kind = 'user' AND balance < 0 ORDER BY id")
    mismatched = await conn.fetch(
        """SELECT a.id FROM accounts a
           LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY account_id) e
             ON e.account_id = a.id
           WHERE a.balance <> coalesce(e.total, 0) ORDER BY a.id""")
    # entries not summing to zero, or a succeeded transaction that moved no money at all
    unbalanced = await conn.fetch(
        """SELECT t.id FROM transactions t
           LEFT JOIN (SELECT txn_id, sum(amount) AS total, count(*) AS n FROM ledger_entries GROUP BY txn_id) e
             ON e.txn_id = t.id
           WHERE coalesce(e.total, 0) <> 0 OR (t.status = 'succeeded' AND coalesce(e.n, 0) = 0)
           ORDER BY t.id""")
    return {
        "accounts": balances["accounts"],
        "total_balance": int(balances["total_balance"]),
        "ledger_total": int(ledger_total),
        "external_in": int(txns["ext_in"]),
        "external_out": int(txns["ext_out"]),
        "pending_count": txns["pending"],
        "negative_accounts": [str(r["id"]) for r in negative],
        "mismatched_accounts": [str(r["id"]) for r in mismatched],
        "unbalanced_transactions": [str(r["id"]) for r in unbalanced],
        "clearing_balance": int(balances["clearing_balance"]),
        "pending_withdrawal_holds": int(txns["holds"]),
    }
