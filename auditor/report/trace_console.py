"""`kp-audit trace` on a terminal: each branch's path, then the outcome distribution."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from auditor.trace.outcome import TraceResult, Verdict


def print_trace(result: TraceResult, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=True)
    console.print(f"[bold]{escape(result.packet.text)}[/bold] through {result.mode.value} rules")
    for n, branch in enumerate(result.branches, 1):
        extra = []
        if branch.masquerade:
            extra.append("masqueraded")
        if branch.affinity_seconds is not None:
            extra.append(f"affinity {branch.affinity_seconds}s")
        head = f"branch {n}: p={branch.probability:.6g} -> {branch.label}" + (f" ({', '.join(extra)})" if extra else "")
        style = "red" if branch.verdict is Verdict.UNKNOWN else "bold"
        console.print(f"[{style}]{escape(head)}[/{style}]")
        for step in branch.path:
            console.print("  " + escape(step.text))
        if branch.reason:
            console.print(f"  [red]unknown:[/red] {escape(branch.reason)}")
        if branch.deciding is not None:
            console.print(f"  deciding: {escape(branch.deciding.text)}")
    console.print("[bold]outcome[/bold]")
    for label, p in result.distribution().items():
        console.print(f"  {p:8.4f}  {escape(label)}")
    for note in result.notes:
        console.print(f"note: {escape(note)}")


__all__ = ["print_trace"]
