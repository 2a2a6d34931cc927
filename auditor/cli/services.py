"""`kp-audit services`: the Service model of one mode, as a table or as JSON."""

from __future__ import annotations

from enum import StrEnum

import typer

from auditor.cli.services_snapshot import services_model_from_args
from auditor.errors import InputError
from auditor.model import ProxyMode, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import read_iptables_save
from auditor.report.services_json import render_services_json


class ServicesFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


def register(app: typer.Typer) -> None:
    app.command("services")(services)


def services(
    snapshot: str | None = typer.Argument(
        None, metavar="[SNAPSHOT]", help="A snapshot from `kp-audit collect` (directory or .tar.gz)."
    ),
    mode: ProxyMode | None = typer.Option(
        None,
        "--mode",
        envvar="KP_AUDIT_MODE",
        help="With SNAPSHOT: the mode to model (default: the mode kube-proxy runs in).",
    ),
    iptables_save: str | None = typer.Option(
        None,
        "--iptables-save",
        envvar="KP_AUDIT_IPTABLES_SAVE",
        metavar="FILE",
        help="iptables-save output (IPv4); - for stdin.",
    ),
    ip6tables_save: str | None = typer.Option(
        None, "--ip6tables-save", envvar="KP_AUDIT_IP6TABLES_SAVE", metavar="FILE", help="ip6tables-save output (IPv6)."
    ),
    nft_json: str | None = typer.Option(
        None,
        "--nft-json",
        envvar="KP_AUDIT_NFT_JSON",
        metavar="FILE",
        help="`nft -j list ruleset` output; - for stdin.",
    ),
    output_format: ServicesFormat = typer.Option(
        ServicesFormat.TABLE, "--format", "-f", envvar="KP_AUDIT_SERVICES_FORMAT", help="Output format."
    ),
) -> None:
    """Print what this node does with each Service port: frontends, outcome, endpoints.

    Reads a snapshot (one mode: --mode, default the mode kube-proxy runs in) or raw dumps.
    """
    iptables_files = [f for f in (iptables_save, ip6tables_save) if f]
    model = services_model_from_args(snapshot, mode, bool(iptables_files or nft_json))
    if model is None:
        if bool(iptables_files) == bool(nft_json):
            raise InputError(
                "kp-audit services",
                "give SNAPSHOT, or --iptables-save/--ip6tables-save FILE, or --nft-json FILE (one mode)",
            )
        model = _iptables_model(iptables_save, ip6tables_save) if iptables_files else _nft_model(nft_json or "-")
    if output_format is ServicesFormat.JSON:
        typer.echo(render_services_json(model), nl=False)
    else:
        from auditor.report.services_table import print_services_table

        print_services_table(model)


def _iptables_model(v4: str | None, v6: str | None) -> ServiceModel:
    dumps = []
    if v4:
        dumps.append(read_iptables_save(v4))
    if v6:
        dumps.append(read_iptables_save(v6, ipv6=True))
    return normalize_iptables(dumps)


def _nft_model(path: str) -> ServiceModel:
    from auditor.normalize.nftables import normalize_nftables
    from auditor.parse.nft_json import read_nft_json

    model: ServiceModel = normalize_nftables(read_nft_json(path), require_table=True)
    return model
