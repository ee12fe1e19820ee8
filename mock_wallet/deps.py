"""Everything a route needs, built once per app (WalletContext), and the auth/idempotency dependencies."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mock_wallet.auth import AuthService
from mock_wallet.db import Database
from mock_wallet.gateway_client import GatewayClient
from mock_wallet.idempotency import IdempotencyStore
from mock_wallet.metrics import WalletMetrics
from mock_wallet.middleware import Maintenance
from mock_wallet.models import IDEMPOTENCY_KEY_PATTERN
from mock_wallet.money import MoneyService
from mock_wallet.problems import ProblemError
from mock_wallet.queries import Queries
from mock_wallet.reconcile import Reconciler
from mock_wallet.settings import WalletSettings

_PRINTABLE_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


@dataclass
class WalletContext:
    settings: WalletSettings
    db: Database
    gateway: GatewayClient
    auth: AuthService
    money: MoneyService
    queries: Queries
    idempotency: IdempotencyStore
    reconciler: Reconciler
    metrics: WalletMetrics
    maintenance: Maintenance
    planted_bugs: list[str]  # non-empty only for a deliberately broken wallet (mock_wallet/defects/)


def get_context(request: Request) -> WalletContext:
    return request.app.state.wallet


Context = Annotated[WalletContext, Depends(get_context)]

_user_bearer = HTTPBearer(auto_error=False, scheme_name="UserToken", description="token from POST /v1/sessions")
_admin_bearer = HTTPBearer(auto_error=False, scheme_name="AdminToken", description="WALLET_ADMIN_TOKEN")


async def current_user(ctx: Context,
                       credentials: HTTPAuthorizationCredentials | None = Depends(_user_bearer)) -> uuid.UUID:
    if credentials is None or not credentials.credentials:
        raise ProblemError("UNAUTHENTICATED", "A bearer token is required (POST /v1/sessions).")
    return await ctx.auth.user_for_token(credentials.credentials)


async def require_admin(ctx: Context,
                        credentials: HTTPAuthorizationCredentials | None = Depends(_admin_bearer)) -> None:
    if credentials is None or not secrets.compare_digest(credentials.credentials.encode(),
                                                         ctx.settings.admin_token.encode()):
        raise ProblemError("UNAUTHENTICATED", "The admin token is missing or wrong.")


def idempotency_key(key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> str:
    """Missing or empty → 400 IDEMPOTENCY_KEY_MISSING; present but not 1–128 printable ASCII → 422."""
    if not key:
        raise ProblemError("IDEMPOTENCY_KEY_MISSING", "Money-moving requests need an Idempotency-Key header.")
    if not _PRINTABLE_KEY.match(key):
        raise ProblemError("VALIDATION_ERROR", "The Idempotency-Key must be 1-128 printable ASCII characters.")
    return key


CurrentUser = Annotated[uuid.UUID, Depends(current_user)]
AdminOnly = Depends(require_admin)
IdemKey = Annotated[str, Depends(idempotency_key)]
