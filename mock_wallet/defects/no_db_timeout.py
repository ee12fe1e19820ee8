"""no-db-timeout: no DB statement, lock, command or pool timeout, and no request deadline: a stalled
database holds every request (and its client) indefinitely instead of answering a problem."""

from __future__ import annotations

from mock_wallet.db import Database
from mock_wallet.middleware import WalletMiddleware
from mock_wallet.parts import WalletParts


class UnboundedDatabase(Database):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_s = None  # type: ignore[assignment]  # asyncpg and asyncio: wait forever

    def pool_options(self) -> dict:
        return {"timeout": 60.0, "command_timeout": None, "server_settings": {"application_name": "mock_wallet"}}


class NoDeadlineMiddleware(WalletMiddleware):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.deadline_s = None  # type: ignore[assignment]  # asyncio.timeout(None): never


def plant(parts: WalletParts) -> None:
    parts.replace("database", UnboundedDatabase)
    parts.replace("middleware", NoDeadlineMiddleware)
