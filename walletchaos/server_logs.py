"""Read the services' logs of a run (copied to `<run>/logs/` at teardown) into ERROR-level records.

The `server_logs` checker stays pure: the runner calls `read_server_logs` once while judging and puts
the result into the final state (`final["server_logs"]`), so a run can be re-judged from its files.

Formats understood (one record per problem line; other lines are skipped):
- wallet.log / gateway.log: JSON lines of mock_wallet.logs.JsonFormatter (`ts`, `level`, `msg`, `exc`),
  plus plain text a crashing process printed to stdout/stderr (`Traceback ...`, `ERROR: ...`): such a
  line takes the time of the last timestamped line before it.
- postgres.log: `%m [%p] LEVEL:  message` (log_line_prefix set by mock_wallet/embedded_pg.py), or
  without prefix `LEVEL:  message` (then no time, see above).
Levels kept: ERROR and worse (CRITICAL, FATAL, PANIC) and Python tracebacks.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

# service name → log file in <run>/logs
LOG_FILES: dict[str, str] = {"wallet": "wallet.log", "gateway": "gateway.log", "postgres": "postgres.log"}
SEVERE_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL", "PANIC"})
MAX_TEXT = 400  # characters of a line kept as evidence
MAX_LINES_PER_FILE = 5000  # a log flooding with errors is judged on its first lines

_PG_RE = re.compile(r"^(?:(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (?P<tz>[A-Z]{2,5}|[+-]\d\d))? "
                    r"\[(?P<pid>\d+)\] )?(?P<level>[A-Z]+):\s+(?P<msg>.*)$")
_PLAIN_RE = re.compile(r"^(?:Traceback \(most recent call last\)|(?P<level>ERROR|CRITICAL|FATAL)\b[:\s])")


def _pg_ts(ts: str, tz: str | None) -> float | None:
    try:
        if tz in (None, "UTC", "GMT", "Z", "+00"):
            return datetime.fromisoformat(ts + "+00:00").timestamp()
        if tz and tz[0] in "+-":
            return datetime.fromisoformat(f"{ts}{tz}:00").timestamp()
    except ValueError:
        return None
    return None  # a named zone other than UTC: unknown offset


def _record(service: str, lineno: int, ts: float | None, level: str, text: str) -> dict[str, Any]:
    return {"service": service, "line": lineno, "ts": ts, "level": level, "text": text[:MAX_TEXT]}


def parse_service_log(service: str, text: str) -> list[dict[str, Any]]:
    """ERROR-or-worse records of one log: {service, line (1-based), ts (epoch s or None), level, text}."""
    out: list[dict[str, Any]] = []
    last_ts: float | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if len(out) >= MAX_LINES_PER_FILE:
            break
        line = line.rstrip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                entry = None
            if isinstance(entry, dict):
                ts = entry.get("ts")
                if isinstance(ts, (int, float)):
                    last_ts = float(ts)
                level = str(entry.get("level", "")).upper()
                if level in SEVERE_LEVELS:
                    msg = str(entry.get("msg", ""))
                    exc = entry.get("exc")
                    if exc:
                        msg += " | " + str(exc).strip().splitlines()[-1]
                    out.append(_record(service, lineno, last_ts, level, msg))
                continue
        m = _PG_RE.match(line)
        if m and (m["ts"] or m["level"] in SEVERE_LEVELS):
            if m["ts"]:
                ts = _pg_ts(m["ts"], m["tz"])
                if ts is not None:
                    last_ts = ts
            if m["level"] in SEVERE_LEVELS:
                out.append(_record(service, lineno, last_ts, m["level"], m["msg"]))
            continue
        p = _PLAIN_RE.match(line)
        if p:
            out.append(_record(service, lineno, last_ts, p["level"] or "ERROR", line))
    return out


def read_server_logs(logs_dir: str | Path) -> dict[str, Any]:
    """{"files": {service: lines read or None if absent}, "lines": [records of every service]}."""
    logs_dir = Path(logs_dir)
    files: dict[str, int | None] = {}
    lines: list[dict[str, Any]] = []
    for service, name in LOG_FILES.items():
        path = logs_dir / name
        if not path.is_file():
            files[service] = None
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        files[service] = len(text.splitlines())
        lines.extend(parse_service_log(service, text))
    return {"files": files, "lines": lines}
