"""Scenario fields of the security round: judged_by, wallet_env, expect.logs_allowed; the catalog's
"judged by" column has no empty row."""

from __future__ import annotations

from pathlib import Path

import pytest

from walletchaos.checks import CHECKS
from walletchaos.scenario import ScenarioError, load_catalog, parse_scenario

CATALOG_DIR = Path(__file__).resolve().parent.parent / "scenarios"
BASE = "name: x\nfamily: baseline\nduration: 10s\n"


def test_fields_parse() -> None:
    s = parse_scenario(BASE + 'judged_by: [authorization, credentials]\nwallet_env: {WALLET_LOCKOUT_S: 3}\n'
                       'expect: {logs_allowed: ["deadlock detected"]}\n')
    assert s.judged_by == ["authorization", "credentials"]
    assert s.wallet_env == {"WALLET_LOCKOUT_S": "3"}
    assert s.expect.logs_allowed == ["deadlock detected"]
    again = s.with_overrides(duration_s=5, seed=3)
    assert again.wallet_env == s.wallet_env and again.judged_by == s.judged_by


@pytest.mark.parametrize(("text", "message"), [
    ("judged_by: [nope]\n", "judged_by: unknown invariant 'nope'"),
    ("wallet_env: {lower: 1}\n", "'lower' is not an environment variable name"),
    ("wallet_env: {WALLET_X: [1]}\n", "WALLET_X: must be a string or a number"),
    ("wallet_env: 3\n", "wallet_env: must be a mapping"),
    ('expect: {logs_allowed: ["("]}\n', "is not a valid regular expression"),
])
def test_bad_fields_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(BASE + text, source="s.yaml")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_every_catalog_scenario_is_judged_by_registered_invariants() -> None:
    for s in load_catalog(CATALOG_DIR):
        assert s.judged_by, f"{s.name}: judged_by is empty"
        assert set(s.judged_by) <= set(CHECKS)


def test_security_scenarios_name_their_invariant() -> None:
    by_name = {s.name: s for s in load_catalog(CATALOG_DIR)}
    assert "authorization" in by_name["unauthorised-access"].judged_by
    assert "credentials" in by_name["login-brute-force"].judged_by
    assert "frozen_accounts" in by_name["account-freeze"].judged_by
    assert float(by_name["login-brute-force"].wallet_env["WALLET_LOCKOUT_S"]) <= 5
