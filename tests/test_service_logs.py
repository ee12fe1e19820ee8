"""The services' JSON logs: a deliberate hang-up by the mock gateway is not logged as a server error."""

from __future__ import annotations

import io
import json
import logging
import logging.config

from mock_wallet.logs import log_config


def _log(exc: BaseException) -> dict:
    logging.config.dictConfig(log_config("info"))
    handler = logging.getLogger("uvicorn.error").handlers[0]
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        raise exc
    except type(exc):
        logging.getLogger("uvicorn.error").error("Exception in ASGI application\n", exc_info=True)
    return json.loads(stream.getvalue().strip().splitlines()[-1])


def test_the_gateways_deliberate_drop_is_an_info_line_without_traceback() -> None:
    entry = _log(RuntimeError("Invalid HTTP header value."))
    assert entry["level"] == "info" and "on purpose" in entry["msg"] and "exc" not in entry


def test_any_other_unhandled_exception_stays_an_error_with_its_traceback() -> None:
    entry = _log(RuntimeError("boom"))
    assert entry["level"] == "error" and "Traceback" in entry["exc"]
