"""history-missing-rows: history pages leave out the transactions created in the last LAG_S seconds (as
if served from a read model that lags the ledger): a payment the client just made is missing from it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from mock_wallet.parts import WalletParts
from mock_wallet.queries import Queries

LAG_S = 1.0


class LaggingHistoryQueries(Queries):
    async def history(self, user_id: uuid.UUID, account_id: uuid.UUID, limit: int,
                      cursor: str | None) -> dict[str, Any]:
        page = await super().history(user_id, account_id, limit, cursor)
        horizon = datetime.now(timezone.utc) - timedelta(seconds=LAG_S)
        page["items"] = [item for item in page["items"] if datetime.fromisoformat(item["created_at"]) <= horizon]
        return page


def plant(parts: WalletParts) -> None:
    parts.replace("queries", LaggingHistoryQueries)
