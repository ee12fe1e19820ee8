"""The money-moving POSTs, all behind an idempotency key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mock_wallet.deps import Context, CurrentUser, IdemKey
from mock_wallet.idempotency import IdempotencyKey, request_hash
from mock_wallet.ledger import transaction_json
from mock_wallet.models import DepositIn, TransactionOut, TransferIn, WithdrawalIn
from mock_wallet.money import gateway_failed
from mock_wallet.problems import problem_openapi_responses as problems

router = APIRouter(prefix="/v1")

COMMON = ("UNAUTHENTICATED", "ACCOUNT_NOT_FOUND", "ACCOUNT_FROZEN", "IDEMPOTENCY_KEY_MISSING",
          "IDEMPOTENCY_KEY_REUSED", "REQUEST_IN_PROGRESS")
GATEWAY = ("GATEWAY_ERROR", "GATEWAY_TIMEOUT")
PIN = ("INVALID_PIN", "ACCOUNT_LOCKED", "INSUFFICIENT_FUNDS")
PENDING = {202: {"description": "Pending (replay of a request whose gateway outcome is still unknown)",
                 "model": TransactionOut}}


def transaction_response(txn: asyncpg.Record) -> JSONResponse:
    """201 once settled, 202 while pending; a failed transaction answers its failure problem."""
    if txn["status"] == "failed":
        raise gateway_failed(txn, "recorded outcome")
    return JSONResponse(transaction_json(txn), status_code=202 if txn["status"] == "pending" else 201)


async def run_idempotent(work: Callable[[], Awaitable[asyncpg.Record]]) -> JSONResponse:
    """The money ops claim their key inside their own first transaction (mock_wallet/money.py) and return
    either the new transaction or the replayed one; a refusal is raised as its problem."""
    return transaction_response(await work())


@router.post("/deposits", status_code=201, response_model=TransactionOut,
             responses={**PENDING, **problems(*COMMON, *GATEWAY)})
async def deposit(body: DepositIn, user: CurrentUser, key: IdemKey, ctx: Context) -> JSONResponse:
    idem = IdempotencyKey(user, key, request_hash("deposit", body.model_dump(mode="json")))
    return await run_idempotent(lambda: ctx.money.deposit(idem, body.account_id, body.amount))


@router.post("/withdrawals", status_code=201, response_model=TransactionOut,
             responses={**PENDING, **problems(*COMMON, *PIN, *GATEWAY)})
async def withdraw(body: WithdrawalIn, user: CurrentUser, key: IdemKey, ctx: Context) -> JSONResponse:
    idem = IdempotencyKey(user, key, request_hash("withdrawal", body.model_dump(mode="json")))
    return await run_idempotent(lambda: ctx.money.withdraw(idem, body.account_id, body.amount, body.pin))


@router.post("/transfers", status_code=201, response_model=TransactionOut,
             responses=problems(*COMMON, *PIN, "GATEWAY_TIMEOUT"))  # 504: the DB did not confirm the commit
async def transfer(body: TransferIn, user: CurrentUser, key: IdemKey, ctx: Context) -> JSONResponse:
    idem = IdempotencyKey(user, key, request_hash("transfer", body.model_dump(mode="json")))
    return await run_idempotent(
        lambda: ctx.money.transfer(idem, body.from_account_id, body.to_account_id, body.amount, body.pin))
