"""memory-idempotency: which idempotency keys were used is known only to this process, so after a
restart a retry is applied again (its transaction row still carries the key, but with the schema's
UNIQUE (user_id, idempotency_key) dropped at start nothing stops a second one)."""

from __future__ import annotations

import uuid

import asyncpg

from mock_wallet.db import Database
from mock_wallet.idempotency import IdempotencyKey, IdempotencyStore, Replay
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError

DROPPED_CONSTRAINT = "transactions_user_key"


class InMemoryIdempotencyStore(IdempotencyStore):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._memory: dict[tuple[uuid.UUID, str], str] = {}  # (user, key) → request hash

    async def claim_in(self, conn: asyncpg.Connection, idem: IdempotencyKey, *,
                       state: str = "in_progress") -> Replay | None:
        seen = self._memory.get((idem.user_id, idem.key))
        if seen is None:
            self._memory[(idem.user_id, idem.key)] = idem.request_hash
            return None
        if seen != idem.request_hash:
            raise ProblemError("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request.")
        txn = await conn.fetchrow("SELECT * FROM transactions WHERE user_id = $1 AND idempotency_key = $2",
                                  idem.user_id, idem.key)
        return Replay(txn) if txn is not None else None


class NoKeyUniquenessDatabase(Database):
    async def migrate(self, conn: asyncpg.Connection) -> int:
        version = await super().migrate(conn)
        await conn.execute(f"ALTER TABLE transactions DROP CONSTRAINT IF EXISTS {DROPPED_CONSTRAINT}")
        await conn.execute("CREATE INDEX IF NOT EXISTS transactions_user_key_idx ON transactions (user_id, idempotency_key)")
        return version


def plant(parts: WalletParts) -> None:
    parts.replace("idempotency", InMemoryIdempotencyStore)
    parts.replace("database", NoKeyUniquenessDatabase)
