"""frozen-ignored: the freeze is checked on the paying side only, so a frozen account still receives
money (incoming transfers and deposits are not refused); outgoing ones are refused as they should be."""

from __future__ import annotations

import asyncpg

from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError


class PayerOnlyFreezeMoneyService(MoneyService):
    def _frozen_refusal(self, *, paying: asyncpg.Record | None = None,
                        receiving: asyncpg.Record | None = None) -> ProblemError | None:
        return super()._frozen_refusal(paying=paying)


def plant(parts: WalletParts) -> None:
    parts.replace("money", PayerOnlyFreezeMoneyService)
