"""Adapter for the restish wallet API (restish_wallet.py): `adapter: restish_adapter:RestishAdapter`.

Requests: each contract operation becomes the restish request that performs it. Answers: a restish
answer becomes the answer the contract would have given: success statuses (201 created, 202 pending),
renamed fields, and every error as problem+json with the contract's code, status and `retryable`
(from the catalog, keyed by the restish error `kind`). What the wallet did not say is NOT invented:
a missing correlation id stays a missing `request_id`, an unknown error kind keeps its raw status and a
code the catalog does not know, so the checkers still see the defect.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from walletchaos.adapters import Admin, ContractCall, Request
from walletchaos.checks.catalog import CATALOG
from walletchaos.client import PROBLEM_CONTENT_TYPE, RawResponse

MONEY = {"deposit": "topups", "withdraw": "payouts", "transfer": "transfers"}


def txn(p: dict[str, Any]) -> dict[str, Any]:
    """A restish payment as a contract transaction."""
    return {"transaction_id": p.get("id"), "kind": p.get("type"), "status": p.get("state"), "amount": p.get("cents"),
            "from_account_id": p.get("from"), "to_account_id": p.get("to"), "idempotency_key": p.get("dedup_key"),
            "created_at": p.get("at"), "failure_code": p.get("failure")}


class RestishAdapter:
    name = "restish"

    def request(self, call: ContractCall) -> Request:
        p = call.params
        h = {"X-Session": call.token} if call.token else {}
        if call.request_id:
            h["X-Correlation-Id"] = call.request_id
        if call.idempotency_key:
            h["X-Dedup-Key"] = call.idempotency_key
        match call.op:
            case "register":
                return Request("POST", "/api/customers", {"login": p["username"], "secret": p["password"],
                                                          "payment_pin": p["pin"]}, h)
            case "login":
                return Request("POST", "/api/login", {"login": p["username"], "secret": p["password"]}, h)
            case "deposit":
                return Request("POST", f"/api/wallets/{p['account_id']}/topups", {"cents": p["amount"]}, h)
            case "withdraw":
                return Request("POST", f"/api/wallets/{p['account_id']}/payouts",
                               {"cents": p["amount"], "payment_pin": p["pin"]}, h)
            case "transfer":
                return Request("POST", f"/api/wallets/{p['from_account_id']}/transfers",
                               {"to_wallet": p["to_account_id"], "cents": p["amount"], "payment_pin": p["pin"]}, h)
            case "balance":
                return Request("GET", f"/api/wallets/{p['account_id']}", None, h)
            case "history":
                return Request("GET", f"/api/wallets/{p['account_id']}/payments?max={p['limit']}", None, h)
            case "lookup":
                return Request("GET", f"/api/payments/by-key/{quote(p['idempotency_key'], safe='')}", None, h)
            case "transaction":
                return Request("GET", f"/api/payments/{p['transaction_id']}", None, h)
        raise ValueError(f"unknown op {call.op!r}")

    def answer(self, call: ContractCall, raw: RawResponse) -> RawResponse:
        try:
            data = orjson.loads(raw.body) if raw.body else None
        except orjson.JSONDecodeError:
            return raw  # not restish JSON: leave it for the harness to judge as it is
        headers = {"content-type": "application/json"}
        if rid := raw.header("x-correlation-id"):
            headers["x-request-id"] = rid
        if retry_after := raw.header("retry-after"):
            headers["retry-after"] = retry_after
        if raw.status is not None and raw.status >= 400 and isinstance(data, dict) and isinstance(data.get("error"), dict):
            return self._problem(raw.status, data["error"], headers)
        if raw.status != 200 or not isinstance(data, dict):
            return raw
        status, body = 200, data
        match call.op:
            case "register":
                body, status = {"user_id": data["customer"]["id"], "account_id": data["customer"]["wallet"]}, 201
            case "login":
                body = {"token": data["access_token"], "expires_at": data["expires"]}
            case "deposit" | "withdraw" | "transfer":
                body = txn(data["payment"])
                status = 202 if body["status"] == "pending" else 201
            case "balance":
                w = data["wallet"]
                body = {"account_id": w["id"], "balance": w["cents"], "currency": "CNY", "status": w["state"]}
            case "history":
                body = {"items": [txn(p) for p in data["payments"]], "next_cursor": data.get("more")}
            case "lookup" | "transaction":
                body = txn(data["payment"])
        return RawResponse(status, headers, orjson.dumps(body))

    @staticmethod
    def _problem(status: int, error: dict[str, Any], headers: dict[str, str]) -> RawResponse:
        code = str(error.get("kind", "")).upper()
        entry = CATALOG.get(code)
        problem: dict[str, Any] = {
            "type": f"https://restish.example/errors/{error.get('kind')}", "title": code.replace("_", " ").title(),
            "status": entry.status if entry else status, "detail": error.get("message", ""), "code": code,
            "retryable": entry.retryable if entry else False,
        }
        if "x-request-id" in headers:
            problem["request_id"] = headers["x-request-id"]
        if error.get("payment_id"):
            problem["transaction_id"] = error["payment_id"]
        return RawResponse(problem["status"], {**headers, "content-type": PROBLEM_CONTENT_TYPE}, orjson.dumps(problem))

    # admin ---------------------------------------------------------------------------------------------
    @staticmethod
    def _ops(admin: Admin, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        r = admin.http.request(method, path, json=json, headers={"X-Ops-Token": admin.token})
        r.raise_for_status()
        return r.json() if r.content else None

    def export(self, admin: Admin) -> dict[str, Any]:
        return self._ops(admin, "GET", "/ops/snapshot")

    def audit(self, admin: Admin) -> dict[str, Any]:
        return self._ops(admin, "GET", "/ops/audit")

    def reconcile(self, admin: Admin) -> dict[str, Any]:
        r = self._ops(admin, "POST", "/ops/settle")
        return {"resolved": r["settled"], "still_pending": r["open"]}

    def freeze(self, admin: Admin, account_id: str) -> None:
        self._ops(admin, "POST", f"/ops/wallets/{account_id}/lock")

    def unfreeze(self, admin: Admin, account_id: str) -> None:
        self._ops(admin, "POST", f"/ops/wallets/{account_id}/unlock")

    def maintenance(self, admin: Admin, enabled: bool, retry_after_s: int) -> None:
        self._ops(admin, "PUT", "/ops/maintenance", {"on": enabled, "retry_after": retry_after_s})
