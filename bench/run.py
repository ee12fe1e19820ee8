"""`make bench` → `python -m bench.run [--quick] [--only NAME[,NAME]]` → bench/results.md + results.json.

Measurements (names for --only): toxiproxy, wallet, load, checkers, startup, suite, profile.
`--quick` uses small sizes and leaves out `suite` (~5 min) unless it is named in --only.
With --only, the sections measured replace theirs in an existing results.json; the rest is kept (each
section carries its own timestamp). Everything started is stopped in `finally`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.common import REPO, BenchContext, LoadSampler, Skip, machine_info

NAMES = ("toxiproxy", "wallet", "load", "checkers", "startup", "suite", "profile")

# headline figure → (section, key in the section, target, direction, unit)
FIGURES: dict[str, tuple[str, str, float, str, str]] = {
    "toxiproxy_added_p50_ms": ("toxiproxy", "toxiproxy_added_p50_ms", 1.0, "<=", "ms"),
    "wallet_vs_pgbench": ("wallet", "wallet_vs_pgbench", 0.5, ">=", "ratio"),
    "locust_vs_wrk": ("load", "locust_vs_wrk", 0.8, ">=", "ratio"),
    "checker_ops_per_s_1m": ("checkers", "checker_ops_per_s_1m", 500_000, ">=", "ops/s"),
    "checker_peak_rss_mb_1m": ("checkers", "checker_peak_rss_mb_1m", math.nan, "", "MB"),
    "startup_s_process": ("startup", "startup_s_process", math.nan, "", "s"),
    "suite_wall_s": ("suite", "suite_wall_s", 300.0, "<=", "s"),
    "report_mb_per_scenario": ("suite", "report_mb_per_scenario", 1.0, "<=", "MB"),
}
# raw figures behind each headline, copied to the top level of results.json too
RAW: dict[str, list[str]] = {
    "toxiproxy": ["toxiproxy_added_p99_ms"],
    "wallet": ["wallet_transfers_per_s", "pgbench_tps"],
    "load": ["locust_rps", "wrk_rps", "locust_rps_per_process", "locust_http_vs_wrk", "locust_ceiling_rps_per_process"],
    "checkers": ["checker_ops_per_s_largest", "checker_peak_rss_mb_largest", "growth_time_per_op_ratio"],
    "startup": ["startup_s_docker"],
    "suite": ["suite_report_mb", "report_page_mb_max"],
}


def _modules():
    from bench import checkers, load_vs_wrk, startup, suite, toxiproxy_hop, wallet_vs_pgbench

    return {"toxiproxy": toxiproxy_hop, "wallet": wallet_vs_pgbench, "load": load_vs_wrk, "checkers": checkers,
            "startup": startup, "suite": suite}


def score(figure: str, value: float | None) -> float | None:
    """value relative to its target, ≥ 1 means met; lower is worse. None when not comparable."""
    _, _, target, direction, _ = FIGURES[figure]
    if value is None or not direction or (isinstance(target, float) and math.isnan(target)):
        return None
    if direction == ">=":
        return value / target
    return target / value if value > 0 else math.inf


def headline(sections: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fig, (sec, key, *_rest) in FIGURES.items():
        out[fig] = (sections.get(sec) or {}).get(key)
    for sec, keys in RAW.items():
        for k in keys:
            v = (sections.get(sec) or {}).get(k)
            if v is not None:
                out[k] = v
    return out


def worst_profileable(head: dict[str, Any]) -> tuple[str | None, dict[str, float]]:
    from bench.profile import PROFILEABLE

    scores = {f: s for f in FIGURES if (s := score(f, head.get(f))) is not None}
    cands = {f: s for f, s in scores.items() if f in PROFILEABLE}
    if not cands:
        # the 1M figure is absent in --quick: fall back to the largest size measured
        if head.get("checker_ops_per_s_largest"):
            return "checker_ops_per_s_1m", scores
        return None, scores
    return min(cands, key=cands.get), scores


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    head, sections, skipped = doc["headline"], doc["sections"], doc["skipped"]
    m = doc["machine"]
    lines = [
        "# walletchaos benchmark — latest measurement",
        "",
        f"Date (UTC): {doc['date']} · mode: {'quick' if doc['quick'] else 'full'} · "
        f"command: `{doc['command']}` · total {doc['bench_wall_s']:.0f} s",
        "",
        f"Machine: {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('mem_total_mb')} MB, {m.get('platform')}; "
        f"load average at start {m.get('loadavg_at_start')}, during the run "
        f"{doc['load_during_run']} (1-min, min/mean/max). The box is shared with other engineers' test runs: "
        "figures are noisy; every ratio's two sides ran back to back in this one run.",
        "",
        "| figure | value | target | met? | run load (1-min mean) |",
        "|---|---|---|---|---|",
    ]
    for fig, (sec, _key, target, direction, unit) in FIGURES.items():
        v = head.get(fig)
        s = score(fig, v)
        met = "—" if s is None else ("yes" if s >= 1 else "**no**")
        tgt = "(recorded)" if not direction else f"{direction} {_fmt(target)} {unit}"
        if v is None:
            val = f"not measured: {skipped.get(sec, 'not run')}"
        else:
            val = f"{_fmt(v)} {unit}"
        load = ((sections.get(sec) or {}).get("_load") or {}).get("load1_mean", "—")
        lines.append(f"| {fig} | {val} | {tgt} | {met} | {load} |")
    lines += ["", "## Raw figures", ""]
    for k, v in head.items():
        if k not in FIGURES:
            lines.append(f"- `{k}`: {_fmt(v)}")
    for sec in NAMES:
        if sec == "profile" or sec not in sections:
            continue
        data = {k: v for k, v in sections[sec].items() if k not in ("log_tail",)}
        lines += ["", f"### {sec}", "", "```json", json.dumps(data, indent=1, default=str)[:6000], "```"]
    if skipped:
        lines += ["", "## Not measured", ""] + [f"- **{k}**: {v}" for k, v in skipped.items()]
    prof = sections.get("profile")
    if prof:
        lines += ["", "## Profile of the worst ratio", "",
                  f"Worst profileable figure: **{prof.get('figure')}** "
                  f"(scores vs target: {prof.get('scores')}). Profiled: {prof.get('target')}.", ""]
        for k in ("transfers_per_s_under_profiler", "rps_under_profiler", "ops_per_s_under_profiler",
                  "check_seconds"):
            if k in prof:
                lines.append(f"- {k}: {prof[k]}")
        wi = prof.get("fix_pin_cache")
        if wi:
            lines += ["", "Before/after of the fix (same run, a second wallet process on the same database each time): "
                      "the payment PIN's scrypt on every money operation (`WALLET_PIN_CACHE_SIZE=0`) → the "
                      "verified-PIN cache (default): "
                      f"{wi['before_transfers_per_s']} → {wi['after_transfers_per_s']} transfers/s "
                      f"(×{wi['speedup']}), p50 {wi['before_p50_ms']} → {wi['after_p50_ms']} ms."]
        act = ((sections.get("wallet") or {}).get("wallet") or {}).get("pg_activity")
        if act and prof.get("figure") == "wallet_vs_pgbench":
            lines += ["", "What the wallet's PostgreSQL backends did during the transfer run (pg_stat_activity, "
                      f"{act['samples']} samples, mean number of backends per state|wait): "
                      + ", ".join(f"`{k}` {v}" for k, v in act["avg_backends"].items())]
        if prof.get("finding"):
            lines += ["", f"Finding: {prof['finding']}"]
        lines += ["", "Top frames (pyinstrument, full report in `bench/profile-latest.txt`):", "", "```",
                  prof.get("top_frames", ""), "```"]
    notes = doc.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    machine_lines = [f"- {k}: {v}" for k, v in m.items()]
    lines += ["", "## Machine and versions", ""] + machine_lines
    path.write_text("\n".join(lines) + "\n")


NOTES = [
    "wallet_vs_pgbench: pgbench TPC-B straight to PostgreSQL's port (-c C -j 2, fsync on, synchronous_commit on) "
    "vs C async httpx clients POSTing /v1/transfers straight to the wallet's port (the wallet's own DB queries "
    "cross the wallet_db Toxiproxy proxy, as in every run); pgbench through that proxy is a raw figure.",
    "locust_vs_wrk: both hit GET /v1/accounts/{id} through the wallet_api proxy with the same number of "
    "connections; Locust is one process with history recording (bench/locust_read.py, project history format), "
    "its rate counted from the recorded ops.",
    "checkers: synthetic runs from walletchaos.synth (the checkers' own generator), every invariant, one child "
    "process per size pinned to one core; peak RSS = that child's ru_maxrss (history + final + checks).",
    "startup: fresh work dir per start (initdb included), as every scenario run does.",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help=f"comma list of {', '.join(NAMES)}")
    ap.add_argument("--quick", action="store_true", help="small sizes; suite left out unless named in --only")
    ap.add_argument("--out", type=Path, default=REPO / "bench", help="where results.md/json go")
    args = ap.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    bad = [n for n in only if n not in NAMES]
    if bad:
        ap.error(f"unknown measurement(s) {bad}; choose from {', '.join(NAMES)}")
    selected = only or [n for n in NAMES if not (args.quick and n == "suite")]

    out_json = args.out / "results.json"
    doc: dict[str, Any] = {"sections": {}, "skipped": {}}
    if only and out_json.exists():
        try:
            doc = json.loads(out_json.read_text())
            doc.setdefault("sections", {})
            doc.setdefault("skipped", {})
        except ValueError:
            pass
    sampler = LoadSampler().start()
    workdir = Path(tempfile.mkdtemp(prefix="walletchaos-bench-"))
    ctx = BenchContext(workdir, sampler)
    t_start = time.time()
    mods = _modules()
    try:
        for name in selected:
            if name == "profile":
                continue
            print(f"[bench] {name} ...", flush=True)
            t0 = time.time()
            try:
                res = mods[name].measure(ctx, quick=args.quick)
                res["_load"] = sampler.window(t0, time.time())
                res["_measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                res["_wall_s"] = round(time.time() - t0, 1)
                doc["sections"][name] = res
                doc["skipped"].pop(name, None)
                print(f"[bench] {name} done in {time.time() - t0:.0f} s", flush=True)
            except Skip as exc:
                doc["sections"].pop(name, None)
                doc["skipped"][name] = str(exc)
                print(f"[bench] {name} skipped: {exc}", flush=True)
            except Exception as exc:  # noqa: BLE001 - one failed measurement must not lose the others
                doc["sections"].pop(name, None)
                doc["skipped"][name] = f"error: {type(exc).__name__}: {str(exc)[:400]}"
                print(f"[bench] {name} FAILED: {exc}", flush=True)
                traceback.print_exc()
        if "profile" in selected:
            head = headline(doc["sections"])
            figure, scores = worst_profileable(head)
            if figure is None:
                doc["skipped"]["profile"] = "no profileable figure was measured"
            else:
                print(f"[bench] profile ({figure}) ...", flush=True)
                from bench import profile

                try:
                    prof = profile.measure(ctx, args.quick, figure)
                    prof["scores"] = {k: round(v, 3) for k, v in scores.items()}
                    prev = (doc["sections"].get("profile") or {}).get("finding")
                    if prev and (doc["sections"].get("profile") or {}).get("figure") == figure:
                        prof["finding"] = prev
                    doc["sections"]["profile"] = prof
                    doc["skipped"].pop("profile", None)
                except Skip as exc:
                    doc["skipped"]["profile"] = str(exc)
                except Exception as exc:  # noqa: BLE001
                    doc["skipped"]["profile"] = f"error: {type(exc).__name__}: {str(exc)[:400]}"
                    traceback.print_exc()
    finally:
        ctx.close()
        sampler.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    doc["headline"] = headline(doc["sections"])
    doc.update({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "command": "python -m bench.run" + (" --quick" if args.quick else "") + (f" --only {args.only}" if only else ""),
        "machine": machine_info(),
        "load_during_run": sampler.window(t_start, time.time()),
        "bench_wall_s": round(time.time() - t_start, 1),
        "notes": NOTES,
    })
    # the tracked keys at the top level (numbers, null when not measured; the reason is under "skipped")
    flat = {**doc["headline"], **{k: v for k, v in doc.items() if k != "headline"}}
    args.out.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(flat, indent=1, default=str) + "\n")
    write_markdown(args.out / "results.md", doc)
    print(f"[bench] wrote {out_json} and {args.out / 'results.md'}")
    for fig in FIGURES:
        print(f"  {fig:28s} {_fmt(doc['headline'].get(fig))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
