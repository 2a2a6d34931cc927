"""The terminal report: a verdict banner, findings grouped by severity, a services summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from auditor.report.document import findings_by_level

_STYLE = {"ready": "bold green", "ready-with-warnings": "bold yellow", "blocked": "bold red", "incomplete": "bold magenta"}
_HEADINGS = {
    "blocker": ("Blockers", "red"),
    "warning": ("Warnings", "yellow"),
    "error": ("Not evaluated", "magenta"),
    "info": ("For your information", "cyan"),
}


def print_report(report: Mapping[str, Any], console: Console | None = None, verbose: bool = False) -> None:
    """Render a `kp-audit.report/v1` document to the terminal."""
    console = console or Console()
    verdict = report["verdict"]
    summary = report["summary"]
    banner = (
        f"[{_STYLE.get(verdict, 'bold')}]{verdict.upper()}[/]  node {escape(str(report['node']))}"
        f"  -  {summary['blockers']} blocker(s), {summary['warnings']} warning(s)"
    )
    console.print(Panel(banner, expand=False))
    snapshot = report.get("snapshot") or {}
    for reason in snapshot.get("incomplete_reasons") or ():
        console.print(f"[magenta]incomplete:[/] {escape(reason)}")
    groups = findings_by_level(report["findings"])
    for level, (heading, color) in _HEADINGS.items():
        if not groups[level]:
            continue
        console.print(f"\n[bold {color}]{heading}[/]")
        for f in groups[level]:
            console.print(f"  [{color}]{f['id']}[/] {escape(f['title'])}")
            console.print(f"      {escape(f['message'])}", highlight=False)
            if level in ("blocker", "warning", "error") or verbose:
                for e in f["evidence"][:5 if not verbose else None]:
                    value = f": {escape(str(e['value']))}" if e["value"] is not None else ""
                    source = f"  [dim]({escape(e['source'])})[/]" if e["source"] else ""
                    console.print(f"      - {escape(e['what'])}{value}{source}", highlight=False)
                if f["remediation"] and level != "error":
                    console.print(f"      [bold]fix:[/] {escape(f['remediation'])}", highlight=False)
    if groups["ok"]:
        passed = ", ".join(f["id"] for f in groups["ok"])
        console.print(f"\n[green]Passed or not applicable:[/] {passed}")
    services = report["services"]["models"]
    if services:
        table = Table(title="Services", show_header=True)
        for column in ("mode", "service ports", "frontends", "endpoints", "results", "rules modelled"):
            table.add_column(column)
        for mode, m in services.items():
            cov = m["coverage"]
            results = ", ".join(f"{k} {v}" for k, v in m["results"].items())
            table.add_row(mode, str(m["service_ports"]), str(m["frontends"]), str(m["endpoints"]), results,
                          f"{cov['rules_modelled']}/{cov['rules_seen']} ({cov['ratio']:.1%})")
        console.print(table)
