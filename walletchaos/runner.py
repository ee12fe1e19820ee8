"""One scenario run, end to end: topology → faults + load → history → reconcile → checks → report.

Everything the run starts is stopped in `finally` (also on Ctrl-C): the nemesis undoes its faults,
Locust is stopped, the topology is torn down. Checks and the report run after teardown, from files.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console

from walletchaos.checks.base import CheckContext
from walletchaos.events import EventLog
from walletchaos.faults import FaultContext, Nemesis, clear_stale
from walletchaos.history import annotate_phases, merge_histories, read_events, read_history
from walletchaos.load import run_locust
from walletchaos.progress import LiveProgress
from walletchaos.reconcile import collect_final_state
from walletchaos.report.html import write_report, write_suite_report
from walletchaos.report.junit import write_junit
from walletchaos.report.summary import run_summary_stats, suite_summary, write_summary
from walletchaos.scenario import Scenario
from walletchaos.snapshots import AuditPoller
from walletchaos.topology.base import make_topology
from walletchaos.verdict import Verdict, run_checks

# Phases of a run (events.jsonl "phase" events), in order:
#   warmup  load ramps up, no fault yet
#   fault   from the first fault's start until no fault is active and none is left to start
#   heal    the scenario's recovery_within after the last fault ended: errors may still show
#   recover the rest of the load: the wallet must be back to normal
#   final   load stopped: reconcile and final reads
PHASES = ("warmup", "fault", "heal", "recover", "final")


@dataclass
class RunOptions:
    backend: str = "process"
    seed: int | None = None  # None: the scenario's own seed
    report_dir: Path = Path("reports")
    users: int | None = None
    duration_s: float | None = None
    processes: int | None = None
    wallet_env: dict[str, str] = field(default_factory=dict)
    show_progress: bool = True
    reconcile_timeout_s: float = 30.0
    parallel: int = 1  # scenarios run side by side in a suite (each on its own stack and ports)
    cancel: threading.Event = field(default_factory=threading.Event)  # set on Ctrl-C: runs tear down
    keep_data: str = "failed"  # the stack's data (PostgreSQL data dir, ~50 MB/run): failed | always | never


KEEP_DATA = ("failed", "always", "never")


@dataclass
class RunResult:
    scenario: str
    run_dir: Path
    verdict: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.verdict.get("passed"))


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def new_run_dir(report_dir: Path, name: str) -> Path:
    base = Path(report_dir) / f"{_stamp()}-{name}"
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:  # mkdir is the claim: runs of one scenario started side by side get -2, -3...
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def point_latest(report_dir: Path, target: Path) -> None:
    """reports/latest -> the last run (or suite) directory."""
    latest = Path(report_dir) / "latest"
    if latest.is_symlink() or latest.exists():
        if latest.is_dir() and not latest.is_symlink():
            shutil.rmtree(latest)
        else:
            latest.unlink()
    latest.symlink_to(target.resolve().relative_to(Path(report_dir).resolve()))


def effective(scenario: Scenario, opts: RunOptions) -> Scenario:
    """The scenario with the CLI's overrides applied (users, duration → faults scaled to fit)."""
    return scenario.with_overrides(users=opts.users, duration_s=opts.duration_s, processes=opts.processes,
                                  seed=opts.seed)


def run_scenario(scenario: Scenario, opts: RunOptions, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True)
    scenario = effective(scenario, opts)
    run_dir = new_run_dir(opts.report_dir, scenario.name)
    (run_dir / "scenario.yaml").write_text(yaml.safe_dump(scenario.to_dict(), sort_keys=False))
    (run_dir / "logs").mkdir()
    events = EventLog(run_dir / "events.jsonl")
    history_dir = run_dir / "history"
    schedule = scenario.schedule()
    topo = make_topology(opts.backend, run_dir / "stack", wallet_env=opts.wallet_env)
    meta: dict[str, Any] = {"scenario": scenario.name, "backend": opts.backend, "seed": scenario.seed,
                            "started_at": time.time()}
    final: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        topo.start()
        meta["startup_s"] = round(time.monotonic() - t0, 3)
        clear_stale(topo.toxiproxy())
        events.emit(kind="note", name="topology_up", details={"backend": opts.backend, "startup_s": meta["startup_s"]})
        with AuditPoller(topo.wallet_direct_url, topo.admin_token, history_dir):  # bank snapshots, until load ends
            _drive(scenario, schedule, topo, events, history_dir, run_dir, opts, console)
        events.phase("final")
        history = merge_histories(sorted(history_dir.glob("history-*.jsonl")))
        final = collect_final_state(topo.wallet_direct_url, topo.gateway_url, topo.admin_token, history,
                                    timeout=opts.reconcile_timeout_s)
    finally:
        events.close()
        topo.stop()
        _copy_service_logs(run_dir)  # after stop: the docker backend collects container logs then
    meta["finished_at"] = time.time()
    result = _judge(scenario, run_dir, final, meta)
    prune_stack(run_dir, opts.keep_data, passed=result.passed)
    return result


def prune_stack(run_dir: Path, keep_data: str, *, passed: bool) -> bool:
    """Delete the run's stack directory (PostgreSQL data dir, gateway DB) once the run is judged.

    The checks and the report read only the run's own files (history, events, final state) and the
    service logs were copied to `logs/` at teardown, so nothing the report shows is lost. A failed
    run keeps its data by default, for a look at the database behind a counterexample; a sweep of
    hundreds of runs would otherwise leave ~50 MB each.
    """
    if keep_data not in KEEP_DATA:
        raise ValueError(f"keep_data must be one of {', '.join(KEEP_DATA)}, not {keep_data!r}")
    if keep_data == "always" or (keep_data == "failed" and not passed):
        return False
    shutil.rmtree(run_dir / "stack", ignore_errors=True)
    return True


def _drive(scenario: Scenario, schedule, topo, events: EventLog, history_dir: Path, run_dir: Path,
           opts: RunOptions, console: Console) -> None:
    """Run the load and the fault timeline together; undo everything in finally."""
    load = nemesis = None
    progress = LiveProgress(console, scenario, history_dir, enabled=opts.show_progress)
    try:
        load = run_locust(
            topo.wallet_url, users=scenario.load.users, spawn_rate=scenario.load.spawn_rate,
            duration_s=scenario.duration_s, processes=scenario.load.processes, mix=scenario.load.mix,
            seed=scenario.seed, history_dir=history_dir, log_path=run_dir / "logs" / "locust.log",
            stages=scenario.to_dict()["load"]["stages"] or None,
            extra_env={"WALLETCHAOS_THINK_S": ",".join(map(str, scenario.load.think))} if scenario.load.think else None,
        )
        start = time.time()
        events.phase("warmup")
        ctx = FaultContext(topology=topo, emit=events.emit, seed=scenario.seed)
        nemesis = Nemesis(schedule, ctx, start=start)
        nemesis.start()
        phase, heal_until = "warmup", None
        with progress:
            while load.is_running():
                if opts.cancel.is_set():
                    raise KeyboardInterrupt
                phase, heal_until = _next_phase(phase, heal_until, nemesis, scenario, events)
                progress.update(phase=phase, active=nemesis.active(), elapsed=time.time() - start)
                time.sleep(0.5)  # display refresh tick; the load process itself bounds the run
        nemesis.join(timeout=30)
    finally:
        if nemesis is not None:
            nemesis.stop_all()
        if load is not None:
            load.stop()


def _next_phase(phase: str, heal_until: float | None, nemesis, scenario: Scenario, events: EventLog):
    """Advance the phase; phase events carry the time of the fault event that caused them."""
    now = time.time()
    if phase == "warmup" and nemesis.active():
        events.emit(kind="phase", name="fault", ts=_first_ts(events, "fault_start", now))
        return "fault", None
    if phase == "fault" and nemesis.finished():
        healed = _last_ts(events, "fault_end", now)
        events.emit(kind="phase", name="heal", ts=healed)
        return "heal", healed + scenario.expect.recovery_within_s
    if phase == "heal" and heal_until is not None and now >= heal_until:
        events.emit(kind="phase", name="recover", ts=heal_until)
        return "recover", None
    if phase == "warmup" and not scenario.timeline and _warmup_over(events, scenario):
        # baseline: no fault ever; after the warmup ramp the whole run must be clean
        events.phase("recover")
        return "recover", None
    return phase, heal_until


def _first_ts(events: EventLog, kind: str, default: float) -> float:
    return min((e["ts"] for e in events.events if e["kind"] == kind), default=default)


def _last_ts(events: EventLog, kind: str, default: float) -> float:
    return max((e["ts"] for e in events.events if e["kind"] == kind), default=default)


def _warmup_over(events: EventLog, scenario: Scenario) -> bool:
    first = next(e["ts"] for e in events.events if e["kind"] == "phase")
    return time.time() - first >= min(5.0, scenario.duration_s / 4)


def _copy_service_logs(run_dir: Path) -> None:
    stack_logs = run_dir / "stack" / "logs"
    if stack_logs.is_dir():
        for f in stack_logs.iterdir():
            shutil.copy2(f, run_dir / "logs" / f.name)
    pg_log = run_dir / "stack" / "postgres" / "postgres.log"
    if pg_log.exists():
        shutil.copy2(pg_log, run_dir / "logs" / "postgres.log")


# Faults after which a client may see no HTTP answer at all (the wallet itself or its front door is
# down). Any other fault (database, gateway) must surface as a problem response within the deadline.
TRANSPORT_FAULT_TARGETS = frozenset({"wallet_api", "wallet"})


def context_for(scenario: Scenario, events: list[dict]) -> CheckContext:
    whole_run = scenario.expect.errors_allowed_during == "run"
    return CheckContext.for_scenario(
        events, scenario.expect.errors_allowed, scenario=scenario.name,
        allowed_phases=PHASES if whole_run else ("fault", "heal"),
        recovery_within_s=scenario.expect.recovery_within_s,
        transport_fault_targets=TRANSPORT_FAULT_TARGETS,
    )


def _judge(scenario: Scenario, run_dir: Path, final: dict[str, Any], meta: dict[str, Any]) -> RunResult:
    """Checks and report from the files of the run (also used by `walletchaos check`)."""
    history_dir = run_dir / "history"
    history = merge_histories(sorted(history_dir.glob("history-*.jsonl")))
    events = read_events(run_dir / "events.jsonl")
    annotate_phases(history, events)
    with open(run_dir / "history.jsonl", "wb") as f:
        for op in history:
            f.write(orjson.dumps(op) + b"\n")
    final["meta"] = meta
    (run_dir / "final.json").write_bytes(orjson.dumps(final, option=orjson.OPT_INDENT_2))
    return judge_run_dir(run_dir, scenario)


def judge_run_dir(run_dir: Path, scenario: Scenario) -> RunResult:
    history = read_history(run_dir / "history.jsonl")
    events = read_events(run_dir / "events.jsonl")
    final = orjson.loads((run_dir / "final.json").read_bytes())
    verdict: Verdict = run_checks(history, final, context_for(scenario, events), names=scenario.expect.invariant_names())
    data = verdict.to_dict()
    data.setdefault("meta", final.get("meta", {}))
    (run_dir / "verdict.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    write_junit([data], run_dir / "junit.xml")
    write_summary(data, run_summary_stats(run_dir), run_dir / "summary.md")
    write_report(run_dir)
    return RunResult(scenario.name, run_dir, data)


def run_suite(scenarios: list[Scenario], opts: RunOptions, console: Console | None = None) -> tuple[Path, list[RunResult]]:
    """Run several scenarios into one suite directory, `opts.parallel` at a time.

    Each run has its own stack on its own free ports, so runs side by side do not share state; the
    load per scenario is light (think time), which is what lets two fit on two cores.
    """
    console = console or Console(stderr=True)
    suite_dir = new_run_dir(opts.report_dir, "suite")
    parallel = max(1, min(opts.parallel, len(scenarios)))
    suite_opts = RunOptions(**{**opts.__dict__, "report_dir": suite_dir,
                               "show_progress": opts.show_progress and parallel == 1})

    def one(sc: Scenario) -> RunResult:
        if parallel == 1:
            console.rule(f"[bold]{sc.name}")
        result = run_scenario(sc, suite_opts, console)
        console.print(_one_line(result), soft_wrap=True)
        return result

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="scenario") as pool:
        futures = [pool.submit(one, sc) for sc in scenarios]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            opts.cancel.set()  # Ctrl-C or a failed run: the others stop and tear down too
            for f in futures:
                f.cancel()
            raise
    write_junit([r.verdict for r in results], suite_dir / "junit.xml")
    (suite_dir / "summary.md").write_text(suite_summary([r.verdict for r in results]))
    write_suite_report(suite_dir, [r.run_dir for r in results])
    point_latest(opts.report_dir, suite_dir)
    return suite_dir, results


def _one_line(result: RunResult) -> str:
    failed = [r["name"] for r in result.verdict.get("results", []) if not r.get("passed")]
    mark = "[green]PASS[/]" if result.passed else f"[red]FAIL[/] ({', '.join(failed)})"
    return f"{mark} {result.scenario}  → {os.path.relpath(result.run_dir / 'index.html')}"
