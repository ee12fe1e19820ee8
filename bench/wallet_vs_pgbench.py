"""Wallet transfer throughput vs pgbench TPC-B on the same embedded PostgreSQL, in one run.

pgbench: its own database `pgbench` in the topology's cluster, `pgbench -i -s 1`, then
`pgbench -c C -j 2 -T D` straight to PostgreSQL's port (the physical limit) and, as a raw figure,
through the topology's `wallet_db` Toxiproxy proxy (the path the wallet's own queries take).
Wallet: U users funded by deposits, then C concurrent async httpx clients POST /v1/transfers
(Idempotency-Key, Bearer token, PIN: all correctness machinery on) for D seconds, straight to the
wallet's port. CPU seconds of the wallet, PostgreSQL and the bench client are recorded alongside, to
show which one is the bottleneck on this machine.
"""

from __future__ import annotations

import asyncio
import random
import re
import subprocess
import time
import uuid
from collections import Counter
from typing import Any

from bench.common import BenchContext, Skip, make_users, proc_cpu_s

TARGET_RATIO = 0.5


def _pg_cmd(name: str) -> str:
    from mock_wallet.embedded_pg import bin_path

    return str(bin_path(name))


def pgbench_setup(host: str, port: int, db: str = "pgbench") -> None:
    psql = [_pg_cmd("psql"), "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres", "-tAc"]
    exists = subprocess.run(psql + [f"SELECT 1 FROM pg_database WHERE datname='{db}'"],
                            capture_output=True, text=True, timeout=30)
    if exists.stdout.strip() != "1":
        r = subprocess.run(psql + [f'CREATE DATABASE "{db}"'], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"create database {db}: {r.stderr.strip()}")
    r = subprocess.run([_pg_cmd("pgbench"), "-i", "-s", "1", "-q", "-h", host, "-p", str(port), "-U", "postgres", db],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench -i failed: {r.stderr.strip()[-500:]}")


def pgbench_run(host: str, port: int, clients: int, duration_s: int, db: str = "pgbench") -> dict[str, Any]:
    cmd = [_pg_cmd("pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(duration_s),
           "-h", host, "-p", str(port), "-U", "postgres", db]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench failed: {r.stderr.strip()[-500:]}")
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", r.stdout)
    lat = re.search(r"latency average = ([\d.]+) ms", r.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
    if not m:
        raise RuntimeError(f"pgbench output not understood: {r.stdout[-500:]}")
    return {"tps": float(m.group(1)), "latency_avg_ms": float(lat.group(1)) if lat else None,
            "transactions": int(done.group(1)) if done else None, "clients": clients, "duration_s": duration_s}


async def _drive_transfers(base_url: str, users, clients: int, duration_s: float, seed: int = 1) -> dict[str, Any]:
    import httpx

    rng = random.Random(seed)
    statuses: Counter[int | str] = Counter()
    lat_ms: list[float] = []
    stop_at = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def worker(c: httpx.AsyncClient) -> None:
        while time.perf_counter() < stop_at:
            src, dst = rng.sample(users, 2)
            t0 = time.perf_counter()
            try:
                r = await c.post("/v1/transfers",
                                 json={"from_account_id": src.account_id, "to_account_id": dst.account_id,
                                       "amount": rng.randint(1, 100), "pin": src.pin},
                                 headers={"Authorization": f"Bearer {src.token}",
                                          "Idempotency-Key": uuid.uuid4().hex})
                statuses[r.status_code] += 1
                if r.status_code == 201:
                    lat_ms.append((time.perf_counter() - t0) * 1000)
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, limits=limits) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    lat_ms.sort()
    ok = statuses.get(201, 0)
    return {"transfers_ok": ok, "elapsed_s": round(elapsed, 3), "transfers_per_s": round(ok / elapsed, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "latency_p50_ms": round(lat_ms[len(lat_ms) // 2], 2) if lat_ms else None,
            "latency_p99_ms": round(lat_ms[int(len(lat_ms) * 0.99)], 2) if lat_ms else None,
            "clients": clients}


def drive_transfers(base_url: str, users, clients: int, duration_s: float) -> dict[str, Any]:
    return asyncio.run(_drive_transfers(base_url, users, clients, duration_s))


class PgActivitySampler:
    """Samples pg_stat_activity of the wallet database every `interval` s (psql, its own connection):
    what the wallet's backends are doing while it serves transfers: running, waiting on a row lock
    (Lock), on WAL flush (IO/LWLock), or idle *in transaction* (the wallet holds a transaction open
    while it does something else, e.g. Python work between statements)."""

    QUERY = ("SELECT state || '|' || coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, '-') "
             "FROM pg_stat_activity WHERE datname = 'wallet' AND pid <> pg_backend_pid() "
             "AND backend_type = 'client backend'")

    def __init__(self, host: str, port: int, interval: float = 0.2) -> None:
        import threading

        self.cmd = [_pg_cmd("psql"), "-h", host, "-p", str(port), "-U", "postgres", "-d", "wallet", "-tAc", self.QUERY]
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                r = subprocess.run(self.cmd, capture_output=True, text=True, timeout=5)
                self.counts.update(ln.strip() for ln in r.stdout.splitlines() if ln.strip())
                self.samples += 1
            except subprocess.TimeoutExpired:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> "PgActivitySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> dict[str, Any]:
        """Average number of the wallet's backends in each state|wait_event per sample."""
        n = max(self.samples, 1)
        return {"samples": self.samples,
                "avg_backends": {k: round(v / n, 2) for k, v in self.counts.most_common()}}


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    topo = ctx.topology()
    clients = 10
    duration = 3 if quick else 10
    n_users = 10 if quick else 50
    pg = topo.pg
    res: dict[str, Any] = {"clients": clients, "duration_s": duration}

    t0 = time.time()
    pgbench_setup(pg.host, pg.port)
    res["pgbench_direct"] = pgbench_run(pg.host, pg.port, clients, duration)
    res["pgbench_direct"]["load"] = ctx.sampler.window(t0, time.time())
    try:
        db_proxy = topo.toxiproxy().proxy("wallet_db")
        t1 = time.time()
        res["pgbench_via_toxiproxy"] = pgbench_run(pg.host, db_proxy.listen_port, clients, duration)
        res["pgbench_via_toxiproxy"]["load"] = ctx.sampler.window(t1, time.time())
    except Exception as exc:  # noqa: BLE001 - raw extra figure only
        res["pgbench_via_toxiproxy"] = {"skipped": f"{type(exc).__name__}: {exc}"}

    users = make_users(topo.wallet_direct_url, n_users, deposit=10_000_000, prefix="tx")
    drive_transfers(topo.wallet_direct_url, users, clients, 1.0)  # warm-up: pools, caches
    import os

    cpu0 = {"wallet": proc_cpu_s(topo.wallet.pid), "postgres": proc_cpu_s(pg.pid),
            "bench_client": proc_cpu_s(os.getpid(), children=False)}
    t2 = time.time()
    with PgActivitySampler(pg.host, pg.port) as activity:
        wallet = drive_transfers(topo.wallet_direct_url, users, clients, duration)
    wallet["pg_activity"] = activity.summary()
    wallet["load"] = ctx.sampler.window(t2, time.time())
    cpu1 = {"wallet": proc_cpu_s(topo.wallet.pid), "postgres": proc_cpu_s(pg.pid),
            "bench_client": proc_cpu_s(os.getpid(), children=False)}
    wallet["cpu_share_of_one_core"] = {k: round((cpu1[k] - cpu0[k]) / wallet["elapsed_s"], 2) for k in cpu0}
    res["wallet"] = wallet
    if wallet["transfers_ok"] == 0:
        raise Skip(f"no transfer succeeded: statuses {wallet['statuses']}")
    res["wallet_transfers_per_s"] = wallet["transfers_per_s"]
    res["pgbench_tps"] = res["pgbench_direct"]["tps"]
    res["wallet_vs_pgbench"] = round(wallet["transfers_per_s"] / res["pgbench_tps"], 3)
    return res
