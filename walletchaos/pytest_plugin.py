"""pytest plugin: write your own resilience tests against the real stack.

Fixtures (registered through the `pytest11` entry point when walletchaos is installed):
- `wallet_topology` (module scope): the process topology, started once per test module.
- `chaos`: a `walletchaos.chaos.Chaos` handle on it; every fault is undone and Toxiproxy reset after
  each test, also when the test fails.

    def test_db_latency(chaos):
        with chaos.toxic("wallet_db", "latency", latency=800):
            history = chaos.load(users=5, duration_s=8)
        verdict = chaos.check(history, errors_allowed=["DATABASE_UNAVAILABLE"])
        assert verdict.passed, verdict_summary(verdict)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest


def _workdir(prefix: str) -> Path:
    # PostgreSQL runs as an unprivileged user when we are root: pytest's 0700 tmp dirs would lock it out
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    return path


@pytest.fixture(scope="module")
def wallet_topology() -> Iterator["object"]:
    from walletchaos.topology.process import ProcessTopology

    workdir = _workdir("walletchaos-pytest-")
    topo = ProcessTopology(workdir / "stack")
    try:
        topo.start()
        yield topo
    finally:
        topo.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def chaos(wallet_topology, request) -> Iterator["object"]:
    from walletchaos.chaos import Chaos

    workdir = _workdir("walletchaos-chaos-")
    handle = Chaos(wallet_topology, workdir)
    handle.reset()
    try:
        yield handle
    finally:
        handle.reset()
        handle.events.close()
        if getattr(request.node, "rep_failed", False):
            print(f"walletchaos: history and events of the failed test kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep the chaos work dir (history, events, locust log) of a failed test for inspection."""
    report = yield
    if report.when == "call":
        item.rep_failed = report.failed
    return report
