"""The Python API: the same faults, load and checks as a scenario file, for your own tests.

    with Chaos.started(workdir) as chaos:
        with chaos.toxic("wallet_db", "latency", latency=800, jitter=200):
            history = chaos.load(users=5, duration_s=8)
        verdict = chaos.check(history, errors_allowed=["DATABASE_UNAVAILABLE"])
        assert verdict.passed, verdict_summary(verdict)

Phases follow the faults: "fault" while any fault is applied, "heal" after the last one ends.
"""

from __future__ import annotations

import itertools
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from walletchaos.checks.base import CheckContext
from walletchaos.events import EventLog
from walletchaos.faults import (Fault, FaultContext, FreezeFault, GatewayFault, KillFault, MaintenanceFault,
                                PauseFault, ProxyDownFault, TerminateFault, ToxicFault, clear_stale)
from walletchaos.history import annotate_phases, merge_histories
from walletchaos.load import run_locust
from walletchaos.reconcile import collect_final_state
from walletchaos.topology.base import Topology, make_topology
from walletchaos.verdict import Verdict, run_checks


class Chaos:
    def __init__(self, topology: Topology, workdir: Path, *, seed: int = 0) -> None:
        self.topology = topology
        self.workdir = Path(workdir)
        self.seed = seed
        self.events = EventLog(self.workdir / "events.jsonl")
        self.ctx = FaultContext(topology=topology, emit=self.events.emit, seed=seed)
        self._active = 0
        self._loads = itertools.count(1)

    @classmethod
    @contextmanager
    def started(cls, workdir: Path, *, backend: str = "process", seed: int = 0, **options: Any) -> Iterator["Chaos"]:
        """Start a topology, yield a Chaos handle on it, tear everything down afterwards."""
        topo = make_topology(backend, Path(workdir) / "stack", **options)
        try:
            topo.start()
            yield cls(topo, workdir, seed=seed)
        finally:
            topo.stop()

    # -- faults ------------------------------------------------------------------------------------
    @contextmanager
    def fault(self, fault: Fault) -> Iterator[Fault]:
        """Apply any fault for the duration of the block (undone on exit, also on errors)."""
        with fault.applied(self.ctx):
            self._active += 1
            if self._active == 1:
                self.events.phase("fault")
            try:
                yield fault
            finally:
                self._active -= 1
        if self._active == 0:
            self.events.phase("heal")

    def toxic(self, proxy: str, type: str, *, stream: str = "downstream", toxicity: float = 1.0,
              **attributes: int):
        return self.fault(ToxicFault(f"{type}-{proxy}", proxy, type, stream=stream, toxicity=toxicity,
                                     attributes=attributes))

    def proxy_down(self, proxy: str):
        return self.fault(ProxyDownFault(f"down-{proxy}", proxy))

    def killed(self, service: str):
        """kill -9 now; restarted (and waited for) when the block ends."""
        return self.fault(KillFault(f"kill-{service}", service))

    def terminated(self, service: str):
        return self.fault(TerminateFault(f"terminate-{service}", service))

    def paused(self, service: str):
        return self.fault(PauseFault(f"pause-{service}", service))

    def gateway(self, **behaviour: Any):
        return self.fault(GatewayFault("gateway-behaviour", behaviour))

    def maintenance(self, retry_after_s: int = 5):
        return self.fault(MaintenanceFault("maintenance", retry_after_s))

    def frozen(self, count: int = 3):
        return self.fault(FreezeFault("freeze", count))

    def reset(self) -> list[str]:
        """Remove every toxic and re-enable every proxy (stale state from an interrupted test)."""
        return clear_stale(self.ctx.toxiproxy)

    # -- load and checks ---------------------------------------------------------------------------
    def load(self, *, users: int = 5, duration_s: float = 10.0, mix: str = "default",
             spawn_rate: float | None = None, processes: int = 1) -> list[dict[str, Any]]:
        """Run Locust against the wallet (blocking) and return this load's history."""
        n = next(self._loads)
        history_dir = self.workdir / f"load-{n}"
        if self._active == 0:
            self.events.phase("warmup" if n == 1 else "recover")
        proc = run_locust(self.topology.wallet_url, users=users, spawn_rate=spawn_rate or users,
                          duration_s=duration_s, processes=processes, mix=mix, seed=self.seed,
                          history_dir=history_dir, log_path=self.workdir / f"locust-{n}.log")
        try:
            proc.wait(timeout=duration_s + 60)
        finally:
            proc.stop()
        return merge_histories(sorted(history_dir.glob("history-*.jsonl")))

    def check(self, history: list[dict[str, Any]], *, errors_allowed: Iterable[str] = (),
              invariants: list[str] | None = None, recovery_within_s: float = 10.0) -> Verdict:
        """Reconcile unknown outcomes, collect the final state and run the invariants."""
        events = list(self.events.events)
        annotate_phases(history, events)
        final = collect_final_state(self.topology.wallet_direct_url, self.topology.gateway_url,
                                    self.topology.admin_token, history, timeout=30)
        ctx = CheckContext.for_scenario(events, errors_allowed, scenario="pytest",
                                        recovery_within_s=recovery_within_s,
                                        transport_fault_targets=frozenset({"wallet_api", "wallet"}))
        return run_checks(history, final, ctx, names=invariants)


def verdict_summary(verdict: Verdict) -> str:
    """One line per failed invariant, with its first counterexample: for assertion messages."""
    lines = [f"{r.name}: {r.summary} {r.counterexamples[:1]}" for r in verdict.results if not r.passed]
    return "\n".join(lines) or "all invariants held"


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.1) -> bool:
    """Poll a condition (a readiness check, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
