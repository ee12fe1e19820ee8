"""Wallet application factory: wires settings, DB, gateway client, services, routes and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from mock_wallet import defects, handlers
from mock_wallet.deps import WalletContext
from mock_wallet.gateway_client import GatewayClient
from mock_wallet.metrics import WalletMetrics
from mock_wallet.middleware import Maintenance
from mock_wallet.models import Problem
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError
from mock_wallet.reconcile import Reconciler
from mock_wallet.routes_admin import admin, health
from mock_wallet.routes_money import router as money_router
from mock_wallet.routes_public import router as public_router
from mock_wallet.settings import WalletSettings

log = logging.getLogger("mock_wallet.app")


def build_context(settings: WalletSettings, parts: WalletParts | None = None,
                  planted_bugs: list[str] | None = None) -> WalletContext:
    if not settings.database_url:
        raise ValueError("DATABASE_URL is required by create_app (serve.py starts an embedded PostgreSQL)")
    parts = parts or WalletParts()
    metrics = WalletMetrics()
    db = parts.database(settings.database_url, pool_size=settings.pool_size, timeout_s=settings.db_timeout_s,
                        on_unavailable=metrics.db_errors.inc)
    gateway = GatewayClient(settings.gateway_url, settings.gateway_timeout_s)
    auth = parts.auth(db, lockout_s=settings.lockout_s, session_ttl_s=settings.session_ttl_s,
                      pin_cache_size=settings.pin_cache_size)
    idempotency = parts.idempotency(db, lease_s=settings.deadline_s + 1.0)
    money = parts.money(db, auth, gateway, metrics, idempotency, parts.ledger())
    return WalletContext(
        settings=settings, db=db, gateway=gateway, auth=auth, money=money, queries=parts.queries(db),
        idempotency=idempotency,
        reconciler=Reconciler(db, gateway, money, metrics, budget_s=settings.deadline_s * 0.6),
        metrics=metrics, maintenance=Maintenance(), planted_bugs=sorted(planted_bugs or []))


def create_app(settings: WalletSettings | None = None) -> FastAPI:
    settings = settings or WalletSettings()
    planted = defects.parse(settings.bugs)  # planted bugs (harness self-test only); raises BugsRefused
    parts = defects.assemble(planted)
    defects.announce(planted)
    ctx = build_context(settings, parts, sorted(planted))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await ctx.db.ping()  # migrate now if we can; if the DB is down, /readyz says so until it is back
        except ProblemError:
            log.warning("database not reachable at start; will retry on demand")
        yield
        await ctx.gateway.aclose()
        await ctx.db.close()

    app = FastAPI(title="walletchaos mock wallet", version="1.0.0", lifespan=lifespan,
                  description="Simulated digital wallet (contract v1). Every error is application/problem+json.")
    app.state.wallet = ctx
    for router in (public_router, money_router, admin, health):
        app.include_router(router)
    renderer = parts.renderer()
    handlers.install(app, renderer)
    app.add_middleware(parts.middleware, metrics=ctx.metrics, maintenance=ctx.maintenance,
                       deadline_s=settings.deadline_s, max_inflight=settings.max_inflight, renderer=renderer)
    app.openapi = lambda: _openapi_with_problem(app)  # type: ignore[method-assign]
    return app


def _openapi_with_problem(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the Problem component our problem+json responses refer to."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        app.openapi_schema = schema
    return app.openapi_schema
