"""`walletchaos detect`: prove the harness has teeth and does not cry wolf.

For every planted bug (mock_wallet.defects) it runs catalog scenarios against a wallet carrying that one
bug and records which invariants failed, with their first counterexample; then it runs the correct
wallet over several seeds and counts false alarms (any failed invariant there). The outcome is a
detection matrix (bug × scenario → caught by which invariant / missed), written as matrix.json,
matrix.md and a self-contained index.html, and an exit code: 0 iff every bug is caught by the
invariant that names it and there is no false alarm.

Modes:
  quick  each bug once against the scenario that should catch it, and the correct wallet once on each
         of those scenarios (what CI runs: a few minutes)
  full   each bug against every selected scenario (default: the whole catalog), and the correct wallet
         on every selected scenario for `seeds` seeds (default 20)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from mock_wallet.defects import BUGS, PlantedBug
from walletchaos.report.html import share_plotly
from walletchaos.runner import RunOptions, RunResult, new_run_dir, point_latest, run_scenario
from walletchaos.scenario import Scenario

QUICK_DURATION_S = 16.0  # quick mode caps every scenario at this (faults scale to fit; shorter ones stay)
FULL_SEEDS = 20
CORRECT = "correct"  # the `bug` of a run against the correct wallet


@dataclass(frozen=True)
class Job:
    """One run of the matrix: a scenario against the wallet with `bug` planted (None: correct wallet)."""

    bug: str | None
    scenario: Scenario
    seed: int


@dataclass
class Cell:
    """The outcome of one job."""

    bug: str | None
    scenario: str
    seed: int
    run_dir: str | None = None
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # invariant → {summary, rule, counterexample}
    error: str | None = None
    duration_s: float = 0.0

    @property
    def status(self) -> str:
        """caught / other (caught, but not by the bug's own invariant) / missed / error; for the correct
        wallet: pass / false-alarm / error."""
        if self.error is not None:
            return "error"
        if self.bug is None:
            return "false-alarm" if self.failed else "pass"
        if BUGS[self.bug].caught_by in self.failed:
            return "caught"
        return "other" if self.failed else "missed"

    def to_dict(self) -> dict[str, Any]:
        return {"bug": self.bug, "scenario": self.scenario, "seed": self.seed, "status": self.status,
                "run_dir": self.run_dir, "failed": self.failed, "error": self.error,
                "duration_s": round(self.duration_s, 1)}


def plan(mode: str, bugs: Sequence[str], catalog: dict[str, Scenario], scenarios: Sequence[str] | None,
         seeds: int | None) -> list[Job]:
    """The jobs of a detect run. quick: each bug on its own scenario (or on `scenarios` if given);
    full: each bug on every selected scenario. Then the correct wallet on every scenario used, `seeds`
    times (quick default 1, full default FULL_SEEDS; 0 skips the false-alarm runs)."""
    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be 'quick' or 'full', not {mode!r}")
    for name in [*bugs, *(scenarios or [])]:
        if name not in BUGS and name not in catalog:
            raise KeyError(name)
    jobs: list[Job] = []
    used: list[str] = []
    for bug in bugs:
        if scenarios is not None:
            targets = list(scenarios)
        elif mode == "quick":
            targets = [BUGS[bug].scenario]
        else:
            targets = sorted(catalog)
        for name in targets:
            jobs.append(Job(bug, catalog[name], 1))
            if name not in used:
                used.append(name)
    if not bugs:
        used = list(scenarios) if scenarios is not None else sorted(catalog)
    n_seeds = (1 if mode == "quick" else FULL_SEEDS) if seeds is None else seeds
    for seed in range(1, n_seeds + 1):
        jobs.extend(Job(None, catalog[name], seed) for name in used)
    return jobs


def cell_from_result(job: Job, result: RunResult, started: float) -> Cell:
    cell = Cell(job.bug, job.scenario.name, job.seed, run_dir=str(result.run_dir),
                duration_s=time.monotonic() - started)
    for r in result.verdict.get("results", []):
        if not r.get("passed"):
            examples = r.get("counterexamples") or [{}]
            cell.failed[r["name"]] = {"summary": r.get("summary", ""), "rule": examples[0].get("rule"),
                                      "counterexample": examples[0]}
    return cell


def _wallet_env(bug: str | None) -> dict[str, str]:
    return {"WALLET_BUGS": bug, "WALLET_ALLOW_BUGS": "1"} if bug else {}


def run_jobs(jobs: Sequence[Job], out_dir: Path, *, backend: str = "process", duration_s: float | None,
             parallel: int = 1, cancel: threading.Event | None = None,
             on_cell: Callable[[Cell, int, int], None] | None = None) -> list[Cell]:
    """Run every job (`parallel` at a time, each on its own stack) into out_dir/runs. A job whose run
    crashes becomes an `error` cell; Ctrl-C cancels the rest and tears the running stacks down."""
    cancel = cancel or threading.Event()
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    share_plotly(runs_dir)  # one plotly.js for all run pages of the matrix
    done = 0
    lock = threading.Lock()

    def one(job: Job) -> Cell:
        nonlocal done
        cap = None if duration_s is None else min(duration_s, job.scenario.duration_s)  # shorten, never stretch
        opts = RunOptions(backend=backend, seed=job.seed, report_dir=runs_dir, duration_s=cap,
                          wallet_env=_wallet_env(job.bug), show_progress=False, cancel=cancel,
                          keep_data="never")  # hundreds of runs; a caught bug's report has the counterexample
        started = time.monotonic()
        if cancel.is_set():
            cell = Cell(job.bug, job.scenario.name, job.seed, error="cancelled")
        else:
            try:
                cell = cell_from_result(job, run_scenario(job.scenario, opts, Console(stderr=True, quiet=True)),
                                        started)
            except Exception as exc:  # noqa: BLE001 - one broken run must not lose the matrix
                cell = Cell(job.bug, job.scenario.name, job.seed, error=f"{type(exc).__name__}: {exc}"[:500],
                            duration_s=time.monotonic() - started)
        with lock:
            done += 1
            if on_cell is not None:
                on_cell(cell, done, len(jobs))
        return cell

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs) or 1)), thread_name_prefix="detect") as pool:
        futures = [pool.submit(one, job) for job in jobs]
        try:
            return [f.result() for f in futures]
        except BaseException:
            cancel.set()
            for f in futures:
                f.cancel()
            raise


@dataclass
class Matrix:
    """The detection matrix and its verdict."""

    mode: str
    cells: list[Cell]
    bugs: list[str]
    scenarios: list[str]
    seeds: int
    duration_s: float | None
    wall_s: float = 0.0
    command: str = ""

    def bug_cells(self, bug: str) -> list[Cell]:
        return [c for c in self.cells if c.bug == bug]

    def correct_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.bug is None]

    def bug_row(self, bug: str) -> dict[str, Any]:
        info: PlantedBug = BUGS[bug]
        cells = self.bug_cells(bug)
        caught = [c for c in cells if c.status == "caught"]
        first = caught[0] if caught else next((c for c in cells if c.failed), None)
        evidence = None
        if first is not None:
            inv = info.caught_by if caught else next(iter(first.failed))
            evidence = {"scenario": first.scenario, "invariant": inv, "rule": first.failed[inv]["rule"],
                        "counterexample": first.failed[inv]["counterexample"], "run_dir": first.run_dir}
        invariants = sorted({name for c in cells for name in c.failed})
        return {"bug": bug, "summary": info.summary, "expected_invariant": info.caught_by,
                "own_scenario": info.scenario, "caught": bool(caught), "runs": len(cells),
                "caught_in": [c.scenario for c in caught],
                "missed_in": [c.scenario for c in cells if c.status == "missed"],
                "errors": [{"scenario": c.scenario, "error": c.error} for c in cells if c.status == "error"],
                "invariants_failed": invariants, "evidence": evidence}

    @property
    def false_alarms(self) -> list[Cell]:
        return [c for c in self.correct_cells() if c.status == "false-alarm"]

    @property
    def correct_errors(self) -> list[Cell]:
        return [c for c in self.correct_cells() if c.status == "error"]

    @property
    def passed(self) -> bool:
        return (all(self.bug_row(b)["caught"] for b in self.bugs)
                and not self.false_alarms and not self.correct_errors)

    def to_dict(self) -> dict[str, Any]:
        correct = self.correct_cells()
        return {
            "mode": self.mode, "passed": self.passed, "command": self.command,
            "wall_s": round(self.wall_s, 1), "duration_s": self.duration_s, "seeds": self.seeds,
            "bugs": [self.bug_row(b) for b in self.bugs], "scenarios": self.scenarios,
            "bugs_caught": sum(self.bug_row(b)["caught"] for b in self.bugs),
            "correct_runs": len(correct), "false_alarms": len(self.false_alarms),
            "false_alarm_runs": [c.to_dict() for c in self.false_alarms],
            "cells": [c.to_dict() for c in self.cells],
        }


def detect(mode: str, *, bugs: Sequence[str], catalog: dict[str, Scenario], scenarios: Sequence[str] | None,
           seeds: int | None, report_dir: Path, duration_s: float | None = None, parallel: int = 1,
           backend: str = "process", cancel: threading.Event | None = None, command: str = "",
           console: Console | None = None) -> tuple[Path, Matrix]:
    """Plan, run, and write the matrix (JSON, Markdown, HTML) into a new directory under report_dir."""
    from walletchaos.report.matrix import write_matrix

    console = console or Console(stderr=True)
    jobs = plan(mode, bugs, catalog, scenarios, seeds)
    if duration_s is None and mode == "quick":
        duration_s = QUICK_DURATION_S
    out_dir = new_run_dir(report_dir, f"detect-{mode}")
    used = sorted({j.scenario.name for j in jobs})
    n_seeds = max((j.seed for j in jobs if j.bug is None), default=0)
    console.print(f"detect ({mode}): {len(jobs)} runs — {len(bugs)} planted bug(s), correct wallet × "
                  f"{n_seeds} seed(s), {len(used)} scenario(s), {parallel} at a time → {os.path.relpath(out_dir)}")

    def show(cell: Cell, done: int, total: int) -> None:
        style = {"caught": "green", "pass": "green", "other": "yellow"}.get(cell.status, "red")
        what = cell.bug or CORRECT
        extra = ", ".join(f"{k}:{v['rule']}" for k, v in cell.failed.items()) or (cell.error or "")
        console.print(f"[{done}/{total}] [{style}]{cell.status:<11}[/] {what:<28} {cell.scenario:<24} "
                      f"seed {cell.seed:<3} {extra}"[:220], soft_wrap=True, markup=True, highlight=False)

    started = time.monotonic()
    cells = run_jobs(jobs, out_dir, backend=backend, duration_s=duration_s, parallel=parallel, cancel=cancel,
                     on_cell=show)
    matrix = Matrix(mode, cells, list(bugs), used, n_seeds, duration_s, wall_s=time.monotonic() - started,
                    command=command)
    (out_dir / "matrix.json").write_bytes(orjson.dumps(matrix.to_dict(), option=orjson.OPT_INDENT_2))
    write_matrix(matrix.to_dict(), out_dir)
    point_latest(report_dir, out_dir)
    return out_dir, matrix
