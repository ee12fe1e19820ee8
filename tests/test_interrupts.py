"""SIGINT / SIGTERM sent to the harness process alone stop a run within 10 s, with exit 130 / 143, and
leave nothing behind: no process (PostgreSQL, toxiproxy-server, uvicorn, Locust), no stale-state record,
no temp file.

Every case starts `walletchaos run ...` as a real subprocess in its own session, waits for a moment of
the run seen in the run's own files (the stack starting, load recorded, a fault started, the final
phase), sends one signal to the harness pid only, and counts what is left by the run's own markers:
processes whose command line or working directory names the test's directory, or whose environment
carries the test's marker variable (every child inherits it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

WALLETCHAOS = Path(sys.executable).parent / "walletchaos"
EXIT_WITHIN_S = 10.0
MARKER_VAR = "WALLETCHAOS_TEST_RUN_MARKER"


def _marked(proc: psutil.Process, root: str, marker: str) -> bool:
    try:
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if any(root in part for part in proc.cmdline()):
            return True
        if (proc.cwd() or "").startswith(root):
            return True
        return proc.environ().get(MARKER_VAR) == marker
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def leftovers(root: Path, marker: str) -> list[psutil.Process]:
    """Processes of the run still alive (not this test process)."""
    me = os.getpid()
    return [p for p in psutil.process_iter() if p.pid != me and _marked(p, str(root), marker)]


class Harness:
    """One `walletchaos <args>` in its own session, with an isolated state dir, TMPDIR and report dir."""

    def __init__(self, root: Path, args: list[str]) -> None:
        self.root = root
        self.marker = uuid.uuid4().hex
        self.reports = root / "reports"
        self.state = root / "state"
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True)
        env = {**os.environ, MARKER_VAR: self.marker, "WALLETCHAOS_STATE_DIR": str(self.state),
               "TMPDIR": str(self.tmp)}
        self.log = open(root / "harness.log", "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [str(WALLETCHAOS), *args, "--report-dir", str(self.reports)],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # the signal goes to this pid alone, never to a group
        )

    def wait_for(self, what: str, predicate: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.proc.poll() is not None:
                pytest.fail(f"harness exited ({self.proc.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout} s:\n{self.output()}")
            time.sleep(0.05)  # poll interval of a file check

    def files(self, pattern: str) -> list[Path]:
        return list(self.reports.rglob(pattern)) if self.reports.exists() else []

    def has_history(self, runs: int = 1) -> bool:
        return len({p.parent.parent for p in self.files("history-*.jsonl") if p.stat().st_size > 0}) >= runs

    def has_event(self, text: str) -> bool:
        return any(text in p.read_text(errors="replace") for p in self.files("events.jsonl"))

    def children(self) -> int:
        return sum(p.pid != self.proc.pid for p in leftovers(self.root, self.marker))

    def interrupt(self, sig: signal.Signals) -> tuple[int | None, float]:
        """Send `sig` to the harness pid; (exit code or None if still running after the limit, seconds)."""
        t0 = time.monotonic()
        os.kill(self.proc.pid, sig)
        try:
            rc = self.proc.wait(EXIT_WITHIN_S)
        except subprocess.TimeoutExpired:
            rc = None
        return rc, time.monotonic() - t0

    def output(self) -> str:
        self.log.flush()
        return (self.root / "harness.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        """Whatever the outcome, nothing of this test stays running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for p in leftovers(self.root, self.marker):
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.log.close()


def _assert_stopped_clean(h: Harness, sig: signal.Signals, moment: str, running_at_least: int = 1) -> None:
    running = [p for p in leftovers(h.root, h.marker) if p.pid != h.proc.pid]
    # the markers see the run's processes (else counting 0 afterwards would prove nothing)
    assert len(running) >= running_at_least, f"{moment}: markers found only {len(running)} processes"
    rc, seconds = h.interrupt(sig)
    left = leftovers(h.root, h.marker)
    left_desc = [f"{p.pid} {p.name()}" for p in left]
    stale = sorted(p.name for p in (h.state / "running").glob("*.json")) if (h.state / "running").exists() else []
    temp = sorted(p.name for p in h.tmp.iterdir())
    print(f"{moment}: {len(running)} processes running; {sig.name} -> exit {rc} after {seconds:.1f} s; leftovers: {len(left)} processes, "
          f"{len(stale)} stale records, {len(temp)} temp entries")
    expected = 128 + sig.value
    assert rc == expected, f"{moment}: exit {rc} (want {expected} within {EXIT_WITHIN_S} s):\n{h.output()}"
    assert left_desc == [], f"{moment}: processes left behind: {left_desc}"
    assert stale == [], f"{moment}: stale-state records left: {stale}"
    assert temp == [], f"{moment}: temp files left: {temp}"


@pytest.fixture
def harness():
    # Not under pytest's tmp_path: /tmp/pytest-of-root is chmod 0700 by every pytest session that
    # starts, and PostgreSQL runs as its own system user, which must traverse the path to its data.
    root = Path(tempfile.mkdtemp(prefix="walletchaos-interrupts-"))
    root.chmod(0o755)
    started: list[Harness] = []

    def start(*args: str) -> Harness:
        h = Harness(root / f"h{len(started)}", list(args))
        started.append(h)
        return h

    yield start
    for h in started:
        h.close()
    shutil.rmtree(root, ignore_errors=True)


def test_sigterm_during_stack_start(harness) -> None:
    h = harness("run", "baseline", "--seed", "1", "--duration", "6")
    # PostgreSQL has been launched (its log opened, its process seen); the gateway and the wallet are not up yet
    h.wait_for("postgres start", lambda: bool(h.files("stack/postgres/postgres.log")) and h.children() > 0)
    _assert_stopped_clean(h, signal.SIGTERM, "stack start", running_at_least=1)


def test_sigint_during_load(harness) -> None:
    h = harness("run", "baseline", "--seed", "1", "--duration", "20")
    h.wait_for("recorded load", h.has_history)
    _assert_stopped_clean(h, signal.SIGINT, "load", running_at_least=5)


def test_sigterm_during_fault(harness) -> None:
    h = harness("run", "wallet-kill", "--seed", "1", "--duration", "20")  # the wallet is killed at ~4 s for ~7 s
    h.wait_for("the fault", lambda: h.has_event('"fault_start"'))
    _assert_stopped_clean(h, signal.SIGTERM, "fault")


def test_sigterm_during_reconcile(harness) -> None:
    h = harness("run", "baseline", "--seed", "1", "--duration", "4")
    h.wait_for("the final phase", lambda: h.has_event('"name":"final"'))
    _assert_stopped_clean(h, signal.SIGTERM, "reconcile")


def test_sigint_during_report(harness) -> None:
    h = harness("run", "baseline", "--seed", "1", "--duration", "4")
    h.wait_for("judging", lambda: bool(h.files("history.jsonl")))  # _judge writes the merged history first
    _assert_stopped_clean(h, signal.SIGINT, "report", running_at_least=0)  # the stack is already down


def test_sigint_suite_parallel(harness) -> None:
    h = harness("run", "baseline,wallet-kill,db-latency", "--seed", "1", "--parallel", "2", "--duration", "20")
    h.wait_for("load in two runs", lambda: h.has_history(runs=2))
    _assert_stopped_clean(h, signal.SIGINT, "run all --parallel 2")


def test_sigterm_detect_parallel(harness) -> None:
    h = harness("detect", "--bugs", "none", "--scenarios", "baseline,maintenance-window", "--seeds", "1",
                "--duration", "20", "--parallel", "2")
    h.wait_for("load in two runs", lambda: h.has_history(runs=2))
    _assert_stopped_clean(h, signal.SIGTERM, "detect --parallel 2")
