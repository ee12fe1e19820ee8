"""Report writers against a synthetic run directory: index.html, junit.xml, summary.md, timeseries."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from plotly.offline import get_plotlyjs

from walletchaos.report.html import write_report, write_suite_report
from walletchaos.report.junit import write_junit
from walletchaos.report.summary import run_summary_stats, suite_summary, write_summary
from walletchaos.report.timeseries import analyze, percentile

T0 = 1_763_900_000.0
FAULT = (6.0, 12.0)
BAD_OP = "p1-u3-42"
XSS = "<script>alert('x')</script>"
EXTERNAL_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _op(i: int, rng: random.Random) -> dict[str, Any]:
    """Healthy outside the fault window; inside: 503 problems, timeouts (unknown), slow answers."""
    t = 20.0 * i / 400
    in_fault = FAULT[0] <= t < FAULT[1]
    op = {"op_id": BAD_OP if i == 42 else f"p1-u{i % 7}-{i}", "kind": rng.choice(["deposit", "transfer", "balance"]),
          "invoke_ts": T0 + t, "outcome": "ok", "status": 201, "code": None, "error": None,
          "idempotency_key": f"k{i}", "phase": "warmup" if t < 6 else "fault" if t < 12 else "heal" if t < 16 else "recover"}
    latency = rng.uniform(10, 60)
    roll = rng.random()
    if in_fault and roll < 0.4:
        op.update(outcome="fail", status=503, code="DATABASE_UNAVAILABLE")
        latency = rng.uniform(200, 2000)
    elif in_fault and roll < 0.5:
        op.update(outcome="unknown", status=None, error="ReadTimeout")
        latency = 5000.0
    elif roll > 0.97:
        op.update(outcome="fail", status=409, code="INSUFFICIENT_FUNDS")
    op["latency_ms"] = latency
    op["complete_ts"] = op["invoke_ts"] + latency / 1000
    return op


def make_run(run_dir: Path, n_ops: int = 400) -> Path:
    """A ~20 s run: a wallet_db reset fault from 6 s to 12 s, one failing invariant (durability)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    ops = [_op(i, rng) for i in range(n_ops)]
    _jsonl(run_dir / "history.jsonl", ops)
    _jsonl(run_dir / "events.jsonl", [
        {"ts": T0, "kind": "phase", "name": "warmup", "target": None, "details": {}},
        {"ts": T0 + FAULT[0], "kind": "fault_start", "name": "reset_peer", "target": "wallet_db", "details": {}},
        {"ts": T0 + FAULT[0] + 0.1, "kind": "phase", "name": "fault", "target": None, "details": {}},
        {"ts": T0 + FAULT[1], "kind": "fault_end", "name": "reset_peer", "target": "wallet_db", "details": {}},
        {"ts": T0 + FAULT[1] + 0.1, "kind": "phase", "name": "heal", "target": None, "details": {}},
        {"ts": T0 + 16, "kind": "phase", "name": "recover", "target": None, "details": {}},
        {"ts": T0 + 20.5, "kind": "phase", "name": "final", "target": None, "details": {}},
    ])
    unknown = [o["op_id"] for o in ops if o["outcome"] == "unknown"]
    statuses = ["succeeded", "failed", "absent"]
    (run_dir / "final.json").write_text(json.dumps({
        "resolutions": {op_id: {"txn_id": None, "status": statuses[k % 3]} for k, op_id in enumerate(unknown)},
        "reconcile": {"resolved": len(unknown), "still_pending": 0},
    }))
    (run_dir / "scenario.yaml").write_text(yaml.safe_dump({
        "name": "db-connection-reset", "description": "Connections to PostgreSQL are reset for 6 s under load.",
        "anomaly": "acknowledged deposits lost on reset",
    }))
    verdict = {
        "scenario": "db-connection-reset", "passed": False,
        "results": [
            {"name": "conservation", "passed": True, "summary": "Σ balances matches", "counterexamples": [], "stats": {}},
            {"name": "durability", "passed": False, "summary": "2 violation(s): acked_missing ×2",
             "counterexamples": [{"rule": "acked_missing", "op_id": BAD_OP, "txn_id": "t-1", "detail": XSS},
                                 {"rule": "acked_missing", "op_id": "p1-u0-7", "txn_id": "t-2", "extra": {"a": [1, 2]}}],
             "stats": {"violations": 2, "duration_s": 0.25}},
            {"name": "recovery", "passed": True, "summary": "recovered in 1.0 s", "counterexamples": [], "stats": {}},
        ],
        "stats": {"ops": n_ops},
        "meta": {"backend": "process", "seed": 42, "started_at": T0 - 3, "finished_at": T0 + 25},
    }
    (run_dir / "verdict.json").write_text(json.dumps(verdict))
    return run_dir


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "20250101T000000Z-db-connection-reset")


def _verdict(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "verdict.json").read_text())


def _figures(html: str) -> dict[str, dict[str, Any]]:
    blocks = re.findall(r'<script type="application/json" data-figure="fig-(\w+)">(.*?)</script>', html, re.S)
    return {name: json.loads(body) for name, body in blocks}


def test_index_html_verdict_first_and_counterexamples(run_dir: Path) -> None:
    html = write_report(run_dir).read_text()
    assert html.index(">FAIL<") < html.index('id="invariants"') < html.index('id="timeline"')
    assert "db-connection-reset" in html and "acknowledged deposits lost on reset" in html
    assert BAD_OP in html
    assert XSS not in html and "&lt;script&gt;alert(" in html  # data is escaped, never markup
    # failing invariants are listed before passing ones
    assert html.index(">durability<") < html.index(">conservation<")
    for raw in ("history.jsonl", "events.jsonl", "verdict.json"):
        assert f'href="{raw}"' in html


def test_index_html_is_self_contained(run_dir: Path) -> None:
    html = write_report(run_dir).read_text()
    plotly_js = get_plotlyjs()
    assert html.count(plotly_js) == 1  # embedded once, verbatim
    markup = html.replace(plotly_js, "")  # the library's own inert strings are not page links
    assert not EXTERNAL_REF.findall(markup)
    assert "<link" not in markup and not re.search(r"<script[^>]*\bsrc=", markup)
    assert "@import" not in markup and "url(" not in markup


def test_figures_shade_fault_windows_and_mark_phases(run_dir: Path) -> None:
    figs = _figures(write_report(run_dir).read_text())
    assert set(figs) == {"throughput", "latency", "errors"}
    for fig in figs.values():
        rects = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
        assert [(r["x0"], r["x1"]) for r in rects] == [pytest.approx(FAULT)]
        phase_lines = [s["x0"] for s in fig["layout"]["shapes"] if s["type"] == "line"]
        assert len(phase_lines) == 5
        assert any("reset_peer → wallet_db" in a["text"] for a in fig["layout"]["annotations"])
    bars = {t["name"]: t for t in figs["throughput"]["data"]}
    assert sum(sum(t["y"]) for t in bars.values()) == 400  # every op lands in exactly one bucket


def test_timeseries_buckets_errors_resolutions(run_dir: Path) -> None:
    from walletchaos.report.rundata import load_run

    run = load_run(run_dir)
    a = analyze(run.history, run.events, run.final)
    s = a.series
    assert s.t[0] == 0.0 and s.t == sorted(s.t)
    assert sum(s.ok) + sum(s.fail) + sum(s.unknown) == a.ops == 400
    in_fault = [i for i, t in enumerate(s.t) if FAULT[0] + 1 <= t < FAULT[1] - 1]
    outside = [i for i, t in enumerate(s.t) if t < FAULT[0] - 1]
    assert min(s.server_error_pct[i] for i in in_fault) > max(s.server_error_pct[i] for i in outside)
    assert max(s.p99[i] for i in in_fault) > 10 * max(s.p99[i] for i in outside)
    assert max(p for p in s.p99 if p is not None) == 5000.0  # timeouts land when they complete
    assert "DATABASE_UNAVAILABLE" in a.errors_by_phase["fault"]
    assert "DATABASE_UNAVAILABLE" not in a.errors_by_phase.get("warmup", {})
    assert a.errors_by_phase["fault"]["ReadTimeout (transport)"] == a.outcomes["unknown"]
    assert a.phases[0] in ("warmup", "fault") and a.error_codes[0] == "DATABASE_UNAVAILABLE"
    assert sum(a.resolutions.values()) == a.outcomes["unknown"] > 0
    assert a.resolutions["pending"] == 0 and a.resolutions["succeeded"] > 0
    [rec] = a.recovery
    assert rec.seconds is not None and 0.0 <= rec.seconds <= 1.0


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50, 95, 99)
    assert percentile([], 0.5) is None and percentile([7.0], 0.99) == 7.0


def test_recovery_never_reached_is_none(tmp_path: Path) -> None:
    events = [{"ts": 0.0, "kind": "phase", "name": "warmup"},
              {"ts": 1.0, "kind": "fault_start", "name": "kill", "target": "postgres"},
              {"ts": 2.0, "kind": "fault_end", "name": "kill", "target": "postgres"}]
    ops = [{"invoke_ts": t / 10, "complete_ts": t / 10, "latency_ms": 1.0, "outcome": "unknown",
            "error": "ConnectError", "phase": "fault"} for t in range(50)]
    [rec] = analyze(ops, events, {}).recovery
    assert rec.seconds is None


def test_empty_history_renders(tmp_path: Path) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    (run_dir / "history.jsonl").write_text("")
    (run_dir / "verdict.json").write_text(json.dumps({"scenario": "baseline", "passed": True, "results": [], "stats": {}}))
    html = write_report(run_dir).read_text()
    assert ">PASS<" in html and "No operations were recorded." in html
    assert set(_figures(html)) == {"throughput", "latency", "errors"}
    # no files at all: still a page, saying there is no verdict
    bare = tmp_path / "bare"
    bare.mkdir()
    assert "NO VERDICT" in write_report(bare).read_text()


def test_junit_counts_and_failure_body(run_dir: Path, tmp_path: Path) -> None:
    passing = {"scenario": "baseline", "passed": True,
               "results": [{"name": "ledger", "passed": True, "summary": "ok", "counterexamples": [], "stats": {}}]}
    broken = {"scenario": "crashed", "passed": False, "results": []}
    verdict = _verdict(run_dir)
    verdict["results"][1]["counterexamples"][0]["detail"] = "bad\x00byte"
    path = write_junit([verdict, passing, broken], tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "5" and root.get("failures") == "2"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["db-connection-reset", "baseline", "crashed"]
    assert [s.get("tests") for s in suites] == ["3", "1", "1"] and suites[0].get("time") == "28.000"
    cases = suites[0].findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases][1] == ("db-connection-reset", "durability")
    [failure] = suites[0].iter("failure")
    assert failure.get("message") == "2 violation(s): acked_missing ×2"
    assert BAD_OP in failure.text and "\x00" not in failure.text
    assert cases[1].get("time") == "0.250"
    assert suites[2].find("testcase/failure") is not None  # no results + not passed → red in CI


def test_summary_markdown(run_dir: Path, tmp_path: Path) -> None:
    stats = run_summary_stats(run_dir)
    text = write_summary(_verdict(run_dir), stats, tmp_path / "summary.md").read_text()
    assert text.startswith("## walletchaos: FAIL — db-connection-reset")
    assert "| invariant | result | summary |" in text
    assert "| durability | ❌ FAIL | 2 violation(s): acked_missing ×2 |" in text
    assert "| conservation | ✅ pass |" in text
    assert "`DATABASE_UNAVAILABLE` ×" in text and "p95" in text and "p99" in text
    assert "- **Recovery** after reset_peer → wallet_db:" in text
    # without history stats: verdict and table only, no crash
    bare = write_summary(_verdict(run_dir), {"ops": 3}, tmp_path / "bare.md").read_text()
    assert "| durability |" in bare and "Latency" not in bare


def test_suite_report_and_summary(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    failing = make_run(suite / "a-db-reset")
    write_report(failing)
    passing = suite / "b-baseline"
    passing.mkdir()
    (passing / "verdict.json").write_text(json.dumps({"scenario": "baseline", "passed": True, "results": []}))
    html = write_suite_report(suite, [failing, passing]).read_text()
    assert html.index(">FAIL<") < html.index("<table")
    assert 'href="a-db-reset/index.html"' in html and 'href="b-baseline/"' in html
    assert "durability" in html and not EXTERNAL_REF.findall(html) and "<script" not in html
    text = suite_summary([_verdict(failing), {"scenario": "baseline", "passed": True, "results": []}])
    assert "1/2 scenario(s) passed" in text and "| db-connection-reset | FAIL | durability |" in text
