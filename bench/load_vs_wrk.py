"""Load generation: Locust (headless, one process, history recording) vs wrk on the same endpoint.

Endpoint: the wallet's GET /v1/accounts/{id} with a bearer token, through the topology's `wallet_api`
Toxiproxy proxy (the path the harness's load takes). Same number of connections for both: wrk
`-t1 -c C`, Locust C users with no wait time (one keep-alive connection each). Locust records every
request into a history file; its rate is counted from that history (ops / active window), so an op
that was not recorded does not count.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import PY, REPO, BenchContext, Skip, make_users

TARGET_RATIO = 0.8


def ensure_wrk() -> str:
    """Path of wrk; installs the Debian package when running as root, else Skip with one line."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        r = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, env=env, timeout=300)
        if r.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, env=env, timeout=300)
        path = shutil.which("wrk")
        if path:
            return path
    raise Skip("wrk is not installed: run `sudo apt-get install -y wrk` (Debian package) and re-run make bench")


def _to_ms(v: str, unit: str) -> float:
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, token: str, connections: int, duration_s: int) -> dict[str, Any]:
    wrk = ensure_wrk()
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency",
           "-H", f"Authorization: Bearer {token}", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed: {r.stderr.strip()[-300:]}")
    out = r.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)s", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", out, re.M)
    if not rps:
        raise RuntimeError(f"wrk output not understood: {out[-300:]}")
    return {"requests_per_s": float(rps.group(1)), "requests": int(total.group(1)) if total else None,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else None,
            "latency_p50_ms": _to_ms(*p50.groups()) if p50 else None,
            "latency_p99_ms": _to_ms(*p99.groups()) if p99 else None,
            "connections": connections, "duration_s": duration_s}


def run_locust(url: str, token: str, account_id: str, users: int, duration_s: int, workdir: Path,
               client: str = "fast", locustfile: Path | None = None,
               profile_to: Path | None = None) -> dict[str, Any]:
    """One headless Locust process; `profile_to` runs it under pyinstrument (text report there)."""
    from walletchaos.history import read_history

    workdir.mkdir(parents=True, exist_ok=True)
    hist_prefix = workdir / f"locust-{client}-{time.time_ns()}"
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_ACCOUNT": account_id,
           "BENCH_HISTORY": str(hist_prefix), "BENCH_CLIENT": client, "PYTHONPATH": str(REPO)}
    locustfile = locustfile or (REPO / "bench" / "locust_read.py")
    base = [PY, "-m", "pyinstrument", "-r", "text", "-o", str(profile_to), "-m", "locust"] if profile_to \
        else [PY, "-m", "locust"]
    cmd = base + ["-f", str(locustfile), "--headless", "-u", str(users), "-r", str(users),
                  "-t", f"{duration_s}s", "--host", url, "--only-summary", "--loglevel", "WARNING",
                  "--stop-timeout", "2", "--exit-code-on-error", "0"]
    log = open(workdir / f"locust-{client}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            cwd=str(REPO))
    cpu = 0.0
    try:
        ps = psutil.Process(proc.pid)
        deadline = time.monotonic() + duration_s + 60
        while proc.poll() is None:
            try:
                t = ps.cpu_times()
                cpu = t.user + t.system
            except psutil.NoSuchProcess:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("locust did not stop in time")
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    files = sorted(workdir.glob(hist_prefix.name + ".*.jsonl"))
    ops = [op for f in files for op in read_history(f)]
    if not ops:
        tail = (workdir / f"locust-{client}.log").read_text(errors="replace")[-500:]
        raise RuntimeError(f"locust recorded no ops (exit {proc.returncode}): {tail}")
    t0 = min(o["invoke_ts"] for o in ops)
    t1 = max(o["complete_ts"] or o["invoke_ts"] for o in ops)
    ok = sum(1 for o in ops if o["outcome"] == "ok")
    window = max(t1 - t0, 1e-9)
    lat = sorted(o["latency_ms"] for o in ops if o["latency_ms"] is not None)
    return {"requests_per_s": round(len(ops) / window, 1), "ok_per_s": round(ok / window, 1),
            "ops_recorded": len(ops), "ok": ok, "window_s": round(window, 3), "client": client,
            "users": users, "processes": 1, "locust_cpu_s": round(cpu, 2),
            "locust_cpu_share_of_one_core": round(cpu / window, 2),
            "latency_p50_ms": lat[len(lat) // 2] if lat else None,
            "latency_p99_ms": lat[int(len(lat) * 0.99)] if lat else None,
            "exit_code": proc.returncode}


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    topo = ctx.topology()
    ensure_wrk()
    conns = 10
    duration = 3 if quick else 10
    user = make_users(topo.wallet_direct_url, 1, deposit=1000, prefix="rd")[0]
    url = f"{topo.wallet_url}/v1/accounts/{user.account_id}"
    res: dict[str, Any] = {"connections": conns, "duration_s": duration, "endpoint": "GET /v1/accounts/{id}",
                           "path": "through toxiproxy wallet_api"}
    # interleaved rounds (wrk, then Locust, R times) so the shared box's load drifts hit both alike
    rounds = 1 if quick else 3
    per = duration if quick else 4
    wrk_runs, loc_runs = [], []
    for _ in range(rounds):
        t0 = time.time()
        w = run_wrk(url, user.token, conns, per)
        w["load"] = ctx.sampler.window(t0, time.time())
        wrk_runs.append(w)
        t1 = time.time()
        lr = run_locust(topo.wallet_url, user.token, user.account_id, conns, per, ctx.workdir / "locust",
                        client="fast")
        lr["load"] = ctx.sampler.window(t1, time.time())
        loc_runs.append(lr)
    res["rounds"] = rounds
    res["round_s"] = per
    res["wrk"] = wrk_runs
    res["locust_fast"] = loc_runs
    res["wrk_rps"] = round(sum(w["requests_per_s"] for w in wrk_runs) / rounds, 1)
    res["locust_rps"] = round(sum(x["ok_per_s"] for x in loc_runs) / rounds, 1)
    res["locust_rps_per_process"] = res["locust_rps"]
    res["locust_cpu_share_of_one_core"] = round(sum(x["locust_cpu_share_of_one_core"] for x in loc_runs) / rounds, 2)
    res["locust_vs_wrk"] = round(res["locust_rps"] / res["wrk_rps"], 3)
    if not quick:  # HttpUser (requests) as a raw figure, one round
        t1 = time.time()
        h = run_locust(topo.wallet_url, user.token, user.account_id, conns, per, ctx.workdir / "locust", client="http")
        h["load"] = ctx.sampler.window(t1, time.time())
        res["locust_http"] = h
        res["locust_http_vs_wrk"] = round(h["ok_per_s"] / res["wrk_rps"], 3)
    # Locust's own ceiling: the same locustfile against a trivial local server (bench.toxiproxy_hop's)
    from bench.toxiproxy_hop import _start_tiny

    tiny, port = _start_tiny()
    try:
        c = run_locust(f"http://127.0.0.1:{port}", user.token, user.account_id, conns, 3 if quick else 5,
                       ctx.workdir / "locust", client="fast")
        res["locust_ceiling_trivial_server"] = c
        res["locust_ceiling_rps_per_process"] = c["ok_per_s"]
    finally:
        tiny.kill()
        tiny.wait()
    # keep what's needed to profile this pair again (bench.profile)
    ctx.extra["read_user"] = user
    return res
