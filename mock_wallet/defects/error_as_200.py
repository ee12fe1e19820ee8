"""error-as-200: a dependency failure is not answered as its problem: a database failure becomes the
framework's bare HTML 500 page, a gateway failure a 200 whose body merely mentions the error."""

from __future__ import annotations

from starlette.responses import HTMLResponse, JSONResponse, Response

from mock_wallet.handlers import ProblemRenderer
from mock_wallet.parts import WalletParts
from mock_wallet.problems import ProblemError

DEPENDENCY_CODES = frozenset({"DATABASE_UNAVAILABLE", "GATEWAY_ERROR", "GATEWAY_TIMEOUT"})


class ErrorAs200Renderer(ProblemRenderer):
    def response(self, problem: ProblemError) -> Response:
        if problem.code == "DATABASE_UNAVAILABLE":
            return HTMLResponse("<html><head><title>500 Internal Server Error</title></head><body>"
                                "<h1>Internal Server Error</h1></body></html>", status_code=500)
        if problem.code in DEPENDENCY_CODES:
            return JSONResponse({"ok": False, "error": problem.detail, **problem.extra}, status_code=200)
        return super().response(problem)


def plant(parts: WalletParts) -> None:
    parts.replace("renderer", ErrorAs200Renderer)
