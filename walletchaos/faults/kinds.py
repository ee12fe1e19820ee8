"""One Fault class per scenario fault kind, and the step -> fault factory."""

from __future__ import annotations

import time
from typing import Any

from walletchaos.faults.base import Fault, FaultContext, control
from walletchaos.faults.evidence import service_pid
from walletchaos.scenario import (FreezeStep, GatewayStep, KillStep, MaintenanceStep, PauseStep,
                                  ProxyDownStep, TerminateStep, ToxicStep)
from walletchaos.toxiproxy_client import ToxiproxyClient


class ToxicFault(Fault):
    kind = "toxic"

    def __init__(self, name: str, proxy: str, type: str, *, stream: str = "downstream",
                 toxicity: float = 1.0, attributes: dict[str, int] | None = None) -> None:
        super().__init__(name, proxy)
        self.type, self.stream, self.toxicity = type, stream, toxicity
        self.attributes = dict(attributes or {})

    def details(self) -> dict[str, Any]:
        return {"type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": self.attributes}

    def _inject(self, ctx: FaultContext) -> None:
        ctx.toxiproxy.add_toxic(self.target, self.type, stream=self.stream, toxicity=self.toxicity,
                                attributes=self.attributes, name=self.name)

    def _heal(self, ctx: FaultContext) -> None:
        if self.target in ctx.toxiproxy.proxies():  # no proxy (start failed on it): nothing to undo
            ctx.toxiproxy.remove_toxic(self.target, self.name)  # an absent toxic is not an error


class ProxyDownFault(Fault):
    kind = "proxy_down"

    def _inject(self, ctx: FaultContext) -> None:
        ctx.toxiproxy.disable(self.target)

    def _heal(self, ctx: FaultContext) -> None:
        if self.target in ctx.toxiproxy.proxies():  # no proxy (start failed on it): nothing to undo
            ctx.toxiproxy.enable(self.target)


class KillFault(Fault):
    """kill -9; healing restarts the service (and waits until it is ready) if it is not running.
    The pid before and after goes into the events: a changed pid is the evidence the kill bit."""

    kind = "kill"
    pid_before: int | None = None
    pid_after: int | None = None

    def details(self) -> dict[str, Any]:
        return {"pid_before": self.pid_before}

    def end_details(self) -> dict[str, Any]:
        return {"pid_before": self.pid_before, "pid_after": self.pid_after}

    def _inject(self, ctx: FaultContext) -> None:
        self.pid_before = service_pid(ctx.topology, self.target)
        ctx.topology.kill(self.target)

    def _heal(self, ctx: FaultContext) -> None:
        if not ctx.topology.is_running(self.target):
            ctx.topology.restart(self.target)
        self.pid_after = service_pid(ctx.topology, self.target)


class TerminateFault(KillFault):
    """Graceful SIGTERM (a deploy); healing starts the service again."""

    kind = "terminate"

    def _inject(self, ctx: FaultContext) -> None:
        self.pid_before = service_pid(ctx.topology, self.target)
        ctx.topology.terminate(self.target)


class PauseFault(Fault):
    """SIGSTOP: the process holds its sockets but answers nothing (a hung server)."""

    kind = "pause"

    def _inject(self, ctx: FaultContext) -> None:
        ctx.topology.pause(self.target)

    def _heal(self, ctx: FaultContext) -> None:
        ctx.topology.resume(self.target)  # SIGCONT to a running process is harmless


class GatewayFault(Fault):
    kind = "gateway"

    def __init__(self, name: str, behaviour: dict[str, Any]) -> None:
        super().__init__(name, "gateway")
        self.behaviour = {k: v for k, v in behaviour.items() if v is not None}

    def details(self) -> dict[str, Any]:
        return {"behaviour": self.behaviour}

    def _inject(self, ctx: FaultContext) -> None:
        control(ctx, "PUT", f"{ctx.topology.gateway_url}/control/behaviour", json=self.behaviour)

    def _heal(self, ctx: FaultContext) -> None:
        control(ctx, "POST", f"{ctx.topology.gateway_url}/control/reset-behaviour")


class MaintenanceFault(Fault):
    kind = "maintenance"

    def __init__(self, name: str, retry_after_s: int) -> None:
        super().__init__(name, "wallet")
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, Any]:
        return {"retry_after_s": self.retry_after_s}

    def _set(self, ctx: FaultContext, enabled: bool) -> None:
        control(ctx, "POST", f"{ctx.topology.wallet_direct_url}/admin/maintenance", admin=True,
                 json={"enabled": enabled, "retry_after_s": self.retry_after_s})

    def _inject(self, ctx: FaultContext) -> None:
        self._set(ctx, True)

    def _heal(self, ctx: FaultContext) -> None:
        self._set(ctx, False)


class FreezeFault(Fault):
    """Freeze `count` random active accounts (picked from GET /admin/export), unfreeze exactly those."""

    kind = "freeze"

    def __init__(self, name: str, count: int) -> None:
        super().__init__(name, "wallet")
        self.count = count
        self.frozen: list[str] = []
        self.frozen_at: dict[str, float] = {}  # account → epoch s its freeze was confirmed (POST answered)
        self.unfreezing_at: dict[str, float] = {}  # account → epoch s its unfreeze was sent

    def details(self) -> dict[str, Any]:
        return {"count": self.count, "accounts": list(self.frozen), "frozen_at": dict(self.frozen_at)}

    def end_details(self) -> dict[str, Any]:
        return {"accounts": sorted(self.unfreezing_at), "frozen_at": dict(self.frozen_at),
                "unfreezing_at": dict(self.unfreezing_at)}

    def _inject(self, ctx: FaultContext) -> None:
        base = ctx.topology.wallet_direct_url
        accounts = control(ctx, "GET", f"{base}/admin/export", admin=True).json()["accounts"]
        candidates = sorted(a["account_id"] for a in accounts if a.get("status", "active") == "active")
        for account_id in ctx.rng.sample(candidates, min(self.count, len(candidates))):
            control(ctx, "POST", f"{base}/admin/accounts/{account_id}/freeze", admin=True)
            self.frozen.append(account_id)  # as we go: a failure half-way still unfreezes these
            self.frozen_at[account_id] = time.time()

    def _heal(self, ctx: FaultContext) -> None:
        base = ctx.topology.wallet_direct_url
        while self.frozen:
            self.unfreezing_at.setdefault(self.frozen[-1], time.time())
            control(ctx, "POST", f"{base}/admin/accounts/{self.frozen[-1]}/unfreeze", admin=True)
            self.frozen.pop()


def build_fault(step: Any, name: str | None = None) -> Fault:
    """The Fault object for one validated timeline step (scenario.FaultStep)."""
    name = name or step.name
    if isinstance(step, ToxicStep):
        return ToxicFault(name, step.target, step.type, stream=step.stream, toxicity=step.toxicity,
                          attributes=step.attributes)
    if isinstance(step, ProxyDownStep):
        return ProxyDownFault(name, step.target)
    if isinstance(step, KillStep):
        return KillFault(name, step.target)
    if isinstance(step, TerminateStep):
        return TerminateFault(name, step.target)
    if isinstance(step, PauseStep):
        return PauseFault(name, step.target)
    if isinstance(step, GatewayStep):
        return GatewayFault(name, step.behaviour.model_dump())
    if isinstance(step, MaintenanceStep):
        return MaintenanceFault(name, step.retry_after())
    if isinstance(step, FreezeStep):
        return FreezeFault(name, step.count)
    raise TypeError(f"no fault for step {type(step).__name__}")


def clear_stale(toxiproxy: ToxiproxyClient) -> list[str]:
    """Remove toxics and re-enable proxies left by an earlier run; returns what was found (for a note)."""
    found = []
    for name, proxy in sorted(toxiproxy.proxies().items()):
        if not proxy.enabled:
            found.append(f"proxy {name} was disabled")
        found += [f"toxic {toxic} on {name}" for toxic in sorted(toxiproxy.toxics(name))]
    toxiproxy.reset()
    return found
