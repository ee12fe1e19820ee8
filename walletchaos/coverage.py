"""Which parts of the catalog a target lets the harness run, and why the rest is skipped.

A wallet the harness starts (a target with `command` or `image`) runs everything: the harness owns its
process, its PostgreSQL and its payment gateway. A wallet that is already running (url mode) only lets
the harness act on what it put in front of it (the `wallet_api` proxy) and on the admin API (freeze,
maintenance); a scenario that needs the wallet's process, database or gateway is SKIPPED with the
reason, never passed. The invariants that compare the wallet's books with the harness's own gateway
records cannot be judged in url mode either (the wallet pays through its own gateway).
"""

from __future__ import annotations

from typing import Any

from walletchaos.scenario import Scenario
from walletchaos.target import Target
from walletchaos.run_status import SKIPPED, skipped_verdict as _skipped_verdict

# fault kind → what the harness must control to apply it (url mode controls only the client path + admin)
ADMIN_FAULTS = frozenset({"maintenance", "freeze"})
PROXY_FAULTS = frozenset({"toxic", "proxy_down"})
URL_MODE_PROXIES = frozenset({"wallet_api"})
# invariants that need the harness's own gateway records (GET /control/records of the mock gateway)
GATEWAY_RECORD_INVARIANTS = {
    "conservation": "url mode: the wallet pays through its own gateway, so its external in/out cannot be "
                    "compared with the harness's gateway records",
    "exactly_once": "url mode: gateway references cannot be matched with the harness's gateway records",
}


def skip_reason(scenario: Scenario, target: Target) -> str | None:
    """Why `target` cannot run `scenario` (None: it can)."""
    if target.mode != "url":
        return None
    for step in scenario.timeline:
        kind, where = step.fault, getattr(step, "target", None)
        if kind in ADMIN_FAULTS:
            continue
        if kind in PROXY_FAULTS and where in URL_MODE_PROXIES:
            continue
        if kind in PROXY_FAULTS:
            need = "database" if where == "wallet_db" else "gateway"
            return f"url mode: needs control of the wallet's {need} path ({kind} on {where})"
        if kind == "gateway":
            return "url mode: needs the harness's mock gateway (gateway behaviour)"
        return f"url mode: needs control of the {where} process ({kind})"
    return None


def invariants_for(scenario: Scenario, target_mode: str | None) -> tuple[list[str], dict[str, str]]:
    """(invariants to judge, {invariant: why it is not judged}) for a run of `scenario`."""
    names = list(scenario.expect.invariant_names())
    if target_mode != "url":
        return names, {}
    skipped = {n: why for n, why in GATEWAY_RECORD_INVARIANTS.items() if n in names}
    return [n for n in names if n not in skipped], skipped


def skipped_verdict(scenario: Scenario, target: Target, reason: str) -> dict[str, Any]:
    """The verdict.json of a scenario the target cannot run: status skipped, never passed (the exit code
    counts skipped as no failure)."""
    return {**_skipped_verdict(scenario.name, reason, {"scenario": scenario.name, "target": target.name,
                                                       "target_mode": target.mode}), "stats": {}}


def catalog_line(verdicts: list[dict[str, Any]]) -> str:
    """One line: which parts of the catalog ran ('ran 9 of 25 scenarios; skipped 16: ...')."""
    skipped = [v for v in verdicts if v.get("status") == SKIPPED]
    ran = len(verdicts) - len(skipped)
    line = f"ran {ran} of {len(verdicts)} scenarios"
    if skipped:
        line += f"; skipped {len(skipped)}: " + ", ".join(f"{v['scenario']} ({v['reason']})" for v in skipped)
    return line


def write_skipped(run_dir, scenario: Scenario, target: Target, reason: str) -> dict[str, Any]:
    """Write verdict.json, summary.md and junit.xml of a skipped scenario into `run_dir`; return the verdict."""
    import json

    from walletchaos.report.junit import write_junit

    verdict = skipped_verdict(scenario, target, reason)
    (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2))
    (run_dir / "summary.md").write_text(f"## SKIPPED · {scenario.name}\n\n{reason}\n")
    write_junit([verdict], run_dir / "junit.xml")
    return verdict


def ids_before_run(topology: Any, target: Target) -> dict[str, list[str]] | None:
    """url mode: the account and transaction ids the running wallet already holds (None otherwise).

    A running wallet keeps what earlier runs (and conformance) did; the checks must judge this run's
    accounts and transactions only, so the final export is scoped to what is new (`scope_to_run`).
    """
    if target.mode != "url":
        return None
    import httpx

    r = httpx.get(f"{topology.wallet_direct_url}/admin/export", timeout=30.0,
                  headers={"Authorization": f"Bearer {topology.admin_token}"})
    r.raise_for_status()
    export = r.json()
    return {"accounts": [a["account_id"] for a in export.get("accounts", [])],
            "transactions": [t["transaction_id"] for t in export.get("transactions", [])]}


def scope_to_run(final: dict[str, Any], before: dict[str, list[str]] | None) -> None:
    """Drop from final["export"] the accounts, transactions and entries that existed before the run."""
    if before is None or not isinstance(final.get("export"), dict):
        return
    export = final["export"]
    old_accounts, old_txns = set(before["accounts"]), set(before["transactions"])
    export["accounts"] = [a for a in export.get("accounts", []) if a["account_id"] not in old_accounts]
    export["transactions"] = [t for t in export.get("transactions", []) if t["transaction_id"] not in old_txns]
    if "entries" in export:
        export["entries"] = [e for e in export["entries"] if e.get("account_id") not in old_accounts]
    final["scoped_to_run"] = {"accounts_before": len(old_accounts), "transactions_before": len(old_txns)}
