"""Dependency faults: DB down/slow → 503 within the deadline and recovery without restart; gateway
answers lost → 504 + pending, settled by reconcile both when the gateway applied it and when it did not."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.wallet_fixtures import WalletStack, assert_problem, audit_is_clean, start_stack

pytestmark = pytest.mark.slow
DEADLINE_S = 3.0


@pytest.fixture(scope="module")
def stack() -> Iterator[WalletStack]:
    yield from start_stack("faults", WALLET_DEADLINE_S=str(DEADLINE_S), WALLET_DB_TIMEOUT_S="1.0",
                           WALLET_GATEWAY_TIMEOUT_S="1.0")


def timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def wait_ready(client: httpx.Client, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
    raise AssertionError("wallet did not become ready again")


def reconcile(stack: WalletStack, client: httpx.Client) -> dict:
    r = client.post("/admin/reconcile", headers=stack.admin)
    assert r.status_code == 200, r.text
    return r.json()


def gateway_records(stack: WalletStack) -> dict:
    with stack.gateway_client() as gw:
        return gw.get("/control/records").json()


def test_db_stopped_gives_503_then_recovers_without_restart(stack):
    with stack.client() as c:
        user = stack.new_user(c, balance=100)
        wallet_pid = stack.wallet.pid
        stack.pg.stop()
        try:
            r, elapsed = timed(lambda: c.get(f"/v1/accounts/{user.account_id}", headers=user.headers))
            assert_problem(r, "DATABASE_UNAVAILABLE", 503)
            assert elapsed < DEADLINE_S
            r, elapsed = timed(lambda: stack.deposit(c, user, 10))
            assert_problem(r, "DATABASE_UNAVAILABLE", 503)
            assert_problem(c.get("/readyz"), "DATABASE_UNAVAILABLE", 503)
            assert c.get("/healthz").status_code == 200
        finally:
            stack.pg.start()
        wait_ready(c)
        assert stack.wallet.pid == wallet_pid
        assert stack.balance(c, user) == 100
        assert stack.deposit(c, user, 10).status_code == 201
        audit_is_clean(stack.audit(c))


def test_db_frozen_gives_503_within_deadline(stack):
    with stack.client() as c:
        user = stack.new_user(c, balance=100)
        postmaster = psutil.Process(stack.pg.pid)
        frozen = [postmaster, *postmaster.children(recursive=True)]
        for proc in frozen:
            proc.suspend()
        try:
            for call in (lambda: c.get(f"/v1/accounts/{user.account_id}", headers=user.headers),
                         lambda: stack.deposit(c, user, 10)):
                r, elapsed = timed(call)
                assert_problem(r, "DATABASE_UNAVAILABLE", 503)
                assert elapsed < DEADLINE_S + 0.5
        finally:
            for proc in frozen:
                proc.resume()
        wait_ready(c)
        assert stack.balance(c, user) in (100, 110)  # a deposit cut off mid-way stays pending or is settled
        reconcile(stack, c)
        audit_is_clean(stack.audit(c))


def test_gateway_applied_but_answer_lost_is_settled_by_reconcile(stack):
    with stack.client() as c:
        user = stack.new_user(c)
        for behaviour in ({"apply_then_hang_rate": 1.0, "hang_s": 5.0}, {"apply_then_drop_rate": 1.0}):
            stack.set_gateway(**behaviour)
            try:
                r, elapsed = timed(lambda: stack.deposit(c, user, 250, key=f"lost-{len(behaviour)}"))
            finally:
                stack.set_gateway()
            body = assert_problem(r, "GATEWAY_TIMEOUT", 504)
            assert elapsed < DEADLINE_S
            txn_id = body["transaction_id"]
            # never guessed: still pending, and a replay says so (202)
            assert c.get(f"/v1/transactions/{txn_id}", headers=user.headers).json()["status"] == "pending"
            replay = stack.deposit(c, user, 250, key=f"lost-{len(behaviour)}")
            assert replay.status_code == 202 and replay.json()["transaction_id"] == txn_id
            result = reconcile(stack, c)
            assert result["resolved"] >= 1 and result["still_pending"] == 0
            assert c.get(f"/v1/transactions/{txn_id}", headers=user.headers).json()["status"] == "succeeded"
        assert stack.balance(c, user) == 500
        audit = stack.audit(c)
        audit_is_clean(audit)
        records = gateway_records(stack)
        assert audit["external_in"] == records["charged_total"]
        assert audit["external_out"] == records["paid_out_total"]


def test_gateway_never_applied_is_settled_by_reconcile(stack):
    with stack.client() as c:
        user = stack.new_user(c, balance=1000)
        stack.set_gateway(delay_ms=20_000)  # the payout sits in the gateway, unapplied, past our timeout
        body = assert_problem(stack.withdraw(c, user, 400, key="never-1"), "GATEWAY_TIMEOUT", 504)
        txn_id = body["transaction_id"]
        assert stack.balance(c, user) == 600  # held while pending
        stack.gateway.kill()  # dies before applying anything
        stack.gateway.start()
        stack.gateway.wait_ready(30)
        stack.set_gateway(decline_rate=1.0)  # the re-drive gets a definite "no"
        try:
            result = reconcile(stack, c)
        finally:
            stack.set_gateway()
        assert result == {"resolved": 1, "still_pending": 0}
        txn = c.get(f"/v1/transactions/{txn_id}", headers=user.headers).json()
        assert txn["status"] == "failed" and txn["failure_code"] == "GATEWAY_ERROR"
        assert stack.balance(c, user) == 1000  # hold reversed
        assert_problem(stack.withdraw(c, user, 400, key="never-1"), "GATEWAY_ERROR", 502)
        audit = stack.audit(c)
        audit_is_clean(audit)
        records = gateway_records(stack)
        assert audit["external_in"] == records["charged_total"]
        assert audit["external_out"] == records["paid_out_total"]
        assert [p["status"] for p in records["payouts"] if p["reference"] == txn_id] == ["declined"]


SLOW_COMMIT_AMOUNT = 777
SLOW_COMMIT_SQL = f"""
CREATE OR REPLACE FUNCTION wc_test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_sleep(2.5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER wc_test_slow_commit AFTER INSERT ON transactions
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.amount = {SLOW_COMMIT_AMOUNT})
  EXECUTE FUNCTION wc_test_slow_commit();
"""


def _sql(stack: WalletStack, statement: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(stack.pg.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_commit_the_db_does_not_confirm_is_an_unknown_outcome_not_nothing_applied(stack):
    """A COMMIT that fails (here: a deferred trigger outlasts the DB timeout, as a latency spike on the
    COMMIT's round trip would) may have been applied: the wallet must say 'unknown' (504), never
    DATABASE_UNAVAILABLE's 'nothing was applied'; the retry with the same key then settles it."""
    with stack.client() as c:
        alice, bob = stack.new_user(c, balance=1_000), stack.new_user(c, balance=0)
        _sql(stack, SLOW_COMMIT_SQL)
        try:
            r, elapsed = timed(lambda: stack.transfer(c, alice, bob.account_id, SLOW_COMMIT_AMOUNT, key="in-doubt"))
            body = assert_problem(r, "GATEWAY_TIMEOUT", 504)
            assert "outcome is unknown" in body["detail"] and elapsed < DEADLINE_S
        finally:
            _sql(stack, "DROP TRIGGER IF EXISTS wc_test_slow_commit ON transactions")
        retry = stack.transfer(c, alice, bob.account_id, SLOW_COMMIT_AMOUNT, key="in-doubt")
        assert retry.status_code == 201, retry.text
        again = stack.transfer(c, alice, bob.account_id, SLOW_COMMIT_AMOUNT, key="in-doubt")
        assert again.json()["transaction_id"] == retry.json()["transaction_id"]
        assert stack.balance(c, alice) == 1_000 - SLOW_COMMIT_AMOUNT
        assert stack.balance(c, bob) == SLOW_COMMIT_AMOUNT
        audit_is_clean(stack.audit(c))
