"""`kp-audit demo`: audit the embedded demo node (a throwaway namespace as root, else the
recorded snapshot) and write its reports."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer

from auditor.audit import AuditOptions, audit_snapshot
from auditor.cli.check import CheckFormat, emit
from auditor.collect.snapshot import read_snapshot
from auditor.demo import RECORDED_SNAPSHOT, TARGET_VERSION, can_build_namespace, demo_namespace, scan_in_namespace
from auditor.versions import parse_version


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    output_dir: str = typer.Option("reports", "--output-dir", "-o", metavar="DIR", help="Where the reports go."),
    recorded: bool = typer.Option(False, "--recorded", help="Audit the recorded snapshot even as root."),
) -> None:
    """Build the demo node (root: a throwaway network namespace) and audit it; reports go to DIR."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    snapshot_dir = out / "demo-snapshot"
    why_not = "--recorded given" if recorded else can_build_namespace()
    if why_not is None:
        if snapshot_dir.exists():
            shutil.rmtree(snapshot_dir)
        with demo_namespace() as name:
            sys.stderr.write(f"kp-audit demo: demo node in namespace {name}; scanning it\n")
            scan_in_namespace(name, snapshot_dir, ["--format", "console"])
        source = snapshot_dir
    else:
        sys.stderr.write(f"kp-audit demo: {why_not}: auditing the recorded snapshot {RECORDED_SNAPSHOT}\n")
        source = RECORDED_SNAPSHOT
    result = audit_snapshot(read_snapshot(source), AuditOptions(target_version=parse_version(TARGET_VERSION)))
    (out / "report.json").write_text(__import__("json").dumps(result.report, indent=2) + "\n")
    if why_not is not None:
        emit(result, CheckFormat.CONSOLE)
    sys.stderr.write(f"kp-audit demo: reports written to {out}/ (verdict: {result.report['verdict']})\n")
