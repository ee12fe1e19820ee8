"""The topology interface: what every backend (local processes, containers) offers a scenario.

A scenario never knows which backend runs it; it names proxies and services only.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from walletchaos.toxiproxy_client import ToxiproxyClient

Service = Literal["wallet", "gateway", "postgres"]
SERVICES: tuple[str, ...] = ("wallet", "gateway", "postgres")
# proxy name -> (who talks through it)
PROXIES: dict[str, str] = {
    "wallet_api": "clients -> wallet",
    "wallet_db": "wallet -> postgres",
    "gateway": "wallet -> payment gateway",
}


class TopologyError(RuntimeError):
    """The stack could not be started or controlled; the message is one readable line plus a log tail."""


class ProxiedStack:
    """What every topology shares: its Toxiproxy client and the addresses it hands out."""

    _toxiproxy: ToxiproxyClient | None
    wallet_url: str
    wallet_direct_url: str
    gateway_url: str
    toxiproxy_url: str
    admin_token: str

    def toxiproxy(self) -> ToxiproxyClient:
        if self._toxiproxy is None:
            raise TopologyError("topology not started")
        return self._toxiproxy

    def urls(self) -> dict[str, str]:
        return {"wallet_url": self.wallet_url, "wallet_direct_url": self.wallet_direct_url,
                "gateway_url": self.gateway_url, "toxiproxy_url": self.toxiproxy_url,
                "admin_token": self.admin_token}


@runtime_checkable
class Topology(Protocol):
    name: str
    wallet_url: str          # through the wallet_api proxy: what clients use
    wallet_direct_url: str   # the contract admin API, bypassing Toxiproxy (the wallet, or an adapter's admin bridge)
    wallet_origin_url: str   # the wallet itself, bypassing Toxiproxy
    gateway_url: str         # gateway control API and records, direct
    toxiproxy_url: str
    admin_token: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def toxiproxy(self) -> ToxiproxyClient: ...
    def kill(self, service: Service) -> None: ...
    def pause(self, service: Service) -> None: ...
    def resume(self, service: Service) -> None: ...
    def terminate(self, service: Service) -> None: ...
    def restart(self, service: Service) -> None: ...
    def is_running(self, service: Service) -> bool: ...
    def urls(self) -> dict[str, str]: ...


def make_topology(backend: str, workdir, *, target=None, **options) -> Topology:
    """Build the topology for a backend name ("process" or "docker") and a target
    (`walletchaos.target.Target`, default targets/mock-wallet.yaml). A target with `wallet.url` is a
    wallet that is already running: url mode, whatever the backend."""
    from walletchaos.target import load_target

    target = target or load_target()
    if target.mode == "url":
        from walletchaos.topology.url import UrlTopology

        return UrlTopology(workdir, target=target, **options)
    if backend == "process":
        from walletchaos.topology.process import ProcessTopology

        return ProcessTopology(workdir, target=target, **options)
    if backend == "docker":
        from walletchaos.topology.docker import DockerTopology

        return DockerTopology(workdir, target=target, **options)
    raise TopologyError(f"unknown backend {backend!r}: choose 'process' or 'docker'")
