"""After heal: settle unknown outcomes and collect the final state (final.json) the checkers judge.

`resolve_unknowns` is pure (history + export → resolutions). `collect_final_state` is the thin I/O
shell: POST /admin/reconcile until nothing is pending (or a deadline), then one GET /admin/export and
the gateway's /control/records. Admin calls should go to the wallet's *direct* URL, bypassing Toxiproxy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx
from tenacity import (RetryCallState, Retrying, retry_if_exception, retry_if_result, stop_after_delay,
                      stop_when_event_set, wait_fixed)

from walletchaos.history import WRITE_KINDS

# When one key has several transactions (an exactly-once bug), resolve to the most "applied" one;
# the exactly_once checker reports the duplicate itself.
STATUS_RANK = {"succeeded": 3, "pending": 2, "failed": 1}


def index_transactions(export: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(by transaction_id, by idempotency_key → its most-applied transaction)."""
    by_id: dict[str, dict[str, Any]] = {}
    by_key: dict[str, dict[str, Any]] = {}
    rank = STATUS_RANK
    for txn in export.get("transactions", ()):
        by_id[txn["transaction_id"]] = txn
        key = txn.get("idempotency_key")
        if key is not None:
            prev = by_key.get(key)
            if prev is None or rank.get(txn["status"], 0) > rank.get(prev["status"], 0):
                by_key[key] = txn
    return by_id, by_key


def resolve_unknowns(
    history: Iterable[dict[str, Any]],
    export: Mapping[str, Any],
    txn_index: tuple[Mapping[str, dict[str, Any]], Mapping[str, dict[str, Any]]] | None = None,
) -> dict[str, dict[str, Any]]:
    """For each write op with outcome unknown: {op_id: {"txn_id", "status"}} as found in the export.

    Looked up by idempotency key (the client's handle), else by the txn id the op saw (202/504 bodies
    carry it). status ∈ succeeded | failed | pending | absent (absent: the wallet never created it).
    `txn_index` = (by_id, by_key) lets a caller that already indexed the export skip re-indexing.
    """
    by_id, by_key = txn_index if txn_index is not None else index_transactions(export)
    out: dict[str, dict[str, Any]] = {}
    for op in history:
        if op["outcome"] != "unknown" or op["kind"] not in WRITE_KINDS:
            continue
        key = op.get("idempotency_key")
        txn = by_key.get(key) if key is not None else None
        if txn is None and op.get("txn_id") is not None:
            txn = by_id.get(op["txn_id"])
        if txn is None:
            out[op["op_id"]] = {"txn_id": None, "status": "absent"}
        else:
            out[op["op_id"]] = {"txn_id": txn["transaction_id"], "status": txn["status"]}
    return out


def _is_retryable(exc: BaseException) -> bool:
    """Transport errors and 5xx are transient right after a heal; 4xx (bad token, bad URL) is not."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _raise_last(state: RetryCallState) -> Any:
    """At the deadline: re-raise the last error, or return the last (still pending) result."""
    assert state.outcome is not None
    return state.outcome.result()


def _stop(timeout_s: float, cancel: threading.Event | None):
    return stop_after_delay(timeout_s) | stop_when_event_set(cancel) if cancel is not None else stop_after_delay(timeout_s)


def _request_json(client: httpx.Client, method: str, url: str, headers: Mapping[str, str],
                  timeout_s: float, poll_s: float, cancel: threading.Event | None = None) -> Any:
    for attempt in Retrying(stop=_stop(timeout_s, cancel), wait=wait_fixed(poll_s),
                            retry=retry_if_exception(_is_retryable), reraise=True):
        with attempt:
            resp = client.request(method, url, headers=headers)
            resp.raise_for_status()
            return resp.json()
    raise AssertionError("unreachable: Retrying either returns or re-raises")


def collect_final_state(
    wallet_url: str,
    gateway_url: str,
    admin_token: str,
    history: Sequence[dict[str, Any]],
    *,
    timeout: float = 60.0,
    poll_s: float = 0.5,
    opening_total: int = 0,
    request_timeout_s: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Reconcile until still_pending == 0 or `timeout` passes, then snapshot; returns the final.json dict.

    Extension of internals.md: final["reconcile"] also has "attempts" and "duration_s", and
    final["timings"] = {"reconcile_s", "export_s", "gateway_s", "total_s"}. `transport` is for tests.
    `cancel` (set by a signal to the harness) ends the reconcile polling early; the caller checks it.
    """
    wallet_url = wallet_url.rstrip("/")
    gateway_url = gateway_url.rstrip("/")
    admin = {"Authorization": f"Bearer {admin_token}"}
    resolved_total = 0
    attempts = 0

    def reconcile_once(client: httpx.Client) -> dict[str, Any]:
        nonlocal resolved_total, attempts
        attempts += 1
        body = _request_json(client, "POST", f"{wallet_url}/admin/reconcile", admin, remaining(), poll_s, cancel)
        resolved_total += int(body.get("resolved", 0))
        return body

    t0 = time.monotonic()

    def remaining() -> float:
        return max(t0 + timeout - time.monotonic(), poll_s)

    with httpx.Client(timeout=request_timeout_s, transport=transport) as client:
        retrying = Retrying(stop=_stop(timeout, cancel), wait=wait_fixed(poll_s),
                            retry=retry_if_result(lambda b: int(b.get("still_pending", 0)) > 0),
                            retry_error_callback=_raise_last)
        last = retrying(reconcile_once, client)
        t1 = time.monotonic()
        export = _request_json(client, "GET", f"{wallet_url}/admin/export", admin, remaining(), poll_s, cancel)
        t2 = time.monotonic()
        gateway = (_request_json(client, "GET", f"{gateway_url}/control/records", {}, remaining(), poll_s, cancel)
                   if gateway_url else {"charges": [], "payouts": [], "unavailable": "the wallet's own gateway"})
        t3 = time.monotonic()
    return {
        "export": export,
        "gateway": gateway,
        "opening_total": opening_total,
        "resolutions": resolve_unknowns(history, export),
        "reconcile": {"resolved": resolved_total, "still_pending": int(last.get("still_pending", 0)),
                      "attempts": attempts, "duration_s": round(t1 - t0, 3)},
        "timings": {"reconcile_s": round(t1 - t0, 3), "export_s": round(t2 - t1, 3),
                    "gateway_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3)},
    }
