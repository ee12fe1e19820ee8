"""pin-bypass: the cache of verified payment PINs answers "verified" for a user who has an entry at all,
without comparing the PIN: after one correct PIN, every wrong PIN of that user moves money (until the
entry is evicted or the wallet restarts)."""

from __future__ import annotations

from mock_wallet.auth import AuthService, VerifiedSecrets
from mock_wallet.parts import WalletParts


class UserKeyedPinCache(VerifiedSecrets):
    def known(self, stored_hash: bytes, secret: str) -> bool:
        if stored_hash not in self._tags:
            return False
        self._tags.move_to_end(stored_hash)
        return True


class PinBypassAuthService(AuthService):
    pin_cache_class = UserKeyedPinCache


def plant(parts: WalletParts) -> None:
    parts.replace("auth", PinBypassAuthService)
