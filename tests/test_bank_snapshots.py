"""bank_snapshots: every audit snapshot taken during the run balances; the AuditPoller that takes them;
audit ops stay out of every other consumer of the history."""

from __future__ import annotations

import time

import httpx

from walletchaos.checks import bank_snapshots
from walletchaos.checks.base import CheckContext
from walletchaos.history import AUDIT_KIND, new_op, read_history
from walletchaos.report.snapshot_figure import snapshot_figure
from walletchaos.report.timeseries import analyze
from walletchaos.snapshots import AUDIT_FILE, AuditPoller
from walletchaos.synth import generate_history
from walletchaos.verdict import run_checks

T0 = 1_000.0


def audit(total, ext_in, ext_out=0, holds=0, **extra):
    body = {"accounts": 3, "total_balance": total, "ledger_total": total, "external_in": ext_in,
            "external_out": ext_out, "pending_count": 0, "negative_accounts": [], "mismatched_accounts": [],
            "unbalanced_transactions": [], "clearing_balance": -total, "pending_withdrawal_holds": holds}
    body.update(extra)
    return body


def snap(n, body, *, outcome="ok", phase="warmup", status=200):
    ts = T0 + 0.35 * n
    op = new_op(f"audit-{n}", AUDIT_KIND, ts, worker="harness", user="auditor", complete_ts=ts + 0.01,
                outcome=outcome, status=status, request_id=f"req-audit-{n}", phase=phase)
    op["audit"] = body if outcome == "ok" else None
    return op


def series():
    # deposits of 100 each; a withdrawal of 30 pending (hold) at n=3, paid out at n=4
    return [snap(1, audit(100, 100)), snap(2, audit(200, 200)), snap(3, audit(170, 200, holds=30), phase="fault"),
            snap(4, audit(170, 200, 30), phase="fault"), snap(5, audit(270, 300, 30), phase="recover")]


CTX = CheckContext(fault_windows=((T0 + 0.9, T0 + 1.5, "latency", "wallet_db"),))


def test_balanced_snapshots_pass():
    result = bank_snapshots.check(series(), {"opening_total": 0}, CTX)
    assert result.passed, result.counterexamples
    assert result.stats["snapshots_ok"] == 5 and result.stats["max_gap_s"] == 0.35


def test_split_transfer_seen_mid_flight_fails_with_the_snapshot():
    ops = series()
    ops.insert(3, snap(3.5, audit(150, 200, holds=30), phase="fault"))  # a transfer's debit without its credit
    result = bank_snapshots.check(ops, {"opening_total": 0}, CTX)
    assert not result.passed
    ce = result.counterexamples[0]
    assert ce["rule"] == "total_vs_books" and ce["op_id"] == "audit-3.5" and ce["phase"] == "fault"
    assert ce["total_balance"] == 150 and ce["expected"] == 170 and ce["difference"] == -20
    assert ce["faults_active"] == ["latency@wallet_db"]


def test_negative_mismatched_unbalanced_fail():
    for field in ("negative_accounts", "mismatched_accounts", "unbalanced_transactions"):
        ops = [*series(), snap(6, audit(270, 300, 30, **{field: ["acc-1"]}))]
        result = bank_snapshots.check(ops, {}, CTX)
        assert not result.passed and result.counterexamples[0]["rule"] == field
        assert result.counterexamples[0]["ids"] == ["acc-1"] and result.counterexamples[0]["op_id"] == "audit-6"


def test_ledger_total_mismatch_fails():
    result = bank_snapshots.check([snap(1, audit(100, 100, ledger_total=90))], {}, CTX)
    assert not result.passed and result.counterexamples[0]["rule"] == "total_vs_ledger"


def test_audit_without_holds_field_is_held_to_the_upper_bound():
    body = audit(70, 100, 0)
    del body["pending_withdrawal_holds"]
    assert bank_snapshots.check([snap(1, body)], {}, CTX).passed  # 30 may be held by a pending withdrawal
    body["total_balance"] = body["ledger_total"] = 130
    result = bank_snapshots.check([snap(1, body)], {}, CTX)
    assert not result.passed and result.counterexamples[0]["rule"] == "total_above_books"


def test_failed_snapshots_are_counted_not_judged_and_no_snapshots_is_not_judged():
    ops = [*series(), snap(6, None, outcome="fail", status=503)]
    result = bank_snapshots.check(ops, {}, CTX)
    assert result.passed and result.stats["snapshots_failed"] == 1
    result = bank_snapshots.check([], {}, CTX)
    assert result.passed and result.stats["judged"] is False and result.summary.startswith("not judged")


def test_audit_ops_are_ignored_by_the_other_checkers_and_the_report():
    run = generate_history(2000, seed=3)
    clean = run_checks(run.history, run.final, run.ctx())
    t = run.history[0]["invoke_ts"]
    failing = new_op("audit-1", AUDIT_KIND, t, worker="harness", complete_ts=t + 9.0, outcome="fail", status=500,
                     content_type="text/html", body_excerpt="<html>Traceback</html>", phase="warmup")
    failing["audit"] = None
    lost = new_op("audit-2", AUDIT_KIND, run.history[-1]["invoke_ts"], worker="harness", outcome="fail",
                  error="ConnectError", phase="recover")
    lost["complete_ts"], lost["audit"] = lost["invoke_ts"] + 1, None
    history = sorted([*run.history, failing, lost], key=lambda o: o["invoke_ts"])
    verdict = run_checks(history, run.final, run.ctx())
    assert [(r.name, r.passed) for r in verdict.results] == [(r.name, r.passed) for r in clean.results]
    a = analyze(history, run.events, run.final)
    assert a.ops == len(run.history) and AUDIT_KIND not in a.by_kind


def test_snapshot_figure_marks_unbalanced_and_failed_snapshots():
    ops = [*series(), snap(6, audit(1, 300, 30)), snap(7, None, outcome="fail", status=503)]
    a = analyze([], [], {})
    fig = snapshot_figure(ops, a)
    names = {tr.name: tr for tr in fig.data}
    assert len(names["books do not balance"].x) == 1 and len(names["snapshot failed"].x) == 1
    assert snapshot_figure([], a) is None


def test_poller_snapshots_every_interval_and_records_failures(tmp_path):
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        assert request.headers["authorization"] == "Bearer tok" and request.url.path == "/admin/audit"
        if calls["n"] == 3:
            return httpx.Response(503, json={"type": "about:blank", "title": "Db", "status": 503,
                                             "code": "DATABASE_UNAVAILABLE", "detail": "down",
                                             "request_id": "r", "retryable": True},
                                  headers={"content-type": "application/problem+json"})
        return httpx.Response(200, json=audit(100, 100))

    with AuditPoller("http://wallet", "tok", tmp_path, interval_s=0.05, transport=httpx.MockTransport(handler)):
        time.sleep(0.6)
    ops = read_history(tmp_path / AUDIT_FILE)
    assert len(ops) >= 5
    assert all(o["kind"] == AUDIT_KIND and o["op_id"].startswith("audit-") for o in ops)
    outcomes = {o["op_id"]: o["outcome"] for o in ops}
    assert list(outcomes.values()).count("fail") == 1
    bad = next(o for o in ops if o["outcome"] == "fail")
    assert bad["code"] == "DATABASE_UNAVAILABLE" and bad["audit"] is None
    good = next(o for o in ops if o["outcome"] == "ok")
    assert good["audit"]["total_balance"] == 100 and good["invoke_ts"] <= good["complete_ts"]
