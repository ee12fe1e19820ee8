"""Users, passwords, sessions and PINs, with lockout after repeated failures.

Secrets are hashed with scrypt at a deliberately small cost (a few ms): real enough that nothing is
stored in clear, cheap enough for load tests that log in a lot. Hashing runs in a thread so it never
blocks the event loop. Failure counters live in the DB so lockout holds across wallet restarts.

A payment PIN is checked on every money operation, so scrypt there was the wallet's largest CPU cost
(bench/results.md, profile of wallet_vs_pgbench). A correct PIN is therefore remembered per process as
an HMAC under a random per-process key, tied to the stored hash (a changed PIN misses). Only a correct
PIN is ever remembered: a wrong one always pays the full scrypt and counts toward the lockout, and a
locked PIN is refused before any comparison, so the cache changes cost, never outcome.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from mock_wallet.db import Database
from mock_wallet.problems import ProblemError

MAX_FAILURES = 5
_SCRYPT = {"n": 2**11, "r": 8, "p": 1, "dklen": 32}
_DUMMY_SALT = b"\0" * 16

# the two independent lockouts: (failure counter column, locked-until column)
_LOCK_COLUMNS = {"login": ("failed_logins", "login_locked_until"), "pin": ("failed_pins", "pin_locked_until")}


def _hash(secret: str, salt: bytes) -> bytes:
    # surrogatepass: JSON may carry lone surrogates; they are still a (weird) secret, not a crash
    return hashlib.scrypt(secret.encode("utf-8", "surrogatepass"), salt=salt, **_SCRYPT)


async def hash_secret(secret: str, salt: bytes) -> bytes:
    return await asyncio.to_thread(_hash, secret, salt)


class VerifiedSecrets:
    """Bounded LRU of secrets already verified against a stored hash: stored hash → HMAC(key, secret)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self._key = secrets.token_bytes(32)
        self._tags: OrderedDict[bytes, bytes] = OrderedDict()
        self._maxsize = maxsize

    def _tag(self, secret: str) -> bytes:
        return hmac.digest(self._key, secret.encode("utf-8", "surrogatepass"), "sha256")

    def known(self, stored_hash: bytes, secret: str) -> bool:
        tag = self._tags.get(stored_hash)
        if tag is None or not hmac.compare_digest(tag, self._tag(secret)):
            return False
        self._tags.move_to_end(stored_hash)
        return True

    def remember(self, stored_hash: bytes, secret: str) -> None:
        self._tags[stored_hash] = self._tag(secret)
        self._tags.move_to_end(stored_hash)
        while len(self._tags) > self._maxsize:
            self._tags.popitem(last=False)

    def __len__(self) -> int:
        return len(self._tags)


async def verify_secret(secret: str, salt: bytes, stored_hash: bytes, cache: VerifiedSecrets | None = None) -> bool:
    """Constant-time comparison of scrypt(secret) with the stored hash; a cache hit skips scrypt."""
    if cache is not None and cache.known(stored_hash, secret):
        return True
    ok = hmac.compare_digest(await hash_secret(secret, salt), stored_hash)
    if ok and cache is not None:
        cache.remember(stored_hash, secret)
    return ok


def token_digest(token: str) -> bytes:
    """Sessions are stored by digest: a DB dump does not hand out valid tokens."""
    return hashlib.sha256(token.encode()).digest()


def locked_problem(until: datetime) -> ProblemError:
    return ProblemError("ACCOUNT_LOCKED", f"Too many failed attempts; locked until {until.isoformat()}.",
                        extra={"locked_until": until.isoformat()})


@dataclass(frozen=True)
class PinCheck:
    """A PIN verified outside any transaction: ok is None when it was not tried because it was locked."""

    ok: bool | None
    locked_until: datetime | None


@dataclass(frozen=True)
class Session:
    user_id: uuid.UUID
    token: str
    expires_at: datetime


class AuthService:
    pin_cache_class: type[VerifiedSecrets] = VerifiedSecrets

    def __init__(self, db: Database, *, lockout_s: float, session_ttl_s: float, pin_cache_size: int = 10_000) -> None:
        self.db = db
        self.lockout_s = lockout_s
        self.session_ttl_s = session_ttl_s
        self.verified_pins = self.pin_cache_class(pin_cache_size) if pin_cache_size > 0 else None

    async def register(self, username: str, password: str, pin: str) -> tuple[uuid.UUID, uuid.UUID]:
        user_id, account_id = uuid.uuid4(), uuid.uuid4()
        pw_salt, pin_salt = secrets.token_bytes(16), secrets.token_bytes(16)
        pw_hash, pin_hash = await asyncio.gather(hash_secret(password, pw_salt), hash_secret(pin, pin_salt))
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    """INSERT INTO users (id, username, password_hash, password_salt, pin_hash, pin_salt)
                       VALUES ($1, $2, $3, $4, $5, $6)""",
                    user_id, username, pw_hash, pw_salt, pin_hash, pin_salt)
                await conn.execute("INSERT INTO accounts (id, user_id, kind) VALUES ($1, $2, 'user')",
                                   account_id, user_id)
        except asyncpg.UniqueViolationError:
            raise ProblemError("USERNAME_TAKEN", "This username is already registered.") from None
        return user_id, account_id

    async def login(self, username: str, password: str) -> Session:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """SELECT id, password_hash, password_salt, login_locked_until, now() AS now
                   FROM users WHERE username = $1""", username)
        if row is None:
            await hash_secret(password, _DUMMY_SALT)  # same cost as a wrong password: no username oracle
            raise ProblemError("INVALID_CREDENTIALS", "Wrong username or password.")
        if row["login_locked_until"] is not None and row["login_locked_until"] > row["now"]:
            raise locked_problem(row["login_locked_until"])
        if not hmac.compare_digest(await hash_secret(password, row["password_salt"]), row["password_hash"]):
            async with self.db.transaction() as conn:
                locked_until = await self.record_failure(conn, row["id"], "login")
            if locked_until is not None:
                raise locked_problem(locked_until)
            raise ProblemError("INVALID_CREDENTIALS", "Wrong username or password.")
        token = secrets.token_urlsafe(32)
        async with self.db.transaction() as conn:
            await conn.execute("UPDATE users SET failed_logins = 0 WHERE id = $1 AND failed_logins <> 0", row["id"])
            expires_at = await conn.fetchval(
                """INSERT INTO sessions (token_hash, user_id, expires_at)
                   VALUES ($1, $2, now() + make_interval(secs => $3)) RETURNING expires_at""",
                token_digest(token), row["id"], self.session_ttl_s)
        return Session(row["id"], token, expires_at)

    async def user_for_token(self, token: str) -> uuid.UUID:
        async with self.db.connection() as conn:
            user_id = await conn.fetchval(
                "SELECT user_id FROM sessions WHERE token_hash = $1 AND expires_at > now()", token_digest(token))
        if user_id is None:
            raise ProblemError("UNAUTHENTICATED", "The bearer token is missing, invalid or expired.")
        return user_id

    async def verify_pin(self, user_id: uuid.UUID, pin: str) -> PinCheck:
        """Hash and compare the payment PIN *before* any transaction or row lock is taken: scrypt costs
        milliseconds, and a transaction holding both accounts' row locks must not wait on it. Counters
        are not touched here; `settle_pin` applies the outcome inside the money transaction."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """SELECT pin_hash, pin_salt, pin_locked_until, pin_locked_until > now() AS locked
                   FROM users WHERE id = $1""", user_id)
        if row["locked"]:
            return PinCheck(None, row["pin_locked_until"])  # no hash: a locked PIN is not even tried
        return PinCheck(await verify_secret(pin, row["pin_salt"], row["pin_hash"], self.verified_pins), None)

    async def settle_pin(self, conn: asyncpg.Connection, user_id: uuid.UUID, check: PinCheck) -> ProblemError | None:
        """Apply a verified PIN inside the caller's transaction: re-check the lockout under the user row's
        lock (so concurrent guesses cannot slip past a lockout set meanwhile), reset or count failures.
        NO KEY UPDATE, not UPDATE: the FKs of the key/transaction rows hold KEY SHARE on the user row, and
        FOR UPDATE would conflict with those of concurrent money ops of the same user (deadlock).
        A refusal is returned, not raised, so the caller commits it with the idempotent refusal."""
        row = await conn.fetchrow(
            """SELECT failed_pins, pin_locked_until, pin_locked_until > now() AS locked
               FROM users WHERE id = $1 FOR NO KEY UPDATE""", user_id)
        if row["locked"]:
            return locked_problem(row["pin_locked_until"])
        if check.ok is None:  # locked when verified; the lock ran out in between: still refuse this attempt
            return locked_problem(check.locked_until)
        if check.ok:
            if row["failed_pins"]:
                await conn.execute("UPDATE users SET failed_pins = 0 WHERE id = $1", user_id)
            return None
        locked_until = await self.record_failure(conn, user_id, "pin")
        if locked_until is not None:
            return locked_problem(locked_until)
        return ProblemError("INVALID_PIN", "The payment PIN is wrong.")

    async def record_failure(self, conn: asyncpg.Connection, user_id: uuid.UUID, what: str) -> datetime | None:
        """Count one failure; the MAX_FAILURES-th locks for lockout_s and returns the lock's end."""
        counter, until = _LOCK_COLUMNS[what]
        row = await conn.fetchrow(
            f"""UPDATE users SET
                  {counter} = CASE WHEN {counter} + 1 >= {MAX_FAILURES} THEN 0 ELSE {counter} + 1 END,
                  {until} = CASE WHEN {counter} + 1 >= {MAX_FAILURES}
                                 THEN now() + make_interval(secs => $2) ELSE {until} END
                WHERE id = $1
                RETURNING {until} AS until, {until} > now() AS locked""",
            user_id, self.lockout_s)
        return row["until"] if row["locked"] else None
