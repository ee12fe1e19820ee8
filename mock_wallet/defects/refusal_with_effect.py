"""refusal-with-effect: every EVERY-th transfer this process commits is answered 503
DATABASE_UNAVAILABLE ("nothing was applied") after its commit, as if a post-commit step (a follow-up
read on another connection) had failed and been mapped to the generic database refusal. The money
moved; a retry with the same key replays the 201."""

from __future__ import annotations

import itertools
import uuid
from contextvars import ContextVar

import asyncpg

from mock_wallet.db import unavailable
from mock_wallet.idempotency import IdempotencyKey
from mock_wallet.money import MoneyService
from mock_wallet.parts import WalletParts

EVERY = 5

# the transfers committed by this request (None outside a transfer)
_created: ContextVar[list[uuid.UUID] | None] = ContextVar("created", default=None)


class RefusesAfterCommitMoneyService(MoneyService):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._committed = itertools.count(1)

    async def _post_transfer(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> None:
        await super()._post_transfer(conn, txn)
        created = _created.get()
        if created is not None:
            created.append(txn["id"])

    async def transfer(self, idem: IdempotencyKey, from_id: uuid.UUID, to_id: uuid.UUID, amount: int,
                       pin: str) -> asyncpg.Record:
        token = _created.set([])
        try:
            txn = await super().transfer(idem, from_id, to_id, amount, pin)
            created_here = txn["id"] in (_created.get() or [])
        finally:
            _created.reset(token)
        if created_here and next(self._committed) % EVERY == 0:
            raise unavailable("post-commit read failed")
        return txn


def plant(parts: WalletParts) -> None:
    parts.replace("money", RefusesAfterCommitMoneyService)
