"""conservation, ledger, no_overdraft, exactly_once, durability, no_phantoms on hand-made histories:
the healthy story passes; each broken variant fails naming the op / txn / account responsible."""

from __future__ import annotations

from tests.histories import RunBuilder, healthy_run
from walletchaos.checks import conservation, durability, exactly_once, ledger, no_overdraft, no_phantoms
from walletchaos.checks.base import CheckResult

MONEY_CHECKS = (conservation, ledger, no_overdraft, exactly_once, durability, no_phantoms)


def judge(module, run: RunBuilder, final: dict | None = None) -> CheckResult:  # noqa: ANN001
    return module.check(run.history, run.final() if final is None else final, run.ctx())


def rules(result: CheckResult) -> set[str]:
    return {c["rule"] for c in result.counterexamples}


def test_healthy_run_passes_every_money_check() -> None:
    run = healthy_run()
    for module in MONEY_CHECKS:
        result = judge(module, run)
        assert result.passed, (module.NAME, result.counterexamples)
        assert result.stats["violations"] == 0


# --- durability -----------------------------------------------------------------------------------
def test_lost_acknowledged_deposit_names_the_op() -> None:
    run = healthy_run()
    acked = run.find("deposit", 5000, outcome="ok")  # bob's deposit, acknowledged 201
    run.forget(acked)
    result = judge(durability, run)
    assert not result.passed
    assert result.counterexamples == [{
        "rule": "acknowledged_write_lost", "op_id": acked["op_id"], "kind": "deposit", "txn_id": acked["txn_id"],
        "idempotency_key": acked["idempotency_key"], "request_id": acked["request_id"], "amount": 5000}]


def test_acknowledged_write_that_ends_failed_or_with_another_amount() -> None:
    run = healthy_run()
    final = run.final()
    txns = final["export"]["transactions"]
    txns[0]["status"] = "failed"
    txns[1]["amount"] += 1
    result = judge(durability, run, final)
    assert rules(result) == {"acknowledged_write_not_succeeded", "acknowledged_amount_changed"}


def test_lost_registration() -> None:
    run = healthy_run()
    final = run.final()
    final["export"]["accounts"] = [a for a in final["export"]["accounts"] if a["account_id"] != "bob"]
    result = judge(durability, run, final)
    assert [c["account_id"] for c in result.counterexamples] == ["bob"]


def test_unknown_write_that_never_happened_is_not_a_durability_finding() -> None:
    run = RunBuilder()
    run.register("alice")
    run.deposit("alice", 100, outcome="unknown", applied=False)
    assert judge(durability, run).passed


# --- exactly_once / conservation ------------------------------------------------------------------
def test_gateway_charge_without_credit() -> None:
    run = healthy_run()
    failed = run.find("deposit", code="DATABASE_UNAVAILABLE")
    run.gateway_charge("txn-ghost", failed["args"]["amount"])  # charged though the wallet said 503
    eo = judge(exactly_once, run)
    assert not eo.passed
    assert eo.counterexamples == [{"rule": "charged_not_credited", "reference": "txn-ghost", "amount": 50,
                                   "txn_id": None, "wallet_status": None}]
    cons = judge(conservation, run)
    assert "gateway_charged_vs_external_in" in rules(cons)
    assert cons.stats["gateway_charged"] - cons.stats["external_in"] == 50


def test_succeeded_withdrawal_without_payout() -> None:
    run = healthy_run()
    run.payouts.clear()
    result = judge(exactly_once, run)
    assert rules(result) == {"withdrawal_without_gateway_payout"}
    assert result.counterexamples[0]["amount"] == 1000


def test_gateway_amount_differs() -> None:
    run = healthy_run()
    run.charges[0]["amount"] += 5
    assert rules(judge(exactly_once, run)) == {"deposit_amount_differs_from_gateway"}


def test_key_applied_twice_is_caught_by_exactly_once_and_conservation() -> None:
    run = healthy_run()
    op = run.find("deposit", 10_000)
    dup = run.apply("deposit", 10_000, None, "alice", op["idempotency_key"])
    eo = judge(exactly_once, run)
    assert eo.counterexamples[0]["rule"] == "key_applied_more_than_once"
    assert eo.counterexamples[0]["txn_ids"] == [op["txn_id"], dup["transaction_id"]]
    cons = judge(conservation, run)
    assert "deposits_above_possible" in rules(cons)
    assert {"rule": "deposit_applied_but_not_acknowledged", "txn_id": dup["transaction_id"],
            "idempotency_key": op["idempotency_key"], "amount": 10_000} not in cons.counterexamples  # key IS acked
    assert cons.stats["client_bounds"]["deposit"]["actual"] - cons.stats["client_bounds"]["deposit"]["possible"] \
        == 10_000


def test_same_key_used_by_two_users_is_not_a_duplicate() -> None:
    run = RunBuilder()
    run.register("alice")
    run.register("bob")
    run.deposit("alice", 100, key="shared")
    run.deposit("bob", 100, key="shared")
    assert judge(exactly_once, run).passed


def test_gateway_reference_applied_twice() -> None:
    run = healthy_run()
    run.charges.append(dict(run.charges[0]))
    assert "gateway_reference_applied_twice" in rules(judge(exactly_once, run))


def test_conservation_balances_vs_books() -> None:
    run = healthy_run()
    final = run.final()
    final["export"]["accounts"][0]["balance"] += 1  # money from nowhere
    result = judge(conservation, run, final)
    assert {"balances_vs_books", "audit_total_vs_accounts"} <= rules(result)
    assert next(c for c in result.counterexamples if c["rule"] == "balances_vs_books")["difference"] == 1


def test_conservation_deposit_applied_although_client_was_told_it_failed() -> None:
    run = healthy_run()
    failed = run.find("deposit", code="DATABASE_UNAVAILABLE")
    txn = run.apply("deposit", 50, None, "bob", failed["idempotency_key"])  # 503 but applied (and charged)
    result = judge(conservation, run)
    assert {"rule": "deposit_applied_but_not_acknowledged", "txn_id": txn["transaction_id"],
            "idempotency_key": failed["idempotency_key"], "amount": 50} in result.counterexamples


def test_conservation_counts_retried_keys_once() -> None:
    run = RunBuilder()
    run.register("alice")
    first = run.deposit("alice", 100, outcome="unknown", applied=True)
    retry = run.op("deposit", outcome="ok", status=201, args={"amount": 100, "to_account_id": "alice"},
                   idempotency_key=first["idempotency_key"], txn_id=run.txn_of(first)["transaction_id"])
    assert retry["idempotency_key"] == first["idempotency_key"]
    result = judge(conservation, run)
    assert result.passed, result.counterexamples
    assert result.stats["client_bounds"]["deposit"] == {"acknowledged": 100, "possible": 100, "actual": 100}


def test_conservation_audit_disagrees_with_transactions() -> None:
    run = healthy_run()
    final = run.final()
    final["export"]["audit"]["external_out"] += 7
    assert "audit_vs_transactions" in rules(judge(conservation, run, final))


# --- ledger / no_overdraft / no_phantoms -------------------------------------------------------------
def test_ledger_unbalanced_transaction_and_mismatched_account() -> None:
    run = healthy_run()
    final = run.final()
    final["export"]["transactions"][2]["entries_sum"] = 3
    final["export"]["audit"]["mismatched_accounts"] = ["alice"]
    result = judge(ledger, run, final)
    assert not result.passed
    assert {"rule": "entries_do_not_sum_to_zero", "txn_id": "txn-3", "kind": "transfer", "status": "succeeded",
            "entries_sum": 3} in result.counterexamples
    assert {"rule": "balance_not_sum_of_entries", "account_id": "alice"} in result.counterexamples


def test_negative_balance_read_names_op_and_account() -> None:
    run = healthy_run()
    bad = run.balance("bob", value=-1)
    result = judge(no_overdraft, run)
    assert result.counterexamples == [{"rule": "negative_balance_read", "op_id": bad["op_id"], "account_id": "bob",
                                       "request_id": bad["request_id"], "balance": -1, "ts": bad["invoke_ts"]}]


def test_negative_final_balance_and_audit() -> None:
    run = healthy_run()
    final = run.final()
    final["export"]["accounts"][1]["balance"] = -5
    final["export"]["audit"]["negative_accounts"] = ["bob"]
    assert rules(judge(no_overdraft, run, final)) == {"negative_final_balance", "audit_negative_account"}


def test_phantom_transactions() -> None:
    run = healthy_run()
    keyless = run.apply("transfer", 1, "alice", "bob", key=None)
    stranger = run.apply("deposit", 9, None, "alice", key="never-sent")
    result = judge(no_phantoms, run)
    assert [(c["rule"], c["txn_id"]) for c in result.counterexamples] == [
        ("transaction_without_key", keyless["transaction_id"]),
        ("transaction_with_unissued_key", stranger["transaction_id"])]


def test_counterexamples_are_capped_but_all_counted() -> None:
    run = RunBuilder()
    run.register("alice")
    for i in range(30):
        run.balance("alice", value=-i - 1)
    result = judge(no_overdraft, run)
    assert len(result.counterexamples) == 20 and result.stats["violations"] == 30
    assert "30 violation(s)" in result.summary


def test_acknowledged_write_without_key_is_matched_by_its_txn_id() -> None:
    run = RunBuilder()
    run.register("alice")
    txn = run.apply("deposit", 100, None, "alice", key=None)
    run.op("deposit", outcome="ok", status=201, args={"amount": 100}, txn_id=txn["transaction_id"])
    assert judge(durability, run).passed
    run.txns.remove(txn)
    assert rules(judge(durability, run)) == {"acknowledged_write_lost"}
