"""Run Locust headless in a subprocess (its own process group) and hand back its history files.

Why a subprocess: Locust is gevent-based and monkey-patches the interpreter; the harness is not.
Why its own session: with `--processes N` Locust forks workers; one signal to the group reaches all of
them, and a Ctrl-C in the harness terminal does not hit Locust before the harness decides to stop it.
`--stop-timeout` lets users finish the op in flight when the run time ends, so it is recorded.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def locustfile_path() -> Path:
    """WALLETCHAOS_LOCUSTFILE, else <repo>/loadtests/locustfile.py (next to the walletchaos package)."""
    override = os.environ.get("WALLETCHAOS_LOCUSTFILE")
    return Path(override) if override else REPO_ROOT / "loadtests" / "locustfile.py"


class LoadProcess:
    """A running Locust; `stop()` is idempotent and safe in `finally` / on KeyboardInterrupt."""

    def __init__(self, proc: subprocess.Popen[bytes], history_dir: Path, log_path: Path,
                 stop_timeout_s: float, log_file: Any) -> None:
        self.proc = proc
        self.history_dir = history_dir
        self.log_path = log_path
        self.stop_timeout_s = stop_timeout_s
        self._log_file = log_file

    @property
    def pid(self) -> int:
        return self.proc.pid

    def is_running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Exit code; raises subprocess.TimeoutExpired if still running after `timeout`.
        Locust exits 1 when any request failed — expected under faults, so callers judge the history."""
        rc = self.proc.wait(timeout)
        self._close_log()
        return rc

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM the group (Locust stops users, waiting up to --stop-timeout), then SIGKILL it."""
        grace = self.stop_timeout_s + 5.0 if grace_s is None else grace_s
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # forked workers may outlive the master: always sweep the group
        self._signal(signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._close_log()
        return self.proc.returncode

    def history_paths(self) -> list[Path]:
        return sorted(self.history_dir.glob("history-*.jsonl"))

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # start_new_session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def _close_log(self) -> None:
        if self._log_file is not None and not self._log_file.closed:
            self._log_file.close()

    def __enter__(self) -> LoadProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def locust_command(host: str, *, users: int, spawn_rate: float, duration_s: float, processes: int,
                   csv_prefix: Path | None, stop_timeout_s: float) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(locustfile_path().resolve()), "--headless",
           "-u", str(users), "-r", str(spawn_rate), "-t", f"{max(1, round(duration_s))}s",
           "--host", host, "--stop-timeout", f"{max(1, math.ceil(stop_timeout_s))}s", "--only-summary",
           "--loglevel", "INFO", "--exit-code-on-error", "0"]
    if processes > 1:
        cmd += ["--processes", str(processes)]
    if csv_prefix is not None:
        cmd += ["--csv", str(Path(csv_prefix).resolve())]
    return cmd


def run_locust(host: str, *, users: int, spawn_rate: float, duration_s: float, processes: int = 1,
               mix: str = "default", seed: int = 0, history_dir: Path, log_path: Path,
               extra_env: Mapping[str, str] | None = None, stages: Sequence[Mapping[str, Any]] | None = None,
               csv_prefix: Path | None = None, stop_timeout_s: float | None = None) -> LoadProcess:
    """Start Locust against `host`; returns at once (the load runs for `duration_s`).

    `stages`: [{"at": s, "users": n, "spawn_rate": r|None}] → a LoadTestShape (ramps, surges).
    `stop_timeout_s` defaults to the client timeout + 2 s so an op in flight at the end completes.
    """
    from walletchaos.client import client_timeout_s

    history_dir = Path(history_dir)
    history_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update({"WALLETCHAOS_MIX": mix, "WALLETCHAOS_SEED": str(seed),
                "WALLETCHAOS_HISTORY_DIR": str(history_dir.resolve()), "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    if stages:
        env.update({"WALLETCHAOS_STAGES": json.dumps([dict(s) for s in stages]),
                    "WALLETCHAOS_USERS": str(users), "WALLETCHAOS_SPAWN_RATE": str(spawn_rate),
                    "WALLETCHAOS_DURATION_S": str(duration_s)})
    if stop_timeout_s is None:
        raw = env.get("WALLETCHAOS_CLIENT_TIMEOUT_S")
        stop_timeout_s = (float(raw) if raw else client_timeout_s()) + 2.0
    cmd = locust_command(host, users=users, spawn_rate=spawn_rate, duration_s=duration_s,
                         processes=processes, csv_prefix=csv_prefix, stop_timeout_s=stop_timeout_s)
    log = open(log_path, "ab")  # noqa: SIM115 - owned by LoadProcess, closed on wait/stop
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(history_dir), start_new_session=True)
    except BaseException:
        log.close()
        raise
    return LoadProcess(proc, history_dir, log_path, stop_timeout_s, log)


def wait_or_stop(load: LoadProcess, timeout: float) -> int | None:
    """Wait for a normal end; on timeout or Ctrl-C stop the group. Returns the exit code."""
    deadline = time.monotonic() + timeout
    try:
        return load.wait(max(0.0, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        return load.stop()
    finally:
        if load.is_running():
            load.stop()
