"""Every scenario of the catalog, shortened, against the real processes: all invariants must hold.

This is `make chaos` in small: real PostgreSQL, real Toxiproxy, real Locust, real HTTP. A failure
prints the failing invariants with their first counterexamples and the run directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from walletchaos.runner import RunOptions, run_scenario
from walletchaos.scenario import load_catalog

REPO = Path(__file__).resolve().parent.parent
CATALOG = {s.name: s for s in load_catalog(REPO / "scenarios")}
# CI budget: each scenario shortened to at most this much load (faults scale with it)
MAX_DURATION_S = 16.0


def test_catalog_is_complete():
    families = {s.family for s in CATALOG.values()}
    assert len(CATALOG) >= 14
    assert {"baseline", "server", "network", "database", "gateway", "operations", "load", "combined"} <= families


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CATALOG))
def test_scenario_holds_on_correct_wallet(name: str, tmp_path: Path) -> None:
    scenario = CATALOG[name]
    opts = RunOptions(report_dir=tmp_path, seed=1, show_progress=False,
                      duration_s=min(scenario.duration_s, MAX_DURATION_S))
    result = run_scenario(scenario, opts)
    failed = [r for r in result.verdict["results"] if not r["passed"]]
    detail = "\n".join(f"{r['name']}: {r['summary']}\n  {json.dumps(r['counterexamples'][:3])[:1500]}" for r in failed)
    assert not failed, f"{name} broke invariants (run dir {result.run_dir}):\n{detail}"
    assert (result.run_dir / "index.html").stat().st_size > 10_000
    assert (result.run_dir / "junit.xml").exists()
    # a passed run drops its stack data (~50 MB of PostgreSQL) and keeps the service logs
    assert not (result.run_dir / "stack").exists()
    assert (result.run_dir / "logs" / "wallet.log").stat().st_size > 0


# Backend `docker`: baseline and one scenario per fault family, the same files unchanged.
DOCKER_SUBSET = ["baseline", "wallet-kill", "network-flaky", "db-crash", "gateway-slow", "maintenance-window",
                 "peak-hour-congestion"]


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.parametrize("name", DOCKER_SUBSET)
def test_scenario_holds_on_docker_backend(name: str, tmp_path: Path) -> None:
    scenario = CATALOG[name]
    opts = RunOptions(backend="docker", report_dir=tmp_path, seed=1, show_progress=False,
                      duration_s=min(scenario.duration_s, MAX_DURATION_S))
    result = run_scenario(scenario, opts)
    failed = [r for r in result.verdict["results"] if not r["passed"]]
    detail = "\n".join(f"{r['name']}: {r['summary']}\n  {json.dumps(r['counterexamples'][:3])[:1500]}" for r in failed)
    assert not failed, f"{name} on docker broke invariants (run dir {result.run_dir}):\n{detail}"
    assert result.verdict["meta"]["backend"] == "docker"
