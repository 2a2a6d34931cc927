"""`kp-audit trace SNAPSHOT --dst IP:PORT[/PROTO]`: where a new connection's first packet goes."""

from __future__ import annotations

from enum import StrEnum

import typer

from auditor.diff.compare import Side
from auditor.diff.inputs import files_side, snapshot_side
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.trace import EXTERNAL_CLIENT, Hook, Packet, Tracer
from auditor.trace.packet import family_of, is_loopback, parse_address, parse_destination

USAGE = "kp-audit trace"


class TraceFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"


def register(app: typer.Typer) -> None:
    app.command("trace")(trace)


def trace(
    snapshot: str | None = typer.Argument(None, metavar="[SNAPSHOT]", help="Snapshot (directory or .tar.gz)."),
    dst: str = typer.Option(
        ..., "--dst", envvar="KP_AUDIT_DST", metavar="IP:PORT[/PROTO]", help="Destination; [IPv6]:PORT; tcp by default."
    ),
    src: str | None = typer.Option(
        None, "--src", envvar="KP_AUDIT_SRC", metavar="IP", help="Source (default: a client outside the cluster)."
    ),
    mode: ProxyMode | None = typer.Option(
        None, "--mode", envvar="KP_AUDIT_MODE", help="Which mode's rules (default: kube-proxy's mode)."
    ),
    hook: Hook = typer.Option(
        Hook.PREROUTING, "--hook", envvar="KP_AUDIT_HOOK", help="From the network (prerouting) or the node (output)."
    ),
    iptables_save: str | None = typer.Option(None, "--iptables-save", envvar="KP_AUDIT_IPTABLES_SAVE", metavar="FILE"),
    ip6tables_save: str | None = typer.Option(
        None, "--ip6tables-save", envvar="KP_AUDIT_IP6TABLES_SAVE", metavar="FILE"
    ),
    nft_json: str | None = typer.Option(None, "--nft-json", envvar="KP_AUDIT_NFT_JSON", metavar="FILE"),
    local_address: list[str] = typer.Option(
        [], "--local-address", envvar="KP_AUDIT_LOCAL_ADDRESS", metavar="IP", help="A node address."
    ),
    output_format: TraceFormat = typer.Option(
        TraceFormat.CONSOLE, "--format", "-f", envvar="KP_AUDIT_TRACE_FORMAT", help="Output format."
    ),
) -> None:
    """Trace a packet through the node's rules: every branch, its path and the outcome distribution."""
    address, port, protocol = parse_destination(dst)
    given = tuple(parse_address(a, "--local-address") for a in local_address)
    side = _side(snapshot, mode, iptables_save, ip6tables_save, nft_json, given)
    tracer = side.tracer
    assert tracer is not None
    local = tuple(dict.fromkeys((*given, *side.local_addresses)))
    family = family_of(address)
    source = parse_address(src) if src else _default_source(hook, family, local)
    if family_of(source) is not family:
        raise InputError("--src", f"{source} and {address} are of different families")
    result = tracer.trace(Packet(family, protocol, source, address, port, hook))
    if output_format is TraceFormat.JSON:
        from auditor.report.trace_json import render_trace_json

        typer.echo(render_trace_json(result), nl=False)
    else:
        from auditor.report.trace_console import print_trace

        print_trace(result)


def _side(
    snapshot: str | None,
    mode: ProxyMode | None,
    iptables_save: str | None,
    ip6tables_save: str | None,
    nft_json: str | None,
    given: tuple[str, ...],
) -> Side:
    files = any((iptables_save, ip6tables_save, nft_json))
    if snapshot is not None and files:
        raise InputError(USAGE, "give a SNAPSHOT or rule files, not both")
    if snapshot is None and not files:
        raise InputError(USAGE, "give a SNAPSHOT, or --iptables-save/--ip6tables-save/--nft-json FILE")
    if snapshot is not None:
        side = snapshot_side(snapshot, mode)
    else:
        if mode is not None:
            raise InputError(USAGE, "--mode applies to a SNAPSHOT; with files, the file options choose the mode")
        side = files_side("trace", iptables_save, ip6tables_save, nft_json, None)
    if given:
        side = _with_addresses(side, given)
    return side


def _with_addresses(side: Side, given: tuple[str, ...]) -> Side:
    from dataclasses import replace

    from auditor.trace import IptablesTracer, NftTracer

    local = tuple(dict.fromkeys((*given, *side.local_addresses)))
    tracer: Tracer | None = side.tracer
    if isinstance(tracer, IptablesTracer):
        tracer = IptablesTracer(list(tracer.dumps.values()), local)
    elif isinstance(tracer, NftTracer):
        tracer = NftTracer(tracer.ruleset, local)
    return replace(side, tracer=tracer, local_addresses=local)


def _default_source(hook: Hook, family: object, local: tuple[str, ...]) -> str:
    if hook is Hook.PREROUTING:
        return EXTERNAL_CLIENT[family]  # type: ignore[index]
    for address in local:
        if family_of(address) is family and not is_loopback(address):
            return address
    return "::1" if str(family) == "ipv6" else "127.0.0.1"


__all__ = ["TraceFormat", "register", "trace"]
