"""Planted bugs: known classes of wallet defects, switched on one at a time to prove the harness catches
them (`walletchaos detect`). Off by default; `WALLET_BUGS=name,...` is refused unless
`WALLET_ALLOW_BUGS=1` is also set, and a wallet running with bugs says so loudly in its logs and /healthz.

This registry is the single source of truth: the wallet code asks `active(name)`, and the detection
matrix reads `caught_by` (the invariant that names the bug) and `scenario` (the catalog scenario that
should catch it; the quick CI mode runs only that pair).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

log = logging.getLogger("mock_wallet.bugs")


@dataclass(frozen=True)
class PlantedBug:
    name: str
    summary: str       # what the defect is, in one line
    caught_by: str     # the invariant (checker NAME) that names this bug
    scenario: str      # the catalog scenario that should catch it


BUGS: dict[str, PlantedBug] = {b.name: b for b in [
    PlantedBug("non-atomic-transfer",
               "transfer debits and credits in separate DB transactions (the credit a moment later, on a "
               "connection of its own)", "conservation", "db-connection-reset"),
    PlantedBug("lost-update", "read-modify-write of the balance without a row lock (absolute value written back)",
               "ledger", "peak-hour-congestion"),
    PlantedBug("gateway-retry-new-reference",
               "a deposit/withdrawal whose gateway answer was lost is retried under a fresh reference",
               "exactly_once", "gateway-apply-then-drop"),
    PlantedBug("ack-before-commit",
               "a deposit is answered 201 at once and written (gateway charge, commit) ~1 s later in the background",
               "durability", "wallet-kill"),
    PlantedBug("error-as-200", "dependency failures answered as a bare HTML 500 (database) or as a 200 with an "
               "error field (gateway)", "clear_errors", "db-crash"),
    PlantedBug("check-then-act", "balance checked outside the lock, then debited without re-checking; the "
               "schema's CHECK (balance >= 0) is dropped at start", "no_overdraft", "peak-hour-congestion"),
    PlantedBug("timeout-as-failure", "a gateway timeout is treated as a definite failure and reversed",
               "exactly_once", "gateway-apply-then-drop"),
    PlantedBug("memory-idempotency", "idempotency keys kept only in process memory (lost on restart); the "
               "UNIQUE (user_id, idempotency_key) on transactions is dropped at start", "exactly_once",
               "lost-response-restart"),
    PlantedBug("leaky-errors", "problem responses without request id, with a stack trace in the detail",
               "clear_errors", "db-crash"),
    PlantedBug("no-db-timeout", "no DB statement/lock/command/pool timeout and no request deadline",
               "clear_errors", "db-freeze"),
]}

ALLOW_ENV = "WALLET_ALLOW_BUGS"


class BugsRefused(RuntimeError):
    """WALLET_BUGS set without WALLET_ALLOW_BUGS=1, or naming an unknown bug."""


def parse(spec: str, *, allow: bool | None = None) -> frozenset[str]:
    """The set of bugs named in `spec` (comma list); refuses unknown names and a missing opt-in."""
    names = frozenset(n.strip() for n in spec.split(",") if n.strip())
    if not names:
        return names
    unknown = sorted(names - BUGS.keys())
    if unknown:
        raise BugsRefused(f"unknown planted bug(s) {', '.join(unknown)}; known: {', '.join(BUGS)}")
    if allow is None:
        allow = os.environ.get(ALLOW_ENV) == "1"
    if not allow:
        raise BugsRefused(f"WALLET_BUGS={spec!r} plants bugs; refused unless {ALLOW_ENV}=1 (harness self-test only)")
    return names


_active: frozenset[str] = frozenset()


def configure(spec: str, *, allow: bool | None = None) -> frozenset[str]:
    """Switch the named bugs on for this process (called once at wallet start)."""
    global _active
    _active = parse(spec, allow=allow)
    for name in sorted(_active):
        log.warning("PLANTED BUG ACTIVE: %s (%s) -- this wallet is deliberately broken", name, BUGS[name].summary)
    return _active


def active(name: str) -> bool:
    """True if bug `name` is planted in this process."""
    if name not in BUGS:
        raise KeyError(name)
    return name in _active


def planted() -> list[str]:
    return sorted(_active)
