"""The money paths: transfers, deposits and withdrawals, and applying a gateway outcome.

Each step is a small function over one DB transaction, so planted bugs can later replace a single
step. Refusals are *returned* from inside the transaction and recorded on the idempotency key in the
same commit (with their side effects, e.g. a PIN failure counter), then raised after commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg

from mock_wallet import bugs, ledger
from mock_wallet.auth import AuthService, PinCheck
from mock_wallet.db import CommitInDoubt, Database
from mock_wallet.gateway_client import GatewayClient, GatewayResult, Operation, Outcome
from mock_wallet.idempotency import IdempotencyKey, IdempotencyStore
from mock_wallet.ledger import CLEARING
from mock_wallet.metrics import WalletMetrics
from mock_wallet.problems import ProblemError
from mock_wallet.request_context import note_pending


log = logging.getLogger("mock_wallet.money")

GATEWAY_OPERATION: dict[str, Operation] = {"deposit": "charges", "withdrawal": "payouts"}

# Planted bugs (mock_wallet/bugs.py): how long the defective paths leave their window open.
NON_ATOMIC_GAP_S = 0.25  # non-atomic-transfer: between the debit's commit and the credit's
WRITE_BEHIND_DELAY_S = 1.0  # ack-before-commit: the deposit is written this long after the 201
GATEWAY_RETRIES = 2  # gateway-retry-new-reference: extra attempts, each under a fresh reference
_background: set[asyncio.Task] = set()  # strong refs to write-behind tasks (ack-before-commit)


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
                 idempotency: IdempotencyStore) -> None:
        self.db = db
        self.auth = auth
        self.gateway = gateway
        self.metrics = metrics
        self.idempotency = idempotency

    # -- transfers -------------------------------------------------------------------------------
    async def transfer(self, idem: IdempotencyKey, from_id: uuid.UUID, to_id: uuid.UUID, amount: int,
                       pin: str) -> asyncpg.Record:
        """The transfer, or the replayed transaction of an earlier request with this key."""
        checked = await self._balance_outside_lock(from_id) if bugs.active("check-then-act") else None
        pin_check = await self.auth.verify_pin(idem.user_id, pin)
        async with self.db.transaction() as conn:
            replay = await self.idempotency.claim_in(conn, idem, state="done")
            if replay is not None:
                return replay.transaction
            result = await self._transfer_in_txn(conn, idem, from_id, to_id, amount, pin_check, checked)
            if isinstance(result, ProblemError):
                await idem.record_refusal(conn, result)
        if isinstance(result, ProblemError):
            raise result
        if bugs.active("non-atomic-transfer"):
            await self._credit_in_own_txn(result)
        return result

    async def _transfer_in_txn(self, conn: asyncpg.Connection, idem: IdempotencyKey, from_id: uuid.UUID,
                               to_id: uuid.UUID, amount: int, pin_check: PinCheck,
                               checked: int | None = None) -> asyncpg.Record | ProblemError:
        accounts = await ledger.lock_accounts(conn, [from_id, to_id])
        source, target = accounts.get(from_id), accounts.get(to_id)
        if source is None or source["user_id"] != idem.user_id or target is None or target["kind"] != "user":
            return account_not_found()
        refusal = await self.auth.settle_pin(conn, idem.user_id, pin_check)
        if refusal is not None:
            return refusal
        for account in (source, target):
            if account["status"] == "frozen":
                return frozen(account["id"])
        balance = source["balance"] if checked is None else checked  # check-then-act: the unlocked read
        if balance < amount:
            return insufficient(balance, amount)
        txn = await ledger.insert_transaction(conn, kind="transfer", status="succeeded", amount=amount,
                                              from_account=from_id, to_account=to_id, user_id=idem.user_id,
                                              idempotency_key=idem.key)
        if bugs.active("non-atomic-transfer"):  # PLANTED BUG: only the debit commits here
            await ledger.post_entries(conn, txn["id"], [(from_id, -amount)], balanced=False)
            return txn
        await ledger.post_entries(conn, txn["id"], [(from_id, -amount), (to_id, amount)])
        return txn

    async def _credit_in_own_txn(self, txn: asyncpg.Record) -> None:
        """PLANTED BUG non-atomic-transfer: the credit half of a transfer, a moment later, in a DB
        transaction of its own on a connection of its own (as if posted by a separate ledger client);
        if it fails, the debit stays committed and the money is gone."""
        await asyncio.sleep(NON_ATOMIC_GAP_S)
        async with self.db.unpooled_transaction() as conn:
            await ledger.post_entries(conn, txn["id"], [(txn["to_account_id"], txn["amount"])], balanced=False)

    async def _balance_outside_lock(self, account_id: uuid.UUID) -> int | None:
        """PLANTED BUG check-then-act: the balance as of now, read without any lock (None: no such
        account, the locked path decides)."""
        async with self.db.connection() as conn:
            return await conn.fetchval("SELECT balance FROM accounts WHERE id = $1", account_id)

    # -- deposits and withdrawals ----------------------------------------------------------------
    async def deposit(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int) -> asyncpg.Record:
        if bugs.active("ack-before-commit"):
            return await self._deposit_write_behind(idem, account_id, amount)
        return await self._deposit(idem, account_id, amount)

    async def _deposit(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int) -> asyncpg.Record:
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

    async def _deposit_write_behind(self, idem: IdempotencyKey, account_id: uuid.UUID,
                                    amount: int) -> dict[str, Any]:
        """PLANTED BUG ack-before-commit: answer "succeeded" at once and write the deposit (key claim,
        transaction, gateway charge, credit) in a background task a little later; a crash or kill in
        between loses a deposit the client was told had succeeded."""
        async with self.db.connection() as conn:
            owner = await conn.fetchval("SELECT user_id FROM accounts WHERE id = $1 AND kind = 'user'", account_id)
        if owner != idem.user_id:
            raise account_not_found()

        async def later() -> None:
            await asyncio.sleep(WRITE_BEHIND_DELAY_S)
            try:
                await self._deposit(idem, account_id, amount)
            except Exception as exc:  # noqa: BLE001 - nobody is waiting for this answer any more
                log.warning("write-behind deposit failed", extra={"error": repr(exc)})

        task = asyncio.create_task(later())
        _background.add(task)
        task.add_done_callback(_background.discard)
        return {"id": uuid.uuid4(), "kind": "deposit", "status": "succeeded", "amount": amount,
                "from_account_id": None, "to_account_id": account_id, "idempotency_key": idem.key,
                "created_at": datetime.now(timezone.utc), "failure_code": None}

    async def _open_deposit(self, conn: asyncpg.Connection, idem: IdempotencyKey, account_id: uuid.UUID,
                            amount: int) -> asyncpg.Record | ProblemError:
        account = (await ledger.lock_accounts(conn, [account_id])).get(account_id)
        if account is None or account["user_id"] != idem.user_id:
            return account_not_found()
        if account["status"] == "frozen":
            return frozen(account_id)
        return await ledger.insert_transaction(conn, kind="deposit", status="pending", amount=amount,
                                               from_account=None, to_account=account_id,
                                               user_id=idem.user_id, idempotency_key=idem.key)

    async def withdraw(self, idem: IdempotencyKey, account_id: uuid.UUID, amount: int, pin: str) -> asyncpg.Record:
        checked = await self._balance_outside_lock(account_id) if bugs.active("check-then-act") else None
        pin_check = await self.auth.verify_pin(idem.user_id, pin)
        async with self.db.transaction() as conn:
            replay = await self.idempotency.claim_in(conn, idem)
            if replay is not None:
                return replay.transaction
            result = await self._open_withdrawal(conn, idem, account_id, amount, pin_check, checked)
            if isinstance(result, ProblemError):
                await idem.record_refusal(conn, result)
        if isinstance(result, ProblemError):
            raise result
        return await self._settle_through_gateway(idem, result)

    async def _open_withdrawal(self, conn: asyncpg.Connection, idem: IdempotencyKey, account_id: uuid.UUID,
                               amount: int, pin_check: PinCheck,
                               checked: int | None = None) -> asyncpg.Record | ProblemError:
        """Check and hold the funds (user -amount, clearing +amount) with a pending transaction."""
        account = (await ledger.lock_accounts(conn, [account_id])).get(account_id)
        if account is None or account["user_id"] != idem.user_id:
            return account_not_found()
        refusal = await self.auth.settle_pin(conn, idem.user_id, pin_check)
        if refusal is not None:
            return refusal
        if account["status"] == "frozen":
            return frozen(account_id)
        balance = account["balance"] if checked is None else checked  # check-then-act: the unlocked read
        if balance < amount:
            return insufficient(balance, amount)
        txn = await ledger.insert_transaction(conn, kind="withdrawal", status="pending", amount=amount,
                                              from_account=account_id, to_account=None,
                                              user_id=idem.user_id, idempotency_key=idem.key)
        await ledger.post_entries(conn, txn["id"], [(account_id, -amount), (CLEARING, amount)])
        return txn

    async def _settle_through_gateway(self, idem: IdempotencyKey, txn: asyncpg.Record) -> asyncpg.Record:
        """Ask the gateway (reference = transaction id) and apply a definite answer; an unknown one
        leaves the transaction pending and answers GATEWAY_TIMEOUT with its id."""
        operation = GATEWAY_OPERATION[txn["kind"]]
        note_pending(txn["id"])  # if the deadline cuts us off now, the answer is GATEWAY_TIMEOUT with this id
        result = await self.gateway.submit(operation, str(txn["id"]), txn["amount"])
        self.metrics.gateway_calls.labels(operation, result.outcome.value).inc()
        if bugs.active("gateway-retry-new-reference"):  # PLANTED BUG: a retry the gateway cannot dedupe
            for _ in range(GATEWAY_RETRIES):
                if result.definite:
                    break
                result = await self.gateway.submit(operation, str(uuid.uuid4()), txn["amount"])
        if not result.definite and bugs.active("timeout-as-failure"):
            # PLANTED BUG: an unknown outcome (the gateway may well have applied it) taken as a refusal
            result = GatewayResult(Outcome.FAILED, f"treated as failed: {result.detail}")
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
            return await (ledger.set_status(conn, txn_id, "succeeded") if succeeded
                          else self._reverse_withdrawal(conn, txn))

    async def _credit_deposit(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        await ledger.post_entries(conn, txn["id"], [(txn["to_account_id"], txn["amount"]),
                                                    (CLEARING, -txn["amount"])])
        return await ledger.set_status(conn, txn["id"], "succeeded")

    async def _reverse_withdrawal(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        """Compensating entries give the held amount back; the transaction's entries then net to 0 per account."""
        await ledger.post_entries(conn, txn["id"], [(txn["from_account_id"], txn["amount"]),
                                                    (CLEARING, -txn["amount"])])
        return await self._fail(conn, txn)

    async def _fail(self, conn: asyncpg.Connection, txn: asyncpg.Record) -> asyncpg.Record:
        return await ledger.set_status(conn, txn["id"], "failed", "GATEWAY_ERROR")
