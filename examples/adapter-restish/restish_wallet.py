"""A wallet API shaped differently from CONTRACT.md: the kind of API a team's own wallet may have.

It is a façade over a contract wallet (WALLET_URL), so the example needs no second ledger, but a
client sees only its own shape:

| op | restish request | answer |
|---|---|---|
| register | POST /api/customers {login, secret, payment_pin} | 200 {customer: {id, wallet}} |
| login | POST /api/login {login, secret} | 200 {access_token, expires} |
| deposit | POST /api/wallets/{id}/topups {cents} + X-Dedup-Key | 200 {payment} (state pending: not yet settled) |
| withdraw | POST /api/wallets/{id}/payouts {cents, payment_pin} + X-Dedup-Key | 200 {payment} |
| transfer | POST /api/wallets/{id}/transfers {to_wallet, cents, payment_pin} + X-Dedup-Key | 200 {payment} |
| balance | GET /api/wallets/{id} | 200 {wallet: {id, cents, state}} |
| history | GET /api/wallets/{id}/payments?max=N | 200 {payments: [...], more} |
| lookup | GET /api/payments/by-key/{key} | 200 {payment} |
| transaction | GET /api/payments/{id} | 200 {payment} |

Session token in `X-Session`, request id in `X-Correlation-Id` (both ways). Errors are
`{"error": {"kind": "insufficient_funds", "message": "...", "payment_id": ...}}` with status 400
(client mistakes), 401, 404, 409 (retry later) or 503/504 (the service's own trouble). Admin ("ops")
endpoints take `X-Ops-Token`: GET /ops/snapshot, GET /ops/audit, POST /ops/settle → {settled, open},
POST /ops/wallets/{id}/lock|unlock, PUT /ops/maintenance {on, retry_after}.

Run: `WALLET_URL=http://127.0.0.1:8080 uvicorn restish_wallet:app --port 9090`.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

app = FastAPI(title="restish wallet")
_http: httpx.Client | None = None


def http() -> httpx.Client:
    global _http
    if _http is None:
        _http = httpx.Client(base_url=os.environ.get("WALLET_URL", "http://127.0.0.1:8080"), timeout=10.0)
    return _http


def payment(t: dict[str, Any]) -> dict[str, Any]:
    return {"id": t.get("transaction_id"), "type": t.get("kind"), "state": t.get("status"),
            "cents": t.get("amount"), "from": t.get("from_account_id"), "to": t.get("to_account_id"),
            "dedup_key": t.get("idempotency_key"), "at": t.get("created_at"), "failure": t.get("failure_code")}


def forward(request: Request, method: str, path: str, body: dict[str, Any] | None = None,
            shape=lambda d: d, admin: bool = False) -> Response:
    headers = {}
    if rid := request.headers.get("x-correlation-id"):
        headers["X-Request-ID"] = rid
    if tok := request.headers.get("x-ops-token" if admin else "x-session"):
        headers["Authorization"] = f"Bearer {tok}"
    if key := request.headers.get("x-dedup-key"):
        headers["Idempotency-Key"] = key
    r = http().request(method, path, json=body, headers=headers)
    out = {"X-Correlation-Id": r.headers.get("x-request-id", "")}
    for h in ("retry-after",):
        if h in r.headers:
            out[h] = r.headers[h]
    data = r.json() if r.content else {}
    if r.status_code >= 400:
        error = {"kind": str(data.get("code", "internal_error")).lower(), "message": data.get("detail", "")}
        if data.get("transaction_id"):
            error["payment_id"] = data["transaction_id"]
        status = {401: 401, 404: 404, 504: 504}.get(r.status_code,
                                                   409 if data.get("retryable") and r.status_code < 500
                                                   else 400 if r.status_code < 500 else 503)
        return JSONResponse({"error": error}, status_code=status, headers=out)
    return JSONResponse(shape(data), status_code=200, headers=out)


@app.post("/api/customers")
async def customers(request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/v1/users", {"username": b.get("login"), "password": b.get("secret"),
                                                  "pin": b.get("payment_pin")},
                   lambda d: {"customer": {"id": d["user_id"], "wallet": d["account_id"]}})


@app.post("/api/login")
async def login(request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/v1/sessions", {"username": b.get("login"), "password": b.get("secret")},
                   lambda d: {"access_token": d["token"], "expires": d["expires_at"]})


@app.post("/api/wallets/{wallet}/topups")
async def topups(wallet: str, request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/v1/deposits", {"account_id": wallet, "amount": b.get("cents")},
                   lambda d: {"payment": payment(d)})


@app.post("/api/wallets/{wallet}/payouts")
async def payouts(wallet: str, request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/v1/withdrawals", {"account_id": wallet, "amount": b.get("cents"),
                                                        "pin": b.get("payment_pin")}, lambda d: {"payment": payment(d)})


@app.post("/api/wallets/{wallet}/transfers")
async def transfers(wallet: str, request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/v1/transfers", {"from_account_id": wallet, "to_account_id": b.get("to_wallet"),
                                                      "amount": b.get("cents"), "pin": b.get("payment_pin")},
                   lambda d: {"payment": payment(d)})


@app.get("/api/wallets/{wallet}")
def wallet_(wallet: str, request: Request) -> Response:
    return forward(request, "GET", f"/v1/accounts/{wallet}",
                   shape=lambda d: {"wallet": {"id": d["account_id"], "cents": d["balance"], "state": d["status"]}})


@app.get("/api/wallets/{wallet}/payments")
def payments(wallet: str, request: Request, max: int = 20) -> Response:
    return forward(request, "GET", f"/v1/accounts/{wallet}/transactions?limit={max}",
                   shape=lambda d: {"payments": [payment(t) for t in d["items"]], "more": d.get("next_cursor")})


@app.get("/api/payments/by-key/{key}")
def by_key(key: str, request: Request) -> Response:
    return forward(request, "GET", f"/v1/transactions?idempotency_key={key}", shape=lambda d: {"payment": payment(d)})


@app.get("/api/payments/{payment_id}")
def one_payment(payment_id: str, request: Request) -> Response:
    return forward(request, "GET", f"/v1/transactions/{payment_id}", shape=lambda d: {"payment": payment(d)})


@app.get("/ops/snapshot")
def snapshot(request: Request) -> Response:
    return forward(request, "GET", "/admin/export", admin=True)


@app.get("/ops/audit")
def audit(request: Request) -> Response:
    return forward(request, "GET", "/admin/audit", admin=True)


@app.post("/ops/settle")
def settle(request: Request) -> Response:
    return forward(request, "POST", "/admin/reconcile", admin=True,
                   shape=lambda d: {"settled": d["resolved"], "open": d["still_pending"]})


@app.post("/ops/wallets/{wallet}/{action}")
def lock(wallet: str, action: str, request: Request) -> Response:
    verb = {"lock": "freeze", "unlock": "unfreeze"}.get(action, action)
    return forward(request, "POST", f"/admin/accounts/{wallet}/{verb}", admin=True)


@app.put("/ops/maintenance")
async def maintenance(request: Request) -> Response:
    b = await request.json()
    return forward(request, "POST", "/admin/maintenance", {"enabled": b.get("on"), "retry_after_s": b.get("retry_after")},
                   admin=True)


@app.get("/readyz")
def ready(request: Request) -> Response:
    r = http().get("/readyz")
    return Response(status_code=r.status_code)
