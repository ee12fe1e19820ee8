"""The money paths: transfers, deposits and withdrawals, and applying a gateway outcome.

Each step is a small method over one DB transaction (a planted defect, mock_wallet/defects/, replaces
one of them in a subclass). Refusals are *returned* from inside the transaction and recorded on the
idempotency key in the same commit (with their side effects, e.g. a PIN failure counter), then raised
after commit.
"""

from __future__ import annotations

import uuid

import asyncpg

from mock_wallet.auth import AuthService, PinCheck
from mock_wallet.db import CommitInDoubt, Database
from mock_wallet.gateway_client import GatewayClient, GatewayResult, Operation, Outcome
from mock_wallet.idempotency import IdempotencyKey, IdempotencyStore
from mock_wallet.ledger import CLEARING, Ledger
from mock_wallet.metrics import WalletMetrics
from mock_wallet.problems import ProblemError
from mock_wallet.request_context import note_pending

GATEWAY_OPERATION: dict[str, Operation] = {"deposit": "charges", "withdrawal": "payouts"}


def account_not_found() -> ProblemError:
    return ProblemError("ACCOUNT_NOT_FOUND", "No such account.")


def frozen(account_id: uuid.UUID) -> ProblemError:
    return ProblemError("ACCOUNT_FROZEN", f"Account {account_id} is frozen by risk control.")


def insufficient(balance: int, amount: int) -> ProblemError:
    return ProblemError("INSUFFICIENT_FUNDS", f"Balance {balance} is below the amount {amount}.")


def gateway_failed(txn: asyncpg.Record, detail: str) -> ProblemError:
    return ProblemError("GATEWAY_ERROR", f"The payment gateway refused or failed ({detail}); nothing was applied.",
                        extra={"transaction_id": str(txn["id"])})


def gateway_unknown(txn_id: uuid.UUID, detail: str) -> ProblemError:
    return ProblemError("GATEWAY_TIMEOUT",
                        f"The payment gateway's answer is unknown ({detail}); the transaction is pending "
                        "and will be settled by reconciliation.", extra={"transaction_id": str(txn_id)})


class MoneyService:
    """Every money op claims its idempotency key inside its own first transaction (one commit, not two),
    and verifies the PIN before that transaction begins (no scrypt while row locks are held)."""

    def __init__(self, db: Database, auth: AuthService, gateway: GatewayClient, metrics: WalletMetrics,
                 idempotency: IdempotencyStore, ledger: Ledger) -> None:
        self.db = db
        self.auth = auth
        self.gateway = gateway
        self.metrics = metrics
        self.idempotency = idempotency
        self.ledger = ledger

    # -- the checks every money op makes, in this order: owner, PIN, frozen, funds -------------------
    def _may_debit(self, account: asyncpg.Record | None, user_id: uuid.UUID) -> bool:
        """Money leaves an account only at its owner's request."""
        return account is not None and account["user_id"] == user_id

    def _frozen_refusal(self, *, paying: asyncpg.Record | None = None,
                        receiving: asyncpg.Record | None = None) -> ProblemError | None:
        """A frozen account neither pays nor receives."""
        for account in (paying, receiving):
            if account is not None and account["status"] == "frozen":
                return frozen(account["id"])
        return None

    def _funds_refusal(self, account: asyncpg.Record, amount: int) -> ProblemError | None:
        """`account` is the row locked in this transaction: its balance cannot change before the commit."""
        return insufficient(account["balance"], amount) if account["balance"] < amount else None

    # -- transfers -------------------------------------------------------------------------------
    async def transfer(self, idem: IdempotencyKey, from_id: uuid.UUID, to_id: uuid.UUID, amount: int,
                       pin: str) -> asyncpg.Record:
        """The transfer, or the replayed transaction of an earlier request with this key."""
        pin_check = await self.auth.verify_pin(idem.user_id, pin)
        async with self.db.transaction() as conn:
            replay = await self.idempotency.claim_in(conn, idem, state="done")
            if replay is not None:
                return replay.transaction
            result = await self._transfer_in_txn(conn, idem, from_id, to_id, amount, pin_check)
            if isinstance(result, ProblemError):
                await idem.record_refusal(conn, result)
        if isinstance(result, ProblemError):
            raise result
        return result

    async def _transfer_in_txn(self, conn: asyncpg.Connection, idem: IdempotencyKey, from_id: uuid.UUID,
                               to_id: uuid.UUID, amount: int, pin_check: PinCheck) -> asyncpg.Record | ProblemError:
        accounts = await self.ledger.lock_accounts(conn, [from_id, to_id])
        source, target = accounts.get(from_id), accounts.get(to_id)
        if not self._may_debit(source, idem.user_id) or target is None or target["kind"] != "user":
            return account_not_found()
        refusal = (await self.auth.settle_pin(conn, idem.user_id, pin_check)
                   or self._frozen_refusal(paying=source, receiving=target)
                   or self._funds_refusal(source, amount))
        if refusal is not None:
            return refusal
        txn = await self.ledger.insert_transaction(conn, kind="transfer", status="succeeded", amount=amount,
                                                   from_account=from_id, to_account=to_id, user_id=idem.user_id,
                                                   idempotency_key=idem.key)
        await self._post_transfer(conn, txn)
        return txn

    async def _post_transfer(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> None:
        """Both legs of a transfer, in the transaction that creates it."""
        await self.ledger.post_entries(conn, txn["id"], [(txn["from_account_id"], -txn["amount"]),
                                                         (txn["to_account_id"], txn["amount"])])

    # -- deposits and withdrawals ----------------------------------------------------------------
    async def deposit(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int) -> asyncpg.Record:
        async with self.db.transaction() as conn:
            replay = await self.idempotency.claim_in(conn, idem)
            if replay is not None:
                return replay.transaction
            result = await self._open_deposit(conn, idem, account_id, amount)
            if isinstance(result, ProblemError):
                await idem.record_refusal(conn, result)
        if isinstance(result, ProblemError):
            raise result
        return await self._settle_through_gateway(idem, result)

    async def _open_deposit(self, conn: asyncpg.Connection, idem: IdempotencyKey, account_id: uuid.UUID,
                            amount: int) -> asyncpg.Record | ProblemError:
        account = (await self.ledger.lock_accounts(conn, [account_id])).get(account_id)
        if account is None or account["user_id"] != idem.user_id:
            return account_not_found()
        refusal = self._frozen_refusal(receiving=account)
        if refusal is not None:
            return refusal
        return await self.ledger.insert_transaction(conn, kind="deposit", status="pending", amount=amount,
                                                    from_account=None, to_account=account_id,
                                                    user_id=idem.user_id, idempotency_key=idem.key)

    async def withdraw(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int, pin: str) -> asyncpg.Record:
        pin_check = await self.auth.verify_pin(idem.user_id, pin)
        async with self.db.transaction() as conn:
            replay = await self.idempotency.claim_in(conn, idem)
            if replay is not None:
                return replay.transaction
            result = await self._open_withdrawal(conn, idem, account_id, amount, pin_check)
            if isinstance(result, ProblemError):
                await idem.record_refusal(conn, result)
        if isinstance(result, ProblemError):
            raise result
        return await self._settle_through_gateway(idem, result)

    async def _open_withdrawal(self, conn: asyncpg.Connection, idem: IdempotencyKey, account_id: uuid.UUID,
                               amount: int, pin_check: PinCheck) -> asyncpg.Record | ProblemError:
        """Check and hold the funds (user -amount, clearing +amount) with a pending transaction."""
        account = (await self.ledger.lock_accounts(conn, [account_id])).get(account_id)
        if not self._may_debit(account, idem.user_id):
            return account_not_found()
        refusal = (await self.auth.settle_pin(conn, idem.user_id, pin_check)
                   or self._frozen_refusal(paying=account)
                   or self._funds_refusal(account, amount))
        if refusal is not None:
            return refusal
        txn = await self.ledger.insert_transaction(conn, kind="withdrawal", status="pending", amount=amount,
                                                   from_account=account_id, to_account=None,
                                                   user_id=idem.user_id, idempotency_key=idem.key)
        await self.ledger.post_entries(conn, txn["id"], [(account_id, -amount), (CLEARING, amount)])
        return txn

    async def _ask_gateway(self, operation: Operation, txn: asyncpg.Record) -> GatewayResult:
        """One gateway call under the transaction's id as its reference (the gateway dedupes on it)."""
        result = await self.gateway.submit(operation, str(txn["id"]), txn["amount"])
        self.metrics.gateway_calls.labels(operation, result.outcome.value).inc()
        return result

    async def _settle_through_gateway(self, idem: IdempotencyKey, txn: asyncpg.Record) -> asyncpg.Record:
        """Ask the gateway (reference = transaction id) and apply a definite answer; an unknown one
        leaves the transaction pending and answers GATEWAY_TIMEOUT with its id."""
        note_pending(txn["id"])  # if the deadline cuts us off now, the answer is GATEWAY_TIMEOUT with this id
        result = await self._ask_gateway(GATEWAY_OPERATION[txn["kind"]], txn)
        if not result.definite:
            await self._finish_key(idem)
            raise gateway_unknown(txn["id"], result.detail)
        try:
            settled = await self.apply_outcome(txn["id"], result, idem)
        except ProblemError as exc:
            if exc.code != "DATABASE_UNAVAILABLE" and not isinstance(exc, CommitInDoubt):
                raise
            # the gateway decided but we could not record it: still pending, reconcile will apply it
            raise gateway_unknown(txn["id"], "the outcome could not be recorded") from None
        if settled["status"] == "failed":
            raise gateway_failed(settled, result.detail)
        return settled

    async def _finish_key(self, idem: IdempotencyKey) -> None:
        """Best effort: once the key is done, duplicates replay the transaction's state at once instead
        of REQUEST_IN_PROGRESS until the lease ends."""
        try:
            async with self.db.transaction() as conn:
                await idem.mark_done(conn)
        except ProblemError:
            pass

    async def apply_outcome(self, txn_id: uuid.UUID, result: GatewayResult,
                            idem: IdempotencyKey | None = None) -> asyncpg.Record:
        """Apply a definite gateway outcome to a pending transaction, exactly once (row lock + status
        check), whether it comes from the request itself or from reconcile. The request's own key is
        marked done in the same commit."""
        async with self.db.transaction() as conn:
            if idem is not None:
                await idem.mark_done(conn)
            txn = await conn.fetchrow("SELECT * FROM transactions WHERE id = $1 FOR UPDATE", txn_id)
            if txn["status"] != "pending":
                return txn
            succeeded = result.outcome is Outcome.SUCCEEDED
            if txn["kind"] == "deposit":
                return await (self._credit_deposit(conn, txn) if succeeded else self._fail(conn, txn))
            return await (self.ledger.set_status(conn, txn_id, "succeeded") if succeeded
                          else self._reverse_withdrawal(conn, txn))

    async def _credit_deposit(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        await self.ledger.post_entries(conn, txn["id"], [(txn["to_account_id"], txn["amount"]),
                                                         (CLEARING, -txn["amount"])])
        return await self.ledger.set_status(conn, txn["id"], "succeeded")

    async def _reverse_withdrawal(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        """Compensating entries give the held amount back; the transaction's entries then net to 0 per account."""
        await self.ledger.post_entries(conn, txn["id"], [(txn["from_account_id"], txn["amount"]),
                                                         (CLEARING, -txn["amount"])])
        return await self._fail(conn, txn)

    async def _fail(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        return await self.ledger.set_status(conn, txn["id"], "failed", "GATEWAY_ERROR")
