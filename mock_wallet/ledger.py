"""Double-entry bookkeeping primitives, used inside a caller's DB transaction.

Balances change only through `post_entries`, which writes each entry and applies it to its account row
in one statement, so `balance == Σ entries` holds after every commit. Each entry also records the
account's running entry number (`seq`, 1..n per account) and the balance right after it
(`balance_after`), taken from the account row it updates: that row is locked by the update until the
commit, so an account's `seq` order is its commit order. User balances are additionally guarded by a
CHECK (balance >= 0) in the schema as a last line of defence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import asyncpg

from mock_wallet.schema import CLEARING_ACCOUNT_ID

CLEARING = uuid.UUID(CLEARING_ACCOUNT_ID)


class Ledger:
    async def lock_accounts(self, conn: asyncpg.Connection,
                            ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
        """Lock account rows in a fixed order (by id) so concurrent transfers never deadlock."""
        rows = await conn.fetch(
            """SELECT id, user_id, kind, balance, status FROM accounts WHERE id = ANY($1::uuid[])
               ORDER BY id FOR UPDATE""", sorted(set(ids)))
        return {row["id"]: row for row in rows}

    async def post_entries(self, conn: asyncpg.Connection, txn_id: uuid.UUID,
                           entries: list[tuple[uuid.UUID, int]]) -> None:
        """Write balanced entries and apply them. User accounts first, the clearing account last, so the
        hot clearing row is locked as briefly as possible and always after user rows (no lock cycles)."""
        if sum(amount for _, amount in entries) != 0:
            raise ValueError("ledger entries must sum to zero")
        for account, amount in sorted(entries, key=lambda e: (e[0] == CLEARING, e[0])):
            await self.post_entry(conn, txn_id, account, amount)

    async def post_entry(self, conn: asyncpg.Connection, txn_id: uuid.UUID, account: uuid.UUID, amount: int) -> None:
        """One leg: move the account's balance and entry counter, and record the entry with both."""
        await conn.execute(
            """WITH moved AS (UPDATE accounts SET balance = balance + $3, entry_seq = entry_seq + 1
                              WHERE id = $2 RETURNING balance, entry_seq)
               INSERT INTO ledger_entries (txn_id, account_id, amount, seq, balance_after)
               SELECT $1, $2, $3, entry_seq, balance FROM moved""", txn_id, account, amount)

    async def insert_transaction(self, conn: asyncpg.Connection, *, kind: str, status: str, amount: int,
                                 from_account: uuid.UUID | None, to_account: uuid.UUID | None,
                                 user_id: uuid.UUID, idempotency_key: str | None) -> asyncpg.Record:
        return await conn.fetchrow(
            """INSERT INTO transactions (id, kind, status, amount, from_account_id, to_account_id, user_id,
                                         idempotency_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
            uuid.uuid4(), kind, status, amount, from_account, to_account, user_id, idempotency_key)

    async def set_status(self, conn: asyncpg.Connection, txn_id: uuid.UUID, status: str,
                         failure_code: str | None = None) -> asyncpg.Record:
        return await conn.fetchrow(
            """UPDATE transactions SET status = $2, failure_code = $3, updated_at = clock_timestamp()
               WHERE id = $1 RETURNING *""", txn_id, status, failure_code)


def transaction_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "transaction_id": str(row["id"]),
        "kind": row["kind"],
        "status": row["status"],
        "amount": row["amount"],
        "from_account_id": str(row["from_account_id"]) if row["from_account_id"] else None,
        "to_account_id": str(row["to_account_id"]) if row["to_account_id"] else None,
        "idempotency_key": row["idempotency_key"],
        "created_at": row["created_at"].isoformat(),
        "failure_code": row["failure_code"],
    }
