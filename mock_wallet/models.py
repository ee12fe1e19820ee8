"""Request and response bodies of the wallet API (pydantic), which also drive the OpenAPI document.

Amounts are strict integers (no floats, strings or booleans sneak through coercion) in minor units.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr, model_validator

MAX_AMOUNT = 10**12  # minor units; anything larger is a client error, not an overflow risk

Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="minor units (fen), integer")]
Pin = Annotated[StrictStr, Field(pattern=r"^[0-9]{6}$", description="6-digit payment PIN")]


Username = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
# what an Idempotency-Key may be (contract: 1-128 printable characters; we take printable ASCII)
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,128}$"


class RegisterIn(BaseModel):
    username: Username
    password: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    pin: Pin


class RegisterOut(BaseModel):
    user_id: UUID
    account_id: UUID


class LoginIn(BaseModel):
    username: Username
    password: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class LoginOut(BaseModel):
    token: str
    expires_at: str


class AccountOut(BaseModel):
    account_id: UUID
    balance: int
    currency: Literal["CNY"]
    status: Literal["active", "frozen"]


class TransactionOut(BaseModel):
    transaction_id: UUID
    kind: Literal["deposit", "withdrawal", "transfer"]
    status: Literal["pending", "succeeded", "failed"]
    amount: int
    from_account_id: UUID | None
    to_account_id: UUID | None
    idempotency_key: str | None
    created_at: str
    failure_code: str | None


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class DepositIn(BaseModel):
    account_id: UUID
    amount: Amount


class WithdrawalIn(BaseModel):
    account_id: UUID
    amount: Amount
    pin: Pin


class TransferIn(BaseModel):
    from_account_id: UUID
    to_account_id: UUID
    amount: Amount
    pin: Pin

    @model_validator(mode="after")
    def _distinct_accounts(self) -> "TransferIn":
        if self.from_account_id == self.to_account_id:
            raise ValueError("from_account_id and to_account_id must differ")
        return self


class MaintenanceIn(BaseModel):
    enabled: StrictBool
    retry_after_s: Annotated[StrictInt, Field(ge=0, le=86400)] = 30


class MaintenanceOut(BaseModel):
    enabled: bool
    retry_after_s: int


class AccountStatusOut(BaseModel):
    account_id: UUID
    status: Literal["active", "frozen"]


class ReconcileOut(BaseModel):
    resolved: int
    still_pending: int


class AuditOut(BaseModel):
    accounts: int
    total_balance: int
    ledger_total: int
    external_in: int
    external_out: int
    pending_count: int
    negative_accounts: list[str]
    mismatched_accounts: list[str]
    unbalanced_transactions: list[str]
    clearing_balance: int
    pending_withdrawal_holds: int


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str
    retryable: bool
    transaction_id: str | None = None
