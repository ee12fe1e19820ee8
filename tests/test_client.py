"""walletchaos.client: the outcome rule (`classify`, pure, every case) and WalletApi against a real wallet."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from walletchaos.client import BODY_EXCERPT_CHARS, HttpxTransport, WalletApi, classify, client_timeout_s
from walletchaos.history import new_op

PROBLEM = "application/problem+json"


def problem(code: str, status: int, retryable: bool = False, **extra: object) -> bytes:
    return orjson.dumps({"type": f"https://x/{code.lower()}", "title": code, "status": status, "detail": "d",
                         "code": code, "request_id": "rid-body", "retryable": retryable, **extra})


TXN = {"transaction_id": "t1", "kind": "deposit", "status": "succeeded", "amount": 100}


# -- 2xx ------------------------------------------------------------------------------------------------------
def test_201_write_is_ok_with_txn_fields() -> None:
    outcome, f = classify("deposit", 201, "application/json", orjson.dumps(TXN), None, request_id="rid-h")
    assert outcome == "ok"
    assert (f["status"], f["txn_id"], f["txn_status"], f["request_id"]) == (201, "t1", "succeeded", "rid-h")
    assert f["problem"] is None and f["body_excerpt"] is None and f["error"] is None and f["code"] is None


def test_202_pending_is_unknown() -> None:
    outcome, f = classify("withdrawal", 202, "application/json", {**TXN, "status": "pending"}, None)
    assert outcome == "unknown"
    assert (f["txn_id"], f["txn_status"]) == ("t1", "pending")


def test_balance_read_records_balance() -> None:
    outcome, f = classify("balance", 200, "application/json", b'{"account_id":"a","balance":42}', None)
    assert outcome == "ok" and f["balance"] == 42


def test_register_ok_reports_account_id() -> None:
    outcome, f = classify("register", 201, "application/json", b'{"user_id":"u","account_id":"a1"}', None)
    assert outcome == "ok" and f["account_id"] == "a1"


def test_2xx_read_with_garbage_body_fails_but_write_stays_acknowledged() -> None:
    assert classify("balance", 200, "text/html", b"<html>oops</html>", None)[0] == "fail"
    outcome, f = classify("deposit", 201, "text/plain", b"created", None)
    assert outcome == "ok" and f["body_excerpt"] == "created"


# -- problem responses ------------------------------------------------------------------------------------------
def test_409_problem_is_fail_with_code_and_problem() -> None:
    outcome, f = classify("transfer", 409, PROBLEM, problem("INSUFFICIENT_FUNDS", 409), None, request_id="rid-h")
    assert outcome == "fail"
    assert f["code"] == "INSUFFICIENT_FUNDS" and f["problem"]["status"] == 409
    assert f["request_id"] == "rid-h"  # the header wins; the checker compares it with the body's
    assert f["body_excerpt"] is None


def test_503_problem_is_fail_and_request_id_falls_back_to_body() -> None:
    outcome, f = classify("deposit", 503, PROBLEM, problem("DATABASE_UNAVAILABLE", 503, True), None)
    assert outcome == "fail" and f["code"] == "DATABASE_UNAVAILABLE" and f["request_id"] == "rid-body"


def test_504_problem_is_unknown_and_carries_the_pending_txn_id() -> None:
    body = problem("GATEWAY_TIMEOUT", 504, True, transaction_id="t-pending")
    outcome, f = classify("deposit", 504, PROBLEM, body, None)
    assert outcome == "unknown" and f["code"] == "GATEWAY_TIMEOUT" and f["txn_id"] == "t-pending"


def test_504_on_a_read_is_fail() -> None:
    assert classify("balance", 504, PROBLEM, problem("GATEWAY_TIMEOUT", 504, True), None)[0] == "fail"


def test_500_html_write_is_unknown_with_excerpt_and_no_problem() -> None:
    html = b"<html><body>" + b"Traceback (most recent call last) " * 40 + b"</body></html>"
    outcome, f = classify("withdrawal", 500, "text/html; charset=utf-8", html, None)
    assert outcome == "unknown"  # a crash may come after the commit: only reconcile can tell
    assert f["problem"] is None and f["code"] is None and f["status"] == 500
    assert f["body_excerpt"].startswith("<html>") and len(f["body_excerpt"]) == BODY_EXCERPT_CHARS


def test_500_on_a_read_is_fail() -> None:
    assert classify("history", 500, "text/plain", b"Internal Server Error", None)[0] == "fail"


def test_non_problem_json_error_keeps_an_excerpt() -> None:
    outcome, f = classify("lookup", 404, "application/json", b'{"detail":"Not Found"}', None)
    assert outcome == "fail" and f["problem"] is None and f["body_excerpt"] == '{"detail":"Not Found"}'


def test_empty_error_body() -> None:
    outcome, f = classify("deposit", 502, None, b"", None)
    assert outcome == "unknown" and f["body_excerpt"] == "" and f["problem"] is None


def test_429_and_423_are_fail() -> None:
    assert classify("deposit", 429, PROBLEM, problem("RATE_LIMITED", 429, True), None)[0] == "fail"
    assert classify("login", 423, PROBLEM, problem("ACCOUNT_LOCKED", 423), None)[0] == "fail"


# -- transport errors ---------------------------------------------------------------------------------------------
def test_connection_reset_on_write_is_unknown() -> None:
    outcome, f = classify("transfer", None, None, None, ConnectionResetError(104, "reset"))
    assert outcome == "unknown" and f["error"] == "ConnectionResetError" and f["status"] is None


def test_read_timeout_on_write_is_unknown() -> None:
    outcome, f = classify("deposit", None, None, None, httpx.ReadTimeout("timed out"))
    assert outcome == "unknown" and f["error"] == "ReadTimeout"
    assert classify("withdrawal", None, None, None, socket.timeout("timed out"))[0] == "unknown"


def test_timeout_on_read_op_is_fail() -> None:
    for kind in ("balance", "history", "lookup", "login"):
        outcome, f = classify(kind, None, None, None, httpx.ReadTimeout("timed out"))
        assert outcome == "fail" and f["error"] == "ReadTimeout", kind


def test_register_is_treated_as_a_write() -> None:
    assert classify("register", None, None, None, httpx.ReadTimeout("t"))[0] == "unknown"


def test_connection_refused_means_nothing_was_sent() -> None:
    assert classify("deposit", None, None, None, ConnectionRefusedError(111, "refused"))[0] == "fail"
    assert classify("deposit", None, None, None, httpx.ConnectError("refused"))[0] == "fail"
    assert classify("deposit", None, None, None, "RemoteProtocolError")[0] == "unknown"


def test_fields_complete_a_history_record() -> None:
    _, f = classify("deposit", 409, PROBLEM, problem("IDEMPOTENCY_KEY_REUSED", 409), None)
    op = new_op("w0-u0-1", "deposit", 1.0, complete_ts=2.0, outcome="fail", **f)
    assert op["latency_ms"] == 1000.0 and op["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_client_timeout_exceeds_wallet_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLETCHAOS_CLIENT_TIMEOUT_S", raising=False)
    assert client_timeout_s() > 5.0
    monkeypatch.setenv("WALLETCHAOS_CLIENT_TIMEOUT_S", "7.5")
    assert client_timeout_s() == 7.5


# -- WalletApi over real HTTP -------------------------------------------------------------------------------------
class ListSink:
    def __init__(self) -> None:
        self.ops: list[dict] = []

    def write(self, op: dict) -> None:
        self.ops.append(orjson.loads(orjson.dumps(op)))  # must be JSON-serialisable


@pytest.fixture(scope="module")
def wallet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from walletchaos.topology.process import ProcessTopology

    topo = ProcessTopology(tmp_path_factory.mktemp("wc-client"))
    try:
        topo.start()
        yield topo.wallet_url
    finally:
        topo.stop()


@pytest.mark.slow
def test_wallet_api_records_one_op_per_call_and_retries_keep_the_key(wallet_url: str) -> None:
    sink = ListSink()
    with httpx.Client(base_url=wallet_url, timeout=client_timeout_s()) as http:
        api = WalletApi(HttpxTransport(http), sink, worker="t", user="u0")
        name = f"client-{uuid.uuid4().hex[:8]}"
        assert api.register(name, "pw-secret-1", "123456").ok and api.account_id
        assert api.register(name, "pw-secret-1", "123456").op["code"] == "USERNAME_TAKEN"
        assert api.login(name, "pw-secret-1").ok and api.token
        dep = api.deposit(10_000)
        assert dep.ok and dep.op["txn_id"] and dep.op["txn_status"] == "succeeded"
        again = api.retry(dep.op, "123456")
        assert again.op["idempotency_key"] == dep.op["idempotency_key"] and again.op["tag"] == "retry"
        assert again.op["txn_id"] == dep.op["txn_id"]  # exactly once: the original outcome, replayed
        bal = api.balance()
        assert bal.ok and bal.op["balance"] == 10_000
        bad = api.withdrawal(50, "000000")
        assert bad.outcome == "fail" and bad.op["code"] == "INVALID_PIN"
        assert bad.op["content_type"].startswith(PROBLEM) and bad.op["problem"]["status"] == 403
        found = api.lookup(dep.op["idempotency_key"])
        assert found.ok and found.op["txn_id"] == dep.op["txn_id"]
        assert api.history().ok
    ops = sink.ops
    assert len(ops) == 9 and len({o["op_id"] for o in ops}) == 9
    for op in ops:
        assert op["request_id"] and op["invoke_ts"] <= op["complete_ts"]
        assert op["sent_request_id"] == op["request_id"]  # the wallet echoes our X-Request-ID
    assert ops[0]["account_id"] == api.account_id


def test_wallet_api_against_a_dead_port_records_transport_errors() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = ListSink()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=2.0) as http:
        api = WalletApi(HttpxTransport(http), sink, worker="t", user="u1")
        api.account_id, api.token = "a", "tok"
        assert api.deposit(100).outcome == "fail"  # refused: never sent
        assert api.balance().outcome == "fail"
    assert [o["error"] for o in sink.ops] == ["ConnectError", "ConnectError"]
    assert all(o["status"] is None and o["complete_ts"] >= o["invoke_ts"] for o in sink.ops)
