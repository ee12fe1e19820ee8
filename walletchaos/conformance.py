"""`walletchaos conformance`: probe a target's API against the contract before any chaos.

Each probe is one small exchange in contract terms, sent through the target's adapter (so a wallet with
a different API is probed through its translation): status codes, problem+json members (RFC 9457 +
the catalog's status and `retryable`, a request id, no leaked internals), X-Request-ID echo, idempotent
replay, key reuse, a missing key, auth (no token, bad token, wrong password), ownership (another user's
account and transaction answer 404), money rules (wrong PIN, overdraft, bad amount), lookup by key,
the admin API the checks need (export, audit, reconcile, admin auth), and the deadline (a stalled
database answered with a problem within the deadline, when the harness owns the database path).

The first three probes (register, login, deposit) are FATAL: if they fail, the target cannot even be
exercised and `walletchaos run` refuses to start.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from walletchaos.adapters import Admin, ContractCall, WalletAdapter, target_adapter
from walletchaos.checks.catalog import CATALOG, PROBLEM_MEMBERS
from walletchaos.checks.clear_errors import find_leak
from walletchaos.client import PROBLEM_CONTENT_TYPE, RawResponse
from walletchaos.target import Target

FATAL_PROBES = ("register", "login", "deposit")
DEADLINE_S = 5.0          # CONTRACT.md: every request answered within the deadline (default 5 s)
DEADLINE_SLACK_S = 1.0    # the client's side of the clock (connect, scheduling on a busy box)


@dataclass
class Probe:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Answer:
    """One probe exchange in contract terms."""

    status: int | None
    headers: httpx.Headers
    data: Any
    text: str
    seconds: float
    sent_request_id: str
    error: str | None = None

    @property
    def code(self) -> str | None:
        return self.data.get("code") if isinstance(self.data, dict) else None


@dataclass
class ConformanceReport:
    target: str
    probes: list[Probe] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(p.ok for p in self.probes)

    @property
    def exercisable(self) -> bool:
        """register, login and deposit work: load can run at all."""
        by = {p.name: p.ok for p in self.probes}
        return all(by.get(n, False) for n in FATAL_PROBES)

    def failures(self) -> list[Probe]:
        return [p for p in self.probes if not p.ok]

    def summary(self) -> str:
        bad = len(self.failures())
        word = "conforms" if not bad else f"{bad} probe{'s' if bad > 1 else ''} failed"
        return f"conformance: {self.target} {word} ({len(self.probes) - bad}/{len(self.probes)} probes passed)"


class Prober:
    """Sends contract calls through an adapter and records probe results."""

    def __init__(self, adapter: WalletAdapter, client_url: str, admin_url: str, admin_token: str,
                 http: httpx.Client | None = None, admin_http: httpx.Client | None = None) -> None:
        self.adapter = adapter
        self.http = http or httpx.Client(timeout=DEADLINE_S * 2)
        self.client_url = client_url.rstrip("/")
        self.admin = Admin(admin_http or httpx.Client(base_url=admin_url.rstrip("/"), timeout=DEADLINE_S * 2),
                           admin_token)
        self.report_probes: list[Probe] = []

    def close(self) -> None:
        self.http.close()
        self.admin.http.close()

    # -- sending -----------------------------------------------------------------------------------
    def send(self, op: str, params: dict[str, Any], *, token: str | None = None, key: str | None = None) -> Answer:
        rid = uuid.uuid4().hex
        call = ContractCall(op, params, token=token, idempotency_key=key, request_id=rid)  # type: ignore[arg-type]
        req = self.adapter.request(call)
        headers = {"Accept": "application/json", "X-Request-ID": rid, **req.headers}
        body = orjson.dumps(req.body) if req.body is not None else None
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        t0 = time.monotonic()
        try:
            r = self.http.request(req.method, self.client_url + req.path, headers=headers, content=body)
        except httpx.HTTPError as exc:
            return Answer(None, httpx.Headers(), None, "", time.monotonic() - t0, rid, type(exc).__name__)
        raw = self.adapter.answer(call, RawResponse(r.status_code, r.headers, r.content))
        seconds = time.monotonic() - t0
        try:
            data = orjson.loads(raw.body) if raw.body else None
        except orjson.JSONDecodeError:
            data = None
        return Answer(raw.status, httpx.Headers(dict(raw.headers)), data, raw.body[:300].decode(errors="replace"),
                      seconds, rid)

    # -- judging -------------------------------------------------------------------------------------
    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        self.report_probes.append(Probe(name, ok, "" if ok else detail))
        return ok

    def expect(self, name: str, a: Answer, status: int | tuple[int, ...], code: str | None = None) -> bool:
        """The answer has this status (and problem code), is well formed, echoes the request id, on time."""
        statuses = (status,) if isinstance(status, int) else status
        if a.status is None:
            return self.record(name, False, f"no answer ({a.error}) for request {a.sent_request_id}")
        if a.status not in statuses:
            return self.record(name, False, f"expected {'/'.join(map(str, statuses))}"
                               f"{' ' + code if code else ''}, got {a.status} {a.code or a.text[:120]!r} "
                               f"(request {a.sent_request_id})")
        if code is not None and a.code != code:
            return self.record(name, False, f"expected code {code}, got {a.code!r} (request {a.sent_request_id})")
        problems = self._shape_problems(a, expect_problem=code is not None)
        if problems:
            return self.record(name, False, f"{problems} (status {a.status}, request {a.sent_request_id})")
        return self.record(name, True)

    def _shape_problems(self, a: Answer, *, expect_problem: bool) -> str:
        echoed = a.headers.get("x-request-id")
        if echoed != a.sent_request_id:
            return f"X-Request-ID not echoed (sent {a.sent_request_id}, got {echoed!r})"
        if a.seconds > DEADLINE_S + DEADLINE_SLACK_S:
            return f"answered in {a.seconds:.1f} s, beyond the {DEADLINE_S:.0f} s deadline"
        if not expect_problem:
            return ""
        media = (a.headers.get("content-type") or "").split(";")[0].strip().lower()
        if media != PROBLEM_CONTENT_TYPE:
            return f"content type {media or 'none'!r}, not {PROBLEM_CONTENT_TYPE}"
        p = a.data if isinstance(a.data, dict) else {}
        missing = [m for m in PROBLEM_MEMBERS if m not in p]
        if missing:
            return f"problem+json lacks {', '.join(missing)}"
        entry = CATALOG.get(p["code"])
        if entry is None:
            return f"code {p['code']!r} is not in the contract's catalog"
        if p["status"] != a.status or entry.status != a.status:
            return f"status member {p['status']} / HTTP {a.status}, catalog says {entry.status} for {p['code']}"
        if p["retryable"] is not entry.retryable:
            return f"retryable {p['retryable']!r}, catalog says {entry.retryable} for {p['code']}"
        if p["request_id"] != a.sent_request_id:
            return f"request_id member {p['request_id']!r} is not the request's id {a.sent_request_id}"
        leak = find_leak(orjson.dumps(p).decode())
        if leak:
            return f"leaks internals ({leak})"
        return ""

    def admin_call(self, name: str, fn: Callable[[], Any], check: Callable[[Any], str]) -> Any:
        try:
            value = fn()
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            self.record(name, False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None
        problem = check(value)
        self.record(name, not problem, problem)
        return value


def probe_contract(p: Prober, *, deadline_fault: Callable[[], Any] | None = None) -> list[Probe]:
    """Run every probe; stops after a fatal one fails (nothing else can be exercised)."""
    tag = uuid.uuid4().hex[:8]
    a_user, b_user, pw, pin = f"conf-a-{tag}", f"conf-b-{tag}", "pw-conformance-1", "123456"

    # fatal: register, login, deposit ---------------------------------------------------------------
    r = p.send("register", {"username": a_user, "password": pw, "pin": pin})
    if not p.expect("register", r, 201) or not isinstance((r.data or {}).get("account_id"), str):
        if p.report_probes[-1].ok:
            p.report_probes[-1] = Probe("register", False, "201 without an account_id")
        return p.report_probes
    acct_a = r.data["account_id"]
    r = p.send("login", {"username": a_user, "password": pw})
    if not p.expect("login", r, 200) or not isinstance((r.data or {}).get("token"), str):
        if p.report_probes[-1].ok:
            p.report_probes[-1] = Probe("login", False, "200 without a token")
        return p.report_probes
    tok_a = r.data["token"]
    key = str(uuid.uuid4())
    dep = p.send("deposit", {"account_id": acct_a, "amount": 10_000}, token=tok_a, key=key)
    if not p.expect("deposit", dep, 201):
        return p.report_probes
    txn_a = (dep.data or {}).get("transaction_id")

    # idempotency ------------------------------------------------------------------------------------
    again = p.send("deposit", {"account_id": acct_a, "amount": 10_000}, token=tok_a, key=key)
    if p.expect("idempotent-replay", again, 201):
        if (again.data or {}).get("transaction_id") != txn_a:
            p.report_probes[-1] = Probe("idempotent-replay", False, f"replay of key {key} answered transaction "
                                        f"{(again.data or {}).get('transaction_id')}, the first was {txn_a}")
    bal = p.send("balance", {"account_id": acct_a}, token=tok_a)
    if p.expect("balance", bal, 200):
        got = (bal.data or {}).get("balance")
        if got != 10_000:
            p.report_probes[-1] = Probe("balance", False, f"balance {got!r} after one deposit of 10000 and its "
                                        f"replay (key {key}): the replay was applied again or lost")
    p.expect("key-reuse", p.send("deposit", {"account_id": acct_a, "amount": 1}, token=tok_a, key=key),
             409, "IDEMPOTENCY_KEY_REUSED")
    p.expect("key-missing", p.send("deposit", {"account_id": acct_a, "amount": 1}, token=tok_a),
             400, "IDEMPOTENCY_KEY_MISSING")
    look = p.send("lookup", {"idempotency_key": key}, token=tok_a)
    if p.expect("lookup-by-key", look, 200) and (look.data or {}).get("transaction_id") != txn_a:
        p.report_probes[-1] = Probe("lookup-by-key", False, f"key {key} looked up as "
                                    f"{(look.data or {}).get('transaction_id')}, the deposit was {txn_a}")
    p.expect("lookup-unknown-key", p.send("lookup", {"idempotency_key": str(uuid.uuid4())}, token=tok_a),
             404, "TRANSACTION_NOT_FOUND")

    # auth -------------------------------------------------------------------------------------------
    p.expect("no-token", p.send("balance", {"account_id": acct_a}), 401, "UNAUTHENTICATED")
    p.expect("bad-token", p.send("balance", {"account_id": acct_a}, token="not-a-token"), 401, "UNAUTHENTICATED")
    p.expect("wrong-password", p.send("login", {"username": a_user, "password": "wrong-password"}),
             401, "INVALID_CREDENTIALS")
    p.expect("username-taken", p.send("register", {"username": a_user, "password": pw, "pin": pin}),
             409, "USERNAME_TAKEN")

    # ownership ----------------------------------------------------------------------------------------
    rb = p.send("register", {"username": b_user, "password": pw, "pin": pin})
    lb = p.send("login", {"username": b_user, "password": pw}) if rb.status == 201 else rb
    if p.expect("second-user", lb, 200) and isinstance((lb.data or {}).get("token"), str):
        tok_b, acct_b = lb.data["token"], rb.data["account_id"]
        p.expect("foreign-account-read", p.send("balance", {"account_id": acct_a}, token=tok_b),
                 404, "ACCOUNT_NOT_FOUND")
        p.expect("foreign-account-debit",
                 p.send("transfer", {"from_account_id": acct_a, "to_account_id": acct_b, "amount": 100, "pin": pin},
                        token=tok_b, key=str(uuid.uuid4())), 404, "ACCOUNT_NOT_FOUND")
        if txn_a:
            p.expect("foreign-transaction", p.send("transaction", {"transaction_id": txn_a}, token=tok_b),
                     404, "TRANSACTION_NOT_FOUND")
        tr = p.send("transfer", {"from_account_id": acct_a, "to_account_id": acct_b, "amount": 100, "pin": pin},
                    token=tok_a, key=str(uuid.uuid4()))
        p.expect("transfer", tr, 201)

    # money rules ------------------------------------------------------------------------------------
    p.expect("wrong-pin", p.send("withdraw", {"account_id": acct_a, "amount": 10, "pin": "000000" if pin != "000000"
                                              else "111111"}, token=tok_a, key=str(uuid.uuid4())), 403, "INVALID_PIN")
    p.expect("overdraft", p.send("withdraw", {"account_id": acct_a, "amount": 10**9, "pin": pin}, token=tok_a,
                                 key=str(uuid.uuid4())), 409, "INSUFFICIENT_FUNDS")
    p.expect("bad-amount", p.send("deposit", {"account_id": acct_a, "amount": -5}, token=tok_a,
                                  key=str(uuid.uuid4())), 422, "VALIDATION_ERROR")
    p.expect("withdraw", p.send("withdraw", {"account_id": acct_a, "amount": 100, "pin": pin}, token=tok_a,
                                key=str(uuid.uuid4())), (201, 202))
    hist = p.send("history", {"account_id": acct_a, "limit": 10}, token=tok_a)
    if p.expect("history", hist, 200):
        items = (hist.data or {}).get("items")
        if not isinstance(items, list) or txn_a not in {t.get("transaction_id") for t in items if isinstance(t, dict)}:
            p.report_probes[-1] = Probe("history", False, f"history of {acct_a} lacks its deposit {txn_a}")

    # admin API the checks need ------------------------------------------------------------------------
    ad = p.adapter

    def _export_ok(ex: Any) -> str:
        if not isinstance(ex, dict) or not {"accounts", "transactions"} <= ex.keys():
            return "export lacks accounts/transactions"
        if acct_a not in {a.get("account_id") for a in ex["accounts"]}:
            return f"export lacks account {acct_a}"
        if txn_a and txn_a not in {t.get("transaction_id") for t in ex["transactions"]}:
            return f"export lacks transaction {txn_a}"
        return ""

    p.admin_call("admin-export", lambda: ad.export(p.admin), _export_ok)
    p.admin_call("admin-audit", lambda: ad.audit(p.admin),
                 lambda au: "" if isinstance(au, dict) and "total_balance" in au else "audit lacks total_balance")
    p.admin_call("admin-reconcile", lambda: ad.reconcile(p.admin),
                 lambda rc: "" if isinstance(rc, dict) and {"resolved", "still_pending"} <= rc.keys()
                 else "reconcile answer lacks resolved/still_pending")
    try:
        ad.audit(Admin(p.admin.http, "wrong-admin-token"))
        p.record("admin-auth", False, "the admin API answered GET audit with a wrong admin token")
    except httpx.HTTPStatusError as exc:
        refused = exc.response.status_code in (401, 403)
        p.record("admin-auth", refused, f"a wrong admin token got {exc.response.status_code}, not 401/403")
    except httpx.HTTPError as exc:
        p.record("admin-auth", False, f"{type(exc).__name__} with a wrong admin token")

    # deadline -----------------------------------------------------------------------------------------
    if deadline_fault is not None:
        with deadline_fault():
            slow = p.send("balance", {"account_id": acct_a}, token=tok_a)
        if slow.status is None or slow.seconds > DEADLINE_S + DEADLINE_SLACK_S:
            p.record("deadline", False, f"with the database stalled, a balance read took {slow.seconds:.1f} s "
                     f"({slow.status or slow.error}); the contract's deadline is {DEADLINE_S:.0f} s")
        else:
            p.expect("deadline", slow, (200, 503), "DATABASE_UNAVAILABLE" if slow.status == 503 else None)
    return p.report_probes


def run_conformance(target: Target, *, backend: str = "process", workdir=None, wallet_env=None,
                    deadline: bool = True, cancel=None) -> ConformanceReport:
    """Start the target (or reach it, url mode), probe it, tear down."""
    import contextlib
    import shutil
    import tempfile
    from pathlib import Path

    from walletchaos.topology.base import make_topology

    tmp = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="walletchaos-conformance-"))
    options = {} if target.mode == "url" else {"wallet_env": dict(wallet_env or {})}
    topo = make_topology(backend, tmp / "stack", target=target, **options)
    topo.cancel = cancel  # a signal to the harness during the start stops what was started
    report = ConformanceReport(target.name)
    prober = None
    try:
        topo.start()
        prober = Prober(target_adapter(target), topo.wallet_url, topo.wallet_origin_url, topo.admin_token)
        fault = None
        if deadline and "wallet_db" in topo.toxiproxy().proxies():
            @contextlib.contextmanager
            def fault():
                tp = topo.toxiproxy()
                tp.add_toxic("wallet_db", "timeout", stream="upstream", toxicity=1.0,
                             attributes={"timeout": 0}, name="conformance-stall")
                try:
                    yield
                finally:
                    tp.remove_toxic("wallet_db", "conformance-stall")
        report.probes = probe_contract(prober, deadline_fault=fault)
    finally:
        if prober is not None:
            prober.close()
        topo.stop()
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return report
