"""A real wallet stack for tests: embedded PostgreSQL + mock gateway + wallet, as uvicorn processes.

One stack per test module (module-scoped fixture) keeps the suite fast; everything started here is
stopped in the fixture's teardown.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_wallet.embedded_pg import EmbeddedPostgres, free_port
from mock_wallet.launch import ServiceProcess, spawn_service

ADMIN_TOKEN = "test-admin-token"
PIN = "123456"


@dataclass
class User:
    username: str
    password: str
    user_id: str
    account_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class WalletStack:
    root: Path
    wallet_env: dict[str, str] = field(default_factory=dict)
    pg: EmbeddedPostgres | None = None
    gateway: ServiceProcess | None = None
    wallet: ServiceProcess | None = None

    def start(self) -> "WalletStack":
        self.pg = EmbeddedPostgres(self.root / "pg", fsync=False)
        self.pg.start()
        self.gateway = spawn_service("gateway", port=free_port(), log_path=self.root / "gateway.log",
                                     env={"GATEWAY_DB_PATH": str(self.root / "gateway.sqlite3")})
        self.gateway.wait_ready(30)
        env = {"DATABASE_URL": self.pg.url, "GATEWAY_URL": self.gateway.url, "WALLET_ADMIN_TOKEN": ADMIN_TOKEN,
               **self.wallet_env}
        self.wallet = spawn_service("wallet", port=free_port(), log_path=self.root / "wallet.log", env=env)
        self.wallet.wait_ready(30)
        return self

    def stop(self) -> None:
        for service in (self.wallet, self.gateway):
            if service is not None:
                service.terminate()
        if self.pg is not None:
            self.pg.stop()

    # -- clients ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.wallet.url

    def client(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.wallet.url, timeout=timeout)

    def gateway_client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.url, timeout=10.0)

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def new_user(self, client: httpx.Client, balance: int = 0) -> User:
        username = "u" + uuid.uuid4().hex[:12]
        r = client.post("/v1/users", json={"username": username, "password": "pw-" + username, "pin": PIN})
        assert r.status_code == 201, r.text
        created = r.json()
        r = client.post("/v1/sessions", json={"username": username, "password": "pw-" + username})
        assert r.status_code == 200, r.text
        user = User(username, "pw-" + username, created["user_id"], created["account_id"], r.json()["token"])
        if balance:
            r = self.deposit(client, user, balance)
            assert r.status_code == 201, r.text
        return user

    def deposit(self, client: httpx.Client, user: User, amount: int, key: str | None = None) -> httpx.Response:
        return client.post("/v1/deposits", json={"account_id": user.account_id, "amount": amount},
                           headers={**user.headers, "Idempotency-Key": key or uuid.uuid4().hex})

    def withdraw(self, client: httpx.Client, user: User, amount: int, key: str | None = None,
                 pin: str = PIN) -> httpx.Response:
        return client.post("/v1/withdrawals", json={"account_id": user.account_id, "amount": amount, "pin": pin},
                           headers={**user.headers, "Idempotency-Key": key or uuid.uuid4().hex})

    def transfer(self, client: httpx.Client, user: User, to: str, amount: int, key: str | None = None,
                 pin: str = PIN) -> httpx.Response:
        return client.post("/v1/transfers", json={"from_account_id": user.account_id, "to_account_id": to,
                                                  "amount": amount, "pin": pin},
                           headers={**user.headers, "Idempotency-Key": key or uuid.uuid4().hex})

    def balance(self, client: httpx.Client, user: User) -> int:
        r = client.get(f"/v1/accounts/{user.account_id}", headers=user.headers)
        assert r.status_code == 200, r.text
        return r.json()["balance"]

    def audit(self, client: httpx.Client) -> dict[str, Any]:
        r = client.get("/admin/audit", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()

    def set_gateway(self, **behaviour: Any) -> None:
        with self.gateway_client() as gw:
            r = gw.put("/control/behaviour", json=behaviour)
            assert r.status_code == 200, r.text


def assert_problem(response: httpx.Response, code: str, status: int) -> dict[str, Any]:
    """The contract's error shape: problem+json with every member, matching status and request id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail", "request_id", "retryable"} <= body.keys()
    assert body["request_id"] == response.headers["x-request-id"]
    if status in (429, 503):
        assert int(response.headers["retry-after"]) >= 0
    return body


def audit_is_clean(audit: dict[str, Any]) -> None:
    assert audit["negative_accounts"] == [], audit
    assert audit["mismatched_accounts"] == [], audit
    assert audit["unbalanced_transactions"] == [], audit
    assert audit["total_balance"] == audit["ledger_total"], audit
    assert audit["total_balance"] == (audit["external_in"] - audit["external_out"]
                                      - audit["pending_withdrawal_holds"]), audit


def start_stack(name: str, **env: str) -> Iterator[WalletStack]:
    """pytest's tmp dirs are 0700 root-only; PostgreSQL runs as its own system user when we are root,
    so the stack lives in a world-traversable temp dir, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"wc-{name}-"))
    root.chmod(0o755)
    stack = WalletStack(root, wallet_env=env)
    try:
        yield stack.start()
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def wallet_stack() -> Iterator[WalletStack]:
    """Default stack: short gateway timeout so unknown-outcome tests stay quick."""
    yield from start_stack("wallet", WALLET_GATEWAY_TIMEOUT_S="1.0", WALLET_LOCKOUT_S="300")
