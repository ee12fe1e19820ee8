"""summary.md: a few lines of Markdown for CI logs (GitHub step summary, job output).

`write_summary` takes the verdict dict plus a stats dict; the history-derived sections (outcomes,
latency, top error codes, recovery, resolutions) appear when `stats` carries the keys produced by
`walletchaos.report.timeseries.run_stats` (see `run_summary_stats`), so a caller without a
history still gets the verdict and the invariant table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from walletchaos.report.rundata import load_run
from walletchaos.report.timeseries import analyze, run_stats
from walletchaos.run_status import error_line, status_of

WORDS = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIPPED"}


def md_cell(value: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _word(verdict: Mapping[str, Any]) -> str:
    if "passed" not in verdict and "status" not in verdict:
        return "NO VERDICT"
    return WORDS[status_of(verdict)]


def _ms(v: Any) -> str:
    return "—" if v is None else f"{v:.0f} ms"


def invariant_table(verdict: Mapping[str, Any]) -> list[str]:
    lines = ["| invariant | result | summary |", "|---|---|---|"]
    for r in verdict.get("results") or []:
        mark = "✅ pass" if r.get("passed") else "❌ FAIL"
        lines.append(f"| {md_cell(r.get('name', '?'))} | {mark} | {md_cell(r.get('summary', ''))} |")
    return lines


def render_summary(verdict: Mapping[str, Any], stats: Mapping[str, Any]) -> str:
    """The summary text (see module docstring for which `stats` keys are used)."""
    lines = [f"## walletchaos: {_word(verdict)} — {verdict.get('scenario', '?')}", ""]
    lines += invariant_table(verdict)
    lines.append("")
    if isinstance(o := stats.get("outcomes"), Mapping):
        lines.append(f"- **Ops:** {stats.get('ops', sum(o.values()))} "
                     f"(ok {o.get('ok', 0)}, fail {o.get('fail', 0)}, unknown {o.get('unknown', 0)})")
    if (rate := (verdict.get("stats") or {}).get("fault_write_rate")) is not None:
        lines.append(f"- **Fault-time write rate:** {rate} money writes/s inside fault windows")
    if isinstance(lat := stats.get("latency_ms"), Mapping):
        lines.append(f"- **Latency:** p50 {_ms(lat.get('p50'))} · p95 {_ms(lat.get('p95'))} · p99 {_ms(lat.get('p99'))}")
    if stats.get("top_error_codes"):
        codes = ", ".join(f"`{code}` ×{n}" for code, n in stats["top_error_codes"])
        lines.append(f"- **Top error codes:** {codes}")
    judged = next((r for r in verdict.get("results") or [] if r.get("name") == "recovery"), None)
    if judged is not None and (r_stats := judged.get("stats") or {}).get("recovery_time_s") is not None:
        # the recovery invariant's own figure (it knows replays of fault-time outcomes are healthy)
        lines.append(f"- **Recovery** after the last fault: {r_stats['recovery_time_s']:.1f} s")
    else:
        for rec in stats.get("recovery_s") or []:
            secs = rec.get("seconds")
            after = "not recovered" if secs is None else f"{secs:.1f} s"
            lines.append(f"- **Recovery** after {md_cell(rec.get('fault', '?'))}: {after}")
    if stats.get("resolutions"):
        res = ", ".join(f"{k} {v}" for k, v in stats["resolutions"].items())
        lines.append(f"- **Unknown outcomes resolved:** {res}")
    return "\n".join(lines).rstrip() + "\n"


def render_error_summary(verdict: Mapping[str, Any]) -> str:
    """summary.md of a run that could not run (ERROR) or was skipped: the cause, no invariant table."""
    label = "Error" if status_of(verdict) == "error" else "Reason"
    text = str(verdict.get("error") or verdict.get("reason") or "")
    lines = [f"## walletchaos: {_word(verdict)} — {verdict.get('scenario', '?')}", "",
             f"- **{label}:** {md_cell(error_line(verdict))}"]
    if len(text.splitlines()) > 1:
        lines += ["", "```", text.strip(), "```"]
    return "\n".join(lines) + "\n"


def write_summary(verdict: Mapping[str, Any], stats: Mapping[str, Any], path: Path) -> Path:
    """Write summary.md; returns its path."""
    path = Path(path)
    path.write_text(render_summary(verdict, stats), encoding="utf-8")
    return path


def run_summary_stats(run_dir: Path) -> dict[str, Any]:
    """The `stats` for write_summary computed from a run directory's history, events and final.json."""
    run = load_run(Path(run_dir))
    return run_stats(analyze(run.history, run.events, run.final))


def suite_summary(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """Markdown for a whole suite: one line per scenario, failing invariants named."""
    statuses = [status_of(v) for v in verdicts]
    passed = statuses.count("passed")
    word = "PASS" if verdicts and all(s in ("passed", "skipped") for s in statuses) else "FAIL"
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("failed", "error", "skipped") if statuses.count(s))
    lines = [f"## walletchaos suite: {word} — {passed}/{len(verdicts)} scenario(s) passed"
             + (f" ({counts})" if counts else ""), "",
             "| scenario | result | failing invariants / error |", "|---|---|---|"]
    for v in verdicts:
        failing = ", ".join(str(r.get("name", "?")) for r in v.get("results") or [] if not r.get("passed"))
        lines.append(f"| {md_cell(v.get('scenario', '?'))} | {_word(v)} | {md_cell(failing or error_line(v) or '—')} |")
    return "\n".join(lines) + "\n"
