"""`kp-audit check SNAPSHOT`: verdicts and exit codes for every path, JSON field names,
`checks` and `explain`; snapshots are written by hand (plain files)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from auditor.check.registry import REGISTRY
from tests.cli import run_cli
from tests.snapshots import ready_host, write_snapshot_dir


def check(capsys, snapshot: Path, *extra: str) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, "check", str(snapshot), "--format", "json", *extra)
    assert "Traceback" not in err
    return code, json.loads(out) if out else {}


def test_ready_exits_0(tmp_path: Path, capsys) -> None:
    code, report = check(capsys, write_snapshot_dir(tmp_path / "s"))
    assert (code, report["verdict"]) == (0, "ready")
    assert report["schema"] == "kp-audit.report/v1" and report["node"] == "node-1"
    assert len(report["findings"]) == len(REGISTRY)
    for finding in report["findings"]:
        assert {"id", "severity", "status", "title", "evidence", "remediation", "docs"} <= set(finding)
    assert report["services"]["models"]["iptables"]["coverage"]["ratio"] == 1.0


def test_blocker_exits_2(tmp_path: Path, capsys) -> None:
    host = ready_host()
    host["kernel_release"] = "5.10.0-28-amd64"
    code, report = check(capsys, write_snapshot_dir(tmp_path / "s", host=host))
    assert (code, report["verdict"]) == (2, "blocked")
    assert any(f["id"] == "KPA-001" and f["status"] == "fail" for f in report["findings"])


def _warning_only(tmp_path: Path) -> Path:
    host = ready_host()
    host["kernel_release"] = "5.15.0-91-generic"
    del host["kube_proxy"]["config"]["conntrack"]
    return write_snapshot_dir(tmp_path / "s", host=host)


def test_warnings_exit_0_by_default_and_1_with_fail_on_warning(tmp_path: Path, capsys) -> None:
    snapshot = _warning_only(tmp_path)
    code, report = check(capsys, snapshot)
    assert (code, report["verdict"]) == (0, "ready-with-warnings")
    assert [f["id"] for f in report["findings"] if f["status"] == "warn"] == ["KPA-002"]
    assert check(capsys, snapshot, "--fail-on", "warning")[0] == 1
    assert check(capsys, snapshot, "--fail-on", "never")[0] == 0


def test_missing_required_source_exits_3_and_never_ready(tmp_path: Path, capsys) -> None:
    snapshot = write_snapshot_dir(tmp_path / "s", failed={"nftables": "nft: not found on PATH"})
    code, report = check(capsys, snapshot)
    assert (code, report["verdict"]) == (3, "incomplete")
    assert report["snapshot"]["incomplete_reasons"] == ["nftables: nft: not found on PATH"]


def test_blocker_wins_over_missing_data(tmp_path: Path, capsys) -> None:
    host = ready_host()
    host["kernel_release"] = "4.18.0-513.el8.x86_64"
    snapshot = write_snapshot_dir(tmp_path / "s", host=host, failed={"nftables": "timed out"})
    code, report = check(capsys, snapshot)
    assert (code, report["verdict"]) == (2, "blocked")


def test_check_error_makes_incomplete(tmp_path: Path, capsys) -> None:
    host = ready_host()
    host["kernel_release"] = None
    code, report = check(capsys, write_snapshot_dir(tmp_path / "s", host=host))
    assert (code, report["verdict"]) == (3, "incomplete")
    assert any(f["id"] == "KPA-001" and f["status"] == "error" for f in report["findings"])


def test_kube_proxy_not_running_is_still_audited(tmp_path: Path, capsys) -> None:
    host = ready_host()
    host["kube_proxy"] = {"running": False, "mode": None, "version": None, "flags": [], "config": None, "environment": {}}
    code, report = check(capsys, write_snapshot_dir(tmp_path / "s", host=host), "--target-version", "1.34")
    statuses = {f["id"]: f["status"] for f in report["findings"]}
    assert "error" not in statuses.values(), statuses
    assert report["verdict"] in ("ready", "ready-with-warnings") and code == 0


def test_target_version(tmp_path: Path, capsys) -> None:
    host = ready_host()
    host["kube_proxy"]["version"] = "v1.28.4"
    snapshot = write_snapshot_dir(tmp_path / "s", host=host)
    assert check(capsys, snapshot)[0] == 2
    assert check(capsys, snapshot, "--target-version", "v1.33.2")[0] == 0
    code, _, err = run_cli(capsys, "check", str(snapshot), "--target-version", "banana")
    assert code == 3 and "not a version" in err


def test_tarball_snapshot(tmp_path: Path, capsys) -> None:
    directory = write_snapshot_dir(tmp_path / "s")
    tarball = tmp_path / "s.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for item in directory.iterdir():
            tar.add(item, arcname=f"s/{item.name}")
    assert check(capsys, tarball)[0] == 0


@pytest.mark.parametrize("content", [None, "not json", '{"schema": "something-else"}'], ids=["missing", "garbage", "wrong-schema"])
def test_bad_snapshot_exits_3(tmp_path: Path, capsys, content) -> None:
    snapshot = write_snapshot_dir(tmp_path / "s")
    if content is None:
        (snapshot / "meta.json").unlink()
    else:
        (snapshot / "meta.json").write_text(content)
    code, out, err = run_cli(capsys, "check", str(snapshot))
    assert code == 3 and out == "" and err.startswith("kp-audit: error: ") and err.count("\n") == 1


def test_console_format(tmp_path: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "check", str(_warning_only(tmp_path)))
    assert code == 0 and "READY-WITH-WARNINGS" in out and "KPA-002" in out


def test_checks_and_explain(capsys) -> None:
    code, out, _ = run_cli(capsys, "checks")
    assert code == 0 and all(cid in out for cid in REGISTRY)
    code, out, _ = run_cli(capsys, "explain", "KPA-001")
    assert code == 0 and "Why it matters" in out and "Remediation" in out and "References" in out
    code, _, err = run_cli(capsys, "explain", "KPA-999")
    assert code == 3 and "no such check" in err


def test_only(tmp_path: Path, capsys) -> None:
    code, report = check(capsys, write_snapshot_dir(tmp_path / "s"), "--only", "KPA-001")
    assert [f["id"] for f in report["findings"]] == ["KPA-001"]
    code, _, err = run_cli(capsys, "check", str(tmp_path / "s"), "--only", "KPA-999")
    assert code == 3 and "no such check" in err
