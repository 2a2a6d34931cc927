"""Every renderer on one shared set of reports (ready, blocked, incomplete, waived, hostile):
the JSON validates against its schema, the JUnit against the XSD (lxml), node strings are
text in HTML, Markdown and JUnit, and the HTML is one self-contained file."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree

from auditor.check.registry import REGISTRY
from auditor.report.console import render_console
from auditor.report.formats import FORMATS
from auditor.report.html import render_html
from auditor.report.junit import render_junit
from auditor.report.markdown import code, escape, render_markdown
from tests.reportcases import EVIL_CHAIN, EVIL_COMMENT_RAW, build_reports, write_cases

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "auditor" / "report" / "schema"
CASES = ("ready", "blocked", "incomplete", "waived", "hostile")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return build_reports(write_cases(tmp_path_factory.mktemp("report-cases")))


@pytest.fixture(scope="module")
def report_schema() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMA_DIR / "report-v1.schema.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def junit_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "junit.xsd")))


def test_cases_cover_every_verdict(reports: dict[str, dict[str, Any]]) -> None:
    verdicts = {name: r["verdict"] for name, r in reports.items()}
    assert verdicts == {
        "ready": "ready",
        "blocked": "blocked",
        "incomplete": "incomplete",
        "waived": "ready",
        "hostile": "blocked",
    }
    assert reports["waived"]["summary"]["skipped"] == 1


# -- JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_json_validates_against_the_schema(reports: dict[str, dict[str, Any]], report_schema: Any, case: str) -> None:
    document = json.loads(FORMATS["json"].render(reports[case]))
    errors = sorted(report_schema.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_schema_rejects_what_it_should(reports: dict[str, dict[str, Any]], report_schema: Any) -> None:
    bad = json.loads(json.dumps(reports["blocked"]))
    bad["verdict"] = "fine"
    del bad["findings"][0]["evidence"]
    messages = " ".join(e.message for e in report_schema.iter_errors(bad))
    assert "'fine' is not one of" in messages and "'evidence' is a required property" in messages


def test_json_sections(reports: dict[str, dict[str, Any]]) -> None:
    blocked = reports["blocked"]
    assert blocked["cluster"] == "prod-eu1" and blocked["catalogue_version"] and blocked["tool"]["name"] == "kp-audit"
    assert blocked["diff"]["kind"] == "prediction" and blocked["diff"]["summary"]["unexpected"] == 0
    assert all(d["classification"] == "expected" for d in blocked["diff"]["differences"])
    assert blocked["services"]["predicted"]["mode"] == "nftables"
    samples = blocked["paths"]["samples"]
    assert [s["position"] for s in samples] == sorted(s["position"] for s in samples) and len(samples) >= 2
    first, last = samples[0], samples[-1]
    # iptables walks KUBE-SERVICES one rule per Service; nftables looks the address up in a map
    assert last["iptables"]["rules"] > first["iptables"]["rules"]
    assert last["nftables"]["rules"] == first["nftables"]["rules"] and last["nftables"]["predicted"]


# -- JUnit --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_junit_validates_against_the_xsd(reports: dict[str, dict[str, Any]], junit_schema: etree.XMLSchema, case: str) -> None:
    doc = etree.fromstring(render_junit(reports[case]).encode())
    assert junit_schema.validate(doc), junit_schema.error_log
    suite = doc.find("testsuite")
    assert suite is not None and int(suite.get("tests")) == len(REGISTRY)


def test_junit_outcomes(reports: dict[str, dict[str, Any]]) -> None:
    def outcome(case: str, check: str) -> str:
        doc = etree.fromstring(render_junit(reports[case]).encode())
        (tc,) = [t for t in doc.iter("testcase") if t.get("name").startswith(f"org.kp-audit.{check}:")]
        kids = [c.tag for c in tc if c.tag != "system-out"]
        return kids[0] if kids else "passed"

    assert outcome("blocked", "KPA-001") == "failure"
    assert outcome("waived", "KPA-001") == "skipped"
    assert outcome("incomplete", "KPA-004") in ("error", "passed")
    doc = etree.fromstring(render_junit(reports["ready"]).encode())
    assert doc.get("failures") == "0" and doc.get("errors") == "0"


def test_junit_warning_fails_only_with_fail_on_warning(reports: dict[str, dict[str, Any]]) -> None:
    report = json.loads(json.dumps(reports["ready"]))
    report["findings"][1].update(status="warn", severity="warning", message="a warning")
    doc = etree.fromstring(render_junit(report).encode())
    assert doc.get("failures") == "0"
    report["fail_on"] = "warning"
    failures = list(etree.fromstring(render_junit(report).encode()).iter("failure"))
    assert [f.get("type") for f in failures] == ["warning"]


def test_junit_without_findings_has_one_passing_case(reports: dict[str, dict[str, Any]], junit_schema: etree.XMLSchema) -> None:
    report = dict(reports["ready"], findings=[])
    doc = etree.fromstring(render_junit(report).encode())
    assert junit_schema.validate(doc)
    assert [t.get("name") for t in doc.iter("testcase")] == ["org.kp-audit.no-findings"]


# -- escaping -----------------------------------------------------------------------------------


class _Collect(HTMLParser):
    """Tags, attributes and text of a page, as a browser's parser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if not self._in_script:
            self.text.append(data)


def test_html_shows_node_strings_as_text(reports: dict[str, dict[str, Any]]) -> None:
    page = render_html(reports["hostile"])
    parser = _Collect()
    parser.feed(page)
    assert parser.tags.count("script") == 2  # the services data and the page's own script
    text = "".join(parser.text)
    comment = EVIL_COMMENT_RAW.replace('"', '\\"')  # as iptables-save writes it
    assert comment in text  # the rule comment, as text
    assert EVIL_CHAIN in text  # the chain name, as text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; \\&quot;quoted\\&quot;" in page
    data = page.split('<script type="application/json" id="services-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "&" not in data
    json.loads(data)


def test_markdown_shows_node_strings_as_text(reports: dict[str, dict[str, Any]]) -> None:
    text = render_markdown(reports["hostile"])
    outside_code = re.sub(r"(`+)(?:(?!\1).)*\1", "", text)
    assert "<script" not in outside_code and "</script" not in outside_code
    assert escape("<b>a&b</b> | @x") == "&lt;b&gt;a&amp;b&lt;/b&gt; \\| &#64;x"
    assert code("a`b|c") == "``a`b\\|c``"
    assert "EVIL<script>&amp" in text  # inside a code span: literal


def test_junit_shows_node_strings_as_text(reports: dict[str, dict[str, Any]]) -> None:
    raw = render_junit(reports["hostile"])
    assert "<script>" not in raw
    doc = etree.fromstring(raw.encode())
    failures = [f for f in doc.iter("failure") if EVIL_CHAIN in (f.get("message") or "")]
    assert failures and "-A EVIL<script>&amp -j KUBE-MARK-MASQ" in failures[0].text


def test_junit_drops_characters_xml_cannot_hold(reports: dict[str, dict[str, Any]], junit_schema: etree.XMLSchema) -> None:
    report = json.loads(json.dumps(reports["blocked"]))
    report["findings"][0]["message"] = "bell\x07 and nul\x00"
    doc = etree.fromstring(render_junit(report).encode())
    assert junit_schema.validate(doc)


# -- HTML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_html_is_self_contained(reports: dict[str, dict[str, Any]], case: str) -> None:
    page = render_html(reports[case])
    parser = _Collect()
    parser.feed(page)
    urls = [v for k, v in parser.attrs if k in ("src", "href", "action", "data", "poster", "srcset") and v]
    assert all(u.startswith("#") for u in urls), urls
    assert not re.search(r"@import|url\(", page)
    csp = [v for k, v in parser.attrs if k == "content" and v and "default-src" in v]
    assert csp and csp[0].startswith("default-src 'none';") and "connect-src" not in csp[0]
    assert 'id="verdict"' in page and 'id="services-table"' in page


def test_html_sections(reports: dict[str, dict[str, Any]]) -> None:
    page = render_html(reports["blocked"])
    assert 'data-verdict="blocked"' in page and "prod-eu1" in page
    assert 'data-id="KPA-001"' in page and "<svg" in page and 'id="diff"' in page
    waived = render_html(reports["waived"])
    assert 'data-status="skipped"' in waived and "node-team" in waived and "&lt;b&gt;next week&lt;/b&gt;" in waived


# -- console and the registry -------------------------------------------------------------------


def test_console(reports: dict[str, dict[str, Any]]) -> None:
    text = render_console(reports["waived"])
    assert "READY" in text and "Waived (skipped)" in text and "node-team" in text
    assert "BLOCKED" in render_console(reports["blocked"])


def test_every_format_renders_every_case(reports: dict[str, dict[str, Any]]) -> None:
    assert set(FORMATS) == {"console", "json", "html", "junit", "markdown"}
    filenames = [f.filename for f in FORMATS.values() if f.filename]
    assert len(filenames) == len(set(filenames))
    for fmt in FORMATS.values():
        for case in CASES:
            assert fmt.render(reports[case]).strip(), (fmt.name, case)
