"""The outermost wallet middleware (pure ASGI): request id, overload shedding, maintenance mode, the
deadline backstop, unexpected-exception containment, one JSON log line and metrics per request.

Pure ASGI rather than BaseHTTPMiddleware so the handler runs in this task: the deadline can cancel it,
and the RequestInfo it fills in is the one we hold.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mock_wallet.db import outcome_unknown
from mock_wallet.handlers import ProblemRenderer
from mock_wallet.metrics import WalletMetrics
from mock_wallet.money import gateway_unknown
from mock_wallet.problems import ProblemError
from mock_wallet.request_context import RequestInfo, current_request

log = logging.getLogger("mock_wallet.request")

_VALID_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
DEADLINE_MARGIN_S = 0.5  # answer before the deadline so the client sees it in time, even on a busy CPU


@dataclass
class Maintenance:
    enabled: bool = False
    retry_after_s: int = 30


class WalletMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: WalletMetrics, maintenance: Maintenance, deadline_s: float,
                 max_inflight: int, renderer: ProblemRenderer) -> None:
        self.app = app
        self.metrics = metrics
        self.maintenance = maintenance
        self.deadline_s = max(deadline_s - DEADLINE_MARGIN_S, deadline_s * 0.8)
        self.renderer = renderer
        self.max_inflight = max_inflight
        self.inflight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = RequestInfo(request_id=_request_id(scope))
        token = current_request.set(info)
        status = {"code": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", info.request_id.encode())]
                status["code"], status["sent"] = message["status"], True
            await send(message)

        is_api = scope["path"].startswith("/v1")
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            refusal = self._refusal(is_api)
            if refusal is not None:
                await self.renderer.render(refusal)(scope, receive, send_with_id)
            else:
                await self._run_with_deadline(scope, receive, send_with_id, info, status)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()
            current_request.reset(token)
            self._record(scope, info, status["code"], time.perf_counter() - started)

    def _refusal(self, is_api: bool) -> ProblemError | None:
        if not is_api:
            return None
        if self.maintenance.enabled:
            return ProblemError("MAINTENANCE", "The wallet is under maintenance; retry later.",
                                retry_after=self.maintenance.retry_after_s)
        if self.inflight > self.max_inflight:
            self.metrics.shed.inc()
            return ProblemError("RATE_LIMITED", "The wallet is overloaded; retry later.", retry_after=1)
        return None

    async def _run_with_deadline(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo,
                                 status: dict) -> None:
        try:
            async with asyncio.timeout(self.deadline_s) as deadline:
                await self.app(scope, receive, send)
        except TimeoutError:
            if not deadline.expired():
                await self._internal_error(scope, receive, send, status)
                return
            if status["sent"]:
                return  # the response already started; nothing better to do than end here
            await self.renderer.render(deadline_problem(info))(scope, receive, send)
        except Exception:  # a bug: contain it, log it with its traceback, never show it
            log.exception("unhandled error", extra={"request_id": info.request_id})
            await self._internal_error(scope, receive, send, status)

    async def _internal_error(self, scope: Scope, receive: Receive, send: Send, status: dict) -> None:
        if not status["sent"]:
            await self.renderer.render(ProblemError("INTERNAL_ERROR", "An unexpected error occurred."))(scope, receive, send)

    def _record(self, scope: Scope, info: RequestInfo, status: int, elapsed: float) -> None:
        route = scope.get("route")
        route_path = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.requests.labels(method, route_path, str(status), info.problem_code or "").inc()
        self.metrics.latency.labels(method, route_path).observe(elapsed)
        log.info("request", extra={"request_id": info.request_id, "method": method, "path": scope["path"],
                                   "route": route_path, "status": status, "code": info.problem_code,
                                   "duration_ms": round(elapsed * 1000, 2)})


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _VALID_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def deadline_problem(info: RequestInfo) -> ProblemError:
    """The answer for a request its deadline cut off: "nothing was applied" only if nothing was."""
    if info.pending_txn_id is not None:
        return gateway_unknown(info.pending_txn_id, "deadline reached")
    if info.commit_in_flight:
        return outcome_unknown("deadline reached during the commit")
    if info.wrote:  # applied, but the answer was not ready: the key's stored outcome is replayed on retry
        return ProblemError("GATEWAY_TIMEOUT", "The request's deadline was reached after its changes were "
                            "committed; retry with the same Idempotency-Key to get the outcome.", retry_after=1)
    return ProblemError("DATABASE_UNAVAILABLE", "A dependency did not answer within the request deadline.",
                        retry_after=1)
