"""Idempotency keys for money-moving POSTs, stored in the DB (primary key (user_id, key)).

A request first *claims* its key. The claim row carries a lease (the request deadline plus a margin):
a duplicate arriving while the lease runs gets REQUEST_IN_PROGRESS; after it (the first request
crashed or was cut off by its deadline) the duplicate takes the key over. The outcome is replayed from
the DB: a transaction created under the key (its *current* state), or a stored refusal problem.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from mock_wallet.db import Database
from mock_wallet.problems import ProblemError

# refusals that are final for a key (replayed identically); anything else (DB down...) releases the key
RECORDED_REFUSALS = frozenset({"ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "INSUFFICIENT_FUNDS", "INVALID_PIN",
                               "ACCOUNT_LOCKED"})


def request_hash(operation: str, body: dict[str, Any]) -> str:
    canonical = json.dumps({"operation": operation, "body": body}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IdempotencyKey:
    """The key of one request: who, which key, and what was asked."""

    user_id: uuid.UUID
    key: str
    request_hash: str

    async def record_refusal(self, conn: asyncpg.Connection, problem: ProblemError) -> None:
        """Store a final refusal in the caller's transaction, so it commits with its side effects."""
        await conn.execute(
            "UPDATE idempotency_keys SET state = 'done', problem = $3 WHERE user_id = $1 AND key = $2",
            self.user_id, self.key,
            json.dumps({"code": problem.code, "detail": problem.detail, "extra": problem.extra}))

    async def mark_done(self, conn: asyncpg.Connection) -> None:
        await conn.execute("UPDATE idempotency_keys SET state = 'done' WHERE user_id = $1 AND key = $2",
                           self.user_id, self.key)


@dataclass(frozen=True)
class Replay:
    """The key was used before: answer with this transaction's current state."""

    transaction: asyncpg.Record


class IdempotencyStore:
    def __init__(self, db: Database, *, lease_s: float) -> None:
        self.db = db
        self.lease_s = lease_s

    async def claim(self, idem: IdempotencyKey) -> Replay | None:
        """Claim the key in a transaction of its own (None: go ahead) or return the earlier outcome."""
        async with self.db.transaction() as conn:
            return await self.claim_in(conn, idem)

    async def claim_in(self, conn: asyncpg.Connection, idem: IdempotencyKey, *,
                       state: str = "in_progress") -> Replay | None:
        """Claim the key inside the caller's transaction, so the claim commits together with the work it
        guards (one commit instead of two; a rollback leaves no claim behind). `state='done'` when the
        whole outcome commits in this same transaction (a transfer): nobody can ever see it in progress.
        A concurrent duplicate blocks on the unique key until this transaction ends, then replays.
        Returns None (go ahead) or the earlier outcome (Replay, or raises its problem)."""
        inserted = await conn.fetchval(
            """INSERT INTO idempotency_keys (user_id, key, request_hash, state, lease_until)
               VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
               ON CONFLICT DO NOTHING RETURNING true""",
            idem.user_id, idem.key, idem.request_hash, state, self.lease_s)
        if inserted:
            return None
        row = await conn.fetchrow(
            """SELECT request_hash, state, problem, lease_until > now() AS leased
               FROM idempotency_keys WHERE user_id = $1 AND key = $2 FOR UPDATE""", idem.user_id, idem.key)
        if row["request_hash"] != idem.request_hash:
            raise ProblemError("IDEMPOTENCY_KEY_REUSED",
                               "This Idempotency-Key was used for a different request.")
        if row["state"] == "in_progress" and row["leased"]:
            raise ProblemError("REQUEST_IN_PROGRESS",
                               "A request with this Idempotency-Key is still being processed; retry later.")
        txn = await conn.fetchrow("SELECT * FROM transactions WHERE user_id = $1 AND idempotency_key = $2",
                                  idem.user_id, idem.key)
        if txn is not None:
            await idem.mark_done(conn)
            return Replay(txn)
        if row["state"] == "done" and row["problem"] is not None:
            stored = json.loads(row["problem"])
            raise ProblemError(stored["code"], stored["detail"], extra=stored.get("extra") or {})
        # the first request died before deciding anything: take the key over
        await conn.execute(
            """UPDATE idempotency_keys SET state = $3, lease_until = now() + make_interval(secs => $4)
               WHERE user_id = $1 AND key = $2""", idem.user_id, idem.key, state, self.lease_s)
        return None

    async def release(self, idem: IdempotencyKey) -> None:
        """Forget an undecided claim (transient failure) so a retry need not wait for the lease.
        Best effort: if the DB is gone, the lease expires instead."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    """DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_progress'
                       AND NOT EXISTS (SELECT 1 FROM transactions WHERE user_id = $1 AND idempotency_key = $2)""",
                    idem.user_id, idem.key)
        except ProblemError:
            pass
