"""What the wallet answers when its request deadline cuts a handler off (pure: RequestInfo → problem).

"Nothing was applied" (503 DATABASE_UNAVAILABLE) is only true if nothing was committed. Found by
`make chaos`: under db-latency a withdrawal committed, the deadline struck while the connection was
being released over the slow link, and the client was told 503 — the conservation check caught it.
"""

from __future__ import annotations

import uuid

from mock_wallet.middleware import deadline_problem
from mock_wallet.request_context import RequestInfo


def test_nothing_committed_is_database_unavailable() -> None:
    p = deadline_problem(RequestInfo("r1"))
    assert (p.code, p.status) == ("DATABASE_UNAVAILABLE", 503)


def test_a_committed_write_is_never_nothing_applied() -> None:
    p = deadline_problem(RequestInfo("r1", wrote=True))
    assert (p.code, p.status) == ("GATEWAY_TIMEOUT", 504)
    assert "Idempotency-Key" in p.detail


def test_a_commit_in_flight_is_unknown() -> None:
    assert deadline_problem(RequestInfo("r1", commit_in_flight=True)).status == 504


def test_a_pending_gateway_call_names_its_transaction() -> None:
    txn = uuid.uuid4()
    p = deadline_problem(RequestInfo("r1", pending_txn_id=txn, wrote=True))
    assert p.status == 504 and str(txn) in str(p.extra)
