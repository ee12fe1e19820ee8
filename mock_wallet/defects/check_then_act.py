"""check-then-act: the balance is read before the account row is locked (and before the PIN is
checked), and the debit is decided on that read; two concurrent debits both pass and overdraw. The
schema's CHECK (balance >= 0), the last line of defence, is dropped at start."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

import asyncpg

from mock_wallet.db import Database
from mock_wallet.idempotency import IdempotencyKey
from mock_wallet.money import MoneyService, insufficient
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError

DROPPED_CONSTRAINT = "user_balance_not_negative"

# the source account's balance as read before its lock (None: no such account; the locked path decides)
_unlocked_balance: ContextVar[int | None] = ContextVar("unlocked_balance", default=None)


class CheckOutsideLockMoneyService(MoneyService):
    async def _balance_outside_lock(self, account_id: uuid.UUID) -> int | None:
        async with self.db.connection() as conn:
            return await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)

    async def transfer(self, idem: IdempotencyKey, from_id: uuid.UUID, to_id: uuid.UUID, amount: int,
                       pin: str) -> asyncpg.Record:
        token = _unlocked_balance.set(await self._balance_outside_lock(from_id))
        try:
            return await super().transfer(idem, from_id, to_id, amount, pin)
        finally:
            _unlocked_balance.reset(token)

    async def withdraw(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int, pin: str) -> asyncpg.Record:
        token = _unlocked_balance.set(await self._balance_outside_lock(account_id))
        try:
            return await super().withdraw(idem, account_id, amount, pin)
        finally:
            _unlocked_balance.reset(token)

    def _funds_refusal(self, account: asyncpg.Record, amount: int) -> ProblemError | None:
        balance = _unlocked_balance.get()
        if balance is None:
            return super()._funds_refusal(account, amount)
        return insufficient(balance, amount) if balance < amount else None


class NoBalanceCheckDatabase(Database):
    async def migrate(self, conn: asyncpg.Connection) -> int:
        version = await super().migrate(conn)
        await conn.execute(f"ALTER TABLE accounts DROP CONSTRAINT IF EXISTS {DROPPED_CONSTRAINT}")
        return version


def plant(parts: WalletParts) -> None:
    parts.replace("money", CheckOutsideLockMoneyService)
    parts.replace("database", NoBalanceCheckDatabase)
