"""recovery: success rate back above threshold within recovery_within_s after the last fault; nothing
left pending after reconcile; no unknown op unresolved."""

from __future__ import annotations

from tests.histories import T0, RunBuilder, healthy_run
from walletchaos.checks import recovery
from walletchaos.checks.base import CheckResult

FAULT_END = T0 + 20


def judge(run: RunBuilder, final: dict | None = None, **ctx_kw: object) -> CheckResult:
    return recovery.check(run.history, run.final() if final is None else final, run.ctx(**ctx_kw))


def rules(result: CheckResult) -> set[str]:
    return {c["rule"] for c in result.counterexamples}


def failing_then_healthy(fail_for_s: float, total_s: float = 30.0) -> RunBuilder:
    """healthy_run's fault, then 503s for `fail_for_s` seconds after it ends, then healthy traffic."""
    run = healthy_run(recovered_ops=0)
    run.at(FAULT_END)
    while run.clock < FAULT_END + total_s:
        if run.clock < FAULT_END + fail_for_s:
            run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
        else:
            run.balance("alice")
    return run


def test_healthy_run_recovers_immediately() -> None:
    result = judge(healthy_run())
    assert result.passed, result.counterexamples
    assert result.stats["recovery_time_s"] == 0.0 and result.stats["unresolved_ops"] == 0


def test_recovered_too_late_reports_measured_time() -> None:
    run = failing_then_healthy(fail_for_s=15.0)
    result = judge(run)
    assert rules(result) == {"recovered_too_late"}
    measured = result.stats["recovery_time_s"]
    assert 14.0 <= measured <= 15.5
    assert result.counterexamples[0]["failing_op_ids"]  # names ops that failed during the outage
    relaxed = judge(run, recovery_within_s=20.0)
    assert relaxed.passed and relaxed.stats["recovery_time_s"] == measured


def test_never_recovered() -> None:
    run = failing_then_healthy(fail_for_s=1_000.0)
    result = judge(run)
    assert rules(result) == {"never_recovered"}
    last = result.counterexamples[0]["last_windows"]
    assert last and all(w["success_rate"] == 0.0 and w["failing_op_ids"] for w in last)
    assert result.stats["recovery_time_s"] is None


def test_flapping_after_recovery_resets_the_clock() -> None:
    run = healthy_run(recovered_ops=0)
    run.at(FAULT_END)
    while run.clock < FAULT_END + 30:
        in_flap = FAULT_END + 12 <= run.clock < FAULT_END + 14
        run.error("balance", "DATABASE_UNAVAILABLE", account="alice") if in_flap else run.balance("alice")
    result = judge(run)
    assert result.stats["recovery_time_s"] >= 13.0 and rules(result) == {"recovered_too_late"}


def test_expected_client_errors_do_not_count_against_recovery() -> None:
    run = healthy_run(recovered_ops=0)
    run.at(FAULT_END)
    for _ in range(100):
        run.error("withdrawal", "INSUFFICIENT_FUNDS", account="bob")
        run.balance("alice")
    assert judge(run).passed


def test_no_ops_after_the_fault_cannot_show_recovery() -> None:
    assert rules(judge(healthy_run(recovered_ops=0))) == {"never_recovered"}


def test_without_faults_only_pending_matters() -> None:
    run = RunBuilder()
    run.register("alice")
    run.deposit("alice", 100)
    result = judge(run)
    assert result.passed and result.stats["recovery_time_s"] == 0.0


def test_pending_left_after_reconcile_names_txn_and_op() -> None:
    run = healthy_run()
    stuck = run.deposit("alice", 42, outcome="unknown", applied=True, txn_status="pending")
    run.reconcile["still_pending"] = 1
    result = judge(run)
    txn_id = run.txn_of(stuck)["transaction_id"]
    assert {"rule": "pending_after_reconcile", "still_pending": 1} in result.counterexamples
    assert {"rule": "pending_transaction", "txn_id": txn_id} in result.counterexamples
    assert {"rule": "unknown_op_unresolved", "op_id": stuck["op_id"], "idempotency_key": stuck["idempotency_key"],
            "txn_id": txn_id} in result.counterexamples


def test_stored_resolutions_are_used_when_present() -> None:
    run = healthy_run()
    unknown = run.find("deposit", 300)
    final = run.final(resolutions={unknown["op_id"]: {"txn_id": None, "status": "pending"}})
    assert rules(judge(run, final)) == {"unknown_op_unresolved"}


def _with_replays_after_fault(fresh_key: bool) -> RunBuilder:
    """A withdrawal refused with GATEWAY_ERROR during the fault, retried with its key after it: the
    retries replay the recorded refusal (or, with fresh keys, are new failures of the present)."""
    run = healthy_run(recovered_ops=0)
    run.at(FAULT_END - 1)
    run.withdrawal("bob", 10, outcome="fail", code="GATEWAY_ERROR", key="k-during")
    run.at(FAULT_END)
    for i in range(120):
        if i % 4 == 0:
            run.withdrawal("bob", 10, outcome="fail", code="GATEWAY_ERROR",
                           key=f"k-fresh-{i}" if fresh_key else "k-during")
        else:
            run.balance("alice")
    return run


def test_retries_replaying_an_outcome_from_the_fault_do_not_count_against_recovery() -> None:
    assert judge(_with_replays_after_fault(fresh_key=False)).passed


def test_fresh_failures_after_the_fault_still_count() -> None:
    assert rules(judge(_with_replays_after_fault(fresh_key=True))) == {"never_recovered"}
