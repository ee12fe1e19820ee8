"""url mode: a wallet that is already running at a URL. The harness controls only what it owns.

    clients ─► [toxiproxy: wallet_api] ─► the running wallet ─► (its own database and gateway)

The harness starts Toxiproxy alone and puts the `wallet_api` proxy in front of the wallet, so toxics
and partitions on the client path work. It cannot kill, pause or restart the wallet, and it does not
own the wallet's database or payment gateway: scenarios that need those are skipped
(`walletchaos/coverage.py` says which and why), never passed. Admin calls (reconcile, export, audit,
freeze, maintenance) go straight to the wallet's URL with the target's admin token.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from walletchaos.adapters import target_adapter
from walletchaos.adapters.admin_bridge import AdminBridge, bridge_if_needed
from walletchaos.target import ADMIN_TOKEN_ENV, Target
from walletchaos.topology import stale
from walletchaos.topology.base import ProxiedStack, Service, TopologyError
from walletchaos.topology.process import LOOPBACK, free_port, start_toxiproxy
from walletchaos.toxiproxy_client import ToxiproxyClient

NOT_OURS = "url mode: the harness does not control the running wallet's processes"


class UrlTopology(ProxiedStack):
    name = "url"
    gateway_url = ""  # the wallet's gateway is its own: no records to compare with

    def __init__(self, workdir: Path | str, *, target: Target, keep_workdir: bool = True, **_ignored) -> None:
        if target.wallet.url is None:
            raise TopologyError(f"target {target.name!r} has no wallet.url")
        token = target.admin_token()
        if not token:
            raise TopologyError(f"target {target.name!r}: url mode needs the wallet's admin token "
                                f"(wallet.admin_token in the file or ${ADMIN_TOKEN_ENV})")
        self.target = target
        self.workdir = Path(workdir).resolve()
        self.keep_workdir = keep_workdir
        self.logs = self.workdir / "logs"
        self.admin_token = token
        self.wallet_origin_url = self.wallet_direct_url = target.wallet.url
        self._bridge: AdminBridge | None = None
        self.wallet_url = self.toxiproxy_url = ""
        self._proc: subprocess.Popen | None = None
        self._toxiproxy: ToxiproxyClient | None = None
        self._state_id = f"{os.getpid()}-{secrets.token_hex(4)}"

    def start(self) -> None:
        stale.clear_stale()
        self.logs.mkdir(parents=True, exist_ok=True)
        parts = urlsplit(self.wallet_direct_url)
        upstream_port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            self._proc, self.toxiproxy_url, self._toxiproxy = start_toxiproxy(self.logs / "toxiproxy.log")
            stale.remember(self._state_id, [self._proc.pid], self.workdir)
            api = self._toxiproxy.create_proxy("wallet_api", f"{LOOPBACK}:{free_port()}",
                                               f"{parts.hostname}:{upstream_port}")
            self.wallet_url = f"{parts.scheme}://{LOOPBACK}:{api.listen_port}"
            self._wait_ready()
            self._bridge = bridge_if_needed(target_adapter(self.target), self.wallet_origin_url, self.admin_token)
            if self._bridge is not None:
                self.wallet_direct_url = self._bridge.url  # the contract admin API the harness calls
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        import httpx

        path = self.target.wallet.ready
        try:
            status = httpx.get(self.wallet_url + path, timeout=5.0).status_code
        except httpx.HTTPError as exc:
            raise TopologyError(f"wallet at {self.wallet_direct_url} does not answer {path} "
                                f"({type(exc).__name__})") from exc
        if status != 200:
            raise TopologyError(f"wallet at {self.wallet_direct_url}{path} answers {status}, not 200")

    def stop(self) -> None:
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        stale.forget(self._state_id)
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self, service: Service) -> None:
        raise TopologyError(NOT_OURS)

    pause = resume = terminate = restart = kill

    def is_running(self, service: Service) -> bool:
        raise TopologyError(NOT_OURS)

    def __enter__(self) -> "UrlTopology":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
