"""Admin endpoints (separate admin bearer token) and health/readiness/metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mock_wallet.deps import AdminOnly, Context
from mock_wallet.models import AccountStatusOut, AuditOut, MaintenanceIn, MaintenanceOut, ReconcileOut
from mock_wallet.problems import problem_openapi_responses as problems
from mock_wallet.queries import parse_uuid

admin = APIRouter(prefix="/admin", dependencies=[AdminOnly])
health = APIRouter()
ADMIN = ("UNAUTHENTICATED",)


@admin.post("/maintenance", response_model=MaintenanceOut, responses=problems(*ADMIN))
async def set_maintenance(body: MaintenanceIn, ctx: Context) -> JSONResponse:
    ctx.maintenance.enabled, ctx.maintenance.retry_after_s = body.enabled, body.retry_after_s
    return JSONResponse({"enabled": body.enabled, "retry_after_s": body.retry_after_s})


@admin.post("/accounts/{account_id}/freeze", response_model=AccountStatusOut,
            responses=problems(*ADMIN, "ACCOUNT_NOT_FOUND"))
async def freeze(account_id: str, ctx: Context) -> JSONResponse:
    return JSONResponse(await ctx.queries.set_account_status(parse_uuid(account_id, "ACCOUNT_NOT_FOUND"), "frozen"))


@admin.post("/accounts/{account_id}/unfreeze", response_model=AccountStatusOut,
            responses=problems(*ADMIN, "ACCOUNT_NOT_FOUND"))
async def unfreeze(account_id: str, ctx: Context) -> JSONResponse:
    return JSONResponse(await ctx.queries.set_account_status(parse_uuid(account_id, "ACCOUNT_NOT_FOUND"), "active"))


@admin.post("/reconcile", response_model=ReconcileOut, responses=problems(*ADMIN))
async def reconcile(ctx: Context) -> JSONResponse:
    return JSONResponse(await ctx.reconciler.run())


@admin.get("/audit", response_model=AuditOut, responses=problems(*ADMIN))
async def audit(ctx: Context) -> JSONResponse:
    result = await ctx.queries.audit()
    ctx.metrics.pending.set(result["pending_count"])
    return JSONResponse(result)


@admin.get("/export", responses=problems(*ADMIN))
async def export(ctx: Context) -> JSONResponse:
    """One snapshot of accounts, transactions (with entries_sum) and the audit (docs/internals.md)."""
    return JSONResponse(await ctx.queries.export())


@health.get("/healthz")
async def healthz(ctx: Context) -> JSONResponse:
    # planted_bugs: non-empty only for a deliberately broken wallet (harness self-test, mock_wallet/defects/)
    return JSONResponse({"status": "ok", "planted_bugs": ctx.planted_bugs})


@health.get("/readyz", responses=problems())
async def readyz(ctx: Context) -> JSONResponse:
    await ctx.db.ping()
    return JSONResponse({"status": "ready"})


@health.get("/metrics", include_in_schema=False)
async def metrics(ctx: Context) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
