"""The contract's admin API, served on loopback and answered through an adapter's admin methods.

The harness has one admin vocabulary: the nemesis (freeze, maintenance) and the final-state collector
(reconcile, export) call CONTRACT.md's admin endpoints on `topology.wallet_direct_url`. For a wallet
whose admin API is shaped otherwise, the topology starts this bridge and points `wallet_direct_url` at
it; each call becomes the adapter's `export` / `audit` / `reconcile` / `freeze` / `unfreeze` /
`maintenance` on the wallet itself (`wallet_origin_url`). The bridge checks the harness's admin token;
an error of the wallet keeps its status, a wallet that does not answer becomes 503 (retried by callers).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from walletchaos.adapters.base import Admin, WalletAdapter

_ACCOUNT = re.compile(r"^/admin/accounts/([^/]+)/(freeze|unfreeze)$")


class AdminBridge:
    def __init__(self, adapter: WalletAdapter, wallet_url: str, admin_token: str, timeout_s: float = 10.0) -> None:
        self.adapter = adapter
        self.admin_token = admin_token
        self._http = httpx.Client(base_url=wallet_url.rstrip("/"), timeout=timeout_s)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self) -> str:
        bridge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the harness logs its own events
                pass

            def do_GET(self) -> None:
                bridge._handle(self, "GET")

            def do_POST(self) -> None:
                bridge._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="admin-bridge", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any]) -> Any:
        """One contract admin call through the adapter (raises LookupError for an unknown route)."""
        admin, ad = Admin(self._http, self.admin_token), self.adapter
        if (method, path) == ("GET", "/admin/export"):
            return ad.export(admin)
        if (method, path) == ("GET", "/admin/audit"):
            return ad.audit(admin)
        if (method, path) == ("POST", "/admin/reconcile"):
            return ad.reconcile(admin)
        if (method, path) == ("POST", "/admin/maintenance"):
            ad.maintenance(admin, bool(body.get("enabled")), int(body.get("retry_after_s") or 0))
            return {"enabled": bool(body.get("enabled"))}
        m = _ACCOUNT.match(path)
        if method == "POST" and m:
            (ad.freeze if m.group(2) == "freeze" else ad.unfreeze)(admin, m.group(1))
            return {"account_id": m.group(1), "status": "frozen" if m.group(2) == "freeze" else "active"}
        raise LookupError(path)

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        if h.headers.get("Authorization") != f"Bearer {self.admin_token}":
            return self._reply(h, 401, {"code": "UNAUTHENTICATED"})
        length = int(h.headers.get("Content-Length") or 0)
        try:
            body = json.loads(h.rfile.read(length) or b"{}") if length else {}
            self._reply(h, 200, self.call(method, h.path.split("?")[0], body))
        except LookupError:
            self._reply(h, 404, {"code": "NOT_FOUND"})
        except httpx.HTTPStatusError as exc:
            self._reply(h, exc.response.status_code, {"code": "WALLET_ERROR", "detail": exc.response.text[:300]})
        except (httpx.TransportError, ValueError) as exc:
            self._reply(h, 503, {"code": "WALLET_UNREACHABLE", "detail": type(exc).__name__})

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, data: Any) -> None:
        raw = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)


def bridge_if_needed(adapter: WalletAdapter, wallet_url: str, admin_token: str) -> AdminBridge | None:
    """A started bridge for an adapter that does not speak the contract's admin API, else None."""
    if getattr(adapter, "speaks_contract", False):
        return None
    bridge = AdminBridge(adapter, wallet_url, admin_token)
    bridge.start()
    return bridge
