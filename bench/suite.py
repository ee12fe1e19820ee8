"""The default suite's wall time: `walletchaos run all --parallel 2`, exactly what `make chaos` runs (two
scenarios side by side, each on its own stack), target ≤ 5 min on 2 cores.

Runs the CLI as a user would, in a subprocess, with its reports in the bench scratch dir. Its exit code
is recorded (a failing verdict still gives a wall time; a crash is recorded as such).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import PY, REPO, BenchContext, Skip, wallet_available

TARGET_S = 300.0
TIMEOUT_S = 1200.0
PARALLEL = 2  # keep equal to the Makefile's chaos target


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    reason = wallet_available()
    if reason:
        raise Skip(f"wallet not available: {reason}")
    report_dir = ctx.workdir / "suite-reports"
    cmd = [PY, "-m", "walletchaos.cli", "run", "all", "--parallel", str(PARALLEL), "--report-dir", str(report_dir)]
    log_path = ctx.workdir / "suite.log"
    t0 = time.time()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=str(REPO), env={**os.environ, "NO_COLOR": "1"}, start_new_session=True)
        try:
            rc = proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
            raise Skip(f"suite did not finish within {TIMEOUT_S:.0f} s")
    wall = time.time() - t0
    tail = Path(log_path).read_text(errors="replace")[-1500:]
    runs = list(report_dir.rglob("verdict.json")) if report_dir.exists() else []
    if rc not in (0, 1) or not runs:  # 0 all passed, 1 some invariant failed; else (or no run judged) a crash
        last = [ln for ln in tail.splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise Skip(f"`walletchaos run all` exited {rc} after {wall:.1f} s without judging a run: {last[0][:300]}")
    weight = report_weight(report_dir, len(runs))
    return {"suite_wall_s": round(wall, 1), "parallel": PARALLEL, "exit_code": rc, "all_passed": rc == 0, "runs_judged": len(runs),
            **weight, "load": ctx.sampler.window(t0, time.time()), "log_tail": tail[-600:]}


def report_weight(report_dir: Path, runs: int) -> dict[str, Any]:
    """What the suite's HTML report weighs: every page (suite + one per run) and the shared assets, not
    the raw files (history, logs) the pages link to. Per scenario = that total / runs."""
    files = [Path(d) / n for d, _dirs, names in os.walk(report_dir) for n in names]  # never follows `latest`
    files = [f for f in files if f.suffix == ".html" or "assets" in f.parts]
    total = sum(f.stat().st_size for f in files)
    pages = [f.stat().st_size for f in files if f.name == "index.html"]
    return {"suite_report_mb": round(total / 1e6, 2), "report_mb_per_scenario": round(total / 1e6 / max(1, runs), 3),
            "report_page_mb_max": round(max(pages, default=0) / 1e6, 3)}
