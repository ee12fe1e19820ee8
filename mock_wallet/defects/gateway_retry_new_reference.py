"""gateway-retry-new-reference: a gateway call whose answer is unknown is retried under a fresh
reference, which the gateway cannot dedupe against the first: a lost answer becomes a double charge."""

from __future__ import annotations

import uuid

import asyncpg

from mock_wallet.gateway_client import GatewayResult, Operation
from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts

RETRIES = 2  # extra attempts, each under a fresh reference


class FreshReferenceRetryMoneyService(MoneyService):
    async def _ask_gateway(self, operation: Operation, txn: asyncpg.Record) -> GatewayResult:
        result = await super()._ask_gateway(operation, txn)
        for _ in range(RETRIES):
            if result.definite:
                break
            result = await self.gateway.submit(operation, str(uuid.uuid4()), txn["amount"])
        return result


def plant(parts: WalletParts) -> None:
    parts.replace("money", FreshReferenceRetryMoneyService)
