"""Profile the component behind the worst ratio with pyinstrument and keep the report's top frames.

- wallet_vs_pgbench → a second wallet process (same settings as the topology's) run under
  `python -m pyinstrument -m mock_wallet.serve wallet`, driven by the same transfer load, stopped with
  SIGTERM (uvicorn shuts down cleanly, pyinstrument writes its report);
- locust_vs_wrk → the Locust process of the read benchmark under pyinstrument;
- checker_ops_per_s_1m → run_checks on a 100k-op history under pyinstrument's in-process Profiler.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import LOOPBACK, PY, REPO, BenchContext, Skip, make_users

PROFILEABLE = ("wallet_vs_pgbench", "locust_vs_wrk", "checker_ops_per_s_1m")


def top_lines(text: str, n: int = 45) -> str:
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    # skip pyinstrument's banner (the tree starts at the first line holding a duration figure)
    start = next((i for i, ln in enumerate(lines) if ln.lstrip()[:1].isdigit()), 0)
    return "\n".join(lines[start:start + n])


def _extra_wallet(ctx: BenchContext, quick: bool, out: Path | str, extra_env: dict[str, str] | None = None,
                  seconds: float | None = None) -> dict[str, Any]:
    """A second wallet process on the topology's database (optionally profiled, optionally with other
    settings), fresh users, the same transfer load as the benchmark; returns the driver's figures."""
    import httpx

    from bench.wallet_vs_pgbench import drive_transfers
    from mock_wallet.embedded_pg import free_port

    topo = ctx.topology()
    port = free_port()
    env = {**os.environ, **topo.wallet.env, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    log = open(ctx.workdir / f"wallet-extra-{port}.log", "wb")
    proc = subprocess.Popen([PY, "-m", "bench.profiled_serve", str(out), "wallet", "--host", LOOPBACK, "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                            cwd=str(REPO), start_new_session=True)
    url = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise Skip(f"profiled wallet exited {proc.returncode}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise Skip("profiled wallet not ready in 30 s")
            time.sleep(0.1)
        users = make_users(url, 10 if quick else 50, deposit=10_000_000, prefix="pf")
        drive_transfers(url, users, 10, 1.0)  # warm-up
        run = drive_transfers(url, users, 10, seconds or (3 if quick else 8))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    return run


def _profile_wallet(ctx: BenchContext, quick: bool, out: Path) -> dict[str, Any]:
    run = _extra_wallet(ctx, quick, out)
    res: dict[str, Any] = {"target": "wallet process (mock_wallet.serve) under transfer load",
                           "transfers_per_s_under_profiler": run["transfers_per_s"]}
    # before/after of the fix the profile led to (scrypt of the payment PIN on every money operation →
    # verified-PIN cache), side by side in this run: same wallet code, the cache off vs on (its default)
    secs = 3 if quick else 10
    before = _extra_wallet(ctx, quick, "-", {"WALLET_PIN_CACHE_SIZE": "0"}, secs)
    after = _extra_wallet(ctx, quick, "-", None, secs)
    res["fix_pin_cache"] = {"before_transfers_per_s": before["transfers_per_s"],
                               "after_transfers_per_s": after["transfers_per_s"],
                               "before_p50_ms": before["latency_p50_ms"], "after_p50_ms": after["latency_p50_ms"],
                               "speedup": round(after["transfers_per_s"] / max(before["transfers_per_s"], 1e-9), 2)}
    return res


def _profile_locust(ctx: BenchContext, quick: bool, out: Path) -> dict[str, Any]:
    from bench.load_vs_wrk import run_locust

    topo = ctx.topology()
    user = ctx.extra.get("read_user") or make_users(topo.wallet_direct_url, 1, deposit=1000, prefix="pr")[0]
    r = run_locust(topo.wallet_url, user.token, user.account_id, 10, 3 if quick else 8, ctx.workdir / "locust",
                   profile_to=out)
    return {"target": "Locust process (bench/locust_read.py, FastHttpUser) reading balances",
            "rps_under_profiler": r["ok_per_s"]}


def _profile_checker(ctx: BenchContext, quick: bool, out: Path) -> dict[str, Any]:
    from bench.checkers import run_child

    n = 20_000 if quick else 100_000
    r = run_child(n, profile_to=str(out))
    return {"target": f"run_checks over a {n}-op synthetic history", "ops_per_s_under_profiler": r["ops_per_s"],
            "check_seconds": r["check_seconds"]}


def measure(ctx: BenchContext, quick: bool, figure: str, keep_dir: Path | None = None) -> dict[str, Any]:
    """Profile `figure`'s component; the full report is kept as keep_dir/profile-latest.txt (default bench/)."""
    out = ctx.workdir / f"profile-{figure}.txt"
    fn = {"wallet_vs_pgbench": _profile_wallet, "locust_vs_wrk": _profile_locust,
          "checker_ops_per_s_1m": _profile_checker}[figure]
    res = fn(ctx, quick, out)
    if not out.exists():
        raise Skip(f"pyinstrument wrote no report for {figure}")
    text = out.read_text(errors="replace")
    res["figure"] = figure
    res["top_frames"] = top_lines(text)
    keep = (keep_dir or REPO / "bench") / "profile-latest.txt"
    keep.write_text(text)
    res["full_report"] = str(keep.relative_to(REPO)) if keep.is_relative_to(REPO) else str(keep)
    return res
