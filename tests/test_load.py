"""walletchaos.load + loadtests/locustfile.py: real Locust against the real wallet stack, histories checked."""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from walletchaos.history import KINDS, OUTCOMES, WRITE_KINDS
from walletchaos.load import LoadProcess, locust_command, locustfile_path, run_locust

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ("op_id", "worker", "user", "kind", "args", "idempotency_key", "account_id", "invoke_ts",
            "complete_ts", "latency_ms", "outcome", "status", "code", "request_id", "txn_id", "txn_status",
            "balance", "error", "content_type", "problem", "body_excerpt", "phase")


def load_ops(load: LoadProcess) -> list[dict]:
    ops: list[dict] = []
    for path in load.history_paths():
        for line in path.read_bytes().splitlines():
            ops.append(orjson.loads(line))  # every line must be complete, valid JSON
    return ops


def check_records(ops: list[dict]) -> None:
    for op in ops:
        missing = [k for k in REQUIRED if k not in op]
        assert not missing, (missing, op)
        assert op["kind"] in KINDS and op["outcome"] in OUTCOMES
        assert op["invoke_ts"] <= op["complete_ts"], op
        assert op["op_id"].startswith(f"{op['worker']}-{op['user']}-")
        if op["kind"] in WRITE_KINDS:
            assert op["idempotency_key"] and isinstance(op["args"]["amount"], int)
        if op["status"] is None:
            assert op["error"], op
        elif op["status"] >= 400:
            assert op["problem"] or op["body_excerpt"] is not None, op
    ids = [op["op_id"] for op in ops]
    assert len(ids) == len(set(ids)), "op_ids collide"


# -- unit ---------------------------------------------------------------------------------------------------
def test_locustfile_is_found_next_to_the_package_and_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WALLETCHAOS_LOCUSTFILE", raising=False)
    assert locustfile_path() == REPO / "loadtests" / "locustfile.py" and locustfile_path().is_file()
    monkeypatch.setenv("WALLETCHAOS_LOCUSTFILE", "/elsewhere/lf.py")
    assert locustfile_path() == Path("/elsewhere/lf.py")


def test_locust_command_is_headless_with_stop_timeout() -> None:
    one = locust_command("http://h:1", users=5, spawn_rate=2.5, duration_s=7.4, processes=1,
                         csv_prefix=None, stop_timeout_s=12.0)
    assert one[:3] == [sys.executable, "-m", "locust"] and "--headless" in one and "--processes" not in one
    assert one[one.index("-t") + 1] == "7s" and one[one.index("--stop-timeout") + 1] == "12s"
    assert one[one.index("--host") + 1] == "http://h:1" and one[one.index("-u") + 1] == "5"
    two = locust_command("http://h:1", users=5, spawn_rate=5, duration_s=3, processes=2,
                         csv_prefix=Path("x/stats"), stop_timeout_s=1)
    assert two[two.index("--processes") + 1] == "2" and Path(two[two.index("--csv") + 1]).is_absolute()


def test_user_rng_is_a_function_of_seed_worker_and_user() -> None:
    sys.path.insert(0, str(REPO / "loadtests"))
    try:
        import wc_support  # no locust import: safe inside pytest (no gevent monkey-patching)
    finally:
        sys.path.remove(str(REPO / "loadtests"))
    draw = lambda *k: [wc_support.user_rng(*k).random() for _ in range(5)]  # noqa: E731
    assert draw(1, 0, 3) == draw(1, 0, 3)
    assert draw(1, 0, 3) != draw(2, 0, 3) and draw(1, 0, 3) != draw(1, 1, 3) and draw(1, 0, 3) != draw(1, 0, 4)


# -- real Locust, real wallet ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from walletchaos.topology.process import ProcessTopology

    topo = ProcessTopology(tmp_path_factory.mktemp("wc-load") / "stack")
    try:
        topo.start()
        yield topo
    finally:
        topo.stop()


def start(stack: object, tmp: Path, **kw: object) -> LoadProcess:
    params: dict = {"users": 5, "spawn_rate": 5, "duration_s": 8, "seed": 7, "history_dir": tmp / "history",
                    "log_path": tmp / "locust.log"}
    params.update(kw)
    return run_locust(stack.wallet_url, **params)  # type: ignore[attr-defined]


def finish(load: LoadProcess, timeout: float) -> int:
    try:
        rc = load.wait(timeout)
    finally:
        load.stop()
    assert rc == 0, load.log_path.read_text()[-3000:]  # 3 = exception in user code
    return rc


@pytest.mark.slow
def test_default_mix_records_a_valid_history(stack: object, tmp_path: Path) -> None:
    load = start(stack, tmp_path)
    finish(load, 60)
    paths = load.history_paths()
    assert len(paths) == 1 and paths[0].name.startswith("history-w0p")
    ops = load_ops(load)
    check_records(ops)
    by = defaultdict(int)
    for op in ops:
        by[(op["kind"], op["outcome"])] += 1
    assert by[("register", "ok")] == 5 and by[("login", "ok")] >= 5
    assert sum(by[(k, "ok")] for k in WRITE_KINDS) >= 5, by
    assert {op["user"] for op in ops} == {f"u{i}" for i in range(5)}
    ok_writes = [op for op in ops if op["kind"] in WRITE_KINDS and op["outcome"] == "ok"]
    assert all(op["txn_id"] and op["txn_status"] == "succeeded" for op in ok_writes)
    assert all(op["request_id"] for op in ops if op["status"] is not None)
    assert "Aggregated" in load.log_path.read_text()  # Locust's own stats were recorded too


@pytest.mark.slow
def test_two_processes_write_separate_histories_without_op_id_collisions(stack: object, tmp_path: Path) -> None:
    load = start(stack, tmp_path, users=4, spawn_rate=4, duration_s=6, processes=2)
    finish(load, 60)
    paths = load.history_paths()
    assert len(paths) == 2, paths
    ops = load_ops(load)
    check_records(ops)
    workers = {op["worker"] for op in ops}
    assert len(workers) == 2 and {w.split("p")[0] for w in workers} == {"w0", "w1"}
    assert all(p.stat().st_size > 0 for p in paths)


@pytest.mark.slow
def test_stop_terminates_the_whole_group_and_leaves_complete_lines(stack: object, tmp_path: Path) -> None:
    load = start(stack, tmp_path, users=3, spawn_rate=3, duration_s=120, processes=2, mix="peak")
    try:
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in load.history_paths()) < 20_000:  # poll for progress
            assert load.is_running() and time.monotonic() < deadline, load.log_path.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        t0 = time.monotonic()
        load.stop()
    assert time.monotonic() - t0 < load.stop_timeout_s + 10
    with pytest.raises(ProcessLookupError):
        os.killpg(load.pid, 0)  # master and forked workers are all gone
    load.stop()  # idempotent
    ops = load_ops(load)
    check_records(ops)
    assert len(ops) > 20


@pytest.mark.slow
def test_stages_shape_ramps_users_and_ends_on_its_own(stack: object, tmp_path: Path) -> None:
    load = start(stack, tmp_path, users=2, spawn_rate=10, duration_s=6, mix="peak",
                 stages=[{"at": 2, "users": 6, "spawn_rate": 10}])
    t0 = time.monotonic()
    finish(load, 40)
    assert time.monotonic() - t0 < 30
    ops = load_ops(load)
    check_records(ops)
    first_seen: dict[str, float] = {}
    for op in ops:
        first_seen[op["user"]] = min(first_seen.get(op["user"], op["invoke_ts"]), op["invoke_ts"])
    start_ts = min(first_seen.values())
    late = [u for u, ts in first_seen.items() if ts - start_ts >= 1.5]
    assert len(first_seen) == 6 and len(late) == 4, first_seen


@pytest.mark.slow
def test_same_seed_same_choices(stack: object, tmp_path: Path) -> None:
    """readonly mix on a quiet stack: each user's sequence of op kinds is a function of the seed."""
    runs = []
    for i in range(2):
        load = start(stack, tmp_path / str(i), users=2, spawn_rate=10, duration_s=4, mix="readonly", seed=11,
                     extra_env={"WALLETCHAOS_THINK_S": "0.05,0.1"})
        finish(load, 40)
        seqs: dict[str, list[str]] = defaultdict(list)
        for op in sorted(load_ops(load), key=lambda o: o["invoke_ts"]):
            seqs[op["user"]].append(op["kind"])
        runs.append(seqs)
    for user in ("u0", "u1"):
        a, b = runs[0][user], runs[1][user]
        n = min(len(a), len(b))
        assert n >= 10 and a[:n] == b[:n], (user, a, b)
        assert a[:3] == ["register", "login", "deposit"]


@pytest.mark.slow
def test_peak_mix_pays_from_two_devices_at_once(stack: object, tmp_path: Path) -> None:
    """The peak mix's double_pay: two payments of one account in flight together (the only load that
    races two debits of one account, which a check-then-act wallet needs to overdraw)."""
    load = start(stack, tmp_path, users=4, spawn_rate=4, duration_s=8, mix="peak", seed=3)
    finish(load, 60)
    ops = load_ops(load)
    check_records(ops)
    pays = sorted((op for op in ops if op.get("tag") == "double_pay"), key=lambda o: o["invoke_ts"])
    assert len(pays) >= 4, len(pays)
    overlapping = [(a, b) for a, b in zip(pays, pays[1:])
                   if a["user"] == b["user"] and b["invoke_ts"] < a["complete_ts"]]
    assert overlapping, "double_pay never had two payments in flight at once"
    for a, b in overlapping:
        assert a["args"]["from_account_id"] == b["args"]["from_account_id"]
        assert a["idempotency_key"] != b["idempotency_key"]
