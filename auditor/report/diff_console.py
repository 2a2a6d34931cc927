"""`kp-audit diff` on a terminal: unexpected differences first, each with its evidence."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditor.diff.types import Difference, DiffResult
from auditor.model import RuleRef


def _rule(rule: RuleRef | None, outcome: str) -> str:
    if rule is None:
        return escape(outcome or "none")
    where = f"{rule.table} {rule.chain}" + (f" #{rule.line}" if rule.line else "")
    return escape(f"{where}: {rule.rule}") + (f"\n→ {escape(outcome)}" if outcome else "")


def _add(table: Table, d: Difference) -> None:
    packet = d.packet.text if d.packet else (d.packet_note or "none")
    why = f"{d.expected}: {d.reason}\n({d.source})" if d.expected else d.reason
    table.add_row(
        escape(d.kind.value),
        escape(d.message),
        escape(packet),
        _rule(d.left_rule, d.left_outcome),
        _rule(d.right_rule, d.right_outcome),
        escape(why + (f"\n{d.rule_note}" if d.rule_note else "")),
    )


def print_diff(result: DiffResult, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=False)
    console.print(
        f"left:  {escape(result.left.label)} [{result.left.mode.value}]\n"
        f"right: {escape(result.right.label)} [{result.right.mode.value}]"
    )
    for note in result.notes:
        console.print(f"note: {escape(note)}")
    for title, style, items in (
        ("Unexpected differences", "bold red", [d for d in result.differences if not d.is_expected]),
        ("Expected differences", "bold green", [d for d in result.differences if d.is_expected]),
    ):
        if not items:
            continue
        table = Table(title=f"{title} ({len(items)})", title_style=style, show_lines=True, expand=True)
        for column in ("kind", "difference", "example packet", "left: deciding rule", "right: deciding rule", "why"):
            table.add_column(column, overflow="fold")
        for d in items:
            _add(table, d)
        console.print(table)
    verdict = "no unexpected difference" if result.unexpected == 0 else f"{result.unexpected} unexpected difference(s)"
    console.print(f"{verdict}; {result.expected} expected")


__all__ = ["print_diff"]
