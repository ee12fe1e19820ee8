"""The Python API / pytest plugin: faults from code, load, checks — against the real stack."""

from __future__ import annotations

import httpx
import pytest

from walletchaos.chaos import verdict_summary

pytestmark = pytest.mark.slow


def test_db_latency_under_load_keeps_invariants(chaos):
    with chaos.toxic("wallet_db", "latency", latency=60, jitter=30):
        history = chaos.load(users=4, duration_s=8)
    history += chaos.load(users=4, duration_s=5)  # traffic after the heal: the recovery invariant needs it
    assert sum(op["kind"] in ("deposit", "transfer", "withdrawal") for op in history) >= 5
    verdict = chaos.check(history, errors_allowed=["DATABASE_UNAVAILABLE", "GATEWAY_TIMEOUT", "REQUEST_IN_PROGRESS"])
    assert verdict.passed, verdict_summary(verdict)
    kinds = [e["kind"] for e in chaos.events.events]
    assert kinds.count("fault_start") == 1 and kinds.count("fault_end") == 1


def test_proxy_down_refuses_then_heals(chaos, wallet_topology):
    url = wallet_topology.wallet_url + "/healthz"
    with chaos.proxy_down("wallet_api"):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
    assert httpx.get(url, timeout=2).status_code == 200


def test_a_checker_fails_when_an_acknowledged_write_is_lost(chaos):
    """The same check() call flags a doctored history: an ok deposit the wallet never saw."""
    history = chaos.load(users=2, duration_s=3)
    forged = dict(next(op for op in history if op["kind"] == "deposit" and op["outcome"] == "ok"))
    forged.update(op_id="forged-1", idempotency_key="never-sent-key", txn_id="00000000-0000-0000-0000-000000000000")
    verdict = chaos.check(history + [forged])
    failed = {r.name: r for r in verdict.results if not r.passed}
    assert "durability" in failed, verdict_summary(verdict)
    assert "forged-1" in str(failed["durability"].counterexamples)
