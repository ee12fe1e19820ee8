"""junit.xml validates against Jenkins' published JUnit schema (tests/data/junit-10.xsd, source in
tests/data/README.md) and carries real counts, timestamp, hostname and <properties> for every status."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

from walletchaos.report.junit import write_junit
from walletchaos.run_status import error_verdict, skipped_verdict

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"
META = {"seed": 7, "backend": "process", "started_at": 1764690000.25, "finished_at": 1764690031.5,
        "scenario_sha256": "ab" * 32, "walletchaos_version": "0.1.0"}


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(SCHEMA))


def _verdicts() -> list[dict]:
    passed = {"scenario": "baseline", "passed": True, "meta": META,
              "results": [{"name": "ledger", "passed": True, "summary": "ok", "stats": {"duration_s": 0.01}},
                          {"name": "durability", "passed": True, "summary": "ok", "stats": {}}]}
    failed = {"scenario": "db-crash", "passed": False, "meta": {**META, "seed": 3},
              "results": [{"name": "ledger", "passed": True, "summary": "ok"},
                          {"name": "durability", "passed": False, "summary": "1 violation(s): acked_missing",
                           "counterexamples": [{"rule": "acked_missing", "op_id": "w0p1-u2-3",
                                                "detail": "control\x01char"}], "stats": {"violations": 1}}]}
    try:
        raise RuntimeError("PostgreSQL did not start: initdb failed\nlog tail <here> & there")
    except RuntimeError as exc:
        error = error_verdict("db-freeze", exc, META)
    skipped = skipped_verdict("wallet-kill", "url mode: the target's processes cannot be killed", META)
    return [passed, failed, error, skipped]


def test_junit_validates_against_jenkins_schema(schema: xmlschema.XMLSchema, tmp_path: Path) -> None:
    path = write_junit(_verdicts(), tmp_path / "junit.xml")
    schema.validate(str(path))  # raises with the offending element on any violation

    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "1", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    counts = {name: (s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped"))
              for name, s in suites.items()}
    assert counts == {"baseline": ("2", "0", "0", "0"), "db-crash": ("2", "1", "0", "0"),
                      "db-freeze": ("1", "0", "1", "0"), "wallet-kill": ("1", "0", "0", "1")}
    for s in suites.values():
        assert s.get("timestamp") == "2025-12-02T15:40:00"  # the run's start, UTC
        assert s.get("hostname") == socket.gethostname()
        assert s.get("time") == "31.250"
    props = {p.get("name"): p.get("value") for p in suites["db-crash"].findall("properties/property")}
    assert props == {"seed": "3", "backend": "process", "scenario_sha256": "ab" * 32, "walletchaos_version": "0.1.0"}

    error = suites["db-freeze"].find("testcase/error")
    assert error.get("message") == "RuntimeError: PostgreSQL did not start: initdb failed"
    assert "log tail <here> & there" in error.text and "Traceback" in error.text
    skipped = suites["wallet-kill"].find("testcase/skipped")
    assert skipped.get("message") == "url mode: the target's processes cannot be killed"
    failure = suites["db-crash"].find("testcase[@name='durability']/failure")
    assert "w0p1-u2-3" in failure.text and "\x01" not in failure.text


def test_schema_rejects_what_ci_could_not_read(schema: xmlschema.XMLSchema, tmp_path: Path) -> None:
    """The schema is a real check: a testsuite without its error count, or a bad time, is refused."""
    path = write_junit(_verdicts()[:1], tmp_path / "junit.xml")
    text = path.read_text()
    for broken in (re.sub(r' errors="\d+"', "", text, count=2), text.replace('time="31.250"', 'time="31s"', 1)):
        assert not schema.is_valid(broken)
    assert schema.is_valid(text)
