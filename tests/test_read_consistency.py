"""read_consistency: balance reads linearizable against the ledger entries, history pages complete and in
order — both ways, and cross-checked with porcupine (a real linearizability checker, Go) on generated
histories."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.read_histories import generate, porcupine_ops
from walletchaos.checks import read_consistency
from walletchaos.checks.base import CheckContext
from walletchaos.history import new_op

PORCUPINE_DIR = Path(__file__).parent / "porcupine"
CTX = CheckContext()


def judge(run):
    return read_consistency.check(run.history, run.final, CTX)


def test_export_without_entries_is_not_judged_and_passes():
    run = generate(1)
    del run.final["export"]["entries"]
    result = judge(run)
    assert result.passed
    assert result.summary.startswith(read_consistency.NOT_JUDGED)
    assert result.stats["judged"] is False


def test_correct_reads_pass():
    for seed in range(20):
        result = judge(generate(seed))
        assert result.passed, (seed, result.counterexamples)
        assert result.stats["balance_reads"] == 25


def test_stale_read_fails_with_a_counterexample_a_person_can_follow():
    run = generate(3, accounts=1, entries=6, reads=0)
    es = run.final["export"]["entries"]
    # two consecutive entries of acc-0 followed by a quiet gap of > 0.2 s
    e1, e2 = next((a, b) for a, b, c in zip(es, es[1:], es[2:]) if c["created_at"] - b["created_at"] > 0.2)
    # read invoked 0.1 s after e2 committed, yet shows e1's balance
    t = e2["created_at"] + 0.1
    run.history.append(new_op("w1-u1-stale", "balance", t, complete_ts=t + 0.01, outcome="ok", status=200,
                              account_id="acc-0", balance=e1["balance_after"], request_id="req-stale"))
    result = judge(run)
    assert not result.passed
    ce = result.counterexamples[0]
    assert ce["rule"] == "stale_or_unknown_balance"
    assert ce["op_id"] == "w1-u1-stale" and ce["request_id"] == "req-stale" and ce["account_id"] == "acc-0"
    assert ce["balance_read"] == e1["balance_after"]
    assert ce["balances_possible_during_read"] == [e2["balance_after"]]
    assert ce["latest_entry"]["txn_id"] == e2["txn_id"]


def test_read_racing_an_unacknowledged_commit_is_not_accused():
    """Entry written (created_at) but its commit time unknown: the old balance may still be read."""
    run = generate(4, accounts=1, entries=1, reads=0)
    (e,) = run.final["export"]["entries"]
    run.final["export"]["transactions"][0]["committed_ts"] = None
    t = e["created_at"] + 2.0
    run.history.append(new_op("w1-u1-old", "balance", t, complete_ts=t + 0.01, outcome="ok", status=200,
                              account_id="acc-0", balance=0, request_id="req-old"))
    assert judge(run).passed
    # ... but once a client was told the transaction succeeded, the old balance is stale
    run.history.insert(0, new_op("w1-u1-dep", "deposit", e["created_at"], complete_ts=e["created_at"] + 0.1,
                                 outcome="ok", status=201, txn_id=e["txn_id"], account_id="acc-0"))
    result = judge(run)
    assert not result.passed and result.counterexamples[0]["op_id"] == "w1-u1-old"


def test_broken_entry_chain_fails():
    run = generate(5)
    run.final["export"]["entries"][3]["balance_after"] += 7
    result = judge(run)
    assert not result.passed
    assert "entry_chain_broken" in result.stats["violations_by_rule"]


# --- history pages ----------------------------------------------------------------------------------------
def page_run(items_fn=None, *, limit=20, at_offset=10.0):
    run = generate(7, accounts=1, entries=8, reads=0)
    txns = run.final["export"]["transactions"]
    newest_first = sorted(txns, key=lambda t: -t["created_ts"])
    items = [t["transaction_id"] for t in newest_first]
    if items_fn is not None:
        items = items_fn(items)
    t = txns[-1]["created_ts"] + at_offset
    op = new_op("w1-u1-page", "history", t, complete_ts=t + 0.02, outcome="ok", status=200, account_id="acc-0",
                request_id="req-page", args={"account_id": "acc-0", "limit": limit})
    op["items"] = items
    run.history.append(op)
    return run


def test_complete_page_in_order_passes():
    result = judge(page_run())
    assert result.passed, result.counterexamples
    assert result.stats["history_pages"] == 1


def test_full_page_holds_the_newest_n():
    assert judge(page_run(lambda items: items[:5], limit=5)).passed


def test_page_missing_a_committed_row_fails():
    run = page_run(lambda items: items[:3] + items[4:])
    result = judge(run)
    assert not result.passed
    ce = result.counterexamples[0]
    assert ce["rule"] == "history_missing_row" and ce["op_id"] == "w1-u1-page" and ce["request_id"] == "req-page"
    newest_first = sorted(run.final["export"]["transactions"], key=lambda t: -t["created_ts"])
    assert ce["txn_id"] == newest_first[3]["transaction_id"]


def test_full_page_skipping_a_newer_row_fails():
    result = judge(page_run(lambda items: items[:2] + items[3:6], limit=5))
    assert not result.passed
    assert result.counterexamples[0]["rule"] == "history_missing_row"


def test_row_committed_during_the_read_may_be_missing():
    run = page_run(lambda items: items[1:], at_offset=0.0)  # the newest committed as the read began
    op = run.history[-1]
    newest = max(run.final["export"]["transactions"], key=lambda t: t["created_ts"])
    op["invoke_ts"] = newest["committed_ts"] + 0.01
    assert judge(run).passed


def test_page_out_of_order_fails():
    result = judge(page_run(lambda items: [items[1], items[0], *items[2:]]))
    assert not result.passed
    assert result.counterexamples[0]["rule"] == "history_out_of_order"


def test_page_with_a_row_that_never_existed_fails():
    result = judge(page_run(lambda items: ["t-ghost", *items]))
    assert not result.passed
    ce = result.counterexamples[0]
    assert ce["rule"] == "history_row_never_existed" and ce["txn_id"] == "t-ghost"


def test_page_listing_a_row_twice_fails():
    assert judge(page_run()).passed
    result = judge(page_run(lambda items: [items[0], items[1], items[1], *items[2:]]))
    assert {c["rule"] for c in result.counterexamples} == {"history_duplicate_row"}
    ce = result.counterexamples[0]
    newest_first = sorted(page_run().final["export"]["transactions"], key=lambda t: -t["created_ts"])
    assert (ce["op_id"], ce["request_id"], ce["account_id"]) == ("w1-u1-page", "req-page", "acc-0")
    assert ce["txn_id"] == newest_first[1]["transaction_id"] and ce["position"] == 2


def test_page_serving_a_row_created_after_it_was_answered_fails():
    run = page_run()
    page = run.history[-1]
    later = copy.deepcopy(run.final["export"]["transactions"][-1])
    created = page["complete_ts"] + 5.0  # created 5 s after the page was served: it cannot have been on it
    later.update(transaction_id="t-later", idempotency_key="k-later", created_ts=created, committed_ts=created + 1e-6)
    run.final["export"]["transactions"].append(later)
    page["items"].insert(0, "t-later")
    result = judge(run)
    assert {c["rule"] for c in result.counterexamples} == {"history_row_from_the_future"}
    ce = result.counterexamples[0]
    assert ce["op_id"] == "w1-u1-page" and ce["txn_id"] == "t-later" and ce["position"] == 0
    assert ce["created_ts"] == created and ce["complete_ts"] == page["complete_ts"]
    # the same page, read after that row committed, is fine
    page["invoke_ts"] = created + 0.01
    page["complete_ts"] = created + 0.03
    assert judge(run).passed, run.history[-1]


def test_page_with_another_accounts_row_fails():
    run = page_run()
    other = copy.deepcopy(run.final["export"]["transactions"][0])
    other.update(transaction_id="t-other", to_account_id="acc-9", from_account_id=None)
    run.final["export"]["transactions"].append(other)
    run.history[-1]["items"].append("t-other")
    result = judge(run)
    assert not result.passed
    assert "history_row_of_other_account" in result.stats["violations_by_rule"]


def test_page_without_items_is_counted_not_judged():
    run = page_run()
    del run.history[-1]["items"]
    result = judge(run)
    assert result.passed and result.stats["history_pages_without_items"] == 1


# --- cross-check with porcupine ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def porcupine_bin(tmp_path_factory):
    if shutil.which("go") is None:
        pytest.skip("Go toolchain not installed")
    out = tmp_path_factory.mktemp("porcupine") / "porcupinecheck"
    env = {**os.environ, "GOFLAGS": "-mod=mod"}
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=PORCUPINE_DIR, env=env, check=True, timeout=300)
    return out


AGREEMENT_RUNS = 300


def test_agrees_with_porcupine_on_generated_histories(porcupine_bin):
    runs = [generate(seed, stale=0.0 if seed % 3 == 0 else 0.04 * (seed % 5))
            for seed in range(AGREEMENT_RUNS)]
    payload = json.dumps([porcupine_ops(r, read_consistency.SKEW_S) for r in runs])
    done = subprocess.run([str(porcupine_bin)], input=payload, capture_output=True, text=True, check=True,
                          timeout=300)
    verdicts = json.loads(done.stdout)
    ours = [judge(r).passed for r in runs]
    disagree = [i for i, (a, b) in enumerate(zip(ours, verdicts)) if a != b]
    assert not disagree, f"read_consistency and porcupine disagree on seeds {disagree[:10]}"
    # both kinds of history were generated and judged
    assert 50 <= sum(ours) <= AGREEMENT_RUNS - 50, sum(ours)
    print(f"porcupine agreement: {len(runs)} histories, {sum(ours)} linearizable, "
          f"{len(runs) - sum(ours)} not, 0 disagreements")


def test_client_records_the_page_items_in_order():
    from walletchaos.client import classify

    body = {"items": [{"transaction_id": "t2"}, {"transaction_id": "t1"}], "next_cursor": None}
    outcome, fields = classify("history", 200, "application/json", body, None)
    assert outcome == "ok" and fields["items"] == ["t2", "t1"]
    assert "items" not in classify("balance", 200, "application/json", {"balance": 5}, None)[1]
