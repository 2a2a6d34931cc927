"""Waivers: the file format and its errors, active / scoped / expired waivers, and what the
CI gate and the reports make of them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from auditor.check.waivers import WaiverRule, WaiverScope, apply_waivers, load_waivers, parse_waivers
from auditor.errors import InputError
from auditor.findings import CheckID, Evidence, Finding, Severity, Status
from tests.cli import run_cli
from tests.reportcases import hostile_iptables, old_kernel_host
from tests.snapshots import write_snapshot_dir

TODAY = date(2026, 11, 26)


def rule(check: str = "KPA-001", expires: date = date(2027, 1, 1), **scope: str) -> WaiverRule:
    return WaiverRule(CheckID(check), "accepted for now", "team-a", expires, WaiverScope(**scope), "w.yaml: waiver 1")


def nodeport_finding(*services: str) -> Finding:
    rows = [{"service": s, "port": 30000 + i, "protocol": "tcp", "address": "10.0.0.9"} for i, s in enumerate(services)]
    return Finding(
        CheckID("KPA-008"), Severity.BLOCKER, Status.FAIL, "NodePorts stop answering", "they stop",
        (Evidence("stops answering NodePorts", "10.0.0.9 (eth1)", "host.json"),), details={"nodeports": rows},
    )


# -- the file -----------------------------------------------------------------------------------


def test_load_a_waiver_file(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - check: kpa-009\n    reason: DNS cache moves off localhost\n    owner: dns-team\n    expires: 2027-03-31\n"
        "    scope: {node: 'worker-*', service: 'kube-system/*'}\n"
    )
    (w,) = load_waivers(path, known_checks={"KPA-009"})
    assert (w.check, w.owner, w.expires) == ("KPA-009", "dns-team", date(2027, 3, 31))
    assert w.scope == WaiverScope(node="worker-*", service="kube-system/*") and w.origin == f"{path}: waiver 1"
    assert parse_waivers("", "empty.yaml") == () and parse_waivers("waivers: []", "e.yaml") == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("waivers: [\n", "w.yaml:"),
        ("- check: KPA-001\n  reason: r\n  owner: o\n  expires: 2027-01-01\n- check: KPA-002\n  reason: r\n  expires: 2027-01-01\n", "w.yaml: waiver 2: missing owner"),
        ("- {check: KPA-1, reason: r, owner: o, expires: 2027-01-01}", "waiver 1: check 'KPA-1' is not a check ID"),
        ("- {check: KPA-999, reason: r, owner: o, expires: 2027-01-01}", "waiver 1: no such check: KPA-999"),
        ("- {check: KPA-001, reason: r, owner: o, expires: soon}", "waiver 1: expires 'soon' is not a date"),
        ("- {check: KPA-001, reason: r, owner: o, expires: 2027-01-01, until: x}", "waiver 1: unknown key(s): until"),
        ("- {check: KPA-001, reason: r, owner: o, expires: 2027-01-01, scope: {pod: x}}", "unknown scope key(s): pod"),
        ("- {check: KPA-001, reason: r, owner: o, expires: 2027-01-01, scope: worker-1}", "scope must be a mapping"),
        ("waivers: {check: KPA-001}", "expected a list of waivers"),
        ("- just a string", "waiver 1: expected a mapping"),
    ],
    ids=["yaml", "missing", "bad-id", "unknown-id", "bad-date", "unknown-key", "scope-key", "scope-type", "not-a-list", "entry"],
)
def test_bad_waiver_files(text: str, problem: str) -> None:
    with pytest.raises(InputError) as info:
        parse_waivers(text, "w.yaml", known_checks={"KPA-001", "KPA-002"})
    assert problem in str(info.value)


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.yaml: cannot read the waiver file"):
        load_waivers(tmp_path / "nope.yaml")


# -- matching -----------------------------------------------------------------------------------


def test_active_waiver_skips_and_keeps_the_finding() -> None:
    (waived,) = apply_waivers([nodeport_finding("ns1/a:http")], [rule("KPA-008")], node="node-1", today=TODAY)
    assert waived.status is Status.SKIPPED and waived.level is None
    assert waived.waiver is not None and not waived.waiver.expired and waived.waiver.owner == "team-a"
    assert "waived until 2027-01-01" in waived.message and "they stop" in waived.message
    assert waived.details["waived_status"] == "fail" and waived.evidence


def test_waiver_is_valid_through_its_expiry_date() -> None:
    (same_day,) = apply_waivers([nodeport_finding("a")], [rule("KPA-008", TODAY)], node="n", today=TODAY)
    assert same_day.status is Status.SKIPPED


def test_expired_waiver_turns_back_into_a_finding() -> None:
    (finding,) = apply_waivers([nodeport_finding("a")], [rule("KPA-008", date(2026, 11, 1))], node="n", today=TODAY)
    assert finding.status is Status.FAIL and finding.level is Severity.BLOCKER
    assert finding.waiver is not None and finding.waiver.expired
    assert "expired on 2026-11-01" in finding.message


def test_node_scope_matches_one_node_not_another() -> None:
    waiver = rule("KPA-008", node="worker-*")
    assert apply_waivers([nodeport_finding("a")], [waiver], node="worker-7", today=TODAY)[0].status is Status.SKIPPED
    assert apply_waivers([nodeport_finding("a")], [waiver], node="control-1", today=TODAY)[0].status is Status.FAIL


def test_service_scope_covers_all_the_services_a_finding_names() -> None:
    both = nodeport_finding("ns1/a:http", "ns1/b:http")
    mixed = nodeport_finding("ns1/a:http", "ns2/c:http")
    waiver = rule("KPA-008", service="ns1/*")
    assert apply_waivers([both], [waiver], node="n", today=TODAY)[0].status is Status.SKIPPED
    (partial,) = apply_waivers([mixed], [waiver], node="n", today=TODAY)
    assert partial.status is Status.FAIL and partial.waiver is None
    assert "does not cover 1 of 2 service(s) named here (ns2/c:http)" in partial.message
    (other,) = apply_waivers([both], [rule("KPA-008", service="ns9/*")], node="n", today=TODAY)
    assert other.status is Status.FAIL


def test_service_scope_falls_back_to_the_evidence() -> None:
    finding = Finding(
        CheckID("KPA-020"), Severity.WARNING, Status.WARN, "t", "m", (Evidence("external-ip of ns2/svc9:http (eTP Local)", "1.2.3.4:80"),)
    )
    assert apply_waivers([finding], [rule("KPA-020", service="ns2/svc9:*")], node="n", today=TODAY)[0].status is Status.SKIPPED
    assert apply_waivers([finding], [rule("KPA-020", service="ns3/*")], node="n", today=TODAY)[0].status is Status.WARN


def test_waivers_leave_passing_findings_and_other_checks_alone() -> None:
    passed = Finding(CheckID("KPA-008"), Severity.BLOCKER, Status.PASS, "t", "fine")
    other = nodeport_finding("a")
    out = apply_waivers([passed, other], [rule("KPA-001")], node="n", today=TODAY)
    assert [f.status for f in out] == [Status.PASS, Status.FAIL] and all(f.waiver is None for f in out)


# -- through the CLI ----------------------------------------------------------------------------


def _waiver_file(tmp_path: Path, check: str, expires: str, scope: str = "") -> Path:
    path = tmp_path / f"waivers-{check}-{expires}.yaml"
    path.write_text(
        f"waivers:\n  - check: {check}\n    reason: planned\n    owner: ops\n    expires: {expires}\n" + (f"    scope: {scope}\n" if scope else "")
    )
    return path


def _check(capsys: pytest.CaptureFixture[str], snapshot: Path, *extra: str) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, "check", str(snapshot), "--format", "json", "--today", "2026-11-26", *extra)
    assert "Traceback" not in err, err
    return code, json.loads(out) if out else {}


def test_cli_active_and_expired_waivers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = write_snapshot_dir(tmp_path / "s", host=old_kernel_host())
    code, report = _check(capsys, snapshot, "--waivers", str(_waiver_file(tmp_path, "KPA-001", "2027-01-01")))
    assert (code, report["verdict"], report["summary"]["skipped"]) == (0, "ready", 1)
    (finding,) = [f for f in report["findings"] if f["id"] == "KPA-001"]
    assert finding["status"] == "skipped" and finding["waiver"]["owner"] == "ops"
    assert report["waivers"][0]["state"] == "active" and report["waivers"][0]["waived"] == ["KPA-001"]
    code, report = _check(capsys, snapshot, "--waivers", str(_waiver_file(tmp_path, "KPA-001", "2026-11-25")))
    assert (code, report["verdict"]) == (2, "blocked")
    (finding,) = [f for f in report["findings"] if f["id"] == "KPA-001"]
    assert finding["status"] == "fail" and finding["waiver"]["expired"] and "expired on 2026-11-25" in finding["message"]
    assert report["waivers"][0]["state"] == "expired" and report["waivers"][0]["expired_on"] == ["KPA-001"]


def test_cli_node_scoped_waiver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    waivers = _waiver_file(tmp_path, "KPA-001", "2027-01-01", "{node: 'node-1'}")
    mine = write_snapshot_dir(tmp_path / "a", host=old_kernel_host(), hostname="node-1")
    other = write_snapshot_dir(tmp_path / "b", host=old_kernel_host(), hostname="node-2")
    assert _check(capsys, mine, "--waivers", str(waivers))[0] == 0
    code, report = _check(capsys, other, "--waivers", str(waivers))
    assert code == 2 and report["waivers"][0]["not_applied"] == ["KPA-001: node 'node-2' does not match 'node-1'"]


def test_cli_chain_scoped_waiver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = write_snapshot_dir(tmp_path / "s", iptables={"iptables-nft-save.txt": hostile_iptables()})
    assert _check(capsys, snapshot)[0] == 2
    assert _check(capsys, snapshot, "--waivers", str(_waiver_file(tmp_path, "KPA-012", "2027-01-01", "{chain: 'EVIL*'}")))[0] == 0
    assert _check(capsys, snapshot, "--waivers", str(_waiver_file(tmp_path, "KPA-012", "2027-01-01", "{chain: 'cali-*'}")))[0] == 2


def test_cli_waivers_from_the_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = write_snapshot_dir(tmp_path / "s", host=old_kernel_host())
    monkeypatch.setenv("KP_AUDIT_WAIVERS", str(_waiver_file(tmp_path, "KPA-001", "2027-01-01")))
    assert _check(capsys, snapshot)[0] == 0
    monkeypatch.setenv("KP_AUDIT_WAIVERS", str(tmp_path / "missing.yaml"))
    code, out, err = run_cli(capsys, "check", str(snapshot))
    assert code == 3 and "missing.yaml: cannot read the waiver file" in err and out == ""
