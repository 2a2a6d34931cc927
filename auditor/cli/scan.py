"""`kp-audit scan`: collect this node into a temporary snapshot, check it, report (read-only)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from auditor.audit import AuditOptions, audit_snapshot
from auditor.cli.check import CheckFormat, emit, target_version_option
from auditor.cli.collect import RichProgress
from auditor.collect.collector import collect
from auditor.collect.progress import NullProgress
from auditor.collect.progress import Progress as ProgressObserver
from auditor.collect.runner import DEFAULT_TIMEOUT
from auditor.collect.snapshot import check_output
from auditor.findings import FailOn


def register(app: typer.Typer) -> None:
    app.command("scan")(scan)


def scan(
    keep_snapshot: str | None = typer.Option(
        None, "--keep-snapshot", envvar="KP_AUDIT_KEEP_SNAPSHOT", metavar="PATH",
        help="Keep the snapshot here (a new directory, or .tar.gz) instead of a temporary one.",
    ),
    output_format: CheckFormat = typer.Option(CheckFormat.CONSOLE, "--format", "-f", envvar="KP_AUDIT_FORMAT", help="Output format."),
    fail_on: FailOn = typer.Option(FailOn.BLOCKER, "--fail-on", envvar="KP_AUDIT_FAIL_ON", help="Lowest severity that fails."),
    target_version: str | None = typer.Option(
        None, "--target-version", envvar="KP_AUDIT_TARGET_VERSION", metavar="VERSION",
        help="The kube-proxy version the node will run after the switch.",
    ),
    kube_proxy_config: str | None = typer.Option(
        None, "--kube-proxy-config", envvar="KP_AUDIT_KUBE_PROXY_CONFIG", metavar="FILE",
        help="kube-proxy's config file, when kube-proxy runs elsewhere.",
    ),
    timeout: float = typer.Option(DEFAULT_TIMEOUT, "--timeout", envvar="KP_AUDIT_TIMEOUT", min=0.1, help="Time limit per command."),
    quiet: bool = typer.Option(False, "--quiet", "-q", envvar="KP_AUDIT_QUIET", help="No progress display."),
    nft: str = typer.Option("nft", "--nft", envvar="KP_AUDIT_NFT", metavar="PATH", help="The nft binary to run."),
) -> None:
    """Collect, check and report in one go; exit 0 ready, 1 warnings (--fail-on warning), 2 blockers, 3 incomplete."""
    target = target_version_option(target_version)
    if keep_snapshot is not None:
        check_output(keep_snapshot)
    progress: ProgressObserver = NullProgress() if quiet or not sys.stderr.isatty() else RichProgress(Console(stderr=True))
    with tempfile.TemporaryDirectory(prefix="kp-audit-") as tmp:
        location = keep_snapshot or str(Path(tmp) / "snapshot")
        snapshot = collect(location, progress=progress, kube_proxy_config=kube_proxy_config, timeout=timeout, nft=nft)
        result = audit_snapshot(snapshot, AuditOptions(fail_on=fail_on, target_version=target))
    for reason in snapshot.incomplete_reasons():
        sys.stderr.write(f"kp-audit: error: {reason}\n")
    emit(result, output_format)
    raise typer.Exit(result.exit_code)
