"""Credentials: login and payment-PIN lockout modelled from the history; a wrong PIN never pays.

Contract: 5 consecutive failed logins (or PIN attempts) lock the account: ACCOUNT_LOCKED (423) until the
lock runs out. The model, per user and per secret (password; PIN), over answered attempts in
*completion order*:
- a failure is INVALID_CREDENTIALS (login) / INVALID_PIN (a withdrawal or transfer's first attempt of
  its key); a lock answer is ACCOUNT_LOCKED; a success is an ok login / an ok or 202 payment; any other
  answer to an attempt made with the right secret may have reset the wallet's counter, so it resets
  the model's too (the model only ever under-counts: it can miss, never invent, a lockout).
- After 5 consecutive failures F1..F5 the lock is certain from F5's answer on, and lasts at least until
  (the 5th earliest invoke of F1..F5) + lockout_s: the server cannot have counted 5 failures before
  receiving 5 requests. Attempts invoked after F5 was answered (+ clock skew) and answered before that
  end (− skew) must answer ACCOUNT_LOCKED: a failure (the secret was still compared) or a success
  inside is `not_locked`. Tolerance for attempts still in flight: an attempt invoked before the last
  lock evidence but answered after it is not counted at all.
- Logins to a username no register op and no export account knows are not modelled: there is no
  account to lock.
- Sign-in works again after the window: an attempt tagged `relogin` (the owner with the right password,
  after being locked out) answered ACCOUNT_LOCKED although it was sent more than lockout_s (+ skew)
  after the first lock answer of that episode, with no failed attempt of that user answered since the
  episode began, is `still_locked_after_window`.
- A wrong PIN never succeeds and never moves money: an op tagged wrong_pin / pin_guess answered ok is
  `wrong_pin_accepted`; a succeeded or pending transaction in the export under its idempotency key is
  `wrong_pin_moved_money` (also when the client never learned the outcome).
lockout_s comes from the scenario's `wallet_env` WALLET_LOCKOUT_S (default 300 s, the mock wallet's).
Clock: client times and the wallet's run on one machine; `ctx.clock_skew_s` (0.05 s) is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from walletchaos.checks.base import CheckContext, CheckResult, Findings
from walletchaos.checks.index import RunIndex, get_index
from walletchaos.checks.owners import EFFECT_STATUSES, Owners
from walletchaos.history import TAG_BRUTE_FORCE, TAG_RELOGIN, TAG_RETRY, WRONG_PIN_TAGS

NAME = "credentials"
RULES: tuple[str, ...] = (  # every rule this check can report (tests/test_rules_fire.py)
    "login_not_locked", "login_still_locked_after_window", "pin_not_locked", "pin_still_locked_after_window",
    "wrong_pin_accepted", "wrong_pin_moved_money",
)
LOCKOUT_ENV = "WALLET_LOCKOUT_S"
MAX_FAILURES = 5  # CONTRACT.md: 5 consecutive failed logins or PIN attempts
PIN_KINDS = ("withdrawal", "transfer")

# attempt classes
FAIL, LOCKED, SUCCESS, RESET, IGNORE = "fail", "locked", "success", "reset", "ignore"


def classify_login(op: Mapping[str, Any]) -> str:
    if op.get("status") is None:
        return IGNORE  # no answer: unknown whether the wallet even saw it
    code = op.get("code")
    if code == "INVALID_CREDENTIALS":
        return FAIL
    if code == "ACCOUNT_LOCKED":
        return LOCKED
    if op["outcome"] == "ok":
        return SUCCESS
    return IGNORE if op.get("tag") == TAG_BRUTE_FORCE else RESET


def classify_pin(op: Mapping[str, Any]) -> str:
    if op.get("status") is None:
        return IGNORE
    code = op.get("code")
    if code == "INVALID_PIN":
        return FAIL
    if code == "ACCOUNT_LOCKED":
        return LOCKED
    if op["outcome"] == "ok" or op.get("status") == 202:
        return SUCCESS
    return IGNORE if op.get("tag") in WRONG_PIN_TAGS else RESET


@dataclass
class _Lockout:
    """The model of one user's one secret."""

    lockout_s: float
    skew: float
    streak: list[dict[str, Any]] = field(default_factory=list)
    window: tuple[float, float] | None = None   # (invoked from, answered until): must answer LOCKED
    evidence_ts: float = float("-inf")          # last time a lock was certain (answer of F5 / a LOCKED)
    episode_start: float | None = None          # answer time of the first lock evidence of the episode
    fails_in_episode: int = 0
    windows: int = 0
    locked_answers: int = 0

    def _evidence(self, ts: float) -> None:
        self.evidence_ts = max(self.evidence_ts, ts)
        if self.episode_start is None or ts > self.episode_start + self.lockout_s + self.skew:
            self.episode_start, self.fails_in_episode = ts, 0

    def feed(self, op: dict[str, Any], cls: str, report: Callable[..., None]) -> None:
        inv, done = op["invoke_ts"], op.get("complete_ts") or op["invoke_ts"]
        if self.window is not None and inv >= self.window[0] and done <= self.window[1]:
            if cls in (FAIL, SUCCESS):
                report("not_locked", op, window=self.window)
            elif cls == LOCKED:
                self.locked_answers += 1
            return
        if inv < self.evidence_ts <= done:
            return  # in flight across the lock: the wallet may have counted it on either side
        if cls == FAIL:
            self.fails_in_episode += 1
            self.streak.append(op)
            if len(self.streak) >= MAX_FAILURES:
                fifth_invoke = sorted(o["invoke_ts"] for o in self.streak)[MAX_FAILURES - 1]
                self.window = (done + self.skew, fifth_invoke + self.lockout_s - self.skew)
                self.windows += 1
                self._evidence(done)
                self.streak = []
        elif cls == LOCKED:
            self.locked_answers += 1
            if (op.get("tag") == TAG_RELOGIN and self.episode_start is not None and self.fails_in_episode == 0
                    and inv > self.episode_start + self.lockout_s + self.skew):
                report("still_locked_after_window", op, locked_since=self.episode_start,
                       lockout_s=self.lockout_s)
            self.streak = []
            self._evidence(done)
        elif cls in (SUCCESS, RESET):
            self.streak = []


def _judge(attempts: list[dict[str, Any]], classify: Callable[[Mapping[str, Any]], str], what: str,
           ctx: CheckContext, found: Findings, owners: Owners, user: str) -> _Lockout:
    model = _Lockout(ctx.lockout_s, ctx.clock_skew_s)

    def report(rule: str, op: dict[str, Any], **extra: Any) -> None:
        found.add(f"{what}_{rule}", user=user, op_id=op["op_id"], request_id=op.get("request_id"),
                  kind=op["kind"], tag=op.get("tag"), actor=owners.actor(op), status=op.get("status"),
                  code=op.get("code"), invoke_ts=op["invoke_ts"], complete_ts=op.get("complete_ts"), **extra)

    attempts.sort(key=lambda o: (o.get("complete_ts") or o["invoke_ts"], o["op_id"]))
    for op in attempts:
        model.feed(op, classify(op), report)
    return model


def check(history: Sequence[dict[str, Any]], final: Mapping[str, Any], ctx: CheckContext, *,
          index: RunIndex | None = None) -> CheckResult:
    ix = get_index(history, final, ctx, index)
    owners = Owners(ix.ops(("register",), ("ok",)), final["export"])
    found = Findings(ctx.max_counterexamples)
    logins: dict[str, list[dict[str, Any]]] = {}
    pins: dict[str, list[dict[str, Any]]] = {}
    guesses = {"password_guess": 0, "pin_guess": 0, "relogin": 0}
    wrong_pin_ops: list[dict[str, Any]] = []
    for op in ix.tagged:
        tag = op.get("tag")
        if tag == TAG_BRUTE_FORCE:
            guesses["password_guess"] += 1
        elif tag == TAG_RELOGIN:
            guesses["relogin"] += 1
        elif tag in WRONG_PIN_TAGS:
            guesses["pin_guess"] += 1
            wrong_pin_ops.append(op)
    # a login to a username nobody registered has no account to lock (the wallet answers INVALID_CREDENTIALS
    # without counting): only logins of known users are modelled
    known = {*owners.user_id, *owners.registered.values()}
    for op in ix.ops(("login",)):
        name = (op.get("args") or {}).get("username")
        if name and name in known:
            logins.setdefault(name, []).append(op)
    first_invoke: dict[str, float] = {}  # key → invoke time of its first attempt
    for op in ix.ops(PIN_KINDS):
        key = op.get("idempotency_key")
        if key is not None and op["invoke_ts"] < first_invoke.get(key, float("inf")):
            first_invoke[key] = op["invoke_ts"]
    for op in ix.ops(PIN_KINDS):
        key = op.get("idempotency_key")
        replay = op.get("tag") == TAG_RETRY or (key is not None and op["invoke_ts"] > first_invoke[key])
        actor = owners.actor(op)
        if not replay and actor is not None:
            pins.setdefault(actor, []).append(op)

    windows = {"login": 0, "pin": 0}
    locked = {"login": 0, "pin": 0}
    for what, per_user, classify in (("login", logins, classify_login), ("pin", pins, classify_pin)):
        for user, ops in per_user.items():
            model = _judge(ops, classify, what, ctx, found, owners, user)
            windows[what] += model.windows
            locked[what] += model.locked_answers

    by_key = ix.export.by_key
    txns = ix.export.transactions
    for op in wrong_pin_ops:
        ev = {"op_id": op["op_id"], "request_id": op.get("request_id"), "kind": op["kind"], "tag": op.get("tag"),
              "actor": owners.actor(op), "idempotency_key": op.get("idempotency_key"),
              "invoke_ts": op["invoke_ts"], "status": op.get("status"), "code": op.get("code")}
        if op["outcome"] == "ok":
            found.add("wrong_pin_accepted", **ev, txn_id=op.get("txn_id"))
            continue
        key = op.get("idempotency_key")
        i = by_key.get(key) if key is not None else None
        group = ix.export.duplicates.get(key, [txns[i]] if i is not None else [])
        for t in group:
            if t.get("status") in EFFECT_STATUSES:
                found.add("wrong_pin_moved_money", **ev, txn_id=t["transaction_id"], txn_status=t["status"],
                          amount=t.get("amount"))

    return found.result(
        NAME, f"{guesses['password_guess']} password and {guesses['pin_guess']} PIN guesses: lockouts held "
              f"({locked['login']} login / {locked['pin']} PIN attempts answered ACCOUNT_LOCKED; "
              f"{windows['login'] + windows['pin']} lock windows predicted), no wrong PIN paid",
        {"attempts": guesses, "locked_answers": locked, "lock_windows": windows, "lockout_s": ctx.lockout_s,
         "users_with_logins": len(logins), "users_with_pin_attempts": len(pins)})
