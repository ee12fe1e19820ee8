"""Bench locustfile: GET /v1/accounts/{id} as fast as possible, every request recorded as a history op.

Environment: BENCH_TOKEN, BENCH_ACCOUNT (the account to read), BENCH_HISTORY (JSONL path; one file per
process, the pid is appended), BENCH_CLIENT = "fast" (FastHttpUser, geventhttpclient) or "http"
(HttpUser, requests). Recording uses the project's history format (walletchaos.history.new_op +
HistoryWriter, one flushed line per op) and the contract's outcome rule for reads.
"""

from __future__ import annotations

import os
import time

from locust import HttpUser, constant, task
from locust.contrib.fasthttp import FastHttpUser

from walletchaos.history import HistoryWriter, new_op

TOKEN = os.environ.get("BENCH_TOKEN", "")
ACCOUNT = os.environ.get("BENCH_ACCOUNT", "")
WORKER = f"p{os.getpid()}"
_writer: HistoryWriter | None = None
_seq = 0


def _history() -> HistoryWriter:
    global _writer
    if _writer is None:
        _writer = HistoryWriter(f"{os.environ.get('BENCH_HISTORY', 'bench-history')}.{os.getpid()}.jsonl")
    return _writer


def _read_balance(user) -> None:
    global _seq
    _seq += 1
    invoke = time.time()
    path = f"/v1/accounts/{ACCOUNT}"
    try:
        with user.client.get(path, headers=user.headers, name="/v1/accounts/{id}", catch_response=True) as r:
            status = r.status_code
            ok = status == 200
            balance = None
            if ok:
                try:
                    balance = r.json().get("balance")
                except Exception:  # noqa: BLE001 - a non-JSON 200 is a failed read
                    ok = False
            if ok:
                r.success()
            else:
                r.failure(f"status {status}")
            op = new_op(f"{WORKER}-{_seq}", "balance", invoke, worker=WORKER, user="bench", account_id=ACCOUNT,
                        complete_ts=time.time(), outcome="ok" if ok else "fail", status=status,
                        request_id=r.headers.get("x-request-id"), balance=balance,
                        content_type=r.headers.get("content-type"))
    except Exception as exc:  # noqa: BLE001 - transport error: a failed read
        op = new_op(f"{WORKER}-{_seq}", "balance", invoke, worker=WORKER, user="bench", account_id=ACCOUNT,
                    complete_ts=time.time(), outcome="fail", error=type(exc).__name__)
    _history().write(op)


if os.environ.get("BENCH_CLIENT", "fast") == "http":
    class ReadUser(HttpUser):
        wait_time = constant(0)
        headers = {"Authorization": f"Bearer {TOKEN}"}

        @task
        def balance(self) -> None:
            _read_balance(self)
else:
    class ReadUser(FastHttpUser):  # type: ignore[no-redef]
        wait_time = constant(0)
        headers = {"Authorization": f"Bearer {TOKEN}"}

        @task
        def balance(self) -> None:
            _read_balance(self)
