"""timeout-as-failure: an unknown gateway outcome (the gateway may well have applied it) is taken as a
definite refusal, so the wallet reverses money the gateway moved."""

from __future__ import annotations

import asyncpg

from mock_wallet.gateway_client import GatewayResult, Operation, Outcome
from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts


class TimeoutIsFailureMoneyService(MoneyService):
    async def _ask_gateway(self, operation: Operation, txn: asyncpg.Record) -> GatewayResult:
        result = await super()._ask_gateway(operation, txn)
        return result if result.definite else GatewayResult(Outcome.FAILED, f"treated as failed: {result.detail}")


def plant(parts: WalletParts) -> None:
    parts.replace("money", TimeoutIsFailureMoneyService)
