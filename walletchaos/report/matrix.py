"""The detection matrix of `walletchaos detect` as Markdown (matrix.md, also pasted into the README) and
as one self-contained HTML page (index.html), both from matrix.json's dict."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from walletchaos.report.html import _env

EXAMPLE_CHARS = 160


def _example(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return ""
    text = json.dumps(evidence["counterexample"], sort_keys=False, default=str)
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS - 1] + "…"


def _wall(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def headline(m: dict[str, Any]) -> str:
    n_bugs = len(m["bugs"])
    return (f"{m['bugs_caught']}/{n_bugs} planted bugs caught by the invariant that names them; "
            f"correct wallet: {m['correct_runs']} runs, {m['false_alarms']} false alarm(s)")


def grid(m: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(scenarios, rows): per bug, per scenario, {status, invariants, run_dir} (None: not run)."""
    by = defaultdict(dict)
    for c in m["cells"]:
        if c["bug"] is not None:
            by[c["bug"]][c["scenario"]] = c
    scenarios = sorted({c["scenario"] for c in m["cells"] if c["bug"] is not None})
    rows = [{"bug": b["bug"], "expected": b["expected_invariant"],
             "cells": [by[b["bug"]].get(s) for s in scenarios]} for b in m["bugs"]]
    return scenarios, rows


def correct_rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = {}
    for c in m["cells"]:
        if c["bug"] is None:
            row = per.setdefault(c["scenario"], {"scenario": c["scenario"], "runs": 0, "passed": 0,
                                                 "false_alarms": [], "errors": []})
            row["runs"] += 1
            if c["status"] == "pass":
                row["passed"] += 1
            elif c["status"] == "false-alarm":
                row["false_alarms"].append(c)
            else:
                row["errors"].append(c)
    return [per[k] for k in sorted(per)]


def _md_cell(c: dict[str, Any] | None, expected: str) -> str:
    if c is None:
        return ""
    if c["status"] == "error":
        return "error"
    if not c["failed"]:
        return "·"
    names = sorted(c["failed"], key=lambda n: (n != expected, n))
    return ", ".join(f"**{n}**" if n == expected else n for n in names)


def to_markdown(m: dict[str, Any]) -> str:
    word = "PASS" if m["passed"] else "FAIL"
    out = [f"# walletchaos detect ({m['mode']}): {word}", "",
           f"{headline(m)}. Command: `{m['command'] or 'walletchaos detect --mode ' + m['mode']}`; "
           f"wall time {_wall(m['wall_s'])}"
           + (f"; scenarios shortened to {m['duration_s']:g} s" if m.get("duration_s") else "") + "."]
    if m["bugs"]:
        out += ["", "| planted bug | defect | named by | caught | rule | scenarios catching it | counterexample |",
                "|---|---|---|---|---|---|---|"]
    for b in m["bugs"]:
        ev = b["evidence"]
        mark = "yes" if b["caught"] else ("error" if b["errors"] and not b["invariants_failed"] else "**MISSED**")
        where = f"{len(b['caught_in'])}/{b['runs']}: " + ", ".join(b["caught_in"][:4]) + (
            "…" if len(b["caught_in"]) > 4 else "")
        rule = f"{ev['invariant']}.{ev['rule']}" if ev else ""
        example = _example(ev).replace("|", "\\|")
        out.append(f"| `{b['bug']}` | {b['summary']} | {b['expected_invariant']} | {mark} | {rule} | {where} | "
                   f"`{example}` |" if example else
                   f"| `{b['bug']}` | {b['summary']} | {b['expected_invariant']} | {mark} | {rule} | {where} | |")
    scenarios, rows = grid(m)
    if len(scenarios) > 1 and any(sum(c is not None for c in r["cells"]) > 1 for r in rows):
        out += ["", "## Bug × scenario", "",
                "Failed invariants per run; the invariant that names the bug in **bold**; `·` = nothing failed.", "",
                "| bug | " + " | ".join(scenarios) + " |", "|---|" + "---|" * len(scenarios)]
        for r in rows:
            out.append(f"| `{r['bug']}` | " + " | ".join(_md_cell(c, r["expected"]) for c in r["cells"]) + " |")
    crows = correct_rows(m)
    if crows:
        out += ["", f"## False alarms: the correct wallet ({m['seeds']} seed(s) per scenario)", "",
                "| scenario | runs | passed | false alarms | errors |", "|---|---|---|---|---|"]
        for r in crows:
            fa = "; ".join(f"seed {c['seed']}: " + ", ".join(f"{k}.{v['rule']}" for k, v in c["failed"].items())
                           for c in r["false_alarms"]) or "0"
            err = "; ".join(f"seed {c['seed']}: {c['error']}" for c in r["errors"]) or "0"
            out.append(f"| {r['scenario']} | {r['runs']} | {r['passed']} | {fa} | {err} |")
    return "\n".join(out) + "\n"


def write_matrix(m: dict[str, Any], out_dir: Path) -> Path:
    """matrix.md and index.html into out_dir (matrix.json is written by the caller)."""
    out_dir = Path(out_dir)
    (out_dir / "matrix.md").write_text(to_markdown(m), encoding="utf-8")
    scenarios, rows = grid(m)

    def rel(run_dir: str | None) -> str | None:
        return None if not run_dir else os.path.relpath(Path(run_dir) / "index.html", out_dir)

    html = _env().get_template("detect.html.j2").render(
        title=f"{'PASS' if m['passed'] else 'FAIL'} · walletchaos detect", m=m, word="PASS" if m["passed"] else "FAIL",
        headline=headline(m), wall=_wall(m["wall_s"]), bugs=[{**b, "example": _example(b["evidence"]),
                                                             "report": rel((b["evidence"] or {}).get("run_dir"))}
                                                            for b in m["bugs"]],
        scenarios=scenarios, rows=[{**r, "cells": [None if c is None else {**c, "report": rel(c["run_dir"])}
                                                   for c in r["cells"]]} for r in rows],
        correct=[{**r, "false_alarms": [{**c, "report": rel(c["run_dir"])} for c in r["false_alarms"]]}
                 for r in correct_rows(m)],
    )
    out = out_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out
