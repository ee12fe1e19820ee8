"""Every contract endpoint and every catalog code, both ways, against a real wallet stack."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
from tests.wallet_fixtures import PIN, assert_problem, audit_is_clean, wallet_stack  # noqa: F401

pytestmark = pytest.mark.slow


def test_register_login_and_read_account(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        r = c.get(f"/v1/accounts/{user.account_id}", headers=user.headers)
        assert r.status_code == 200
        assert r.json() == {"account_id": user.account_id, "balance": 0, "currency": "CNY", "status": "active"}
        assert r.headers["x-request-id"]
        r = c.get("/healthz", headers={"X-Request-ID": "my-id-1"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "my-id-1"


def test_registration_refusals(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        r = c.post("/v1/users", json={"username": user.username, "password": "x", "pin": PIN})
        assert_problem(r, "USERNAME_TAKEN", 409)
        for bad in ({"username": "a", "password": "x", "pin": "12345"}, {"username": "a", "password": "x"},
                    {"username": "a b", "password": "x", "pin": PIN}):
            assert_problem(c.post("/v1/users", json=bad), "VALIDATION_ERROR", 422)
        r = c.post("/v1/users", content=b"{not json", headers={"content-type": "application/json"})
        assert_problem(r, "VALIDATION_ERROR", 422)


def test_login_lockout_after_five_failures(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        assert_problem(c.post("/v1/sessions", json={"username": "nobody-" + user.username, "password": "x"}),
                       "INVALID_CREDENTIALS", 401)
        for _ in range(4):
            r = c.post("/v1/sessions", json={"username": user.username, "password": "wrong"})
            assert_problem(r, "INVALID_CREDENTIALS", 401)
        body = assert_problem(c.post("/v1/sessions", json={"username": user.username, "password": "wrong"}),
                              "ACCOUNT_LOCKED", 423)
        assert "until" in body["detail"]
        # even the right password is refused while locked
        r = c.post("/v1/sessions", json={"username": user.username, "password": user.password})
        assert_problem(r, "ACCOUNT_LOCKED", 423)
        # the existing session still works for reads
        assert c.get(f"/v1/accounts/{user.account_id}", headers=user.headers).status_code == 200


def test_unauthenticated_and_foreign_resources(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=500), wallet_stack.new_user(c)
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}"), "UNAUTHENTICATED", 401)
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}", headers={"Authorization": "Bearer nope"}),
                       "UNAUTHENTICATED", 401)
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}", headers=bob.headers), "ACCOUNT_NOT_FOUND", 404)
        assert_problem(c.get("/v1/accounts/not-a-uuid", headers=bob.headers), "ACCOUNT_NOT_FOUND", 404)
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}/transactions", headers=bob.headers),
                       "ACCOUNT_NOT_FOUND", 404)
        txn = c.get(f"/v1/accounts/{alice.account_id}/transactions", headers=alice.headers).json()["items"][0]
        assert_problem(c.get(f"/v1/transactions/{txn['transaction_id']}", headers=bob.headers),
                       "TRANSACTION_NOT_FOUND", 404)
        assert_problem(c.get(f"/v1/transactions/{uuid.uuid4()}", headers=alice.headers), "TRANSACTION_NOT_FOUND", 404)
        # bob cannot move alice's money
        r = c.post("/v1/transfers", json={"from_account_id": alice.account_id, "to_account_id": bob.account_id,
                                          "amount": 1, "pin": PIN},
                   headers={**bob.headers, "Idempotency-Key": "steal"})
        assert_problem(r, "ACCOUNT_NOT_FOUND", 404)
        assert wallet_stack.balance(c, alice) == 500
        # admin endpoints need the admin token, not a user token
        assert_problem(c.get("/admin/audit", headers=alice.headers), "UNAUTHENTICATED", 401)
        assert_problem(c.get("/admin/audit"), "UNAUTHENTICATED", 401)


def test_deposit_withdraw_transfer_and_history(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c), wallet_stack.new_user(c)
        r = wallet_stack.deposit(c, alice, 1000, key="dep-1")
        assert r.status_code == 201 and r.json()["status"] == "succeeded" and r.json()["kind"] == "deposit"
        r = wallet_stack.transfer(c, alice, bob.account_id, 300)
        assert r.status_code == 201, r.text
        transfer = r.json()
        assert (transfer["from_account_id"], transfer["to_account_id"]) == (alice.account_id, bob.account_id)
        r = wallet_stack.withdraw(c, alice, 200)
        assert r.status_code == 201 and r.json()["status"] == "succeeded"
        assert wallet_stack.balance(c, alice) == 500 and wallet_stack.balance(c, bob) == 300
        # bob sees the incoming transfer by id; lookups by key are per creator
        assert c.get(f"/v1/transactions/{transfer['transaction_id']}", headers=bob.headers).status_code == 200
        r = c.get("/v1/transactions", params={"idempotency_key": "dep-1"}, headers=alice.headers)
        assert r.status_code == 200 and r.json()["amount"] == 1000
        assert_problem(c.get("/v1/transactions", params={"idempotency_key": "dep-1"}, headers=bob.headers),
                       "TRANSACTION_NOT_FOUND", 404)
        # cursor paging walks every transaction exactly once, newest first
        seen, cursor = [], None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"/v1/accounts/{alice.account_id}/transactions", params=params, headers=alice.headers).json()
            seen += [item["kind"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["withdrawal", "transfer", "deposit"]
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}/transactions", params={"cursor": "garbage"},
                             headers=alice.headers), "VALIDATION_ERROR", 422)
        assert_problem(c.get(f"/v1/accounts/{alice.account_id}/transactions", params={"limit": 0},
                             headers=alice.headers), "VALIDATION_ERROR", 422)
        audit_is_clean(wallet_stack.audit(c))


@pytest.mark.parametrize("amount", [0, -5, 1.5, "10", 10**13, True])
def test_amount_validation(wallet_stack, amount):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        r = c.post("/v1/deposits", json={"account_id": user.account_id, "amount": amount},
                   headers={**user.headers, "Idempotency-Key": uuid.uuid4().hex})
        assert_problem(r, "VALIDATION_ERROR", 422)


def test_money_refusals(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=100), wallet_stack.new_user(c)
        assert_problem(wallet_stack.transfer(c, alice, bob.account_id, 101), "INSUFFICIENT_FUNDS", 409)
        assert_problem(wallet_stack.withdraw(c, alice, 101), "INSUFFICIENT_FUNDS", 409)
        assert_problem(wallet_stack.transfer(c, alice, alice.account_id, 1), "VALIDATION_ERROR", 422)
        assert_problem(wallet_stack.transfer(c, alice, str(uuid.uuid4()), 1), "ACCOUNT_NOT_FOUND", 404)
        r = c.post("/v1/deposits", json={"account_id": alice.account_id, "amount": 1}, headers=alice.headers)
        assert_problem(r, "IDEMPOTENCY_KEY_MISSING", 400)
        r = c.post("/v1/deposits", json={"account_id": alice.account_id, "amount": 1},
                   headers={**alice.headers, "Idempotency-Key": "x" * 129})
        assert_problem(r, "VALIDATION_ERROR", 422)
        assert_problem(wallet_stack.transfer(c, alice, bob.account_id, 1, pin="000000"), "INVALID_PIN", 403)
        assert wallet_stack.balance(c, alice) == 100 and wallet_stack.balance(c, bob) == 0


def test_pin_lockout(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=100), wallet_stack.new_user(c)
        # the correct PIN is now in the wallet's verified-PIN cache: it must change cost, never outcome
        assert wallet_stack.transfer(c, alice, bob.account_id, 1).status_code == 201
        for _ in range(4):
            assert_problem(wallet_stack.withdraw(c, alice, 1, pin="999999"), "INVALID_PIN", 403)
        assert wallet_stack.transfer(c, alice, bob.account_id, 1).status_code == 201  # resets the counter
        for _ in range(4):
            assert_problem(wallet_stack.withdraw(c, alice, 1, pin="999999"), "INVALID_PIN", 403)
        assert "until" in assert_problem(wallet_stack.withdraw(c, alice, 1, pin="999999"), "ACCOUNT_LOCKED", 423)["detail"]
        assert_problem(wallet_stack.transfer(c, alice, bob.account_id, 1), "ACCOUNT_LOCKED", 423)
        assert wallet_stack.balance(c, alice) == 98


def test_freeze_blocks_money_but_not_reads(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=100), wallet_stack.new_user(c)
        r = c.post(f"/admin/accounts/{bob.account_id}/freeze", headers=wallet_stack.admin)
        assert r.status_code == 200 and r.json()["status"] == "frozen"
        assert_problem(wallet_stack.transfer(c, alice, bob.account_id, 10), "ACCOUNT_FROZEN", 403)
        assert_problem(wallet_stack.deposit(c, bob, 10), "ACCOUNT_FROZEN", 403)
        r = c.get(f"/v1/accounts/{bob.account_id}", headers=bob.headers)
        assert r.status_code == 200 and r.json()["status"] == "frozen"
        assert c.post(f"/admin/accounts/{bob.account_id}/unfreeze", headers=wallet_stack.admin).json()["status"] == "active"
        assert wallet_stack.transfer(c, alice, bob.account_id, 10).status_code == 201
        assert_problem(c.post(f"/admin/accounts/{uuid.uuid4()}/freeze", headers=wallet_stack.admin),
                       "ACCOUNT_NOT_FOUND", 404)


def test_maintenance_mode(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        r = c.post("/admin/maintenance", json={"enabled": True, "retry_after_s": 7}, headers=wallet_stack.admin)
        assert r.status_code == 200
        try:
            r = c.get(f"/v1/accounts/{user.account_id}", headers=user.headers)
            assert_problem(r, "MAINTENANCE", 503)
            assert r.headers["retry-after"] == "7"
            assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
            assert c.get("/admin/audit", headers=wallet_stack.admin).status_code == 200
            assert c.get("/metrics").status_code == 200
        finally:
            c.post("/admin/maintenance", json={"enabled": False}, headers=wallet_stack.admin)
        assert c.get(f"/v1/accounts/{user.account_id}", headers=user.headers).status_code == 200


def test_idempotent_replay_applies_once(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=1000), wallet_stack.new_user(c)
        first = wallet_stack.transfer(c, alice, bob.account_id, 100, key="t-1")
        again = wallet_stack.transfer(c, alice, bob.account_id, 100, key="t-1")
        assert first.status_code == again.status_code == 201
        assert first.json()["transaction_id"] == again.json()["transaction_id"]
        assert wallet_stack.balance(c, bob) == 100
        assert_problem(wallet_stack.transfer(c, alice, bob.account_id, 101, key="t-1"), "IDEMPOTENCY_KEY_REUSED", 409)
        assert_problem(wallet_stack.deposit(c, alice, 100, key="t-1"), "IDEMPOTENCY_KEY_REUSED", 409)
        # a refusal replays identically, even once the funds are there
        assert_problem(wallet_stack.withdraw(c, bob, 500, key="w-1"), "INSUFFICIENT_FUNDS", 409)
        assert wallet_stack.deposit(c, bob, 1000).status_code == 201
        assert_problem(wallet_stack.withdraw(c, bob, 500, key="w-1"), "INSUFFICIENT_FUNDS", 409)
        assert wallet_stack.balance(c, bob) == 1100


def test_request_in_progress_and_gateway_failures(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c, balance=1000)
        wallet_stack.set_gateway(delay_ms=700)
        try:
            results: dict[str, httpx.Response] = {}
            first = threading.Thread(target=lambda: results.update(first=wallet_stack.deposit(
                wallet_stack.client(), user, 50, key="slow-1")))
            first.start()
            # poll until the first request has claimed the key (its transaction exists, pending)
            with wallet_stack.client() as poll:
                for _ in range(200):
                    r = poll.get("/v1/transactions", params={"idempotency_key": "slow-1"}, headers=user.headers)
                    if r.status_code == 200:
                        break
            body = assert_problem(wallet_stack.deposit(c, user, 50, key="slow-1"), "REQUEST_IN_PROGRESS", 409)
            assert body["retryable"] is True
            first.join(10)
            assert results["first"].status_code == 201
        finally:
            wallet_stack.set_gateway()
        wallet_stack.set_gateway(error_rate=1.0)
        try:
            body = assert_problem(wallet_stack.withdraw(c, user, 300, key="fail-1"), "GATEWAY_ERROR", 502)
            assert body["transaction_id"]
            assert wallet_stack.balance(c, user) == 1050  # hold reversed
            assert_problem(wallet_stack.deposit(c, user, 10), "GATEWAY_ERROR", 502)
        finally:
            wallet_stack.set_gateway()
        wallet_stack.set_gateway(decline_rate=1.0)
        try:
            assert_problem(wallet_stack.deposit(c, user, 10), "GATEWAY_ERROR", 502)
        finally:
            wallet_stack.set_gateway()
        # the failed withdrawal replays its failure; the lookup shows it failed
        assert_problem(wallet_stack.withdraw(c, user, 300, key="fail-1"), "GATEWAY_ERROR", 502)
        r = c.get("/v1/transactions", params={"idempotency_key": "fail-1"}, headers=user.headers)
        assert r.json()["status"] == "failed" and r.json()["failure_code"] == "GATEWAY_ERROR"
        audit_is_clean(wallet_stack.audit(c))


def test_metrics_openapi_and_export(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c, balance=10)
        metrics = c.get("/metrics").text
        assert "wallet_requests_total" in metrics and "wallet_request_duration_seconds" in metrics
        spec = c.get("/openapi.json").json()
        assert "Problem" in spec["components"]["schemas"]
        assert "application/problem+json" in spec["paths"]["/v1/transfers"]["post"]["responses"]["409"]["content"]
        assert c.get("/docs").status_code == 200
        export = c.get("/admin/export", headers=wallet_stack.admin).json()
        assert any(a["account_id"] == user.account_id and a["balance"] == 10 for a in export["accounts"])
        assert all(t["entries_sum"] == 0 for t in export["transactions"])
        assert export["audit"]["external_in"] >= 10
        assert_problem(c.get("/no/such/route"), "NOT_FOUND", 404)
        assert_problem(c.delete("/v1/transfers"), "METHOD_NOT_ALLOWED", 405)


def test_idle_keepalive_connection_outlives_uvicorns_default(wallet_stack):
    """The server must not be the side that closes an idle keep-alive connection after a few seconds:
    with uvicorn's default (5 s) a client reusing the connection at that moment lost its POST (found by
    the 20-seed false-alarm sweep). Idle time is the behaviour under test here, not synchronisation."""
    import http.client
    import select
    import time
    from urllib.parse import urlsplit

    u = urlsplit(wallet_stack.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() and conn.sock is not None
        sock = conn.sock
        time.sleep(6.0)
        readable, _, _ = select.select([sock], [], [], 0)
        assert not readable, "the wallet closed an idle keep-alive connection within 6 s"
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        assert r.status == 200 and r.read() and conn.sock is sock  # same connection, not a reconnect
    finally:
        conn.close()


def test_keepalive_setting_reaches_uvicorn(monkeypatch):
    from mock_wallet.serve import uvicorn_config
    from mock_wallet.settings import GatewaySettings, WalletSettings

    assert WalletSettings().keepalive_s == GatewaySettings().keepalive_s == 75.0
    monkeypatch.setenv("WALLET_KEEPALIVE_S", "30")
    s = WalletSettings()
    assert uvicorn_config(object(), "127.0.0.1", 1, "INFO", s.keepalive_s).timeout_keep_alive == 30.0
