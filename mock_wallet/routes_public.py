"""Registration, login and the read endpoints of /v1."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from mock_wallet.deps import Context, CurrentUser
from mock_wallet.ledger import transaction_json
from mock_wallet.models import (IDEMPOTENCY_KEY_PATTERN, AccountOut, LoginIn, LoginOut, RegisterIn, RegisterOut, TransactionOut,
                                TransactionPage)
from mock_wallet.problems import problem_openapi_responses as problems
from mock_wallet.queries import parse_uuid

router = APIRouter(prefix="/v1")
AUTHED = ("UNAUTHENTICATED",)


@router.post("/users", status_code=201, response_model=RegisterOut, responses=problems("USERNAME_TAKEN"))
async def register(body: RegisterIn, ctx: Context) -> JSONResponse:
    user_id, account_id = await ctx.auth.register(body.username, body.password, body.pin)
    return JSONResponse({"user_id": str(user_id), "account_id": str(account_id)}, status_code=201)


@router.post("/sessions", response_model=LoginOut, responses=problems("INVALID_CREDENTIALS", "ACCOUNT_LOCKED"))
async def login(body: LoginIn, ctx: Context) -> JSONResponse:
    session = await ctx.auth.login(body.username, body.password)
    return JSONResponse({"token": session.token, "expires_at": session.expires_at.isoformat()})


@router.get("/accounts/{account_id}", response_model=AccountOut, responses=problems(*AUTHED, "ACCOUNT_NOT_FOUND"))
async def get_account(account_id: str, user: CurrentUser, ctx: Context) -> JSONResponse:
    return JSONResponse(await ctx.queries.account(user, parse_uuid(account_id, "ACCOUNT_NOT_FOUND")))


@router.get("/accounts/{account_id}/transactions", response_model=TransactionPage,
            responses=problems(*AUTHED, "ACCOUNT_NOT_FOUND"))
async def account_history(account_id: str, user: CurrentUser, ctx: Context,
                          limit: Annotated[int, Query(ge=1, le=100)] = 20,
                          cursor: Annotated[str | None, Query(max_length=200)] = None) -> JSONResponse:
    page = await ctx.queries.history(user, parse_uuid(account_id, "ACCOUNT_NOT_FOUND"), limit, cursor)
    return JSONResponse(page)


@router.get("/transactions/{transaction_id}", response_model=TransactionOut,
            responses=problems(*AUTHED, "TRANSACTION_NOT_FOUND"))
async def get_transaction(transaction_id: str, user: CurrentUser, ctx: Context) -> JSONResponse:
    txn = await ctx.queries.transaction(user, parse_uuid(transaction_id, "TRANSACTION_NOT_FOUND"))
    return JSONResponse(transaction_json(txn))


@router.get("/transactions", response_model=TransactionOut, responses=problems(*AUTHED, "TRANSACTION_NOT_FOUND"))
async def lookup_by_key(user: CurrentUser, ctx: Context,
                        idempotency_key: Annotated[str, Query(pattern=IDEMPOTENCY_KEY_PATTERN)]) -> JSONResponse:
    return JSONResponse(transaction_json(await ctx.queries.by_idempotency_key(user, idempotency_key)))
