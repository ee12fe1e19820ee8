"""Exception handlers: every error the framework or our code raises becomes a catalog problem.

FastAPI's own 422s, Starlette's 404/405 for unknown routes and malformed JSON all pass through here, so a
client never sees `{"detail": ...}` or HTML.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from mock_wallet.problems import ProblemError
from mock_wallet.request_context import current_request, request_id

_HTTP_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHENTICATED", 422: "VALIDATION_ERROR"}


class ProblemRenderer:
    """Turns a ProblemError into the response the client sees (problem+json with the request id)."""

    def render(self, problem: ProblemError) -> Response:
        info = current_request.get()
        if info is not None:
            info.problem_code = problem.code
        return self.response(problem)

    def response(self, problem: ProblemError) -> Response:
        return problem.response(request_id())


def install(app: FastAPI, renderer: ProblemRenderer) -> None:
    async def on_problem(_: Request, exc: ProblemError) -> Response:
        return renderer.render(exc)

    async def on_validation(_: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
                  for err in exc.errors()[:20]]
        summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:3])
        return renderer.render(ProblemError("VALIDATION_ERROR", f"The request is not valid: {summary}",
                                            extra={"errors": errors}))

    async def on_http_exception(_: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_STATUS_CODES.get(exc.status_code)
        if code is None:  # e.g. 400 from a malformed request the framework caught: a client error
            code = "VALIDATION_ERROR"
        return renderer.render(ProblemError(code, {"NOT_FOUND": "No such resource.",
                                                   "METHOD_NOT_ALLOWED": "This method is not allowed on this resource."}
                                            .get(code, "The request is not valid.")))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
