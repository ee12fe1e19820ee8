"""The parts a wallet is built from. `create_app` builds one of each from this table; a planted defect
(mock_wallet/defects/) swaps one part for a subclass that replaces one step, so the healthy classes
carry no bug branches and no bug-only parameters."""

from __future__ import annotations

from dataclasses import dataclass, fields

from mock_wallet.auth import AuthService
from mock_wallet.db import Database
from mock_wallet.handlers import ProblemRenderer
from mock_wallet.idempotency import IdempotencyStore
from mock_wallet.ledger import Ledger
from mock_wallet.middleware import WalletMiddleware
from mock_wallet.money import MoneyService
from mock_wallet.queries import Queries


@dataclass
class WalletParts:
    database: type[Database] = Database
    ledger: type[Ledger] = Ledger
    auth: type[AuthService] = AuthService
    idempotency: type[IdempotencyStore] = IdempotencyStore
    money: type[MoneyService] = MoneyService
    queries: type[Queries] = Queries
    renderer: type[ProblemRenderer] = ProblemRenderer
    middleware: type[WalletMiddleware] = WalletMiddleware

    def replace(self, part: str, defective: type) -> None:
        """Use `defective` (a subclass of the healthy part) for `part`. A second defect on the same part
        wraps the first: the class becomes `(defective, current)`, so both steps stay replaced."""
        healthy = next(f.default for f in fields(self) if f.name == part)
        if not issubclass(defective, healthy):
            raise TypeError(f"{defective.__name__} does not subclass {healthy.__name__}")
        current = getattr(self, part)
        if issubclass(current, defective):  # already in (e.g. a defect that extends this one)
            return
        setattr(self, part, defective if current is healthy else type(defective.__name__, (defective, current), {}))

    def replaced(self) -> dict[str, str]:
        """part → class name, for the parts that are not the healthy ones."""
        return {f.name: getattr(self, f.name).__name__ for f in fields(self) if getattr(self, f.name) is not f.default}
