"""Concurrent money movements: row locking keeps balances non-negative and totals conserved."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.wallet_fixtures import audit_is_clean, wallet_stack  # noqa: F401

pytestmark = pytest.mark.slow


def test_parallel_transfers_both_directions(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=500), wallet_stack.new_user(c, balance=500)
    jobs = [(alice, bob) if i % 2 else (bob, alice) for i in range(40)] + [(alice, bob)] * 10

    def send(pair):
        src, dst = pair
        with wallet_stack.client() as client:
            return wallet_stack.transfer(client, src, dst.account_id, 70)

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(send, jobs))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code not in (201, 409)]
    assert all(r.json()["code"] == "INSUFFICIENT_FUNDS" for r in responses if r.status_code == 409)
    assert statuses.count(201) > 0
    with wallet_stack.client() as c:
        a, b = wallet_stack.balance(c, alice), wallet_stack.balance(c, bob)
        assert a >= 0 and b >= 0 and a + b == 1000
        audit_is_clean(wallet_stack.audit(c))


def test_concurrent_duplicates_apply_once(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=1000), wallet_stack.new_user(c)
    key = uuid.uuid4().hex

    def send(_):
        with wallet_stack.client() as client:
            return wallet_stack.transfer(client, alice, bob.account_id, 100, key=key)

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(send, range(10)))
    ok = [r for r in responses if r.status_code == 201]
    assert ok and len({r.json()["transaction_id"] for r in ok}) == 1
    assert all(r.json()["code"] == "REQUEST_IN_PROGRESS" for r in responses if r.status_code != 201)
    with wallet_stack.client() as c:
        assert wallet_stack.balance(c, bob) == 100
        audit_is_clean(wallet_stack.audit(c))
