"""split-transfer-commit: a transfer's debit commits with the transfer, its credit GAP_S later in a second
DB transaction on the wallet's pool, retried until it lands (and not cancelled with the request). The
final state heals; a snapshot taken in the gap sees the money missing from the bank."""

from __future__ import annotations

import asyncio

import asyncpg

from mock_wallet.defects.non_atomic_transfer import DebitFirstMoneyService
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError

GAP_S = 0.25
RETRY_S = 0.2


class SplitCommitMoneyService(DebitFirstMoneyService):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._credits: set[asyncio.Task] = set()  # strong refs: a credit outlives its request if need be

    async def _credit_later(self, txn: asyncpg.Record) -> None:
        task = asyncio.create_task(self._credit_until_committed(txn))
        self._credits.add(task)
        task.add_done_callback(self._credits.discard)
        await asyncio.shield(task)

    async def _credit_until_committed(self, txn: asyncpg.Record) -> None:
        await asyncio.sleep(GAP_S)
        while True:
            try:
                async with self.db.transaction() as conn:
                    await self.ledger.post_entry(conn, txn["id"], txn["to_account_id"], txn["amount"])
                return
            except ProblemError:  # (a commit in doubt may have landed: the ledger's unique seq says so)
                if await self._credited(txn):
                    return
                await asyncio.sleep(RETRY_S)

    async def _credited(self, txn: asyncpg.Record) -> bool:
        try:
            async with self.db.connection() as conn:
                return bool(await conn.fetchval(
                    "SELECT 1 FROM ledger_entries WHERE txn_id = $1 AND account_id = $2", txn["id"], txn["to_account_id"]))
        except ProblemError:
            return False


def plant(parts: WalletParts) -> None:
    parts.replace("money", SplitCommitMoneyService)
