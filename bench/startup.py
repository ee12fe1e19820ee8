"""Topology start-up time: start() until every service is ready, on a fresh work dir (as each run does).

Process backend: always (cold: includes initdb of a fresh PostgreSQL cluster). Docker backend: when a
Docker engine answers and walletchaos.topology.docker exists, else skipped with the reason recorded.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import BenchContext, Skip, wallet_available


def _time_start(backend: str, workdir: Path) -> dict[str, Any]:
    from walletchaos.topology.base import make_topology

    topo = make_topology(backend, workdir)
    t0 = time.perf_counter()
    try:
        topo.start()
        start_s = time.perf_counter() - t0
        t1 = time.perf_counter()
    finally:
        t1 = time.perf_counter()
        topo.stop()
    stop_s = time.perf_counter() - t1
    return {"start_s": round(start_s, 3), "stop_s": round(stop_s, 3)}


def docker_skip_reason() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI"
    try:
        r = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                           timeout=10)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if r.returncode != 0 or not r.stdout.strip():
        return f"no Docker engine: {r.stderr.strip()[:200]}"
    if importlib.util.find_spec("walletchaos.topology.docker") is None:
        return f"Docker engine {r.stdout.strip()} runs, but walletchaos/topology/docker.py does not exist yet"
    return None


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    reason = wallet_available()
    if reason:
        raise Skip(f"wallet not available: {reason}")
    res: dict[str, Any] = {}
    runs = 1 if quick else 2
    samples = []
    for i in range(runs):
        wd = Path(tempfile.mkdtemp(prefix="bench-startup-", dir=ctx.workdir))
        t0 = time.time()
        r = _time_start("process", wd)
        r["load"] = ctx.sampler.window(t0, time.time())
        samples.append(r)
        shutil.rmtree(wd, ignore_errors=True)
    res["process"] = samples
    res["startup_s_process"] = min(s["start_s"] for s in samples)
    dreason = docker_skip_reason()
    if dreason:
        res["docker"] = {"skipped": dreason}
    else:
        wd = Path(tempfile.mkdtemp(prefix="bench-startup-docker-", dir=ctx.workdir))
        try:
            res["docker"] = _time_start("docker", wd)
            res["startup_s_docker"] = res["docker"]["start_s"]
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            res["docker"] = {"skipped": f"docker topology failed: {type(exc).__name__}: {str(exc)[:300]}"}
        finally:
            shutil.rmtree(wd, ignore_errors=True)
    return res
