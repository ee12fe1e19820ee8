"""Checkers: ops/s of run_checks (every invariant) over synthetic histories of 10k, 100k, 1M ops.

Each size runs in its own child process (`python -m bench.checkers --child N`), so its peak RSS is its
own: the child generates the run (walletchaos.synth.generate_history), measures RSS, runs the checks
on one core (the harness checks in a single thread), and prints one JSON line. The 1M child's peak
RSS is the harness's memory while checking a 1M-op history (history + final state + checkers).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from bench.common import PY, REPO, BenchContext

TARGET_OPS_PER_S_1M = 500_000
SIZES_FULL = (10_000, 100_000, 1_000_000)
SIZES_QUICK = (2_000, 20_000)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def child(n: int, seed: int = 7, profile_to: str | None = None) -> dict[str, Any]:
    from walletchaos.synth import generate_history
    from walletchaos.verdict import run_checks

    rss0 = _rss_mb()
    t0 = time.perf_counter()
    run = generate_history(n, seed)
    gen_s = time.perf_counter() - t0
    ctx = run.ctx()
    gc.collect()
    rss_loaded = _rss_mb()
    profiler = None
    if profile_to:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    t1 = time.perf_counter()
    verdict = run_checks(run.history, run.final, ctx)
    check_s = time.perf_counter() - t1
    if profiler is not None:
        profiler.stop()
        with open(profile_to, "w") as fh:
            fh.write(profiler.output_text(unicode=False, color=False, show_all=False))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"ops": len(run.history), "generate_s": round(gen_s, 3), "check_s": round(check_s, 3),
            "ops_per_s": round(len(run.history) / check_s), "passed": verdict.passed,
            "failed_checks": [r.name for r in verdict.failed],
            "check_seconds": verdict.stats.get("check_seconds"),
            "rss_start_mb": round(rss0, 1), "rss_after_generate_mb": round(rss_loaded, 1),
            "peak_rss_mb": round(peak_mb, 1)}


def run_child(n: int, timeout: float = 600, profile_to: str | None = None) -> dict[str, Any]:
    cmd = [PY, "-m", "bench.checkers", "--child", str(n)] + (["--profile", profile_to] if profile_to else [])
    # one core, as the harness checks in one thread (taskset is advisory here: other engineers share it)
    if os.path.exists("/usr/bin/taskset"):
        cmd = ["/usr/bin/taskset", "-c", "0"] + cmd
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(REPO))
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"checker child n={n} failed: {r.stderr.strip()[-800:]}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["child_wall_s"] = round(wall, 2)
    return out


def measure(ctx: BenchContext, quick: bool = False) -> dict[str, Any]:
    sizes = SIZES_QUICK if quick else SIZES_FULL
    res: dict[str, Any] = {"sizes": list(sizes)}
    for n in sizes:
        t0 = time.time()
        r = run_child(n)
        r["load"] = ctx.sampler.window(t0, time.time())
        res[f"n_{n}"] = r
    big = res[f"n_{sizes[-1]}"]
    res["checker_ops_per_s_largest"] = big["ops_per_s"]
    res["checker_peak_rss_mb_largest"] = big["peak_rss_mb"]
    if not quick:
        res["checker_ops_per_s_1m"] = big["ops_per_s"]
        res["checker_peak_rss_mb_1m"] = big["peak_rss_mb"]
    # growth: time per op at the largest size relative to the smallest (1.0 = linear)
    small = res[f"n_{sizes[0]}"]
    res["growth_time_per_op_ratio"] = round((big["check_s"] / big["ops"]) / (small["check_s"] / small["ops"]), 2)
    return res


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--child":
        prof = args[args.index("--profile") + 1] if "--profile" in args else None
        print(json.dumps(child(int(args[1]), profile_to=prof)))
