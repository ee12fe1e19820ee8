"""foreign-account-read: account, history and transaction reads (by id or by idempotency key) do not check
who asks: they are served as if the owner had asked, so any logged-in user reads any account and any
transaction (200, not 404)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from mock_wallet.parts import WalletParts
from mock_wallet.queries import Queries


class OwnerBlindQueries(Queries):
    async def _owner_of_account(self, account_id: uuid.UUID, asker: uuid.UUID) -> uuid.UUID:
        async with self.db.connection() as conn:
            owner = await conn.fetchval("SELECT user_id FROM accounts WHERE id = $1 AND kind = 'user'", account_id)
        return owner or asker

    async def account(self, user_id: uuid.UUID, account_id: uuid.UUID) -> dict[str, Any]:
        return await super().account(await self._owner_of_account(account_id, user_id), account_id)

    async def history(self, user_id: uuid.UUID, account_id: uuid.UUID, limit: int,
                      cursor: str | None) -> dict[str, Any]:
        return await super().history(await self._owner_of_account(account_id, user_id), account_id, limit, cursor)

    async def transaction(self, user_id: uuid.UUID, txn_id: uuid.UUID) -> asyncpg.Record:
        async with self.db.connection() as conn:
            creator = await conn.fetchval("SELECT user_id FROM transactions WHERE id = $1", txn_id)
        return await super().transaction(creator or user_id, txn_id)

    async def by_idempotency_key(self, user_id: uuid.UUID, key: str) -> asyncpg.Record:
        async with self.db.connection() as conn:
            creator = await conn.fetchval("SELECT user_id FROM transactions WHERE idempotency_key = $1 "
                                          "ORDER BY user_id = $2 DESC LIMIT 1", key, user_id)
        return await super().by_idempotency_key(creator or user_id, key)


def plant(parts: WalletParts) -> None:
    parts.replace("queries", OwnerBlindQueries)
