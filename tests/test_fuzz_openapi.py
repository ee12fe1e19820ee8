"""Property-based fuzzing of the live wallet (real PostgreSQL, real gateway, real HTTP) from its /openapi.json.

Two generators, schemathesis 3.x for both:

* **stateless** — every operation, positive and negative data, with a valid user token on /v1 and the admin
  token on /admin so authenticated paths are exercised;
* **stateful** — a hypothesis state machine (make_machine) whose every call is a schemathesis case of the
  same OpenAPI, aimed at the accounts and transactions the run made: two funded accounts, then in turn
  deposit + withdrawal + transfer, balance reads (exact, read-your-writes), key replay and reuse,
  freeze → deposit refused → unfreeze, transaction reads by id and by key, history, login, register.
  The right token, mostly the right PIN and a payable amount (a quarter of them left as generated), a
  fresh unique Idempotency-Key.

Every response is judged by schemathesis' own conformance checks against the wallet's OpenAPI (status code,
content type, response schema — 2xx bodies included) and by `contract_conformance`, whose oracle is the
CONTRACT: walletchaos/checks/catalog.py (the harness's copy of CONTRACT.md § Error catalog) and the success
statuses / members of CONTRACT.md § Endpoints — never mock_wallet's own catalog.

Every call that the harness's history format knows (register, login, money writes, reads) is also recorded
as a history op (walletchaos.client.classify). After fuzzing, the books are read back (reconcile, export,
gateway records) and (1) GET /admin/audit must balance, (2) the harness's own invariant checkers
(walletchaos.checks.CHECKS) must all pass on the fuzz history — conservation, exactly-once against the
gateway's records, durability of every acknowledged write, no phantoms, ledger, no overdraft, clear errors.

Counts (cases by mode, operation and status) are printed and recorded as JUnit properties:
`pytest -s tests/test_fuzz_openapi.py` shows them.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from schemathesis import DataGenerationMethod
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)
from hypothesis.stateful import run_state_machine_as_test

from tests.wallet_fixtures import ADMIN_TOKEN, PIN, WalletStack, start_stack
from walletchaos.checks import CHECKS
from walletchaos.checks.base import CheckContext
from walletchaos.checks.catalog import CATALOG, PROBLEM_CONTENT_TYPE, PROBLEM_MEMBERS
from walletchaos.checks.clear_errors import RETRY_AFTER_CODES, find_leak  # codes that set Retry-After
from walletchaos.client import classify
from walletchaos.history import WRITE_KINDS, new_op
from walletchaos.reconcile import collect_final_state
from walletchaos.verdict import run_checks

pytestmark = pytest.mark.slow
schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI emits OpenAPI 3.1

STATELESS_EXAMPLES = 30   # per operation (operations without parameters need only one)
STATEFUL_EXAMPLES = 60    # state machine runs ...
STATEFUL_STEPS = 12       # ... of up to this many calls each
MIN_CASES = 1000          # generated calls in total (stateless + stateful)
MIN_STATEFUL_CASES = 400
MIN_MONEY_2XX = 50        # stateful deposits/withdrawals/transfers answered 2xx

# --- the contract (CONTRACT.md § Endpoints): success statuses and members per operation ----------------------
TRANSACTION = frozenset({"transaction_id", "kind", "status", "amount", "from_account_id", "to_account_id",
                         "idempotency_key", "created_at", "failure_code"})
CONTRACT_SUCCESS: dict[str, tuple[frozenset[int], frozenset[str]]] = {
    "POST /v1/users": (frozenset({201}), frozenset({"user_id", "account_id"})),
    "POST /v1/sessions": (frozenset({200}), frozenset({"token", "expires_at"})),
    "GET /v1/accounts/{account_id}": (frozenset({200}), frozenset({"account_id", "balance", "currency", "status"})),
    "GET /v1/accounts/{account_id}/transactions": (frozenset({200}), frozenset({"items", "next_cursor"})),
    "POST /v1/deposits": (frozenset({201, 202}), TRANSACTION),
    "POST /v1/withdrawals": (frozenset({201, 202}), TRANSACTION),
    "POST /v1/transfers": (frozenset({201}), TRANSACTION),
    "GET /v1/transactions/{transaction_id}": (frozenset({200}), TRANSACTION),
    "GET /v1/transactions": (frozenset({200}), TRANSACTION),
    "POST /admin/maintenance": (frozenset({200}), frozenset()),
    "POST /admin/accounts/{account_id}/freeze": (frozenset({200}), frozenset()),
    "POST /admin/accounts/{account_id}/unfreeze": (frozenset({200}), frozenset()),
    "POST /admin/reconcile": (frozenset({200}), frozenset({"resolved", "still_pending"})),
    "GET /admin/audit": (frozenset({200}), frozenset({
        "accounts", "total_balance", "ledger_total", "external_in", "external_out", "pending_count",
        "negative_accounts", "mismatched_accounts", "unbalanced_transactions"})),
    "GET /healthz": (frozenset({200}), frozenset()),
    "GET /readyz": (frozenset({200}), frozenset()),
    "GET /admin/export": (frozenset({200}), frozenset()),  # beyond the contract ("extra endpoints are yours")
}
# history kind of each operation (walletchaos/history.py KINDS); the others are not part of the history format
KIND_OF = {"POST /v1/users": "register", "POST /v1/sessions": "login", "POST /v1/deposits": "deposit",
           "POST /v1/withdrawals": "withdrawal", "POST /v1/transfers": "transfer",
           "GET /v1/accounts/{account_id}": "balance", "GET /v1/accounts/{account_id}/transactions": "history",
           "GET /v1/transactions/{transaction_id}": "lookup", "GET /v1/transactions": "lookup"}
# codes a fuzzer provokes on purpose beyond the client errors the checkers always allow
FUZZ_ALLOWED_CODES = frozenset({"UNAUTHENTICATED", "IDEMPOTENCY_KEY_MISSING", "MAINTENANCE"})


def contract_conformance(ctx: Any, response: Any, case: Any) -> None:
    """The response as CONTRACT.md wants it: a request id always; a 2xx status and members the contract
    names for this operation; every error an RFC 9457 problem with a catalog code, its status and
    retryable flag, the response's request id, Retry-After where the catalog says so, no leaked internals."""
    op = f"{case.method.upper()} {case.operation.path}"
    status = response.status_code
    rid = response.headers.get("x-request-id")
    assert rid, f"{op} {status}: no X-Request-ID"
    assert status != 500, f"{op}: 500 {response.text[:300]}"
    if 200 <= status < 300:
        statuses, members = CONTRACT_SUCCESS[op]
        assert status in statuses, f"{op}: {status} is not a success status of the contract ({sorted(statuses)})"
        if members:
            body = response.json()
            missing = members - body.keys()
            assert not missing, f"{op} {status}: contract members {sorted(missing)} missing in {body}"
        return
    ctype = response.headers.get("content-type", "")
    assert ctype.split(";")[0].strip() == PROBLEM_CONTENT_TYPE, f"{op} {status}: content-type {ctype!r}"
    body = response.json()
    assert isinstance(body, dict), f"{op} {status}: problem body is not an object: {response.text[:200]}"
    missing = [m for m in PROBLEM_MEMBERS if body.get(m) in (None, "")]
    assert not missing, f"{op} {status}: problem members {missing} missing in {body}"
    entry = CATALOG.get(body["code"])
    assert entry is not None, f"{op} {status}: code {body['code']!r} is not in the contract's catalog"
    assert entry.status == status == body["status"], f"{op}: {body['code']} answered {status}, contract {entry.status}"
    assert body["retryable"] is entry.retryable, f"{op}: {body['code']} retryable {body['retryable']}"
    assert body["request_id"] == rid, f"{op}: problem request_id {body['request_id']!r} != header {rid!r}"
    if body["code"] in RETRY_AFTER_CODES:
        assert response.headers.get("retry-after", "").isdigit(), f"{op}: {body['code']} without Retry-After"
    leak = find_leak(response.text)
    assert leak is None, f"{op} {status}: leaks {leak!r}: {response.text[:300]}"


FUZZ_CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
               contract_conformance)


# --- what the fuzzing did: counts, the users it made, the history it leaves for the checkers -------------------
@dataclass
class Owner:
    username: str
    password: str
    pin: str
    account_id: str
    token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass
class FuzzLog:
    cases: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (mode, "METHOD path", status)
    owners: dict[str, Owner] = field(default_factory=dict)                # account_id → who owns it
    by_username: dict[str, Owner] = field(default_factory=dict)
    txn_owner: dict[str, Owner] = field(default_factory=dict)             # transaction id → whose it is
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def total(self, mode: str | None = None) -> int:
        return sum(n for (m, _, _), n in self.cases.items() if mode is None or m == mode)

    def by_status(self, mode: str | None = None) -> Counter[int]:
        out: Counter[int] = Counter()
        for (m, _, status), n in self.cases.items():
            if mode is None or m == mode:
                out[status] += n
        return out

    def money_2xx(self, mode: str) -> int:
        return sum(n for (m, op, status), n in self.cases.items()
                   if m == mode and KIND_OF.get(op) in WRITE_KINDS and 200 <= status < 300)

    def record(self, mode: str | None, method: str, path: str, headers: dict[str, str], body: Any,
               invoke_ts: float, response: requests.Response, params: dict[str, Any] | None = None) -> None:
        """Count the call (mode None: a helper call, not a generated case) and append its history op.
        `params`: the case's path and query parameters, recorded in the op's args as walletchaos.client does
        (account_id of a read, limit / cursor of a page: what the read and authorization checks judge by)."""
        op = f"{method.upper()} {path}"
        if mode is not None:
            self.cases[(mode, op, response.status_code)] += 1
        kind = KIND_OF.get(op)
        if kind is None:
            return
        outcome, fields = classify(kind, response.status_code, response.headers.get("content-type"),
                                   response.content, None, request_id=response.headers.get("x-request-id"))
        key = headers.get("Idempotency-Key") if kind in WRITE_KINDS else None
        args = {**(params or {}), **(body if isinstance(body, dict) else {})}
        args.pop("pin", None)
        args.pop("password", None)
        account_id = fields.pop("account_id", None) or args.get("account_id") or args.get("from_account_id")
        items = fields.pop("items", None)
        # owner_user, as walletchaos.client records it: the name a register / login acts as, else the session's
        # user (whose token was sent); the security checks judge who did what by it
        name = args.get("username")
        actor = name if kind in ("register", "login") and isinstance(name, str) else self.token_owner(headers)
        op = new_op(
            f"fuzz-{len(self.history)}", kind, invoke_ts, worker="fuzz", user=str(args.get("username", "")),
            args=args, idempotency_key=key if isinstance(key, str) else None,
            account_id=account_id if isinstance(account_id, str) else None,
            complete_ts=time.time(), outcome=outcome, retry_after=response.headers.get("retry-after"),
            owner_user=actor, **fields)
        if kind == "history":
            op["items"] = items
        self.history.append(op)

    def token_owner(self, headers: dict[str, str]) -> str | None:
        """Username of the fuzzer's user whose bearer token `headers` carry (None: no or unknown token)."""
        sent = headers.get("Authorization")
        return next((o.username for o in self.by_username.values() if o.token and sent == f"Bearer {o.token}"), None)

    def owner_of_case(self, case: Any) -> Owner | None:
        """The user whose account (or transaction) the case addresses, if the fuzzer made it."""
        body = case.body if isinstance(case.body, dict) else {}
        path = case.path_parameters or {}
        for account_id in (path.get("account_id"), body.get("account_id"), body.get("from_account_id")):
            if isinstance(account_id, str) and account_id in self.owners:
                return self.owners[account_id]
        txn_id = path.get("transaction_id")
        return self.txn_owner.get(txn_id) if isinstance(txn_id, str) else None


FUZZ = FuzzLog()


def send(stack: WalletStack, method: str, path: str, *, headers: dict[str, str] | None = None,
         json: Any = None) -> requests.Response:
    """A helper call of the fuzzer itself (setup, logins): recorded in the history, not counted as a case."""
    headers = headers or {}
    t0 = time.time()
    response = requests.request(method, stack.url + path, headers=headers, json=json, timeout=10)
    FUZZ.record(None, method, path, headers, json, t0, response)
    return response


def case_params(case: Any) -> dict[str, Any]:
    """A schemathesis case's path and query parameters."""
    return {**(case.path_parameters or {}), **(case.query or {})}


def new_owner(stack: WalletStack, username: str, password: str, pin: str, account_id: str) -> Owner:
    owner = Owner(username, password, pin, account_id)
    r = send(stack, "POST", "/v1/sessions", json={"username": username, "password": password})
    if r.status_code == 200:
        owner.token = r.json()["token"]
    FUZZ.owners[account_id] = FUZZ.by_username[username] = owner
    return owner


# --- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[WalletStack]:
    # generated wrong PINs lock accounts; the lockout outlasts the run so a state machine run never sees one expire
    yield from start_stack("fuzz", WALLET_GATEWAY_TIMEOUT_S="1.0", WALLET_LOCKOUT_S="300")


@pytest.fixture(scope="module")
def fuzz_user(fuzz_stack) -> Owner:
    """The stateless fuzzer's user, funded through recorded calls (the checkers see every deposit)."""
    username, password = "fuzz" + uuid.uuid4().hex[:8], "pw-fuzz"
    r = send(fuzz_stack, "POST", "/v1/users", json={"username": username, "password": password, "pin": PIN})
    assert r.status_code == 201, r.text
    owner = new_owner(fuzz_stack, username, password, PIN, r.json()["account_id"])
    r = send(fuzz_stack, "POST", "/v1/deposits", json={"account_id": owner.account_id, "amount": 10_000},
             headers={**owner.headers, "Idempotency-Key": uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    return owner


def integer_bounds_inclusive(node: Any) -> Any:
    """OpenAPI 3.1's numeric `exclusiveMinimum: 0` on an integer is `minimum: 1`. Same meaning; schemathesis
    3.x's negative mutations read exclusiveMinimum the 3.0 way (a flag next to `minimum`) and crash on it."""
    if isinstance(node, list):
        return [integer_bounds_inclusive(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: integer_bounds_inclusive(v) for k, v in node.items()}
    if out.get("type") == "integer" and isinstance(out.get("exclusiveMinimum"), (int, float)) \
            and not isinstance(out["exclusiveMinimum"], bool) and "minimum" not in out:
        out["minimum"] = math.floor(out.pop("exclusiveMinimum")) + 1
    return out


def without_key_header(raw: dict[str, Any]) -> dict[str, Any]:
    """The schema minus the optional Idempotency-Key header parameter, for the state machine (which sends
    its own keys): schemathesis rejects ~30% of its generated values for that header, and every rejected
    draw inside a state machine run throws the whole run away after its HTTP calls."""
    for item in raw["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "parameters" in operation:
                operation["parameters"] = [p for p in operation["parameters"] if p.get("name") != "Idempotency-Key"]
    return raw


def load_schema(stack: WalletStack, *, own_keys: bool = False, **kwargs: Any) -> Any:
    raw = integer_bounds_inclusive(requests.get(stack.url + "/openapi.json", timeout=10).json())
    return schemathesis.from_dict(without_key_header(raw) if own_keys else raw, base_url=stack.url, **kwargs)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_stack):
    return load_schema(fuzz_stack, data_generation_methods=[DataGenerationMethod.positive,
                                                            DataGenerationMethod.negative])


def _auth_for(stack: WalletStack, case: Any, fallback: Owner | None) -> dict[str, str]:
    if case.operation.path.startswith("/admin"):
        return stack.admin
    owner = FUZZ.owner_of_case(case) or fallback
    return owner.headers if owner is not None else {}


def _after_maintenance(stack: WalletStack, case: Any) -> None:
    """A generated POST /admin/maintenance may switch maintenance on: switch it off for the next case."""
    if case.operation.path == "/admin/maintenance":
        send(stack, "POST", "/admin/maintenance", json={"enabled": False}, headers=stack.admin)


# --- 1. stateless ----------------------------------------------------------------------------------------------
schema = schemathesis.from_pytest_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=STATELESS_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
          phases=[Phase.explicit, Phase.generate])
def test_stateless_fuzz_conforms(case, fuzz_stack, fuzz_user):
    FUZZ.seconds.setdefault("stateless_start", time.monotonic())
    headers = _auth_for(fuzz_stack, case, fuzz_user)
    t0 = time.time()
    try:
        response = case.call(headers=headers, timeout=10)
    except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
        return  # the client library refused to send a generated header; nothing reached the wallet
    FUZZ.record("stateless", case.method, case.operation.path, {**(case.headers or {}), **headers}, case.body, t0,
                response, case_params(case))
    _after_maintenance(fuzz_stack, case)
    case.validate_response(response, checks=FUZZ_CHECKS)


# --- 2. stateful: a state machine over the money workflow ------------------------------------------------------
def make_machine(schema: Any, stack: WalletStack) -> type[RuleBasedStateMachine]:
    """A hypothesis state machine whose every call is a schemathesis case of the wallet's own OpenAPI
    (generated body, query and headers), aimed by the rules at accounts and transactions this run made:
    register → login / deposit / withdrawal / transfer / reads, transactions → reads / replays / key reuse,
    freeze → money ops refused → unfreeze.

    (Why not schemathesis 3.x's own state machine over OpenAPI links: it keeps one rule per target operation
    and status, so links into one operation from several sources overwrite each other, and with the
    hypothesis pinned here (6.170) its results never reach the link bundles, since hypothesis renamed the
    `_add_result_to_targets` hook it overrides — no link was ever followed.)

    Hypothesis calls a run flaky when the same choices meet a different answer, so a step may depend only
    on the generated data and this run's own earlier answers: usernames get a unique suffix, idempotency
    keys are fresh unless a rule replays one of this run, counterparties are this run's accounts."""
    def strategy(method: str, path: str) -> Any:
        return schema[path][method].as_strategy()

    def call(case: Any, owner: Owner | None) -> requests.Response:
        headers = stack.admin if case.operation.path.startswith("/admin") else (owner.headers if owner else {})
        t0 = time.time()
        response = case.call(headers=headers, timeout=10)
        FUZZ.record("stateful", case.method, case.operation.path, {**(case.headers or {}), **headers}, case.body,
                    t0, response, case_params(case))
        case.validate_response(response, checks=FUZZ_CHECKS)
        return response

    def money(case: Any, key: str | None = None) -> Any:
        case.headers = {**(case.headers or {}), "Idempotency-Key": key or uuid.uuid4().hex}
        return case

    def keep_pin(case: Any) -> bool:
        """Deterministic 'mostly': a quarter of the generated PINs are sent as generated (wrong)."""
        amount = case.body.get("amount")
        return isinstance(amount, int) and amount % 4 == 3

    def spendable(case: Any, balances: dict[str, int], account: str) -> None:
        """Mostly an amount the account can pay (this run knows its balances), else the generated one."""
        if not keep_pin(case) and balances.get(account, 0) > 0:
            case.body["amount"] = 1 + case.body["amount"] % balances[account]

    class Money(RuleBasedStateMachine):
        """One rule, `act`: each step is the next action of ACTIONS (in turn), its data generated. Hypothesis'
        own choice among many rules favoured a few of them so heavily that withdrawals and transfers stayed
        rare, and with preconditions it threw away most runs after their HTTP calls."""

        # money first: hypothesis ends many runs after a few steps, so the early turns run most
        ACTIONS = ("fund_and_spend", "balance", "spend", "reuse_key", "freeze_refuses_money", "get_txn", "by_key",
                   "history", "login", "register", "spend", "fund_and_spend")

        def __init__(self) -> None:
            super().__init__()
            self.accounts: list[str] = []        # registered in this run
            self.txns: list[dict[str, Any]] = []  # 201/202 transactions of this run
            self.balances: dict[str, int] = {}   # this run's accounts, from the 201s it got
            self.turn = 0

        def pick(self, data: Any, items: list[Any]) -> Any:
            return items[data.draw(st.integers(0, len(items) - 1))]

        def _moved(self, r: requests.Response, src: str | None, dst: str | None) -> None:
            if r.status_code == 201:
                amount = r.json()["amount"]
                if src:
                    self.balances[src] = self.balances.get(src, 0) - amount
                if dst:
                    self.balances[dst] = self.balances.get(dst, 0) + amount

        def _txn(self, r: requests.Response, owner: Owner) -> None:
            if r.status_code in (201, 202):
                txn = r.json()
                FUZZ.txn_owner[txn["transaction_id"]] = owner
                self.txns.append(txn)

        @initialize(data=st.data())
        def two_funded_accounts(self, data: Any) -> None:
            """Every run starts with two funded accounts, so transfers have a counterparty."""
            for _ in range(2):
                self.register(data)
                if self.accounts:
                    self.deposit(data, self.accounts[-1])

        @rule(data=st.data())
        def act(self, data: Any) -> None:
            action = self.ACTIONS[self.turn % len(self.ACTIONS)]
            self.turn += 1
            if not self.accounts:
                action = "register"
            elif not self.txns and action in ("reuse_key", "get_txn", "by_key"):
                action = "fund_and_spend"
            getattr(self, action)(data)

        # --- the actions: each draws schemathesis cases and aims them at this run's accounts/transactions
        def register(self, data: Any) -> None:
            case = data.draw(strategy("POST", "/v1/users"))
            case.body["username"] = case.body["username"][:40] + "-" + uuid.uuid4().hex[:12]
            r = call(case, None)
            if r.status_code == 201:
                owner = new_owner(stack, case.body["username"], case.body["password"], case.body["pin"],
                                  r.json()["account_id"])
                self.accounts.append(owner.account_id)

        def login(self, data: Any) -> None:
            owner = FUZZ.owners[self.pick(data, self.accounts)]
            case = data.draw(strategy("POST", "/v1/sessions"))
            case.body.update(username=owner.username, password=owner.password)
            r = call(case, None)
            if r.status_code == 200:
                owner.token = r.json()["token"]

        def deposit(self, data: Any, account: str) -> None:
            case = data.draw(strategy("POST", "/v1/deposits"))
            case.body["account_id"] = account
            r = call(money(case), FUZZ.owners[account])
            self._moved(r, None, account)
            self._txn(r, FUZZ.owners[account])

        def withdraw(self, data: Any, account: str) -> None:
            owner = FUZZ.owners[account]
            case = data.draw(strategy("POST", "/v1/withdrawals"))
            case.body["account_id"] = account
            spendable(case, self.balances, account)
            if not keep_pin(case):
                case.body["pin"] = owner.pin
            r = call(money(case), owner)
            self._moved(r, account, None)
            self._txn(r, owner)

        def transfer(self, data: Any, src: str) -> None:
            owner = FUZZ.owners[src]
            case = data.draw(strategy("POST", "/v1/transfers"))
            others = [a for a in self.accounts if a != src]
            # mostly another account of this run; else the generated one (unknown → 404, or src → 422)
            dst = src if keep_pin(case) or not others else others[case.body["amount"] % len(others)]
            case.body.update(from_account_id=src, to_account_id=dst)
            spendable(case, self.balances, src)
            if not keep_pin(case):
                case.body["pin"] = owner.pin
            r = call(money(case), owner)
            self._moved(r, src, dst)
            self._txn(r, owner)

        def fund_and_spend(self, data: Any) -> None:
            account = self.pick(data, self.accounts)
            self.deposit(data, account)
            self.withdraw(data, account)
            self.transfer(data, account)

        def spend(self, data: Any) -> None:
            account = self.pick(data, self.accounts)
            self.withdraw(data, account)
            self.transfer(data, account)

        def reuse_key(self, data: Any) -> None:
            """The same key again: the same body replays the outcome, another body is IDEMPOTENCY_KEY_REUSED."""
            txn = self.pick(data, self.txns)
            same_body = data.draw(st.booleans())
            owner = FUZZ.txn_owner[txn["transaction_id"]]
            case = data.draw(strategy("POST", "/v1/deposits"))
            case.body["account_id"] = txn["to_account_id"] or txn["from_account_id"]
            replay = same_body and txn["kind"] == "deposit"
            if replay:
                case.body["amount"] = txn["amount"]
            elif txn["kind"] == "deposit" and case.body["amount"] == txn["amount"]:
                case.body["amount"] += 1
            r = call(money(case, txn["idempotency_key"]), owner)
            if replay and txn["status"] == "succeeded":
                assert r.status_code == 201 and r.json()["transaction_id"] == txn["transaction_id"], r.text
            elif not replay:
                assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_KEY_REUSED", r.text

        def balance(self, data: Any) -> None:
            account = self.pick(data, self.accounts)
            case = data.draw(strategy("GET", "/v1/accounts/{account_id}"))
            case.path_parameters = {"account_id": account}
            r = call(case, FUZZ.owners[account])
            assert r.status_code != 200 or r.json()["balance"] == self.balances.get(account, 0), (r.text, account)

        def history(self, data: Any) -> None:
            account = self.pick(data, self.accounts)
            case = data.draw(strategy("GET", "/v1/accounts/{account_id}/transactions"))
            case.path_parameters = {"account_id": account}
            call(case, FUZZ.owners[account])

        def get_txn(self, data: Any) -> None:
            txn = self.pick(data, self.txns)
            case = data.draw(strategy("GET", "/v1/transactions/{transaction_id}"))
            case.path_parameters = {"transaction_id": txn["transaction_id"]}
            r = call(case, FUZZ.txn_owner[txn["transaction_id"]])
            assert r.status_code == 200 and r.json()["amount"] == txn["amount"], r.text

        def by_key(self, data: Any) -> None:
            txn = self.pick(data, self.txns)
            case = data.draw(strategy("GET", "/v1/transactions"))
            case.query = {"idempotency_key": txn["idempotency_key"]}
            r = call(case, FUZZ.txn_owner[txn["transaction_id"]])
            assert r.status_code == 200 and r.json()["transaction_id"] == txn["transaction_id"], r.text

        def freeze_refuses_money(self, data: Any) -> None:
            account = self.pick(data, self.accounts)
            freeze = data.draw(strategy("POST", "/admin/accounts/{account_id}/freeze"))
            unfreeze = data.draw(strategy("POST", "/admin/accounts/{account_id}/unfreeze"))
            freeze.path_parameters = unfreeze.path_parameters = {"account_id": account}
            assert call(freeze, None).status_code == 200
            deposit = data.draw(strategy("POST", "/v1/deposits"))
            deposit.body["account_id"] = account
            r = call(money(deposit), FUZZ.owners[account])
            assert r.status_code == 403 and r.json()["code"] == "ACCOUNT_FROZEN", r.text
            assert call(unfreeze, None).status_code == 200

    return Money


def test_stateful_fuzz_reaches_the_money_paths(fuzz_stack, fuzz_user, record_property):
    machine = make_machine(load_schema(fuzz_stack, own_keys=True), fuzz_stack)
    t0 = time.monotonic()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate]))
    FUZZ.seconds["stateful"] = round(time.monotonic() - t0, 1)
    FUZZ.seconds["stateless"] = round(t0 - FUZZ.seconds.pop("stateless_start", t0), 1)
    money_ok = FUZZ.money_2xx("stateful")
    record_property("fuzz_stateful_cases", FUZZ.total("stateful"))
    record_property("fuzz_stateful_money_2xx", money_ok)
    assert FUZZ.total("stateful") >= MIN_STATEFUL_CASES, _report()
    assert money_ok >= MIN_MONEY_2XX, _report()


# --- 3. after fuzzing: the counts, the books, the harness's own invariants -----------------------------------------
def _report() -> str:
    lines = [f"fuzz cases: {FUZZ.total()} (stateless {FUZZ.total('stateless')}, stateful {FUZZ.total('stateful')});"
             f" stateful money 2xx: {FUZZ.money_2xx('stateful')}; history ops: {len(FUZZ.history)};"
             f" seconds: {FUZZ.seconds}",
             "by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(FUZZ.by_status().items()))]
    per_op: dict[str, Counter[int]] = {}
    for (_, op, status), n in FUZZ.cases.items():
        per_op.setdefault(op, Counter())[status] += n
    for op, statuses in sorted(per_op.items()):
        lines.append(f"  {op}: " + ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items())))
    return "\n".join(lines)


def test_fuzz_counts(record_property):
    """Runs after the fuzz tests of this module: enough cases were sent, none answered 500."""
    report = _report()
    print("\n" + report)
    record_property("fuzz_cases", FUZZ.total())
    for status, n in sorted(FUZZ.by_status().items()):
        record_property(f"fuzz_status_{status}", n)
    assert FUZZ.total() >= MIN_CASES, report
    assert FUZZ.by_status()[500] == 0, report


def test_books_balance_after_fuzzing(fuzz_stack):
    r = send(fuzz_stack, "POST", "/admin/reconcile", headers=fuzz_stack.admin)
    assert r.status_code == 200, r.text
    audit = send(fuzz_stack, "GET", "/admin/audit", headers=fuzz_stack.admin).json()
    assert audit["total_balance"] == audit["ledger_total"], audit
    assert audit["negative_accounts"] == [], audit
    assert audit["mismatched_accounts"] == [], audit
    assert audit["unbalanced_transactions"] == [], audit
    assert audit["external_in"] > 0 and audit["external_out"] > 0, audit  # money really moved in and out
    holds = audit.get("pending_withdrawal_holds", 0)  # beyond the contract: debited, payout not yet known
    assert audit["total_balance"] == audit["external_in"] - audit["external_out"] - holds, audit


def test_harness_invariants_hold_on_the_fuzz_history(fuzz_stack):
    """Every invariant checker of the harness, on the recorded fuzz history and the wallet's final books."""
    assert FUZZ.history, "nothing recorded: run the whole module"
    final = collect_final_state(fuzz_stack.url, fuzz_stack.gateway.url, ADMIN_TOKEN, FUZZ.history, timeout=30)
    ctx = CheckContext(scenario="fuzz", errors_allowed={"*": FUZZ_ALLOWED_CODES})
    verdict = run_checks(FUZZ.history, final, ctx)
    print("\n" + "\n".join(f"{r.name}: {'PASS' if r.passed else 'FAIL'} {r.summary}" for r in verdict.results))
    failed = {r.name: (r.summary, r.counterexamples[:3]) for r in verdict.results if not r.passed}
    assert not failed, failed
    assert {r.name for r in verdict.results} == set(CHECKS)
