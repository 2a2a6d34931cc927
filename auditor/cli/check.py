"""`kp-audit check SNAPSHOT`: every readiness check on a snapshot, offline and unprivileged;
`kp-audit checks` lists the checks and `kp-audit explain KPA-NNN` prints one's documentation."""

from __future__ import annotations

import importlib
import inspect
import json
from enum import StrEnum

import typer
from rich.console import Console
from rich.table import Table

from auditor.audit import AuditOptions, AuditResult, audit_snapshot
from auditor.check.registry import CATALOGUE_VERSION, REGISTRY
from auditor.collect.snapshot import read_snapshot
from auditor.errors import InputError
from auditor.findings import CheckID, FailOn
from auditor.report.console import print_report
from auditor.versions import Version, parse_version


class CheckFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("checks")(checks)
    app.command("explain")(explain)


def target_version_option(value: str | None) -> Version | None:
    if not value:
        return None
    version = parse_version(value)
    if version is None:
        raise InputError("--target-version", f"not a version: {value!r} (expected e.g. 1.33 or v1.33.2)")
    return version


def check(
    snapshot: str = typer.Argument(..., metavar="SNAPSHOT", help="A snapshot from `kp-audit collect` (directory or .tar.gz)."),
    output_format: CheckFormat = typer.Option(CheckFormat.CONSOLE, "--format", "-f", envvar="KP_AUDIT_FORMAT", help="Output format."),
    fail_on: FailOn = typer.Option(FailOn.BLOCKER, "--fail-on", envvar="KP_AUDIT_FAIL_ON", help="Lowest severity that fails (exit 1/2)."),
    target_version: str | None = typer.Option(
        None, "--target-version", envvar="KP_AUDIT_TARGET_VERSION", metavar="VERSION",
        help="The kube-proxy version the node will run after the switch (default: the one found).",
    ),
    only: list[str] = typer.Option([], "--only", metavar="KPA-NNN", help="Run only these checks (repeatable)."),
) -> None:
    """Check a snapshot for nftables readiness; exit 0 ready, 1 warnings (--fail-on warning), 2 blockers, 3 incomplete."""
    unknown = [c for c in only if c not in REGISTRY]
    if unknown:
        raise InputError("--only", f"no such check: {', '.join(unknown)} (see `kp-audit checks`)")
    options = AuditOptions(fail_on=fail_on, target_version=target_version_option(target_version), only=tuple(only))
    result = audit_snapshot(read_snapshot(snapshot), options)
    emit(result, output_format)
    raise typer.Exit(result.exit_code)


def emit(result: AuditResult, output_format: CheckFormat) -> None:
    if output_format is CheckFormat.JSON:
        typer.echo(json.dumps(result.report, indent=2))
    else:
        print_report(result.report, Console())


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
