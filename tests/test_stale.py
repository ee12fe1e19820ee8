"""Process backend leftovers after `kill -9` of the harness: the next run's `clear_stale` finds them by
their state record and stops them; records of live harnesses and recycled pids are left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from walletchaos.topology import stale

# A harness that starts a process stack, says so, and waits to be killed (the test kills it with -9).
HARNESS = """
import sys, time
from walletchaos.topology.process import ProcessTopology
topo = ProcessTopology(sys.argv[1])
topo.start()
print("up", flush=True)
time.sleep(600)
"""


def _records() -> list[dict]:
    return [json.loads(p.read_text()) for p in stale.state_dir().glob("*.json")]


@pytest.fixture
def state(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv(stale.STATE_DIR_ENV, str(tmp_path / "state"))
    return stale.state_dir()


@pytest.mark.slow
def test_stack_of_a_harness_killed_hard_is_cleared_by_the_next_run(state: Path) -> None:
    # not under pytest's tmp_path: PostgreSQL's system user must traverse the path (see test_interrupts)
    workdir = Path(tempfile.mkdtemp(prefix="walletchaos-stale-"))
    workdir.chmod(0o755)
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, str(workdir / "stack")], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ}, start_new_session=True)
    stack: list[psutil.Process] = []
    try:
        assert harness.stdout.readline().strip() == "up", harness.stdout.read()
        [record] = _records()
        assert record["owner"] == harness.pid
        stack = [psutil.Process(e["pid"]) for e in record["processes"]]
        assert len(stack) == 4  # postgres, toxiproxy-server, gateway, wallet
        stack += [c for p in list(stack) for c in p.children(recursive=True)]  # postgres backends etc.

        harness.send_signal(signal.SIGKILL)  # no finally runs: the stack lives on in its own sessions
        harness.wait(10)
        assert all(p.is_running() for p in stack[:4])

        killed = stale.clear_stale()  # what ProcessTopology.start() runs first
        assert sorted(killed) == sorted(e["pid"] for e in record["processes"])
        gone, alive = psutil.wait_procs(stack, timeout=10)
        assert alive == [], f"still running: {[(p.pid, p.name()) for p in alive]}"
        assert _records() == []
        assert stale.clear_stale() == []  # nothing left to find
    finally:
        if harness.poll() is None:
            harness.kill()
        for p in stack:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        subprocess.run(["rm", "-rf", str(workdir)], check=False)


def test_records_of_live_harnesses_and_recycled_pids_are_left_alone(state: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"])
    try:
        # a live owner (this test process): its stack is in use, not stale
        stale.remember(f"{os.getpid()}-live", [victim.pid], state)
        assert stale.clear_stale() == [] and victim.poll() is None
        stale.forget(f"{os.getpid()}-live")
        # a dead owner, but the pid now belongs to another process (create time differs): never killed
        dead_owner = subprocess.Popen(["true"])
        dead_owner.wait()
        (state / f"{dead_owner.pid}-recycled.json").write_text(json.dumps(
            {"owner": dead_owner.pid, "workdir": str(state),
             "processes": [{"pid": victim.pid, "create_time": psutil.Process(victim.pid).create_time() - 100}]}))
        assert stale.clear_stale() == [] and victim.poll() is None
        assert _records() == []  # the record itself is gone
        # a dead owner and the very same process: killed
        stale.remember(f"{dead_owner.pid}-mine", [victim.pid], state)
        assert stale.clear_stale() == [victim.pid]
        assert victim.wait(10) == -signal.SIGKILL
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()


def test_state_dir_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(stale.STATE_DIR_ENV, str(tmp_path / "elsewhere"))
    assert stale.state_dir() == tmp_path / "elsewhere" / "running" and stale.state_dir().is_dir()
