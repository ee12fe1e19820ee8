"""Service configuration from the environment (names fixed by docs/internals.md).

pydantic-settings so a typo'd value fails loudly at start instead of at the first request.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WalletSettings(BaseSettings):
    """Wallet service settings. Every dependency timeout sits below the request deadline so that a slow
    dependency becomes a problem response before the backstop has to cancel the handler."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    gateway_url: str = Field(default="http://127.0.0.1:8081", validation_alias="GATEWAY_URL")
    admin_token: str = Field(default="admin-secret", validation_alias="WALLET_ADMIN_TOKEN")
    deadline_s: float = Field(default=5.0, gt=0, validation_alias="WALLET_DEADLINE_S")
    db_timeout_s: float = Field(default=2.0, gt=0, validation_alias="WALLET_DB_TIMEOUT_S")
    gateway_timeout_s: float = Field(default=2.0, gt=0, validation_alias="WALLET_GATEWAY_TIMEOUT_S")
    pool_size: int = Field(default=10, ge=1, validation_alias="WALLET_POOL_SIZE")
    host: str = Field(default="127.0.0.1", validation_alias="WALLET_HOST")
    port: int = Field(default=8080, validation_alias="WALLET_PORT")
    lockout_s: float = Field(default=300.0, gt=0, validation_alias="WALLET_LOCKOUT_S")
    max_inflight: int = Field(default=64, ge=1, validation_alias="WALLET_MAX_INFLIGHT")
    session_ttl_s: float = Field(default=3600.0, gt=0, validation_alias="WALLET_SESSION_TTL_S")
    # correct payment PINs remembered per process (HMAC under a random key) so scrypt runs once per PIN;
    # 0 turns it off (every money operation pays scrypt)
    pin_cache_size: int = Field(default=10_000, ge=0, validation_alias="WALLET_PIN_CACHE_SIZE")
    # idle keep-alive connections are closed after this. Longer than any client's idle gap, so the client
    # (or a load balancer) is the side that closes: a server closing first races a client reusing the
    # connection, and a POST lost that way cannot be retried blindly (uvicorn's default is 5 s)
    keepalive_s: float = Field(default=75.0, gt=0, validation_alias="WALLET_KEEPALIVE_S")
    data_dir: Path = Field(default=Path("./.walletchaos/pg"), validation_alias="WALLET_DATA_DIR")
    bugs: str = Field(default="", validation_alias="WALLET_BUGS")
    log_level: str = Field(default="INFO", validation_alias="WALLET_LOG_LEVEL")


class GatewaySettings(BaseSettings):
    """Mock payment gateway settings."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    db_path: Path = Field(default=Path("./.walletchaos/gateway.sqlite3"), validation_alias="GATEWAY_DB_PATH")
    host: str = Field(default="127.0.0.1", validation_alias="GATEWAY_HOST")
    port: int = Field(default=8081, validation_alias="GATEWAY_PORT")
    keepalive_s: float = Field(default=75.0, gt=0, validation_alias="GATEWAY_KEEPALIVE_S")  # see WalletSettings
    log_level: str = Field(default="INFO", validation_alias="WALLET_LOG_LEVEL")
