"""The nemesis runner: plays a fault schedule against a running stack, in background threads.

One thread per scheduled fault, so a slow heal (restarting PostgreSQL takes seconds) never delays the
next fault of an overlapping timeline. `stop_all()` is the safety net for `finally` / Ctrl-C: it cancels
every pending start and heals every fault that is (even partly) in effect.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from walletchaos.faults.base import Fault, FaultContext, event
from walletchaos.faults.kinds import build_fault
from walletchaos.scenario import ScheduledFault


class Nemesis:
    """Runs `schedule` with offsets relative to `start` (epoch seconds, default: when start() is called)."""

    def __init__(self, schedule: list[ScheduledFault], ctx: FaultContext, *, start: float | None = None) -> None:
        emit_lock = threading.Lock()

        def emit(record: dict[str, Any]) -> None:  # faults emit from several threads
            with emit_lock:
                ctx.emit(record)

        self.ctx = dataclasses.replace(ctx, emit=emit)
        self.plan = sorted(schedule, key=lambda s: s.start_s)
        self.faults: list[Fault] = [build_fault(s.step, s.name) for s in self.plan]
        self.errors: list[str] = []
        self._start_at = start
        self._t0 = 0.0  # time.monotonic() of offset 0
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False

    def start(self) -> None:
        if self._started:
            raise RuntimeError("nemesis already started")
        self._started = True
        start_at = time.time() if self._start_at is None else self._start_at
        self._t0 = time.monotonic() - (time.time() - start_at)
        for planned, fault in zip(self.plan, self.faults):
            thread = threading.Thread(target=self._play, args=(planned, fault), name=f"nemesis-{fault.name}",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the timeline to play out; True if every fault has started and ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop_all(self, timeout: float = 60.0) -> list[str]:
        """Cancel what has not started, heal everything in effect (latest first); returns heal errors.

        Safe to call at any time, repeatedly, and without start().
        """
        self._cancel.set()
        failed: list[Fault] = []
        for fault in reversed(self.faults):
            if not self._stop(fault):
                failed.append(fault)
        for fault in failed:  # one more try: e.g. the admin API was briefly unreachable
            self._stop(fault)
        self.join(timeout)
        return list(self.errors)

    def finished(self) -> bool:
        """True once started and every fault has run its course (healed, or failed and cleaned up)."""
        return self._started and not any(t.is_alive() for t in self._threads)

    def active(self) -> list[str]:
        """Names of the faults in effect right now (for the live progress display)."""
        return [f.name for f in self.faults if f.active]

    def records(self) -> list[dict[str, Any]]:
        """What the nemesis did: planned vs actual times per fault (epoch seconds; None = never)."""
        origin = time.time() - (time.monotonic() - self._t0) if self._started else None
        return [{"name": f.name, "kind": f.kind, "target": f.target,
                 "planned_start": None if origin is None else origin + p.start_s,
                 "planned_end": None if origin is None else origin + p.end_s,
                 "started_at": f.started_at, "stopped_at": f.stopped_at}
                for p, f in zip(self.plan, self.faults)]

    # -- internals -------------------------------------------------------------------------------------
    def _wait_until(self, offset: float) -> bool:
        """Sleep until the offset; True if cancelled meanwhile."""
        return self._cancel.wait(max(0.0, self._t0 + offset - time.monotonic()))

    def _play(self, planned: ScheduledFault, fault: Fault) -> None:
        if self._wait_until(planned.start_s):
            return
        try:
            fault.start(self.ctx)
        except Exception as exc:  # noqa: BLE001 - recorded, then healed; the run goes on
            self._error(fault, "start", exc)
            self._stop(fault)
            return
        self._wait_until(planned.end_s)
        self._stop(fault)

    def _stop(self, fault: Fault) -> bool:
        try:
            fault.stop(self.ctx)
            return True
        except Exception as exc:  # noqa: BLE001
            self._error(fault, "stop", exc)
            return False

    def _error(self, fault: Fault, action: str, exc: Exception) -> None:
        message = f"{fault.name}: {action} failed: {type(exc).__name__}: {exc}".splitlines()[0]
        self.errors.append(message)
        self.ctx.emit(event("note", fault.name, fault.target, {"error": message, "action": action}))
