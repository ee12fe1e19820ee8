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


class Database:
    """Lazily created pool + one-time migrations; `transaction()` is the only way handlers touch the DB."""

    def __init__(self, url: str, *, pool_size: int, timeout_s: float, on_unavailable=None) -> None:
        self.url = url
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._migrated = False
        self._lock = asyncio.Lock()
        self._on_unavailable = on_unavailable

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.url, min_size=0, max_size=self.pool_size, timeout=self.timeout_s,
                        command_timeout=self.timeout_s, max_inactive_connection_lifetime=60,
                        server_settings={"application_name": "mock_wallet",
                                         "statement_timeout": str(int(self.timeout_s * 1000)),
                                         "lock_timeout": str(int(self.timeout_s * 1000))},
                    )
        return self._pool

    async def _ensure_schema(self, pool: asyncpg.Pool) -> None:
        if self._migrated:
            return
        async with self._lock:
            if not self._migrated:
                async with pool.acquire(timeout=self.timeout_s) as conn:
                    version = await migrate(conn)
                log.info("schema ready", extra={"schema_version": version})
                self._migrated = True

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection (no transaction); DB failures become DATABASE_UNAVAILABLE."""
        try:
            pool = await self._get_pool()
            await self._ensure_schema(pool)
            async with pool.acquire(timeout=self.timeout_s) as conn:
                yield conn
        except DB_UNAVAILABLE_ERRORS as exc:
            if self._on_unavailable is not None:
                self._on_unavailable()
            log.warning("database unavailable", extra={"error": type(exc).__name__})
            raise unavailable(type(exc).__name__) from None

    @asynccontextmanager
    async def transaction(self, isolation: str = "read_committed",
                          readonly: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """One DB transaction; a ProblemError raised inside rolls it back and propagates unchanged."""
        async with self.connection() as conn:
            async with conn.transaction(isolation=isolation, readonly=readonly):
                yield conn

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
