"""Target files: loading errors are one line naming file and field; the process topology starts the
wallet from targets/mock-wallet.yaml; url mode skips what it cannot control; conformance judges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from walletchaos.coverage import invariants_for, skip_reason
from walletchaos.scenario import load_catalog
from walletchaos.target import DEFAULT_TARGET, PLACEHOLDERS, TargetError, load_target

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    return p


def test_default_target_is_the_mock_wallet_file():
    t = load_target()
    assert t.path == DEFAULT_TARGET.resolve() and t.name == "mock-wallet" and t.adapter == "contract"
    assert t.mode == "managed" and t.wallet.command[:3] == ["python", "-m", "mock_wallet.serve"]


@pytest.mark.parametrize("text, expected", [
    ("name: x\nwallet:\n  command: [w]\n  colour: red\n", "wallet.colour: unknown key"),
    ("name: x\nwallet:\n  command: [w, '{prot}']\n", "wallet.command[1]: unknown placeholder {prot}"),
    ("name: x\nwallet:\n  command: [w]\n  env: {DB: '{db_url}'}\n", "wallet.env.DB: unknown placeholder {db_url}"),
    ("name: x\nwallet:\n  command: [w]\nadapterr: contract\n", "adapterr: unknown key"),
    ("name: x\nwallet:\n  url: http://h:1\n  command: [w]\n", "wallet: url cannot be combined"),
    ("name: x\nwallet:\n  command: [w]\nadapter: nocolon\n", "adapter: must be 'contract' or 'module:Class'"),
])
def test_a_mistake_is_one_line_naming_file_and_field(tmp_path, text, expected):
    with pytest.raises(TargetError) as err:
        load_target(_write(tmp_path, text))
    msg = str(err.value)
    assert "\n" not in msg and "t.yaml" in msg and expected in msg, msg


def test_placeholders_are_filled(tmp_path):
    t = load_target(_write(tmp_path, "name: x\nwallet:\n  command: [w, '--port', '{port}', '{{literal}}']\n"
                                      "  env: {DB: '{database_url}', PORT: 8080}\n"))
    r = t.render({k: f"<{k}>" for k in PLACEHOLDERS})
    assert r.command == ["w", "--port", "<port>", "{literal}"] and r.env == {"DB": "<database_url>", "PORT": "8080"}


def test_cli_bad_target_exits_2_with_one_line(tmp_path):
    bad = _write(tmp_path, "name: x\nwallet:\n  command: [w, '{nope}']\n")
    p = subprocess.run([sys.executable, "-m", "walletchaos.cli", "conformance", "--target", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "wallet.command[1]: unknown placeholder {nope}" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_url_mode_skips_scenarios_needing_process_db_or_gateway_control(tmp_path):
    t = load_target(_write(tmp_path, "name: running\nwallet:\n  url: http://127.0.0.1:9\n  admin_token: x\n"))
    catalog = {s.name: s for s in load_catalog(REPO / "scenarios")}
    assert skip_reason(catalog["network-flaky"], t) is None           # toxic on wallet_api: the harness's proxy
    assert skip_reason(catalog["maintenance-window"], t) is None      # admin API
    assert "process" in skip_reason(catalog["wallet-kill"], t)
    assert "database" in skip_reason(catalog["db-latency"], t)
    assert "gateway" in skip_reason(catalog["gateway-errors"], t)
    names, not_judged = invariants_for(catalog["baseline"], "url")
    assert "conservation" in not_judged and "conservation" not in names
    assert skip_reason(catalog["wallet-kill"], load_target()) is None  # a started wallet runs everything


def test_url_mode_run_is_reported_skipped_never_passed(tmp_path):
    from walletchaos.runner import RunOptions, run_scenario

    t = load_target(_write(tmp_path, "name: running\nwallet:\n  url: http://127.0.0.1:9\n  admin_token: x\n"))
    sc = next(s for s in load_catalog(REPO / "scenarios") if s.name == "db-crash")
    res = run_scenario(sc, RunOptions(report_dir=tmp_path / "r", target=t, show_progress=False))
    assert res.verdict["status"] == "skipped" and res.verdict["passed"] is not True
    assert "postgres" in res.verdict["reason"] and (res.run_dir / "verdict.json").exists()


@pytest.mark.slow
def test_process_topology_starts_the_wallet_from_the_target_and_kills_its_group(tmp_path):
    from walletchaos.topology.process import ProcessTopology

    topo = ProcessTopology(tmp_path / "stack", target=load_target(REPO / "targets" / "mock-wallet.yaml"))
    try:
        topo.start()
        assert httpx.get(topo.wallet_url + "/readyz", timeout=5).status_code == 200  # through wallet_api
        pid = topo.wallet.pid
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"-m", b"mock_wallet.serve"]
        topo.kill("wallet")
        assert not topo.is_running("wallet")
        topo.restart("wallet")
        assert httpx.get(topo.wallet_url + "/readyz", timeout=5).status_code == 200
    finally:
        topo.stop()


@pytest.mark.slow
def test_conformance_passes_on_the_mock_wallet_and_names_a_planted_defect(tmp_path):
    from walletchaos.conformance import run_conformance

    good = run_conformance(load_target(), deadline=False)
    assert good.passed, [p.line() for p in good.failures()]
    bad = run_conformance(load_target(), deadline=False,
                          wallet_env={"WALLET_BUGS": "leaky-errors", "WALLET_ALLOW_BUGS": "1"})
    lines = [p.line() for p in bad.failures()]
    assert bad.exercisable and not bad.passed
    assert any(line.startswith("FAIL no-token: problem+json lacks request_id") for line in lines), lines


class _RecordingAdapter:
    """Pure in-memory adapter: records which admin methods the bridge called."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def request(self, call):
        raise NotImplementedError

    def answer(self, call, raw):
        return raw

    def export(self, admin):
        self.calls.append(("export",))
        return {"accounts": [{"account_id": "a1"}], "transactions": []}

    def audit(self, admin):
        return {"total_balance": 0}

    def reconcile(self, admin):
        self.calls.append(("reconcile",))
        return {"resolved": 1, "still_pending": 0}

    def freeze(self, admin, account_id):
        self.calls.append(("freeze", account_id, admin.token))

    def unfreeze(self, admin, account_id):
        self.calls.append(("unfreeze", account_id))

    def maintenance(self, admin, enabled, retry_after_s):
        self.calls.append(("maintenance", enabled, retry_after_s))


def test_admin_bridge_serves_the_contract_admin_api_through_the_adapter():
    from walletchaos.adapters.admin_bridge import AdminBridge

    adapter = _RecordingAdapter()
    bridge = AdminBridge(adapter, "http://127.0.0.1:9", "tok")
    url = bridge.start()
    try:
        auth = {"Authorization": "Bearer tok"}
        assert httpx.post(f"{url}/admin/accounts/a1/freeze", headers=auth).status_code == 200
        assert httpx.post(f"{url}/admin/accounts/a1/unfreeze", headers=auth).status_code == 200
        assert httpx.post(f"{url}/admin/maintenance", headers=auth, json={"enabled": True, "retry_after_s": 3}).status_code == 200
        assert httpx.post(f"{url}/admin/reconcile", headers=auth).json() == {"resolved": 1, "still_pending": 0}
        assert httpx.get(f"{url}/admin/export", headers=auth).json()["accounts"] == [{"account_id": "a1"}]
        assert httpx.get(f"{url}/admin/export", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"{url}/admin/nothing", headers=auth).status_code == 404
    finally:
        bridge.stop()
    assert adapter.calls == [("freeze", "a1", "tok"), ("unfreeze", "a1"), ("maintenance", True, 3),
                             ("reconcile",), ("export",)]


def test_scope_to_run_drops_what_the_running_wallet_held_before():
    from walletchaos.coverage import scope_to_run

    final = {"export": {"accounts": [{"account_id": "old"}, {"account_id": "new"}],
                        "transactions": [{"transaction_id": "t-old"}, {"transaction_id": "t-new"}],
                        "entries": [{"account_id": "old"}, {"account_id": "new"}]}}
    scope_to_run(final, {"accounts": ["old"], "transactions": ["t-old"]})
    assert final["export"]["accounts"] == [{"account_id": "new"}]
    assert final["export"]["transactions"] == [{"transaction_id": "t-new"}]
    assert final["export"]["entries"] == [{"account_id": "new"}] and final["scoped_to_run"]["accounts_before"] == 1


def test_unloadable_adapter_is_one_line(tmp_path):
    from walletchaos.adapters import AdapterError, load_adapter

    with pytest.raises(AdapterError, match="cannot import module 'no_such_mod'"):
        load_adapter("no_such_mod:X")
    (tmp_path / "half_adapter.py").write_text("class A:\n    def request(self, call): ...\n")
    with pytest.raises(AdapterError, match="lacks answer, export"):
        load_adapter("half_adapter:A", tmp_path)


@pytest.mark.slow
def test_cli_runs_a_scenario_against_the_target_file(tmp_path):
    p = subprocess.run([sys.executable, "-m", "walletchaos.cli", "run", "baseline", "--target",
                        str(REPO / "targets" / "mock-wallet.yaml"), "--duration", "8", "--seed", "1",
                        "--report-dir", str(tmp_path / "reports")], capture_output=True, text=True, timeout=300,
                       cwd=REPO)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    import json

    verdict = json.loads(next((tmp_path / "reports").glob("*-baseline/verdict.json")).read_text())
    assert verdict["passed"] and verdict["meta"]["target"] == "mock-wallet"


@pytest.mark.slow
def test_run_refuses_a_target_that_cannot_even_register(tmp_path):
    """A stub that is 'ready' (serves files) but has no wallet API: conformance fails at register and
    `run` refuses with one line, before any chaos."""
    stub = _write(tmp_path, "name: file-server\nwallet:\n  command: [python, -m, http.server, '{port}', "
                            "--bind, '{host}', --directory, '{data_dir}']\n  ready: /\n")
    p = subprocess.run([sys.executable, "-m", "walletchaos.cli", "run", "baseline", "--target", str(stub),
                        "--report-dir", str(tmp_path / "reports")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "conformance: FAIL register: expected 201, got 501" in p.stderr
    assert "target 'file-server' cannot be exercised (register:" in p.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "reports").exists()  # nothing ran


def test_contract_adapter_requests_are_exactly_what_the_load_client_sends():
    """Every WalletApi op parses into a ContractCall that the contract adapter maps back to the same
    request (method, path, body, token, key): the built-in adapter is the contract, op for op."""
    import orjson

    from walletchaos.adapters import ContractAdapter, parse_contract_request
    from walletchaos.client import RawResponse, WalletApi

    sent = []

    class Capture:
        def send(self, method, path, *, headers, body, name, judge):
            sent.append((method, path, headers, body, name))
            raw = RawResponse(200, {"content-type": "application/json"}, b"{}")
            judge(raw)
            return raw

    api = WalletApi(Capture(), type("S", (), {"write": lambda self, op: None})(), worker="w", user="u")
    api.token, api.account_id = "tok", "acct-1"
    api.register("alice", "pw", "123456")
    api.login("alice", "pw")
    api.deposit(5, key="k1")
    api.withdrawal(6, "123456", key="k2")
    api.transfer("acct-2", 7, "123456", key="k3")
    api.balance()
    api.history(limit=9)
    api.lookup("k1")
    api.get_transaction("t-1")
    ops = []
    for method, path, headers, body, name in sent:
        call = parse_contract_request(method, path, headers, body, name)
        req = ContractAdapter().request(call)
        ops.append(call.op)
        assert (req.method, req.path) == (method, path), (call, req)
        assert req.body == (orjson.loads(body) if body else None)
        assert req.headers.get("Authorization") == headers.get("Authorization")
        assert req.headers.get("Idempotency-Key") == headers.get("Idempotency-Key")
    assert ops == ["register", "login", "deposit", "withdraw", "transfer", "balance", "history", "lookup",
                   "transaction"]


def _status_becomes(p, *states, within_s: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + within_s
    while p.status() not in states:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)  # polling an observable state, bounded
    return True


def test_lifecycle_faults_act_on_the_whole_process_group(tmp_path):
    """A wallet started through a shell (its server a child process): pause stops the child too, kill
    -9 takes the child with the leader — whatever language or launcher the wallet uses."""
    import psutil

    from mock_wallet.embedded_pg import free_port
    from walletchaos.topology.command import CommandProcess

    port = free_port()
    proc = CommandProcess("wallet", ["sh", "-c", f"{sys.executable} -m http.server {port} --bind 127.0.0.1 "
                                     f"--directory {tmp_path} & wait"], "127.0.0.1", port, {}, tmp_path / "w.log",
                          ready_path="/", ready_timeout_s=30)
    try:
        proc.start().wait_ready()
        child = psutil.Process(proc.pid).children()[0]
        proc.pause()
        assert _status_becomes(child, psutil.STATUS_STOPPED)  # signals are delivered asynchronously
        proc.resume()
        assert _status_becomes(child, psutil.STATUS_SLEEPING, psutil.STATUS_RUNNING)
        proc.kill()
        child.wait(5)
        assert not child.is_running() and not proc.is_running()
    finally:
        proc.kill()
