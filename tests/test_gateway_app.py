"""The mock payment gateway on its own: idempotency by reference, injected faults, records."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mock_wallet.embedded_pg import free_port
from mock_wallet.launch import ServiceProcess, spawn_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway() -> Iterator[ServiceProcess]:
    root = Path(tempfile.mkdtemp(prefix="wc-gateway-"))
    service = spawn_service("gateway", port=free_port(), env={"GATEWAY_DB_PATH": str(root / "gw.sqlite3")},
                            log_path=root / "gateway.log")
    try:
        service.wait_ready(30)
        yield service
    finally:
        service.terminate()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def gw(gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
        yield client
        client.post("/control/reset-behaviour")


def test_charge_is_idempotent_by_reference(gw):
    ref = str(uuid.uuid4())
    first = gw.post("/charges", json={"reference": ref, "amount": 100})
    again = gw.post("/charges", json={"reference": ref, "amount": 100})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"reference": ref, "amount": 100, "status": "succeeded"}
    assert gw.get(f"/charges/{ref}").json()["status"] == "succeeded"
    assert gw.get(f"/payouts/{ref}").status_code == 404
    assert [c for c in gw.get("/control/records").json()["charges"] if c["reference"] == ref][0]["amount"] == 100


def test_concurrent_same_reference_applies_once(gw, gateway):
    ref = str(uuid.uuid4())
    gw.put("/control/behaviour", json={"delay_ms": 100})
    before = gw.get("/control/records").json()["paid_out_total"]

    def pay(_):
        with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
            return client.post("/payouts", json={"reference": ref, "amount": 7}).json()["status"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        assert set(pool.map(pay, range(5))) == {"succeeded"}
    assert gw.get("/control/records").json()["paid_out_total"] == before + 7


def test_error_and_decline_injection(gw):
    gw.put("/control/behaviour", json={"error_rate": 1.0})
    ref = str(uuid.uuid4())
    r = gw.post("/charges", json={"reference": ref, "amount": 5})
    assert r.status_code == 503 and "error" in r.json()
    assert gw.get(f"/charges/{ref}").status_code == 404  # nothing applied
    gw.put("/control/behaviour", json={"decline_rate": 1.0})
    assert gw.post("/charges", json={"reference": ref, "amount": 5}).json()["status"] == "declined"
    gw.post("/control/reset-behaviour")
    # a declined reference stays declined: repeats return the record
    assert gw.post("/charges", json={"reference": ref, "amount": 5}).json()["status"] == "declined"
    assert gw.get("/control/behaviour").json()["decline_rate"] == 0.0


def test_apply_then_drop_and_hang(gw, gateway):
    gw.put("/control/behaviour", json={"apply_then_drop_rate": 1.0})
    ref = str(uuid.uuid4())
    with httpx.Client(base_url=gateway.url, timeout=5.0) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/charges", json={"reference": ref, "amount": 9})
    assert gw.get(f"/charges/{ref}").json()["status"] == "succeeded"  # applied although unanswered
    gw.put("/control/behaviour", json={"apply_then_hang_rate": 1.0, "hang_s": 10})
    ref = str(uuid.uuid4())
    with httpx.Client(base_url=gateway.url, timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.post("/payouts", json={"reference": ref, "amount": 3})
    assert gw.get(f"/payouts/{ref}").json()["status"] == "succeeded"


def test_control_validation_and_health(gw):
    assert gw.put("/control/behaviour", json={"error_rate": 2}).status_code == 422
    assert gw.post("/charges", json={"reference": "r", "amount": -1}).status_code == 422
    assert gw.get("/healthz").status_code == 200 and gw.get("/readyz").status_code == 200
    records = gw.get("/control/records").json()
    assert {"charges", "payouts", "charged_total", "paid_out_total"} <= records.keys()
