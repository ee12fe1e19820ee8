"""resolve_unknowns (pure) and collect_final_state against a fake wallet/gateway (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from tests.histories import RunBuilder
from walletchaos.reconcile import collect_final_state, resolve_unknowns


def export_of(run: RunBuilder) -> dict:
    return run.final()["export"]


def test_unknown_writes_resolve_by_idempotency_key() -> None:
    run = RunBuilder()
    run.register("alice")
    applied = run.deposit("alice", 100, outcome="unknown", applied=True)
    lost = run.deposit("alice", 200, outcome="unknown", applied=False)
    pending = run.deposit("alice", 300, outcome="unknown", applied=True, txn_status="pending")
    failed = run.withdrawal("alice", 50, outcome="unknown", applied=True, txn_status="failed")
    ok = run.deposit("alice", 10)
    run.transport_error("balance")  # a failed read is never "unknown": not resolved
    res = resolve_unknowns(run.history, export_of(run))
    assert res == {
        applied["op_id"]: {"txn_id": run.txn_of(applied)["transaction_id"], "status": "succeeded"},
        lost["op_id"]: {"txn_id": None, "status": "absent"},
        pending["op_id"]: {"txn_id": run.txn_of(pending)["transaction_id"], "status": "pending"},
        failed["op_id"]: {"txn_id": run.txn_of(failed)["transaction_id"], "status": "failed"},
    }
    assert ok["op_id"] not in res


def test_falls_back_to_txn_id_seen_in_a_504_body() -> None:
    run = RunBuilder()
    run.register("alice")
    txn = run.apply("deposit", 100, None, "alice", key=None, status="failed")
    op = run.error("deposit", "GATEWAY_TIMEOUT", txn_id=txn["transaction_id"], args={"amount": 100})
    assert resolve_unknowns(run.history, export_of(run))[op["op_id"]] == {
        "txn_id": txn["transaction_id"], "status": "failed"}


def test_duplicate_key_resolves_to_most_applied_transaction() -> None:
    run = RunBuilder()
    run.register("alice")
    op = run.deposit("alice", 100, outcome="unknown", applied=True, txn_status="failed")
    dup = run.apply("deposit", 100, None, "alice", op["idempotency_key"], "succeeded")
    assert resolve_unknowns(run.history, export_of(run))[op["op_id"]]["txn_id"] == dup["transaction_id"]


class FakeServices:
    """Wallet admin + gateway records; reconcile reports `pending` counts in sequence."""

    def __init__(self, pending: list[int], fail_first: int = 0, status_on_fail: int = 503) -> None:
        self.pending = pending
        self.fail_first = fail_first
        self.status_on_fail = status_on_fail
        self.calls: list[str] = []
        run = RunBuilder()
        run.register("alice")
        self.op = run.deposit("alice", 100, outcome="unknown", applied=True)
        self.run = run

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.url.path.startswith("/admin"):
            assert request.headers["Authorization"] == "Bearer tok"
        if self.fail_first:
            self.fail_first -= 1
            return httpx.Response(self.status_on_fail, json={"code": "DATABASE_UNAVAILABLE"})
        if request.url.path == "/admin/reconcile":
            return httpx.Response(200, json={"resolved": 1, "still_pending": self.pending.pop(0)})
        final = self.run.final()
        if request.url.path == "/admin/export":
            return httpx.Response(200, json=final["export"])
        return httpx.Response(200, json=final["gateway"])


def collect(fake: FakeServices, timeout: float = 5.0) -> dict:
    return collect_final_state("http://wallet/", "http://gateway", "tok", fake.run.history, timeout=timeout,
                               poll_s=0.01, transport=httpx.MockTransport(fake))


def test_collect_reconciles_until_nothing_pending_then_snapshots() -> None:
    fake = FakeServices(pending=[2, 1, 0])
    final = collect(fake)
    assert fake.calls == ["POST /admin/reconcile"] * 3 + ["GET /admin/export", "GET /control/records"]
    assert final["reconcile"]["still_pending"] == 0 and final["reconcile"]["attempts"] == 3
    assert final["reconcile"]["resolved"] == 3
    assert final["resolutions"][fake.op["op_id"]]["status"] == "succeeded"
    assert set(final) >= {"export", "gateway", "opening_total", "resolutions", "reconcile", "timings"}
    assert final["timings"]["total_s"] >= final["timings"]["reconcile_s"] >= 0


def test_collect_gives_up_at_deadline_and_reports_still_pending() -> None:
    fake = FakeServices(pending=[5] * 1000)
    final = collect(fake, timeout=0.2)
    assert final["reconcile"]["still_pending"] == 5 and final["reconcile"]["attempts"] > 1
    assert final["timings"]["reconcile_s"] >= 0.2


def test_collect_retries_5xx_right_after_heal() -> None:
    fake = FakeServices(pending=[0], fail_first=2)
    assert collect(fake)["reconcile"]["still_pending"] == 0


def test_collect_does_not_retry_4xx() -> None:
    fake = FakeServices(pending=[0], fail_first=1, status_on_fail=401)
    with pytest.raises(httpx.HTTPStatusError):
        collect(fake)
    assert len(fake.calls) == 1
