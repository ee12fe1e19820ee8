"""junit.xml for CI: one <testsuite> per scenario, one <testcase> per invariant.

Built with ElementTree so the XML is well-formed by construction; strings from the history (error
bodies, problem details) may carry control characters that XML 1.0 forbids, so they are stripped.

Each <testsuite> carries real `tests`/`failures`/`errors`/`skipped` counts, `timestamp` (the run's
start, UTC, ISO 8601 without offset as Ant/Jenkins expect), `hostname`, and <properties>: seed,
backend, scenario_sha256 (the resolved scenario that ran), walletchaos_version. A run that could
not run (status error, walletchaos.run_status) is one <testcase name="run"> with an <error>; a skipped
scenario one with <skipped message=reason>. The output validates against Jenkins' junit-10.xsd
(tests/data/junit-10.xsd, tests/test_junit_schema.py).
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from walletchaos.run_status import status_of

COUNTEREXAMPLES_IN_BODY = 20
PROPERTIES = ("seed", "backend", "scenario_sha256", "walletchaos_version")  # from the verdict's meta
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """Text ElementTree can serialise into valid XML 1.0."""
    return _XML_INVALID.sub("\ufffd", str(value))


def _seconds(value: Any) -> str:
    return f"{float(value):.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "0.000"


def _suite_time(verdict: Mapping[str, Any]) -> float:
    meta = verdict.get("meta") or {}
    start, end = meta.get("started_at"), meta.get("finished_at")
    ok = all(isinstance(v, (int, float)) for v in (start, end))
    return float(end - start) if ok and end >= start else 0.0


def _failure_body(result: Mapping[str, Any]) -> str:
    examples = result.get("counterexamples") or []
    total = (result.get("stats") or {}).get("violations", len(examples))
    lines = [str(result.get("summary", ""))]
    lines += [orjson.dumps(ex, default=str).decode() for ex in examples[:COUNTEREXAMPLES_IN_BODY]]
    if isinstance(total, int) and total > min(len(examples), COUNTEREXAMPLES_IN_BODY):
        lines.append(f"... {total - min(len(examples), COUNTEREXAMPLES_IN_BODY)} more")
    return xml_text("\n".join(lines))


def _timestamp(meta: Mapping[str, Any]) -> str | None:
    start = meta.get("started_at")
    if not isinstance(start, (int, float)) or isinstance(start, bool):
        return None
    return datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _properties(suite: ET.Element, meta: Mapping[str, Any]) -> None:
    props = ET.SubElement(suite, "properties")
    for name in PROPERTIES:
        if meta.get(name) is not None:
            ET.SubElement(props, "property", name=name, value=xml_text(meta[name]))


def _testsuite(verdict: Mapping[str, Any], hostname: str) -> ET.Element:
    scenario = str(verdict.get("scenario") or "scenario")
    meta = verdict.get("meta") or {}
    status = status_of(verdict)
    results = list(verdict.get("results") or [])
    if status in ("error", "skipped"):  # the run could not / did not run: one case that says why
        results = [{"name": "run", "status": status}]
    elif not results and status != "passed":  # a run that produced no invariant results is still red in CI
        results = [{"name": "verdict", "passed": False, "summary": "run produced no invariant results"}]
    suite = ET.Element("testsuite", name=xml_text(scenario), tests=str(len(results)),
                       failures=str(sum(r.get("status") is None and not r.get("passed") for r in results)),
                       errors=str(sum(r.get("status") == "error" for r in results)),
                       skipped=str(sum(r.get("status") == "skipped" for r in results)),
                       time=_seconds(_suite_time(verdict)))
    if (stamp := _timestamp(meta)) is not None:
        suite.set("timestamp", stamp)
    suite.set("hostname", hostname)
    _properties(suite, meta)
    for r in results:
        stats = r.get("stats") or {}
        case = ET.SubElement(suite, "testcase", classname=xml_text(scenario), name=xml_text(r.get("name", "?")),
                             time=_seconds(stats.get("duration_s", stats.get("elapsed_s"))))
        if r.get("status") == "error":
            text = str(verdict.get("error") or "the run produced no invariant results")
            error = ET.SubElement(case, "error", message=xml_text(text.splitlines()[0] if text else ""),
                                  type="ScenarioCouldNotRun")
            error.text = xml_text("\n".join(filter(None, [text, verdict.get("traceback")])))
        elif r.get("status") == "skipped":
            ET.SubElement(case, "skipped", message=xml_text(verdict.get("reason") or "skipped"))
        elif not r.get("passed"):
            failure = ET.SubElement(case, "failure", message=xml_text(r.get("summary", "")), type="InvariantViolated")
            failure.text = _failure_body(r)
    return suite


def write_junit(verdicts: Sequence[Mapping[str, Any]], path: Path, *, suite_name: str = "walletchaos") -> Path:
    """Write JUnit XML for verdict dicts (verdict.json form); returns the path."""
    root = ET.Element("testsuites", name=suite_name)
    hostname = socket.gethostname()
    suites = [_testsuite(v, hostname) for v in verdicts]
    root.extend(suites)
    for attr in ("tests", "failures", "errors"):  # junit-10.xsd has no `skipped` on <testsuites>
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in suites)))
    ET.indent(root)
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
