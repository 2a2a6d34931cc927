"""`kp-audit scan`: collect this node into a temporary snapshot, check it, report (read-only)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import typer
from rich.console import Console

from auditor.audit import audit_snapshot
from auditor.cli import report_options as opts
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
        None,
        "--keep-snapshot",
        envvar="KP_AUDIT_KEEP_SNAPSHOT",
        metavar="PATH",
        help="Keep the snapshot here (a new directory, or .tar.gz) instead of a temporary one.",
    ),
    output_format: list[str] = opts.FORMAT,
    output_dir: str | None = opts.OUTPUT_DIR,
    fail_on: FailOn = opts.FAIL_ON,
    exit_zero: bool = opts.EXIT_ZERO,
    waivers: str | None = opts.WAIVERS,
    today: str | None = opts.TODAY,
    cluster: str | None = opts.CLUSTER,
    target_version: str | None = opts.TARGET_VERSION,
    only: list[str] = opts.ONLY,
    no_color: bool = opts.NO_COLOR,
    kube_proxy_config: str | None = typer.Option(
        None,
        "--kube-proxy-config",
        envvar="KP_AUDIT_KUBE_PROXY_CONFIG",
        metavar="FILE",
        help="kube-proxy's config file, when kube-proxy runs elsewhere.",
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT, "--timeout", envvar="KP_AUDIT_TIMEOUT", min=0.1, help="Time limit per command."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", envvar="KP_AUDIT_QUIET", help="No progress display."),
    nft: str = typer.Option("nft", "--nft", envvar="KP_AUDIT_NFT", metavar="PATH", help="The nft binary to run."),
) -> None:
    """Collect, check and report in one go; exit 0 ready, 1 warnings (--fail-on warning), 2 blockers, 3 incomplete."""
    request = opts.output_request(output_format, output_dir, no_color)
    options = opts.audit_options(
        fail_on=fail_on,
        target_version=target_version,
        only=only,
        cluster=cluster,
        waivers=waivers,
        today=today,
        exit_zero=exit_zero,
    )
    if keep_snapshot is not None:
        check_output(keep_snapshot)
    progress: ProgressObserver = (
        NullProgress() if quiet or not sys.stderr.isatty() else RichProgress(Console(stderr=True))
    )
    with tempfile.TemporaryDirectory(prefix="kp-audit-") as tmp:
        location = keep_snapshot or str(Path(tmp) / "snapshot")
        snapshot = collect(location, progress=progress, kube_proxy_config=kube_proxy_config, timeout=timeout, nft=nft)
        result = audit_snapshot(snapshot, options)
    for reason in snapshot.incomplete_reasons():
        sys.stderr.write(f"kp-audit: error: {reason}\n")
    opts.emit_reports(result.report, request)
    raise typer.Exit(result.exit_code)
