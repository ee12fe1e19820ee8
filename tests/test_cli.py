"""The CLI's user errors (one line on stderr, exit 2, no traceback) and what a judged run keeps on disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from walletchaos.runner import prune_stack

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "walletchaos.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("args, says", [
    (("run", "baseline", "--keep-data", "sometimes"), "--keep-data must be failed, always or never"),
    (("run", "no-such-scenario"), "no-such-scenario"),
    (("run", "baseline", "--backend", "kubernetes"), "--backend must be"),
])
def test_user_mistakes_are_one_line_and_exit_2(args: tuple[str, ...], says: str, tmp_path: Path) -> None:
    res = _cli(*args, "--scenarios-dir", str(REPO / "scenarios"), "--report-dir", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert says in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not list(tmp_path.iterdir()), "a refused run must not leave a run directory behind"


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "stack" / "postgres" / "pgdata").mkdir(parents=True)
    (run / "stack" / "postgres" / "pgdata" / "PG_VERSION").write_text("18\n")
    (run / "logs").mkdir()
    (run / "logs" / "postgres.log").write_text("copied at teardown\n")
    return run


@pytest.mark.parametrize("keep, passed, pruned", [
    ("failed", True, True), ("failed", False, False),
    ("always", True, False), ("always", False, False),
    ("never", True, True), ("never", False, True),
])
def test_prune_stack_keeps_data_only_where_asked(keep: str, passed: bool, pruned: bool, tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    assert prune_stack(run, keep, passed=passed) is pruned
    assert (run / "stack").exists() is not pruned
    assert (run / "logs" / "postgres.log").exists()  # the report's logs never go


def test_prune_stack_refuses_an_unknown_policy(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    with pytest.raises(ValueError, match="keep_data"):
        prune_stack(run, "sometimes", passed=True)
    assert (run / "stack" / "postgres" / "pgdata" / "PG_VERSION").exists()


def _stored_run(tmp_path: Path, bug: str | None) -> Path:
    """A run directory as `walletchaos run` leaves it, from a synthetic run (see walletchaos.synth)."""
    import orjson

    from walletchaos.synth import generate_history

    run = generate_history(2000, 3, bug=bug)
    run_dir = tmp_path / (bug or "good")
    run_dir.mkdir()
    (run_dir / "history.jsonl").write_bytes(b"".join(orjson.dumps(op) + b"\n" for op in run.history))
    # gameday's client-path fault overlaps its DB fault: the synthetic transport errors fall inside it
    events = [dict(e, target="wallet_api") for e in run.events if e["kind"] in ("fault_start", "fault_end")]
    events = sorted(run.events + events, key=lambda e: e["ts"])
    (run_dir / "events.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    (run_dir / "final.json").write_bytes(orjson.dumps(run.final))
    (run_dir / "scenario.yaml").write_text((REPO / "scenarios" / "gameday.yaml").read_text())
    return run_dir


def test_check_exit_code_is_the_verdict(tmp_path: Path) -> None:
    good = _cli("check", str(_stored_run(tmp_path, None)), cwd=tmp_path)
    assert good.returncode == 0, good.stdout[-2000:] + good.stderr[-2000:]
    assert "PASS" in good.stdout
    bad = _cli("check", str(_stored_run(tmp_path, "phantom")), cwd=tmp_path)
    assert bad.returncode == 1, bad.stdout[-2000:] + bad.stderr[-2000:]  # a failed invariant fails CI
    assert "FAIL" in bad.stdout and "no_phantoms" in bad.stdout


def test_run_dirs_started_side_by_side_never_collide(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from walletchaos.runner import new_run_dir

    with ThreadPoolExecutor(8) as pool:
        dirs = list(pool.map(lambda _: new_run_dir(tmp_path / "reports", "baseline"), range(32)))
    assert len(set(dirs)) == 32 and all(d.is_dir() for d in dirs)
