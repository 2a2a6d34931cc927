"""`kp-audit services --format table`: the Service model as a rich table on stdout."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from auditor.model import Frontend, ServiceModel


def _frontend_cell(frontend: Frontend) -> str:
    where = f"{frontend.address}:{frontend.port}" if frontend.address else f"*:{frontend.port}"
    if ":" in (frontend.address or ""):
        where = f"[{frontend.address}]:{frontend.port}"
    kind = frontend.kind.value + ("" if frontend.kind_certain else "?")
    return f"{kind} {where}"


def _outcome_cell(frontend: Frontend) -> str:
    parts = [frontend.result.value]
    if frontend.endpoints:
        parts.append(", ".join(f"{e.address}:{e.port} ({e.probability:.0%})" for e in frontend.endpoints))
    flags = []
    if frontend.local_only:
        flags.append("local only")
    if frontend.affinity_seconds:
        flags.append(f"affinity {frontend.affinity_seconds}s")
    if frontend.source_ranges:
        flags.append("from " + ", ".join(frontend.source_ranges))
    if flags:
        parts.append("[" + "; ".join(flags) + "]")
    return " ".join(parts)


def print_services_table(model: ServiceModel, console: Console | None = None) -> None:
    console = console or Console(soft_wrap=False)
    table = Table(title=f"Services ({model.mode.value} mode)", show_lines=False)
    table.add_column("Service port", overflow="fold")
    table.add_column("Proto")
    table.add_column("Family")
    table.add_column("Frontend", overflow="fold")
    table.add_column("Outcome", overflow="fold")
    for service in model.services:
        for i, frontend in enumerate(service.frontends):
            first = i == 0
            table.add_row(
                service.name if first else "",
                service.protocol.value if first else "",
                service.family.value if first else "",
                _frontend_cell(frontend),
                _outcome_cell(frontend),
            )
    console.print(table)
    nodeports = ", ".join(model.node_port_addresses) or "none"
    console.print(f"NodePorts answer on: {nodeports}" + (" (and 127.0.0.0/8)" if model.localhost_node_ports else ""))
    console.print(
        f"Rules modelled: {model.rules_modelled}/{model.rules_seen} ({model.coverage:.1%});"
        f" unmodelled: {len(model.unmodelled)}"
    )
    for item in model.unmodelled[:20]:
        console.print(
            f"  {item.source}:{item.line} [{item.table} {item.chain}] {item.reason}", markup=False, highlight=False
        )
    if len(model.unmodelled) > 20:
        console.print(f"  ... and {len(model.unmodelled) - 20} more (see --format json)")
