"""run_checks / Verdict / exit_code, and every checker against synthetic runs (walletchaos.synth): a
consistent run passes everything; each planted bug is caught by exactly the checkers expected."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from walletchaos import verdict as verdict_mod
from walletchaos.checks import CHECKS
from walletchaos.history import HistoryWriter, read_history
from walletchaos.synth import BUGS, EXPECTED_FAILURES, generate_history
from walletchaos.verdict import Verdict, exit_code, run_checks

N = 3_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_consistent_synthetic_run_passes_every_checker(seed: int) -> None:
    run = generate_history(N, seed)
    v = run_checks(run.history, run.final, run.ctx())
    assert v.passed, [(r.name, r.counterexamples[:2]) for r in v.failed]
    assert [r.name for r in v.results] == list(CHECKS)
    assert v.stats["ops"] == len(run.history) and v.stats["ops_per_s"] > 0


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(400, 2_500))
def test_no_false_positives_on_any_consistent_run(seed: int, n: int) -> None:
    run = generate_history(n, seed)
    v = run_checks(run.history, run.final, run.ctx())
    assert v.passed, [(r.name, r.counterexamples[:2]) for r in v.failed]


@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_is_caught_by_the_expected_checkers(bug: str) -> None:
    run = generate_history(N, 5, bug=bug)
    v = run_checks(run.history, run.final, run.ctx())
    assert not v.passed
    assert {r.name for r in v.failed} == EXPECTED_FAILURES[bug]
    for r in v.failed:
        assert r.counterexamples and r.stats["violations"] >= len(r.counterexamples)


def test_shared_index_gives_the_same_results_as_each_checker_alone() -> None:
    run = generate_history(N, 9, bug="lost_write")
    ctx = run.ctx()
    shared = run_checks(run.history, run.final, ctx)
    alone = [CHECKS[name](run.history, run.final, ctx) for name in CHECKS]
    assert [r.to_dict() for r in shared.results] == [r.to_dict() for r in alone]


def test_history_survives_a_jsonl_roundtrip(tmp_path: Path) -> None:
    run = generate_history(N, 4, bug="negative_read")
    with HistoryWriter(tmp_path / "h.jsonl") as w:
        for op in run.history:
            w.write(op)
    final = orjson.loads(orjson.dumps(run.final))
    again = run_checks(read_history(tmp_path / "h.jsonl"), final, run.ctx())
    assert {r.name for r in again.failed} == {"no_overdraft"}


def test_verdict_roundtrip_and_exit_code() -> None:
    run = generate_history(N, 1, bug="phantom")
    bad = run_checks(run.history, run.final, run.ctx())
    back = Verdict.from_dict(orjson.loads(orjson.dumps(bad.to_dict())))
    assert back.to_dict() == bad.to_dict() and back.failed[0].name == "no_phantoms"
    ok_run = generate_history(N, 1)
    good = run_checks(ok_run.history, ok_run.final, ok_run.ctx())
    assert exit_code([good]) == 0
    assert exit_code([good, bad]) == 1
    assert exit_code([]) == 1  # nothing checked is not a pass


def test_run_selected_checks_and_reject_unknown_names() -> None:
    run = generate_history(N, 1)
    v = run_checks(run.history, run.final, run.ctx(), names=["ledger", "durability"])
    assert [r.name for r in v.results] == ["ledger", "durability"]
    with pytest.raises(ValueError, match="linearizable"):
        run_checks(run.history, run.final, run.ctx(), names=["linearizable"])


def test_a_crashing_checker_fails_the_verdict_without_hiding_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object, **_kw: object) -> None:
        raise KeyError("export")

    monkeypatch.setitem(verdict_mod.CHECKS, "ledger", boom)
    run = generate_history(N, 1)
    v = run_checks(run.history, run.final, run.ctx())
    assert not v.passed and [r.name for r in v.failed] == ["ledger"]
    assert v.failed[0].counterexamples[0]["rule"] == "checker_crashed"
    assert len(v.results) == len(CHECKS)


def test_malformed_final_state_fails_every_checker_instead_of_raising() -> None:
    run = generate_history(N, 1)
    broken = {**run.final, "export": {"accounts": [], "audit": {}}}  # no "transactions"
    v = run_checks(run.history, broken, run.ctx())
    assert not v.passed and len(v.results) == len(CHECKS)
    assert all(r.counterexamples[0]["rule"] == "checker_crashed" for r in v.failed)


def test_generator_rejects_unknown_bug() -> None:
    with pytest.raises(ValueError, match="unknown bug"):
        generate_history(100, bug="cosmic_ray")
