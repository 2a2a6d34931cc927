"""The JUnit XML report (Jenkins, GitLab): one test suite per node, one test case per check.

A blocker that fails is a `<failure>`; a warning is a `<failure>` too when the report was
made with `--fail-on warning`, else the test case passes with the warning in its
`<system-out>`. A check that could not be evaluated is an `<error>`; a waived finding is
`<skipped>` with the waiver. With no finding at all, one passing "no findings" test case,
so CI shows a green test rather than an empty file. Test cases are named `org.kp-audit.KPA-NNN`,
as ruff names them; the severity is the failure's `type`.

The output validates against auditor/report/schema/junit.xsd (the structure Jenkins'
junit/xunit plugins and GitLab read). Every string is escaped by the XML writer, and
characters XML 1.0 cannot hold are replaced.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from auditor.report.text import evidence_text, headline

#: characters XML 1.0 does not allow, even escaped
_INVALID_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
PROGRAM = "kp-audit"


def clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", "" if text is None else str(text))


def _body(f: Mapping[str, Any]) -> str:
    lines = [f["message"], ""]
    lines += [f"- {evidence_text(e)}" for e in f["evidence"]]
    if f.get("remediation"):
        lines += ["", f"Fix: {f['remediation']}"]
    if f.get("docs"):
        lines.append(f"Docs: {f['docs']}")
    return clean("\n".join(lines))


def _case(suite: ET.Element, classname: str, f: Mapping[str, Any], fail_on: str) -> str:
    """Add one test case; returns its outcome: passed, failure, error, skipped."""
    case = ET.SubElement(suite, "testcase", name=clean(f"org.{PROGRAM}.{f['id']}: {f['title']}"), classname=classname, time="0")
    status, severity = f["status"], f["severity"]
    level = severity if status == "fail" else "warning" if status == "warn" and severity != "info" else None
    if level == "blocker" or (level == "warning" and fail_on == "warning"):
        ET.SubElement(case, "failure", type=level, message=clean(f["message"])).text = _body(f)
        return "failure"
    if status == "error":
        ET.SubElement(case, "error", type="not-evaluated", message=clean(f["message"])).text = _body(f)
        return "error"
    if status == "skipped":
        w = f.get("waiver") or {}
        note = f"waived by {w.get('owner', '?')} until {w.get('expires', '?')}: {w.get('reason', '')}"
        ET.SubElement(case, "skipped", type="waived", message=clean(note)).text = _body(f)
        return "skipped"
    ET.SubElement(case, "system-out").text = clean(f"{status}: {f['message']}")
    return "passed"


def render_junit(report: Mapping[str, Any]) -> str:
    """The whole JUnit XML document."""
    node = str(report["node"])
    classname = clean(f"{PROGRAM}.{node}")
    suite = ET.Element("testsuite", name=clean(f"{PROGRAM} {node}"))
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", report["verdict"]),
        ("node", node),
        ("cluster", report.get("cluster") or ""),
        ("fail_on", report["fail_on"]),
        ("exit_code", report["exit_code"]),
        ("tool_version", report["tool"]["version"]),
        ("catalogue_version", report["catalogue_version"]),
    ):
        ET.SubElement(props, "property", name=name, value=clean(value))
    outcomes: list[str] = [_case(suite, classname, f, str(report["fail_on"])) for f in report["findings"]]
    if not outcomes:
        ET.SubElement(suite, "testcase", name=f"org.{PROGRAM}.no-findings", classname=classname, time="0")
        outcomes.append("passed")
    ET.SubElement(suite, "system-out").text = clean(headline(report))
    counts = {k: outcomes.count(k) for k in ("failure", "error", "skipped")}
    suite.set("tests", str(len(outcomes)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    suite.set("time", "0")
    suite.set("timestamp", clean(str(report["created"]).removesuffix("Z")))
    suite.set("hostname", clean(node))
    root = ET.Element(
        "testsuites",
        name=PROGRAM,
        tests=str(len(outcomes)),
        failures=str(counts["failure"]),
        errors=str(counts["error"]),
        time="0",
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["render_junit"]
