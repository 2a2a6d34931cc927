"""`kp-audit demo`: audit the embedded demo node (a throwaway namespace as root, else the
recorded snapshot) and write its reports: report.json, report.html, report.xml, report.md.

The demo applies fixtures/demo-waivers.yaml (one waived finding, so the reports show what a
waiver looks like) and dates the report by its snapshot, so `make demo` on the recorded
snapshot gives the same files every time.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import typer

from auditor.audit import AuditOptions, audit_snapshot
from auditor.cli import report_options as opts
from auditor.collect.snapshot import read_snapshot
from auditor.demo import RECORDED_SNAPSHOT, TARGET_VERSION, can_build_namespace, demo_namespace, scan_in_namespace
from auditor.versions import parse_version

DEMO_WAIVERS = RECORDED_SNAPSHOT.parent / "demo-waivers.yaml"
DEMO_CLUSTER = "demo"


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    output_dir: str = typer.Option(
        "reports", "--output-dir", "-o", envvar="KP_AUDIT_OUTPUT_DIR", metavar="DIR", help="Where the reports go."
    ),
    recorded: bool = typer.Option(
        False, "--recorded", envvar="KP_AUDIT_RECORDED", help="Audit the recorded snapshot even as root."
    ),
    keep_snapshot: str | None = typer.Option(
        None,
        "--keep-snapshot",
        envvar="KP_AUDIT_KEEP_SNAPSHOT",
        metavar="DIR",
        help="Keep the live demo node's snapshot here (default: a temporary directory).",
    ),
    output_format: list[str] = opts.FORMAT,
    no_color: bool = opts.NO_COLOR,
) -> None:
    """Build the demo node (root: a throwaway network namespace) and audit it; reports go to DIR."""
    request = opts.output_request(output_format, output_dir, no_color)
    why_not = "--recorded given" if recorded else can_build_namespace()
    with tempfile.TemporaryDirectory(prefix="kp-audit-demo-") as tmp:
        if why_not is None:
            snapshot_dir = Path(keep_snapshot) if keep_snapshot else Path(tmp) / "demo-snapshot"
            if snapshot_dir.exists():
                shutil.rmtree(snapshot_dir)
            with demo_namespace() as name:
                sys.stderr.write(f"kp-audit demo: demo node in namespace {name}; scanning it\n")
                scan = ["--format", "json", "--output-dir", str(Path(tmp) / "scan")]
                scan_in_namespace(name, snapshot_dir, Path(tmp), scan)
            # read it by its own name, so the reports' evidence does not name a deleted temporary path
            where, name = snapshot_dir.resolve().parent, snapshot_dir.name
        else:
            sys.stderr.write(f"kp-audit demo: {why_not}: auditing the recorded snapshot {RECORDED_SNAPSHOT}\n")
            where, name = Path.cwd(), _shown(RECORDED_SNAPSHOT)
        waivers = opts.waivers_option(str(DEMO_WAIVERS)) if DEMO_WAIVERS.exists() else ()
        with contextlib.chdir(where):
            snapshot = read_snapshot(name)
            options = AuditOptions(
                target_version=parse_version(TARGET_VERSION),
                cluster=DEMO_CLUSTER,
                waivers=waivers,
                created=_created(snapshot.meta.created),
            )
            result = audit_snapshot(snapshot, options)
    opts.emit_reports(result.report, request)
    sys.stderr.write(f"kp-audit demo: reports written to {output_dir}/ (verdict: {result.report['verdict']})\n")


def _shown(path: Path) -> str:
    """The snapshot's path relative to the working directory when inside it (reports name it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _created(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
