"""index.html of a run (and of a suite): a page that works offline, verdict first.

No network at view time: figures are inline JSON, CSS is inline, and every link is relative to the
run directory (the raw files next to it). plotly.js (~4.7 MB) comes one of two ways:
- a lone run inlines it: the page is self-contained (one file to mail or attach to CI);
- a run whose parent directory holds the shared asset (`share_plotly(parent)`, done once by a suite
  or a detect matrix before its runs) references `../assets/plotly-<version>.min.js` by relative
  path instead, so a 25-scenario suite carries the library once, not 25 times.
Data reaches the page only through jinja2 autoescaping; the two things marked safe (plotly.js itself
and figure JSON with <, >, & unicode-escaped) cannot close the <script> they sit in.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from walletchaos.report.figures import figures_json
from walletchaos.report.snapshot_figure import snapshot_figures_json
from walletchaos.report.rundata import RunFiles, duration_s, load_run, load_scenario, load_verdict
from walletchaos.report.timeseries import RunAnalysis, analyze, resolution_rows

COUNTEREXAMPLES_SHOWN = 10
CELL_MAX_CHARS = 240


@functools.cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(seconds=fmt_seconds, ms=fmt_ms, num=fmt_num, utc=fmt_utc)
    return env


ASSETS_DIR = "assets"


@functools.cache
def _plotly_js() -> Markup:
    return Markup(get_plotlyjs())


def plotly_asset_name() -> str:
    """Path of the shared plotly.js below a suite directory; versioned, so an upgrade never mixes."""
    return f"{ASSETS_DIR}/plotly-{get_plotlyjs_version()}.min.js"


def share_plotly(parent: Path) -> Path:
    """Write plotly.js once into <parent>/assets/ (idempotent): every run report written below
    <parent> afterwards references it instead of inlining it. Returns the asset's path."""
    asset = Path(parent) / plotly_asset_name()
    data = _plotly_js().encode("utf-8")
    if not asset.is_file() or asset.stat().st_size != len(data):
        asset.parent.mkdir(parents=True, exist_ok=True)
        tmp = asset.with_name(f".{asset.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(asset)  # atomic: runs side by side never see half a library
    return asset


def shared_plotly_src(run_dir: Path) -> str | None:
    """Relative URL of the suite's shared plotly.js for a report in run_dir, or None to inline it."""
    if (Path(run_dir).parent / plotly_asset_name()).is_file():
        return f"../{plotly_asset_name()}"
    return None


def fmt_seconds(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f} s"


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f} ms" if v >= 100 else f"{v:.1f} ms"


def fmt_num(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def fmt_utc(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "—"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cell(value: Any) -> str:
    """One table cell from any JSON value: scalars as text, containers as compact JSON, truncated."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= CELL_MAX_CHARS else text[: CELL_MAX_CHARS - 1] + "…"


def script_json(text: str) -> Markup:
    """JSON that is safe inside <script>: no '<', '>' or '&' can start a closing tag or entity."""
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def counterexample_table(rows: Sequence[Mapping[str, Any]], limit: int = COUNTEREXAMPLES_SHOWN
                         ) -> tuple[list[str], list[list[str]]]:
    """Columns = union of the first `limit` counterexamples' keys in first-seen order ("rule" first)."""
    shown = list(rows[:limit])
    columns: dict[str, None] = {}
    for row in shown:
        columns.update(dict.fromkeys(row))
    ordered = sorted(columns, key=lambda c: c != "rule")  # stable: keeps first-seen order otherwise
    return ordered, [[cell(row.get(c)) for c in ordered] for row in shown]


def invariant_rows(verdict: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Template rows of the invariant table, failures first (they are what the reader came for)."""
    rows = []
    for r in verdict.get("results") or []:
        examples = r.get("counterexamples") or []
        stats = r.get("stats") or {}
        columns, cells = counterexample_table(examples)
        rows.append({
            "name": r.get("name", "?"), "passed": bool(r.get("passed")), "summary": r.get("summary", ""),
            "columns": columns, "cells": cells, "total": stats.get("violations", len(examples)),
            "stats": {k: cell(v) for k, v in stats.items()},
        })
    rows.sort(key=lambda row: row["passed"])
    return rows


def _verdict_word(verdict: Mapping[str, Any]) -> str:
    if verdict.get("status") in ("error", "skipped"):  # walletchaos.run_status: the run could not / did not run
        return str(verdict["status"]).upper()
    if "passed" not in verdict:
        return "NO VERDICT"
    return "PASS" if verdict["passed"] else "FAIL"


def render_report(run: RunFiles, analysis: RunAnalysis, plotly_src: str | None = None) -> str:
    """The run page; plotly.js inlined, or loaded from `plotly_src` (a relative URL) when given."""
    meta = run.meta
    verdict = run.verdict
    a = analysis
    return _env().get_template("run.html.j2").render(
        title=f"{_verdict_word(verdict)} · {run.name}",
        verdict_word=_verdict_word(verdict),
        name=run.name,
        description=run.scenario.get("description"),
        anomaly=run.scenario.get("anomaly"),
        seed=meta.get("seed", run.scenario.get("seed")),
        backend=meta.get("backend"),
        started_at=meta.get("started_at"),
        duration_s=duration_s(meta, a.span_s),
        invariants=invariant_rows(verdict),
        verdict_stats={k: cell(v) for k, v in (verdict.get("stats") or {}).items()},
        a=a,
        resolutions=resolution_rows(a),
        figures={k: script_json(v) for k, v in {
            **figures_json(a), **snapshot_figures_json(run.history, a, run.final.get("opening_total", 0))}.items()},
        raw_files=run.raw_files,
        plotly_js=None if plotly_src else _plotly_js(),
        plotly_src=plotly_src,
    )


def write_report(run_dir: Path) -> Path:
    """Render <run_dir>/index.html from the run's files; returns its path. Self-contained unless the
    parent directory shares plotly.js (see share_plotly)."""
    run = load_run(Path(run_dir))
    out = run.run_dir / "index.html"
    page = render_report(run, analyze(run.history, run.events, run.final), shared_plotly_src(run.run_dir))
    out.write_text(page, encoding="utf-8")
    return out


def _not_run(verdict: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An ERROR or SKIPPED run's cause, as a row entry (walletchaos.run_status)."""
    if verdict.get("status") not in ("error", "skipped"):
        return []
    return [(str(verdict["status"]), str(verdict.get("error") or verdict.get("reason") or "").split("\n")[0])]


def suite_rows(suite_dir: Path, run_dirs: Iterable[Path]) -> list[dict[str, Any]]:
    rows = []
    for run_dir in map(Path, run_dirs):
        verdict = load_verdict(run_dir)
        scenario = load_scenario(run_dir)
        rel = Path(os.path.relpath(run_dir, suite_dir)).as_posix()
        rows.append({
            "name": verdict.get("scenario") or scenario.get("name") or run_dir.name,
            "description": scenario.get("description"),
            "verdict_word": _verdict_word(verdict),
            "failed": [(r.get("name", "?"), r.get("summary", "")) for r in verdict.get("results") or []
                       if not r.get("passed")] + _not_run(verdict),
            "duration_s": duration_s(verdict.get("meta") or {}, None),
            "report": f"{rel}/index.html" if (run_dir / "index.html").exists() else None,
            "dir": rel,
        })
    return rows


def write_suite_report(suite_dir: Path, run_dirs: Sequence[Path]) -> Path:
    """Render <suite_dir>/index.html: one row per scenario, linking to each run's own report."""
    suite_dir = Path(suite_dir)
    rows = suite_rows(suite_dir, run_dirs)
    passed = sum(r["verdict_word"] == "PASS" for r in rows)
    word = "PASS" if rows and passed == len(rows) else "FAIL"
    html = _env().get_template("suite.html.j2").render(
        title=f"{word} · walletchaos suite", verdict_word=word, rows=rows, passed=passed,
        failed=len(rows) - passed, suite_name=suite_dir.name,
        raw_files=[f for f in ("junit.xml", "summary.md") if (suite_dir / f).exists()],
    )
    out = suite_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out
