"""db-bypasses-proxy: the wallet connects to PostgreSQL directly, at the address in DIRECT_URL_ENV (set by
the harness's topology next to the proxied DATABASE_URL), not through the `wallet_db` proxy: the
nemesis's DB faults reach nothing, and a scenario that should see them sees a healthy database."""

from __future__ import annotations

import logging
import os

from mock_wallet.db import Database
from mock_wallet.parts import WalletParts

log = logging.getLogger("mock_wallet.defects")

DIRECT_URL_ENV = "WALLETCHAOS_DIRECT_DATABASE_URL"


class DirectDatabase(Database):
    def __init__(self, url: str, **kwargs) -> None:
        super().__init__(os.environ[DIRECT_URL_ENV], **kwargs)
        log.warning("db-bypasses-proxy: connecting to the database directly (%s), not through DATABASE_URL",
                    DIRECT_URL_ENV)


def plant(parts: WalletParts) -> None:
    from mock_wallet.defects import BugsRefused

    if not os.environ.get(DIRECT_URL_ENV):
        raise BugsRefused(f"db-bypasses-proxy needs {DIRECT_URL_ENV} (the database's own address, not the proxy's)")
    parts.replace("database", DirectDatabase)
