"""GET /admin/export's ledger entries and transaction times (docs/internals.md "Export"), on a real
wallet: per-account `seq` 1..n in commit order, `balance_after` the running balance, server epoch times.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

from tests.wallet_fixtures import WalletStack, start_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[WalletStack]:
    yield from start_stack("export", WALLET_GATEWAY_TIMEOUT_S="1.0")


def export(stack: WalletStack) -> dict[str, Any]:
    with stack.client() as c:
        r = c.get("/admin/export", headers=stack.admin)
    assert r.status_code == 200, r.text
    return r.json()


def by_account(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        grouped[entry["account_id"]].append(entry)
    return {account: sorted(rows, key=lambda e: e["seq"]) for account, rows in grouped.items()}


def test_entries_number_each_account_and_carry_its_running_balance(stack: WalletStack) -> None:
    """Concurrent transfers both ways between three accounts: per account, the entries in seq order are
    numbered 1..n without gaps, each balance_after is the sum of the amounts so far, the last one is the
    account's balance, and the server times grow with seq (seq order is the order of the commits)."""
    with stack.client() as c:
        users = [stack.new_user(c, 20_000) for _ in range(3)]
    pairs = list(itertools.permutations(users, 2)) * 6

    def pay(pair) -> int:
        with stack.client() as c:
            return stack.transfer(c, pair[0], pair[1].account_id, 137).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(pay, pairs)) == {201}
    with stack.client() as c:
        assert stack.withdraw(c, users[0], 1_000).status_code == 201
    before = time.time()
    data = export(stack)
    balances = {a["account_id"]: a["balance"] for a in data["accounts"]}
    grouped = by_account(data["entries"])
    assert set(grouped) <= set(balances)  # user accounts only: never the clearing account
    for user in users:
        rows = grouped[user.account_id]
        assert [e["seq"] for e in rows] == list(range(1, len(rows) + 1))
        assert [e["balance_after"] for e in rows] == list(itertools.accumulate(e["amount"] for e in rows))
        assert rows[-1]["balance_after"] == balances[user.account_id] == 20_000 - 1_000 * (user is users[0])
        times = [e["created_at"] for e in rows]
        assert times == sorted(times) and all(before - 120 < t <= before + 1 for t in times)
        assert len(rows) == 1 + 2 * 12 + (user is users[0])  # deposit, 12 out, 12 in, the withdrawal
    assert {type(e[k]) for e in data["entries"] for k in ("entry_id", "amount", "seq", "balance_after")} == {int}


def test_transactions_carry_server_creation_and_commit_times(stack: WalletStack) -> None:
    with stack.client() as c:
        payer, payee = stack.new_user(c, 5_000), stack.new_user(c)
        txn_id = stack.transfer(c, payer, payee.account_id, 10).json()["transaction_id"]
        stack.set_gateway(delay_ms=3000)  # beyond the wallet's gateway timeout: unknown outcome, pending
        try:
            r = stack.withdraw(c, payer, 10)
        finally:
            stack.set_gateway()
        assert r.status_code == 504, r.text
        pending_id = r.json()["transaction_id"]
        stack.set_gateway(error_rate=1.0)  # refused: the hold is given back, the transaction failed
        try:
            r = stack.withdraw(c, payer, 20)
        finally:
            stack.set_gateway()
        assert r.status_code == 502, r.text
        failed_id = r.json()["transaction_id"]
    txns = {t["transaction_id"]: t for t in export(stack)["transactions"]}
    transfer = txns[txn_id]
    assert abs(transfer["created_ts"] - datetime.fromisoformat(transfer["created_at"]).timestamp()) < 1e-3
    assert 0 <= transfer["committed_ts"] - transfer["created_ts"] < 5
    assert txns[pending_id]["status"] == "pending" and txns[pending_id]["committed_ts"] is None
    failed = txns[failed_id]
    assert failed["status"] == "failed" and failed["committed_ts"] >= failed["created_ts"]
    settled = [t for t in txns.values() if t["status"] != "pending"]
    assert settled and all(t["committed_ts"] >= t["created_ts"] for t in settled)
    entries = [e for e in export(stack)["entries"] if e["txn_id"] == txn_id]
    assert sorted(e["amount"] for e in entries) == [-10, 10]


def test_migration_numbers_the_entries_of_an_existing_database(stack: WalletStack) -> None:
    """A database made by schema version 1 (entries without seq/balance_after) is numbered in entry id
    order when the wallet migrates it, and its accounts' counters continue from there."""
    import asyncio

    import asyncpg

    from mock_wallet.schema import CLEARING_ACCOUNT_ID, MIGRATIONS, migrate

    async def run() -> list[tuple[int, int, int]]:
        admin = await asyncpg.connect(stack.pg.url)
        try:
            await admin.execute("DROP DATABASE IF EXISTS v1_upgrade")
            await admin.execute("CREATE DATABASE v1_upgrade")
        finally:
            await admin.close()
        conn = await asyncpg.connect(stack.pg.url.rsplit("/", 1)[0] + "/v1_upgrade")
        try:
            for statement in dict(MIGRATIONS)[1]:
                await conn.execute(statement)
            await conn.execute("CREATE TABLE schema_version (version int PRIMARY KEY, applied_at timestamptz "
                               "NOT NULL DEFAULT now()); INSERT INTO schema_version (version) VALUES (1)")
            user, account = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
            await conn.execute("INSERT INTO users (id, username, password_hash, password_salt, pin_hash, pin_salt) "
                               "VALUES ($1, 'old', '', '', '', '')", user)
            await conn.execute("INSERT INTO accounts (id, user_id, kind, balance) VALUES ($1, $2, 'user', 70)",
                               account, user)
            for i, amount in enumerate((100, -50, 20)):
                txn = f"3333333{i}-3333-3333-3333-333333333333"
                await conn.execute("INSERT INTO transactions (id, kind, status, amount, user_id) "
                                   "VALUES ($1, 'deposit', 'succeeded', 1, $2)", txn, user)
                await conn.execute("INSERT INTO ledger_entries (txn_id, account_id, amount) VALUES ($1, $2, $3), "
                                   "($1, $4, $5)", txn, account, amount, CLEARING_ACCOUNT_ID, -amount)
            assert await migrate(conn) == MIGRATIONS[-1][0]
            assert await conn.fetchval("SELECT entry_seq FROM accounts WHERE id = $1", account) == 3
            rows = await conn.fetch("SELECT amount, seq, balance_after FROM ledger_entries WHERE account_id = $1 "
                                    "ORDER BY id", account)
            return [tuple(r) for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(run()) == [(100, 1, 100), (-50, 2, 50), (20, 3, 70)]
