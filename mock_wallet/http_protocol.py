"""uvicorn's HTTP protocol with protocol-level errors rendered as problem+json.

A request the HTTP parser rejects (e.g. a raw control character in a header) never reaches the ASGI
app, so uvicorn answers it with its own text/plain 400. The contract says *every* error is a problem,
so we replace just that answer (422 VALIDATION_ERROR: the catalog's code for a malformed request).
"""

from __future__ import annotations

import json
import uuid

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from mock_wallet.problems import PROBLEM_CONTENT_TYPE, ProblemError


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        request_id = uuid.uuid4().hex
        problem = ProblemError("VALIDATION_ERROR", f"Malformed HTTP request: {msg}")
        payload = json.dumps(problem.body(request_id)).encode()
        head = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: ", PROBLEM_CONTENT_TYPE.encode(), b"\r\n",
                 b"x-request-id: ", request_id.encode(), b"\r\n",
                 b"content-length: ", str(len(payload)).encode(), b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + payload)
        self.transport.close()
