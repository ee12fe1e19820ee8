"""LoadProcess.wait_started: the run's timeline starts at the first recorded op, not at Locust's fork."""

from __future__ import annotations

import subprocess
import sys
import threading

from walletchaos.load import LoadProcess


def _load(tmp_path, seconds: float) -> LoadProcess:
    proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"], start_new_session=True)
    log = open(tmp_path / "locust.log", "ab")  # noqa: SIM115 - closed by LoadProcess.stop
    return LoadProcess(proc, tmp_path, tmp_path / "locust.log", 1.0, log)


def test_returns_once_a_worker_history_has_a_line(tmp_path):
    load = _load(tmp_path, 30)
    try:
        (tmp_path / "history-audit.jsonl").write_text('{"kind": "audit"}\n')  # the harness's own: not load
        timer = threading.Timer(0.3, lambda: (tmp_path / "history-w0p1.jsonl").write_text('{"op_id": "x"}\n'))
        timer.start()
        assert load.wait_started(timeout_s=10) is True
        assert (tmp_path / "history-w0p1.jsonl").exists()
    finally:
        load.stop(grace_s=1)


def test_gives_up_when_locust_exits_or_the_timeout_passes(tmp_path):
    quick = _load(tmp_path, 0)
    quick.proc.wait()
    assert quick.wait_started(timeout_s=10) is False
    quick.stop(grace_s=1)
    slow = _load(tmp_path, 30)
    try:
        assert slow.wait_started(timeout_s=0.2) is False
    finally:
        slow.stop(grace_s=1)
