"""The security invariants, each both ways: a correct history passes, a broken one fails with a
counterexample naming the op / request / account / transaction (authorization, credentials,
frozen_accounts, honest_refusals, server_logs, and Retry-After in clear_errors)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.histories import T0, RunBuilder, healthy_run
from walletchaos.checks import (CHECKS, authorization, clear_errors, credentials, frozen_accounts, honest_refusals,
                                server_logs)
from walletchaos.checks.base import CheckResult
from walletchaos.history import annotate_phases
from walletchaos.server_logs import parse_service_log, read_server_logs


def rules(result: CheckResult) -> set[str]:
    return {c["rule"] for c in result.counterexamples}


def tag(op: dict[str, Any], value: str, target_owner: str | None = None) -> dict[str, Any]:
    op["tag"] = value
    op["target_owner"] = target_owner
    return op


def people() -> RunBuilder:
    run = RunBuilder()
    run.phase("warmup", at=T0)
    for name in ("alice", "bob"):
        run.register(name, owner_user=name)
    run.deposit("alice", 10_000, owner_user="alice")
    run.deposit("bob", 5_000, owner_user="bob")
    return run


def test_new_invariants_are_registered() -> None:
    for name in ("authorization", "credentials", "frozen_accounts", "honest_refusals", "server_logs"):
        assert name in CHECKS


# --- authorization ----------------------------------------------------------------------------------------
def attacks(run: RunBuilder) -> None:
    """bob attacks alice the way the intruder load does; a correct wallet refuses every attempt."""
    run.balance("bob", owner_user="bob", args={"account_id": "bob"})
    tag(run.error("balance", "ACCOUNT_NOT_FOUND", owner_user="bob", args={"account_id": "alice"}), "intrusion", "alice")
    tag(run.error("history", "ACCOUNT_NOT_FOUND", owner_user="bob", args={"account_id": "alice"}), "intrusion", "alice")
    tag(run.error("lookup", "TRANSACTION_NOT_FOUND", owner_user="bob", args={"transaction_id": "txn-1"}),
        "intrusion", "alice")
    tag(run.transfer("alice", "bob", 500, outcome="fail", code="ACCOUNT_NOT_FOUND", owner_user="bob"),
        "intrusion", "alice")
    tag(run.error("lookup", "TRANSACTION_NOT_FOUND", owner_user="bob", args={"idempotency_key": "key-3"}),
        "key_replay", "alice")
    tag(run.transfer("alice", "bob", 700, outcome="fail", code="ACCOUNT_NOT_FOUND", owner_user="bob", key="key-3"),
        "key_replay", "alice")
    tag(run.error("balance", "UNAUTHENTICATED", owner_user="bob", args={"account_id": "bob"}), "bad_token")


def test_authorization_passes_when_every_attack_is_refused() -> None:
    run = people()
    attacks(run)
    result = authorization.check(run.history, run.final(), run.ctx())
    assert result.passed, result.counterexamples
    assert result.stats["attacks"] == {"bad_token": 1, "intrusion_read": 3, "intrusion_write": 1,
                                       "key_replay_lookup": 1, "key_replay_write": 1}
    assert result.stats["attacks_refused"] == 7


def test_authorization_foreign_read_served() -> None:
    run = people()
    attacks(run)
    served = tag(run.balance("alice", owner_user="bob", args={"account_id": "alice"}), "intrusion", "alice")
    quiet = run.balance("alice", owner_user="bob", args={"account_id": "alice"})  # untagged: same class
    result = authorization.check(run.history, run.final(), run.ctx())
    assert not result.passed
    by_rule = {c["rule"]: c for c in result.counterexamples}
    assert by_rule["attack_not_refused"]["op_id"] == served["op_id"]
    assert by_rule["attack_not_refused"]["expected"] == "ACCOUNT_NOT_FOUND"
    assert by_rule["foreign_account_read"]["op_id"] == quiet["op_id"]
    assert by_rule["foreign_account_read"]["account_owner"] == "alice"
    assert by_rule["foreign_account_read"]["actor"] == "bob"
    assert by_rule["foreign_account_read"]["request_id"] == quiet["request_id"]


def test_authorization_foreign_transaction_read() -> None:
    run = people()
    alice_txn = run.txns[0]["transaction_id"]
    op = run.op("lookup", outcome="ok", status=200, owner_user="bob", args={"transaction_id": alice_txn},
                txn_id=alice_txn)
    result = authorization.check(run.history, run.final(), run.ctx())
    assert rules(result) == {"foreign_transaction_read"}
    assert result.counterexamples[0]["op_id"] == op["op_id"] and result.counterexamples[0]["txn_owner"] == "alice"


def test_authorization_foreign_debit_client_and_ledger_view() -> None:
    run = people()
    stolen = run.transfer("alice", "bob", 900, owner_user="bob")  # acknowledged: the wallet let bob debit alice
    run.txn_of(stolen)["user_id"] = "user-bob"  # created by bob's request
    result = authorization.check(run.history, run.final(), run.ctx())
    assert rules(result) == {"foreign_account_debit", "debit_by_non_owner"}
    ledger = next(c for c in result.counterexamples if c["rule"] == "debit_by_non_owner")
    assert ledger["account_id"] == "alice" and ledger["created_by"] == "bob"
    assert ledger["txn_id"] == run.txn_of(stolen)["transaction_id"]


def test_authorization_ledger_catches_a_debit_the_client_never_learned() -> None:
    run = people()
    lost = tag(run.withdrawal("alice", 300, outcome="unknown", applied=True, owner_user="bob"), "intrusion", "alice")
    run.txn_of(lost)["user_id"] = "user-bob"
    result = authorization.check(run.history, run.final(), run.ctx())
    assert rules(result) == {"debit_by_non_owner"}


def test_authorization_replayed_key_applied() -> None:
    run = people()
    replay = tag(run.transfer("alice", "bob", 700, outcome="unknown", applied=True, owner_user="bob", key="key-3"),
                 "key_replay", "alice")
    txn = run.txns[-1]
    txn["user_id"] = "user-bob"
    result = authorization.check(run.history, run.final(), run.ctx())
    assert "replayed_key_applied" in rules(result)
    hit = next(c for c in result.counterexamples if c["rule"] == "replayed_key_applied")
    assert hit["op_id"] == replay["op_id"] and hit["txn_id"] == txn["transaction_id"]


def test_authorization_infra_refusal_allowed_in_phase_is_not_judged() -> None:
    run = people()
    run.phase("fault", at=run.clock + 1)
    run.fault(run.clock + 1, run.clock + 5)
    run.at(run.clock + 1.5)
    tag(run.error("balance", "DATABASE_UNAVAILABLE", owner_user="bob", args={"account_id": "alice"}), "intrusion")
    annotate_phases(run.history, run.events)
    assert authorization.check(run.history, run.final(), run.ctx()).passed
    strict = authorization.check(run.history, run.final(), run.ctx(errors_allowed=()))
    assert rules(strict) == {"attack_not_refused"}


# --- credentials ------------------------------------------------------------------------------------------
def login(run: RunBuilder, user: str, code: str | None, *, tag_: str = "brute_force", actor: str = "bob",
          at: float | None = None) -> dict[str, Any]:
    if code is None:
        op = run.op("login", outcome="ok", status=200, owner_user=actor, args={"username": user}, at=at)
    else:
        op = run.error("login", code, owner_user=actor, args={"username": user}, at=at)
    return tag(op, tag_, user if actor != user else None)


def test_credentials_lockout_after_five_failures_passes() -> None:
    run = people()
    for _ in range(4):
        login(run, "alice", "INVALID_CREDENTIALS")
    for _ in range(5):
        login(run, "alice", "ACCOUNT_LOCKED")
    result = credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0))
    assert result.passed, result.counterexamples
    assert result.stats["attempts"]["password_guess"] == 9
    assert result.stats["locked_answers"] == {"login": 5, "pin": 0}


def test_credentials_no_lockout_fails_on_the_sixth_attempt() -> None:
    run = people()
    ops = [login(run, "alice", "INVALID_CREDENTIALS") for _ in range(8)]
    result = credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0))
    assert rules(result) == {"login_not_locked"}
    first = result.counterexamples[0]
    assert first["op_id"] == ops[5]["op_id"] and first["user"] == "alice" and first["code"] == "INVALID_CREDENTIALS"
    assert result.stats["violations"] == 3


def test_credentials_unknown_username_has_nothing_to_lock() -> None:
    """Failed logins to a name nobody registered (a fuzzer's, a typo's) lock no account: not judged."""
    run = people()
    for _ in range(8):
        login(run, "nobody", "INVALID_CREDENTIALS")
    assert credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0)).passed
    ops = [login(run, "alice", "INVALID_CREDENTIALS") for _ in range(6)]  # a known user is still judged
    result = credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0))
    assert rules(result) == {"login_not_locked"} and result.counterexamples[0]["op_id"] == ops[5]["op_id"]


def test_credentials_in_flight_attempt_is_tolerated() -> None:
    run = people()
    for _ in range(5):
        login(run, "alice", "INVALID_CREDENTIALS")
    last = run.history[-1]
    # sent before the fifth failure was answered: the wallet may have judged it before the lock
    early = login(run, "alice", "INVALID_CREDENTIALS", at=last["invoke_ts"] + 0.001)
    early["complete_ts"] = last["complete_ts"] + 0.2
    run.history.sort(key=lambda o: o["invoke_ts"])
    assert credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0)).passed


def test_credentials_sign_in_works_after_the_window() -> None:
    run = people()
    for _ in range(4):
        login(run, "bob", "INVALID_CREDENTIALS", actor="bob")
    locked = login(run, "bob", "ACCOUNT_LOCKED", actor="bob")
    login(run, "bob", "ACCOUNT_LOCKED", tag_="relogin", actor="bob", at=locked["complete_ts"] + 1.0)
    ok_run = RunBuilder()
    ok_run.__dict__.update({k: (list(v) if isinstance(v, list) else v) for k, v in run.__dict__.items()})
    login(ok_run, "bob", None, tag_="relogin", actor="bob", at=locked["complete_ts"] + 4.0)
    assert credentials.check(ok_run.history, ok_run.final(), ok_run.ctx(lockout_s=3.0)).passed
    late = login(run, "bob", "ACCOUNT_LOCKED", tag_="relogin", actor="bob", at=locked["complete_ts"] + 4.0)
    result = credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0))
    assert rules(result) == {"login_still_locked_after_window"}
    assert result.counterexamples[0]["op_id"] == late["op_id"]


def pin_guess(run: RunBuilder, code: str) -> dict[str, Any]:
    return tag(run.withdrawal("bob", 100, outcome="fail", code=code, owner_user="bob"), "pin_guess")


def test_credentials_pin_lockout() -> None:
    run = people()
    for _ in range(4):
        pin_guess(run, "INVALID_PIN")
    for _ in range(3):
        pin_guess(run, "ACCOUNT_LOCKED")
    assert credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0)).passed
    broken = people()
    guesses = [pin_guess(broken, "INVALID_PIN") for _ in range(7)]
    paid = broken.withdrawal("bob", 200, owner_user="bob")  # the right PIN, inside the lock
    result = credentials.check(broken.history, broken.final(), broken.ctx(lockout_s=3.0))
    assert rules(result) == {"pin_not_locked"}
    assert [c["op_id"] for c in result.counterexamples] == [guesses[5]["op_id"], guesses[6]["op_id"], paid["op_id"]]


def test_credentials_pin_works_after_the_window() -> None:
    """The PIN lock ends too: the owner paying with the right PIN (tagged relogin) after lockout_s succeeds."""
    def locked_out() -> tuple[RunBuilder, dict[str, Any]]:
        run = people()
        for _ in range(4):
            pin_guess(run, "INVALID_PIN")
        return run, pin_guess(run, "ACCOUNT_LOCKED")

    def pay_again(run: RunBuilder, at: float, **kw: Any) -> dict[str, Any]:
        return tag(run.withdrawal("bob", 100, owner_user="bob", at=at, **kw), "relogin")

    ok_run, locked = locked_out()
    pay_again(ok_run, locked["complete_ts"] + 4.0)
    assert credentials.check(ok_run.history, ok_run.final(), ok_run.ctx(lockout_s=3.0)).passed
    run, locked = locked_out()
    pay_again(run, locked["complete_ts"] + 1.0, outcome="fail", code="ACCOUNT_LOCKED")  # still inside: fine
    late = pay_again(run, locked["complete_ts"] + 4.0, outcome="fail", code="ACCOUNT_LOCKED")
    result = credentials.check(run.history, run.final(), run.ctx(lockout_s=3.0))
    assert rules(result) == {"pin_still_locked_after_window"}
    ce = result.counterexamples[0]
    assert ce["op_id"] == late["op_id"] and ce["user"] == "bob" and ce["locked_since"] == locked["complete_ts"]


def test_credentials_wrong_pin_never_pays() -> None:
    run = people()
    tag(run.withdrawal("bob", 100, outcome="fail", code="INVALID_PIN", owner_user="bob"), "wrong_pin")
    assert credentials.check(run.history, run.final(), run.ctx()).passed
    accepted = tag(run.withdrawal("bob", 150, owner_user="bob"), "wrong_pin")
    hidden = tag(run.withdrawal("bob", 250, outcome="unknown", applied=True, owner_user="bob"), "pin_guess")
    result = credentials.check(run.history, run.final(), run.ctx())
    assert rules(result) == {"wrong_pin_accepted", "wrong_pin_moved_money"}
    moved = next(c for c in result.counterexamples if c["rule"] == "wrong_pin_moved_money")
    assert moved["op_id"] == hidden["op_id"] and moved["txn_id"] == run.txn_of(hidden)["transaction_id"]
    assert next(c for c in result.counterexamples if c["rule"] == "wrong_pin_accepted")["op_id"] == accepted["op_id"]


# --- frozen_accounts --------------------------------------------------------------------------------------
def frozen_run() -> tuple[RunBuilder, float, float]:
    run = people()
    start, end = T0 + 10, T0 + 16
    run.phase("fault", at=start)
    run.events.append({"ts": start, "kind": "fault_start", "name": "freeze-accounts", "target": "wallet",
                       "details": {"fault": "freeze", "count": 1, "accounts": ["alice"],
                                   "frozen_at": {"alice": start + 0.2}}})
    run.events.append({"ts": end + 0.1, "kind": "fault_end", "name": "freeze-accounts", "target": "wallet",
                       "details": {"fault": "freeze", "accounts": ["alice"], "unfreezing_at": {"alice": end}}})
    for t in run.txns:
        t["created_ts"] = T0 + 0.5
    run.at(start + 1)
    return run, start, end


def judge_frozen(run: RunBuilder) -> CheckResult:
    annotate_phases(run.history, run.events)
    return frozen_accounts.check(run.history, run.final(), run.ctx())


def test_frozen_account_refused_passes() -> None:
    run, _, _ = frozen_run()
    run.transfer("alice", "bob", 100, outcome="fail", code="ACCOUNT_FROZEN", owner_user="alice")
    run.deposit("alice", 100, outcome="fail", code="ACCOUNT_FROZEN", owner_user="alice")
    run.transfer("bob", "alice", 100, outcome="fail", code="ACCOUNT_FROZEN", owner_user="bob")
    run.transfer("bob", "bob2", 100, outcome="fail", code="VALIDATION_ERROR", owner_user="bob")
    result = judge_frozen(run)
    assert result.passed, result.counterexamples
    assert result.stats["answered_account_frozen"] == 3


def test_frozen_account_money_moved() -> None:
    run, start, end = frozen_run()
    moved = run.transfer("alice", "bob", 100, owner_user="alice")
    run.txn_of(moved)["created_ts"] = moved["invoke_ts"] + 0.01
    wrong = run.transfer("bob", "alice", 100, outcome="fail", code="GATEWAY_ERROR", owner_user="bob")
    result = judge_frozen(run)
    assert rules(result) == {"moved_while_frozen", "acknowledged_while_frozen", "wrong_refusal"}
    ledger = next(c for c in result.counterexamples if c["rule"] == "moved_while_frozen")
    assert ledger["account_id"] == "alice" and ledger["txn_id"] == run.txn_of(moved)["transaction_id"]
    assert ledger["frozen_from"] == start + 0.2 and ledger["frozen_until"] == end
    assert next(c for c in result.counterexamples if c["rule"] == "wrong_refusal")["op_id"] == wrong["op_id"]


def test_frozen_account_after_unfreeze_is_fine() -> None:
    run, _, end = frozen_run()
    run.at(end + 0.5)
    after = run.transfer("alice", "bob", 100, owner_user="alice")
    run.txn_of(after)["created_ts"] = after["invoke_ts"]
    assert judge_frozen(run).passed


def test_a_freeze_that_froze_nothing_does_not_pass() -> None:
    run = people()
    run.events.append({"ts": T0 + 5, "kind": "fault_start", "name": "freeze-accounts", "target": "wallet",
                       "details": {"fault": "freeze", "count": 3, "accounts": [], "frozen_at": {}}})
    assert rules(frozen_accounts.check(run.history, run.final(), run.ctx())) == {"freeze_froze_nothing"}
    assert frozen_accounts.check(people().history, people().final(), people().ctx()).passed  # no freeze: fine


def test_frozen_accounts_without_server_times_is_not_a_pass() -> None:
    run, _, _ = frozen_run()
    run.transfer("alice", "bob", 100, outcome="fail", code="ACCOUNT_FROZEN", owner_user="alice")
    assert judge_frozen(run).passed
    for t in run.txns:  # an export whose transactions carry no server time: the ledger side is blind
        del t["created_ts"]
    result = judge_frozen(run)
    assert rules(result) == {"no_server_times"}
    assert result.counterexamples[0]["transactions"] == result.stats["txns_without_time"] > 0


# --- honest_refusals --------------------------------------------------------------------------------------
def test_refusal_with_its_own_effect() -> None:
    run = healthy_run()
    liar = run.deposit("bob", 77, outcome="fail", applied=True, code="DATABASE_UNAVAILABLE")
    run.txn_of(liar)["created_ts"] = liar["invoke_ts"] + 0.005
    result = honest_refusals.check(run.history, run.final(), run.ctx())
    assert rules(result) == {"refusal_with_effect"}
    c = result.counterexamples[0]
    assert c["op_id"] == liar["op_id"] and c["txn_id"] == run.txn_of(liar)["transaction_id"]
    assert c["code"] == "DATABASE_UNAVAILABLE" and c["request_id"] == liar["request_id"]


def test_refusal_replaying_an_earlier_effect_or_overlapping_attempt_is_fine() -> None:
    run = healthy_run()
    first = run.deposit("bob", 77, outcome="unknown", applied=True, key="k-retry")
    run.txn_of(first)["created_ts"] = first["invoke_ts"] + 0.005
    run.deposit("bob", 77, outcome="fail", applied=False, code="DATABASE_UNAVAILABLE", key="k-retry")
    assert honest_refusals.check(run.history, run.final(), run.ctx()).passed
    # the effect appeared while the refused attempt AND another attempt of the key were in flight
    run2 = healthy_run()
    a = run2.deposit("bob", 88, outcome="unknown", applied=True, key="k2")
    b = run2.deposit("bob", 88, outcome="fail", applied=False, code="DATABASE_UNAVAILABLE", key="k2",
                     at=a["invoke_ts"] + 0.001)
    a["complete_ts"] = b["complete_ts"] + 1
    run2.txn_of(a)["created_ts"] = b["invoke_ts"] + 0.005
    assert honest_refusals.check(run2.history, run2.final(), run2.ctx()).passed
    # a failed transaction moved nothing (a GATEWAY_ERROR after the hold was reversed)
    run3 = healthy_run()
    g = run3.withdrawal("bob", 99, outcome="fail", applied=True, code="GATEWAY_ERROR", txn_status="failed")
    run3.txn_of(g)["created_ts"] = g["invoke_ts"] + 0.005
    assert honest_refusals.check(run3.history, run3.final(), run3.ctx(errors_allowed=("GATEWAY_ERROR",))).passed


# --- Retry-After (clear_errors) ---------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["RATE_LIMITED", "MAINTENANCE"])
def test_retry_after_required(code: str) -> None:
    run = healthy_run()
    with_header = run.error("balance", code, account="alice", retry_after="3")
    without = run.error("balance", code, account="alice", retry_after=None)
    annotate_phases(run.history, run.events)
    ctx = run.ctx(errors_allowed=("DATABASE_UNAVAILABLE", code), allowed_phases=("*",))
    result = clear_errors.check(run.history, run.final(), ctx)
    assert rules(result) == {"missing_retry_after"}
    assert [c["op_id"] for c in result.counterexamples] == [without["op_id"]]
    assert with_header["op_id"] != without["op_id"]


def test_retry_after_http_date_is_valid() -> None:
    assert clear_errors.valid_retry_after("Wed, 21 Oct 2015 07:28:00 GMT")
    assert clear_errors.valid_retry_after("120")
    assert not clear_errors.valid_retry_after("soon")
    assert not clear_errors.valid_retry_after(None)


# --- server logs ------------------------------------------------------------------------------------------
WALLET_LOG = "\n".join([
    '{"ts": 1010.0, "level": "info", "msg": "started"}',
    '{"ts": 1012.0, "level": "error", "msg": "gateway call failed", "exc": "Traceback...\\nOSError: boom"}',
    "Traceback (most recent call last):",
    '  File "x.py", line 1',
])
PG_LOG = "\n".join([
    "2026-12-02 15:44:41.153 UTC [16067] LOG:  database system is ready",
    "1970-01-01 00:16:52.000 UTC [1] FATAL:  terminating connection due to unexpected postmaster exit",
    "1970-01-01 00:16:53.000 UTC [2] ERROR:  deadlock detected",
    "ERROR:  something without a time",
])


def test_parse_service_logs() -> None:
    wallet = parse_service_log("wallet", WALLET_LOG)
    assert [(r["line"], r["level"], r["ts"]) for r in wallet] == [(2, "ERROR", 1012.0), (3, "ERROR", 1012.0)]
    assert "OSError: boom" in wallet[0]["text"]
    pg = parse_service_log("postgres", PG_LOG)
    assert [(r["level"], r["ts"]) for r in pg] == [("FATAL", 1012.0), ("ERROR", 1013.0), ("ERROR", 1013.0)]


def logs_final(run: RunBuilder, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return run.final(server_logs={"files": {"wallet": 10, "postgres": 10, "gateway": 0}, "lines": lines})


def line(service: str, ts: float | None, text: str, level: str = "ERROR") -> dict[str, Any]:
    return {"service": service, "line": 7, "ts": ts, "level": level, "text": text}


def test_server_logs_explained_during_fault_unexplained_outside() -> None:
    run = healthy_run()  # fault on wallet_db [T0+10, T0+20], grace = recovery_within (10 s)
    ok = [line("postgres", T0 + 12, "terminating connection due to administrator command", "FATAL"),
          line("postgres", T0 - 5, 'role "root" does not exist', "FATAL")]  # startup: listed, not judged
    result = server_logs.check(run.history, logs_final(run, ok), run.ctx())
    assert result.passed, result.counterexamples
    assert result.stats["by_phase"] == {"fault": {"postgres": 1}, "startup": {"postgres": 1}}
    bad = ok + [line("wallet", T0 + 25, "something odd happened"),    # recover phase, no fault: unexplained
                line("postgres", T0 + 12, "deadlock detected"),          # during the fault, still never expected
                line("wallet", T0 + 26, "connection pool exhausted")]
    result = server_logs.check(run.history, logs_final(run, bad), run.ctx())
    assert [(c["rule"], c["text"], c["phase"]) for c in result.counterexamples] == [
        ("unexplained_error", "something odd happened", "recover"), ("never_expected", "deadlock detected", "fault"),
        ("never_expected", "connection pool exhausted", "recover")]
    allowed = server_logs.check(run.history, logs_final(run, bad[:3]),
                                run.ctx(logs_allowed=("something odd",)))
    assert allowed.passed, allowed.counterexamples


def test_server_logs_absent_is_not_judged(tmp_path) -> None:
    run = healthy_run()
    assert server_logs.check(run.history, run.final(), run.ctx()).passed
    no_files = server_logs.check(run.history, run.final(server_logs=read_server_logs(tmp_path)), run.ctx())
    assert no_files.passed and no_files.stats["judged"] is False
    (tmp_path / "postgres.log").write_text(PG_LOG)
    read = read_server_logs(tmp_path)
    assert read["files"] == {"wallet": None, "gateway": None, "postgres": 4} and len(read["lines"]) == 3


# --- the client records what these invariants judge ------------------------------------------------------
def test_client_records_retry_after_owner_and_target() -> None:
    import httpx

    from walletchaos.client import HttpxTransport, WalletApi

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/users":
            return httpx.Response(201, json={"user_id": "u-1", "account_id": "acc-1"})
        return httpx.Response(429, headers={"Retry-After": "2", "Content-Type": "application/problem+json"},
                              json={"type": "t", "title": "t", "status": 429, "detail": "d", "code": "RATE_LIMITED",
                                    "request_id": "r", "retryable": True})

    ops: list[dict[str, Any]] = []

    class Sink:
        def write(self, op: dict[str, Any]) -> None:
            ops.append(op)

    client = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://wallet.test")
    api = WalletApi(HttpxTransport(client), Sink(), worker="w", user="u1")
    api.register("alice", "pw", "123456")
    api.balance("acc-2", tag="intrusion", target_owner="bob")
    assert ops[0]["owner_user"] == "alice" and ops[0]["retry_after"] is None
    assert ops[1]["retry_after"] == "2" and ops[1]["owner_user"] == "alice" and ops[1]["target_owner"] == "bob"
