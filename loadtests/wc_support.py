"""Locust-side plumbing for the wallet users: configuration from env, worker identity, the per-process
history file, the FastHttp transport and the per-process registry of known accounts.

Kept out of locustfile.py so the locustfile only says *which* users run. Everything here is lazy:
with `--processes N` Locust imports the locustfile once and then forks, so anything tied to a process
(pid, history file, worker index) must be created on first use inside the worker.
"""

from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walletchaos.client import RawResponse, client_timeout_s
from walletchaos.history import HistoryWriter

MIXES = ("default", "busy", "peak", "brute_force", "intruder", "readonly")
THINK_DEFAULT = (0.5, 2.0)
THINK_PEAK = (0.0, 0.1)
THINK_BUSY = (0.05, 0.25)  # the ordinary customer, hurried: many ops per run (account-freeze)


@dataclass(frozen=True)
class Config:
    """Env vars the harness (walletchaos.load.run_locust) passes to every Locust process."""

    seed: int
    mix: str
    history_dir: Path
    think_s: tuple[float, float]
    timeout_s: float

    @classmethod
    def from_env(cls) -> Config:
        mix = os.environ.get("WALLETCHAOS_MIX", "default")
        if mix not in MIXES:
            raise SystemExit(f"WALLETCHAOS_MIX={mix!r} is not a known mix; choose one of {', '.join(MIXES)}")
        think = THINK_PEAK if mix == "peak" else THINK_BUSY if mix == "busy" else THINK_DEFAULT
        raw = os.environ.get("WALLETCHAOS_THINK_S")  # "lo,hi" seconds, overrides the mix's think time
        if raw:
            lo, hi = (float(x) for x in raw.split(","))
            think = (lo, hi)
        return cls(seed=int(os.environ.get("WALLETCHAOS_SEED", "0")), mix=mix,
                   history_dir=Path(os.environ.get("WALLETCHAOS_HISTORY_DIR", "history")),
                   think_s=think, timeout_s=client_timeout_s())


CONFIG = Config.from_env()


# -- per-process identity and history ---------------------------------------------------------------------
_writer: HistoryWriter | None = None
_writer_pid: int | None = None
_worker_id: str | None = None
_user_counter = 0


def worker_index(environment: Any) -> int:
    """0 standalone; the master-assigned index with --processes / distributed workers."""
    idx = getattr(getattr(environment, "runner", None), "worker_index", 0)
    return idx if isinstance(idx, int) and idx >= 0 else 0


def worker_id(environment: Any) -> str:
    """`w<index>p<pid>`: unique across the processes of one run (and readable in op ids)."""
    global _worker_id
    if _worker_id is None or not _worker_id.endswith(f"p{os.getpid()}"):
        _worker_id = f"w{worker_index(environment)}p{os.getpid()}"
    return _worker_id


def next_user_index() -> int:
    """Per-process user number, in spawn order (deterministic for a given user count and mix)."""
    global _user_counter
    _user_counter += 1
    return _user_counter - 1


def user_rng(seed: int, widx: int, uidx: int) -> random.Random:
    """Same (seed, worker, user) → same behaviour choices; string seeds hash stably across runs."""
    return random.Random(f"walletchaos:{seed}:{widx}:{uidx}")


def history_sink(environment: Any) -> HistoryWriter:
    """This process's `history-<worker-id>.jsonl` (opened on first op, after any fork)."""
    global _writer, _writer_pid
    if _writer is None or _writer_pid != os.getpid():
        path = CONFIG.history_dir / f"history-{worker_id(environment)}.jsonl"
        _writer, _writer_pid = HistoryWriter(path), os.getpid()
    return _writer


def close_history() -> None:
    """Called on Locust's `quit` event, i.e. after the users were stopped (in-flight ops written)."""
    global _writer
    if _writer is not None and _writer_pid == os.getpid():
        _writer.close()
    _writer = None


# -- transport ----------------------------------------------------------------------------------------------
def _transport_error(r: Any) -> BaseException | None:
    """The connection-level error of a FastHttp response, ignoring Locust's 'bad status' marker.

    geventhttpclient wraps a failed single attempt (max_retries=0) in RetriesExceeded; the original
    error (timeout, refused, reset) is what the outcome rule needs, so it is unwrapped.
    """
    for exc in (getattr(r, "error", None), getattr(r, "request_meta", {}).get("exception")):
        if exc is not None and type(exc).__name__ != "LocustBadStatusCode":
            original = getattr(exc, "original", None)
            return original if isinstance(original, BaseException) else exc
    return None


class FastHttpTransport:
    """walletchaos.client.Transport over Locust's FastHttpSession. The with-block marks Locust's stats
    from the op's outcome (ok → success), so Locust's failure table mirrors the history."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def send(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None,
             name: str, judge: Any) -> RawResponse:
        with self.session.request(method, path, name=name, data=body, headers=headers,
                                  catch_response=True) as r:
            exc = _transport_error(r)
            if exc is not None or not r.status_code:
                raw = RawResponse(None, {}, b"", exc or ConnectionError("no response"))
            else:
                raw = RawResponse(r.status_code, r.headers, r.content or b"")
            ok, label = judge(raw)
            if ok:
                r.success()
            else:
                r.failure(label)
        return raw


# -- who exists in this process -------------------------------------------------------------------------------
@dataclass
class Known:
    username: str
    account_id: str


@dataclass
class Registry:
    """Accounts registered (and txns created) by the users of this process: transfer targets and the
    victims of brute-force / intruder users."""

    accounts: list[Known] = field(default_factory=list)
    txns: deque[tuple[str | None, str, str]] = field(default_factory=lambda: deque(maxlen=200))

    def add(self, username: str, account_id: str) -> None:
        self.accounts.append(Known(username, account_id))

    def other(self, rng: random.Random, not_account: str | None) -> Known | None:
        """One account other than `not_account` (one rng draw whatever the registry size)."""
        r = rng.random()
        others = [k for k in self.accounts if k.account_id != not_account]
        return others[int(r * len(others))] if others else None

    def owner_of(self, account_id: str) -> str | None:
        """Username of a known account (the victim named in an attack op's `target_owner`)."""
        return next((k.username for k in self.accounts if k.account_id == account_id), None)

    def other_txn(self, rng: random.Random, not_account: str | None) -> tuple[str | None, str, str] | None:
        """(txn_id, idempotency_key, account_id) of a txn made by someone else."""
        r = rng.random()
        others = [t for t in self.txns if t[2] != not_account]
        return others[int(r * len(others))] if others else None


REGISTRY = Registry()
