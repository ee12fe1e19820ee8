"""Leftovers of runs that died hard (kill -9 of the harness, a closed terminal).

Every process a topology starts is written to a state file; `clear_stale()` at the start of a run kills
those whose owning harness process is gone. A process is matched by pid *and* create time, so a
recycled pid is never killed. The records live in `state_dir()` (WALLETCHAOS_STATE_DIR; the tests
point it at a directory of their own).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil

STATE_DIR_ENV = "WALLETCHAOS_STATE_DIR"


def state_dir() -> Path:
    """$WALLETCHAOS_STATE_DIR/running, else $XDG_STATE_HOME (~/.local/state)/walletchaos/running."""
    base = os.environ.get(STATE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "walletchaos")
    path = Path(base) / "running"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _owner_pid(state_id: str) -> int:
    return int(state_id.split("-", 1)[0])


def remember(state_id: str, pids: list[int], workdir: Path) -> None:
    entries = []
    for pid in pids:
        try:
            entries.append({"pid": pid, "create_time": psutil.Process(pid).create_time()})
        except psutil.NoSuchProcess:
            pass
    path = state_dir() / f"{state_id}.json"
    path.write_text(json.dumps({"owner": _owner_pid(state_id), "workdir": str(workdir), "processes": entries}))


def forget(state_id: str) -> None:
    (state_dir() / f"{state_id}.json").unlink(missing_ok=True)


def clear_stale() -> list[int]:
    """Kill processes left by harness runs that no longer exist; returns the pids killed."""
    killed: list[int] = []
    for path in state_dir().glob("*.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        if psutil.pid_exists(state.get("owner", -1)):
            continue  # its harness is still running: not stale
        for entry in state.get("processes", []):
            try:
                proc = psutil.Process(entry["pid"])
                if abs(proc.create_time() - entry["create_time"]) > 0.01:
                    continue
                family = [proc, *proc.children(recursive=True)]
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            # the recorded process first, then its children, each on its own: a child may be gone by the
            # time its turn comes (a PostgreSQL postmaster takes its backends down when one is killed)
            for p in family:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            killed.append(entry["pid"])
        path.unlink(missing_ok=True)
    return killed
