"""ack-before-commit: a deposit is answered "succeeded" at once and written (key claim, transaction,
gateway charge, credit) by a background task a little later; a crash or kill in between loses a
deposit the client was told had succeeded."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

from mock_wallet.idempotency import IdempotencyKey
from mock_wallet.money import MoneyService, account_not_found
from mock_wallet.parts import WalletParts

log = logging.getLogger("mock_wallet.money")

DELAY_S = 1.0  # the deposit is written this long after the 201


class WriteBehindMoneyService(MoneyService):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._background: set[asyncio.Task] = set()  # strong refs to the write-behind tasks

    async def deposit(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int) -> dict[str, Any]:  # type: ignore[override]
        async with self.db.connection() as conn:
            owner = await conn.fetchval("SELECT user_id FROM accounts WHERE id = $1 AND kind = 'user'", account_id)
        if owner != idem.user_id:
            raise account_not_found()
        write = super().deposit

        async def later() -> None:
            await asyncio.sleep(DELAY_S)
            try:
                await write(idem, account_id, amount)
            except Exception as exc:  # noqa: BLE001 - nobody is waiting for this answer any more
                log.warning("write-behind deposit failed", extra={"error": repr(exc)})

        task = asyncio.create_task(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return {"id": uuid.uuid4(), "kind": "deposit", "status": "succeeded", "amount": amount,
                "from_account_id": None, "to_account_id": account_id, "idempotency_key": idem.key,
                "created_at": datetime.now(timezone.utc), "failure_code": None}


def plant(parts: WalletParts) -> None:
    parts.replace("money", WriteBehindMoneyService)
