"""The wallet's error catalog as data, mirroring CONTRACT.md § Error catalog (code → status, retryable).

Kept separate from mock_wallet/problems.py on purpose: the checker must judge the wallet against the
*contract*, not against whatever the implementation currently believes.
"""

from __future__ import annotations

from typing import NamedTuple


class CatalogEntry(NamedTuple):
    status: int
    retryable: bool


CATALOG: dict[str, CatalogEntry] = {
    "VALIDATION_ERROR": CatalogEntry(422, False),
    "UNAUTHENTICATED": CatalogEntry(401, False),
    "INVALID_CREDENTIALS": CatalogEntry(401, False),
    "ACCOUNT_LOCKED": CatalogEntry(423, False),
    "INVALID_PIN": CatalogEntry(403, False),
    "ACCOUNT_FROZEN": CatalogEntry(403, False),
    "ACCOUNT_NOT_FOUND": CatalogEntry(404, False),
    "TRANSACTION_NOT_FOUND": CatalogEntry(404, False),
    "USERNAME_TAKEN": CatalogEntry(409, False),
    "INSUFFICIENT_FUNDS": CatalogEntry(409, False),
    "IDEMPOTENCY_KEY_MISSING": CatalogEntry(400, False),
    "IDEMPOTENCY_KEY_REUSED": CatalogEntry(409, False),
    "REQUEST_IN_PROGRESS": CatalogEntry(409, True),
    "RATE_LIMITED": CatalogEntry(429, True),
    "MAINTENANCE": CatalogEntry(503, True),
    "DATABASE_UNAVAILABLE": CatalogEntry(503, True),
    "GATEWAY_ERROR": CatalogEntry(502, True),
    "GATEWAY_TIMEOUT": CatalogEntry(504, True),
    "INTERNAL_ERROR": CatalogEntry(500, False),
}

# Outcomes of the client's own request (bad input, business rules, races between its own retries):
# legitimate in every phase, with or without faults, and not a sign of an unhealthy system.
# UNAUTHENTICATED, IDEMPOTENCY_KEY_MISSING and RATE_LIMITED are deliberately absent: they mean a
# client bug, lost sessions (e.g. after a wallet restart) or overload, which a scenario must allow
# explicitly through CheckContext.errors_allowed.
CLIENT_ERROR_CODES: frozenset[str] = frozenset({
    "VALIDATION_ERROR", "INVALID_PIN", "INSUFFICIENT_FUNDS", "ACCOUNT_LOCKED", "INVALID_CREDENTIALS",
    "ACCOUNT_NOT_FOUND", "TRANSACTION_NOT_FOUND", "USERNAME_TAKEN", "REQUEST_IN_PROGRESS",
    "IDEMPOTENCY_KEY_REUSED", "ACCOUNT_FROZEN",
})

PROBLEM_MEMBERS: tuple[str, ...] = ("type", "title", "status", "detail", "code", "request_id", "retryable")
PROBLEM_CONTENT_TYPE = "application/problem+json"

# Answers that say "nothing was applied" (CONTRACT.md): every catalog code except the two that do not
# promise it (GATEWAY_TIMEOUT: left pending; INTERNAL_ERROR: a bug, anything may have happened).
DEFINITE_REFUSALS: frozenset[str] = frozenset(CATALOG) - {"GATEWAY_TIMEOUT", "INTERNAL_ERROR"}
# The system's own trouble (overload, maintenance, dependencies down): an attack answered with one of
# these learned nothing, but was not judged either.
INFRA_CODES: frozenset[str] = frozenset({"RATE_LIMITED", "MAINTENANCE", "DATABASE_UNAVAILABLE",
                                         "GATEWAY_ERROR", "GATEWAY_TIMEOUT"})
# Answers to an attempt to move money of a frozen account that come before (or instead of) the freeze:
# the request itself was wrong, or its session / PIN / key was; the account's state is not reached.
PRECEDES_FREEZE: frozenset[str] = frozenset({
    "VALIDATION_ERROR", "UNAUTHENTICATED", "INVALID_PIN", "ACCOUNT_LOCKED", "ACCOUNT_NOT_FOUND",
    "INSUFFICIENT_FUNDS", "IDEMPOTENCY_KEY_MISSING", "IDEMPOTENCY_KEY_REUSED", "REQUEST_IN_PROGRESS"})
