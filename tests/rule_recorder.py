"""pytest plugin (opt-in): record which checker rules fire in which test file.

Enabled by `-p tests.rule_recorder` with WALLETCHAOS_RULES_FIRED=<path>: every `Findings.add(rule, ...)`
during the session is attributed to the test file running it (PYTEST_CURRENT_TEST), and the map
rule → [test files] is written to <path> as JSON at the end. tests/test_rules_fire.py runs the checker tests
this way and asserts every declared rule fired in a test that names it.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from typing import Any

import pytest

from walletchaos.checks.base import Findings

ENV = "WALLETCHAOS_RULES_FIRED"
_FIRED: dict[str, set[str]] = defaultdict(set)
_ORIGINAL_ADD = Findings.add


def _recording_add(self: Findings, rule: str, **evidence: Any) -> None:
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    _FIRED[rule].add(current.split("::", 1)[0])
    _ORIGINAL_ADD(self, rule, **evidence)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(ENV):
        Findings.add = _recording_add  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    path = os.environ.get(ENV)
    if path:
        Findings.add = _ORIGINAL_ADD  # type: ignore[method-assign]
        with open(path, "w", encoding="utf-8") as f:
            json.dump({rule: sorted(files) for rule, files in _FIRED.items()}, f, indent=1, sort_keys=True)
