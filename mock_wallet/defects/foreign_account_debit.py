"""foreign-account-debit: transfers and withdrawals check that the source account exists, not who owns
it: a logged-in user (with their own PIN) moves money out of anybody's account."""

from __future__ import annotations

import uuid

import asyncpg

from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts


class AnySourceMoneyService(MoneyService):
    def _may_debit(self, account: asyncpg.Record | None, user_id: uuid.UUID) -> bool:
        return account is not None and account["kind"] == "user"


def plant(parts: WalletParts) -> None:
    parts.replace("money", AnySourceMoneyService)
