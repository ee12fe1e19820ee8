"""Mock payment gateway: charges and payouts idempotent by reference, plus a control API.

Requests for one reference are serialised (one asyncio.Lock per reference, single process), so a
re-drive that races an in-flight original always sees the original's record. Injected response faults
(drop/hang) happen *after* the record is written and outside the lock, exactly like a real bank that
applied the payment but whose answer got lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictInt
from starlette.types import Receive, Scope, Send

from mock_wallet.gateway.behaviour import Behaviour, Dice
from mock_wallet.gateway.store import GatewayStore, Kind
from mock_wallet.settings import GatewaySettings

log = logging.getLogger("mock_wallet.gateway")


class PaymentIn(BaseModel):
    reference: Annotated[str, Field(min_length=1, max_length=200)]
    amount: Annotated[StrictInt, Field(gt=0)]


class DropConnection(Response):
    """Closes the connection without sending a single byte of response.

    uvicorn writes nothing for a response start whose header value is invalid, and since the response
    counts as started it then just closes the transport: the client sees the peer hang up after its
    request was sent (and applied), the 'unknown outcome' case.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-drop", b"\r\n")]})


def create_gateway_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    store = GatewayStore(settings.db_path)
    state = {"dice": Dice(Behaviour())}
    locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="walletchaos mock payment gateway", version="1.0.0", lifespan=lifespan)

    async def apply(kind: Kind, body: PaymentIn) -> Response:
        dice: Dice = state["dice"]
        behaviour = dice.behaviour
        async with locks[f"{kind}:{body.reference}"]:
            if behaviour.delay_ms:
                await asyncio.sleep(behaviour.delay_ms / 1000)
            record = store.get(kind, body.reference)
            if record is None:
                if dice.roll(behaviour.error_rate):
                    return JSONResponse({"error": "injected gateway error; nothing applied"}, status_code=503)
                status = "declined" if dice.roll(behaviour.decline_rate) else "succeeded"
                record = store.insert(kind, body.reference, body.amount, status)
                log.info("applied", extra={"kind": kind, **record})
        if dice.roll(behaviour.apply_then_drop_rate):
            log.info("dropping response", extra={"kind": kind, "reference": body.reference})
            return DropConnection()
        if dice.roll(behaviour.apply_then_hang_rate):
            await asyncio.sleep(behaviour.hang_s)
        return JSONResponse({"reference": record["reference"], "amount": record["amount"],
                             "status": record["status"]})

    def lookup(kind: Kind, reference: str) -> Response:
        record = store.get(kind, reference)
        if record is None:
            return JSONResponse({"error": "no such reference"}, status_code=404)
        return JSONResponse(record)

    @app.post("/charges")
    async def charge(body: PaymentIn) -> Response:
        return await apply("charges", body)

    @app.post("/payouts")
    async def payout(body: PaymentIn) -> Response:
        return await apply("payouts", body)

    @app.get("/charges/{reference}")
    async def get_charge(reference: str) -> Response:
        return lookup("charges", reference)

    @app.get("/payouts/{reference}")
    async def get_payout(reference: str) -> Response:
        return lookup("payouts", reference)

    @app.get("/control/behaviour")
    async def get_behaviour() -> Behaviour:
        return state["dice"].behaviour

    @app.put("/control/behaviour")
    async def put_behaviour(behaviour: Behaviour) -> Behaviour:
        state["dice"] = Dice(behaviour)
        log.info("behaviour set", extra=behaviour.model_dump())
        return behaviour

    @app.post("/control/reset-behaviour")
    async def reset_behaviour() -> Behaviour:
        state["dice"] = Dice(Behaviour())
        return state["dice"].behaviour

    @app.get("/control/records")
    async def records() -> JSONResponse:
        return JSONResponse(store.records())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        store.ping()
        return {"status": "ready"}

    return app
