"""The verified-PIN cache (pure logic): it may skip scrypt for a secret already proven correct against
the same stored hash, and nothing else."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from mock_wallet import auth
from mock_wallet.auth import VerifiedSecrets, verify_secret


def _stored(secret: str) -> tuple[bytes, bytes]:
    salt = secrets.token_bytes(16)
    return salt, auth._hash(secret, salt)


def test_hit_only_for_the_same_secret_and_stored_hash() -> None:
    cache = VerifiedSecrets()
    salt, stored = _stored("123456")
    assert not cache.known(stored, "123456")
    cache.remember(stored, "123456")
    assert cache.known(stored, "123456")
    assert not cache.known(stored, "654321")
    _, other = _stored("123456")  # same PIN, another salt (another user, or the PIN was set again)
    assert not cache.known(other, "123456")


def test_bounded_lru() -> None:
    cache = VerifiedSecrets(maxsize=2)
    for h in (b"a", b"b"):
        cache.remember(h, "1")
    assert cache.known(b"a", "1")  # a is now the most recent
    cache.remember(b"c", "1")
    assert len(cache) == 2 and cache.known(b"a", "1") and cache.known(b"c", "1") and not cache.known(b"b", "1")


def test_verify_secret_remembers_only_correct_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = VerifiedSecrets()
    salt, stored = _stored("123456")
    calls: list[str] = []
    real = auth._hash
    monkeypatch.setattr(auth, "_hash", lambda s, salt_: calls.append(s) or real(s, salt_))

    async def go() -> list[bool]:
        return [await verify_secret(s, salt, stored, cache) for s in ("000000", "000000", "123456", "123456", "000000")]

    assert asyncio.run(go()) == [False, False, True, True, False]
    assert calls == ["000000", "000000", "123456", "000000"]  # wrong PINs always pay scrypt; the 2nd right one hit
