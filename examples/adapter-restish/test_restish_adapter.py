"""The restish adapter maps every contract op and outcome: conformance passes through it against the
restish façade in front of a real mock wallet (real PostgreSQL), and the pure mappings hold."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from restish_adapter import RestishAdapter  # noqa: E402

from walletchaos.adapters import ContractCall, TranslatingTransport  # noqa: E402
from walletchaos.client import HttpxTransport, RawResponse, WalletApi  # noqa: E402


def test_restish_error_becomes_the_contracts_problem():
    raw = RawResponse(400, {"x-correlation-id": "rid-1", "content-type": "application/json"},
                      orjson.dumps({"error": {"kind": "insufficient_funds", "message": "not enough"}}))
    out = RestishAdapter().answer(ContractCall("withdraw", {}), raw)
    body = orjson.loads(out.body)
    assert out.status == 409 and out.header("content-type") == "application/problem+json"
    assert body["code"] == "INSUFFICIENT_FUNDS" and body["retryable"] is False and body["request_id"] == "rid-1"


def test_missing_correlation_id_is_not_invented():
    raw = RawResponse(404, {}, orjson.dumps({"error": {"kind": "account_not_found", "message": "no"}}))
    body = orjson.loads(RestishAdapter().answer(ContractCall("balance", {}), raw).body)
    assert "request_id" not in body


def test_pending_payment_is_a_202_and_settled_a_201():
    pay = {"payment": {"id": "t1", "type": "deposit", "state": "pending", "cents": 5}}
    out = RestishAdapter().answer(ContractCall("deposit", {}), RawResponse(200, {}, orjson.dumps(pay)))
    assert out.status == 202 and orjson.loads(out.body)["transaction_id"] == "t1"
    pay["payment"]["state"] = "succeeded"
    assert RestishAdapter().answer(ContractCall("deposit", {}), RawResponse(200, {}, orjson.dumps(pay))).status == 201


@pytest.fixture(scope="module")
def restish(tmp_path_factory):
    """The restish façade (in-process) in front of a real mock wallet started from its target file."""
    from fastapi.testclient import TestClient

    import restish_wallet
    from walletchaos.topology.process import ProcessTopology

    topo = ProcessTopology(tmp_path_factory.mktemp("restish") / "stack")
    mp = pytest.MonkeyPatch()
    try:
        topo.start()
        mp.setenv("WALLET_URL", topo.wallet_direct_url)
        restish_wallet._http = None
        with TestClient(restish_wallet.app) as client:
            yield topo, client
    finally:
        topo.stop()
        mp.undo()
        restish_wallet._http = None


@pytest.mark.slow
def test_conformance_passes_through_the_adapter(restish):
    from walletchaos.conformance import Prober, probe_contract

    topo, client = restish
    prober = Prober(RestishAdapter(), "http://testserver", "http://testserver", topo.admin_token,
                    http=client, admin_http=client)
    probes = probe_contract(prober)
    failed = [p.line() for p in probes if not p.ok]
    assert not failed, failed
    assert len(probes) >= 25


@pytest.mark.slow
def test_load_client_records_contract_ops_through_the_adapter(restish):
    _, client = restish
    ops = []

    class Sink:
        def write(self, op):
            ops.append(op)

    api = WalletApi(TranslatingTransport(HttpxTransport(client), RestishAdapter()), Sink(), worker="w", user="u1")
    assert api.register("restish-u1", "pw-123456", "654321").ok
    assert api.login("restish-u1", "pw-123456").ok
    dep = api.deposit(700)
    assert dep.ok and dep.op["txn_status"] == "succeeded" and dep.op["txn_id"]
    assert api.retry(dep.op, "654321").op["txn_id"] == dep.op["txn_id"]  # same key: same transaction
    bal = api.balance()
    assert bal.op["balance"] == 700
    over = api.withdrawal(10**9, "654321")
    assert over.op["outcome"] == "fail" and over.op["code"] == "INSUFFICIENT_FUNDS"
    assert [o["kind"] for o in ops] == ["register", "login", "deposit", "deposit", "balance", "withdrawal"]
