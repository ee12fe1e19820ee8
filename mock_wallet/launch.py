"""Start the wallet or the gateway as a real uvicorn process and control its lifecycle.

Used by the harness's process topology and by the wallet's own tests, so there is one way to launch a
service: `python -m mock_wallet.serve KIND --host H --port P` with its settings in the environment.
Readiness is `GET /readyz == 200`, polled; never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

Kind = Literal["wallet", "gateway"]


class ServiceError(RuntimeError):
    """A service did not start or did not become ready; the message carries its log tail."""


@dataclass
class ServiceProcess:
    kind: Kind
    host: str
    port: int
    env: dict[str, str]
    log_path: Path
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def start(self) -> "ServiceProcess":
        if self.is_running():
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mock_wallet.serve", self.kind, "--host", self.host, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,  # its own process group: Ctrl-C in the harness doesn't hit it first
            )
        return self

    def wait_ready(self, timeout: float = 30.0, path: str = "/readyz", cancel: threading.Event | None = None) -> None:
        """Poll until ready; raises KeyboardInterrupt once `cancel` is set (the harness was signalled)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt(f"{self.kind}: start cancelled")
                if self._proc is None or self._proc.poll() is not None:
                    code = None if self._proc is None else self._proc.returncode
                    raise ServiceError(f"{self.kind} exited (code {code}) before ready: {self.log_tail()}")
                try:
                    if client.get(self.url + path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)  # poll interval of the readiness check
        raise ServiceError(f"{self.kind} not ready at {self.url}{path} after {timeout}s: {self.log_tail()}")

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """kill -9: the process dies mid-request, as in a crash."""
        self._signal(signal.SIGCONT)  # a paused process must still die
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(10)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def terminate(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM: uvicorn drains in-flight requests), escalating to SIGKILL."""
        if not self.is_running():
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"


def spawn_service(kind: Kind, *, host: str = "127.0.0.1", port: int, env: dict[str, str],
                  log_path: Path) -> ServiceProcess:
    """Start a service process (not yet waited for: call `.wait_ready()`)."""
    return ServiceProcess(kind, host, port, dict(env), Path(log_path)).start()
