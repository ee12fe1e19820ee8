"""fault_efficacy: each fault window shows evidence it bit (both ways), fault_write_rate, pids recorded."""

from __future__ import annotations

import itertools

from walletchaos.checks import fault_efficacy
from walletchaos.checks.base import CheckContext
from walletchaos.faults.base import FaultContext
from walletchaos.faults.kinds import KillFault
from walletchaos.history import new_op
from walletchaos.report.summary import render_summary
from walletchaos.synth import generate_history
from walletchaos.verdict import run_checks

T0 = 1_000.0
FAULT = (T0 + 3.0, T0 + 6.0)
_ids = itertools.count()


def ops(t0, t1, *, per_s=10, latency_ms=20.0, kinds=("deposit", "transfer", "balance"), code=None, every=1,
        status=None, account="acc-1", error=None, outcome=None):
    """Ops invoked evenly in [t0, t1); every `every`-th one answered `code` (others ok)."""
    out = []
    n = int((t1 - t0) * per_s)
    for i in range(n):
        ts = t0 + i / per_s
        kind = kinds[i % len(kinds)]
        bad = (code is not None or error is not None) and i % every == 0
        fields = {"outcome": outcome or ("fail" if bad else "ok"), "status": (status if bad else 200)}
        if bad and code:
            fields["code"] = code
        if bad and error:
            fields.update(status=None, error=error)
        args = {"amount": 100, "from_account_id": account, "to_account_id": "acc-2"} if kind == "transfer" \
            else {"amount": 100, "account_id": account}
        out.append(new_op(f"w1-u1-{next(_ids)}", kind, ts, complete_ts=ts + latency_ms / 1000.0,
                          account_id=account, args=args, request_id=f"r{i}", **fields))
    return out


def events(kind="toxic", target="wallet_db", name="db-fault", start_details=None, end_details=None):
    return [{"ts": FAULT[0], "kind": "fault_start", "name": name, "target": target,
             "details": {"fault": kind, **(start_details or {})}},
            {"ts": FAULT[1], "kind": "fault_end", "name": name, "target": target,
             "details": {"fault": kind, **(end_details or {})}}]


def judge(history, evs):
    return fault_efficacy.check(history, {}, CheckContext.for_scenario(evs, scenario="t"))


def calm(t0=T0, t1=FAULT[0]):
    return ops(t0, t1)


LATENCY_150 = {"type": "latency", "attributes": {"latency": 150, "jitter": 100}, "toxicity": 1.0}


def test_db_latency_that_bites_passes():
    result = judge(calm() + ops(*FAULT, latency_ms=300.0) + calm(FAULT[1], FAULT[1] + 3),
                   events(start_details=LATENCY_150))
    assert result.passed, result.counterexamples
    (w,) = result.stats["windows"]
    assert w["verdict"] == "bit" and "p50 latency" in w["evidence"][0]


def test_a_busy_box_slowdown_is_not_a_latency_toxic_that_bit():
    """Measured with db-bypasses-proxy on a CPU-starved box: p50 14 → 97 ms with nothing injected. A
    150 ms DB latency toxic must add at least 150 ms; a reset_peer toxic must show errors, not slowness."""
    history = calm() + ops(*FAULT, latency_ms=100.0) + calm(FAULT[1], FAULT[1] + 3)
    assert not judge(history, events(start_details=LATENCY_150)).passed
    reset = {"type": "reset_peer", "attributes": {"timeout": 0}, "toxicity": 0.3}
    slowed = judge(calm() + ops(*FAULT, latency_ms=400.0), events(start_details=reset))
    assert slowed.passed and slowed.stats["windows"][0]["verdict"] == "not judged"  # sparse: no error seen
    one_reset = ops(*FAULT, error="ConnectionResetError", every=100, outcome="unknown")
    assert judge(calm() + one_reset, events(start_details=reset)).stats["windows"][0]["verdict"] == "bit"
    slicer = {"type": "slicer", "attributes": {"average_size": 32, "delay": 20000}}
    assert judge(calm() + ops(*FAULT, latency_ms=400.0), events(target="wallet_api", start_details=slicer)).passed


def test_db_fault_with_no_effect_fails_with_the_window():
    """What a wallet bypassing the wallet_db proxy looks like: the DB fault changes nothing."""
    result = judge(calm() + ops(*FAULT) + calm(FAULT[1], FAULT[1] + 3), events(start_details=LATENCY_150))
    assert not result.passed
    ce = result.counterexamples[0]
    assert ce["rule"] == "no_effect" and ce["fault"] == "db-fault" and ce["target"] == "wallet_db"
    assert ce["start"] == FAULT[0] and ce["during"]["ops"] == 31 and ce["calm"]["before"]["ops"] == 30
    assert result.summary.startswith("no effect: db-fault")
    assert result.stats["no_effect"] == 1


def test_db_unavailable_codes_are_evidence():
    result = judge(calm() + ops(*FAULT, code="DATABASE_UNAVAILABLE", status=503, every=5), events("proxy_down"))
    assert result.passed and "DATABASE_UNAVAILABLE" in result.stats["windows"][0]["evidence"][0]


def test_wallet_api_transport_errors_are_evidence():
    result = judge(calm() + ops(*FAULT, error="ReadTimeout", every=2, outcome="unknown"),
                   events(target="wallet_api"))
    assert result.passed and "errors" in result.stats["windows"][0]["evidence"][0]


def test_client_mistakes_are_not_evidence():
    result = judge(calm() + ops(*FAULT, code="INSUFFICIENT_FUNDS", status=409, every=2), events(target="wallet_api"))
    assert not result.passed


def test_kill_judged_by_pid():
    history = calm() + ops(*FAULT)
    changed = events("kill", "wallet", "kill-wallet", {"pid_before": 11}, {"pid_before": 11, "pid_after": 12})
    result = judge(history, changed)
    assert result.passed and result.stats["windows"][0]["evidence"] == ["pid changed 11 → 12"]
    same = events("kill", "wallet", "kill-wallet", {"pid_before": 11}, {"pid_before": 11, "pid_after": 11})
    result = judge(calm() + ops(*FAULT, error="ConnectError", every=1), same)  # errors, yet nothing restarted
    assert not result.passed and "unchanged" in result.counterexamples[0]["why"]
    unknown = events("kill", "wallet", "kill-wallet")
    assert judge(calm() + ops(*FAULT, error="ConnectError", every=1), unknown).passed


def test_gateway_fault_judged_on_deposits_and_withdrawals():
    bit = judge(calm() + ops(*FAULT, kinds=("deposit",), code="GATEWAY_ERROR", status=502, every=3),
                events("gateway", "gateway", "gw"))
    assert bit.passed
    # transfers never reach the gateway: their errors are not the gateway fault's evidence
    only_transfers = judge(calm() + ops(*FAULT, kinds=("transfer", "balance")), events("gateway", "gateway", "gw"))
    assert only_transfers.passed and only_transfers.stats["windows"][0]["verdict"] == "not judged"
    nothing = judge(calm() + ops(*FAULT, kinds=("deposit",)), events("gateway", "gateway", "gw"))
    assert not nothing.passed


def test_maintenance_codes():
    ev = events("maintenance", "wallet", "maint")
    assert judge(calm() + ops(*FAULT, code="MAINTENANCE", status=503, every=1), ev).passed
    assert not judge(calm() + ops(*FAULT), ev).passed


def test_freeze():
    ev = events("freeze", "wallet", "freeze", {"accounts": ["acc-9"]})
    refused = ops(*FAULT, kinds=("transfer",), account="acc-9", code="ACCOUNT_FROZEN", status=403)
    assert judge(calm() + refused, ev).passed
    moved = ops(*FAULT, kinds=("transfer",), account="acc-9")
    result = judge(calm() + moved, ev)
    assert not result.passed and result.counterexamples[0]["moved_op_ids"]
    # the account was frozen only from +1 s to +2 s: ops outside its own freeze are not judged
    edges = events("freeze", "wallet", "freeze", {"accounts": ["acc-9"], "frozen_at": {"acc-9": FAULT[0] + 1}},
                   {"unfreezing_at": {"acc-9": FAULT[0] + 2}})
    late = ops(*FAULT, kinds=("transfer",), account="acc-9")
    for o in late:
        if FAULT[0] + 1 <= o["invoke_ts"] and o["complete_ts"] <= FAULT[0] + 2:
            o.update(outcome="fail", status=403, code="ACCOUNT_FROZEN")
    assert judge(calm() + late, edges).passed
    untouched = judge(calm() + ops(*FAULT), ev)
    assert untouched.passed and untouched.stats["windows"][0]["verdict"] == "not judged"


def test_thin_warmup_falls_back_to_the_calm_after_the_faults():
    history = ops(T0 + 2.8, FAULT[0]) + ops(*FAULT, latency_ms=300.0) + calm(FAULT[1] + 2.5, FAULT[1] + 5)
    result = judge(history, events(start_details=LATENCY_150))
    assert result.passed and result.stats["windows"][0]["calm"]["after"]["ops"] == 25


def test_too_few_ops_is_not_judged():
    result = judge(calm() + ops(*FAULT, per_s=1), events())
    assert result.passed and result.stats["not_judged"] == 1
    assert judge(calm(), []).stats["judged"] is False


def test_fault_write_rate_in_verdict_and_summary():
    history = calm() + ops(*FAULT, per_s=30, kinds=("deposit", "withdrawal", "transfer", "balance"),
                           code="DATABASE_UNAVAILABLE", status=503, every=4)
    evs = events()
    assert fault_efficacy.fault_write_rate(history, CheckContext.for_scenario(evs).fault_windows) == 22.7
    verdict = run_checks(history, {"export": {"accounts": [], "transactions": [], "audit": {}}},
                         CheckContext.for_scenario(evs), names=["fault_efficacy"])
    data = verdict.to_dict()
    assert data["stats"]["fault_write_rate"] == 22.7
    assert "Fault-time write rate:** 22.7 money writes/s" in render_summary(data, {})


def test_synthetic_run_db_fault_bites():
    run = generate_history(3000, seed=2)
    assert fault_efficacy.check(run.history, run.final, run.ctx()).passed


class _Proc:
    def __init__(self, pid):
        self.pid = pid


class _Topo:
    """Just enough topology for KillFault: a wallet whose pid changes on restart."""

    def __init__(self):
        self.wallet = _Proc(100)
        self.running = True

    def toxiproxy(self):
        return None

    def kill(self, service):
        self.running, self.wallet = False, _Proc(None)

    def is_running(self, service):
        return self.running

    def restart(self, service):
        self.running, self.wallet = True, _Proc(200)


def test_kill_fault_records_pids_in_its_events():
    recorded = []
    ctx = FaultContext(topology=_Topo(), emit=recorded.append)
    with KillFault("kill-wallet", "wallet").applied(ctx):
        pass
    start, end = recorded
    assert start["details"]["pid_before"] == 100
    assert end["details"] == {"fault": "kill", "pid_before": 100, "pid_after": 200}


def test_scenario_think_time_knob():
    import pytest
    from pydantic import ValidationError

    from walletchaos.scenario import Load, Scenario, load_catalog

    assert Load(think=[0.05, 0.25]).think == [0.05, 0.25]
    for bad in ([0.3, 0.1], [0.1], [-1, 0.2]):
        with pytest.raises(ValidationError):
            Load(think=bad)
    sc = next(s for s in load_catalog("scenarios") if s.name == "wallet-kill")
    assert Scenario.model_validate(sc.to_dict()).load.think == sc.load.think == [0.05, 0.25]
    assert "think" in sc.to_yaml()


def test_pause_judged_by_a_stall():
    ev = events("pause", "postgres", "freeze-db")
    assert judge(calm() + ops(*FAULT, latency_ms=2500.0), ev).passed
    assert not judge(calm() + ops(*FAULT, latency_ms=300.0), ev).passed
