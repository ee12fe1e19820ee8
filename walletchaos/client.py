"""The wallet API client: one HTTP call per contract operation, each classified and recorded as an op.

Why this module exists: the checkers can only be as right as the history. Every call is recorded
exactly once, with its invoke/complete wall-clock times, the raw evidence of the answer (status,
problem, request id, body excerpt) and an outcome from the DESIGN.md rule:

* ``ok``      2xx except 202;
* ``unknown`` a write whose effect cannot be known: transport error after the request may have left,
  504, 202 pending, a 500 / non-problem 5xx (a crashing server may have committed first);
* ``fail``    any other answer — by contract a problem response applied nothing. Reads (login, balance,
  history, lookup) never have an unknown *effect*, so every non-ok read is ``fail``.

The client never retries by itself: each attempt is its own op. A caller may retry a write with the
same idempotency key (``WalletApi.retry``), which shows up as a second op with the same key.

``classify`` is pure so it can be tested over every case; ``WalletApi`` does the I/O through a small
``Transport`` so the same code runs inside Locust (gevent, ``FastHttpSession``) and outside (httpx).
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from walletchaos.history import WRITE_KINDS, new_op

READ_KINDS = frozenset({"login", "balance", "history", "lookup"})
# register is not a money write, but a timed-out register may have created the user: unknown too.
EFFECT_KINDS = WRITE_KINDS | {"register"}
PROBLEM_CONTENT_TYPE = "application/problem+json"
BODY_EXCERPT_CHARS = 500
# Transport errors raised before any byte of the request can have reached the server.
UNSENT_ERRORS = frozenset({"ConnectionRefusedError", "ConnectError", "ConnectTimeout"})
DEFAULT_TIMEOUT_S = 10.0  # must exceed the wallet deadline (5 s) so the wallet's own 503/504 are seen


def client_timeout_s() -> float:
    """Client-side timeout from WALLETCHAOS_CLIENT_TIMEOUT_S (default 10 s, above the wallet deadline)."""
    raw = os.environ.get("WALLETCHAOS_CLIENT_TIMEOUT_S")
    return float(raw) if raw else DEFAULT_TIMEOUT_S


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_body(body: bytes | str | dict | list | None) -> tuple[Any, str | None]:
    """(parsed JSON or None, text for an excerpt when it is not JSON)."""
    if body is None or isinstance(body, (dict, list)):
        return body, None
    raw = body.encode() if isinstance(body, str) else body
    if not raw:
        return None, ""
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        return None, raw[:BODY_EXCERPT_CHARS * 4].decode("utf-8", errors="replace")


def _looks_like_problem(media_type: str, data: Any) -> bool:
    """A JSON object served as problem+json, or carrying the problem members our catalog relies on."""
    if not isinstance(data, dict):
        return False
    return media_type == PROBLEM_CONTENT_TYPE or ("code" in data and ("type" in data or "title" in data))


def _excerpt(data: Any, text: str | None) -> str:
    if text is not None:
        return text[:BODY_EXCERPT_CHARS]
    return orjson.dumps(data).decode()[:BODY_EXCERPT_CHARS]


def classify(kind: str, status: int | None, content_type: str | None,
             body: bytes | str | dict | list | None, exc: BaseException | str | None, *,
             request_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """Outcome and history fields of one answer (pure). `exc` is the transport error (or its class
    name) when no complete response arrived; `request_id` is the response's X-Request-ID header.

    Returns (outcome, fields) with fields: status, code, request_id, content_type, problem,
    body_excerpt, txn_id, txn_status, balance, error — plus account_id for a successful register.
    """
    fields: dict[str, Any] = {"status": None, "code": None, "request_id": request_id,
                              "content_type": content_type, "problem": None, "body_excerpt": None,
                              "txn_id": None, "txn_status": None, "balance": None, "error": None}
    effect = kind in EFFECT_KINDS
    if exc is not None:
        name = exc if isinstance(exc, str) else type(exc).__name__
        fields["error"] = name
        fields["status"] = None
        if not effect or name in UNSENT_ERRORS:
            return "fail", fields
        return "unknown", fields

    fields["status"] = status
    data, text = _parse_body(body)
    media = _media_type(content_type)
    assert status is not None, "either a status or a transport error"
    if 200 <= status < 300:
        if not isinstance(data, dict):
            fields["body_excerpt"] = _excerpt(data, text)
            # a 2xx write was acknowledged even with an unreadable body; a read without data failed
            return ("unknown" if status == 202 else "ok") if effect else "fail", fields
        _success_fields(kind, data, fields)
        return ("unknown" if status == 202 else "ok"), fields

    problem = data if _looks_like_problem(media, data) else None
    if problem is not None:
        fields["problem"] = problem
        fields["code"] = problem.get("code")
        if fields["request_id"] is None and isinstance(problem.get("request_id"), str):
            fields["request_id"] = problem["request_id"]
        if isinstance(problem.get("transaction_id"), str):
            fields["txn_id"] = problem["transaction_id"]
    else:
        fields["body_excerpt"] = _excerpt(data, text)
    if not effect:
        return "fail", fields
    if status == 504:
        return "unknown", fields
    if status >= 500 and (status == 500 or problem is None or fields["code"] == "INTERNAL_ERROR"):
        return "unknown", fields  # a bug or a foreign error page: nothing promises nothing was applied
    return "fail", fields


def _success_fields(kind: str, data: dict[str, Any], fields: dict[str, Any]) -> None:
    if kind in WRITE_KINDS or kind == "lookup":
        fields["txn_id"] = data.get("transaction_id")
        fields["txn_status"] = data.get("status")
    elif kind == "balance":
        balance = data.get("balance")
        fields["balance"] = balance if isinstance(balance, int) else None
    elif kind == "register":
        fields["account_id"] = data.get("account_id")
    elif kind == "history" and isinstance(data.get("items"), list):  # the page's txn ids, in the order served
        fields["items"] = [i.get("transaction_id") for i in data["items"] if isinstance(i, dict)]


# -- transport ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawResponse:
    """What came back: a status with headers and body, or a transport error (status None)."""

    status: int | None
    headers: Mapping[str, str]
    body: bytes
    exc: BaseException | None = None

    def header(self, name: str) -> str | None:
        get = getattr(self.headers, "get", None)
        if get is None:
            return None
        return get(name) or get(name.lower())


Judge = Callable[[RawResponse], tuple[bool, str]]


class Transport(Protocol):
    """Sends one request. `judge(raw)` → (success, label) lets a Locust transport mark its own stats."""

    def send(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None,
             name: str, judge: Judge) -> RawResponse: ...


class HttpxTransport:
    """Transport over an httpx.Client (tests, scripts): no retries, the client's timeout applies."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, method: str, path: str, *, headers: dict[str, str], body: bytes | None,
             name: str, judge: Judge) -> RawResponse:
        import httpx

        try:
            r = self.client.request(method, path, headers=headers, content=body)
            raw = RawResponse(r.status_code, r.headers, r.content)
        except httpx.HTTPError as exc:
            raw = RawResponse(None, {}, b"", exc)
        judge(raw)
        return raw


class Sink(Protocol):
    def write(self, op: dict[str, Any]) -> None: ...


@dataclass
class Call:
    """One recorded call: the op written to the history and the parsed JSON body (or None)."""

    op: dict[str, Any]
    data: Any

    @property
    def outcome(self) -> str:
        return self.op["outcome"]

    @property
    def ok(self) -> bool:
        return self.op["outcome"] == "ok"


# -- the API ----------------------------------------------------------------------------------------------
class WalletApi:
    """The contract's operations for one simulated user; each call appends exactly one op to `sink`.

    Holds the session state (token, account_id) because every later call needs it. `tag`, an
    extension of the history format, marks deliberate behaviour (retry, wrong_pin, intrusion, ...)
    so checkers and humans can tell a planted mistake from a surprise.
    """

    def __init__(self, transport: Transport, sink: Sink, *, worker: str, user: str,
                 op_ids: Iterator[int] | None = None) -> None:
        self.transport = transport
        self.sink = sink
        self.worker = worker
        self.user = user
        self._seq = op_ids if op_ids is not None else itertools.count(1)
        self.token: str | None = None
        self.account_id: str | None = None
        self.username: str | None = None

    # session ----------------------------------------------------------------------------------------
    def register(self, username: str, password: str, pin: str, *, tag: str | None = None) -> Call:
        call = self._call("register", "POST", "/v1/users", "/v1/users",
                          {"username": username, "password": password, "pin": pin},
                          args={"username": username}, tag=tag)
        if call.ok:
            self.username = username
            self.account_id = call.op["account_id"]
        return call

    def login(self, username: str, password: str, *, tag: str | None = None) -> Call:
        call = self._call("login", "POST", "/v1/sessions", "/v1/sessions",
                          {"username": username, "password": password}, args={"username": username},
                          account_id=self.account_id if username == self.username else None, tag=tag,
                          target_owner=None if username == self.username else username)
        if call.ok and username == self.username and isinstance(call.data, dict):
            self.token = call.data.get("token")
        return call

    # money writes -------------------------------------------------------------------------------------
    def deposit(self, amount: int, *, account_id: str | None = None, key: str | None = None,
                tag: str | None = None) -> Call:
        acct = account_id or self.account_id
        body = {"account_id": acct, "amount": amount}
        return self._write("deposit", "/v1/deposits", body, {"account_id": acct, "amount": amount}, acct, key, tag)

    def withdrawal(self, amount: int, pin: str, *, account_id: str | None = None, key: str | None = None,
                   tag: str | None = None, target_owner: str | None = None) -> Call:
        acct = account_id or self.account_id
        body = {"account_id": acct, "amount": amount, "pin": pin}
        return self._write("withdrawal", "/v1/withdrawals", body, {"account_id": acct, "amount": amount},
                           acct, key, tag, target_owner)

    def transfer(self, to_account_id: str, amount: int, pin: str, *, from_account_id: str | None = None,
                 key: str | None = None, tag: str | None = None, target_owner: str | None = None) -> Call:
        src = from_account_id or self.account_id
        body = {"from_account_id": src, "to_account_id": to_account_id, "amount": amount, "pin": pin}
        args = {"from_account_id": src, "to_account_id": to_account_id, "amount": amount}
        return self._write("transfer", "/v1/transfers", body, args, src, key, tag, target_owner)

    def retry(self, op: dict[str, Any], pin: str) -> Call:
        """Send a recorded write again with the SAME idempotency key and body (exactly-once probe)."""
        args, kind, key = op["args"], op["kind"], op["idempotency_key"]
        if kind == "deposit":
            return self.deposit(args["amount"], account_id=args["account_id"], key=key, tag="retry")
        if kind == "withdrawal":
            return self.withdrawal(args["amount"], pin, account_id=args["account_id"], key=key, tag="retry")
        if kind == "transfer":
            return self.transfer(args["to_account_id"], args["amount"], pin,
                                 from_account_id=args["from_account_id"], key=key, tag="retry")
        raise ValueError(f"not a retryable write: {kind!r}")

    # reads ------------------------------------------------------------------------------------------
    def balance(self, account_id: str | None = None, *, token: str | None = None,
                tag: str | None = None, target_owner: str | None = None) -> Call:
        acct = account_id or self.account_id
        return self._call("balance", "GET", f"/v1/accounts/{acct}", "/v1/accounts/{id}", None,
                          args={"account_id": acct}, account_id=acct, token=token, tag=tag,
                          target_owner=target_owner)

    def history(self, account_id: str | None = None, *, limit: int = 20, token: str | None = None,
                tag: str | None = None, target_owner: str | None = None) -> Call:
        acct = account_id or self.account_id
        return self._call("history", "GET", f"/v1/accounts/{acct}/transactions?limit={limit}",
                          "/v1/accounts/{id}/transactions", None, args={"account_id": acct, "limit": limit},
                          account_id=acct, token=token, tag=tag, target_owner=target_owner)

    def lookup(self, idempotency_key: str, *, tag: str | None = None, target_owner: str | None = None) -> Call:
        """GET /v1/transactions?idempotency_key=K: what became of a write sent under key K."""
        return self._call("lookup", "GET", f"/v1/transactions?idempotency_key={idempotency_key}",
                          "/v1/transactions?idempotency_key", None, args={"idempotency_key": idempotency_key},
                          account_id=self.account_id, tag=tag, target_owner=target_owner)

    def get_transaction(self, transaction_id: str, *, tag: str | None = None,
                        target_owner: str | None = None) -> Call:
        """GET /v1/transactions/{id}, recorded as kind `lookup` (args carry transaction_id)."""
        return self._call("lookup", "GET", f"/v1/transactions/{transaction_id}", "/v1/transactions/{id}",
                          None, args={"transaction_id": transaction_id}, account_id=self.account_id, tag=tag,
                          target_owner=target_owner)

    # plumbing ---------------------------------------------------------------------------------------
    def _write(self, kind: str, path: str, body: dict[str, Any], args: dict[str, Any], acct: str | None,
               key: str | None, tag: str | None, target_owner: str | None = None) -> Call:
        key = key or str(uuid.uuid4())
        return self._call(kind, "POST", path, path, body, args=args, account_id=acct, key=key, tag=tag,
                          target_owner=target_owner)

    def _call(self, kind: str, method: str, path: str, name: str, body: dict[str, Any] | None, *,
              args: dict[str, Any], account_id: str | None = None, key: str | None = None,
              token: str | None = None, tag: str | None = None, target_owner: str | None = None) -> Call:
        sent_rid = uuid.uuid4().hex
        headers = {"X-Request-ID": sent_rid, "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        auth = token if token is not None else self.token
        if auth and kind not in ("register", "login"):
            headers["Authorization"] = f"Bearer {auth}"
        payload = orjson.dumps(body) if body is not None else None
        result: dict[str, Any] = {}

        def judge(raw: RawResponse) -> tuple[bool, str]:
            # runs inside the transport (Locust: inside catch_response) so stats match the outcome
            result["complete_ts"] = time.time()
            data = None
            if raw.exc is None:
                data, _ = _parse_body(raw.body)  # parse once: classify reuses it, the caller gets it
            outcome, fields = classify(kind, raw.status, raw.header("content-type"),
                                       data if isinstance(data, (dict, list)) else raw.body, raw.exc,
                                       request_id=raw.header("x-request-id") if raw.exc is None else None)
            result["outcome"], result["fields"], result["data"] = outcome, fields, data
            result["retry_after"] = raw.header("retry-after") if raw.exc is None else None
            label = fields["code"] or fields["error"] or (f"HTTP {fields['status']}" if fields["status"] else "")
            return outcome == "ok", f"{outcome} {label}".strip()

        invoke_ts = time.time()
        raw = self.transport.send(method, path, headers=headers, body=payload, name=name, judge=judge)
        if "outcome" not in result:  # a transport that forgot to judge: judge now, never lose the op
            judge(raw)
        fields = result["fields"]
        reg_account = fields.pop("account_id", None)
        # owner_user: who acted (the wallet username of this session; for register the name registered);
        # target_owner: for attacks, whose account / transaction / key / password was targeted
        items = fields.pop("items", None)
        op = new_op(f"{self.worker}-{self.user}-{next(self._seq)}", kind, invoke_ts, worker=self.worker,
                    user=self.user, args=args, idempotency_key=key, account_id=reg_account or account_id,
                    complete_ts=result["complete_ts"], outcome=result["outcome"],
                    retry_after=result["retry_after"],
                    owner_user=args.get("username") if kind == "register" else self.username,
                    target_owner=target_owner, **fields)
        op["tag"] = tag
        op["sent_request_id"] = sent_rid
        if kind == "history":
            op["items"] = items
        self.sink.write(op)
        return Call(op, result["data"])
