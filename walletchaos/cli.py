"""`walletchaos` command line.

Exit codes (walletchaos.run_status): 0 every run passed · 1 an invariant failed · 2 a user mistake
(unknown scenario, bad YAML, missing binary; one readable line) or a scenario that could not run ·
130 / 143 SIGINT / SIGTERM to the harness, after tearing everything down (walletchaos.interrupts).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from walletchaos.interrupts import EXIT_CODES

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Chaos and resilience test harness for a simulated digital wallet.")
console = Console(stderr=True)
out = Console()

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIOS = Path(os.environ.get("WALLETCHAOS_SCENARIOS", REPO / "scenarios"))


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from mock_wallet.embedded_pg import PostgresError
    from mock_wallet.launch import ServiceError
    from walletchaos.adapters import AdapterError
    from walletchaos.scenario import ScenarioError
    from walletchaos.target import TargetError
    from walletchaos.topology.base import TopologyError
    from walletchaos.toxiproxy_client import ToxiproxyError

    return (UserError, ScenarioError, TargetError, AdapterError, TopologyError, ToxiproxyError, ServiceError, PostgresError,
            FileNotFoundError, PermissionError)


def _interruptible(work, cancel: threading.Event):
    """Run `work()` so that SIGINT/SIGTERM to the harness cancel it (every stack torn down) and the
    command exits 130/143 (walletchaos.interrupts); otherwise return its result."""
    from walletchaos.interrupts import SignalCancel, run_interruptibly

    def on_signal(signum: int) -> None:
        console.print(f"[yellow]{signal.Signals(signum).name}: stopping the run and tearing everything down[/]")

    with SignalCancel(cancel, on_signal) as guard:
        try:
            result = run_interruptibly(work, guard)
        except KeyboardInterrupt:
            if guard.exit_code is None:
                raise
    if guard.exit_code is not None:
        console.print("[yellow]interrupted: everything started was torn down[/]")
        raise typer.Exit(guard.exit_code)
    return result


def _select(name: str, scenarios_dir: Path):
    from walletchaos.scenario import load_catalog

    catalog = load_catalog(scenarios_dir)
    if name == "all":
        return catalog
    by_name = {s.name: s for s in catalog}
    picked = []
    for n in name.split(","):
        if n not in by_name:
            raise UserError(f"unknown scenario {n!r}; `walletchaos list` shows the {len(by_name)} scenarios")
        picked.append(by_name[n])
    return picked


@app.command("list")
def list_scenarios(scenarios_dir: Path = typer.Option(DEFAULT_SCENARIOS, "--scenarios-dir"),
                   markdown: bool = typer.Option(False, "--markdown", help="a Markdown table (for docs)")) -> None:
    """List the scenario catalog."""
    from walletchaos.scenario import load_catalog

    if markdown:
        print("| scenario | family | reproduces | what it does | judged by | errors allowed |\n|---|---|---|---|---|---|")
        for s in load_catalog(scenarios_dir):
            codes = ", ".join(f"`{c}`" for c in s.expect.errors_allowed) or "–"
            judges = ", ".join(s.judged_by) or "–"
            print(f"| `{s.name}` | {s.family} | {s.anomaly} | {s.description} | {judges} | {codes} |")
        return
    table = Table("scenario", "family", "duration", "faults")
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=60)
    for s in load_catalog(scenarios_dir):
        faults = ", ".join(sorted({step.fault for step in s.timeline})) or "-"
        table.add_row(s.name, s.family, f"{s.duration_s:.0f}s", faults, s.description)
    out.print(table)


@app.command()
def run(
    name: str = typer.Argument(..., help="scenario name, comma list, or 'all'"),
    users: Optional[int] = typer.Option(None, help="override the scenario's number of Locust users"),
    duration: Optional[float] = typer.Option(None, help="override load duration in seconds (faults scale to fit)"),
    seed: Optional[int] = typer.Option(None, help="same seed, same fault schedule and user behaviour "
                                       "(default: the scenario's own seed, else 0)"),
    backend: str = typer.Option("process", help="process (local, default) or docker"),
    processes: Optional[int] = typer.Option(None, help="Locust worker processes"),
    report_dir: Path = typer.Option(Path("reports"), help="where run directories go"),
    scenarios_dir: Path = typer.Option(DEFAULT_SCENARIOS, "--scenarios-dir"),
    bugs: Optional[str] = typer.Option(None, help="plant bugs in the wallet (WALLET_BUGS), test runs only"),
    parallel: int = typer.Option(1, min=1, max=8, help="scenarios run side by side (each on its own stack)"),
    keep_data: str = typer.Option("failed", "--keep-data", help="keep a run's stack data (PostgreSQL data dir, "
                                  "~50 MB) after judging: failed (default) | always | never"),
    target: Optional[Path] = typer.Option(None, "--target", help="target file: the wallet under test "
                                          "(default targets/mock-wallet.yaml)"),
) -> None:
    """Run one scenario, a comma list, or the whole catalog; exit 0 only if every invariant held."""
    from walletchaos.run_status import exit_code
    from walletchaos.runner import KEEP_DATA, RunError, RunOptions, point_latest, run_scenario, run_suite

    if backend not in ("process", "docker"):
        raise UserError(f"--backend must be 'process' or 'docker', not {backend!r}")
    if keep_data not in KEEP_DATA:
        raise UserError(f"--keep-data must be failed, always or never, not {keep_data!r}")
    scenarios = _select(name, scenarios_dir)
    wallet_env = {"WALLET_BUGS": bugs, "WALLET_ALLOW_BUGS": "1"} if bugs else {}
    tgt = _load_target(target)
    parallel = 1 if tgt.mode == "url" else parallel  # one running wallet: runs side by side would mix
    opts = RunOptions(backend=backend, seed=seed, report_dir=report_dir, users=users, duration_s=duration,
                      processes=processes, wallet_env=wallet_env, parallel=parallel, keep_data=keep_data,
                      target=tgt)

    def work() -> tuple[Path, list]:
        _probe_target(tgt, target, backend, wallet_env, opts.cancel)
        if len(scenarios) == 1:
            try:
                result = run_scenario(scenarios[0], opts, console)
            except RunError as exc:
                result = exc.result
                console.print(f"[red]error:[/] {exc}", soft_wrap=True)
            point_latest(report_dir, result.run_dir)
            return result.run_dir, [result]
        suite_dir, results = run_suite(scenarios, opts, console)
        return suite_dir, results

    out_dir, results = _interruptible(work, opts.cancel)
    print((out_dir / "summary.md").read_text())
    index = out_dir / "index.html"
    print(f"report: {os.path.relpath(index if index.exists() else out_dir)}")
    raise typer.Exit(exit_code(r.verdict for r in results))


def _load_target(path: Optional[Path]):
    from walletchaos.target import load_target

    return load_target(path)


def _probe_target(tgt, path: Optional[Path], backend: str, wallet_env: dict[str, str],
                  cancel: threading.Event) -> None:
    """Probe the target before any chaos; refuse (exit 2) if it cannot even be exercised.

    A stack that does not start at all is not refused here: each scenario then reports it as an ERROR
    run (its own run dir, a JUnit <error>), which is what CI needs to see.
    """
    from walletchaos.conformance import run_conformance

    try:
        report = run_conformance(tgt, backend=backend, wallet_env=wallet_env, deadline=False, cancel=cancel)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the runs report the same start failure as ERROR
        if cancel.is_set():
            raise KeyboardInterrupt from exc
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        console.print(f"[yellow]conformance:[/] not probed, the stack did not start ({first})", soft_wrap=True,
                      highlight=False)
        return
    for probe in report.failures():
        console.print(f"[yellow]conformance:[/] {probe.line()}", soft_wrap=True, highlight=False)
    if not report.exercisable:
        bad = report.failures()[0]
        raise UserError(f"target {tgt.name!r} cannot be exercised ({bad.name}: {bad.detail}); "
                        f"`walletchaos conformance --target {path or 'targets/mock-wallet.yaml'}` shows why")


@app.command()
def conformance(
    target: Optional[Path] = typer.Option(None, "--target", help="target file (default targets/mock-wallet.yaml)"),
    backend: str = typer.Option("process", help="process (default) or docker"),
    bugs: Optional[str] = typer.Option(None, help="plant bugs in the wallet (WALLET_BUGS), test runs only"),
) -> None:
    """Probe a target's API against the contract before any chaos; exit 0 only if every probe passed."""
    from walletchaos.conformance import run_conformance
    from walletchaos.target import load_target

    wallet_env = {"WALLET_BUGS": bugs, "WALLET_ALLOW_BUGS": "1"} if bugs else {}
    report = run_conformance(load_target(target), backend=backend, wallet_env=wallet_env)
    for probe in report.failures():
        print(probe.line())
    print(report.summary())
    raise typer.Exit(0 if report.passed else 1)


@app.command()
def detect(
    mode: str = typer.Option("quick", help="quick: each bug on its own scenario (CI); full: every bug on "
                             "every scenario, correct wallet over --seeds seeds"),
    bugs: str = typer.Option("all", help="planted bugs to try: 'all', 'none' or a comma list"),
    scenarios: Optional[str] = typer.Option(None, help="scenario comma list or 'all' (default: quick → each "
                                            "bug's own scenario, full → all)"),
    seeds: Optional[int] = typer.Option(None, min=0, help="correct-wallet runs per scenario "
                                        "(default: quick 1, full 20; 0 = no false-alarm runs)"),
    duration: Optional[float] = typer.Option(None, help="cap every scenario's duration in seconds "
                                             "(default: quick 16, full the scenario's own)"),
    parallel: int = typer.Option(1, min=1, max=8, help="runs side by side (each on its own stack)"),
    backend: str = typer.Option("process", help="process (default) or docker"),
    report_dir: Path = typer.Option(Path("reports/detect"), help="where the matrix directory goes"),
    scenarios_dir: Path = typer.Option(DEFAULT_SCENARIOS, "--scenarios-dir"),
) -> None:
    """Prove the harness catches every planted bug and raises no false alarm; exit 0 only if so."""
    from mock_wallet.defects import BUGS
    from walletchaos.detect import detect as run_detect

    if mode not in ("quick", "full"):
        raise UserError(f"--mode must be 'quick' or 'full', not {mode!r}")
    if backend not in ("process", "docker"):
        raise UserError(f"--backend must be 'process' or 'docker', not {backend!r}")
    if bugs == "all":
        bug_names = list(BUGS)
    elif bugs == "none":
        bug_names = []
    else:
        bug_names = [b.strip() for b in bugs.split(",") if b.strip()]
        unknown = [b for b in bug_names if b not in BUGS]
        if unknown:
            raise UserError(f"unknown planted bug {unknown[0]!r}; known: {', '.join(BUGS)}")
    catalog = {s.name: s for s in _select("all", scenarios_dir)}
    picked = None
    if scenarios is not None:
        picked = sorted(catalog) if scenarios == "all" else [s.name for s in _select(scenarios, scenarios_dir)]
    missing = sorted({BUGS[b].scenario for b in bug_names} - catalog.keys()) if picked is None else []
    if missing:
        raise UserError(f"scenario {missing[0]!r} (needed by a planted bug) is not in {scenarios_dir}")
    command = "walletchaos detect " + " ".join(sys.argv[2:]) if len(sys.argv) > 1 else "walletchaos detect"
    cancel = threading.Event()
    out_dir, matrix = _interruptible(
        lambda: run_detect(mode, bugs=bug_names, catalog=catalog, scenarios=picked, seeds=seeds,
                           report_dir=report_dir, duration_s=duration, parallel=parallel, backend=backend,
                           cancel=cancel, command=command.strip(), console=console), cancel)
    print((out_dir / "matrix.md").read_text())
    print(f"report: {os.path.relpath(out_dir / 'index.html')}")
    raise typer.Exit(0 if matrix.passed else 1)


@app.command()
def check(run_dir: Path = typer.Argument(..., help="a run directory (reports/<run>)")) -> None:
    """Re-run the checkers on a stored run and rewrite its verdict and report."""
    from walletchaos.runner import judge_run_dir
    from walletchaos.scenario import load_scenario

    if not (run_dir / "history.jsonl").exists() or not (run_dir / "final.json").exists():
        raise UserError(f"{run_dir}: not a run directory (needs history.jsonl and final.json)")
    result = judge_run_dir(run_dir, load_scenario(run_dir / "scenario.yaml"))
    print((run_dir / "summary.md").read_text())
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def up(
    json_out: bool = typer.Option(False, "--json", help="print the URLs as one JSON line first (for scripts)"),
    backend: str = typer.Option("process"),
    workdir: Optional[Path] = typer.Option(None, help="where data and logs go (default: a temp dir)"),
    target: Optional[Path] = typer.Option(None, "--target", help="target file (default targets/mock-wallet.yaml)"),
) -> None:
    """Start the stack, print the URLs and admin token, stay up until Ctrl-C."""
    from walletchaos.target import load_target
    from walletchaos.topology.base import make_topology

    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="walletchaos-up-")
        workdir = Path(tmp)
    topo = make_topology(backend, workdir, keep_workdir=tmp is None, target=load_target(target))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        topo.start()
        urls = {k: v for k, v in topo.urls().items() if k in ("wallet_url", "gateway_url", "toxiproxy_url", "admin_token")}
        if json_out:
            print(json.dumps(urls), flush=True)
        else:
            for k, v in urls.items():
                out.print(f"{k:14} {v}")
            out.print(f"{'docs':14} {topo.wallet_url}/docs")
            out.print("stack is up; Ctrl-C to stop")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        topo.stop()


@app.command()
def serve(kind: str = typer.Argument(..., help="wallet or gateway"),
          host: str = typer.Option("127.0.0.1"), port: Optional[int] = typer.Option(None)) -> None:
    """Run one service alone (same as `python -m mock_wallet.serve KIND`)."""
    if kind not in ("wallet", "gateway"):
        raise UserError(f"serve takes 'wallet' or 'gateway', not {kind!r}")
    from mock_wallet import serve as serve_mod

    args = [kind, "--host", host] + (["--port", str(port)] if port else [])
    raise typer.Exit(serve_mod.main(args) or 0)


def _exit_now(code: int) -> None:
    """Exit at once after an interrupt: everything the run started is torn down already, and the
    interpreter's own finalisation (seconds on a loaded machine) would only delay the exit that the
    sender of the signal (a CI runner's timeout) is waiting for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main() -> None:
    try:
        # standalone_mode=False hands back a command's typer.Exit code instead of exiting: pass it on
        rc = app(standalone_mode=False)
        if rc in EXIT_CODES.values():  # interrupted (walletchaos.interrupts)
            _exit_now(rc)
        sys.exit(rc if isinstance(rc, int) else 0)
    except typer.Exit as exc:
        if exc.exit_code in EXIT_CODES.values():  # interrupted (walletchaos.interrupts)
            _exit_now(exc.exit_code)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: everything started was torn down[/]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - user errors become one line; bugs keep their traceback
        import click

        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, _user_errors()):
            console.print(f"[red]error:[/] {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", soft_wrap=True)
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
