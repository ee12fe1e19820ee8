"""junit.xml for CI: one <testsuite> per scenario, one <testcase> per invariant.

Built with ElementTree so the XML is well-formed by construction; strings from the history (error
bodies, problem details) may carry control characters that XML 1.0 forbids, so they are stripped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

COUNTEREXAMPLES_IN_BODY = 20
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


def _testsuite(verdict: Mapping[str, Any]) -> ET.Element:
    scenario = str(verdict.get("scenario") or "scenario")
    results = list(verdict.get("results") or [])
    if not results and not verdict.get("passed"):
        # A run that produced no invariant results still has to show up red in CI.
        results = [{"name": "verdict", "passed": False, "summary": "run produced no invariant results"}]
    suite = ET.Element("testsuite", name=xml_text(scenario), tests=str(len(results)),
                       failures=str(sum(not r.get("passed") for r in results)), errors="0", skipped="0",
                       time=_seconds(_suite_time(verdict)))
    for r in results:
        stats = r.get("stats") or {}
        case = ET.SubElement(suite, "testcase", classname=xml_text(scenario), name=xml_text(r.get("name", "?")),
                             time=_seconds(stats.get("duration_s", stats.get("elapsed_s"))))
        if not r.get("passed"):
            failure = ET.SubElement(case, "failure", message=xml_text(r.get("summary", "")), type="InvariantViolated")
            failure.text = _failure_body(r)
    return suite


def write_junit(verdicts: Sequence[Mapping[str, Any]], path: Path, *, suite_name: str = "walletchaos") -> Path:
    """Write JUnit XML for verdict dicts (verdict.json form); returns the path."""
    root = ET.Element("testsuites", name=suite_name)
    suites = [_testsuite(v) for v in verdicts]
    root.extend(suites)
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in suites)))
    root.set("time", _seconds(sum(float(s.get("time", "0")) for s in suites)))
    ET.indent(root)
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
