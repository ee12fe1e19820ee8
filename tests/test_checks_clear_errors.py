"""clear_errors: contract problems only, no leaks, no 500s, within the deadline, codes allowed per phase,
transport errors only during faults (+ grace)."""

from __future__ import annotations

import pytest

from tests.histories import T0, RunBuilder, healthy_run, problem_body
from walletchaos.checks import clear_errors
from walletchaos.checks.base import CheckContext, CheckResult
from walletchaos.checks.clear_errors import find_leak
from walletchaos.history import annotate_phases


def judge(run: RunBuilder, ctx: CheckContext | None = None) -> CheckResult:
    annotate_phases(run.history, run.events)
    return clear_errors.check(run.history, run.final(), ctx or run.ctx())


def rules(result: CheckResult) -> set[str]:
    return {c["rule"] for c in result.counterexamples}


def test_healthy_run_passes() -> None:
    result = judge(healthy_run())
    assert result.passed, result.counterexamples
    assert result.stats["error_responses"] == 3 and result.stats["transport_errors"] == 3


def test_html_500_with_traceback_names_the_request() -> None:
    run = healthy_run()
    bad = run.op("balance", outcome="fail", status=500, content_type="text/html", request_id="req-html",
                 body_excerpt='<html><pre>Traceback (most recent call last):\n  File "/app/db.py"</pre></html>')
    result = judge(run)
    assert not result.passed
    assert rules(result) == {"wrong_content_type", "internal_error", "leaks_internals", "not_a_problem"}
    assert {c["request_id"] for c in result.counterexamples} == {"req-html"}
    assert {c["op_id"] for c in result.counterexamples} == {bad["op_id"]}


def test_503_outside_allowed_codes_and_phases() -> None:
    run = healthy_run()
    run.phase("late", at=T0 + 500)
    run.at(T0 + 500)  # long after the fault and its grace period
    late = run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
    result = judge(run)
    assert result.counterexamples == [{"rule": "code_not_allowed_in_phase", "op_id": late["op_id"],
                                       "request_id": late["request_id"], "kind": "balance", "status": 503,
                                       "code": "DATABASE_UNAVAILABLE", "phase": "late",
                                       "problem_code": "DATABASE_UNAVAILABLE"}]


def test_code_allowed_only_if_the_scenario_lists_it() -> None:
    run = healthy_run()
    strict = run.ctx(errors_allowed=())
    result = judge(run, strict)
    assert rules(result) == {"code_not_allowed_in_phase"}
    assert {c["code"] for c in result.counterexamples} == {"DATABASE_UNAVAILABLE"}


def test_wildcard_phase_allows_everywhere() -> None:
    run = healthy_run()
    run.at(T0 + 5)  # warmup, before any fault
    run.error("deposit", "RATE_LIMITED", account="alice")
    assert rules(judge(run)) == {"code_not_allowed_in_phase"}
    overload_ok = CheckContext(errors_allowed={"fault": frozenset({"DATABASE_UNAVAILABLE"}),
                                               "*": frozenset({"RATE_LIMITED"})},
                               fault_windows=run.ctx().fault_windows)
    assert judge(run, overload_ok).passed


def test_straggler_within_grace_after_fault_is_allowed() -> None:
    run = healthy_run()
    run.at(T0 + 22)  # 2 s after the fault ended, phase "recover"
    run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
    assert judge(run).passed
    assert not judge(run, run.ctx(grace_s=1.0)).passed


@pytest.mark.parametrize(("member", "value", "rule"), [
    ("code", "SOMETHING_ELSE", "code_not_in_catalog"),
    ("status", 500, "problem_status_differs_from_http"),
    ("retryable", False, "retryable_differs_from_catalog"),
    ("request_id", None, "missing_members"),
    ("detail", "", "missing_members"),
    ("request_id", "another-id", "request_id_mismatch"),
    ("detail", "SELECT * FROM accounts failed", "leaks_internals"),
    ("detail", "cannot reach 10.0.0.12:5432", "leaks_internals"),
    ("detail", "asyncpg.exceptions.TooManyConnectionsError", "leaks_internals"),
])
def test_malformed_problem_members(member: str, value: object, rule: str) -> None:
    run = healthy_run()
    run.at(T0 + 12)
    op = run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
    op["problem"] = problem_body("DATABASE_UNAVAILABLE", op["request_id"], **{member: value})
    result = judge(run)
    assert rule in rules(result)
    assert all(c["op_id"] == op["op_id"] for c in result.counterexamples)


def test_status_must_match_catalog_for_the_code() -> None:
    run = healthy_run()
    run.at(T0 + 12)
    op = run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
    op["status"] = op["problem"]["status"] = 500  # right code, wrong status
    assert {"status_differs_from_catalog", "internal_error"} <= rules(judge(run))


def test_wrong_content_type_for_a_json_problem() -> None:
    run = healthy_run()
    run.at(T0 + 12)
    op = run.error("balance", "DATABASE_UNAVAILABLE", account="alice")
    op["content_type"] = "application/json"
    assert rules(judge(run)) == {"wrong_content_type"}
    op["content_type"] = "application/problem+json; charset=utf-8"
    assert judge(run).passed


def test_slow_response_beyond_deadline() -> None:
    run = healthy_run()
    slow = run.balance("alice", latency_ms=7_000)
    strict = frozenset({"wallet_api", "wallet"})  # the run's fault is on wallet_db: no excuse for slowness
    result = judge(run, run.ctx(deadline_s=5.0, deadline_slack_s=0.5, transport_fault_targets=strict))
    slow_findings = [c for c in result.counterexamples if c["rule"] == "slower_than_deadline"]
    assert slow_findings == [{"rule": "slower_than_deadline", "op_id": slow["op_id"],
                                       "request_id": slow["request_id"], "kind": "balance", "status": 200,
                                       "code": None, "phase": "final", "latency_ms": 7000.0, "limit_ms": 5500.0}]
    assert "slower_than_deadline" not in str(judge(run, run.ctx(deadline_s=7.0, transport_fault_targets=strict)).counterexamples)
    # a fault on the client path (any target counts when transport_fault_targets is None) excuses it
    assert judge(run, run.ctx(deadline_s=5.0, deadline_slack_s=0.5)).passed


def test_transport_error_outside_fault_window() -> None:
    run = healthy_run()
    run.at(T0 + 3)
    early = run.transport_error("balance", error="ConnectError")
    result = judge(run)
    assert [(c["rule"], c["op_id"], c["error"]) for c in result.counterexamples] == [
        ("transport_error_outside_fault", early["op_id"], "ConnectError")]


def test_transport_errors_can_be_restricted_to_client_facing_fault_targets() -> None:
    run = healthy_run()  # its fault is on wallet_db: the wallet should have answered 503, not hung up
    strict = run.ctx(transport_fault_targets=frozenset({"wallet_api", "wallet"}))
    result = judge(run, strict)
    assert rules(result) == {"transport_error_outside_fault"} and result.stats["violations"] == 3


def test_find_leak_ignores_plain_words() -> None:
    assert find_leak("please select an account; the update failed") is None
    assert find_leak("Insufficient funds: balance 12.50 below 20.00") is None
    assert find_leak("connect to localhost failed") == "localhost"
    assert find_leak("UPDATE accounts SET balance") is not None


def test_catalog_mirrors_the_contract_table() -> None:
    """checks/catalog.py is the contract's error table as data; fail loudly if the two drift apart."""
    import re
    from pathlib import Path

    from walletchaos.checks.catalog import CATALOG

    contract = Path(__file__).resolve().parents[2] / "shared" / "CONTRACT.md"
    if not contract.exists():
        pytest.skip("CONTRACT.md not next to the repo")
    rows = re.findall(r"^\| ([A-Z_]+) \| (\d{3}) \| (yes|no) \|", contract.read_text(), re.M)
    assert len(rows) == 19
    assert {code: (int(status), retry == "yes") for code, status, retry in rows} == \
        {code: (e.status, e.retryable) for code, e in CATALOG.items()}


def _late_retry(key: str) -> RunBuilder:
    """healthy_run's fault refused a withdrawal with a fault code; long after it, a request with `key`."""
    run = healthy_run()
    run.at(T0 + 15)
    run.withdrawal("bob", 10, outcome="fail", code="DATABASE_UNAVAILABLE", key="k-fault")
    run.phase("late", at=T0 + 500)
    run.at(T0 + 500)
    run.withdrawal("bob", 10, outcome="fail", code="DATABASE_UNAVAILABLE", key=key)
    return run


def test_a_late_retry_replaying_the_faults_recorded_outcome_is_allowed() -> None:
    assert judge(_late_retry("k-fault")).passed


def test_a_fresh_request_with_a_fault_code_long_after_the_fault_is_not() -> None:
    assert rules(judge(_late_retry("k-new"))) == {"code_not_allowed_in_phase"}
