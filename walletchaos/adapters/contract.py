"""The built-in adapter (`adapter: contract`): the wallet speaks CONTRACT.md, nothing to translate.

Client ops map 1:1 onto the contract's routes (what `walletchaos.client.WalletApi` sends); admin needs
are the contract's admin endpoints plus GET /admin/export (docs/internals.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from walletchaos.adapters.base import Admin, ContractCall, Request
from walletchaos.client import RawResponse


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class ContractAdapter:
    name = "contract"
    speaks_contract = True  # the load generator's requests already are this wallet's: no translation

    def request(self, call: ContractCall) -> Request:
        p, auth = call.params, _bearer(call.token)
        key = {"Idempotency-Key": call.idempotency_key} if call.idempotency_key else {}
        match call.op:
            case "register":
                return Request("POST", "/v1/users", dict(p))
            case "login":
                return Request("POST", "/v1/sessions", dict(p))
            case "deposit":
                return Request("POST", "/v1/deposits", dict(p), {**auth, **key})
            case "withdraw":
                return Request("POST", "/v1/withdrawals", dict(p), {**auth, **key})
            case "transfer":
                return Request("POST", "/v1/transfers", dict(p), {**auth, **key})
            case "balance":
                return Request("GET", f"/v1/accounts/{p['account_id']}", None, auth)
            case "history":
                return Request("GET", f"/v1/accounts/{p['account_id']}/transactions?limit={p['limit']}", None, auth)
            case "lookup":
                return Request("GET", f"/v1/transactions?idempotency_key={quote(p['idempotency_key'])}", None, auth)
            case "transaction":
                return Request("GET", f"/v1/transactions/{p['transaction_id']}", None, auth)
        raise ValueError(f"unknown op {call.op!r}")

    def answer(self, call: ContractCall, raw: RawResponse) -> RawResponse:
        return raw

    # admin -------------------------------------------------------------------------------------------
    @staticmethod
    def _admin(admin: Admin, method: str, path: str, json: dict[str, Any] | None = None) -> Any:
        r = admin.http.request(method, path, json=json, headers={"Authorization": f"Bearer {admin.token}"})
        r.raise_for_status()
        return r.json() if r.content else None

    def export(self, admin: Admin) -> dict[str, Any]:
        return self._admin(admin, "GET", "/admin/export")

    def audit(self, admin: Admin) -> dict[str, Any]:
        return self._admin(admin, "GET", "/admin/audit")

    def reconcile(self, admin: Admin) -> dict[str, Any]:
        return self._admin(admin, "POST", "/admin/reconcile")

    def freeze(self, admin: Admin, account_id: str) -> None:
        self._admin(admin, "POST", f"/admin/accounts/{account_id}/freeze")

    def unfreeze(self, admin: Admin, account_id: str) -> None:
        self._admin(admin, "POST", f"/admin/accounts/{account_id}/unfreeze")

    def maintenance(self, admin: Admin, enabled: bool, retry_after_s: int) -> None:
        self._admin(admin, "POST", "/admin/maintenance", {"enabled": enabled, "retry_after_s": retry_after_s})
