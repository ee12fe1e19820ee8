"""Clear errors: every non-2xx is a contract problem (RFC 9457, catalog code with its status and
retryable flag, request id, no leaked internals), no 500s, answers within the deadline, a valid
`Retry-After` header on 429 and on 503 MAINTENANCE (op field `retry_after`; histories recorded before
that field existed are not judged on it), and only the codes the scenario allows for the phase. A request that got no response at all is tolerated only
while a fault is active or within the grace period after it (see CheckContext).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from email.utils import parsedate_to_datetime

import orjson

from walletchaos.checks.base import CheckContext, CheckResult, Findings, WindowIndex
from walletchaos.checks.index import RunIndex, get_index
from walletchaos.checks.catalog import CATALOG, PROBLEM_CONTENT_TYPE, PROBLEM_MEMBERS

NAME = "clear_errors"
RETRY_AFTER_CODES = frozenset({"RATE_LIMITED", "MAINTENANCE"})
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "wrong_content_type", "internal_error", "leaks_internals", "not_a_problem", "missing_members",
    "code_not_in_catalog", "problem_status_differs_from_http", "status_differs_from_catalog",
    "retryable_differs_from_catalog", "request_id_mismatch", "code_not_allowed_in_phase",
    "transport_error_outside_fault", "slower_than_deadline", "missing_retry_after",
)

# Leak markers. SQL keywords are matched upper-case only ("please select an account" is fine); the rest
# case-insensitively, as plain substrings (C-speed `in`, ~50x cheaper than one big alternation regex).
LEAK_MARKERS: tuple[str, ...] = ("traceback", 'file "', "asyncpg", "psycopg", "sqlalchemy", "sqlite",
                                 "postgres://", "postgresql://", "localhost", "<html", "<!doctype")
SQL_RE = re.compile(r"\b(?:SELECT\s|INSERT\s+INTO\b|DELETE\s+FROM\b|UPDATE\s+\w+\s+SET\b)")
IP_RE = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
# members whose value the wallet generates per request and that carry no free text
_MEMBER_SET = frozenset(PROBLEM_MEMBERS)
_OPAQUE_MEMBERS = frozenset({"request_id", "status", "retryable", "code"})


def find_leak(text: str) -> str | None:
    """The first leaked-internals marker in `text`, or None."""
    low = text.lower()
    for marker in LEAK_MARKERS:
        if marker in low:
            return marker
    m = SQL_RE.search(text) or IP_RE.search(text)
    return m.group(0) if m else None


def _leak_text(op: Mapping[str, Any]) -> str:
    """The free text of an error response: body excerpt + every problem member except opaque ones."""
    parts = [op.get("body_excerpt") or ""]
    problem = op.get("problem")
    if isinstance(problem, dict):
        parts.extend(str(v) for k, v in problem.items() if k not in _OPAQUE_MEMBERS)
    elif problem is not None:
        parts.append(orjson.dumps(problem).decode())
    return "\n".join(parts)


def _shape(op: Mapping[str, Any], problem: Any) -> tuple[Any, ...] | None:
    """Everything the response-shape rules look at, as a hashable memo key — or None for anything but a
    plain problem with exactly the contract's members (those are always checked in full). Error
    responses repeat a handful of shapes, and checking ~10⁵ of them in full was this checker's main cost."""
    if type(problem) is not dict or problem.keys() != _MEMBER_SET:
        return None
    return (op["status"], op.get("content_type"), op.get("code"), op.get("body_excerpt"), problem["code"],
            problem["status"], problem["retryable"], problem["title"], problem["detail"], problem["type"],
            not problem["request_id"])


def _evidence(op: Mapping[str, Any]) -> dict[str, Any]:
    return {"op_id": op["op_id"], "request_id": op.get("request_id"), "kind": op["kind"],
            "status": op["status"], "code": op.get("code"), "phase": op.get("phase")}


class _Allowance:
    """Which codes / transport errors the scenario tolerates for a given op (see CheckContext)."""

    def __init__(self, ctx: CheckContext, replayable_keys: frozenset[str] | set[str] = frozenset()) -> None:
        grace = ctx.effective_grace_s
        self.replayable_keys = replayable_keys  # keys first sent before the last fault ended
        self.always = ctx.always_allowed
        self.by_phase = {p: frozenset(c) for p, c in ctx.errors_allowed.items()}
        self.everywhere = self.by_phase.get("*", frozenset())
        self.fault_codes = self.by_phase.get("fault", frozenset())
        self.code_windows = WindowIndex((s, e + grace) for s, e, _, _ in ctx.fault_windows)
        targets = ctx.transport_fault_targets
        self.transport_windows = WindowIndex(
            (s, e + grace) for s, e, _, target in ctx.fault_windows if targets is None or target in targets)

    def code_allowed(self, code: str, op: Mapping[str, Any]) -> bool:
        if code in self.always or code in self.everywhere or code in self.by_phase.get(op.get("phase"), ()):
            return True
        if code not in self.fault_codes:
            return False
        # a retry of a key first sent before the fault ended replays that request's recorded outcome
        if op.get("idempotency_key") in self.replayable_keys:
            return True
        # an op in flight when a fault began (invoked just before it) may carry the fault's codes too
        return self.code_windows.overlaps(op["invoke_ts"], op.get("complete_ts") or op["invoke_ts"])

    def transport_allowed(self, op: Mapping[str, Any]) -> bool:
        end = op.get("complete_ts") or op["invoke_ts"]
        return self.transport_windows.overlaps(op["invoke_ts"], end)


def _check_shape(op: dict[str, Any], problem: Any, found: Findings) -> None:
    """The rules that depend only on the response's shape (see _shape): problem+json, catalog, no leaks."""
    status = op["status"]
    ctype = op.get("content_type")
    if ctype != PROBLEM_CONTENT_TYPE and (ctype or "").split(";")[0].strip().lower() != PROBLEM_CONTENT_TYPE:
        found.add("wrong_content_type", **_evidence(op), content_type=op.get("content_type"),
                  body_excerpt=(op.get("body_excerpt") or "")[:200])
    if status == 500 or (problem if isinstance(problem, dict) else {}).get("code") == "INTERNAL_ERROR":
        found.add("internal_error", **_evidence(op))
    text = _leak_text(op)
    leak = find_leak(text)
    if leak is not None:
        found.add("leaks_internals", **_evidence(op), leaked=leak, body_excerpt=text[:200])
    if not isinstance(problem, dict):
        found.add("not_a_problem", **_evidence(op), body_excerpt=(op.get("body_excerpt") or "")[:200])
        return
    missing = [m for m in PROBLEM_MEMBERS if problem.get(m) is None or problem.get(m) == ""]
    if missing:
        found.add("missing_members", **_evidence(op), missing=missing)
    code = problem.get("code") or op.get("code")
    entry = CATALOG.get(code) if code is not None else None
    if code is not None and entry is None:
        found.add("code_not_in_catalog", **_evidence(op), problem_code=code)
    if problem.get("status") is not None and problem["status"] != status:
        found.add("problem_status_differs_from_http", **_evidence(op), problem_status=problem["status"])
    if entry is not None:
        if entry.status != status:
            found.add("status_differs_from_catalog", **_evidence(op), catalog_status=entry.status)
        if "retryable" in problem and problem["retryable"] is not entry.retryable:
            found.add("retryable_differs_from_catalog", **_evidence(op), retryable=problem["retryable"],
                      catalog_retryable=entry.retryable)


def _check_this_op(op: dict[str, Any], problem: dict[str, Any], found: Findings, allow: _Allowance) -> None:
    """The rules that depend on the op itself: its request id, and whether its code is allowed then."""
    rid, header_rid = problem.get("request_id"), op.get("request_id")
    if rid and header_rid and rid != header_rid:
        found.add("request_id_mismatch", **_evidence(op), problem_request_id=rid)
    code = problem.get("code") or op.get("code")
    if code is not None and code != "INTERNAL_ERROR" and not allow.code_allowed(code, op):
        found.add("code_not_allowed_in_phase", **_evidence(op), problem_code=code)
    if "retry_after" in op and needs_retry_after(op["status"], code) and not valid_retry_after(op["retry_after"]):
        found.add("missing_retry_after", **_evidence(op), retry_after=op["retry_after"])


def needs_retry_after(status: int | None, code: str | None) -> bool:
    """CONTRACT.md: RATE_LIMITED (429) and MAINTENANCE (503) set Retry-After."""
    return status == 429 or code in RETRY_AFTER_CODES


def valid_retry_after(value: str | None) -> bool:
    """RFC 9110 Retry-After: delay-seconds (a non-negative integer) or an HTTP-date."""
    if value is None:
        return False
    value = value.strip()
    if value.isdigit():
        return True
    try:
        return parsedate_to_datetime(value) is not None
    except (TypeError, ValueError, IndexError):
        return False


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    found = Findings(ctx.max_counterexamples)
    allow = _Allowance(ctx, ix.keys_before_fault_end)
    limit_ms = (ctx.deadline_s + ctx.deadline_slack_s) * 1000.0
    for op in ix.transport:
        if not allow.transport_allowed(op):
            found.add("transport_error_outside_fault", op_id=op["op_id"], kind=op["kind"],
                      error=op["error"], phase=op.get("phase"), ts=op["invoke_ts"])
    for op in ix.slow:
        # the deadline is the wallet's promise; a fault on the client path (the wallet_api proxy, the
        # wallet process itself) delays answers on the way back, which no server can prevent
        if not allow.transport_allowed(op):
            found.add("slower_than_deadline", **_evidence(op), latency_ms=op["latency_ms"], limit_ms=limit_ms)
    clean_shapes: set[tuple[Any, ...]] = set()
    for op in ix.errors:
        problem = op.get("problem")
        shape = _shape(op, problem)
        if shape is None or shape not in clean_shapes:
            before = found.count
            _check_shape(op, problem, found)
            if shape is not None and found.count == before:
                clean_shapes.add(shape)
        if isinstance(problem, dict):
            _check_this_op(op, problem, found, allow)
    return found.result(
        NAME, f"{len(ix.errors)} error responses all clear; {len(ix.transport)} transport errors during faults;"
              " none slow",
        {"ops": ix.n_ops, "error_responses": len(ix.errors), "transport_errors": len(ix.transport),
         "slow": len(ix.slow)})
