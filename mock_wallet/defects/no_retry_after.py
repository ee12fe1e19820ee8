"""no-retry-after: 429 RATE_LIMITED and 503 MAINTENANCE are answered without the Retry-After header
the contract requires, so clients cannot tell when to come back."""

from __future__ import annotations

from starlette.responses import Response

from mock_wallet.handlers import ProblemRenderer
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError

WITHOUT_RETRY_AFTER = frozenset({"RATE_LIMITED", "MAINTENANCE"})


class NoRetryAfterRenderer(ProblemRenderer):
    def response(self, problem: ProblemError) -> Response:
        response = super().response(problem)
        if problem.code in WITHOUT_RETRY_AFTER and "retry-after" in response.headers:
            del response.headers["retry-after"]
        return response


def plant(parts: WalletParts) -> None:
    parts.replace("renderer", NoRetryAfterRenderer)
