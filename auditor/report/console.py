"""The terminal report: a verdict banner, findings grouped by severity, a services summary,
and one line each for the diff and the rules-per-packet comparison."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from auditor.report.document import GROUP_HEADINGS, findings_by_level
from auditor.report.text import counts_line, evidence_text

_STYLE = {"ready": "bold green", "ready-with-warnings": "bold yellow", "blocked": "bold red", "incomplete": "bold magenta"}
_COLORS = {"blocker": "red", "warning": "yellow", "error": "magenta", "skipped": "bright_black", "info": "cyan"}
#: evidence items per finding unless verbose
SHOWN_EVIDENCE = 5


def _banner(report: Mapping[str, Any]) -> str:
    verdict = report["verdict"]
    cluster = f" (cluster {escape(str(report['cluster']))})" if report.get("cluster") else ""
    return (
        f"[{_STYLE.get(verdict, 'bold')}]{verdict.upper()}[/]  node {escape(str(report['node']))}{cluster}"
        f"  -  {escape(counts_line(report))}"
    )


def _finding(console: Console, f: Mapping[str, Any], level: str, color: str, verbose: bool) -> None:
    console.print(f"  [{color}]{f['id']}[/] {escape(f['title'])}", highlight=False)
    console.print(f"      {escape(f['message'])}", highlight=False)
    waiver = f.get("waiver")
    if waiver:
        state = "expired on" if waiver.get("expired") else "until"
        console.print(
            f"      [bright_black]waiver ({escape(waiver['owner'])}, {state} {escape(waiver['expires'])}): "
            f"{escape(waiver['reason'])}[/]",
            highlight=False,
        )
    if level in ("blocker", "warning", "error") or verbose:
        for e in f["evidence"][: None if verbose else SHOWN_EVIDENCE]:
            console.print(f"      - {escape(evidence_text(e))}", highlight=False)
        hidden = len(f["evidence"]) - SHOWN_EVIDENCE
        if hidden > 0 and not verbose:
            console.print(f"      [dim]- {hidden} more (--format json)[/]", highlight=False)
        if f["remediation"] and level != "error":
            console.print(f"      [bold]fix:[/] {escape(f['remediation'])}", highlight=False)


def _services(console: Console, report: Mapping[str, Any]) -> None:
    services = report["services"]["models"]
    if not services:
        return
    table = Table(title="Services", show_header=True)
    for column in ("mode", "service ports", "frontends", "endpoints", "results", "rules modelled"):
        table.add_column(column)
    for mode, m in services.items():
        cov = m["coverage"]
        results = ", ".join(f"{k} {v}" for k, v in m["results"].items())
        table.add_row(
            escape(mode), str(m["service_ports"]), str(m["frontends"]), str(m["endpoints"]), escape(results),
            f"{cov['rules_modelled']}/{cov['rules_seen']} ({cov['ratio']:.1%})",
        )
    console.print(table)


def _extras(console: Console, report: Mapping[str, Any]) -> None:
    diff = report.get("diff")
    if diff and not diff.get("error"):
        kind = "predicted " if diff.get("kind") == "prediction" else ""
        s = diff["summary"]
        console.print(f"Diff ({kind}iptables -> nftables): {s['unexpected']} unexpected, {s['expected']} expected difference(s)")
    paths = report.get("paths")
    if paths and paths.get("samples"):
        parts = ", ".join(
            f"{escape(s['service'])} {s['iptables']['rules']} -> {s['nftables']['rules']}" for s in paths["samples"]
        )
        console.print(f"kube-proxy rules per packet, iptables -> nftables: {parts}", highlight=False)


def print_report(report: Mapping[str, Any], console: Console | None = None, verbose: bool = False) -> None:
    """Render a `kp-audit.report/v1` document to the terminal."""
    console = console or Console()
    console.print(Panel(_banner(report), expand=False))
    snapshot = report.get("snapshot") or {}
    for reason in snapshot.get("incomplete_reasons") or ():
        console.print(f"[magenta]incomplete:[/] {escape(reason)}")
    groups = findings_by_level(report["findings"])
    for level, color in _COLORS.items():
        if not groups[level]:
            continue
        console.print(f"\n[bold {color}]{GROUP_HEADINGS[level]}[/]")
        for f in groups[level]:
            _finding(console, f, level, color, verbose)
    if groups["ok"]:
        passed = ", ".join(f["id"] for f in groups["ok"])
        console.print(f"\n[green]Passed or not applicable:[/] {passed}")
    _services(console, report)
    _extras(console, report)


def render_console(report: Mapping[str, Any]) -> str:
    """The terminal report as plain text (no colour), 100 columns wide."""
    buffer = io.StringIO()
    print_report(report, Console(file=buffer, width=100, color_system=None, force_terminal=False, soft_wrap=False))
    return buffer.getvalue()


__all__ = ["print_report", "render_console"]
