"""The error catalog as data, the ProblemError exception, and RFC 9457 problem+json rendering.

Keeping the catalog as one table means the status, retryability and type URI of a code can never
drift between handlers; the harness's clear-errors checker can import the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://walletchaos.dev/problems/"


@dataclass(frozen=True)
class ProblemSpec:
    status: int
    retryable: bool
    title: str

    def type_uri(self, code: str) -> str:
        return TYPE_BASE + code.lower().replace("_", "-")


CATALOG: dict[str, ProblemSpec] = {
    "VALIDATION_ERROR": ProblemSpec(422, False, "The request is not valid"),
    "UNAUTHENTICATED": ProblemSpec(401, False, "Authentication required"),
    "INVALID_CREDENTIALS": ProblemSpec(401, False, "Wrong username or password"),
    "ACCOUNT_LOCKED": ProblemSpec(423, False, "Account temporarily locked"),
    "INVALID_PIN": ProblemSpec(403, False, "Wrong payment PIN"),
    "ACCOUNT_FROZEN": ProblemSpec(403, False, "Account frozen"),
    "ACCOUNT_NOT_FOUND": ProblemSpec(404, False, "Account not found"),
    "TRANSACTION_NOT_FOUND": ProblemSpec(404, False, "Transaction not found"),
    "USERNAME_TAKEN": ProblemSpec(409, False, "Username already taken"),
    "INSUFFICIENT_FUNDS": ProblemSpec(409, False, "Insufficient funds"),
    "IDEMPOTENCY_KEY_MISSING": ProblemSpec(400, False, "Idempotency-Key header required"),
    "IDEMPOTENCY_KEY_REUSED": ProblemSpec(409, False, "Idempotency key reused with a different request"),
    "REQUEST_IN_PROGRESS": ProblemSpec(409, True, "A request with this idempotency key is in progress"),
    "RATE_LIMITED": ProblemSpec(429, True, "Too many requests"),
    "MAINTENANCE": ProblemSpec(503, True, "Service under maintenance"),
    "DATABASE_UNAVAILABLE": ProblemSpec(503, True, "Database unavailable"),
    "GATEWAY_ERROR": ProblemSpec(502, True, "Payment gateway error"),
    "GATEWAY_TIMEOUT": ProblemSpec(504, True, "Payment gateway outcome unknown"),
    "INTERNAL_ERROR": ProblemSpec(500, False, "Internal error"),
    # Extensions beyond the contract's catalog, for requests that match no contract route at all.
    "NOT_FOUND": ProblemSpec(404, False, "No such resource"),
    "METHOD_NOT_ALLOWED": ProblemSpec(405, False, "Method not allowed"),
}

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class ProblemError(Exception):
    """Raised anywhere in the wallet to answer with a catalog problem.

    `extra` members are added to the body (e.g. `transaction_id` for GATEWAY_TIMEOUT);
    `retry_after` sets the Retry-After header (seconds).
    """

    def __init__(self, code: str, detail: str, *, extra: dict[str, Any] | None = None,
                 retry_after: int | None = None) -> None:
        if code not in CATALOG:
            raise ValueError(f"unknown problem code {code}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.extra = extra or {}
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return CATALOG[self.code].status

    def body(self, request_id: str) -> dict[str, Any]:
        spec = CATALOG[self.code]
        return {
            "type": spec.type_uri(self.code),
            "title": spec.title,
            "status": spec.status,
            "detail": _CONTROL_CHARS.sub(" ", self.detail),
            "code": self.code,
            "request_id": request_id,
            "retryable": spec.retryable,
            **self.extra,
        }

    def headers(self) -> dict[str, str]:
        retry_after = self.retry_after
        if retry_after is None and self.status in (429, 503):
            retry_after = 1
        return {"Retry-After": str(retry_after)} if retry_after is not None else {}

    def response(self, request_id: str) -> JSONResponse:
        return JSONResponse(self.body(request_id), status_code=self.status, headers=self.headers(),
                            media_type=PROBLEM_CONTENT_TYPE)


def problem_openapi_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting which problems a route can answer."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, "VALIDATION_ERROR", "RATE_LIMITED", "MAINTENANCE", "DATABASE_UNAVAILABLE",
                 "INTERNAL_ERROR"):
        by_status.setdefault(CATALOG[code].status, [])
        if code not in by_status[CATALOG[code].status]:
            by_status[CATALOG[code].status].append(code)
    return {
        status: {
            "description": "Problem: " + ", ".join(codes_),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status, codes_ in sorted(by_status.items())
    }
