"""The Helm chart deploy/helm/walletchaos, rendered with the real helm (`helm lint`, `helm template`) and
checked structurally: no cluster needed. helm comes from scripts/install-helm.sh (go install, pinned),
run here when missing, so this never skips in CI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "walletchaos"
INSTALL = ROOT / "scripts" / "install-helm.sh"
HELM = ROOT / ".venv" / "bin" / "helm"
RELEASE = "wc"
WORKLOADS = ("Deployment", "StatefulSet")
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                   "app.kubernetes.io/version", "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
# component -> (readiness path, liveness path) of its HTTP probes
HTTP_PROBES = {"wallet": ("/readyz", "/healthz"), "gateway": ("/readyz", "/healthz"),
               "toxiproxy": ("/proxies", "/version"), "locust-master": ("/", "/")}
COMPONENTS = {"postgres", "toxiproxy", "gateway", "wallet", "locust-master", "locust-worker"}
HOPS = ("wallet_api", "wallet_db", "gateway")

# a cold `go install` of helm takes minutes on 2 busy cores (once, in the first test that needs helm)
pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]  # slow: real helm subprocesses (and a build)


@pytest.fixture(scope="module")
def helm() -> str:
    go = shutil.which("go")
    if go is None and not HELM.exists():
        pytest.fail("helm is not installed and Go is missing: install Go >= 1.26, then scripts/install-helm.sh "
                    "builds helm v3.22.0 into .venv/bin (go install helm.sh/helm/v3/cmd/helm@v3.22.0)")
    done = subprocess.run(["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"scripts/install-helm.sh failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return str(HELM)


def helm_run(helm: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def render(helm: str, *sets: str) -> list[dict[str, Any]]:
    args = [a for s in sets for a in ("--set", s)]
    out = helm_run(helm, "template", RELEASE, str(CHART), *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """{component label: object} of one kind."""
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in docs if d["kind"] == kind}


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c: d for kind in WORKLOADS for c, d in by_kind(docs, kind).items()}


def container(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    [c] = workloads(docs)[component]["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def compose_default(variable: str) -> str:
    """The default image docker-compose.yml gives `${VARIABLE:-default}`: the chart must agree."""
    text = (ROOT / "docker-compose.yml").read_text()
    match = re.search(r"\$\{" + variable + r":-([^}]+)\}", text)
    assert match, f"{variable} not in docker-compose.yml"
    return match.group(1)


@pytest.fixture(scope="module")
def default_docs(helm: str) -> list[dict[str, Any]]:
    return render(helm)


def test_lint_strict(helm: str) -> None:
    done = helm_run(helm, "lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in done.stdout
    overridden = helm_run(helm, "lint", "--strict", str(CHART), "--set", "postgres.persistence.enabled=true",
                          "--set", "toxiproxy.bypass={wallet_db}", "--set", "locust.historyClaim=history")
    assert "0 chart(s) failed" in overridden.stdout


def test_renders_the_whole_stack(default_docs: list[dict[str, Any]]) -> None:
    assert set(workloads(default_docs)) == COMPONENTS
    assert set(by_kind(default_docs, "StatefulSet")) == {"postgres"}
    assert set(by_kind(default_docs, "Service")) == COMPONENTS - {"locust-worker"}
    for component in ("wallet", "gateway", "toxiproxy"):  # one instance each: faults address that one
        assert workloads(default_docs)[component]["spec"]["replicas"] == 1


def test_every_container_has_probes_resources_and_standard_labels(default_docs: list[dict[str, Any]]) -> None:
    for component, obj in workloads(default_docs).items():
        for labels in (obj["metadata"]["labels"], obj["spec"]["template"]["metadata"]["labels"]):
            missing = [k for k in STANDARD_LABELS if not labels.get(k)]
            assert not missing, f"{component}: labels {missing} missing"
            assert labels["app.kubernetes.io/component"] == component
            assert labels["app.kubernetes.io/instance"] == RELEASE
        selector = obj["spec"]["selector"]["matchLabels"]
        assert selector.items() <= obj["spec"]["template"]["metadata"]["labels"].items()
        assert "app.kubernetes.io/version" not in selector  # selectors are immutable: no version in them
        for c in obj["spec"]["template"]["spec"]["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{component}: {kind}"
            assert "readinessProbe" in c, f"{component}: no readiness probe"
            if component in HTTP_PROBES:
                ready, live = HTTP_PROBES[component]
                assert c["readinessProbe"]["httpGet"]["path"] == ready, component
                assert c["livenessProbe"]["httpGet"]["path"] == live, component
                ports = {p["name"] for p in c["ports"]}
                assert {c["readinessProbe"]["httpGet"]["port"], c["livenessProbe"]["httpGet"]["port"]} <= ports
    pg = container(default_docs, "postgres")
    assert pg["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert pg["livenessProbe"]["exec"]["command"][0] == "pg_isready"


def test_services_select_pods_and_name_real_ports(default_docs: list[dict[str, Any]]) -> None:
    pods = workloads(default_docs)
    for component, svc in by_kind(default_docs, "Service").items():
        template = pods[component]["spec"]["template"]
        assert svc["spec"]["selector"].items() <= template["metadata"]["labels"].items(), component
        port_names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{component}: targetPort {port['targetPort']}"


def _services(docs: list[dict[str, Any]]) -> dict[str, set[int]]:
    return {s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]} for s in docs if s["kind"] == "Service"}


def _address(url: str) -> tuple[str, int]:
    host, port = re.search(r"(?:@|//)([\w.-]+):(\d+)", url).groups()
    return host, int(port)


def test_every_hop_crosses_toxiproxy_like_compose(default_docs: list[dict[str, Any]]) -> None:
    proxy = f"{RELEASE}-walletchaos-toxiproxy"
    [config] = [d for d in default_docs if d["kind"] == "ConfigMap"]
    proxies = {p["name"]: p for p in json.loads(config["data"]["toxiproxy.json"])}
    compose = {p["name"]: p for p in json.loads((ROOT / "docker" / "toxiproxy.json").read_text())}
    assert set(proxies) == set(compose) == set(HOPS)
    services = _services(default_docs)
    for name, p in proxies.items():
        assert p["listen"] == compose[name]["listen"] and p["enabled"]
        host, port = _address("//" + p["upstream"])
        assert port in services[host], f"{name}: upstream {p['upstream']} is no Service port"
    wallet = env_of(container(default_docs, "wallet"))
    listen = {name: int(p["listen"].rsplit(":", 1)[1]) for name, p in proxies.items()}
    assert _address(wallet["DATABASE_URL"]) == (proxy, listen["wallet_db"])
    assert _address(wallet["GATEWAY_URL"]) == (proxy, listen["gateway"])
    assert wallet["WALLET_ADMIN_TOKEN"]["secretKeyRef"]["key"] == "admin-token"
    for component in ("locust-master", "locust-worker"):
        assert _address(env_of(container(default_docs, component))["LOCUST_HOST"]) == (proxy, listen["wallet_api"])
    master = env_of(container(default_docs, "locust-worker"))["LOCUST_MASTER_NODE_HOST"]
    assert master == f"{RELEASE}-walletchaos-locust-master"


def test_bypassed_hop_goes_direct_and_all_bypassed_drops_toxiproxy(helm: str) -> None:
    docs = render(helm, "toxiproxy.bypass={wallet_db}")
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    assert {p["name"] for p in json.loads(config["data"]["toxiproxy.json"])} == {"wallet_api", "gateway"}
    wallet = env_of(container(docs, "wallet"))
    assert _address(wallet["DATABASE_URL"]) == (f"{RELEASE}-walletchaos-postgres", 5432)
    assert _address(wallet["GATEWAY_URL"])[0] == f"{RELEASE}-walletchaos-toxiproxy"
    none = render(helm, "toxiproxy.bypass={wallet_api,wallet_db,gateway}")
    assert "toxiproxy" not in workloads(none) and not [d for d in none if d["kind"] == "ConfigMap"]
    assert _address(env_of(container(none, "locust-worker"))["LOCUST_HOST"]) == (f"{RELEASE}-walletchaos-wallet", 8080)
    bad = helm_run(helm, "template", RELEASE, str(CHART), "--set", "toxiproxy.bypass={wallet_cache}", check=False)
    assert bad.returncode != 0 and "/toxiproxy/bypass/0" in bad.stderr and "wallet_db" in bad.stderr  # schema


def test_default_images_are_the_compose_ones(default_docs: list[dict[str, Any]]) -> None:
    images = {c: container(default_docs, c)["image"] for c in COMPONENTS}
    assert images["postgres"] == compose_default("POSTGRES_IMAGE")
    assert images["toxiproxy"] == compose_default("TOXIPROXY_IMAGE")
    assert images["wallet"] == compose_default("WALLET_IMAGE")
    assert images["gateway"] == compose_default("GATEWAY_IMAGE")
    assert images["locust-master"] == images["locust-worker"] == compose_default("LOCUST_IMAGE")


def test_images_come_from_values(helm: str) -> None:
    docs = render(helm, "postgres.image.repository=reg.local/pg", "postgres.image.tag=16.4",
                  "toxiproxy.image.repository=reg.local/toxiproxy", "toxiproxy.image.tag=2.12.0-air",
                  "wallet.image.repository=reg.local/wallet", "wallet.image.tag=abc123",
                  "gateway.image.tag=gw1", "locust.workers.image.repository=reg.local/locust",
                  "appImage.repository=reg.local/app", "appImage.tag=v9", "appImage.pullPolicy=Always")
    images = {c: container(docs, c)["image"] for c in COMPONENTS}
    assert images == {"postgres": "reg.local/pg:16.4", "toxiproxy": "reg.local/toxiproxy:2.12.0-air",
                      "wallet": "reg.local/wallet:abc123",
                      "gateway": "reg.local/app:gw1",           # tag only: repository falls back to appImage
                      "locust-worker": "reg.local/locust:v9",   # repository only: tag falls back to appImage
                      "locust-master": "reg.local/app:v9"}      # nothing set: appImage
    assert container(docs, "locust-master")["imagePullPolicy"] == "Always"


def test_locust_worker_count_from_values(helm: str, default_docs: list[dict[str, Any]]) -> None:
    assert workloads(default_docs)["locust-worker"]["spec"]["replicas"] == 2
    docs = render(helm, "locust.workers.replicas=7")
    assert workloads(docs)["locust-worker"]["spec"]["replicas"] == 7
    assert "--expect-workers=7" in container(docs, "locust-master")["args"]
    bad = helm_run(helm, "template", RELEASE, str(CHART), "--set", "locust.workers.replicas=many", check=False)
    assert bad.returncode != 0 and "replicas" in bad.stderr  # values.schema.json


def test_secrets_and_persistence_options(helm: str, default_docs: list[dict[str, Any]]) -> None:
    assert {d["metadata"]["name"] for d in default_docs if d["kind"] == "Secret"} == {
        f"{RELEASE}-walletchaos-postgres", f"{RELEASE}-walletchaos-wallet"}
    pg = workloads(default_docs)["postgres"]
    assert pg["spec"]["template"]["spec"]["volumes"] == [{"name": "data", "emptyDir": {}}]
    docs = render(helm, "postgres.existingSecret=pg-creds", "wallet.existingSecret=wallet-creds",
                  "postgres.persistence.enabled=true", "postgres.persistence.size=5Gi")
    assert not [d for d in docs if d["kind"] == "Secret"]
    wallet = env_of(container(docs, "wallet"))
    assert wallet["WALLET_ADMIN_TOKEN"]["secretKeyRef"]["name"] == "wallet-creds"
    assert wallet["POSTGRES_PASSWORD"]["secretKeyRef"]["name"] == "pg-creds"
    [claim] = workloads(docs)["postgres"]["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert "volumes" not in workloads(docs)["postgres"]["spec"]["template"]["spec"]


def test_planted_bugs_only_when_asked(helm: str, default_docs: list[dict[str, Any]]) -> None:
    assert "WALLET_BUGS" not in env_of(container(default_docs, "wallet"))
    wallet = env_of(container(render(helm, "wallet.bugs=lost-update"), "wallet"))
    assert wallet["WALLET_BUGS"] == "lost-update" and wallet["WALLET_ALLOW_BUGS"] == "1"


def _allowed(policy: dict[str, Any]) -> set[str]:
    [rule] = policy["spec"]["ingress"]
    return {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]}


def test_network_policies_make_toxiproxy_the_only_way_in(helm: str, default_docs: list[dict[str, Any]]) -> None:
    assert not [d for d in default_docs if d["kind"] == "NetworkPolicy"]  # off by default
    docs = render(helm, "networkPolicy.enabled=true")
    policies = by_kind(docs, "NetworkPolicy")
    assert set(policies) == {"wallet", "postgres", "gateway"}
    pods = workloads(docs)
    for component, policy in policies.items():
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= \
            pods[component]["spec"]["template"]["metadata"]["labels"].items()
        assert _allowed(policy) == {"toxiproxy", "harness"}, component
    assert policies["postgres"]["spec"]["ingress"][0]["ports"] == [{"port": 5432}]
    bypassed = by_kind(render(helm, "networkPolicy.enabled=true", "toxiproxy.bypass={wallet_db,wallet_api}"),
                       "NetworkPolicy")
    assert _allowed(bypassed["postgres"]) == {"wallet", "harness"}
    assert _allowed(bypassed["wallet"]) == {"locust-master", "locust-worker", "harness"}
    assert _allowed(bypassed["gateway"]) == {"toxiproxy", "harness"}


def test_helm_test_hook_checks_the_wallet_through_the_wallet_api_hop(default_docs: list[dict[str, Any]]) -> None:
    [pod] = [d for d in default_docs if d["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    [c] = pod["spec"]["containers"]
    assert c["command"] == ["walletchaos-healthcheck", f"http://{RELEASE}-walletchaos-toxiproxy:18080/readyz"]
    assert {"cpu", "memory"} <= set(c["resources"]["limits"]) and pod["spec"]["restartPolicy"] == "Never"


def test_every_object_carries_the_standard_labels(helm: str) -> None:
    docs = render(helm, "networkPolicy.enabled=true", "commonLabels.team=payments")
    assert {d["kind"] for d in docs} >= {"Secret", "ConfigMap", "Service", "Deployment", "StatefulSet",
                                         "NetworkPolicy", "Pod"}
    for d in docs:
        labels = d["metadata"]["labels"]
        missing = [k for k in STANDARD_LABELS if not labels.get(k)]
        assert not missing, f"{d['kind']} {d['metadata']['name']}: {missing}"
        assert labels["team"] == "payments" and labels["helm.sh/chart"].startswith("walletchaos-")
