"""`kp-audit check SNAPSHOT`: every readiness check on a snapshot, offline and unprivileged;
`kp-audit checks` lists the checks and `kp-audit explain KPA-NNN` prints one's documentation."""

from __future__ import annotations

import importlib
import inspect

import typer
from rich.console import Console
from rich.table import Table

from auditor.audit import audit_snapshot
from auditor.check.registry import CATALOGUE_VERSION, REGISTRY
from auditor.cli import report_options as opts
from auditor.collect.snapshot import read_snapshot
from auditor.errors import InputError
from auditor.findings import CheckID, FailOn


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("checks")(checks)
    app.command("explain")(explain)


def check(
    snapshot: str = typer.Argument(
        ..., metavar="SNAPSHOT", help="A snapshot from `kp-audit collect` (directory or .tar.gz)."
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
) -> None:
    """Check a snapshot for nftables readiness; exit 0 ready, 1 warnings (--fail-on warning), 2 blockers, 3 incomplete."""
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
    result = audit_snapshot(read_snapshot(snapshot), options)
    opts.emit_reports(result.report, request)
    raise typer.Exit(result.exit_code)


def checks() -> None:
    """List every check: ID, severity, title."""
    table = Table(title=f"kp-audit checks (catalogue {CATALOGUE_VERSION})")
    for column in ("ID", "Severity", "Title"):
        table.add_column(column)
    for cid, cls in sorted(REGISTRY.items()):
        table.add_row(cid, cls.severity.value, cls.title)
    Console().print(table)


def explain(check_id: str = typer.Argument(..., metavar="KPA-NNN", help="The check to explain.")) -> None:
    """Print a check's documentation: what it checks, why it matters, remediation, references."""
    cls = REGISTRY.get(CheckID(check_id.upper()))
    if cls is None:
        raise InputError(check_id, "no such check (see `kp-audit checks`)")
    doc = inspect.cleandoc(importlib.import_module(cls.__module__).__doc__ or "")
    typer.echo(f"{cls.id}: {cls.title}\nSeverity when it fails: {cls.severity.value}\nDocs: {cls.docs}\n")
    typer.echo(doc)
    typer.echo(f"\nRemediation (short): {cls.remediation}")
