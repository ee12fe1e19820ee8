"""lost-update: the balance is read, then written back as an absolute value, without a row lock in
between: a concurrent update of the same account in that gap is lost."""

from __future__ import annotations

import uuid

import asyncpg

from mock_wallet.ledger import Ledger
from mock_wallet.parts import WalletParts


class ReadModifyWriteLedger(Ledger):
    async def post_entry(self, conn: asyncpg.Connection, txn_id: uuid.UUID, account: uuid.UUID, amount: int) -> None:
        balance = await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account) + amount
        seq = await conn.fetchval("UPDATE accounts SET balance = $2, entry_seq = entry_seq + 1 WHERE id = $1 "
                                  "RETURNING entry_seq", account, balance)
        await conn.execute("INSERT INTO ledger_entries (txn_id, account_id, amount, seq, balance_after) "
                           "VALUES ($1, $2, $3, $4, $5)", txn_id, account, amount, seq, balance)


def plant(parts: WalletParts) -> None:
    parts.replace("ledger", ReadModifyWriteLedger)
