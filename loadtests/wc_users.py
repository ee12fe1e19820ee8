"""Wallet user behaviours (abstract Locust users; locustfile.py makes the concrete ones per mix).

Each user runs ONE Locust task, `step`, that does exactly one operation chosen with the user's own
seeded `random.Random` — Locust's task picker and wait times use the global `random`, which would
make the same seed behave differently. One op per task also means a graceful stop (--stop-timeout)
lets the in-flight op finish and be recorded, never a half-done sequence.

Setup is itself a sequence of steps (register → login → initial deposit), each retried on later
steps if it failed, so users also come up during or after a fault.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections import deque
from typing import Any

import gevent
from locust import task
from locust.contrib.fasthttp import FastHttpUser

from walletchaos.adapters import wrap_transport  # the target's adapter ($WALLETCHAOS_ADAPTER)
from walletchaos.checks.credentials import MAX_FAILURES as MAX_LOGIN_FAILURES  # the contract's 5
from walletchaos.client import Call, WalletApi
from wc_support import (CONFIG, REGISTRY, FastHttpTransport, Known, history_sink, next_user_index, user_rng,
                        worker_id, worker_index)

INITIAL_DEPOSIT = 100_000  # minor units: 1000.00 CNY
MAX_RETRIES_PER_KEY = 3
# A client re-sends a write it got no definite answer for (unknown outcome, retryable problem) on its
# own, as payment apps do: after ~1 s, then ~2 s, then ~4 s (±25 %, from the user's rng), same key.
RETRY_BACKOFF_S = (1.0, 2.0, 4.0)


class WalletUserBase(FastHttpUser):
    """Registration, session, retry queue and bookkeeping shared by every behaviour."""

    abstract = True
    network_timeout = CONFIG.timeout_s
    connection_timeout = CONFIG.timeout_s
    max_retries = 0  # never let the HTTP layer resend: each attempt must be its own op
    think_s: tuple[float, float] = CONFIG.think_s
    # weighted actions of the steady state, name → weight (method `do_<name>`)
    actions: dict[str, int] = {}
    public = True  # published as a transfer target / victim, with its transactions (attackers: False)

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.index = next_user_index()
        self.rng = user_rng(CONFIG.seed, 0, self.index)  # re-seeded in on_start, once the worker index is known
        self.api: WalletApi | None = None
        self.password = ""
        self.pin = ""
        self.funded = False
        self.known_balance = 0
        self.register_attempts = 0
        self.retry_queue: deque[dict[str, Any]] = deque(maxlen=20)
        self.retries: dict[str, int] = {}
        self.retry_due: dict[str, float] = {}  # key → wall time its automatic re-send is due
        self.last_key: str | None = None

    def wait_time(self) -> float:
        lo, hi = self.think_s
        return self.rng.uniform(lo, hi) if hi > 0 else 0.0

    def on_start(self) -> None:
        widx = worker_index(self.environment)
        self.rng = user_rng(CONFIG.seed, widx, self.index)
        self.password = f"pw-{self.rng.getrandbits(48):012x}"
        self.pin = f"{self.rng.randrange(10**6):06d}"
        self.api = WalletApi(wrap_transport(FastHttpTransport(self.client)), history_sink(self.environment),
                             worker=worker_id(self.environment), user=f"u{self.index}")

    @task
    def step(self) -> None:
        if self.ready():
            self.act()

    # -- setup ------------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """True when registered, logged in and funded; otherwise performs the next setup op."""
        api = self.api
        assert api is not None
        if api.account_id is None:
            self.register_attempts += 1
            # a fresh name per attempt: a timed-out register may have taken the old one
            name = f"wc-{api.worker}-u{self.index}-{self.register_attempts}-{uuid.uuid4().hex[:6]}"
            api.register(name, self.password, self.pin)
            return False
        if api.token is None:
            api.login(api.username or "", self.password)
            return False
        if not self.funded:
            call = api.deposit(INITIAL_DEPOSIT)
            self.after_write(call)
            self.funded = call.outcome != "fail"
            if self.funded and api.username and api.account_id:
                self.on_ready(api.username, api.account_id)
            return False
        return True

    def on_ready(self, username: str, account_id: str) -> None:
        """Publish a set-up customer as a transfer target (and a victim for attackers)."""
        if self.public:
            REGISTRY.add(username, account_id)

    # -- steady state -----------------------------------------------------------------------------------
    def act(self) -> None:
        names = list(self.actions)
        name = self.rng.choices(names, weights=[self.actions[n] for n in names])[0]
        getattr(self, f"do_{name}")()

    def amount(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def after_write(self, call: Call) -> None:
        """Track the balance, remember keys for lookups, queue retryable/unknown writes for a retry."""
        op = call.op
        key = op["idempotency_key"]
        self.last_key = key
        self.after_any(call)
        if call.ok:
            amt = op["args"]["amount"]
            if op["kind"] == "deposit":
                self.known_balance += amt
            elif op["args"].get("account_id", op["args"].get("from_account_id")) == (self.api and self.api.account_id):
                self.known_balance -= amt
            if self.public:
                REGISTRY.txns.append((op["txn_id"], key, op["account_id"]))
            return
        retryable = op["outcome"] == "unknown" or bool((op["problem"] or {}).get("retryable"))
        if retryable and self.retries.get(key, 0) < MAX_RETRIES_PER_KEY and op.get("tag") in (None, "retry"):
            backoff = RETRY_BACKOFF_S[min(self.retries.get(key, 0), len(RETRY_BACKOFF_S) - 1)]
            self.retry_due[key] = time.time() + backoff * self.rng.uniform(0.75, 1.25)
            self.retry_queue.append(op)

    def after_any(self, call: Call) -> None:
        """A session that the wallet no longer knows (restart, expiry) → log in again next step."""
        if call.op["code"] == "UNAUTHENTICATED" and call.op.get("tag") is None and self.api is not None:
            self.api.token = None

    def read_balance(self) -> Call:
        assert self.api is not None
        call = self.api.balance()
        self.after_any(call)
        if call.ok and call.op["balance"] is not None:
            self.known_balance = call.op["balance"]
        return call


class WalletBehaviour(WalletUserBase):
    """An ordinary customer: deposits, withdraws, pays others, checks balance and history; sometimes
    retries a write whose outcome it did not learn (same key), mistypes the PIN or overspends."""

    abstract = True
    actions = {"deposit": 6, "withdrawal": 4, "transfer": 6, "balance": 8, "history": 4, "lookup": 2,
               "retry": 2, "wrong_pin": 1, "overdraft": 1}
    auto_retry = True  # re-send an undecided write once its backoff is due (RETRY_BACKOFF_S)

    def act(self) -> None:
        if self.auto_retry and self.retry_queue and \
                self.retry_due.get(self.retry_queue[0]["idempotency_key"], 0.0) <= time.time():
            self.do_retry()
            return
        super().act()

    def do_deposit(self) -> None:
        assert self.api is not None
        self.after_write(self.api.deposit(self.amount(500, 20_000)))

    def do_withdrawal(self) -> None:
        assert self.api is not None
        self.after_write(self.api.withdrawal(self.amount(100, 5_000), self.pin))

    def do_transfer(self) -> None:
        assert self.api is not None
        target = REGISTRY.other(self.rng, self.api.account_id)
        amount = self.amount(100, 5_000)
        if target is None:
            self.after_write(self.api.deposit(amount))
        else:
            self.after_write(self.api.transfer(target.account_id, amount, self.pin))

    def do_balance(self) -> None:
        self.read_balance()

    def do_history(self) -> None:
        assert self.api is not None
        self.after_any(self.api.history(limit=self.rng.choice((5, 20, 50))))

    def do_lookup(self) -> None:
        assert self.api is not None
        if self.last_key is None:
            self.read_balance()
        else:
            self.after_any(self.api.lookup(self.last_key))

    def do_retry(self) -> None:
        """Re-send the oldest unresolved write with its original key and body (automatically when due,
        or when the user taps "retry" early: the `retry` action)."""
        assert self.api is not None
        if not self.retry_queue:
            self.read_balance()
            return
        op = self.retry_queue.popleft()
        key = op["idempotency_key"]
        self.retries[key] = self.retries.get(key, 0) + 1
        self.after_write(self.api.retry(op, self.pin))

    def do_wrong_pin(self) -> None:
        assert self.api is not None
        wrong = f"{(int(self.pin) + 1 + self.rng.randrange(10**6 - 1)) % 10**6:06d}"
        self.after_write(self.api.withdrawal(self.amount(100, 1_000), wrong, tag="wrong_pin"))

    def do_overdraft(self) -> None:
        assert self.api is not None
        target = REGISTRY.other(self.rng, self.api.account_id)
        amount = max(self.known_balance, 0) + self.amount(1_000_000, 5_000_000)
        if target is None:
            self.after_write(self.api.withdrawal(amount, self.pin, tag="overdraft"))
        else:
            self.after_write(self.api.transfer(target.account_id, amount, self.pin, tag="overdraft"))


class PeakBehaviour(WalletBehaviour):
    """Rush hour: the ordinary customer, who now and then pays from two devices at once (the phone and
    the watch, or a double tap in two apps) — the only place two debits of one account race."""

    abstract = True
    actions = {**WalletBehaviour.actions, "double_pay": 2}

    def do_double_pay(self) -> None:
        """Two payments of ~60 % of the balance each, sent concurrently under their own keys: at most
        one can be covered, so a wallet that checks the balance outside its lock overdraws."""
        assert self.api is not None
        api = self.api
        targets = [REGISTRY.other(self.rng, api.account_id) for _ in range(2)]
        amount = self.known_balance * 3 // 5
        if amount < 100 or None in targets:
            self.read_balance()
            return
        greenlets = [gevent.spawn(api.transfer, t.account_id, amount, self.pin, tag="double_pay")
                     for t in targets if t is not None]
        try:
            gevent.joinall(greenlets)
        finally:  # a stop that kills this user mid-join must still let both payments finish and be recorded
            gevent.joinall(greenlets)
        for g in greenlets:
            if g.value is not None:
                self.after_write(g.value)
            elif g.exception is not None:
                raise g.exception


class ReadOnlyBehaviour(WalletBehaviour):
    """Funded once, then only reads: balance, history, lookups of its initial deposit."""

    abstract = True
    actions = {"balance": 3, "history": 2, "lookup": 1}
    auto_retry = False


class BruteForceBehaviour(WalletUserBase):
    """An attacker: guesses passwords of real users (→ INVALID_CREDENTIALS, then ACCOUNT_LOCKED) and,
    with a session of its own standing in for a stolen one, guesses payment PINs (→ INVALID_PIN, then
    ACCOUNT_LOCKED). Now and then it locks its OWN sign-in (5 wrong passwords in a row) and then signs in
    with the right password until that works again: the lockout must end (tag `relogin`)."""

    abstract = True
    actions = {"password_guess": 5, "pin_guess": 4, "self_lockout": 1}
    RELOGIN_EVERY_S = (0.5, 1.0)  # while locked out, the owner tries again this often

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.lockout_fails = 0                 # wrong passwords sent in the current self-lockout
        self.relogin_due: float | None = None  # set once locked out: when to try the right password

    public = False  # an attacker is nobody's transfer target or victim

    def act(self) -> None:
        if 0 < self.lockout_fails < MAX_LOGIN_FAILURES:
            self.do_self_lockout()  # five in a row, nothing in between
        elif self.relogin_due is not None and time.time() >= self.relogin_due:
            self.do_relogin()
        else:
            super().act()

    def do_password_guess(self) -> None:
        assert self.api is not None
        victim = REGISTRY.other(self.rng, self.api.account_id)
        guess = f"guess-{self.rng.getrandbits(32):08x}"
        if victim is None:
            self.do_pin_guess()
        else:
            self.api.login(victim.username, guess, tag="brute_force")

    def do_pin_guess(self) -> None:
        assert self.api is not None
        guess = f"{self.rng.randrange(10**6):06d}"
        if guess == self.pin:
            guess = f"{(int(guess) + 1) % 10**6:06d}"
        self.after_any(self.api.withdrawal(100, guess, tag="pin_guess"))

    def do_self_lockout(self) -> None:
        """One wrong password for the attacker's own name; the fifth (or an ACCOUNT_LOCKED) locks it."""
        assert self.api is not None
        if self.relogin_due is not None:  # already locked out: wait for the relogin
            self.do_pin_guess()
            return
        call = self.api.login(self.api.username or "", f"wrong-{self.rng.getrandbits(32):08x}", tag="brute_force")
        self.lockout_fails += 1
        if call.op["code"] == "ACCOUNT_LOCKED" or self.lockout_fails >= MAX_LOGIN_FAILURES:
            self.lockout_fails = 0
            self.relogin_due = time.time() + self.rng.uniform(*self.RELOGIN_EVERY_S)

    def do_relogin(self) -> None:
        """The right password after a lockout: ACCOUNT_LOCKED until the lock runs out, then ok."""
        assert self.api is not None
        call = self.api.login(self.api.username or "", self.password, tag="relogin")
        self.relogin_due = None if call.ok else time.time() + self.rng.uniform(*self.RELOGIN_EVERY_S)


class IntruderBehaviour(WalletUserBase):
    """A logged-in customer who tries other users' accounts, transactions and idempotency keys, and forged
    tokens. Every such op is tagged `intrusion` / `key_replay` / `bad_token` and names its victim
    (`target_owner`): it must fail (404 / 401), never succeed, never move money."""

    abstract = True
    # roughly equal numbers of reads, writes, forged tokens and key replays (a replay is two ops)
    actions = {"foreign_balance": 2, "foreign_history": 1, "foreign_lookup": 1, "foreign_txn": 1,
               "foreign_transfer": 3, "foreign_withdrawal": 2, "bad_token": 5, "key_replay": 5, "own_balance": 1}

    public = False

    def _victim(self) -> Known | None:
        assert self.api is not None
        return REGISTRY.other(self.rng, self.api.account_id)

    def do_own_balance(self) -> None:
        self.read_balance()

    def do_foreign_balance(self) -> None:
        assert self.api is not None
        v = self._victim()
        self.api.balance(v.account_id, tag="intrusion", target_owner=v.username) if v else self.read_balance()

    def do_foreign_history(self) -> None:
        assert self.api is not None
        v = self._victim()
        self.api.history(v.account_id, tag="intrusion", target_owner=v.username) if v else self.read_balance()

    def do_foreign_lookup(self) -> None:
        assert self.api is not None
        txn = REGISTRY.other_txn(self.rng, self.api.account_id)
        if txn:
            self.api.lookup(txn[1], tag="intrusion", target_owner=REGISTRY.owner_of(txn[2]))
        else:
            self.read_balance()

    def do_foreign_txn(self) -> None:
        assert self.api is not None
        txn = REGISTRY.other_txn(self.rng, self.api.account_id)
        if txn and txn[0]:
            self.api.get_transaction(txn[0], tag="intrusion", target_owner=REGISTRY.owner_of(txn[2]))
        else:
            self.read_balance()

    def do_foreign_transfer(self) -> None:
        assert self.api is not None
        v = self._victim()
        amount = self.amount(100, 5_000)
        if v and self.api.account_id:
            self.api.transfer(self.api.account_id, amount, self.pin, from_account_id=v.account_id, tag="intrusion",
                              target_owner=v.username)
        else:
            self.read_balance()

    def do_foreign_withdrawal(self) -> None:
        assert self.api is not None
        v = self._victim()
        amount = self.amount(100, 5_000)
        if v:
            self.api.withdrawal(amount, self.pin, account_id=v.account_id, tag="intrusion", target_owner=v.username)
        else:
            self.read_balance()

    def do_key_replay(self) -> None:
        """Another user's idempotency key, from this session: asking what became of it must answer 404,
        and a money POST under it (out of that user's account) must answer 404 and apply nothing."""
        assert self.api is not None
        txn = REGISTRY.other_txn(self.rng, self.api.account_id)
        if not txn or not self.api.account_id:
            self.read_balance()
            return
        _, key, account_id = txn
        owner = REGISTRY.owner_of(account_id)
        self.api.lookup(key, tag="key_replay", target_owner=owner)
        # the amount follows from the key: replaying the same key again is the same request (a second
        # body under one key would rightly be IDEMPOTENCY_KEY_REUSED, about the intruder's own key)
        amount = 100 + zlib.crc32(key.encode()) % 4_900
        self.api.transfer(self.api.account_id, amount, self.pin, from_account_id=account_id, key=key,
                          tag="key_replay", target_owner=owner)

    def do_bad_token(self) -> None:
        assert self.api is not None
        forged = self.rng.choice((f"forged-{self.rng.getrandbits(64):016x}", "", "null",
                                  (self.api.token or "x")[:-2] + "zz"))
        self.api.balance(token=forged or "e30", tag="bad_token")
