"""Who owns what, and who did what: the joins the security invariants judge by.

- accounts: the export's `accounts[]` (account_id → user_id, username);
- transactions: the export's `transactions[]` (`user_id` = the user whose request created it);
- the actor of an op: its `owner_user` (the wallet username of the session, written by the client),
  else the username its harness user (worker, user) registered (older histories).
Server timestamps of a transaction: `created_ts` (epoch seconds, docs/target-contract.md), else `created_at`
(ISO 8601) parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

Op = dict[str, Any]
# transaction statuses that moved money (succeeded) or hold it (pending withdrawal): an effect
EFFECT_STATUSES = frozenset({"succeeded", "pending"})


def created_ts(txn: Mapping[str, Any]) -> float | None:
    """Server epoch seconds at which a transaction was created (None if the export has no time)."""
    ts = txn.get("created_ts")
    if isinstance(ts, (int, float)):
        return float(ts)
    raw = txn.get("created_at")
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class Owners:
    def __init__(self, history: Iterable[Op], export: Mapping[str, Any]) -> None:
        """`history`: at least the ok register ops (e.g. RunIndex.ops(("register",), ("ok",)))."""
        self.account_user: dict[str, str] = {}      # account_id → username of its owner
        self.user_id: dict[str, str] = {}           # username → user_id
        self.username_of_id: dict[str, str] = {}    # user_id → username
        for a in export.get("accounts", ()):
            self.account_user[a["account_id"]] = a.get("username") or a.get("user_id")
            if a.get("username") and a.get("user_id"):
                self.user_id[a["username"]] = a["user_id"]
                self.username_of_id[a["user_id"]] = a["username"]
        self.registered: dict[tuple[str, str], str] = {}  # (worker, user) → username it registered
        for op in history:
            if op["kind"] == "register" and op["outcome"] == "ok":
                name = (op.get("args") or {}).get("username")
                if name:
                    self.registered[(op.get("worker", ""), op.get("user", ""))] = name

    def actor(self, op: Mapping[str, Any]) -> str | None:
        """The wallet username whose session sent the op."""
        return op.get("owner_user") or self.registered.get((op.get("worker", ""), op.get("user", "")))

    def txn_user(self, txn: Mapping[str, Any]) -> str | None:
        """Username of the user who created the transaction."""
        uid = txn.get("user_id")
        return self.username_of_id.get(uid) if uid is not None else None

    def may_see(self, username: str | None, txn: Mapping[str, Any]) -> bool:
        """A transaction is the reader's if they created it or own one of its accounts."""
        if username is None:
            return True  # unknown reader: nothing to judge
        if self.txn_user(txn) == username:
            return True
        return any(self.account_user.get(txn.get(k)) == username for k in ("from_account_id", "to_account_id"))


def debited_account(kind: str, args: Mapping[str, Any]) -> str | None:
    """The account a write takes money out of (None for a deposit)."""
    if kind == "transfer":
        return args.get("from_account_id")
    if kind == "withdrawal":
        return args.get("account_id") or args.get("from_account_id")
    return None


def money_accounts(kind: str, args: Mapping[str, Any]) -> tuple[str, ...]:
    """Every account a write moves money out of or into (client args: `account_id` for a deposit or a
    withdrawal, `from_account_id` / `to_account_id` for a transfer; either spelling is read)."""
    return tuple(dict.fromkeys(a for a in (args.get("from_account_id"), args.get("to_account_id"),
                                           args.get("account_id")) if a))


def txn_accounts(txn: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(a for a in (txn.get("from_account_id"), txn.get("to_account_id")) if a)
