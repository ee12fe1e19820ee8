"""Settle pending transactions by asking the gateway, never by guessing.

For each pending transaction: look its reference up at the gateway; a record there is the outcome.
No record (404) means the gateway never applied it *yet* — a request may still be in flight — so we
re-drive it with the same reference: the gateway serialises per reference and is idempotent, so the
answer is definite and nothing can be applied twice. Anything unknown stays pending for the next run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from mock_wallet.db import Database
from mock_wallet.gateway_client import GatewayClient, Outcome
from mock_wallet.metrics import WalletMetrics
from mock_wallet.money import GATEWAY_OPERATION, MoneyService
from mock_wallet.problems import ProblemError

log = logging.getLogger("mock_wallet.reconcile")

# Only a gateway *record* is final here. A 5xx on re-drive applied nothing now, but the original request
# may still be travelling (e.g. delayed by a proxy) and could apply later: keep it pending and ask again.
FINAL = (Outcome.SUCCEEDED, Outcome.DECLINED)
CONCURRENCY = 8
BATCH = 500


class Reconciler:
    def __init__(self, db: Database, gateway: GatewayClient, money: MoneyService, metrics: WalletMetrics,
                 *, budget_s: float) -> None:
        self.db = db
        self.gateway = gateway
        self.money = money
        self.metrics = metrics
        self.budget_s = budget_s  # stay inside the request deadline; leftovers wait for the next call

    async def run(self) -> dict[str, int]:
        async with self.db.connection() as conn:
            pending = await conn.fetch(
                "SELECT id, kind, amount FROM transactions WHERE status = 'pending' ORDER BY created_at LIMIT $1",
                BATCH)
        semaphore = asyncio.Semaphore(CONCURRENCY)
        started = time.monotonic()

        async def settle(row) -> bool:
            async with semaphore:
                if time.monotonic() - started > self.budget_s:
                    return False
                return await self._settle_one(row["id"], row["kind"], row["amount"])

        tasks = [asyncio.create_task(settle(row)) for row in pending]
        done, not_done = await asyncio.wait(tasks, timeout=self.budget_s) if tasks else (set(), set())
        for task in not_done:
            task.cancel()
        resolved = sum(1 for task in done if not task.cancelled() and task.exception() is None and task.result())
        async with self.db.connection() as conn:
            still_pending = await conn.fetchval("SELECT count(*) FROM transactions WHERE status = 'pending'")
        self.metrics.pending.set(still_pending)
        log.info("reconcile", extra={"examined": len(pending), "resolved": resolved, "still_pending": still_pending})
        return {"resolved": resolved, "still_pending": still_pending}

    async def _settle_one(self, txn_id: uuid.UUID, kind: str, amount: int) -> bool:
        operation = GATEWAY_OPERATION[kind]
        result = await self.gateway.lookup(operation, str(txn_id))
        if result.outcome is Outcome.NOT_FOUND:
            result = await self.gateway.submit(operation, str(txn_id), amount)
        if result.outcome not in FINAL:
            return False
        try:
            settled = await self.money.apply_outcome(txn_id, result)
        except ProblemError:
            return False
        self.metrics.reconciled.labels(settled["status"]).inc()
        return True

