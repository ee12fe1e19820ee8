"""Planted bugs: known classes of wallet defects, switched on one at a time to prove the harness catches
them (`walletchaos detect`). Off by default; `WALLET_BUGS=name,...` is refused unless
`WALLET_ALLOW_BUGS=1` is also set, and a wallet running with bugs says so loudly in its logs and /healthz.

Each bug is one module here, named after it (`lost-update` → `lost_update.py`), whose `plant(parts)`
swaps one part of the wallet (mock_wallet/parts.py) for a subclass that replaces one step. The healthy
code never asks which bugs are planted.

This registry is the single source of truth: `caught_by` is the invariant (checker NAME) that names the
bug, `scenario` the catalog scenario that should catch it (the quick detect mode runs only that pair).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from mock_wallet.parts import WalletParts

log = logging.getLogger("mock_wallet.defects")


@dataclass(frozen=True)
class PlantedBug:
    name: str
    summary: str       # what the defect is, in one line
    caught_by: str     # the invariant (checker NAME) that names this bug
    scenario: str      # the catalog scenario that should catch it

    @property
    def module(self) -> str:
        return f"{__name__}.{self.name.replace('-', '_')}"

    def plant(self, parts: WalletParts) -> None:
        importlib.import_module(self.module).plant(parts)


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
    PlantedBug("foreign-account-read", "account, history and transaction reads (by id or idempotency key) do "
               "not check the owner: any logged-in user reads any account", "authorization", "unauthorised-access"),
    PlantedBug("foreign-account-debit", "transfers and withdrawals do not check who owns the source account",
               "authorization", "unauthorised-access"),
    PlantedBug("pin-bypass", "the PIN cache is looked up by user, not by PIN: after one correct PIN, any PIN "
               "of that user is accepted", "credentials", "login-brute-force"),
    PlantedBug("no-lockout", "failed logins and PINs are counted but never lock", "credentials",
               "login-brute-force"),
    PlantedBug("frozen-ignored", "a frozen account still receives: incoming transfers and deposits are not "
               "refused (outgoing ones are)", "frozen_accounts", "account-freeze"),
    PlantedBug("refusal-with-effect", "every 5th transfer is answered 503 DATABASE_UNAVAILABLE ('nothing was "
               "applied') after its commit: the money moved", "honest_refusals", "baseline"),
    PlantedBug("no-retry-after", "429 RATE_LIMITED and 503 MAINTENANCE answered without Retry-After",
               "clear_errors", "maintenance-window"),
    PlantedBug("swallowed-exception-log", "every 25th request a metrics step raises; the wallet logs an ERROR "
               "with a traceback and answers normally", "server_logs", "baseline"),
    PlantedBug("stale-balance-read", "balance reads served from a 1 s per-process cache that writes do "
               "not invalidate", "read_consistency", "peak-hour-congestion"),
    PlantedBug("history-missing-rows", "history pages leave out transactions created in the last second "
               "(as if served from a lagging read model)", "read_consistency", "peak-hour-congestion"),
    PlantedBug("split-transfer-commit", "a transfer's debit and credit commit in two DB transactions 0.25 s "
               "apart (the credit retried until it lands: the final state heals)", "bank_snapshots", "baseline"),
    PlantedBug("db-bypasses-proxy", "the wallet connects to PostgreSQL directly (WALLETCHAOS_DIRECT_DATABASE_URL), "
               "not through the wallet_db proxy: DB faults have no effect", "fault_efficacy", "db-unreachable"),
]}

ALLOW_ENV = "WALLET_ALLOW_BUGS"


class BugsRefused(RuntimeError):
    """WALLET_BUGS set without WALLET_ALLOW_BUGS=1, naming an unknown bug, or a bug that cannot be planted."""


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


def assemble(names: Iterable[str]) -> WalletParts:
    """The wallet's parts with the named bugs planted. Bugs listed earlier in BUGS wrap later ones on a
    shared part (e.g. error-as-200 decides before leaky-errors renders)."""
    parts = WalletParts()
    wanted = set(names)
    for bug in reversed(BUGS.values()):
        if bug.name in wanted:
            bug.plant(parts)
    return parts


def announce(names: Iterable[str]) -> None:
    for name in sorted(names):
        log.warning("PLANTED BUG ACTIVE: %s (%s) -- this wallet is deliberately broken", name, BUGS[name].summary)
