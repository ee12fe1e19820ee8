"""Operation history: the record format of docs/internals.md, JSONL I/O, merge and phase annotation.

Ops stay plain dicts (not models) on purpose: checkers walk millions of them and attribute access on
a dict is the cheapest thing Python offers. `new_op` is the one place that knows every field, so
writers cannot forget one.
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import orjson

KINDS = frozenset({"register", "login", "deposit", "withdrawal", "transfer", "balance", "history", "lookup"})
WRITE_KINDS = frozenset({"deposit", "withdrawal", "transfer"})
AUDIT_KIND = "audit"  # the harness's own GET /admin/audit snapshots (walletchaos/snapshots.py), not client ops
OUTCOMES = frozenset({"ok", "fail", "unknown"})
PHASES = ("warmup", "fault", "heal", "recover", "final")
# op `tag`: a deliberate client behaviour, so its error is expected (None: an ordinary op)
TAG_RETRY = "retry"                # the same write again, same key (a replay of its first outcome)
TAG_WRONG_PIN = "wrong_pin"        # a customer mistypes the payment PIN
TAG_PIN_GUESS = "pin_guess"        # an attacker guesses a payment PIN
TAG_BRUTE_FORCE = "brute_force"    # an attacker guesses a password
TAG_RELOGIN = "relogin"            # the owner signs in with the right password after being locked out
TAG_INTRUSION = "intrusion"        # a logged-in user reaches for another user's account / transaction
TAG_KEY_REPLAY = "key_replay"      # a logged-in user replays another user's idempotency key
TAG_BAD_TOKEN = "bad_token"        # a forged or broken bearer token
TAG_OVERDRAFT = "overdraft"        # more than the balance, on purpose
WRONG_PIN_TAGS = frozenset({TAG_WRONG_PIN, TAG_PIN_GUESS})

FaultWindow = tuple[float, float, str, "str | None"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building or walking a big history: with ~10⁷ live objects (1M ops)
    every full collection rescans them all, which made reading and checking 2–5× slower. Ops are
    acyclic, so nothing is leaked."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def new_op(
    op_id: str,
    kind: str,
    invoke_ts: float,
    *,
    worker: str = "",
    user: str = "",
    args: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    account_id: str | None = None,
    complete_ts: float | None = None,
    outcome: str = "unknown",
    status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
    txn_id: str | None = None,
    txn_status: str | None = None,
    balance: int | None = None,
    error: str | None = None,
    content_type: str | None = None,
    problem: dict[str, Any] | None = None,
    body_excerpt: str | None = None,
    phase: str | None = None,
    retry_after: str | None = None,
    owner_user: str | None = None,
    target_owner: str | None = None,
) -> dict[str, Any]:
    """Build one history record with every field of the format; latency derives from the timestamps."""
    if kind not in KINDS and kind != AUDIT_KIND:
        raise ValueError(f"unknown op kind {kind!r}; expected one of {sorted(KINDS)}")
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {sorted(OUTCOMES)}")
    latency_ms = None if complete_ts is None else round((complete_ts - invoke_ts) * 1000.0, 3)
    return {
        "op_id": op_id, "worker": worker, "user": user, "kind": kind, "args": args or {},
        "idempotency_key": idempotency_key, "account_id": account_id,
        "invoke_ts": invoke_ts, "complete_ts": complete_ts, "latency_ms": latency_ms,
        "outcome": outcome, "status": status, "code": code, "request_id": request_id,
        "txn_id": txn_id, "txn_status": txn_status, "balance": balance, "error": error,
        "content_type": content_type, "problem": problem, "body_excerpt": body_excerpt, "phase": phase,
        "retry_after": retry_after, "owner_user": owner_user, "target_owner": target_owner,
    }


class HistoryWriter:
    """Appends one JSON line per op and flushes each, so a SIGKILLed worker loses at most one line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed by close()/__exit__

    def write(self, op: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(op) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSONL file; a torn *last* line (writer killed mid-write) is dropped, any other bad line raises."""
    lines = Path(path).read_bytes().splitlines()
    out: list[dict[str, Any]] = []
    loads = orjson.loads
    last = len(lines) - 1
    with gc_paused():
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                out.append(loads(line))
            except orjson.JSONDecodeError as exc:
                if i == last:
                    break
                raise ValueError(f"{path}:{i + 1}: invalid JSON line: {exc}") from exc
    return out


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """All ops of one history.jsonl, in file order."""
    return _read_jsonl(path)


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All events of one events.jsonl, sorted by ts."""
    events = _read_jsonl(path)
    events.sort(key=lambda e: e["ts"])
    return events


def merge_histories(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Concatenate per-worker histories and sort by invoke_ts (op_id breaks ties, for determinism)."""
    ops: list[dict[str, Any]] = []
    for p in paths:
        ops.extend(read_history(p))
    ops.sort(key=lambda o: (o["invoke_ts"], o["op_id"]))
    return ops


def annotate_phases(ops: list[dict[str, Any]], events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each op's `phase` to the phase in force at its invoke_ts; returns `ops` (mutated in place).

    Ops invoked before the first phase event (clock skew between worker processes, a few ms) get the
    first phase rather than None, so every op has a phase the checkers can look up.
    """
    phases = sorted((e["ts"], e["name"]) for e in events if e["kind"] == "phase")
    if not phases:
        return ops
    starts = [ts for ts, _ in phases]
    names = [name for _, name in phases]
    right = bisect.bisect_right
    for op in ops:
        i = right(starts, op["invoke_ts"]) - 1
        op["phase"] = names[i if i >= 0 else 0]
    return ops


def fault_windows(events: Sequence[dict[str, Any]]) -> list[FaultWindow]:
    """Pair fault_start/fault_end events by (name, target) in FIFO order → [(start, end, name, target)].

    A fault that never ended (aborted run) is closed at the last event's ts, so it still counts as
    active for everything recorded after its start.
    """
    ordered = sorted(events, key=lambda e: e["ts"])
    open_: dict[tuple[str, str | None], list[float]] = {}
    windows: list[FaultWindow] = []
    for e in ordered:
        key = (e["name"], e.get("target"))
        if e["kind"] == "fault_start":
            open_.setdefault(key, []).append(e["ts"])
        elif e["kind"] == "fault_end" and open_.get(key):
            windows.append((open_[key].pop(0), e["ts"], key[0], key[1]))
    for (name, target), starts in open_.items():
        windows.extend((s, ordered[-1]["ts"], name, target) for s in starts)
    windows.sort()
    return windows
