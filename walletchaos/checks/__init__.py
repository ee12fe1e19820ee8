"""Registry of the invariant checkers: name → check(history, final, ctx) -> CheckResult."""

from __future__ import annotations

from collections.abc import Callable

from walletchaos.checks import (
    authorization,
    bank_snapshots,
    clear_errors,
    conservation,
    credentials,
    durability,
    exactly_once,
    fault_efficacy,
    frozen_accounts,
    honest_refusals,
    ledger,
    no_overdraft,
    no_phantoms,
    read_consistency,
    recovery,
    server_logs,
)
from walletchaos.checks.base import CheckContext, CheckResult

# check(history, final, ctx, *, index: RunIndex | None = None) -> CheckResult; `index` is an optional
# extension of the internals.md signature so run_checks can share one pass over the history.
Check = Callable[..., CheckResult]

CHECKS: dict[str, Check] = {
    m.NAME: m.check
    for m in (conservation, ledger, no_overdraft, exactly_once, durability, no_phantoms, clear_errors, recovery,
              authorization, credentials, frozen_accounts, honest_refusals, server_logs,
              read_consistency, bank_snapshots, fault_efficacy)
}

__all__ = ["CHECKS", "Check", "CheckContext", "CheckResult"]
