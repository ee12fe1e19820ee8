"""Property-based fuzzing of the live wallet from its own /openapi.json (schemathesis 3.x).

Whatever the input, the wallet must never answer 500, and every error must be a contract problem:
application/problem+json with a catalog code whose status matches and the response's request id.
Calls carry a valid user token on /v1 and the admin token on /admin so authenticated paths are exercised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from mock_wallet.problems import CATALOG
from tests.wallet_fixtures import User, WalletStack, start_stack

pytestmark = pytest.mark.slow
MIN_CASES = 300
schemathesis.experimental.OPEN_API_3_1.enable()  # FastAPI emits OpenAPI 3.1
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[WalletStack]:
    yield from start_stack("fuzz", WALLET_GATEWAY_TIMEOUT_S="1.0")


@pytest.fixture(scope="module")
def fuzz_user(fuzz_stack) -> User:
    with fuzz_stack.client() as c:
        return fuzz_stack.new_user(c, balance=10_000)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_stack):
    return schemathesis.from_uri(fuzz_stack.url + "/openapi.json", base_url=fuzz_stack.url)


schema = schemathesis.from_pytest_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_500_and_every_error_is_a_problem(case, fuzz_stack, fuzz_user):
    token = fuzz_stack.admin if case.path.startswith("/admin") else fuzz_user.headers
    try:
        response = case.call(headers=token, timeout=10)
    except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
        return  # the client library refused to send a generated header; nothing reached the wallet
    CASES[f"{case.method} {case.path}"] += 1
    if case.path == "/admin/maintenance":
        requests.post(fuzz_stack.url + "/admin/maintenance", json={"enabled": False}, headers=fuzz_stack.admin,
                      timeout=10)
    assert response.status_code != 500, (response.text, fuzz_stack.wallet.log_tail(4000))
    assert response.headers.get("x-request-id")
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        body = response.json()
        assert body["code"] in CATALOG, body
        assert CATALOG[body["code"]].status == response.status_code == body["status"], body
        assert body["request_id"] == response.headers["x-request-id"]
        assert {"type", "title", "detail", "retryable"} <= body.keys()


def test_fuzz_case_count(record_property):
    """Runs after the fuzz test in this module: enough cases were actually sent."""
    total = sum(CASES.values())
    record_property("fuzz_cases", total)
    print(f"\nfuzz cases sent: {total} over {len(CASES)} operations")
    assert total >= MIN_CASES, CASES
