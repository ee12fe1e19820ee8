"""Backend `docker` (walletchaos/topology/docker.py) against a real engine and the project's images.

One topology for the module (start costs seconds); the lifecycle tests leave every service running
again, and the last test stops it and checks nothing labelled with its run is left.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

docker_mod = pytest.importorskip("walletchaos.topology.docker", reason="docker extra not installed")
DockerTopology = docker_mod.DockerTopology


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    t = DockerTopology(tmp_path_factory.mktemp("docker-topology"))
    t.start()
    yield t
    t.stop()


class Wallet:
    """A registered user with an account, talking through one base URL."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        user = f"u{secrets.token_hex(6)}"
        r = self.http.post("/v1/users", json={"username": user, "password": "pw-" + user, "pin": "123456"})
        assert r.status_code == 201, r.text
        self.account = r.json()["account_id"]
        r = self.http.post("/v1/sessions", json={"username": user, "password": "pw-" + user})
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['token']}"}

    def deposit(self, amount: int) -> httpx.Response:
        return self.http.post("/v1/deposits", json={"account_id": self.account, "amount": amount},
                              headers={**self.auth, "Idempotency-Key": str(uuid.uuid4())})

    def balance(self) -> int:
        r = self.http.get(f"/v1/accounts/{self.account}", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()["balance"]


def _status(url: str, timeout: float = 2.0) -> int | str:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError as exc:
        return type(exc).__name__


def _eventually(pred, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)  # poll interval


def test_topology_shape(topo):
    assert topo.name == "docker"
    for url in (topo.wallet_url, topo.wallet_direct_url, topo.gateway_url, topo.toxiproxy_url):
        assert url.startswith("http://127.0.0.1:")
    proxies = topo.toxiproxy().proxies()
    assert {n: p.upstream for n, p in proxies.items()} == {
        "wallet_api": "wallet:8080", "wallet_db": "postgres:5432", "gateway": "gateway:8081"}
    for service in ("wallet", "gateway", "postgres"):
        assert topo.is_running(service)
    # every container, the network and the volume are labelled
    client = topo._client
    run = {"label": f"walletchaos.run={topo.run_id}"}
    assert {c.labels["walletchaos.service"] for c in client.containers.list(filters=run)} == {
        "wallet", "gateway", "postgres", "toxiproxy"}
    assert all(c.labels.get("walletchaos") == "1" for c in client.containers.list(filters=run))
    assert len(client.networks.list(filters=run)) == 1
    assert len(client.volumes.list(filters=run)) == 1
    # published on loopback only
    for c in client.containers.list(filters=run):
        for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), c.name


def test_wallet_answers_through_the_wallet_api_proxy(topo):
    w = Wallet(topo.wallet_url)
    assert w.deposit(500).status_code == 201
    assert w.balance() == 500
    # the client path really crosses Toxiproxy: disable the proxy, the direct path still answers
    topo.toxiproxy().disable("wallet_api")
    try:
        assert _status(topo.wallet_url + "/healthz") != 200
        assert _status(topo.wallet_direct_url + "/healthz") == 200
    finally:
        topo.toxiproxy().enable("wallet_api")
    assert _status(topo.wallet_url + "/healthz") == 200


def test_kill_and_restart_wallet(topo):
    w = Wallet(topo.wallet_url)
    assert w.deposit(700).status_code == 201
    topo.kill("wallet")
    assert not topo.is_running("wallet")
    assert _status(topo.wallet_url + "/healthz") != 200
    topo.restart("wallet")
    assert topo.is_running("wallet")
    assert _status(topo.wallet_direct_url + "/readyz") == 200
    assert w.balance() == 700  # sessions and data live in PostgreSQL


def test_kill_postgres_and_restart_on_the_same_volume(topo):
    w = Wallet(topo.wallet_url)
    assert w.deposit(900).status_code == 201   # acknowledged before the crash: must survive it
    volume = topo.container("postgres").attrs["Mounts"][0]["Name"]
    topo.kill("postgres")
    assert not topo.is_running("postgres")
    _eventually(lambda: _status(topo.wallet_direct_url + "/readyz") == 503, 30, "wallet reports DB down")
    topo.restart("postgres")
    assert topo.is_running("postgres")
    assert topo.container("postgres").attrs["Mounts"][0]["Name"] == volume
    _eventually(lambda: _status(topo.wallet_direct_url + "/readyz") == 200, 30, "wallet ready again")
    assert w.balance() == 900
    assert w.deposit(100).status_code == 201
    assert w.balance() == 1000


def test_pause_and_resume_gateway(topo):
    topo.pause("gateway")
    try:
        assert topo.is_running("gateway")  # frozen, like SIGSTOP: still there
        assert topo.container("gateway").status == "paused"
        assert _status(topo.gateway_url + "/healthz", timeout=1.0) == "ReadTimeout"
    finally:
        topo.resume("gateway")
    assert _status(topo.gateway_url + "/healthz") == 200


def test_terminate_and_restart_gateway(topo):
    topo.terminate("gateway")
    assert not topo.is_running("gateway")
    assert topo.container("gateway").attrs["State"]["ExitCode"] != 137  # stopped gracefully, not killed
    topo.restart("gateway")
    assert _status(topo.gateway_url + "/readyz") == 200
    w = Wallet(topo.wallet_url)
    assert w.deposit(50).status_code == 201  # the wallet reaches the gateway again, through its proxy


def test_clear_stale_removes_leftovers_of_dead_runs_only(topo):
    client = topo._client
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    image = topo.images["toxiproxy"]
    stale = client.containers.create(image, labels={"walletchaos": "1", "walletchaos.owner":
                                                    f"{docker_mod.socket.gethostname()}:{dead.pid}"})
    try:
        removed = docker_mod.clear_stale(client)
        assert f"container {stale.name}" in removed
        # the live topology (its owner is this process) is untouched
        assert all(topo.is_running(s) for s in ("wallet", "gateway", "postgres"))
    finally:
        try:
            stale.remove(force=True)
        except Exception:  # noqa: BLE001 - already removed: the expected case
            pass


def test_zz_stop_leaves_nothing_labelled(topo):
    """Runs last in this module: stop (idempotent), then nothing of this run may be left."""
    client, run = topo._client, {"label": f"walletchaos.run={topo.run_id}"}
    topo.stop()
    topo.stop()
    assert client.containers.list(all=True, filters=run) == []
    assert client.networks.list(filters=run) == []
    assert client.volumes.list(filters=run) == []
    assert (topo.logs / "wallet.log").stat().st_size > 0
