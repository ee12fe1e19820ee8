"""non-atomic-transfer: the transfer commits its debit only; the credit follows a moment later in a DB
transaction of its own, on a connection of its own (as if posted by a separate ledger client). If that
second transaction fails, the debit stays committed and the money is gone."""

from __future__ import annotations

import asyncio
import uuid
from contextvars import ContextVar

import asyncpg

from mock_wallet.db import DB_UNAVAILABLE_ERRORS
from mock_wallet.idempotency import IdempotencyKey
from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts

GAP_S = 0.25  # between the debit's commit and the credit's

# the transfers this request debited and has still to credit (None outside a transfer)
_uncredited: ContextVar[list[uuid.UUID] | None] = ContextVar("uncredited", default=None)


class DebitFirstMoneyService(MoneyService):
    """The debit commits with the transfer; `_credit_later` posts the credit after that commit."""

    async def _post_transfer(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> None:
        await self.ledger.post_entry(conn, txn["id"], txn["from_account_id"], -txn["amount"])
        pending = _uncredited.get()
        if pending is not None:
            pending.append(txn["id"])

    async def transfer(self, idem: IdempotencyKey, from_id: uuid.UUID, to_id: uuid.UUID, amount: int,
                       pin: str) -> asyncpg.Record:
        token = _uncredited.set([])
        try:
            txn = await super().transfer(idem, from_id, to_id, amount, pin)
            debited_here = txn["id"] in (_uncredited.get() or [])  # not a replay of an earlier request
        finally:
            _uncredited.reset(token)
        if debited_here:
            await self._credit_later(txn)
        return txn

    async def _credit_later(self, txn: asyncpg.Record) -> None:
        await asyncio.sleep(GAP_S)
        try:
            conn = await asyncpg.connect(self.db.url, timeout=self.db.timeout_s, command_timeout=self.db.timeout_s)
            try:
                async with conn.transaction():
                    await self.ledger.post_entry(conn, txn["id"], txn["to_account_id"], txn["amount"])
            finally:
                conn.terminate()
        except DB_UNAVAILABLE_ERRORS as exc:
            raise self.db.report_unavailable(exc) from None


def plant(parts: WalletParts) -> None:
    parts.replace("money", DebitFirstMoneyService)
