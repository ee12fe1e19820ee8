"""Each rule of the eight core checkers fires, by its name, on a history broken in exactly that way; the same
history unbroken passes. The breaks start from tests.histories.healthy_run (which passes every checker) and
read like the anomaly they stand for; ledger's total_balance_vs_ledger_total also fires on a synthetic run
(walletchaos.synth bug "balance_drift"). tests/test_rules_fire.py checks that every declared rule of every
check module has such a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.histories import T0, RunBuilder, healthy_run
from walletchaos.checks import CHECKS
from walletchaos.checks.base import CheckContext, CheckResult
from walletchaos.synth import audit_of, generate_history

Final = dict[str, Any]
Break = Callable[[RunBuilder], tuple[RunBuilder, Final, CheckContext]]
AFTER = T0 + 60  # after healthy_run's recovered traffic: no fault active, no grace


def final_of(run: RunBuilder, mutate: Callable[[Final], None] | None = None, *, reaudit: bool = True) -> Final:
    """run.final(), changed by `mutate`, with the audit recomputed from the changed export (unless told not to)."""
    final = run.final()
    if mutate is not None:
        mutate(final)
        if reaudit:
            final["export"]["audit"] = audit_of(final["export"])
    return final


def account(final: Final, account_id: str) -> dict[str, Any]:
    return next(a for a in final["export"]["accounts"] if a["account_id"] == account_id)


def txn_of_op(final: Final, op: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in final["export"]["transactions"] if t["idempotency_key"] == op["idempotency_key"])


def charge_of(final: Final, txn: dict[str, Any], kind: str = "charges") -> dict[str, Any]:
    return next(r for r in final["gateway"][kind] if r["reference"] == txn["transaction_id"])


def plain(run: RunBuilder, final: Final | None = None, **ctx: Any) -> tuple[RunBuilder, Final, CheckContext]:
    return run, run.final() if final is None else final, run.ctx(**ctx)


# --- clear_errors ----------------------------------------------------------------------------------------------
def _error_then(run: RunBuilder, catalog_code: str = "INSUFFICIENT_FUNDS",
                **change: Any) -> tuple[RunBuilder, Final, CheckContext]:
    """A client error after the fault, its response changed by `change` (op fields; `problem` is merged)."""
    op = run.error("withdrawal", catalog_code, account="bob", at=AFTER)
    problem = change.pop("problem", None)
    if problem is not None:
        op["problem"] = {**op["problem"], **problem}
    op.update(change)
    return plain(run)


def wrong_content_type(run: RunBuilder):
    return _error_then(run, content_type="application/json")


def internal_error(run: RunBuilder):
    return _error_then(run, "INTERNAL_ERROR")


def leaks_internals(run: RunBuilder):
    return _error_then(run, problem={"detail": 'Traceback (most recent call last):\n  File "/app/money.py"'})


def not_a_problem(run: RunBuilder):
    op = run.error("withdrawal", "INSUFFICIENT_FUNDS", account="bob", at=AFTER)
    op.update(problem=None, code=None, body_excerpt="insufficient funds")
    return plain(run)


def missing_members(run: RunBuilder):
    op = run.error("withdrawal", "INSUFFICIENT_FUNDS", account="bob", at=AFTER)
    del op["problem"]["title"]
    return plain(run)


def code_not_in_catalog(run: RunBuilder):
    return _error_then(run, code="NOT_ENOUGH_MONEY", problem={"code": "NOT_ENOUGH_MONEY"})


def problem_status_differs_from_http(run: RunBuilder):
    return _error_then(run, problem={"status": 400})


def status_differs_from_catalog(run: RunBuilder):
    return _error_then(run, status=400, problem={"status": 400})


def retryable_differs_from_catalog(run: RunBuilder):
    return _error_then(run, problem={"retryable": True})


def request_id_mismatch(run: RunBuilder):
    return _error_then(run, problem={"request_id": "someone-elses-request"})


def code_not_allowed_in_phase(run: RunBuilder):
    run.error("balance", "DATABASE_UNAVAILABLE", account="alice", at=AFTER)  # no fault now
    return plain(run)


def transport_error_outside_fault(run: RunBuilder):
    run.transport_error("balance", account_id="alice", at=AFTER)
    return plain(run)


def slower_than_deadline(run: RunBuilder):
    run.balance("alice", at=AFTER, latency_ms=9_000.0)
    return plain(run)


def missing_retry_after(run: RunBuilder):
    """A 429 the scenario allows, but without the Retry-After header the contract requires on it."""
    run, final, _ = _error_then(run, "RATE_LIMITED", retry_after=None)
    return run, final, run.ctx(allowed_phases=("*",), errors_allowed=("DATABASE_UNAVAILABLE", "RATE_LIMITED"))


# --- conservation ----------------------------------------------------------------------------------------------
def balances_vs_books(run: RunBuilder):
    return plain(run, final_of(run, lambda f: account(f, "alice").__setitem__("balance",
                                                                              account(f, "alice")["balance"] + 1)))


def audit_total_vs_accounts(run: RunBuilder):
    return plain(run, final_of(run, lambda f: f["export"]["audit"].__setitem__("total_balance", 1), reaudit=False))


def audit_vs_transactions(run: RunBuilder):
    def mutate(f: Final) -> None:
        audit = f["export"]["audit"]
        audit["external_in"] += 500  # the audit's books count a deposit no transaction backs
        account(f, "alice")["balance"] += 500
        audit["total_balance"] += 500
    return plain(run, final_of(run, mutate, reaudit=False))


def gateway_charged_vs_external_in(run: RunBuilder):
    run.gateway_charge("ref-charged-by-nobody", 400)
    return plain(run)


def gateway_paid_out_vs_external_out(run: RunBuilder):
    run.gateway_payout("ref-paid-to-nobody", 400)
    return plain(run)


def deposits_below_acknowledged(run: RunBuilder):
    run.forget(run.find("deposit", 10_000))
    return plain(run)


def withdrawals_below_acknowledged(run: RunBuilder):
    run.forget(run.find("withdrawal", 1_000))
    return plain(run)


def deposits_above_possible(run: RunBuilder):
    run.apply("deposit", 777, None, "alice", "key-no-client-sent")  # money in that no client asked for
    return plain(run)


deposit_applied_but_not_acknowledged = deposits_above_possible


def withdrawals_above_possible(run: RunBuilder):
    run.apply("withdrawal", 777, "alice", None, "key-no-client-sent")  # money out that no client asked for
    return plain(run)


withdrawal_applied_but_not_acknowledged = withdrawals_above_possible


# --- durability ------------------------------------------------------------------------------------------------
def acknowledged_write_lost(run: RunBuilder):
    run.forget(run.find("transfer", 2_000))
    return plain(run)


def acknowledged_write_not_succeeded(run: RunBuilder):
    op = run.find("transfer", 2_000)
    return plain(run, final_of(run, lambda f: txn_of_op(f, op).update(status="failed")))


def acknowledged_amount_changed(run: RunBuilder):
    op = run.find("transfer", 2_000)
    return plain(run, final_of(run, lambda f: txn_of_op(f, op).update(amount=1_999)))


def acknowledged_account_lost(run: RunBuilder):
    def mutate(f: Final) -> None:
        f["export"]["accounts"] = [a for a in f["export"]["accounts"] if a["account_id"] != "bob"]
    return plain(run, final_of(run, mutate))


# --- exactly_once ----------------------------------------------------------------------------------------------
def key_applied_more_than_once(run: RunBuilder):
    op = run.find("transfer", 2_000)
    def mutate(f: Final) -> None:
        f["export"]["transactions"].append({**txn_of_op(f, op), "transaction_id": "txn-again"})
    return plain(run, final_of(run, mutate))


def gateway_reference_applied_twice(run: RunBuilder):
    op = run.find("deposit", 10_000)
    def mutate(f: Final) -> None:
        f["gateway"]["charges"].append(dict(charge_of(f, txn_of_op(f, op))))
    return plain(run, final_of(run, mutate))


def _drop_gateway_record(amount: int, kind: str, records: str):
    def breaker(run: RunBuilder):
        op = run.find(kind, amount)
        def mutate(f: Final) -> None:
            gone = charge_of(f, txn_of_op(f, op), records)
            f["gateway"][records] = [r for r in f["gateway"][records] if r is not gone]
        return plain(run, final_of(run, mutate))
    return breaker


deposit_without_gateway_charge = _drop_gateway_record(10_000, "deposit", "charges")
withdrawal_without_gateway_payout = _drop_gateway_record(1_000, "withdrawal", "payouts")


def charged_not_credited(run: RunBuilder):
    run.gateway_charge("txn-never-credited", 250)
    return plain(run)


def paid_out_not_debited(run: RunBuilder):
    run.gateway_payout("txn-never-debited", 250)
    return plain(run)


def _gateway_amount(amount: int, kind: str, records: str):
    def breaker(run: RunBuilder):
        op = run.find(kind, amount)
        return plain(run, final_of(run, lambda f: charge_of(f, txn_of_op(f, op), records).update(amount=amount + 1)))
    return breaker


deposit_amount_differs_from_gateway = _gateway_amount(10_000, "deposit", "charges")
withdrawal_amount_differs_from_gateway = _gateway_amount(1_000, "withdrawal", "payouts")


# --- ledger ----------------------------------------------------------------------------------------------------
def balance_not_sum_of_entries(run: RunBuilder):
    return plain(run, final_of(run, lambda f: f["export"]["audit"].__setitem__("mismatched_accounts", ["alice"]),
                               reaudit=False))


def audit_unbalanced_transaction(run: RunBuilder):
    return plain(run, final_of(run, lambda f: f["export"]["audit"].__setitem__("unbalanced_transactions", ["txn-1"]),
                               reaudit=False))


def total_balance_vs_ledger_total(run: RunBuilder):
    """A balance moved without a ledger entry: the audit's Σ entries no longer matches Σ balances."""
    def mutate(f: Final) -> None:
        export = f["export"]
        ledger = {a["account_id"]: a["balance"] for a in export["accounts"]}
        account(f, "bob")["balance"] += 100
        export["audit"] = audit_of(export, ledger)
    return plain(run, final_of(run, mutate, reaudit=False))


def entries_do_not_sum_to_zero(run: RunBuilder):
    op = run.find("transfer", 2_000)
    return plain(run, final_of(run, lambda f: txn_of_op(f, op).update(entries_sum=2_000)))


# --- no_overdraft ----------------------------------------------------------------------------------------------
def negative_final_balance(run: RunBuilder):
    return plain(run, final_of(run, lambda f: account(f, "bob").__setitem__("balance", -1), reaudit=False))


def audit_negative_account(run: RunBuilder):
    return plain(run, final_of(run, lambda f: f["export"]["audit"].__setitem__("negative_accounts", ["bob"]),
                               reaudit=False))


def negative_balance_read(run: RunBuilder):
    run.balance("bob", value=-300, at=AFTER)
    return plain(run)


# --- no_phantoms -----------------------------------------------------------------------------------------------
def transaction_without_key(run: RunBuilder):
    run.apply("transfer", 5, "alice", "bob", None)
    return plain(run)


def transaction_with_unissued_key(run: RunBuilder):
    run.apply("transfer", 5, "alice", "bob", "key-nobody-sent")
    return plain(run)


# --- recovery --------------------------------------------------------------------------------------------------
def _failing_after_fault(fail_for_s: float) -> RunBuilder:
    run = healthy_run(recovered_ops=0)
    run.at(T0 + 20)
    while run.clock < T0 + 50:
        if run.clock < T0 + 20 + fail_for_s:
            run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
        else:
            run.balance("alice")
    return run


def never_recovered(run: RunBuilder):
    return plain(_failing_after_fault(1_000.0))


def recovered_too_late(run: RunBuilder):
    return plain(_failing_after_fault(15.0))


def pending_after_reconcile(run: RunBuilder):
    return plain(run, run.final(reconcile={"resolved": 0, "still_pending": 1}))


def pending_transaction(run: RunBuilder):
    run.deposit("alice", 90, outcome="unknown", applied=True, txn_status="pending", at=AFTER)
    return plain(run)


unknown_op_unresolved = pending_transaction


# rule → (check that reports it, how to break a healthy run into it)
BREAKS: dict[str, tuple[str, Break]] = {
    "wrong_content_type": ("clear_errors", wrong_content_type),
    "internal_error": ("clear_errors", internal_error),
    "leaks_internals": ("clear_errors", leaks_internals),
    "not_a_problem": ("clear_errors", not_a_problem),
    "missing_members": ("clear_errors", missing_members),
    "code_not_in_catalog": ("clear_errors", code_not_in_catalog),
    "problem_status_differs_from_http": ("clear_errors", problem_status_differs_from_http),
    "status_differs_from_catalog": ("clear_errors", status_differs_from_catalog),
    "retryable_differs_from_catalog": ("clear_errors", retryable_differs_from_catalog),
    "request_id_mismatch": ("clear_errors", request_id_mismatch),
    "code_not_allowed_in_phase": ("clear_errors", code_not_allowed_in_phase),
    "transport_error_outside_fault": ("clear_errors", transport_error_outside_fault),
    "slower_than_deadline": ("clear_errors", slower_than_deadline),
    "missing_retry_after": ("clear_errors", missing_retry_after),
    "balances_vs_books": ("conservation", balances_vs_books),
    "audit_total_vs_accounts": ("conservation", audit_total_vs_accounts),
    "audit_vs_transactions": ("conservation", audit_vs_transactions),
    "gateway_charged_vs_external_in": ("conservation", gateway_charged_vs_external_in),
    "gateway_paid_out_vs_external_out": ("conservation", gateway_paid_out_vs_external_out),
    "deposits_below_acknowledged": ("conservation", deposits_below_acknowledged),
    "withdrawals_below_acknowledged": ("conservation", withdrawals_below_acknowledged),
    "deposits_above_possible": ("conservation", deposits_above_possible),
    "withdrawals_above_possible": ("conservation", withdrawals_above_possible),
    "deposit_applied_but_not_acknowledged": ("conservation", deposit_applied_but_not_acknowledged),
    "withdrawal_applied_but_not_acknowledged": ("conservation", withdrawal_applied_but_not_acknowledged),
    "acknowledged_write_lost": ("durability", acknowledged_write_lost),
    "acknowledged_write_not_succeeded": ("durability", acknowledged_write_not_succeeded),
    "acknowledged_amount_changed": ("durability", acknowledged_amount_changed),
    "acknowledged_account_lost": ("durability", acknowledged_account_lost),
    "key_applied_more_than_once": ("exactly_once", key_applied_more_than_once),
    "gateway_reference_applied_twice": ("exactly_once", gateway_reference_applied_twice),
    "deposit_without_gateway_charge": ("exactly_once", deposit_without_gateway_charge),
    "withdrawal_without_gateway_payout": ("exactly_once", withdrawal_without_gateway_payout),
    "charged_not_credited": ("exactly_once", charged_not_credited),
    "paid_out_not_debited": ("exactly_once", paid_out_not_debited),
    "deposit_amount_differs_from_gateway": ("exactly_once", deposit_amount_differs_from_gateway),
    "withdrawal_amount_differs_from_gateway": ("exactly_once", withdrawal_amount_differs_from_gateway),
    "balance_not_sum_of_entries": ("ledger", balance_not_sum_of_entries),
    "audit_unbalanced_transaction": ("ledger", audit_unbalanced_transaction),
    "total_balance_vs_ledger_total": ("ledger", total_balance_vs_ledger_total),
    "entries_do_not_sum_to_zero": ("ledger", entries_do_not_sum_to_zero),
    "negative_final_balance": ("no_overdraft", negative_final_balance),
    "audit_negative_account": ("no_overdraft", audit_negative_account),
    "negative_balance_read": ("no_overdraft", negative_balance_read),
    "transaction_without_key": ("no_phantoms", transaction_without_key),
    "transaction_with_unissued_key": ("no_phantoms", transaction_with_unissued_key),
    "never_recovered": ("recovery", never_recovered),
    "recovered_too_late": ("recovery", recovered_too_late),
    "pending_after_reconcile": ("recovery", pending_after_reconcile),
    "pending_transaction": ("recovery", pending_transaction),
    "unknown_op_unresolved": ("recovery", unknown_op_unresolved),
}
# evidence a person needs to follow each kind of counterexample: at least one of these members, non-empty
EVIDENCE = ("op_id", "txn_id", "txn_ids", "account_id", "reference", "idempotency_key", "records", "difference",
            "missing", "excess", "audit_total_balance", "external_in", "total_balance", "still_pending",
            "recovery_time_s", "last_windows")


def judge(check: str, run: RunBuilder, final: Final, ctx: CheckContext) -> CheckResult:
    return CHECKS[check](run.history, final, ctx)


@pytest.mark.parametrize("check", sorted({check for check, _ in BREAKS.values()}))
def test_the_healthy_run_passes(check: str) -> None:
    result = judge(check, *plain(healthy_run()))
    assert result.passed, result.counterexamples


@pytest.mark.parametrize("rule", list(BREAKS))
def test_rule_fires_by_name(rule: str) -> None:
    check, breaker = BREAKS[rule]
    result = judge(check, *breaker(healthy_run()))
    assert not result.passed, f"{check} passed a history broken for {rule}"
    assert rule in result.stats["violations_by_rule"], (rule, result.summary)
    assert rule in result.summary
    example = next(c for c in result.counterexamples if c["rule"] == rule)
    assert any(example.get(k) not in (None, "", [], 0) for k in EVIDENCE), example


def test_every_core_rule_has_a_break() -> None:
    """The table covers every rule the eight core checks declare (new checks bring their own tests)."""
    for check in {check for check, _ in BREAKS.values()}:
        module = __import__(f"walletchaos.checks.{check}", fromlist=["RULES"])
        assert set(module.RULES) == {r for r, (c, _) in BREAKS.items() if c == check}, check


def test_synthetic_balance_drift_breaks_the_ledger_totals() -> None:
    """walletchaos.synth can plant a balance that moved without an entry; ledger names it."""
    run = generate_history(1_000, 3, bug="balance_drift")
    result = CHECKS["ledger"](run.history, run.final, run.ctx())
    assert {"total_balance_vs_ledger_total", "balance_not_sum_of_entries"} <= set(result.stats["violations_by_rule"])
    audit = run.final["export"]["audit"]
    assert audit["total_balance"] != audit["ledger_total"] and len(audit["mismatched_accounts"]) == 1
    clean = generate_history(1_000, 3)
    assert CHECKS["ledger"](clean.history, clean.final, clean.ctx()).passed

