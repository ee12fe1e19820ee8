"""The planted bugs of the security and consistency rounds bite through the real API on real PostgreSQL,
and the correct wallet does not show them.

One PostgreSQL + gateway for the module. The correct wallet and, per test, a second wallet process with
one bug planted share that database (none of these bugs changes the schema), so each test makes the same
requests to both and compares. Whether the harness *catches* each bug is `walletchaos detect`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from mock_wallet.defects.db_bypasses_proxy import DIRECT_URL_ENV
from mock_wallet.defects.refusal_with_effect import EVERY as REFUSE_EVERY
from mock_wallet.defects.swallowed_exception_log import EVERY as LOG_EVERY
from mock_wallet.embedded_pg import free_port
from mock_wallet.launch import ServiceProcess, spawn_service
from tests.wallet_fixtures import ADMIN_TOKEN, PIN, WalletStack, assert_problem, audit_is_clean, start_stack

NOWHERE_DB = "postgresql://nobody@127.0.0.1:9/none"
WRONG_PIN = "999999"


@pytest.fixture(scope="module")
def stack() -> Iterator[WalletStack]:
    yield from start_stack("defects", WALLET_GATEWAY_TIMEOUT_S="1.0", WALLET_LOCKOUT_S="300")


@contextmanager
def bugged_wallet(stack: WalletStack, bug: str, **env: str) -> Iterator[ServiceProcess]:
    """A second wallet process on the stack's database and gateway, with `bug` planted."""
    wallet_env = {"DATABASE_URL": stack.pg.url, "GATEWAY_URL": stack.gateway.url, "WALLET_ADMIN_TOKEN": ADMIN_TOKEN,
                  "WALLET_GATEWAY_TIMEOUT_S": "1.0", "WALLET_LOCKOUT_S": "300",
                  "WALLET_BUGS": bug, "WALLET_ALLOW_BUGS": "1", **env}
    wallet = spawn_service("wallet", port=free_port(), log_path=stack.root / f"wallet-{bug}.log", env=wallet_env)
    try:
        wallet.wait_ready(30)
        yield wallet
    finally:
        wallet.terminate()


def clients(stack: WalletStack, wallet: ServiceProcess) -> tuple[httpx.Client, httpx.Client]:
    return stack.client(), httpx.Client(base_url=wallet.url, timeout=10.0)


def test_foreign_account_read_answers_200_where_the_correct_wallet_answers_404(stack: WalletStack) -> None:
    with bugged_wallet(stack, "foreign-account-read") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            alice, bob, carol = stack.new_user(correct, 5_000), stack.new_user(correct), stack.new_user(correct)
            key = uuid.uuid4().hex
            txn_id = stack.transfer(correct, alice, carol.account_id, 1, key=key).json()["transaction_id"]
            reads = [f"/v1/accounts/{alice.account_id}", f"/v1/accounts/{alice.account_id}/transactions",
                     f"/v1/transactions/{txn_id}", f"/v1/transactions?idempotency_key={key}"]
            for path in reads:
                assert correct.get(path, headers=bob.headers).status_code == 404, path
                r = bugged.get(path, headers=bob.headers)
                assert r.status_code == 200, (path, r.text)
            assert bugged.get(reads[0], headers=bob.headers).json()["balance"] == 4_999


def test_foreign_account_debit_moves_a_victims_money(stack: WalletStack) -> None:
    with bugged_wallet(stack, "foreign-account-debit") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            victim, thief = stack.new_user(correct, 5_000), stack.new_user(correct)
            body = {"from_account_id": victim.account_id, "to_account_id": thief.account_id, "amount": 700,
                    "pin": PIN}
            r = correct.post("/v1/transfers", json=body, headers={**thief.headers, "Idempotency-Key": "k1"})
            assert_problem(r, "ACCOUNT_NOT_FOUND", 404)
            r = bugged.post("/v1/transfers", json=body, headers={**thief.headers, "Idempotency-Key": "k2"})
            assert r.status_code == 201, r.text
            r = bugged.post("/v1/withdrawals", json={"account_id": victim.account_id, "amount": 300, "pin": PIN},
                            headers={**thief.headers, "Idempotency-Key": "k3"})
            assert r.status_code == 201, r.text
            assert stack.balance(correct, victim) == 4_000 and stack.balance(correct, thief) == 700
            audit_is_clean(stack.audit(correct))


def test_pin_bypass_accepts_a_wrong_pin_after_one_correct_pin(stack: WalletStack) -> None:
    with bugged_wallet(stack, "pin-bypass") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            for client, accepted in ((correct, False), (bugged, True)):
                user = stack.new_user(correct, 5_000)
                r = client.post("/v1/withdrawals", json={"account_id": user.account_id, "amount": 100, "pin": PIN},
                                headers={**user.headers, "Idempotency-Key": uuid.uuid4().hex})
                assert r.status_code == 201, r.text  # the correct PIN, remembered by this process
                r = client.post("/v1/withdrawals", json={"account_id": user.account_id, "amount": 900,
                                                         "pin": WRONG_PIN},
                                headers={**user.headers, "Idempotency-Key": uuid.uuid4().hex})
                if accepted:
                    assert r.status_code == 201, r.text
                    assert stack.balance(correct, user) == 4_000
                else:
                    assert_problem(r, "INVALID_PIN", 403)
                    assert stack.balance(correct, user) == 4_900


def test_no_lockout_lets_guessing_go_on(stack: WalletStack) -> None:
    with bugged_wallet(stack, "no-lockout") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            for client, locks in ((correct, True), (bugged, False)):
                user = stack.new_user(correct, 1_000)
                codes = [client.post("/v1/sessions", json={"username": user.username, "password": "wrong"}).json()["code"]
                         for _ in range(7)]
                pins = [stack.withdraw(client, user, 10, pin=WRONG_PIN).json()["code"] for _ in range(7)]
                if locks:
                    assert codes[4:] == ["ACCOUNT_LOCKED"] * 3 and pins[4:] == ["ACCOUNT_LOCKED"] * 3, (codes, pins)
                else:
                    assert set(codes) == {"INVALID_CREDENTIALS"} and set(pins) == {"INVALID_PIN"}, (codes, pins)
                    r = client.post("/v1/sessions", json={"username": user.username, "password": user.password})
                    assert r.status_code == 200, r.text


def test_frozen_ignored_lets_money_into_a_frozen_account_but_not_out(stack: WalletStack) -> None:
    with bugged_wallet(stack, "frozen-ignored") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            payer, frozen = stack.new_user(correct, 5_000), stack.new_user(correct, 1_000)
            r = correct.post(f"/admin/accounts/{frozen.account_id}/freeze", headers=stack.admin)
            assert r.status_code == 200, r.text
            assert_problem(stack.transfer(correct, payer, frozen.account_id, 100), "ACCOUNT_FROZEN", 403)
            assert_problem(stack.deposit(correct, frozen, 100), "ACCOUNT_FROZEN", 403)
            assert stack.transfer(bugged, payer, frozen.account_id, 100).status_code == 201
            assert stack.deposit(bugged, frozen, 200).status_code == 201
            assert_problem(stack.transfer(bugged, frozen, payer.account_id, 50), "ACCOUNT_FROZEN", 403)
            assert_problem(stack.withdraw(bugged, frozen, 50), "ACCOUNT_FROZEN", 403)
            assert stack.balance(correct, frozen) == 1_300


def test_refusal_with_effect_answers_nothing_applied_for_a_transfer_that_moved_money(stack: WalletStack) -> None:
    with bugged_wallet(stack, "refusal-with-effect") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            payer, payee = stack.new_user(correct, 10_000), stack.new_user(correct)
            assert all(stack.transfer(correct, payer, payee.account_id, 100).status_code == 201
                       for _ in range(REFUSE_EVERY))
            answers = [stack.transfer(bugged, payer, payee.account_id, 100, key=f"t{i}") for i in range(REFUSE_EVERY)]
            assert [r.status_code for r in answers] == [201] * (REFUSE_EVERY - 1) + [503]
            body = assert_problem(answers[-1], "DATABASE_UNAVAILABLE", 503)
            assert "nothing was applied" in body["detail"]
            r = correct.get("/v1/transactions", params={"idempotency_key": f"t{REFUSE_EVERY - 1}"},
                            headers=payer.headers)
            assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text  # ...but it was
            assert stack.balance(correct, payee) == 2 * REFUSE_EVERY * 100


def test_no_retry_after_on_maintenance(stack: WalletStack) -> None:
    with bugged_wallet(stack, "no-retry-after") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            user = stack.new_user(correct)
            for client, header in ((correct, True), (bugged, False)):
                r = client.post("/admin/maintenance", json={"enabled": True, "retry_after_s": 7}, headers=stack.admin)
                assert r.status_code == 200, r.text
                try:
                    r = client.get(f"/v1/accounts/{user.account_id}", headers=user.headers)
                finally:
                    client.post("/admin/maintenance", json={"enabled": False, "retry_after_s": 7}, headers=stack.admin)
                assert r.status_code == 503 and r.json()["code"] == "MAINTENANCE", r.text
                assert r.headers.get("retry-after") == ("7" if header else None)


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if '"level": "error"' in line]


def test_swallowed_exception_log_writes_error_tracebacks_while_answering_fine(stack: WalletStack) -> None:
    with bugged_wallet(stack, "swallowed-exception-log") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            user = stack.new_user(correct)
            for client in (correct, bugged):
                assert all(client.get(f"/v1/accounts/{user.account_id}", headers=user.headers).status_code == 200
                           for _ in range(2 * LOG_EVERY))
        errors = _error_lines(wallet.log_tail(1_000_000))
        assert len(errors) >= 2 and all("Traceback" in line for line in errors), errors[:2]
        assert _error_lines(stack.wallet.log_tail(1_000_000)) == []


def test_stale_balance_read_shows_the_balance_from_before_a_write(stack: WalletStack) -> None:
    """The cache lives 1 s: a read right after a write shows the old balance on the bugged wallet (tried a
    few times, since a slow write on a busy machine can outlast the cache); never on the correct one."""
    with bugged_wallet(stack, "stale-balance-read") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            user = stack.new_user(correct, 1_000)
            payer = stack.new_user(correct, 10_000)
            stale = 0
            for attempt in range(5):
                for client in (correct, bugged):
                    before = stack.balance(client, user)
                    assert stack.transfer(correct, payer, user.account_id, 10).status_code == 201
                    after = stack.balance(client, user)
                    if client is correct:
                        assert after == before + 10
                    else:
                        stale += after == before
            assert stale >= 1


def test_history_missing_rows_hides_a_payment_just_made(stack: WalletStack) -> None:
    with bugged_wallet(stack, "history-missing-rows") as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            user, payee = stack.new_user(correct, 10_000), stack.new_user(correct)
            missing = 0
            for attempt in range(3):
                for client in (correct, bugged):
                    txn = stack.transfer(correct, user, payee.account_id, 10).json()["transaction_id"]
                    r = client.get(f"/v1/accounts/{user.account_id}/transactions", headers=user.headers)
                    ids = [item["transaction_id"] for item in r.json()["items"]]
                    if client is correct:
                        assert txn in ids
                    else:
                        missing += txn not in ids
            assert missing >= 1


@pytest.mark.parametrize("bug", ["split-transfer-commit", "non-atomic-transfer"])
def test_transfer_legs_commit_apart_and_a_snapshot_between_sees_money_missing(stack: WalletStack, bug: str) -> None:
    """The two legs of a transfer land in two commits ≥ 0.25 s apart (server times in the export); an
    audit snapshot taken in between sees the bank short and the transaction unbalanced; without a fault
    the end heals (non-atomic-transfer loses the credit only when its second commit fails)."""
    with bugged_wallet(stack, bug) as wallet:
        correct, bugged = clients(stack, wallet)
        with correct, bugged:
            user, payee = stack.new_user(correct, 10_000), stack.new_user(correct)
            ids = {"correct": stack.transfer(correct, user, payee.account_id, 100).json()["transaction_id"]}
            snapshots: list[dict] = []
            done = threading.Event()

            def pay() -> None:
                try:
                    with httpx.Client(base_url=wallet.url, timeout=10.0) as c:
                        r = stack.transfer(c, user, payee.account_id, 100)
                        assert r.status_code == 201, r.text
                        ids["bugged"] = r.json()["transaction_id"]
                finally:
                    done.set()

            payer = threading.Thread(target=pay)
            payer.start()
            while not done.is_set():
                snapshots.append(stack.audit(correct))
            payer.join()
            audit_is_clean(stack.audit(correct))
            export = correct.get("/admin/export", headers=stack.admin).json()
    legs = {name: sorted(e["created_at"] for e in export["entries"] if e["txn_id"] == txn)
            for name, txn in ids.items()}
    assert legs["correct"][1] - legs["correct"][0] < 0.25
    assert legs["bugged"][1] - legs["bugged"][0] >= 0.25
    torn = [s for s in snapshots if ids["bugged"] in s["unbalanced_transactions"]]
    assert torn, f"no snapshot in the gap among {len(snapshots)}"
    assert torn[0]["total_balance"] == torn[0]["external_in"] - torn[0]["external_out"] \
        - torn[0]["pending_withdrawal_holds"] - 100


def test_ack_before_commit_loses_an_acknowledged_deposit_when_killed(stack: WalletStack) -> None:
    """An old bug, checked directly: the 201 comes before anything is written, so a kill right after it
    loses the deposit (the correct wallet has written it before answering)."""
    with bugged_wallet(stack, "ack-before-commit") as wallet, stack.client() as correct:
        user = stack.new_user(correct, 1_000)
        with httpx.Client(base_url=wallet.url, timeout=10.0) as bugged:
            r = stack.deposit(bugged, user, 500, key="acked")
        wallet.kill()
        assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
        r = correct.get("/v1/transactions", params={"idempotency_key": "acked"}, headers=user.headers)
        assert_problem(r, "TRANSACTION_NOT_FOUND", 404)
        assert stack.balance(correct, user) == 1_000
        assert stack.deposit(correct, user, 500, key="acked-correct").status_code == 201
        r = correct.get("/v1/transactions", params={"idempotency_key": "acked-correct"}, headers=user.headers)
        assert r.status_code == 200 and r.json()["status"] == "succeeded"


def test_db_bypasses_proxy_reaches_the_database_its_database_url_does_not(stack: WalletStack) -> None:
    """DATABASE_URL points nowhere (a proxy that is down): the correct wallet is unready, the bugged one
    works, because it goes around to the direct address."""
    env = {"DATABASE_URL": NOWHERE_DB, DIRECT_URL_ENV: stack.pg.url}
    with bugged_wallet(stack, "db-bypasses-proxy", **env) as wallet, httpx.Client(base_url=wallet.url) as bugged:
        with stack.client() as correct:
            user = stack.new_user(correct, 1_000)
        assert bugged.get("/readyz").status_code == 200
        assert stack.balance(bugged, user) == 1_000
    unbugged = spawn_service("wallet", port=free_port(), log_path=stack.root / "wallet-nowhere.log",
                             env={**env, "GATEWAY_URL": stack.gateway.url})
    try:
        unbugged.wait_ready(30, path="/healthz")
        with httpx.Client(base_url=unbugged.url) as c:
            assert_problem(c.get("/readyz"), "DATABASE_UNAVAILABLE", 503)
    finally:
        unbugged.terminate()
