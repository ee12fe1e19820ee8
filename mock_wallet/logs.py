"""Structured JSON logging to stdout: one object per line, so service logs are machine-readable evidence."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line; `extra={...}` fields become top-level members."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


# The mock gateway's apply-then-drop fault hangs up on purpose by starting a response with an invalid
# header value (mock_wallet/gateway/app.py DropConnection); uvicorn then logs that as an unhandled
# "Exception in ASGI application". It is the fault working, not a server error: said once, at INFO.
DELIBERATE_DROP = "Invalid HTTP header value"


class DeliberateDropFilter(logging.Filter):
    """Turns uvicorn's error record for a deliberately dropped response into an INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RuntimeError) and DELIBERATE_DROP in str(exc):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info, record.exc_text = (
                "response dropped on purpose (apply_then_drop): connection closed without an answer", (), None, None)
        return True


def log_config(level: str) -> dict[str, Any]:
    """A logging dictConfig for uvicorn and our loggers: everything JSON on stdout."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"deliberate_drop": {"()": DeliberateDropFilter}},
        "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stdout", "filters": ["deliberate_drop"]}},
        "loggers": {
            "uvicorn": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "mock_wallet": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
        },
    }
