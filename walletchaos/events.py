"""events.jsonl: what the harness did and when (phases, faults), one JSON object per line.

Thread-safe: the nemesis thread and the runner both emit.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any] | None = None, /, **fields: Any) -> dict[str, Any]:
        """Record an event; `ts` defaults to now. Accepts a dict (the nemesis callback) or keywords."""
        record = {"ts": time.time(), "kind": "note", "name": "", "target": None, "details": {}}
        record.update(event or {})
        record.update(fields)
        with self._lock:
            self.events.append(record)
            if not self._file.closed:
                self._file.write(orjson.dumps(record) + b"\n")
                self._file.flush()
        return record

    def phase(self, name: str) -> None:
        self.emit(kind="phase", name=name)

    def close(self) -> None:
        with self._lock:
            self._file.close()
