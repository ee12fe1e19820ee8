"""leaky-errors: problem responses without the request id, with the stack trace pasted into the detail."""

from __future__ import annotations

import traceback

from starlette.responses import JSONResponse, Response

from mock_wallet.handlers import ProblemRenderer
from mock_wallet.parts import WalletParts
from mock_wallet.problems import PROBLEM_CONTENT_TYPE, ProblemError
from mock_wallet.request_context import request_id


class LeakyRenderer(ProblemRenderer):
    def response(self, problem: ProblemError) -> Response:
        body = problem.body(request_id())
        del body["request_id"]
        trace = traceback.format_exception(problem) if problem.__traceback__ else traceback.format_stack()
        body["detail"] = f"{problem.detail}\n{''.join(trace)}"
        return JSONResponse(body, status_code=problem.status, headers=problem.headers(),
                            media_type=PROBLEM_CONTENT_TYPE)


def plant(parts: WalletParts) -> None:
    parts.replace("renderer", LeakyRenderer)
