"""`kp-audit diff A [B]`: the semantic diff of two sides, classified; exit 0 clean, 2 unexpected, 3 bad input.

A and B are snapshots; or raw files per side (--left-iptables-save ... --right-nft-json).
One snapshot holding both modes compares its iptables side with its nftables side.
`--predict SNAPSHOT` lists what an iptables-only node will do differently in nftables mode.
"""

from __future__ import annotations

from enum import StrEnum

import typer

from auditor.diff.compare import Side, compare
from auditor.diff.inputs import (
    files_side,
    share_addresses,
    snapshot_addresses,
    snapshot_both_modes,
    snapshot_side,
)
from auditor.diff.types import DiffResult, SideInfo
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.trace.packet import parse_address

USAGE = "kp-audit diff"
EXIT_UNEXPECTED = 2


class DiffFormat(StrEnum):
    CONSOLE = "console"
    JSON = "json"
    MARKDOWN = "markdown"


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)


def diff(
    snapshots: list[str] = typer.Argument(None, metavar="[A] [B]", help="Snapshots (directory or .tar.gz)."),
    left_iptables_save: str | None = typer.Option(
        None, "--left-iptables-save", envvar="KP_AUDIT_LEFT_IPTABLES_SAVE", metavar="FILE"
    ),
    left_ip6tables_save: str | None = typer.Option(
        None, "--left-ip6tables-save", envvar="KP_AUDIT_LEFT_IP6TABLES_SAVE", metavar="FILE"
    ),
    left_nft_json: str | None = typer.Option(None, "--left-nft-json", envvar="KP_AUDIT_LEFT_NFT_JSON", metavar="FILE"),
    right_iptables_save: str | None = typer.Option(
        None, "--right-iptables-save", envvar="KP_AUDIT_RIGHT_IPTABLES_SAVE", metavar="FILE"
    ),
    right_ip6tables_save: str | None = typer.Option(
        None, "--right-ip6tables-save", envvar="KP_AUDIT_RIGHT_IP6TABLES_SAVE", metavar="FILE"
    ),
    right_nft_json: str | None = typer.Option(
        None, "--right-nft-json", envvar="KP_AUDIT_RIGHT_NFT_JSON", metavar="FILE"
    ),
    predict: str | None = typer.Option(
        None,
        "--predict",
        envvar="KP_AUDIT_PREDICT",
        metavar="SNAPSHOT",
        help="Predict nftables mode for an iptables-only node.",
    ),
    local_address: list[str] = typer.Option(
        [],
        "--local-address",
        envvar="KP_AUDIT_LOCAL_ADDRESS",
        metavar="IP",
        help="A node address (for rule files, which record none).",
    ),
    output_format: DiffFormat = typer.Option(
        DiffFormat.CONSOLE, "--format", "-f", envvar="KP_AUDIT_DIFF_FORMAT", help="Output format."
    ),
) -> None:
    """Compare two nodes' (or two modes') Service handling; exit 2 on an unexpected difference."""
    given = tuple(parse_address(a, "--local-address") for a in local_address)
    positional = list(snapshots or [])
    left_files = (left_iptables_save, left_ip6tables_save, left_nft_json)
    right_files = (right_iptables_save, right_ip6tables_save, right_nft_json)
    if predict is not None:
        if positional or any(left_files) or any(right_files):
            raise InputError(USAGE, "--predict takes one SNAPSHOT and nothing else")
        result = predicted(predict)
    else:
        left, right = _sides(positional, left_files, right_files, given)
        result = compare(left, right)
    _render(result, output_format)
    if result.unexpected:
        raise typer.Exit(EXIT_UNEXPECTED)


def predicted(path: str) -> DiffResult:
    """The prediction for one snapshot, as a DiffResult (right side: nftables, predicted)."""
    from auditor.collect.snapshot import read_snapshot
    from auditor.diff.predict import predict_nftables

    side = snapshot_side(path, ProxyMode.IPTABLES)
    host = read_snapshot(path).host
    differences = predict_nftables(side.model, host, side.tracer)
    right = SideInfo(f"{path} (nftables, predicted)", ProxyMode.NFTABLES)
    ordered = tuple(sorted(differences, key=lambda d: d.sort_key))
    return DiffResult(
        side.info, right, ordered, ("the right side is a prediction from the iptables rules and host.json",)
    )


def _sides(
    positional: list[str],
    left_files: tuple[str | None, str | None, str | None],
    right_files: tuple[str | None, str | None, str | None],
    given: tuple[str, ...],
) -> tuple[Side, Side]:
    if len(positional) > 2:
        raise InputError(USAGE, "at most two snapshots (A and B)")
    has_left, has_right = any(left_files), any(right_files)
    needed = (not has_left) + (not has_right)
    if len(positional) == 1 and needed == 2:
        return snapshot_both_modes(positional[0])
    if len(positional) != needed:
        raise InputError(
            USAGE,
            "give snapshots A B, one snapshot holding both modes, or --left-*/--right-* files "
            "(a snapshot can stand for the side without files)",
        )
    queue = list(positional)
    left = files_side("left", *left_files, None) if has_left else snapshot_side(queue.pop(0))
    right = files_side("right", *right_files, None) if has_right else snapshot_side(queue.pop(0))
    if has_left or has_right:
        left, right = share_addresses(left, right, given)
    return left, right


def _render(result: DiffResult, output_format: DiffFormat) -> None:
    if output_format is DiffFormat.JSON:
        from auditor.report.diff_json import render_diff_json

        typer.echo(render_diff_json(result), nl=False)
    elif output_format is DiffFormat.MARKDOWN:
        from auditor.report.diff_markdown import render_diff_markdown

        typer.echo(render_diff_markdown(result), nl=False)
    else:
        from auditor.report.diff_console import print_diff

        print_diff(result)


__all__ = ["DiffFormat", "diff", "predicted", "register", "snapshot_addresses"]
