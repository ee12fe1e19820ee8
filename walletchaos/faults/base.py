"""Fault base class and the context faults act through.

Every fault has `start(ctx)` and `stop(ctx)`. Both are idempotent and thread-safe, and `stop` undoes
whatever a half-finished `start` left behind, because `stop` runs in `finally` blocks, on Ctrl-C, and
possibly twice (by the fault's own timer thread and by `Nemesis.stop_all`). Once stopped, a fault never
starts again, so a timer thread that wakes up late cannot re-inject a fault the harness already healed.

Events (`fault_start`, `fault_end`, `note`) follow the events.jsonl format of docs/internals.md.
"""

from __future__ import annotations

import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed

from walletchaos.topology.base import Topology
from walletchaos.toxiproxy_client import ToxiproxyClient

Emit = Callable[[dict[str, Any]], None]


def event(kind: str, name: str, target: str | None, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """One events.jsonl record."""
    return {"ts": time.time(), "kind": kind, "name": name, "target": target, "details": details or {}}


@dataclass
class FaultContext:
    """Everything a fault acts through; one per run. Only `topology` is required."""

    topology: Topology
    emit: Emit = lambda _event: None
    seed: int = 0  # seeds `rng` (e.g. which accounts get frozen)
    toxiproxy: ToxiproxyClient | None = None  # default: topology.toxiproxy()
    http: httpx.Client | None = None  # control API calls; default: a short-lived client per call
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        if self.toxiproxy is None:
            self.toxiproxy = self.topology.toxiproxy()
        self.rng = random.Random(self.seed)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in (502, 503, 504)


# control calls must survive a stack that is itself under fault (e.g. DB down while unfreezing)
@retry(retry=retry_if_exception(_retryable), stop=stop_after_delay(10), wait=wait_fixed(0.3), reraise=True)
def control(ctx: FaultContext, method: str, url: str, *, admin: bool = False,
             json: dict[str, Any] | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ctx.topology.admin_token}"} if admin else {}
    if ctx.http is not None:
        response = ctx.http.request(method, url, json=json, headers=headers)
    else:
        with httpx.Client(timeout=10.0) as client:
            response = client.request(method, url, json=json, headers=headers)
    response.raise_for_status()
    return response


class Fault(ABC):
    """One injectable fault. States: idle -> active (or failed) -> stopped; stopped is final."""

    kind: str

    def __init__(self, name: str, target: str) -> None:
        self.name = name
        self.target = target
        self._lock = threading.RLock()
        self._state = "idle"
        self.started_at: float | None = None  # epoch seconds when the fault took effect
        self.stopped_at: float | None = None  # epoch seconds when it was healed

    @property
    def active(self) -> bool:
        return self._state == "active"

    def details(self) -> dict[str, Any]:
        """Parameters recorded in the fault_start event."""
        return {}

    def end_details(self) -> dict[str, Any]:
        """Evidence recorded in the fault_end event (e.g. the pid after a restart, when each frozen account
        was released)."""
        return {}

    @abstractmethod
    def _inject(self, ctx: FaultContext) -> None: ...

    @abstractmethod
    def _heal(self, ctx: FaultContext) -> None:
        """Undo the fault; must tolerate a fault that was only partly injected."""

    def start(self, ctx: FaultContext) -> None:
        with self._lock:
            if self._state != "idle":
                return
            self._state = "failed"  # until _inject returns: stop() will then heal what was done
            began = time.time()  # the fault takes effect during _inject (a docker kill takes ~150 ms)
            self._inject(ctx)
            self._state = "active"
            self.started_at = began
            record = event("fault_start", self.name, self.target, {"fault": self.kind, **self.details()})
            ctx.emit({**record, "ts": began})

    def stop(self, ctx: FaultContext) -> None:
        with self._lock:
            state = self._state
            if state in ("idle", "stopped"):
                self._state = "stopped"
                return
            self._heal(ctx)  # raises -> state unchanged, so a later stop() retries
            self._state = "stopped"
            self.stopped_at = time.time()
            if state == "active":
                ctx.emit(event("fault_end", self.name, self.target, {"fault": self.kind, **self.end_details()}))

    @contextmanager
    def applied(self, ctx: FaultContext) -> Iterator["Fault"]:
        """`with fault.applied(ctx): ...` - the Python API / pytest form of a timeline step."""
        try:
            self.start(ctx)
            yield self
        finally:
            self.stop(ctx)
