"""swallowed-exception-log: every EVERY-th request, a sampled "slow request" metric is recorded with the
wrong labels; the ValueError is caught and logged as an ERROR with its traceback, and the request is
answered normally. Nothing fails for the client: only the server log shows it."""

from __future__ import annotations

import itertools
import logging

from starlette.types import Scope

from mock_wallet.middleware import WalletMiddleware
from mock_wallet.parts import WalletParts
from mock_wallet.request_context import RequestInfo

log = logging.getLogger("mock_wallet.request")

EVERY = 25


class SwallowingMiddleware(WalletMiddleware):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._requests = itertools.count(1)

    def _record(self, scope: Scope, info: RequestInfo, status: int, elapsed: float) -> None:
        super()._record(scope, info, status, elapsed)
        if next(self._requests) % EVERY:
            return
        try:
            self.metrics.latency.labels(scope["method"]).observe(elapsed)  # two labels expected: ValueError
        except ValueError:
            log.exception("sampled request metric not recorded", extra={"request_id": info.request_id})


def plant(parts: WalletParts) -> None:
    parts.replace("middleware", SwallowingMiddleware)
