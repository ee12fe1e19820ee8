"""History record format, JSONL I/O, merge, phase annotation and fault windows."""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest

from walletchaos.history import (
    HistoryWriter,
    annotate_phases,
    fault_windows,
    merge_histories,
    new_op,
    read_events,
    read_history,
)


def ev(ts: float, kind: str, name: str, target: str | None = None) -> dict:
    return {"ts": ts, "kind": kind, "name": name, "target": target, "details": {}}


def test_new_op_has_every_field_and_derives_latency() -> None:
    op = new_op("p1-u1-1", "deposit", 10.0, complete_ts=10.25, outcome="ok", status=201, args={"amount": 5})
    assert op["latency_ms"] == 250.0
    assert set(op) == {"op_id", "worker", "user", "kind", "args", "idempotency_key", "account_id", "invoke_ts",
                       "complete_ts", "latency_ms", "outcome", "status", "code", "request_id", "txn_id",
                       "txn_status", "balance", "error", "content_type", "problem", "body_excerpt", "phase",
                       "retry_after", "owner_user", "target_owner"}
    assert new_op("x", "balance", 1.0)["latency_ms"] is None


@pytest.mark.parametrize("bad", [{"kind": "refund"}, {"outcome": "maybe"}])
def test_new_op_rejects_unknown_kind_or_outcome(bad: dict) -> None:
    kwargs = {"kind": "balance", "outcome": "ok", **bad}
    with pytest.raises(ValueError):
        new_op("x", kwargs.pop("kind"), 1.0, **kwargs)


def test_writer_roundtrip_and_flushes_each_line(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "history.jsonl"
    with HistoryWriter(path) as w:
        w.write(new_op("a", "balance", 1.0, balance=7))
        assert path.read_bytes().count(b"\n") == 1  # flushed before close
        w.write(new_op("b", "login", 2.0))
    ops = read_history(path)
    assert [o["op_id"] for o in ops] == ["a", "b"] and ops[0]["balance"] == 7


def test_torn_last_line_is_dropped_but_torn_middle_line_raises(tmp_path: Path) -> None:
    good = orjson.dumps(new_op("a", "balance", 1.0)).decode()
    torn_end = tmp_path / "end.jsonl"
    torn_end.write_text(good + "\n" + good[:20])
    assert len(read_history(torn_end)) == 1
    torn_mid = tmp_path / "mid.jsonl"
    torn_mid.write_text(good[:20] + "\n" + good + "\n")
    with pytest.raises(ValueError, match="mid.jsonl:1"):
        read_history(torn_mid)


def test_merge_sorts_across_workers_by_invoke_ts(tmp_path: Path) -> None:
    for worker, stamps in (("w1", [1.0, 3.0, 5.0]), ("w2", [2.0, 4.0])):
        with HistoryWriter(tmp_path / f"{worker}.jsonl") as w:
            for ts in stamps:
                w.write(new_op(f"{worker}-{ts}", "balance", ts, worker=worker))
    merged = merge_histories(sorted(tmp_path.glob("*.jsonl")))
    assert [o["invoke_ts"] for o in merged] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_annotate_phases_uses_phase_in_force_at_invoke(tmp_path: Path) -> None:
    events = [ev(10.0, "phase", "warmup"), ev(20.0, "phase", "fault"), ev(20.0, "fault_start", "x"),
              ev(30.0, "phase", "heal")]
    ops = [new_op(str(t), "balance", t) for t in (9.99, 10.0, 19.9, 20.0, 35.0)]
    annotate_phases(ops, events)
    assert [o["phase"] for o in ops] == ["warmup", "warmup", "warmup", "fault", "heal"]


def test_read_events_sorted(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in (ev(2.0, "note", "b"), ev(1.0, "note", "a"))))
    assert [e["name"] for e in read_events(path)] == ["a", "b"]


def test_fault_windows_pair_by_name_and_target_and_close_unended() -> None:
    events = [ev(1.0, "fault_start", "latency", "wallet_db"), ev(2.0, "fault_start", "kill", "wallet"),
              ev(3.0, "fault_end", "latency", "wallet_db"), ev(4.0, "fault_start", "latency", "wallet_db"),
              ev(9.0, "phase", "final")]
    assert fault_windows(events) == [(1.0, 3.0, "latency", "wallet_db"), (2.0, 9.0, "kill", "wallet"),
                                     (4.0, 9.0, "latency", "wallet_db")]
    assert fault_windows([]) == []
    assert fault_windows([ev(1.0, "fault_start", "x")])[0][1] == 1.0
    assert not math.isinf(fault_windows([ev(1.0, "fault_start", "x")])[0][1])
