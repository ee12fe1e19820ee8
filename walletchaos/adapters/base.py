"""The adapter protocol: how the harness speaks to a wallet whose API is not CONTRACT.md's.

The harness thinks in contract terms: the load generator (`walletchaos.client.WalletApi`) sends
contract requests and classifies contract answers (status, problem+json `code`, transaction fields),
and the checkers judge those. An adapter translates, per operation, in both directions:

* `request(call)`  a contract operation (`ContractCall`: op name + typed params + token, idempotency key,
  request id) → the HTTP request that performs it on the user's wallet (`Request`);
* `answer(call, raw)` the wallet's raw answer → the answer the contract would have given (`RawResponse`:
  status, headers, JSON body; an error as problem+json with the contract's `code`). Transport errors
  (timeouts, resets) never reach `answer`: the harness classifies those itself.

plus the harness's admin needs (`export`, `audit`, `reconcile`, `freeze`, `unfreeze`, `maintenance`),
which take an `Admin` (an httpx client on the wallet's direct URL and the admin token) and return the
shapes of docs/internals.md (export, audit) and CONTRACT.md (reconcile: `{resolved, still_pending}`).

`walletchaos.adapters.contract.ContractAdapter` is the built-in one (`adapter: contract`).
`adapter: module:Class` in a target file loads a user adapter; `examples/adapter-restish/` is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import httpx

from walletchaos.client import RawResponse

# The client operations, in contract terms (`lookup`: a transaction by idempotency key;
# `transaction`: by id). `withdraw` is the contract's POST /v1/withdrawals.
Op = Literal["register", "login", "deposit", "withdraw", "transfer", "balance", "history", "lookup",
             "transaction"]
OPS: tuple[str, ...] = Op.__args__  # type: ignore[attr-defined]
MONEY_OPS = frozenset({"deposit", "withdraw", "transfer"})  # carry an idempotency key


@dataclass(frozen=True)
class ContractCall:
    """One client operation as the harness means it. `params` by op:

    register {username, password, pin} · login {username, password} · deposit {account_id, amount} ·
    withdraw {account_id, amount, pin} · transfer {from_account_id, to_account_id, amount, pin} ·
    balance {account_id} · history {account_id, limit} · lookup {idempotency_key} ·
    transaction {transaction_id}
    """

    op: Op
    params: dict[str, Any]
    token: str | None = None             # the session token login returned (None for register/login)
    idempotency_key: str | None = None   # money ops: the same key on every retry of one payment
    request_id: str | None = None        # the X-Request-ID the harness sent (find it in the wallet's log)


@dataclass(frozen=True)
class Request:
    """One HTTP request on the user's wallet (path relative to its base URL, JSON body or none)."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Admin:
    """What admin methods act through: `http` has base_url = the wallet's direct URL."""

    http: httpx.Client
    token: str


@runtime_checkable
class WalletAdapter(Protocol):
    name: str

    # client ops ----------------------------------------------------------------------------------
    def request(self, call: ContractCall) -> Request:
        """The request that performs `call` on this wallet."""
        ...

    def answer(self, call: ContractCall, raw: RawResponse) -> RawResponse:
        """The wallet's answer to `call` as the contract would have given it (status, problem+json)."""
        ...

    # harness admin needs ------------------------------------------------------------------------
    def export(self, admin: Admin) -> dict[str, Any]:
        """{accounts, transactions, audit[, entries]} (docs/internals.md "Extra wallet endpoints")."""
        ...

    def audit(self, admin: Admin) -> dict[str, Any]: ...

    def reconcile(self, admin: Admin) -> dict[str, Any]:
        """Settle pending transactions with the gateway: {resolved, still_pending}."""
        ...

    def freeze(self, admin: Admin, account_id: str) -> None: ...

    def unfreeze(self, admin: Admin, account_id: str) -> None: ...

    def maintenance(self, admin: Admin, enabled: bool, retry_after_s: int) -> None: ...


class AdapterError(ValueError):
    """An adapter could not be loaded (one readable line)."""
