"""no-lockout: failed logins and PINs are counted, but the count never locks the user out, so
password and PIN guessing can go on forever."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from mock_wallet.auth import _LOCK_COLUMNS, AuthService
from mock_wallet.parts import WalletParts


class NeverLocksAuthService(AuthService):
    async def record_failure(self, conn: asyncpg.Connection, user_id: uuid.UUID, what: str) -> datetime | None:
        counter, _ = _LOCK_COLUMNS[what]
        await conn.execute(f"UPDATE users SET {counter} = {counter} + 1 WHERE id = $1", user_id)
        return None


def plant(parts: WalletParts) -> None:
    parts.replace("auth", NeverLocksAuthService)
