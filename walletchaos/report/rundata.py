"""Read one run directory (docs/internals.md § Run directory) for the report writers.

Every file is optional: a run that crashed before reconcile still deserves a report showing what
was recorded, so a missing file reads as empty rather than raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from walletchaos.history import read_events, read_history

RAW_FILES = ("history.jsonl", "events.jsonl", "final.json", "verdict.json", "junit.xml", "summary.md",
             "scenario.yaml")


@dataclass
class RunFiles:
    run_dir: Path
    scenario: dict[str, Any]
    events: list[dict[str, Any]]
    history: list[dict[str, Any]]
    final: dict[str, Any]
    verdict: dict[str, Any]

    @property
    def meta(self) -> dict[str, Any]:
        """Run metadata (backend, seed, started_at, finished_at): verdict.json's, else final.json's."""
        return dict(self.verdict.get("meta") or self.final.get("meta") or {})

    @property
    def name(self) -> str:
        return str(self.verdict.get("scenario") or self.scenario.get("name") or self.run_dir.name)

    @property
    def raw_files(self) -> list[str]:
        """Names of the raw files present, for relative links from index.html."""
        return [f for f in RAW_FILES if (self.run_dir / f).exists()]


def _json(path: Path) -> dict[str, Any]:
    return orjson.loads(path.read_bytes()) if path.exists() else {}


def load_verdict(run_dir: Path) -> dict[str, Any]:
    return _json(Path(run_dir) / "verdict.json")


def load_scenario(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "scenario.yaml"
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    return data if isinstance(data, dict) else {}


def load_run(run_dir: Path) -> RunFiles:
    run_dir = Path(run_dir)
    history = run_dir / "history.jsonl"
    events = run_dir / "events.jsonl"
    return RunFiles(
        run_dir=run_dir,
        scenario=load_scenario(run_dir),
        events=read_events(events) if events.exists() else [],
        history=read_history(history) if history.exists() else [],
        final=_json(run_dir / "final.json"),
        verdict=load_verdict(run_dir),
    )


def duration_s(meta: dict[str, Any], fallback: float | None) -> float | None:
    """Wall time of the run from its metadata, else `fallback` (the span of events and ops)."""
    start, end = meta.get("started_at"), meta.get("finished_at")
    if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
        return float(end - start)
    return fallback
