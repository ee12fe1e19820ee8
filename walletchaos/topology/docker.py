"""Backend `docker`: the same stack as `process`, each service a container on one Docker network.

    clients ─► [toxiproxy: wallet_api] ─► wallet ─► [wallet_db] ─► postgres (named volume)
                                             └────► [gateway]  ─► gateway

Built on testcontainers-python (`Network`, `DockerContainer`, wait strategies). Every container, the
network and the volume carry the label `walletchaos=1` plus the owning harness (`walletchaos.owner`),
so `clear_stale()` removes what a run that died hard left behind (and `clear_all()` everything).
Published ports are bound to 127.0.0.1 on host ports chosen at start, explicitly, so they stay the same
when a container is started again after a kill.

Lifecycle faults map to the engine: kill → `docker kill` (SIGKILL), pause/resume → `docker
pause/unpause` (cgroup freezer), terminate → `docker stop`, restart → `docker start` + readiness. The DB
crash is a kill of the postgres container and a start of the same container on the same volume
(crash recovery from the WAL).

Images (first match wins): constructor argument → WALLET_IMAGE / GATEWAY_IMAGE / TOXIPROXY_IMAGE /
POSTGRES_IMAGE → the target's `wallet.image` (the wallet only) → the air-gapped images of `make images`
if present → public defaults. The wallet container gets the target's `args` as its command and the
target's `env` with the placeholders filled with the addresses inside the network (through the proxies).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from walletchaos.target import Target, load_target
from walletchaos.topology.base import ProxiedStack, Service, TopologyError
from walletchaos.toxiproxy_client import ToxiproxyClient

LOOPBACK = "127.0.0.1"  # published ports bind here only
LABEL = "walletchaos"
LABEL_OWNER = "walletchaos.owner"
LABEL_RUN = "walletchaos.run"
LABEL_SERVICE = "walletchaos.service"

# image: (env variable, air-gapped image built by scripts/build-images.sh, public default)
IMAGES: dict[str, tuple[str, str, str]] = {
    "wallet": ("WALLET_IMAGE", "walletchaos/app:dev", "walletchaos/app:dev"),
    "gateway": ("GATEWAY_IMAGE", "walletchaos/app:dev", "walletchaos/app:dev"),
    "toxiproxy": ("TOXIPROXY_IMAGE", "walletchaos/toxiproxy:2.12.0", "ghcr.io/shopify/toxiproxy:2.12.0"),
    "postgres": ("POSTGRES_IMAGE", "walletchaos/postgres:15", "postgres:17"),
}
RYUK_IMAGE_DEFAULT = "testcontainers/ryuk:0.8.1"

# ports inside the network (same as docker-compose.yml and docker/toxiproxy.json)
WALLET_PORT, GATEWAY_PORT, PG_PORT, TOXI_API_PORT = 8080, 8081, 5432, 8474
PROXY_PORTS = {"wallet_api": 18080, "wallet_db": 15432, "gateway": 18081}


def _docker_client():
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - one readable line
        raise TopologyError(f"no Docker engine answers ({type(exc).__name__}: {exc}); "
                            "start one (make docker-engine) or use --backend process") from exc
    return client


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's (shared engine): not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _remove_labelled(client, selector: Callable[[dict[str, str]], bool]) -> list[str]:
    """Remove containers, then networks, then volumes labelled walletchaos=1 that `selector` picks."""
    import docker

    removed: list[str] = []
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        if selector(c.labels):
            try:
                if c.status == "paused":
                    c.unpause()
                c.remove(force=True, v=True)
                removed.append(f"container {c.name}")
            except docker.errors.NotFound:
                pass
    for n in client.networks.list(filters={"label": f"{LABEL}=1"}):
        if selector(n.attrs.get("Labels") or {}):
            try:
                n.remove()
                removed.append(f"network {n.name}")
            except docker.errors.APIError:
                pass  # still in use by a container of a live run
    for v in client.volumes.list(filters={"label": f"{LABEL}=1"}):
        if selector(v.attrs.get("Labels") or {}):
            try:
                v.remove(force=True)
                removed.append(f"volume {v.name}")
            except docker.errors.APIError:
                pass
    return removed


def clear_stale(client=None) -> list[str]:
    """Remove what DockerTopology runs whose harness process is gone left behind (not live runs, not
    docker-compose stacks: those have no owner label)."""
    client = client or _docker_client()
    return _remove_labelled(client, lambda labels: LABEL_OWNER in labels and not _owner_alive(labels[LABEL_OWNER]))


def clear_all(client=None) -> list[str]:
    """Remove everything labelled walletchaos=1 (CI start, `scripts/docker-clean.sh`)."""
    client = client or _docker_client()
    return _remove_labelled(client, lambda labels: True)


def resolve_image(service: str, explicit: str | None = None, client=None) -> str:
    if explicit:
        return explicit
    env, offline, public = IMAGES[service]
    if os.environ.get(env):
        return os.environ[env]
    if client is not None and _image_present(client, offline):
        return offline
    return public


def _image_present(client, image: str) -> bool:
    import docker

    try:
        client.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False


class DockerTopology(ProxiedStack):
    name = "docker"

    def __init__(self, workdir: Path | str, *, wallet_env: dict[str, str] | None = None,
                 gateway_env: dict[str, str] | None = None, admin_token: str | None = None,
                 keep_workdir: bool = True, images: dict[str, str] | None = None,
                 startup_timeout: float = 90.0, target: Target | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.target = target or load_target()
        if not self.target.wallet.image:
            raise TopologyError(f"target {self.target.name!r} has no wallet.image: the docker backend runs "
                                "the wallet from it (command is for --backend process)")
        self.wallet_env = dict(wallet_env or {})
        self.gateway_env = dict(gateway_env or {})
        self.admin_token = admin_token or secrets.token_urlsafe(16)
        self.keep_workdir = keep_workdir
        self.startup_timeout = startup_timeout
        self.logs = self.workdir / "logs"
        self._image_args = dict(images or {})
        if not os.environ.get(IMAGES["wallet"][0]):
            self._image_args.setdefault("wallet", self.target.wallet.image)
        self.images: dict[str, str] = {}
        self.run_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.labels = {LABEL: "1", LABEL_OWNER: _owner(), LABEL_RUN: self.run_id}
        self.pg_user, self.pg_password, self.pg_db = "wallet", secrets.token_hex(12), "wallet"
        self.toxiproxy_url = self.wallet_url = self.wallet_direct_url = self.gateway_url = ""
        self.wallet_origin_url = ""  # the wallet itself, bypassing Toxiproxy
        self._bridge = None       # the contract admin API for a wallet whose admin API differs
        self.database_url = ""    # from the host, through the wallet_db proxy
        self.host_ports: dict[str, int] = {}
        self.network = None       # testcontainers Network
        self.volume = None        # docker Volume of the postgres data
        self.containers: dict[str, Any] = {}   # service -> testcontainers DockerContainer
        self._client = None
        self._toxiproxy: ToxiproxyClient | None = None

    # -- start / stop -----------------------------------------------------------------------------
    def start(self) -> None:
        self._client = _docker_client()
        self._configure_ryuk()
        clear_stale(self._client)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.images = {s: resolve_image(s, self._image_args.get(s), self._client) for s in IMAGES}
        missing = sorted({i for i in self.images.values() if not _image_present(self._client, i)})
        if missing:
            raise TopologyError(f"docker images not present: {', '.join(missing)} (no registry pulls here): "
                                "build them with `make images` and export what it prints")
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def _configure_ryuk(self) -> None:
        """Ryuk (testcontainers' reaper) only if its image is already here: nothing is pulled."""
        from testcontainers.core.config import testcontainers_config as tc

        if not tc.ryuk_disabled and not _image_present(self._client, tc.ryuk_image or RYUK_IMAGE_DEFAULT):
            os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
            tc.ryuk_disabled = True

    def _start_all(self) -> None:
        from testcontainers.core.container import DockerContainer
        from testcontainers.core.network import Network

        self.network = Network(docker_network_kw={"labels": dict(self.labels)}).create()
        self.volume = self._client.volumes.create(name=f"walletchaos-pg-{self.run_id}",
                                                  labels={**self.labels, LABEL_SERVICE: "postgres"})
        for key in ("toxiproxy", "wallet_api", "wallet_db", "wallet", "gateway"):
            self.host_ports[key] = _free_port()

        def container(service: str, **kw: Any) -> DockerContainer:
            c = DockerContainer(self.images[service], **kw)
            c.with_network(self.network).with_network_aliases(service)
            c.with_name(f"walletchaos-{self.run_id}-{service}")
            c._kwargs.setdefault("labels", {**self.labels, LABEL_SERVICE: service})
            self.containers[service] = c
            return c

        def publish(c: DockerContainer, container_port: int, key: str) -> None:
            c.ports[f"{container_port}/tcp"] = (LOOPBACK, self.host_ports[key])  # 127.0.0.1 only

        pg = container("postgres")
        pg.with_envs(POSTGRES_USER=self.pg_user, POSTGRES_PASSWORD=self.pg_password, POSTGRES_DB=self.pg_db)
        pg.with_volume_mapping(self.volume.name, "/var/lib/postgresql/data", "rw")
        pg.start()

        tp = container("toxiproxy", command=["-host=0.0.0.0"])
        publish(tp, TOXI_API_PORT, "toxiproxy")
        publish(tp, PROXY_PORTS["wallet_api"], "wallet_api")
        publish(tp, PROXY_PORTS["wallet_db"], "wallet_db")
        tp.start()

        gw = container("gateway", command=["gateway"])
        gw.with_envs(**self.gateway_env)
        publish(gw, GATEWAY_PORT, "gateway")
        gw.start()

        self.toxiproxy_url = f"http://{LOOPBACK}:{self.host_ports['toxiproxy']}"
        self.gateway_url = f"http://{LOOPBACK}:{self.host_ports['gateway']}"
        self.wallet_direct_url = self.wallet_origin_url = f"http://{LOOPBACK}:{self.host_ports['wallet']}"
        self.wallet_url = f"http://{LOOPBACK}:{self.host_ports['wallet_api']}"
        self.database_url = (f"postgresql://{self.pg_user}:{self.pg_password}@{LOOPBACK}:"
                             f"{self.host_ports['wallet_db']}/{self.pg_db}")
        self._toxiproxy = ToxiproxyClient(self.toxiproxy_url)
        # the three start in parallel; wait for each now
        self._wait_ready("toxiproxy")
        self._wait_ready("postgres")
        self._wait_ready("gateway")
        for name, upstream in (("wallet_db", f"postgres:{PG_PORT}"), ("gateway", f"gateway:{GATEWAY_PORT}"),
                               ("wallet_api", f"wallet:{WALLET_PORT}")):
            self._toxiproxy.create_proxy(name, f"0.0.0.0:{PROXY_PORTS[name]}", upstream)

        rendered = self.target.render({
            "host": "0.0.0.0", "port": str(WALLET_PORT),
            "database_url": (f"postgresql://{self.pg_user}:{self.pg_password}@toxiproxy:"
                             f"{PROXY_PORTS['wallet_db']}/{self.pg_db}"),
            "db_host": "toxiproxy", "db_port": str(PROXY_PORTS["wallet_db"]), "db_user": self.pg_user,
            "db_password": self.pg_password, "db_name": self.pg_db,
            "gateway_url": f"http://toxiproxy:{PROXY_PORTS['gateway']}", "admin_token": self.admin_token,
            "data_dir": "/tmp/wallet-data", "log_path": "/dev/stdout",
        })
        wallet = container("wallet", **({"command": rendered.args} if rendered.args else {}))
        wallet.with_envs(
            **rendered.env,
            # the database's own address, around the proxy: only the planted bug db-bypasses-proxy reads it
            WALLETCHAOS_DIRECT_DATABASE_URL=f"postgresql://{self.pg_user}:{self.pg_password}@postgres:{PG_PORT}/{self.pg_db}",
            **self.wallet_env,
        )
        publish(wallet, WALLET_PORT, "wallet")
        wallet.start()
        self._wait_ready("wallet")
        from walletchaos.adapters import target_adapter
        from walletchaos.adapters.admin_bridge import bridge_if_needed

        self._bridge = bridge_if_needed(target_adapter(self.target), self.wallet_origin_url, self.admin_token)
        if self._bridge is not None:
            self.wallet_direct_url = self._bridge.url

    def save_logs(self) -> None:
        """Write each container's log so far to `<workdir>/logs/<service>.log` (stop() does it too)."""
        import docker

        self.logs.mkdir(parents=True, exist_ok=True)
        for service, c in self.containers.items():
            if c._container is None:
                continue
            try:
                (self.logs / f"{service}.log").write_bytes(c._container.logs(stdout=True, stderr=True))
            except (docker.errors.APIError, OSError):
                pass

    def stop(self) -> None:
        """Save logs, remove containers, network and volume; idempotent, safe after a partial start."""
        import docker

        if self._bridge is not None:
            self._bridge.stop()
            self._bridge = None
        self.save_logs()
        for service, c in reversed(list(self.containers.items())):
            wrapped = c._container
            if wrapped is None:
                continue
            try:
                wrapped.reload()
                if wrapped.status == "paused":
                    wrapped.unpause()
            except docker.errors.APIError:
                pass
            try:
                wrapped.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                wrapped.remove(force=True, v=True)  # a second try after a racing state change
        self.containers.clear()
        if self.network is not None:
            try:
                self.network.remove()
            except docker.errors.NotFound:
                pass
            self.network = None
        if self.volume is not None:
            try:
                self.volume.remove(force=True)
            except docker.errors.NotFound:
                pass
            self.volume = None
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- access -------------------------------------------------------------------------------------
    def container(self, service: str):
        """The docker SDK container of a service (wallet, gateway, postgres, toxiproxy)."""
        c = self.containers.get(service)
        if c is None or c._container is None:
            raise TopologyError(f"unknown or unstarted service {service!r}")
        return c._container

    # -- lifecycle faults -----------------------------------------------------------------------------
    def kill(self, service: Service) -> None:
        c = self.container(service)
        c.reload()
        if c.status in ("running", "paused"):
            c.kill()  # SIGKILL; also ends a paused container

    def pause(self, service: Service) -> None:
        c = self.container(service)
        c.reload()
        if c.status == "running":
            c.pause()

    def resume(self, service: Service) -> None:
        c = self.container(service)
        c.reload()
        if c.status == "paused":
            c.unpause()

    def terminate(self, service: Service) -> None:
        c = self.container(service)
        c.reload()
        if c.status == "paused":
            c.unpause()
        if c.status in ("running", "paused"):
            c.stop(timeout=10)  # the image's STOPSIGNAL, SIGKILL after 10 s

    def restart(self, service: Service) -> None:
        """Start a killed/terminated container again (same volume, same ports) and wait until ready."""
        c = self.container(service)
        c.reload()
        if c.status == "paused":
            c.unpause()
        elif c.status != "running":
            c.start()
        self._wait_ready(service)

    def is_running(self, service: Service) -> bool:
        c = self.container(service)
        c.reload()
        return bool(c.attrs["State"]["Running"])  # a paused container is running (like SIGSTOP)

    # -- readiness ------------------------------------------------------------------------------------
    def _wait_ready(self, service: str, timeout: float | None = None) -> None:
        """Poll the service's own readiness probe; fail fast (with its log tail) if the container exits."""
        probes: dict[str, Callable[[], bool]] = {
            "postgres": self._pg_ready,
            "toxiproxy": lambda: self._http_ok(f"{self.toxiproxy_url}/version"),
            "gateway": lambda: self._http_ok(f"{self.gateway_url}/readyz"),
            "wallet": lambda: self._http_ok(f"{self.wallet_origin_url}{self.target.wallet.ready}"),
        }
        probe = probes[service]
        c = self.container(service)
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            if probe():
                return
            c.reload()
            if c.status in ("exited", "dead"):
                raise TopologyError(f"{service} container exited (code {c.attrs['State'].get('ExitCode')}) "
                                    f"before ready: {self._log_tail(c)}")
            if time.monotonic() > deadline:
                raise TopologyError(f"{service} not ready after {timeout or self.startup_timeout:.0f}s "
                                    f"(status {c.status}): {self._log_tail(c)}")
            time.sleep(0.1)  # poll interval of the readiness probe

    def _pg_ready(self) -> bool:
        c = self.container("postgres")
        try:  # TCP, not the socket: during init the official image listens on its unix socket only
            res = c.exec_run(["pg_isready", "-q", "-h", "127.0.0.1", "-U", self.pg_user, "-d", self.pg_db])
        except Exception:  # noqa: BLE001 - container not running yet / any more
            return False
        return res.exit_code == 0

    @staticmethod
    def _http_ok(url: str) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def _log_tail(c, lines: int = 30) -> str:
        try:
            return c.logs(tail=lines).decode(errors="replace").strip()[-3000:]
        except Exception:  # noqa: BLE001
            return "(no logs)"

    def __enter__(self) -> "DockerTopology":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
