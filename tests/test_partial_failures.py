"""A scenario that cannot run is an ERROR of its own, never the end of the suite.

- in-process: a suite where one scenario's stack start raises and another's run crashes after the
  stack came up, beside a real short baseline run that passes: both broken ones are ERROR rows with
  their own run directory, the baseline still runs and passes, the suite's JUnit counts 2 errors;
- the CLI on a real stack that cannot start (PostgreSQL's system user cannot be created): exit 2,
  one readable line, a run directory with the error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from walletchaos import runner
from walletchaos.run_status import exit_code, status_of
from walletchaos.runner import RunError, RunOptions, run_scenario, run_suite
from walletchaos.scenario import load_catalog
from walletchaos.topology.base import TopologyError

REPO = Path(__file__).resolve().parent.parent
WALLETCHAOS = Path(sys.executable).parent / "walletchaos"


def _scenario(name: str, as_name: str | None = None):
    sc = next(s for s in load_catalog(REPO / "scenarios") if s.name == name)
    return sc.model_copy(update={"name": as_name}) if as_name else sc


class _StartFails:
    """A topology whose start fails the way a real one does (TopologyError, one line + detail)."""

    cancel = None

    def __init__(self, *_a, **_k) -> None:
        self.stopped = False

    def start(self) -> None:
        raise TopologyError("PostgreSQL did not start: initdb failed: could not look up effective user ID 1001")

    def stop(self) -> None:
        self.stopped = True


def _verdict(run_dir: Path) -> dict:
    return orjson.loads((run_dir / "verdict.json").read_bytes())


@pytest.mark.slow
def test_broken_scenarios_are_errors_and_the_rest_still_runs(tmp_path: Path, monkeypatch) -> None:
    real_make, real_collect = runner.make_topology, runner.collect_final_state
    made: list[_StartFails] = []

    def make_topology(backend, workdir, **kw):
        if "start-fails" in str(workdir):
            made.append(_StartFails())
            return made[-1]
        return real_make(backend, workdir, **kw)

    _crashing: dict[str, str] = {}
    real_drive = runner._drive

    def collect_final_state(wallet_url, *a, **kw):  # the run crashes after its stack came up and load ran
        if _crashing.get("url") == wallet_url:
            raise RuntimeError("reconcile blew up\nsecond line of detail")
        return real_collect(wallet_url, *a, **kw)

    def drive(scenario, schedule, topo, *a, **kw):  # the crashing run is picked out by its stack's URL
        if scenario.name == "run-crashes":
            _crashing["url"] = topo.wallet_direct_url
        return real_drive(scenario, schedule, topo, *a, **kw)

    monkeypatch.setattr(runner, "make_topology", make_topology)
    monkeypatch.setattr(runner, "collect_final_state", collect_final_state)
    monkeypatch.setattr(runner, "_drive", drive)
    scenarios = [_scenario("baseline", "start-fails"), _scenario("baseline", "run-crashes"), _scenario("baseline")]
    opts = RunOptions(report_dir=tmp_path, seed=1, duration_s=4, show_progress=False, keep_data="always")
    suite_dir, results = run_suite(scenarios, opts)

    by_name = {r.scenario: r for r in results}
    assert [r.scenario for r in results] == ["start-fails", "run-crashes", "baseline"]
    assert by_name["baseline"].status == "passed", by_name["baseline"].verdict
    for name, says in (("start-fails", "TopologyError: PostgreSQL did not start"),
                       ("run-crashes", "RuntimeError: reconcile blew up")):
        r = by_name[name]
        assert r.status == "error"
        assert r.run_dir.parent == suite_dir and r.run_dir.name.endswith(name)
        stored = _verdict(r.run_dir)
        assert stored["status"] == "error" and stored["error"].startswith(says) and stored["results"] == []
        assert "Traceback" in stored["traceback"]
        case_error = ET.parse(r.run_dir / "junit.xml").getroot().find("testsuite/testcase/error")
        assert case_error is not None and case_error.get("message").startswith(says)
        assert f"ERROR — {name}" in (r.run_dir / "summary.md").read_text()
    assert made and made[0].stopped, "a stack whose start failed is still stopped"
    assert not (by_name["run-crashes"].run_dir / "stack" / "postgres" / "postmaster.pid").exists()

    suite = ET.parse(suite_dir / "junit.xml").getroot()
    assert (suite.get("errors"), suite.get("failures")) == ("2", "0")
    assert [t.get("errors") for t in suite.findall("testsuite")] == ["1", "1", "0"]
    summary = (suite_dir / "summary.md").read_text()
    assert "1/3 scenario(s) passed (2 error)" in summary
    assert "| start-fails | ERROR | TopologyError: PostgreSQL did not start" in summary
    index = (suite_dir / "index.html").read_text()
    assert index.count(">ERROR<") == 2 and "reconcile blew up" in index
    assert exit_code(r.verdict for r in results) == 2


def test_a_run_that_cannot_start_raises_run_error_with_its_result(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "make_topology", lambda *a, **k: _StartFails())
    with pytest.raises(RunError) as caught:
        run_scenario(_scenario("baseline"), RunOptions(report_dir=tmp_path, show_progress=False))
    result = caught.value.result
    assert str(caught.value) == "TopologyError: PostgreSQL did not start: initdb failed: could not look up " \
                                "effective user ID 1001"
    assert status_of(_verdict(result.run_dir)) == "error"
    assert (result.run_dir / "events.jsonl").exists() and (result.run_dir / "scenario.yaml").exists()


@pytest.mark.parametrize(("statuses", "code"), [
    (["passed"], 0), (["passed", "skipped"], 0), (["failed"], 1), (["error"], 2),
    (["passed", "error"], 2), (["failed", "error"], 1), ([], 2),
])
def test_exit_code_from_statuses(statuses: list[str], code: int) -> None:
    assert exit_code([{"status": s, "passed": s == "passed"} for s in statuses]) == code


@pytest.mark.skipif(os.geteuid() != 0, reason="the PostgreSQL system user is only created when root")
def test_cli_stack_cannot_start_exits_2_with_an_error_run(tmp_path: Path) -> None:
    # useradd refuses this name: PostgreSQL cannot get its system user, the real stack cannot start
    env = {**os.environ, "WALLETCHAOS_PG_USER": "no such user!", "WALLETCHAOS_STATE_DIR": str(tmp_path / "state")}
    res = subprocess.run([str(WALLETCHAOS), "run", "baseline,maintenance-window", "--report-dir",
                          str(tmp_path / "reports")], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    suite_dir = next((tmp_path / "reports").glob("*-suite"))
    verdicts = [_verdict(d) for d in sorted(suite_dir.glob("*-*")) if (d / "verdict.json").exists()]
    assert sorted(v["scenario"] for v in verdicts) == ["baseline", "maintenance-window"]
    assert all(v["status"] == "error" and "cannot create system user" in v["error"] for v in verdicts)
    assert ET.parse(suite_dir / "junit.xml").getroot().get("errors") == "2"
    assert "0/2 scenario(s) passed (2 error)" in res.stdout

    one = subprocess.run([str(WALLETCHAOS), "run", "baseline", "--report-dir", str(tmp_path / "one")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert one.returncode == 2 and "Traceback" not in one.stderr
    assert "error: TopologyError: PostgreSQL did not start: cannot create system user" in " ".join(one.stderr.split())
