"""docker-compose.yml: its shape (pure YAML, no engine), its validity for compose, and the real stack.

The stack test brings the compose file up with whatever compose this machine has (v2 plugin, else
Debian's docker-compose v1), waits for every container to be healthy (polled, bounded), sends a
register + login + deposit from the host through the Toxiproxy wallet_api port, and tears it down.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TOXIPROXY_CONFIG = ROOT / "docker" / "toxiproxy.json"
VAR_IMAGE = re.compile(r"^\$\{([A-Z_]+):-([^}]+)\}$")
EXPECTED_IMAGE_VARS = {
    "postgres": "POSTGRES_IMAGE", "toxiproxy": "TOXIPROXY_IMAGE", "gateway": "GATEWAY_IMAGE",
    "wallet": "WALLET_IMAGE", "locust-master": "LOCUST_IMAGE", "locust-worker": "LOCUST_IMAGE",
}


def _compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def _proxies() -> dict[str, dict]:
    return {p["name"]: p for p in json.loads(TOXIPROXY_CONFIG.read_text())}


def _listen_port(proxy: str) -> int:
    return int(_proxies()[proxy]["listen"].rsplit(":", 1)[1])


# -- pure YAML: no engine needed ----------------------------------------------------------------------
def test_every_image_is_overridable_by_a_variable():
    services = _compose()["services"]
    assert set(services) == set(EXPECTED_IMAGE_VARS)
    for name, svc in services.items():
        m = VAR_IMAGE.match(svc["image"])
        assert m, f"{name}: image {svc['image']!r} is not ${{VAR:-default}}"
        assert m.group(1) == EXPECTED_IMAGE_VARS[name], name
    assert VAR_IMAGE.match(services["postgres"]["image"]).group(2) == "postgres:17"
    assert VAR_IMAGE.match(services["toxiproxy"]["image"]).group(2) == "ghcr.io/shopify/toxiproxy:2.12.0"


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies():
    services = _compose()["services"]
    for name, svc in services.items():
        test = (svc.get("healthcheck") or {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond == {"condition": "service_healthy"}, f"{name} -> {dep}: {cond}"
    assert set(services["wallet"]["depends_on"]) == {"postgres", "toxiproxy", "gateway"}
    # the scratch-based official toxiproxy image has no shell: exec form with its own cli only
    assert services["toxiproxy"]["healthcheck"]["test"][:2] == ["CMD", "/toxiproxy-cli"]


def test_every_hop_crosses_toxiproxy():
    services, proxies = _compose()["services"], _proxies()
    assert set(proxies) == {"wallet_api", "wallet_db", "gateway"}
    assert proxies["wallet_api"]["upstream"] == "wallet:8080"
    assert proxies["wallet_db"]["upstream"] == "postgres:5432"
    assert proxies["gateway"]["upstream"] == "gateway:8081"
    wallet_env = services["wallet"]["environment"]
    assert f"@toxiproxy:{_listen_port('wallet_db')}/" in wallet_env["DATABASE_URL"]
    assert wallet_env["GATEWAY_URL"] == f"http://toxiproxy:{_listen_port('gateway')}"
    for locust in ("locust-master", "locust-worker"):
        assert services[locust]["environment"]["LOCUST_HOST"] == f"http://toxiproxy:{_listen_port('wallet_api')}"
    assert "-config=/config/toxiproxy.json" in services["toxiproxy"]["command"]
    # published ports only on loopback
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "ports" not in services["locust-worker"], "workers must be scalable (no fixed host port)"


# -- compose, engine -----------------------------------------------------------------------------------
def _compose_cmd() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` (v2) nor docker-compose (v1) is installed: run make docker-engine")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stack_env() -> dict[str, str]:
    """Images as the docker backend resolves them (air-gapped ones when built); host ports free."""
    from walletchaos.topology.docker import resolve_image, _docker_client

    client = _docker_client()
    env = dict(os.environ)
    for service, var in (("wallet", "WALLET_IMAGE"), ("gateway", "GATEWAY_IMAGE"),
                         ("toxiproxy", "TOXIPROXY_IMAGE"), ("postgres", "POSTGRES_IMAGE")):
        env[var] = resolve_image(service, None, client)
    env.setdefault("LOCUST_IMAGE", env["WALLET_IMAGE"])
    for var in ("WALLET_API_PORT", "WALLET_PORT", "GATEWAY_PORT", "TOXIPROXY_PORT", "LOCUST_WEB_PORT"):
        env[var] = str(_free_port())
    return env


@pytest.mark.docker
def test_compose_config_is_valid():
    res = subprocess.run([*_compose_cmd(), "-f", str(COMPOSE_FILE), "config"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "WALLET_IMAGE": "example/wallet:1"})
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    assert resolved["services"]["wallet"]["image"] == "example/wallet:1"
    assert resolved["services"]["postgres"]["image"] == "postgres:17"
    assert resolved["services"]["wallet"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def _smoke(wallet_url: str) -> None:
    """register + login + deposit + balance read, through the given (proxied) URL."""
    user = f"u{secrets.token_hex(6)}"
    with httpx.Client(base_url=wallet_url, timeout=10) as http:
        r = http.post("/v1/users", json={"username": user, "password": "pw-" + user, "pin": "123456"})
        assert r.status_code == 201, r.text
        account = r.json()["account_id"]
        r = http.post("/v1/sessions", json={"username": user, "password": "pw-" + user})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        r = http.post("/v1/deposits", json={"account_id": account, "amount": 1234},
                      headers={**auth, "Idempotency-Key": str(uuid.uuid4())})
        assert r.status_code == 201, r.text
        r = http.get(f"/v1/accounts/{account}", headers=auth)
        assert r.status_code == 200 and r.json()["balance"] == 1234, r.text


def _swarm_and_check_histories(locust_url: str, containers: list[dict]) -> None:
    """A short swarm from the web API: requests flow through the workers, each writes its history."""
    r = httpx.post(f"{locust_url}/swarm", data={"user_count": 4, "spawn_rate": 4}, timeout=10)
    assert r.status_code == 200 and r.json()["success"], r.text
    try:
        deadline = time.monotonic() + 60
        while True:
            stats = httpx.get(f"{locust_url}/stats/requests", timeout=10).json()
            total = next(s for s in stats["stats"] if s["name"] == "Aggregated")
            if total["num_requests"] >= 20:
                break
            assert time.monotonic() < deadline, f"load not flowing: {stats.get('errors')}"
            time.sleep(0.5)  # poll interval of the Locust stats
    finally:
        httpx.get(f"{locust_url}/stop", timeout=10)
    master = next(c["Id"] for c in containers if c["Config"]["Labels"]["com.docker.compose.service"] == "locust-master")
    ls = subprocess.run(["docker", "exec", master, "sh", "-c", "wc -l /data/history/history-*.jsonl"],
                        capture_output=True, text=True, timeout=30)
    lines = [ln.split() for ln in ls.stdout.strip().splitlines() if ln.strip().endswith(".jsonl")]
    writers = [ln for ln in lines if int(ln[0]) > 0]
    assert len(writers) >= 2, f"expected a non-empty history per worker in the shared volume: {ls.stdout}{ls.stderr}"


def _project_containers(project: str) -> list[dict]:
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
                         capture_output=True, text=True, check=True).stdout.split()
    if not out:
        return []
    return json.loads(subprocess.run(["docker", "inspect", *out], capture_output=True, text=True,
                                     check=True).stdout)


@pytest.mark.docker
@pytest.mark.slow
def test_compose_stack_comes_up_healthy_and_serves_through_toxiproxy():
    assert (ROOT / "loadtests" / "locustfile.py").is_file(), "the stack's Locust needs loadtests/locustfile.py"
    cmd = _compose_cmd()
    project = f"wctest{secrets.token_hex(4)}"
    env = _stack_env()
    base = [*cmd, "-f", str(COMPOSE_FILE), "-p", project]
    try:
        up = subprocess.run([*base, "up", "-d", "--no-build", "--scale", "locust-worker=2"],
                            capture_output=True, text=True, env=env, timeout=300)
        assert up.returncode == 0, up.stdout + up.stderr
        deadline = time.monotonic() + 180
        while True:
            containers = _project_containers(project)
            health = {c["Name"].lstrip("/"): (c["State"].get("Health") or {}).get("Status", "none")
                      for c in containers}
            if len(health) == 7 and all(s == "healthy" for s in health.values()):
                break
            assert not any(c["State"]["Status"] == "exited" for c in containers), health
            assert time.monotonic() < deadline, f"not all healthy after 180 s: {health}"
            time.sleep(1)  # poll interval of the health states
        for c in containers:
            assert c["Config"]["Labels"].get("walletchaos") == "1", c["Name"]
        _smoke(f"http://127.0.0.1:{env['WALLET_API_PORT']}")
        # the Locust web UI answers, and both workers reached the master
        r = httpx.get(f"http://127.0.0.1:{env['LOCUST_WEB_PORT']}/stats/requests", timeout=10)
        assert r.status_code == 200
        assert "workers" in r.json(), r.text[:300]
        deadline = time.monotonic() + 30
        while len(r.json()["workers"]) < 2:
            assert time.monotonic() < deadline, r.json().get("workers")
            time.sleep(0.5)
            r = httpx.get(f"http://127.0.0.1:{env['LOCUST_WEB_PORT']}/stats/requests", timeout=10)
        _swarm_and_check_histories(f"http://127.0.0.1:{env['LOCUST_WEB_PORT']}", containers)
    except BaseException:
        logs = subprocess.run([*base, "logs", "--no-color", "--tail", "30"], capture_output=True, text=True,
                              env=env, timeout=60)
        print(logs.stdout[-8000:])
        raise
    finally:
        subprocess.run([*base, "down", "-v", "--remove-orphans", "-t", "5"], capture_output=True, env=env,
                       timeout=120)
    assert _project_containers(project) == []
    vols = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert vols == []
