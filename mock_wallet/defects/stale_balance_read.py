"""stale-balance-read: balance reads are served from a per-process cache for TTL_S seconds, and writes
do not invalidate it: right after a transfer, deposit or withdrawal the client is shown the old balance."""

from __future__ import annotations

import time
import uuid
from typing import Any

from mock_wallet.parts import WalletParts
from mock_wallet.queries import Queries

TTL_S = 1.0  # longer than the default mix's shortest think time (0.5 s): a read, a write, a read


class CachedBalanceQueries(Queries):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cache: dict[tuple[uuid.UUID, uuid.UUID], tuple[float, dict[str, Any]]] = {}

    async def account(self, user_id: uuid.UUID, account_id: uuid.UUID) -> dict[str, Any]:
        now = time.monotonic()
        hit = self._cache.get((user_id, account_id))
        if hit is not None and now - hit[0] < TTL_S:
            return hit[1]
        result = await super().account(user_id, account_id)
        self._cache[(user_id, account_id)] = (now, result)
        return result


def plant(parts: WalletParts) -> None:
    parts.replace("queries", CachedBalanceQueries)
