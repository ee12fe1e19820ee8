"""Live progress of a run in the terminal: phase, active fault, rps, error rate, time left.

Rates come from tailing the Locust processes' history files (new lines only), so the display sees
exactly what the checkers will see.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from walletchaos.history import AUDIT_KIND

WINDOW_S = 5.0


class HistoryTail:
    """Reads only the lines appended since the last call, across all history-*.jsonl files."""

    def __init__(self, history_dir: Path) -> None:
        self.history_dir = history_dir
        self._offsets: dict[Path, int] = {}
        self.recent: deque[tuple[float, str]] = deque()
        self.total = 0

    def poll(self) -> None:
        for path in self.history_dir.glob("history-*.jsonl"):
            offset = self._offsets.get(path, 0)
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # only whole lines
            for line in chunk[:end].splitlines():
                try:
                    op = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if op.get("kind") == AUDIT_KIND:  # the harness's snapshots, not load
                    continue
                self.recent.append((op.get("complete_ts") or time.time(), op.get("outcome", "")))
                self.total += 1
            self._offsets[path] = offset + end
        horizon = time.time() - WINDOW_S
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()

    def rates(self) -> tuple[float, float]:
        n = len(self.recent)
        if not n:
            return 0.0, 0.0
        bad = sum(1 for _, outcome in self.recent if outcome != "ok")
        return n / WINDOW_S, bad / n


class LiveProgress:
    def __init__(self, console: Console, scenario: Any, history_dir: Path, *, enabled: bool = True) -> None:
        self.console = console
        self.scenario = scenario
        self.tail = HistoryTail(history_dir)
        self.enabled = enabled and console.is_terminal
        self._live: Live | None = None
        self._last_plain = 0.0

    def __enter__(self) -> "LiveProgress":
        if self.enabled:
            self._live = Live(self._render("warmup", [], 0.0), console=self.console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, *, phase: str, active: list[str], elapsed: float) -> None:
        self.tail.poll()
        if self._live is not None:
            self._live.update(self._render(phase, active, elapsed))
        elif time.monotonic() - self._last_plain >= 5:  # CI logs: a plain line every 5 s
            self._last_plain = time.monotonic()
            rps, err = self.tail.rates()
            left = max(0.0, self.scenario.duration_s - elapsed)
            self.console.print(f"  {phase:8} fault={','.join(active) or '-':24} {rps:6.1f} op/s "
                               f"err={err:5.1%} ops={self.tail.total} left={left:4.0f}s", highlight=False, soft_wrap=True)

    def _render(self, phase: str, active: list[str], elapsed: float) -> Table:
        rps, err = self.tail.rates()
        left = max(0.0, self.scenario.duration_s - elapsed)
        table = Table.grid(padding=(0, 2))
        table.add_row("[bold]scenario", self.scenario.name, "[bold]phase", phase)
        table.add_row("[bold]fault", ", ".join(active) or "-", "[bold]time left", f"{left:.0f}s")
        color = "red" if err > 0.2 else "yellow" if err > 0.02 else "green"
        table.add_row("[bold]ops/s", f"{rps:.1f}", "[bold]not ok", f"[{color}]{err:.1%}[/]")
        table.add_row("[bold]ops", str(self.tail.total), "", "")
        return table
