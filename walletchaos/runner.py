"""One scenario run, end to end: topology → faults + load → history → reconcile → checks → report.

Everything the run starts is stopped in `finally` (also on Ctrl-C): the nemesis undoes its faults,
Locust is stopped, the topology is torn down. Checks and the report run after teardown, from files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
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

from walletchaos.adapters import adapter_env
from walletchaos.checks.base import CheckContext
from walletchaos.coverage import (SKIPPED, catalog_line, ids_before_run, invariants_for, scope_to_run, skip_reason,
                                  write_skipped)
from walletchaos.checks.base import DEFAULT_LOCKOUT_S, CheckContext
from walletchaos.checks.credentials import LOCKOUT_ENV
from walletchaos.events import EventLog
from walletchaos.faults import FaultContext, Nemesis, clear_stale
from walletchaos.history import annotate_phases, merge_histories, read_events, read_history
from walletchaos.interrupts import Interrupted, check
from walletchaos.load import run_locust
from walletchaos.progress import LiveProgress
from walletchaos.reconcile import collect_final_state
from walletchaos.report.html import share_plotly, write_report, write_suite_report
from walletchaos.report.junit import write_junit
from walletchaos.report.summary import render_error_summary, run_summary_stats, suite_summary, write_summary
from walletchaos.run_status import error_line, error_verdict, status_of
from walletchaos.scenario import Scenario
from walletchaos.target import Target, load_target
from walletchaos.server_logs import read_server_logs
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
    cancel: threading.Event = field(default_factory=threading.Event)  # set by SIGINT/SIGTERM: runs tear down
    keep_data: str = "failed"  # the stack's data (PostgreSQL data dir, ~50 MB/run): failed | always | never
    target: Target | None = None  # the wallet under test (walletchaos/target.py); None: targets/mock-wallet.yaml


KEEP_DATA = ("failed", "always", "never")


@dataclass
class RunResult:
    scenario: str
    run_dir: Path
    verdict: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.status in ("passed", SKIPPED)  # skipped: not a failure

    @property
    def status(self) -> str:
        return status_of(self.verdict)


class RunError(Exception):
    """A scenario could not run (its stack did not start, or the run crashed). Its run directory holds
    an ERROR verdict already (`result`); the message is the cause's first line."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(error_line(result.verdict))
        self.result = result


# How long Locust gets to stop its users when the run is cancelled (normally: the client timeout + 2 s)
CANCEL_LOAD_GRACE_S = 2.0


def harness_version() -> str:
    try:
        return importlib.metadata.version("walletchaos")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
    """Run one scenario into its own run directory and judge it.

    Raises `RunError` (its ERROR result written) if the stack did not start or the run crashed, and
    `Interrupted` if `opts.cancel` was set; in every case what the run started is torn down first.
    """
    console = console or Console(stderr=True)
    check(opts.cancel)
    scenario = effective(scenario, opts)
    run_dir = new_run_dir(opts.report_dir, scenario.name)
    target = opts.target or load_target()
    meta: dict[str, Any] = {"scenario": scenario.name, "backend": opts.backend, "seed": scenario.seed,
                            "target": target.name, "target_mode": target.mode, "started_at": time.time()}
    try:
        return _run_in(scenario, run_dir, opts, console, meta, target)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if opts.cancel.is_set():  # e.g. a child process hit by the same Ctrl-C: an interrupt, not an error
            raise Interrupted("cancelled") from exc
        result = write_error_result(scenario.name, run_dir, exc, meta)
        prune_stack(run_dir, opts.keep_data, passed=False)
        raise RunError(result) from exc


def _run_in(scenario: Scenario, run_dir: Path, opts: RunOptions, console: Console, meta: dict[str, Any],
            target: Target) -> RunResult:
    resolved = yaml.safe_dump(scenario.to_dict(), sort_keys=False).encode()
    (run_dir / "scenario.yaml").write_bytes(resolved)
    if (reason := skip_reason(scenario, target)) is not None:
        return RunResult(scenario.name, run_dir, write_skipped(run_dir, scenario, target, reason))
    # identify what ran (JUnit <properties>): the resolved scenario's hash, the harness version
    meta.update(scenario_sha256=hashlib.sha256(resolved).hexdigest(), walletchaos_version=harness_version())
    (run_dir / "logs").mkdir()
    events = EventLog(run_dir / "events.jsonl")
    history_dir = run_dir / "history"
    schedule = scenario.schedule()
    topo = make_topology(opts.backend, run_dir / "stack", wallet_env={**scenario.wallet_env, **opts.wallet_env}, target=target)
    topo.cancel = opts.cancel  # stack start watches it (a signal during start stops what was started)
    final: dict[str, Any] = {}
    try:
        t0 = time.monotonic()
        topo.start()
        check(opts.cancel)
        meta["startup_s"] = round(time.monotonic() - t0, 3)
        clear_stale(topo.toxiproxy())
        before = ids_before_run(topo, target)  # url mode: what the running wallet held before this run
        events.emit(kind="note", name="topology_up", details={"backend": opts.backend, "startup_s": meta["startup_s"]})
        with AuditPoller(topo.wallet_direct_url, topo.admin_token, history_dir):  # bank snapshots, until load ends
            _drive(scenario, schedule, topo, events, history_dir, run_dir, opts, console, adapter_env(target))
        check(opts.cancel)
        events.phase("final")
        history = merge_histories(sorted(history_dir.glob("history-*.jsonl")))
        final = collect_final_state(topo.wallet_direct_url, topo.gateway_url, topo.admin_token, history,
                                    timeout=opts.reconcile_timeout_s, cancel=opts.cancel)
        scope_to_run(final, before)
        check(opts.cancel)
    finally:
        events.close()
        topo.stop()
        _copy_service_logs(run_dir)  # after stop: the docker backend collects container logs then
    meta["finished_at"] = time.time()
    check(opts.cancel)
    result = _judge(scenario, run_dir, final, meta, opts.cancel)
    prune_stack(run_dir, opts.keep_data, passed=result.passed)
    return result


def write_error_result(scenario: str, run_dir: Path, error: BaseException | str, meta: dict[str, Any]) -> RunResult:
    """An ERROR run: verdict.json (status error, the error), junit.xml with <error>, summary.md."""
    meta.setdefault("finished_at", time.time())
    verdict = error_verdict(scenario, error, meta)
    (run_dir / "verdict.json").write_bytes(orjson.dumps(verdict, option=orjson.OPT_INDENT_2))
    write_junit([verdict], run_dir / "junit.xml")
    (run_dir / "summary.md").write_text(render_error_summary(verdict), encoding="utf-8")
    return RunResult(scenario, run_dir, verdict)


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
           opts: RunOptions, console: Console, load_env: dict[str, str] | None = None) -> None:
    """Run the load and the fault timeline together; undo everything in finally."""
    load = nemesis = None
    progress = LiveProgress(console, scenario, history_dir, enabled=opts.show_progress)
    try:
        load = run_locust(
            topo.wallet_url, users=scenario.load.users, spawn_rate=scenario.load.spawn_rate,
            duration_s=scenario.duration_s, processes=scenario.load.processes, mix=scenario.load.mix,
            seed=scenario.seed, history_dir=history_dir, log_path=run_dir / "logs" / "locust.log",
            stages=scenario.to_dict()["load"]["stages"] or None,
            extra_env={**(load_env or {}), **think_env(scenario)},
        )
        start = time.time()
        events.phase("warmup")
        ctx = FaultContext(topology=topo, emit=events.emit, seed=scenario.seed)
        nemesis = Nemesis(schedule, ctx, start=start)
        nemesis.start()
        phase, heal_until = "warmup", None
        with progress:
            while load.is_running():
                check(opts.cancel)
                phase, heal_until = _next_phase(phase, heal_until, nemesis, scenario, events)
                progress.update(phase=phase, active=nemesis.active(), elapsed=time.time() - start)
                time.sleep(0.5)  # display refresh tick; the load process itself bounds the run
        nemesis.join(timeout=30)
    finally:
        if nemesis is not None:
            nemesis.stop_all()
        if load is not None:
            load.stop(grace_s=CANCEL_LOAD_GRACE_S if opts.cancel.is_set() else None)


def think_env(scenario: Scenario) -> dict[str, str]:
    """The scenario's think time for the load generator (`load.think: [lo, hi]` seconds), if it sets one."""
    think = scenario.load.think
    return {"WALLETCHAOS_THINK_S": ",".join(map(str, think))} if think else {}


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
        lockout_s=float(scenario.wallet_env.get(LOCKOUT_ENV, DEFAULT_LOCKOUT_S)),
        logs_allowed=tuple(scenario.expect.logs_allowed),
    )


def _judge(scenario: Scenario, run_dir: Path, final: dict[str, Any], meta: dict[str, Any],
           cancel: threading.Event | None = None) -> RunResult:
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
    return judge_run_dir(run_dir, scenario, cancel)


def judge_run_dir(run_dir: Path, scenario: Scenario, cancel: threading.Event | None = None) -> RunResult:
    """Checks, verdict.json, junit.xml, summary.md, index.html from the run's files; `cancel` (a signal
    to the harness) stops between the steps, leaving what was written."""
    check(cancel)
    history = read_history(run_dir / "history.jsonl")
    events = read_events(run_dir / "events.jsonl")
    final = orjson.loads((run_dir / "final.json").read_bytes())
    final.setdefault("server_logs", read_server_logs(run_dir / "logs"))  # ERROR lines, for server_logs
    names, not_judged = invariants_for(scenario, (final.get("meta") or {}).get("target_mode"))
    verdict: Verdict = run_checks(history, final, context_for(scenario, events), names=names)
    data = verdict.to_dict()
    if not_judged:
        data["skipped_invariants"] = not_judged
    data.setdefault("meta", final.get("meta", {}))
    data.setdefault("status", status_of(data))
    (run_dir / "verdict.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    write_junit([data], run_dir / "junit.xml")
    check(cancel)
    write_summary(data, run_summary_stats(run_dir), run_dir / "summary.md")
    check(cancel)
    write_report(run_dir)
    return RunResult(scenario.name, run_dir, data)


def run_suite(scenarios: list[Scenario], opts: RunOptions, console: Console | None = None) -> tuple[Path, list[RunResult]]:
    """Run several scenarios into one suite directory, `opts.parallel` at a time.

    Each run has its own stack on its own free ports, so runs side by side do not share state; the
    load per scenario is light (think time), which is what lets two fit on two cores.
    """
    console = console or Console(stderr=True)
    suite_dir = new_run_dir(opts.report_dir, "suite")
    share_plotly(suite_dir)  # one plotly.js for the suite; each run page references it
    parallel = max(1, min(opts.parallel, len(scenarios)))
    suite_opts = RunOptions(**{**opts.__dict__, "report_dir": suite_dir,
                               "show_progress": opts.show_progress and parallel == 1})

    def one(sc: Scenario) -> RunResult:
        if parallel == 1:
            console.rule(f"[bold]{sc.name}")
        try:
            result = run_scenario(sc, suite_opts, console)
        except RunError as exc:  # reported as ERROR; the other scenarios still run
            result = exc.result
        console.print(_one_line(result), soft_wrap=True)
        return result

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="scenario") as pool:
        futures = [pool.submit(one, sc) for sc in scenarios]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            opts.cancel.set()  # an interrupt or a harness bug: the others stop and tear down too
            for f in futures:
                f.cancel()
            raise
    verdicts = [r.verdict for r in results]
    write_junit(verdicts, suite_dir / "junit.xml")
    skipped = any(status_of(v) == SKIPPED for v in verdicts)  # url mode: say which part of the catalog ran
    coverage = f"\n**Catalog coverage:** {catalog_line(verdicts)}\n" if skipped else ""
    (suite_dir / "summary.md").write_text(suite_summary(verdicts) + coverage)
    write_suite_report(suite_dir, [r.run_dir for r in results])
    point_latest(opts.report_dir, suite_dir)
    return suite_dir, results


def _one_line(result: RunResult) -> str:
    failed = [r["name"] for r in result.verdict.get("results", []) if not r.get("passed")]
    mark = {"passed": "[green]PASS[/]", "failed": f"[red]FAIL[/] ({', '.join(failed)})",
            "error": f"[red]ERROR[/] ({error_line(result.verdict)})",
            "skipped": f"[yellow]SKIP[/] ({error_line(result.verdict)})"}[result.status]
    index = result.run_dir / "index.html"
    return f"{mark} {result.scenario}  → {os.path.relpath(index if index.exists() else result.run_dir)}"
