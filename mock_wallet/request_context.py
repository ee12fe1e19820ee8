"""Per-request facts shared between the handler and the outer middleware.

A mutable object in a ContextVar: the middleware creates it, handlers fill it in (problem code for
metrics/logs, the pending transaction a gateway call is about), and the middleware still holds the same
object when the deadline backstop has to answer for a cancelled handler.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestInfo:
    request_id: str
    problem_code: str | None = None
    pending_txn_id: uuid.UUID | None = None  # set while waiting on the gateway for this transaction
    commit_in_flight: bool = False  # a COMMIT was sent and not yet confirmed: the outcome is unknown
    wrote: bool = False  # a read-write transaction committed: a later cut-off is never "nothing applied"


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def request_id() -> str:
    info = current_request.get()
    return info.request_id if info is not None else "-"


def note_pending(txn_id: uuid.UUID | None) -> None:
    info = current_request.get()
    if info is not None:
        info.pending_txn_id = txn_id


def note_commit(in_flight: bool, *, wrote: bool = False) -> None:
    info = current_request.get()
    if info is not None:
        info.commit_in_flight = in_flight
        info.wrote = info.wrote or wrote
