"""`kp-audit diff` on a terminal: unexpected differences first, one block per difference
(kind and where, the difference, the example packet, each side's deciding rule and outcome,
why), which reads well in an 80-column terminal where a six-column table does not."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from auditor.diff.types import Difference, DiffResult
from auditor.model import RuleRef

_INDENT = "     "


def _rule(rule: RuleRef | None, outcome: str) -> list[str]:
    if rule is None:
        return [escape(outcome or "none")]
    where = f"{rule.table} {rule.chain}" + (f" #{rule.line}" if rule.line else "")
    lines = [escape(f"{where}: {rule.rule}")]
    if outcome:
        lines.append(f"→ {escape(outcome)}")
    return lines


def _where(d: Difference) -> str:
    parts = []
    if d.service:
        parts.append(" ".join(d.service))
    if d.frontend:
        kind, address, port = d.frontend
        parts.append(f"{kind} {address or '*'}:{port}")
    return escape(", ".join(parts))


def _block(console: Console, number: int, d: Difference, style: str) -> None:
    where = _where(d)
    console.print(f"[{style}]{number:>3}. {escape(d.kind.value)}[/]" + (f"  {where}" if where else ""), highlight=False)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=len(_INDENT) - 1)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("", "", escape(d.message))
    grid.add_row("", "packet", escape(d.packet.text if d.packet else (d.packet_note or "none")))
    for label, rule, outcome in (("left", d.left_rule, d.left_outcome), ("right", d.right_rule, d.right_outcome)):
        grid.add_row("", label, "\n".join(_rule(rule, outcome)))
    why = f"{d.expected}: {d.reason}" if d.expected else d.reason
    notes = [f"[dim]{escape(n)}[/]" for n in (d.source, d.rule_note) if n]
    if why or notes:
        grid.add_row("", "why", "\n".join(([escape(why)] if why else []) + notes))
    console.print(grid, highlight=False)


def print_diff(result: DiffResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"left:  {escape(result.left.label)} [{result.left.mode.value}]\n"
        f"right: {escape(result.right.label)} [{result.right.mode.value}]",
        highlight=False,
    )
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False)
    for title, style, items in (
        ("Unexpected differences", "bold red", [d for d in result.differences if not d.is_expected]),
        ("Expected differences", "bold green", [d for d in result.differences if d.is_expected]),
    ):
        if not items:
            continue
        console.print(f"\n[{style}]{title} ({len(items)})[/]")
        for number, d in enumerate(items, 1):
            _block(console, number, d, style)
    verdict = "no unexpected difference" if result.unexpected == 0 else f"{result.unexpected} unexpected difference(s)"
    console.print(f"\n{verdict}; {result.expected} expected")


__all__ = ["print_diff"]
