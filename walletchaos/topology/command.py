"""A wallet started from a target's `command`: its own process group, readiness by HTTP, signals.

The process backend's lifecycle faults act on the whole process group the command started (a shell
script, `go run`, a supervisor and its worker all get the signal), so `kill` is a real crash, `pause` a
real hang and `terminate` a real graceful stop, whatever the wallet is written in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from walletchaos.topology.base import TopologyError


def resolve_program(program: str, env: dict[str, str]) -> str:
    """argv[0] looked up on PATH, with the harness's own interpreter directory first (so `python` in a
    target means the Python that runs the harness, with its packages); a path is used as it is."""
    if os.sep in program:
        return program
    search = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    found = shutil.which(program, path=search)
    if found is None:
        raise TopologyError(f"wallet command {program!r} not found on PATH")
    return found


@dataclass
class CommandProcess:
    """One long-running service started from an argv; restartable on the same port."""

    name: str
    command: list[str]
    host: str
    port: int
    env: dict[str, str]
    log_path: Path
    ready_path: str = "/readyz"
    ready_timeout_s: float = 60.0
    cwd: Path | None = None
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running() else None

    def start(self) -> "CommandProcess":
        if self.is_running():
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        argv = [resolve_program(self.command[0], env), *self.command[1:]]
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                    cwd=str(self.cwd) if self.cwd else None,
                    start_new_session=True,  # its own process group: faults signal the whole group
                )
            except OSError as exc:
                raise TopologyError(f"{self.name} command {argv[0]!r} could not start: {exc}") from exc
        return self

    def wait_ready(self, timeout: float | None = None, cancel: threading.Event | None = None) -> None:
        """Poll GET ready_path until 200; fail fast (with the log tail) if the process exits.

        Raises KeyboardInterrupt once `cancel` is set (the harness was signalled)."""
        timeout = timeout or self.ready_timeout_s
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt(f"{self.name}: start cancelled")
                if not self.is_running():
                    code = None if self._proc is None else self._proc.returncode
                    raise TopologyError(f"{self.name} exited (code {code}) before ready: {self.log_tail()}")
                try:
                    if client.get(self.url + self.ready_path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)  # poll interval of the readiness check
        raise TopologyError(f"{self.name} not ready at {self.url}{self.ready_path} after {timeout:.0f}s: "
                            f"{self.log_tail()}")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, sig)  # the group outlives a leader that already exited
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """kill -9 of the whole process group: the wallet dies mid-request, as in a crash."""
        self._signal(signal.SIGCONT)  # a paused group must still die
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(10)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self, timeout: float = 10.0) -> None:
        """Graceful SIGTERM to the group (a deploy), escalating to SIGKILL after `timeout`."""
        if self._proc is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._signal(signal.SIGKILL)  # children that ignored SIGTERM after the leader left

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip().replace("\n", " | ")
        except OSError:
            return "(no log)"
