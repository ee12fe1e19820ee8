"""Smoke tests of the benchmark code (bench/): each measurement runs with tiny sizes and returns numbers.

Not timed: performance targets live in `make bench` (bench/results.md), never in unit tests.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench import run as bench_run
from bench.common import BenchContext, LoadSampler, percentile


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def test_percentile_and_score() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 100) == 100.0
    assert bench_run.score("wallet_vs_pgbench", 0.25) == pytest.approx(0.5)
    assert bench_run.score("toxiproxy_added_p50_ms", 0.5) == pytest.approx(2.0)
    assert bench_run.score("checker_peak_rss_mb_1m", 123.0) is None  # recorded, no target


def test_markdown_renders_with_missing_sections(tmp_path: Path) -> None:
    doc = {"sections": {"toxiproxy": {"toxiproxy_added_p50_ms": 0.05, "_load": {"load1_mean": 1.0}}},
           "skipped": {"wallet": "wallet not available"}, "date": "2026-01-01T00:00:00+00:00", "quick": True,
           "command": "python -m bench.run --quick", "bench_wall_s": 1.0, "machine": {"nproc": 2},
           "load_during_run": {"load1_mean": 1.0}, "notes": []}
    doc["headline"] = bench_run.headline(doc["sections"])
    bench_run.write_markdown(tmp_path / "r.md", doc)
    text = (tmp_path / "r.md").read_text()
    assert "| toxiproxy_added_p50_ms | 0.050 ms |" in text
    assert "wallet not available" in text


@pytest.mark.slow
def test_checkers_child_tiny() -> None:
    from bench.checkers import run_child

    r = run_child(2000, timeout=120)
    assert r["ops"] >= 2000 and r["passed"]
    assert _is_number(r["ops_per_s"]) and _is_number(r["peak_rss_mb"])


@pytest.mark.slow
def test_wrk_and_locust_against_trivial_server(tmp_path: Path) -> None:
    from bench.load_vs_wrk import run_locust, run_wrk

    assert shutil.which("wrk"), "wrk is not installed: `make setup` installs it (apt-get, as root)"
    from bench.toxiproxy_hop import _start_tiny

    proc, port = _start_tiny()
    try:
        url = f"http://127.0.0.1:{port}"
        w = run_wrk(url + "/v1/accounts/x", "tok", 2, 1)
        loc = run_locust(url, "tok", "x", 2, 2, tmp_path)
    finally:
        proc.kill()
        proc.wait()
    assert _is_number(w["requests_per_s"]) and w["requests_per_s"] > 0
    assert loc["ops_recorded"] > 0 and _is_number(loc["ok_per_s"])


@pytest.mark.slow
def test_pgbench_on_embedded_postgres(tmp_path: Path) -> None:
    from bench.wallet_vs_pgbench import pgbench_run, pgbench_setup
    from mock_wallet.embedded_pg import EmbeddedPostgres

    pg = EmbeddedPostgres(tmp_path / "pg", fsync=False)
    try:
        pg.start()
        pgbench_setup(pg.host, pg.port)
        r = pgbench_run(pg.host, pg.port, 2, 1)
    finally:
        pg.stop()
    assert _is_number(r["tps"]) and r["tps"] > 0


@pytest.mark.slow
def test_run_quick_writes_tracked_keys(tmp_path: Path) -> None:
    """bench.run end to end on the cheap measurements; wallet-backed ones may be recorded as skipped."""
    rc = bench_run.main(["--quick", "--only", "toxiproxy,checkers", "--out", str(tmp_path)])
    assert rc == 0
    data = json.loads((tmp_path / "results.json").read_text())
    for key in ("wallet_vs_pgbench", "locust_vs_wrk", "checker_ops_per_s_1m", "checker_peak_rss_mb_1m",
                "startup_s_process", "suite_wall_s", "toxiproxy_added_p50_ms"):
        assert key in data
    assert _is_number(data["toxiproxy_added_p50_ms"])
    assert _is_number(data["checker_ops_per_s_largest"])
    assert (tmp_path / "results.md").read_text().startswith("# walletchaos benchmark")


@pytest.mark.slow
def test_wallet_measurements_quick(tmp_path: Path) -> None:
    """The wallet-backed measurements with tiny sizes, sharing one topology (skipped if no wallet)."""
    from bench import load_vs_wrk, wallet_vs_pgbench
    from bench.common import Skip, wallet_available

    if wallet_available():
        pytest.skip(wallet_available())
    sampler = LoadSampler().start()
    ctx = BenchContext(tmp_path, sampler)
    try:
        w = wallet_vs_pgbench.measure(ctx, quick=True)
        assert _is_number(w["wallet_vs_pgbench"]) and w["wallet_transfers_per_s"] > 0
        try:
            lw = load_vs_wrk.measure(ctx, quick=True)
        except Skip as exc:  # wrk missing and not root
            pytest.skip(str(exc))
        assert _is_number(lw["locust_vs_wrk"]) and _is_number(lw["locust_rps_per_process"])
        from bench import profile

        prof = profile.measure(ctx, True, "wallet_vs_pgbench", keep_dir=tmp_path)
        fix = prof["fix_pin_cache"]  # the before/after of the PIN-cache fix, both sides measured
        assert fix["before_transfers_per_s"] > 0 and fix["after_transfers_per_s"] > 0
        assert (tmp_path / "profile-latest.txt").read_text().strip() and prof["top_frames"]
    finally:
        ctx.close()
        sampler.stop()


def test_suite_figure_times_what_make_chaos_runs() -> None:
    """suite_wall_s is only meaningful if it times the command users run: the Makefile's chaos target."""
    from bench import suite

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    chaos_recipe = makefile.split("\nchaos:", 1)[1].split("\n\n", 1)[0]
    assert f"run all --parallel {suite.PARALLEL}" in chaos_recipe
