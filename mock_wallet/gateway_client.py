"""HTTP client of the payment gateway that classifies every call as definite or unknown.

The distinction drives money safety: a *definite* answer (succeeded, declined, 5xx-before-apply,
connection refused before anything was sent) can be acted on; an *unknown* one (timeout, reset or
dropped connection after the request may have been sent) must leave the transaction pending.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Literal

import httpx


Operation = Literal["charges", "payouts"]


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"  # definite: the gateway refused, nothing applied
    FAILED = "failed"  # definite: error before anything was applied
    UNKNOWN = "unknown"  # may or may not have been applied
    NOT_FOUND = "not_found"  # lookup only: the gateway has no record of the reference


@dataclass(frozen=True)
class GatewayResult:
    outcome: Outcome
    detail: str

    @property
    def definite(self) -> bool:
        return self.outcome in (Outcome.SUCCEEDED, Outcome.DECLINED, Outcome.FAILED)


# errors raised before the request could have reached the gateway
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class GatewayClient:
    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        # keep-alive shorter than uvicorn's 5 s so we never reuse a connection the gateway is closing
        self._client = httpx.AsyncClient(
            base_url=base_url, timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=2.0))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def submit(self, operation: Operation, reference: str, amount: int) -> GatewayResult:
        """POST /charges or /payouts (idempotent by reference at the gateway)."""
        return await self._call("POST", f"/{operation}", {"reference": reference, "amount": amount})

    async def lookup(self, operation: Operation, reference: str) -> GatewayResult:
        return await self._call("GET", f"/{operation}/{reference}", None)

    async def _call(self, method: str, path: str, body: dict | None) -> GatewayResult:
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._client.request(method, path, json=body)
        except _NOT_SENT as exc:
            return GatewayResult(Outcome.FAILED, f"gateway unreachable ({type(exc).__name__})")
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return GatewayResult(Outcome.UNKNOWN, f"gateway answer lost ({type(exc).__name__})")
        return _classify(method, response)


def _classify(method: str, response: httpx.Response) -> GatewayResult:
    if method == "GET" and response.status_code == 404:
        return GatewayResult(Outcome.NOT_FOUND, "gateway has no record")
    if method == "POST" and response.status_code >= 400:
        # the gateway answers errors only before applying anything (docs/internals.md)
        return GatewayResult(Outcome.FAILED, f"gateway answered {response.status_code}")
    if response.status_code != 200:
        return GatewayResult(Outcome.UNKNOWN, f"gateway answered {response.status_code}")
    try:
        status = response.json().get("status")
    except (ValueError, AttributeError):
        return GatewayResult(Outcome.UNKNOWN, "gateway answer unreadable")
    if status == "succeeded":
        return GatewayResult(Outcome.SUCCEEDED, "gateway applied it")
    if status == "declined":
        return GatewayResult(Outcome.DECLINED, "gateway declined it")
    return GatewayResult(Outcome.UNKNOWN, f"gateway status {status!r}")
