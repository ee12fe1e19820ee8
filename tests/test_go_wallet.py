"""The Go wallet (examples/go-wallet) against the same contract tests as the mock wallet.

The generic contract, concurrency and dependency-fault tests of the Python wallet are imported here and
run unchanged against the Go wallet: this module's `wallet_stack` and `stack` fixtures start real
embedded PostgreSQL, the mock gateway and the Go binary (built by examples/go-wallet/build.sh) instead
of mock_wallet. Left out are only the tests of the mock's own internals (OpenAPI page, uvicorn settings).
The tests below those cover what the harness reads beyond the contract (docs/target-contract.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_wallet.embedded_pg import EmbeddedPostgres, free_port
from mock_wallet.launch import ServiceProcess, spawn_service
from tests.test_wallet_api import (  # noqa: F401  (collected here, against the Go wallet)
    test_amount_validation,
    test_deposit_withdraw_transfer_and_history,
    test_freeze_blocks_money_but_not_reads,
    test_idempotent_replay_applies_once,
    test_idle_keepalive_connection_outlives_uvicorns_default,
    test_login_lockout_after_five_failures,
    test_maintenance_mode,
    test_money_refusals,
    test_pin_lockout,
    test_register_login_and_read_account,
    test_registration_refusals,
    test_request_in_progress_and_gateway_failures,
    test_unauthenticated_and_foreign_resources,
)
from tests.test_wallet_concurrency import (  # noqa: F401
    test_concurrent_duplicates_apply_once,
    test_parallel_transfers_both_directions,
)
from tests.test_wallet_faults import (  # noqa: F401
    DEADLINE_S,
    _sql,
    test_a_commit_the_db_does_not_confirm_is_an_unknown_outcome_not_nothing_applied,
    test_db_frozen_gives_503_within_deadline,
    test_db_stopped_gives_503_then_recovers_without_restart,
    test_gateway_applied_but_answer_lost_is_settled_by_reconcile,
    test_gateway_never_applied_is_settled_by_reconcile,
)
from tests.wallet_fixtures import ADMIN_TOKEN, WalletStack, assert_problem, audit_is_clean

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "examples" / "go-wallet" / "build.sh"
MAX_INFLIGHT = 4  # the fault stack's shedding threshold (test_overload_is_shed_with_retry_after)


@pytest.fixture(scope="session")
def go_wallet_binary() -> Path:
    if shutil.which("go") is None:
        pytest.fail("the Go toolchain is not installed: setup (scripts/setup.sh) needs Go >= 1.26")
    out = Path(os.environ.get("GO_WALLET_BIN", ROOT / ".venv" / "bin" / "go-wallet"))
    subprocess.run([str(BUILD), str(out)], check=True, capture_output=True, timeout=600)
    return out


class GoWalletProcess(ServiceProcess):
    """The Go binary under the same lifecycle control (signals to its process group) as mock_wallet."""

    binary: Path

    def start(self) -> "GoWalletProcess":
        if self.is_running():
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary), "--host", self.host, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env}, start_new_session=True)
        return self


class GoWalletStack(WalletStack):
    binary: Path

    def start(self) -> "GoWalletStack":
        self.pg = EmbeddedPostgres(self.root / "pg", fsync=False)
        self.pg.start()
        self.gateway = spawn_service("gateway", port=free_port(), log_path=self.root / "gateway.log",
                                     env={"GATEWAY_DB_PATH": str(self.root / "gateway.sqlite3")})
        self.gateway.wait_ready(30)
        env = {"DATABASE_URL": self.pg.url, "GATEWAY_URL": self.gateway.url, "WALLET_ADMIN_TOKEN": ADMIN_TOKEN,
               **self.wallet_env}
        wallet = GoWalletProcess("wallet", "127.0.0.1", free_port(), env, self.root / "wallet.log")
        wallet.binary = self.binary
        self.wallet = wallet.start()
        self.wallet.wait_ready(30)
        return self


def go_stack(binary: Path, name: str, **env: str) -> Iterator[GoWalletStack]:
    root = Path(tempfile.mkdtemp(prefix=f"wc-go-{name}-"))
    root.chmod(0o755)  # PostgreSQL runs as its own system user: the dir must be traversable
    stack = GoWalletStack(root, wallet_env=env)
    stack.binary = binary
    try:
        yield stack.start()
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def wallet_stack(go_wallet_binary) -> Iterator[GoWalletStack]:
    yield from go_stack(go_wallet_binary, "api", WALLET_GATEWAY_TIMEOUT_S="1.0", WALLET_LOCKOUT_S="300")


@pytest.fixture(scope="module")
def stack(go_wallet_binary) -> Iterator[GoWalletStack]:
    yield from go_stack(go_wallet_binary, "faults", WALLET_DEADLINE_S=str(DEADLINE_S), WALLET_DB_TIMEOUT_S="1.0",
                        WALLET_GATEWAY_TIMEOUT_S="1.0", WALLET_MAX_INFLIGHT=str(MAX_INFLIGHT))


# -- beyond the contract: what the harness reads (docs/target-contract.md) ----------------------------
def test_export_has_ledger_entries_and_commit_times(wallet_stack):
    with wallet_stack.client() as c:
        alice, bob = wallet_stack.new_user(c, balance=1000), wallet_stack.new_user(c)
        assert wallet_stack.transfer(c, alice, bob.account_id, 300).status_code == 201
        assert wallet_stack.withdraw(c, alice, 200).status_code == 201
        r = c.get("/admin/export", headers=wallet_stack.admin)
        assert r.status_code == 200
        export = r.json()
    accounts = {a["account_id"]: a for a in export["accounts"]}
    assert accounts[alice.account_id]["balance"] == 500 and accounts[alice.account_id]["username"] == alice.username
    assert accounts[bob.account_id]["user_id"] == bob.user_id and accounts[bob.account_id]["status"] == "active"
    txns = {t["transaction_id"]: t for t in export["transactions"]}
    mine = [t for t in txns.values() if t["user_id"] == alice.user_id]
    assert sorted(t["kind"] for t in mine) == ["deposit", "transfer", "withdrawal"]
    for t in mine:
        assert t["entries_sum"] == 0 and t["status"] == "succeeded"
        assert isinstance(t["created_ts"], float) and t["committed_ts"] >= t["created_ts"]
    # entries: user accounts only, seq 1..n per account, balance_after chains to the balance
    entries = export["entries"]
    assert {e["account_id"] for e in entries} <= set(accounts)
    for account_id in (alice.account_id, bob.account_id):
        own = sorted((e for e in entries if e["account_id"] == account_id), key=lambda e: e["seq"])
        assert [e["seq"] for e in own] == list(range(1, len(own) + 1))
        running = 0
        for e in own:
            running += e["amount"]
            assert e["balance_after"] == running and e["txn_id"] in txns
            assert isinstance(e["created_at"], float) and isinstance(e["entry_id"], int)
        assert running == accounts[account_id]["balance"]
    assert [e["amount"] for e in sorted((e for e in entries if e["account_id"] == alice.account_id),
                                        key=lambda e: e["seq"])] == [1000, -300, -200]
    audit = export["audit"]
    audit_is_clean(audit)
    # the clearing account is the other side of every external movement
    assert audit["clearing_balance"] == -(audit["external_in"] - audit["external_out"]
                                          - audit["pending_withdrawal_holds"])


def test_refusals_carry_their_members(wallet_stack):
    with wallet_stack.client() as c:
        user = wallet_stack.new_user(c)
        for _ in range(4):
            c.post("/v1/sessions", json={"username": user.username, "password": "wrong"})
        body = assert_problem(c.post("/v1/sessions", json={"username": user.username, "password": "wrong"}),
                              "ACCOUNT_LOCKED", 423)
        assert body["retryable"] is False and body["locked_until"] in body["detail"]
        assert body["type"].startswith("https://") and body["title"]
        r = c.get("/no/such/route", headers={"X-Request-ID": "probe-404"})
        assert assert_problem(r, "NOT_FOUND", 404)["request_id"] == "probe-404"
        assert_problem(c.delete("/v1/transfers"), "METHOD_NOT_ALLOWED", 405)
        assert_problem(c.get("/admin/export"), "UNAUTHENTICATED", 401)
        assert_problem(c.post("/admin/reconcile", headers=user.headers), "UNAUTHENTICATED", 401)


def test_metrics_and_health(wallet_stack):
    with wallet_stack.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/readyz").status_code == 200
        text = c.get("/metrics").text
    assert "wallet_requests_total{" in text and "wallet_request_duration_seconds_bucket" in text
    assert 'code="ACCOUNT_LOCKED"' in text or 'status="201"' in text


def test_overload_is_shed_with_retry_after(stack):
    """More /v1 requests in flight than WALLET_MAX_INFLIGHT: the excess is refused at once with 429 and
    Retry-After, and nothing of a refused request is applied."""
    with stack.client() as c:
        user = stack.new_user(c)
    stack.set_gateway(delay_ms=500)  # keeps the first deposits in flight while the rest arrive
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def send(i: int) -> None:
        with stack.client() as client:
            r = stack.deposit(client, user, 10, key=f"shed-{i}")
        with lock:
            responses.append(r)

    try:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(MAX_INFLIGHT * 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        stack.set_gateway()
    shed = [r for r in responses if r.status_code == 429]
    assert shed, [r.status_code for r in responses]
    for r in shed:
        assert assert_problem(r, "RATE_LIMITED", 429)["retryable"] is True
    assert {r.status_code for r in responses} <= {201, 429, 504}  # 504: a slow charge left pending
    with stack.client() as c:
        assert c.post("/admin/reconcile", headers=stack.admin).json()["still_pending"] == 0
        assert stack.balance(c, user) == 10 * (len(responses) - len(shed))
        audit_is_clean(stack.audit(c))


def test_logs_are_json_lines_with_request_ids(wallet_stack):
    """Runs last in the module: every line the wallet wrote so far is one JSON object with ts, level and
    msg; request lines carry the request id; no ERROR line in a run without bugs."""
    rid = "log-probe-" + uuid.uuid4().hex
    with wallet_stack.client() as c:
        c.get("/healthz", headers={"X-Request-ID": rid})
    lines = [line for line in wallet_stack.wallet.log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all({"ts", "level", "msg"} <= r.keys() for r in records)
    assert any(r.get("request_id") == rid and r["msg"] == "request" for r in records)
    assert [r for r in records if r["level"].lower() == "error"] == []


def test_planted_defect_reverses_money_the_gateway_moved(stack):
    """The one planted defect (harness self-test): with WALLET_BUGS=timeout-as-failure a lost gateway
    answer is taken as a failure. The healthy counterpart is
    test_gateway_applied_but_answer_lost_is_settled_by_reconcile (504 + pending, never guessed)."""
    wallet = stack.wallet
    healthy_env = dict(wallet.env)
    wallet.terminate()
    wallet.env = {**healthy_env, "WALLET_BUGS": "timeout-as-failure", "WALLET_ALLOW_BUGS": "1"}
    try:
        wallet.start()
        wallet.wait_ready(30)
        with stack.client() as c:
            assert c.get("/healthz").json()["planted_bugs"] == ["timeout-as-failure"]
            user = stack.new_user(c)
            stack.set_gateway(apply_then_drop_rate=1.0)
            try:
                body = assert_problem(stack.deposit(c, user, 321), "GATEWAY_ERROR", 502)
            finally:
                stack.set_gateway()
            with stack.gateway_client() as gw:
                charged = {r["reference"]: r["status"] for r in gw.get("/control/records").json()["charges"]}
            assert charged[body["transaction_id"]] == "succeeded"  # the gateway took the money...
            assert stack.balance(c, user) == 0  # ...and the defective wallet never credited it
    finally:
        wallet.terminate()
        wallet.env = healthy_env
        wallet.start()
        wallet.wait_ready(30)


def test_go_unit_tests(go_wallet_binary):
    """The Go wallet's own unit tests (pure logic: deadline answer, problem members, amount, cursor,
    idempotency hash, unknown routes)."""
    r = subprocess.run(["go", "test", "-count=1", "."], cwd=BUILD.parent, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-mod=mod")})
    assert r.returncode == 0, r.stdout + r.stderr


def test_bad_configuration_is_one_line_and_exit_1(go_wallet_binary):
    for env, expected in (({}, "DATABASE_URL is not set"),
                          ({"DATABASE_URL": "postgresql://x@127.0.0.1:1/x", "WALLET_BUGS": "timeout-as-failure"},
                           "refused unless WALLET_ALLOW_BUGS=1"),
                          ({"DATABASE_URL": "postgresql://x@127.0.0.1:1/x", "WALLET_DEADLINE_S": "soon"},
                           "WALLET_DEADLINE_S")):
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("WALLET_", "DATABASE_URL"))}
        r = subprocess.run([str(go_wallet_binary)], env={**clean, **env}, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_committed_ts_is_the_servers_commit_time_when_tracked(stack):
    """With track_commit_timestamp on, committed_ts is PostgreSQL's own commit time of the final state
    (pg_xact_commit_timestamp), not a value the wallet wrote: it lies within the request's span. Runs
    last on this stack (it restarts PostgreSQL and the wallet)."""
    _sql(stack, "ALTER SYSTEM SET track_commit_timestamp = on")
    stack.pg.stop()
    stack.pg.start()
    stack.wallet.terminate()
    stack.wallet.start()
    stack.wallet.wait_ready(30)
    with stack.client() as c:
        user = stack.new_user(c)
        before = time.time()
        r = stack.deposit(c, user, 100)
        after = time.time()
        assert r.status_code == 201, r.text
        txn_id = r.json()["transaction_id"]
        export = c.get("/admin/export", headers=stack.admin).json()
    txn = next(t for t in export["transactions"] if t["transaction_id"] == txn_id)
    assert before - 0.05 <= txn["created_ts"] <= txn["committed_ts"] <= after + 0.05
    assert all(t["committed_ts"] is not None for t in export["transactions"] if t["status"] != "pending")
