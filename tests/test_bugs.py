"""Planted bugs (mock_wallet/defects/): the opt-in is enforced, a bugged wallet says so, each bug is one
module that replaces one part, and the bugs that show over plain HTTP (no fault needed) do (the newer
ones in tests/test_defects.py). Whether the harness *catches* each bug is `walletchaos detect`.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mock_wallet import defects as bugs
from mock_wallet.app import create_app
from mock_wallet.embedded_pg import free_port
from mock_wallet.launch import ServiceError, spawn_service
from mock_wallet.parts import WalletParts
from mock_wallet.schema import MIGRATIONS
from mock_wallet.settings import WalletSettings
from tests.wallet_fixtures import WalletStack, start_stack
from walletchaos.checks import CHECKS
from walletchaos.checks.clear_errors import find_leak
from walletchaos.scenario import load_catalog

REPO = Path(__file__).resolve().parent.parent
NOWHERE_DB = "postgresql://nobody@127.0.0.1:9/none"  # never connected to by these tests


def _settings(spec: str = "") -> WalletSettings:
    return WalletSettings(DATABASE_URL=NOWHERE_DB, WALLET_BUGS=spec)  # by env name (validation aliases)


# -- the registry and the opt-in (pure) ---------------------------------------------------------------------
def test_registry_names_real_checkers_and_catalog_scenarios() -> None:
    catalog = {s.name for s in load_catalog(REPO / "scenarios")}
    assert len(bugs.BUGS) == 22
    for bug in bugs.BUGS.values():
        assert bug.caught_by in CHECKS, bug
        # the scenario that should catch it says so in its catalog entry
        assert bug.caught_by in next(s for s in load_catalog(REPO / 'scenarios') if s.name == bug.scenario).judged_by, bug
        assert bug.scenario in catalog, bug
        assert bug.summary


def test_every_bug_is_one_module_that_replaces_parts_and_every_module_is_a_bug(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLETCHAOS_DIRECT_DATABASE_URL", NOWHERE_DB)
    modules = {m.name for m in pkgutil.iter_modules(bugs.__path__)}
    assert modules == {b.module.rsplit(".", 1)[1] for b in bugs.BUGS.values()}
    healthy = WalletParts().replaced()
    assert healthy == {}
    for bug in bugs.BUGS.values():
        replaced = bugs.assemble([bug.name]).replaced()
        assert replaced, f"{bug.name} replaces no part"
        assert importlib.import_module(bug.module).__doc__, bug.name


def test_bugs_on_the_same_part_stack() -> None:
    parts = bugs.assemble(["error-as-200", "leaky-errors", "no-retry-after"])
    mro = [c.__name__ for c in parts.renderer.__mro__]
    assert mro.index("ErrorAs200Renderer") < mro.index("LeakyRenderer")  # error-as-200 decides first
    assert "NoRetryAfterRenderer" in mro


def test_schema_bugs_drop_constraints_that_exist() -> None:
    schema = "\n".join(stmt for _, stmts in MIGRATIONS for stmt in stmts)
    for name in ("check-then-act", "memory-idempotency"):
        dropped = importlib.import_module(bugs.BUGS[name].module).DROPPED_CONSTRAINT
        assert f"CONSTRAINT {dropped} " in schema, name


def test_db_bypasses_proxy_needs_the_direct_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLETCHAOS_DIRECT_DATABASE_URL", raising=False)
    with pytest.raises(bugs.BugsRefused, match="WALLETCHAOS_DIRECT_DATABASE_URL"):
        bugs.assemble(["db-bypasses-proxy"])


def test_empty_spec_plants_nothing_even_without_opt_in() -> None:
    assert bugs.parse("", allow=False) == frozenset()
    assert bugs.parse(" , ", allow=False) == frozenset()
    assert bugs.assemble([]).replaced() == {}


def test_bugs_are_refused_without_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bugs.ALLOW_ENV, raising=False)
    with pytest.raises(bugs.BugsRefused, match=bugs.ALLOW_ENV):
        bugs.parse("lost-update")
    monkeypatch.setenv(bugs.ALLOW_ENV, "yes")  # only exactly "1" opts in
    with pytest.raises(bugs.BugsRefused):
        bugs.parse("lost-update")


def test_unknown_bug_names_are_refused_even_with_the_opt_in() -> None:
    with pytest.raises(bugs.BugsRefused, match="no-such-bug"):
        bugs.parse("lost-update,no-such-bug", allow=True)


def test_parse_names_exactly_the_listed_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bugs.ALLOW_ENV, "1")
    assert bugs.parse(" lost-update , leaky-errors ") == {"lost-update", "leaky-errors"}
    assert bugs.assemble({"lost-update", "leaky-errors"}).replaced() == {"ledger": "ReadModifyWriteLedger",
                                                                         "renderer": "LeakyRenderer"}


def test_create_app_refuses_and_healthz_reports_planted_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(bugs.ALLOW_ENV, raising=False)
    with pytest.raises(bugs.BugsRefused):
        create_app(_settings("lost-update"))
    # no lifespan (no `with`): /healthz needs no database
    assert TestClient(create_app(_settings())).get("/healthz").json() == {
        "status": "ok", "planted_bugs": []}
    monkeypatch.setenv(bugs.ALLOW_ENV, "1")
    app = create_app(_settings("lost-update,no-db-timeout"))
    assert TestClient(app).get("/healthz").json()["planted_bugs"] == ["lost-update", "no-db-timeout"]
    assert TestClient(create_app(_settings())).get("/healthz").json()["planted_bugs"] == []  # nothing global


# -- a real wallet process ----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", [{"WALLET_BUGS": "lost-update", bugs.ALLOW_ENV: "0"},
                                 {"WALLET_BUGS": "lost-update,typo-bug", bugs.ALLOW_ENV: "1"}],
                         ids=["no-opt-in", "unknown-name"])
def test_wallet_process_refuses_to_start_with_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    svc = spawn_service("wallet", port=free_port(), log_path=tmp_path / "wallet.log",
                        env={"DATABASE_URL": NOWHERE_DB, **env})
    try:
        with pytest.raises(ServiceError, match=r"exited \(code 2\)"):
            svc.wait_ready(20)
    finally:
        svc.kill()
    log = svc.log_tail()
    assert "refusing to start" in log, log
    assert "Traceback" not in log and len(log.strip().splitlines()) == 1, log


@pytest.fixture(scope="module")
def bugged_stack() -> Iterator[WalletStack]:
    yield from start_stack("bugs", WALLET_BUGS="leaky-errors,error-as-200", WALLET_ALLOW_BUGS="1",
                           WALLET_GATEWAY_TIMEOUT_S="1.0")


def test_healthz_of_a_bugged_wallet_lists_its_bugs(bugged_stack: WalletStack) -> None:
    with bugged_stack.client() as c:
        body = c.get("/healthz").json()
    assert body == {"status": "ok", "planted_bugs": ["error-as-200", "leaky-errors"]}
    assert "PLANTED BUG ACTIVE: leaky-errors" in bugged_stack.wallet.log_tail(100_000)


def test_leaky_errors_drop_the_request_id_and_show_a_stack_trace(bugged_stack: WalletStack) -> None:
    with bugged_stack.client() as c:
        user = bugged_stack.new_user(c)
        r = c.get(f"/v1/accounts/{uuid.uuid4()}", headers=user.headers)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "ACCOUNT_NOT_FOUND" and "request_id" not in body
    assert "Traceback (most recent call last)" in body["detail"]
    assert find_leak(body["detail"]) is not None


def test_error_as_200_hides_dependency_failures(bugged_stack: WalletStack) -> None:
    """Last in the module: it stops the gateway, then the database."""
    with bugged_stack.client() as c:
        user = bugged_stack.new_user(c)
        bugged_stack.gateway.terminate()
        r = bugged_stack.deposit(c, user, 500)  # gateway unreachable: GATEWAY_ERROR, answered as a 200
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
        assert r.json()["ok"] is False and "gateway" in r.json()["error"]
        bugged_stack.pg.stop()
        r = c.get(f"/v1/accounts/{user.account_id}", headers=user.headers)  # DATABASE_UNAVAILABLE
    assert r.status_code == 500 and r.headers["content-type"].startswith("text/html"), r.text
    assert "<html>" in r.text


def test_correct_wallet_problems_keep_request_id_and_no_trace() -> None:
    """Without the bug (in-process; a request without token is refused before any DB access)."""
    r = TestClient(create_app(_settings())).get(f"/v1/accounts/{uuid.uuid4()}")
    body = r.json()
    assert r.status_code == 401 and body["request_id"] == r.headers["x-request-id"]
    assert find_leak(body["detail"]) is None
