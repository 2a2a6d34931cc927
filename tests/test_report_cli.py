"""The CI gate from the command line: formats and output directory, exit codes with --fail-on and
--exit-zero, the KP_AUDIT_* environment variables, and no half-written report on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from auditor.report.formats import FORMATS
from tests.cli import run_cli
from tests.reportcases import old_kernel_host
from tests.snapshots import ready_host, write_snapshot_dir


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-cases")
    warning = ready_host()
    warning["kernel_release"] = "5.15.0-91-generic"
    del warning["kube_proxy"]["config"]["conntrack"]
    return {
        "ready": write_snapshot_dir(root / "ready"),
        "warning": write_snapshot_dir(root / "warning", host=warning),
        "blocked": write_snapshot_dir(root / "blocked", host=old_kernel_host()),
        "incomplete": write_snapshot_dir(root / "incomplete", failed={"nftables": "nft: not found"}),
    }


@pytest.mark.parametrize(
    ("case", "flags", "code"),
    [
        ("ready", (), 0),
        ("warning", (), 0),
        ("warning", ("--fail-on", "warning"), 1),
        ("warning", ("--fail-on", "never"), 0),
        ("blocked", (), 2),
        ("blocked", ("--fail-on", "warning"), 2),
        ("blocked", ("--fail-on", "never"), 0),
        ("blocked", ("--exit-zero",), 0),
        ("incomplete", (), 3),
        ("incomplete", ("--fail-on", "never"), 3),
        ("incomplete", ("--exit-zero",), 0),
    ],
)
def test_exit_codes(snapshots: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str, flags: tuple[str, ...], code: int) -> None:
    got, out, err = run_cli(capsys, "check", str(snapshots[case]), "--format", "json", *flags)
    report = json.loads(out)
    assert got == code == report["exit_code"], err
    assert report["exit_zero"] is ("--exit-zero" in flags)


def test_environment_variables(snapshots: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KP_AUDIT_FORMAT", "json")
    monkeypatch.setenv("KP_AUDIT_FAIL_ON", "warning")
    monkeypatch.setenv("KP_AUDIT_CLUSTER", "prod-eu1")
    monkeypatch.setenv("KP_AUDIT_TARGET_VERSION", "1.34.1")
    code, out, _ = run_cli(capsys, "check", str(snapshots["warning"]))
    report = json.loads(out)
    assert (code, report["cluster"], report["target_version"]) == (1, "prod-eu1", "1.34.1")
    monkeypatch.setenv("KP_AUDIT_EXIT_ZERO", "1")
    assert run_cli(capsys, "check", str(snapshots["warning"]))[0] == 0
    monkeypatch.setenv("KP_AUDIT_ONLY", "KPA-001,KPA-004")
    report = json.loads(run_cli(capsys, "check", str(snapshots["warning"]))[1])
    assert [f["id"] for f in report["findings"]] == ["KPA-001", "KPA-004"]


def test_several_formats_into_a_directory(snapshots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    code, out, err = run_cli(
        capsys, "check", str(snapshots["blocked"]), "-f", "json,html", "--format", "junit", "--format", "markdown", "-o", str(out_dir)
    )
    assert code == 2 and out == ""  # findings went to files; the headline and the file list to stderr
    assert "BLOCKED: node node-1" in err and "report.html" in err
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html", "report.json", "report.md", "report.xml"]
    assert json.loads((out_dir / "report.json").read_text())["verdict"] == "blocked"
    etree.fromstring((out_dir / "report.xml").read_bytes())


def test_output_dir_alone_writes_every_file_and_prints_the_console(
    snapshots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KP_AUDIT_OUTPUT_DIR", str(tmp_path / "env-out"))
    code, out, _ = run_cli(capsys, "check", str(snapshots["ready"]))
    assert code == 0 and "READY" in out
    names = sorted(p.name for p in (tmp_path / "env-out").iterdir())
    assert names == sorted(f.filename for f in FORMATS.values() if f.filename)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (("--format", "html"), "html is written to a file: give --output-dir DIR"),
        (("--format", "junit"), "junit is written to a file"),
        (("--format", "json", "--format", "markdown"), "several formats need --output-dir DIR"),
        (("--format", "yaml"), "unknown format yaml"),
        (("--fail-on", "sometimes"), "sometimes"),
        (("--today", "tomorrow"), "--today: not a date"),
    ],
)
def test_bad_flags_exit_3_before_any_work(snapshots: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: tuple[str, ...], problem: str) -> None:
    code, out, err = run_cli(capsys, "check", str(snapshots["ready"]), *flags)
    assert code == 3 and out == "" and problem in err


def test_markdown_to_stdout(snapshots: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "check", str(snapshots["blocked"]), "--format", "markdown")
    assert code == 2 and out.startswith("## ") and "KPA-001" in out


def test_a_failed_run_leaves_no_file(snapshots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    write_snapshot_dir(broken)
    (broken / "meta.json").write_text("not json")
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, "check", str(broken), "-f", "json,html", "-o", str(out_dir))
    assert code == 3 and err.startswith("kp-audit: error:")
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_reports_are_replaced_whole(snapshots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "report.json").write_text("old")
    run_cli(capsys, "check", str(snapshots["ready"]), "-f", "json", "-o", str(out_dir))
    assert json.loads((out_dir / "report.json").read_text())["verdict"] == "ready"
    assert [p.name for p in out_dir.iterdir()] == ["report.json"]  # no temporary file left


def test_demo_writes_the_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "demo", "--recorded", "--output-dir", str(tmp_path))
    assert code == 0 and "BLOCKED" in out and "recorded snapshot" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json", "report.md", "report.xml"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cluster"] == "demo" and report["summary"]["skipped"] == 1
    assert report["created"] == report["snapshot"]["created"]  # reproducible: dated by its snapshot
