"""Exception handlers: every error the framework or our code raises becomes a catalog problem.

FastAPI's own 422s, Starlette's 404/405 for unknown routes and malformed JSON all pass through here, so a
client never sees `{"detail": ...}` or HTML.
"""

from __future__ import annotations

import traceback

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, JSONResponse, Response

from mock_wallet import bugs
from mock_wallet.problems import PROBLEM_CONTENT_TYPE, ProblemError
from mock_wallet.request_context import current_request, request_id

_HTTP_STATUS_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHENTICATED", 422: "VALIDATION_ERROR"}


# planted bug error-as-200: the failures of a dependency (database, gateway)
DEPENDENCY_CODES = frozenset({"DATABASE_UNAVAILABLE", "GATEWAY_ERROR", "GATEWAY_TIMEOUT"})


def render(problem: ProblemError) -> Response:
    info = current_request.get()
    if info is not None:
        info.problem_code = problem.code
    if bugs.active("error-as-200") and problem.code in DEPENDENCY_CODES:
        return _error_as_200(problem)
    if bugs.active("leaky-errors"):
        return _leaky(problem)
    return problem.response(request_id())


def _error_as_200(problem: ProblemError) -> Response:
    """PLANTED BUG error-as-200: a database failure becomes the framework's bare HTML 500 page, a
    gateway failure a 200 whose body merely mentions the error."""
    if problem.code == "DATABASE_UNAVAILABLE":
        return HTMLResponse("<html><head><title>500 Internal Server Error</title></head><body>"
                            "<h1>Internal Server Error</h1></body></html>", status_code=500)
    return JSONResponse({"ok": False, "error": problem.detail, **problem.extra}, status_code=200)


def _leaky(problem: ProblemError) -> Response:
    """PLANTED BUG leaky-errors: no request id, and the stack trace pasted into the detail."""
    body = problem.body(request_id())
    del body["request_id"]
    trace = traceback.format_exception(problem) if problem.__traceback__ else traceback.format_stack()
    body["detail"] = f"{problem.detail}\n{''.join(trace)}"
    return JSONResponse(body, status_code=problem.status, headers=problem.headers(),
                        media_type=PROBLEM_CONTENT_TYPE)


async def on_problem(_: Request, exc: ProblemError) -> Response:
    return render(exc)


async def on_validation(_: Request, exc: RequestValidationError) -> Response:
    errors = [{"loc": [str(part) for part in err.get("loc", ())], "msg": str(err.get("msg", ""))}
              for err in exc.errors()[:20]]
    summary = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:3])
    return render(ProblemError("VALIDATION_ERROR", f"The request is not valid: {summary}", extra={"errors": errors}))


async def on_http_exception(_: Request, exc: StarletteHTTPException) -> Response:
    code = _HTTP_STATUS_CODES.get(exc.status_code)
    if code is None:  # e.g. 400 from a malformed request the framework caught: a client error
        code = "VALIDATION_ERROR"
    return render(ProblemError(code, {"NOT_FOUND": "No such resource.",
                                      "METHOD_NOT_ALLOWED": "This method is not allowed on this resource."}
                               .get(code, "The request is not valid.")))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
