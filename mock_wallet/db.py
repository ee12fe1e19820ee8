"""asyncpg pool that survives the database going away, and the mapping of DB failures to a problem.

The pool is created with min_size=0, so creating it never connects: the wallet starts even when the DB
is down, every acquire (re)connects as needed, and broken connections are dropped by the pool, so the
wallet recovers by itself when the DB comes back. Every failure of the *database* (down, reset, slow,
restarting, out of connections) becomes 503 DATABASE_UNAVAILABLE; bugs (constraint violations we did
not expect) stay exceptions and become INTERNAL_ERROR.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from mock_wallet.problems import ProblemError
from mock_wallet.request_context import note_commit
from mock_wallet.schema import migrate

log = logging.getLogger("mock_wallet.db")

DB_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes ConnectionError (refused, reset)
    TimeoutError,  # asyncio.TimeoutError is TimeoutError on 3.11
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress" after a cut
    asyncpg.exceptions.OperatorInterventionError,  # admin/crash shutdown, cannot connect now, query canceled
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout: a row stayed locked too long
    asyncpg.exceptions.TransactionRollbackError,  # serialization failure / deadlock: nothing applied
)


def unavailable(reason: str) -> ProblemError:
    return ProblemError("DATABASE_UNAVAILABLE", f"The database is unavailable ({reason}); nothing was applied.",
                        retry_after=1)


def outcome_unknown(reason: str, txn_id: object | None = None) -> ProblemError:
    """The COMMIT was sent but not confirmed (timeout, reset, deadline): the server may have applied it.
    Never "nothing was applied" (DATABASE_UNAVAILABLE): the catalog's code for an unknown outcome is
    GATEWAY_TIMEOUT (504), resolved by a retry with the same Idempotency-Key, a lookup, or reconcile."""
    extra = {"transaction_id": str(txn_id)} if txn_id is not None else {}
    return ProblemError("GATEWAY_TIMEOUT",
                        f"The database did not confirm the commit ({reason}); the outcome is unknown: retry "
                        "with the same Idempotency-Key or look the transaction up.", extra=extra, retry_after=1)


class CommitInDoubt(ProblemError):
    """Raised by Database.transaction when the COMMIT itself failed: see outcome_unknown."""

    def __init__(self, reason: str) -> None:
        p = outcome_unknown(reason)
        super().__init__(p.code, p.detail, extra=p.extra, retry_after=1)


class Database:
    """Lazily created pool + one-time migrations; `transaction()` is the only way handlers touch the DB."""

    def __init__(self, url: str, *, pool_size: int, timeout_s: float, on_unavailable=None) -> None:
        self.url = url
        self.pool_size = pool_size
        self.timeout_s = timeout_s  # statement, lock, command and pool-wait timeout
        self._pool: asyncpg.Pool | None = None
        self._migrated = False
        self._lock = asyncio.Lock()
        self._on_unavailable = on_unavailable

    def pool_options(self) -> dict:
        """asyncpg.create_pool keywords: every wait on the database is bounded by timeout_s."""
        ms = str(int(self.timeout_s * 1000))
        return {"timeout": self.timeout_s, "command_timeout": self.timeout_s,
                "server_settings": {"application_name": "mock_wallet", "statement_timeout": ms, "lock_timeout": ms}}

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(self.url, min_size=0, max_size=self.pool_size,
                                                           max_inactive_connection_lifetime=60,
                                                           **self.pool_options())
        return self._pool

    async def migrate(self, conn: asyncpg.Connection) -> int:
        return await migrate(conn)

    async def _ensure_schema(self, pool: asyncpg.Pool) -> None:
        if self._migrated:
            return
        async with self._lock:
            if not self._migrated:
                async with pool.acquire(timeout=self.timeout_s) as conn:
                    version = await self.migrate(conn)
                log.info("schema ready", extra={"schema_version": version})
                self._migrated = True

    def report_unavailable(self, exc: BaseException) -> ProblemError:
        if self._on_unavailable is not None:
            self._on_unavailable()
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return unavailable(type(exc).__name__)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (no transaction); DB failures become DATABASE_UNAVAILABLE.

        Releasing the connection resets it (a round trip): if that fails, asyncpg drops the connection,
        and the work done on it stands, so a release failure is logged, never reported as the outcome."""
        try:
            pool = await self._get_pool()
            await self._ensure_schema(pool)
            conn = await pool.acquire(timeout=self.timeout_s)
        except DB_UNAVAILABLE_ERRORS as exc:
            raise self.report_unavailable(exc) from None
        try:
            yield conn
        except DB_UNAVAILABLE_ERRORS as exc:
            raise self.report_unavailable(exc) from None
        finally:
            try:
                await pool.release(conn, timeout=self.timeout_s)
            except DB_UNAVAILABLE_ERRORS as exc:  # (a CancelledError, e.g. the deadline, propagates)
                log.warning("connection dropped on release", extra={"error": type(exc).__name__})

    @asynccontextmanager
    async def transaction(self, isolation: str = "read_committed",
                          readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """One DB transaction; a ProblemError raised inside rolls it back and propagates unchanged.

        A failure *of the COMMIT itself* is different from any failure before it: the server may have
        committed and only the answer got lost. That raises CommitInDoubt, never "nothing was applied"."""
        async with self.connection() as conn:
            tx = conn.transaction(isolation=isolation, readonly=readonly)
            await tx.start()
            try:
                yield conn
            except BaseException:
                try:
                    await tx.rollback()
                except DB_UNAVAILABLE_ERRORS:
                    pass  # the connection is broken; the server rolls back when it notices
                raise
            note_commit(True)  # if the deadline cuts us off during the COMMIT, the outcome is unknown
            try:
                await tx.commit()
            except DB_UNAVAILABLE_ERRORS as exc:
                self.report_unavailable(exc)
                raise CommitInDoubt(type(exc).__name__) from None
            # committed: if the deadline now cuts the request off (e.g. while the connection is
            # released over a slow network), the answer must not say "nothing was applied"
            note_commit(False, wrote=not readonly)

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), self.timeout_s)
            except (TimeoutError, *DB_UNAVAILABLE_ERRORS):
                self._pool.terminate()
            self._pool = None
