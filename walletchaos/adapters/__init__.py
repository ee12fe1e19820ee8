"""Adapters: the harness speaks CONTRACT.md; an adapter translates to a wallet that speaks otherwise.

`load_adapter("contract" | "module:Class")` builds one; `TranslatingTransport` puts one between
`walletchaos.client.WalletApi` (load generator, conformance) and the HTTP transport, so the history,
the outcome rule and every checker stay in contract terms. See `walletchaos/adapters/base.py`.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from walletchaos.adapters.base import (MONEY_OPS, OPS, Admin, AdapterError, ContractCall, Request,
                                       WalletAdapter)
from walletchaos.adapters.contract import ContractAdapter
from walletchaos.client import Judge, RawResponse, Transport

__all__ = ["ADAPTER_ENV", "Admin", "AdapterError", "ContractAdapter", "ContractCall", "MONEY_OPS", "OPS",
           "Request", "TranslatingTransport", "WalletAdapter", "adapter_env", "adapter_from_env", "load_adapter",
           "target_adapter",
           "parse_contract_request", "wrap_transport"]

ADAPTER_ENV = "WALLETCHAOS_ADAPTER"  # how the Locust worker processes learn the target's adapter


def load_adapter(spec: str = "contract", search_dir: str | os.PathLike | None = None) -> WalletAdapter:
    """'contract' → the built-in adapter; 'package.module:Class' → Class(), imported with `search_dir`
    (the target file's directory) first on sys.path."""
    if spec == "contract":
        return ContractAdapter()
    module_name, _, cls_name = spec.partition(":")
    if search_dir is not None and str(search_dir) not in sys.path:
        sys.path.insert(0, str(search_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AdapterError(f"adapter {spec!r}: cannot import module {module_name!r} ({exc})") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise AdapterError(f"adapter {spec!r}: module {module_name!r} has no {cls_name!r}")
    adapter = cls()
    missing = [m for m in ("request", "answer", "export", "audit", "reconcile", "freeze", "unfreeze",
                           "maintenance") if not callable(getattr(adapter, m, None))]
    if missing:
        raise AdapterError(f"adapter {spec!r} lacks {', '.join(missing)} (see walletchaos/adapters/base.py)")
    return adapter


def adapter_from_env() -> WalletAdapter:
    """The adapter a load worker was told to use ($WALLETCHAOS_ADAPTER, set by `adapter_env`)."""
    return load_adapter(os.environ.get(ADAPTER_ENV) or "contract")


def adapter_env(target: Any) -> dict[str, str]:
    """Environment for the load generator's processes: the target's adapter, importable from them
    (its module is looked up next to the target file first)."""
    env = {ADAPTER_ENV: target.adapter}
    if target.adapter != "contract" and target.path is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(target.path.parent), os.environ.get("PYTHONPATH")) if p)
    return env


def target_adapter(target: Any) -> WalletAdapter:
    """The adapter a target file names, its module looked up next to the file first."""
    return load_adapter(target.adapter, target.path.parent if target.path is not None else None)


# WalletApi's route names (its `name` argument) → op
_ROUTES = {"/v1/users": "register", "/v1/sessions": "login", "/v1/deposits": "deposit",
           "/v1/withdrawals": "withdraw", "/v1/transfers": "transfer", "/v1/accounts/{id}": "balance",
           "/v1/accounts/{id}/transactions": "history", "/v1/transactions?idempotency_key": "lookup",
           "/v1/transactions/{id}": "transaction"}


def parse_contract_request(method: str, path: str, headers: dict[str, str], body: bytes | None,
                           name: str) -> ContractCall:
    """The ContractCall behind one request WalletApi built (route name + path + headers + body)."""
    op = _ROUTES.get(name)
    if op is None:
        raise AdapterError(f"no contract operation for {method} {name}")
    parts = urlsplit(path)
    segs = parts.path.strip("/").split("/")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params: dict[str, Any] = orjson.loads(body) if body else {}
    if op in ("balance", "history"):
        params = {"account_id": segs[2]}
        if op == "history":
            params["limit"] = int(query.get("limit", 20))
    elif op == "lookup":
        params = {"idempotency_key": query.get("idempotency_key", "")}
    elif op == "transaction":
        params = {"transaction_id": segs[2]}
    auth = headers.get("Authorization", "")
    return ContractCall(op, params, token=auth[7:] if auth.startswith("Bearer ") else None,  # type: ignore[arg-type]
                        idempotency_key=headers.get("Idempotency-Key"), request_id=headers.get("X-Request-ID"))


class TranslatingTransport:
    """A `walletchaos.client.Transport` that sends each contract request through an adapter."""

    def __init__(self, inner: Transport, adapter: WalletAdapter) -> None:
        self.inner = inner
        self.adapter = adapter

    def send(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None,
             name: str, judge: Judge) -> RawResponse:
        call = parse_contract_request(method, path, headers, body, name)
        req: Request = self.adapter.request(call)
        out_headers = {"Accept": "application/json", **({"X-Request-ID": call.request_id} if call.request_id else {}),
                       **({"Content-Type": "application/json"} if req.body is not None else {}), **req.headers}
        payload = orjson.dumps(req.body) if req.body is not None else None

        def translate(raw: RawResponse) -> RawResponse:
            if raw.exc is not None or raw.status is None:
                return raw  # no answer: the harness's outcome rule decides, not the adapter
            return self.adapter.answer(call, raw)

        translated: dict[str, RawResponse] = {}

        def inner_judge(raw: RawResponse) -> tuple[bool, str]:
            translated["raw"] = translate(raw)
            return judge(translated["raw"])

        raw = self.inner.send(req.method, req.path, headers=out_headers, body=payload, name=f"{call.op}",
                              judge=inner_judge)
        return translated.get("raw") or translate(raw)


def wrap_transport(transport: Transport, adapter: WalletAdapter | None = None) -> Transport:
    """The transport WalletApi should use for this adapter (default: the one named by $WALLETCHAOS_ADAPTER)."""
    adapter = adapter or adapter_from_env()
    return transport if getattr(adapter, "speaks_contract", False) else TranslatingTransport(transport, adapter)
