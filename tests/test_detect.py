"""walletchaos detect: planning, classification, the matrix verdict and its renderings (pure logic), and
one real quick run through the CLI (a planted bug against its own scenario, plus the correct wallet)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mock_wallet.defects import BUGS
from walletchaos.detect import FULL_SEEDS, Cell, Matrix, plan
from walletchaos.report.matrix import to_markdown, write_matrix
from walletchaos.scenario import load_catalog

REPO = Path(__file__).resolve().parent.parent
CATALOG = {s.name: s for s in load_catalog(REPO / "scenarios")}


def test_every_planted_bug_names_a_catalog_scenario_and_a_real_invariant() -> None:
    from walletchaos.checks import CHECKS

    assert len(BUGS) >= 10
    for bug in BUGS.values():
        assert bug.scenario in CATALOG, bug
        assert bug.caught_by in CHECKS, bug


def test_quick_plan_runs_each_bug_on_its_own_scenario_then_the_correct_wallet_once() -> None:
    jobs = plan("quick", list(BUGS), CATALOG, None, None)
    bug_jobs = [j for j in jobs if j.bug is not None]
    assert [(j.bug, j.scenario.name) for j in bug_jobs] == [(b.name, b.scenario) for b in BUGS.values()]
    correct = [j for j in jobs if j.bug is None]
    assert sorted(j.scenario.name for j in correct) == sorted({b.scenario for b in BUGS.values()})
    assert {j.seed for j in correct} == {1}


def test_full_plan_crosses_bugs_with_the_catalog_and_seeds_the_correct_wallet() -> None:
    jobs = plan("full", ["lost-update", "leaky-errors"], CATALOG, None, None)
    assert len([j for j in jobs if j.bug]) == 2 * len(CATALOG)
    correct = [j for j in jobs if j.bug is None]
    assert len(correct) == FULL_SEEDS * len(CATALOG)
    assert plan("full", [], CATALOG, ["baseline"], 0) == []


def test_plan_refuses_unknown_names() -> None:
    with pytest.raises(KeyError):
        plan("quick", ["no-such-bug"], CATALOG, None, None)
    with pytest.raises(ValueError):
        plan("sometimes", [], CATALOG, None, None)


def _failed(invariant: str, rule: str) -> dict:
    return {invariant: {"summary": "x", "rule": rule, "counterexample": {"rule": rule, "op_id": "op-1"}}}


def test_a_bug_counts_only_when_its_own_invariant_fails() -> None:
    assert Cell("lost-update", "peak-hour-congestion", 1, failed=_failed(BUGS["lost-update"].caught_by, "r")).status == "caught"
    other = "durability" if BUGS["lost-update"].caught_by != "durability" else "ledger"
    assert Cell("lost-update", "peak-hour-congestion", 1, failed=_failed(other, "r")).status == "other"
    assert Cell("lost-update", "baseline", 1).status == "missed"
    assert Cell("lost-update", "baseline", 1, error="boom").status == "error"
    assert Cell(None, "baseline", 3).status == "pass"
    assert Cell(None, "baseline", 3, failed=_failed("recovery", "never_recovered")).status == "false-alarm"


def _matrix(bug_failed: dict, correct_failed: dict) -> Matrix:
    bug = BUGS["leaky-errors"]
    cells = [Cell(bug.name, bug.scenario, 1, run_dir="/r/1", failed=bug_failed),
             Cell(None, bug.scenario, 1, run_dir="/r/2", failed=correct_failed)]
    return Matrix("quick", cells, [bug.name], [bug.scenario], 1, 16.0, wall_s=42.0, command="walletchaos detect")


def test_matrix_passes_when_caught_without_false_alarm() -> None:
    m = _matrix(_failed(BUGS["leaky-errors"].caught_by, "missing_members"), {})
    d = m.to_dict()
    assert m.passed and d["bugs_caught"] == 1 and d["false_alarms"] == 0
    assert d["bugs"][0]["evidence"]["rule"] == "missing_members"
    md = to_markdown(d)
    assert "PASS" in md and "`leaky-errors`" in md and "missing_members" in md


def test_a_missed_bug_fails_the_matrix_and_says_so() -> None:
    m = _matrix({}, {})
    assert not m.passed
    assert "**MISSED**" in to_markdown(m.to_dict())


def test_a_false_alarm_fails_the_matrix_and_names_the_rule(tmp_path: Path) -> None:
    m = _matrix(_failed(BUGS["leaky-errors"].caught_by, "missing_members"), _failed("recovery", "never_recovered"))
    d = m.to_dict()
    assert not m.passed and d["false_alarms"] == 1
    assert "recovery.never_recovered" in to_markdown(d)
    html = write_matrix(d, tmp_path).read_text()
    assert "FAIL" in html and "never_recovered" not in html.split("<main>")[0]
    assert (tmp_path / "matrix.md").read_text().startswith("# walletchaos detect (quick): FAIL")


@pytest.mark.slow
def test_detect_cli_catches_a_planted_bug_and_clears_the_correct_wallet(tmp_path: Path) -> None:
    bug = BUGS["leaky-errors"]
    proc = subprocess.run(
        [sys.executable, "-m", "walletchaos.cli", "detect", "--bugs", bug.name, "--seeds", "1", "--duration", "12",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (out,) = [p for p in tmp_path.iterdir() if p.name.endswith("detect-quick")]
    matrix = json.loads((out / "matrix.json").read_text())
    assert matrix["passed"] and matrix["bugs_caught"] == 1 and matrix["false_alarms"] == 0
    row = matrix["bugs"][0]
    assert row["caught_in"] == [bug.scenario] and row["evidence"]["invariant"] == bug.caught_by
    assert (out / "index.html").read_text().count("CAUGHT") >= 1
