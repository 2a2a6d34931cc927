"""Sides of a comparison from what the user gives: snapshots, or raw rule files."""

from __future__ import annotations

from pathlib import Path

from auditor.collect.models import (
    default_mode,
    iptables_choice,
    iptables_dumps,
    nftables_holds_state,
    nftables_ruleset,
)
from auditor.collect.snapshot import Snapshot, read_snapshot
from auditor.diff.compare import Side, side_addresses
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import IptablesDump, read_iptables_save
from auditor.parse.nft_json import NftRuleset, read_nft_json
from auditor.trace import IptablesTracer, NftTracer


def snapshot_addresses(snapshot: Snapshot) -> tuple[str, ...] | None:
    """The node's addresses as host.json recorded them; None when it did not."""
    if snapshot.host.addresses is None:
        return None
    return tuple(a.address for a in snapshot.host.addresses)


def iptables_side(label: str, dumps: list[IptablesDump], addresses: tuple[str, ...] | None) -> Side:
    model = normalize_iptables(dumps)
    local = side_addresses(model, addresses)
    return Side(label, model, IptablesTracer(dumps, local), local)


def nftables_side(label: str, ruleset: NftRuleset, addresses: tuple[str, ...] | None) -> Side:
    from auditor.normalize.nftables import normalize_nftables

    model = normalize_nftables(ruleset, require_table=True)
    local = side_addresses(model, addresses)
    return Side(label, model, NftTracer(ruleset, local), local, ruleset)


def _snapshot_iptables(snapshot: Snapshot, label: str) -> Side:
    choice = iptables_choice(snapshot)
    if choice.backend is None:
        raise InputError(snapshot.location, "the iptables state is missing from this snapshot")
    return iptables_side(label, iptables_dumps(snapshot, choice.backend), snapshot_addresses(snapshot))


def _snapshot_nftables(snapshot: Snapshot, label: str) -> Side:
    ruleset = nftables_ruleset(snapshot)
    if ruleset is None or not nftables_holds_state(ruleset):
        raise InputError(snapshot.location, "no kube-proxy nftables table in this snapshot")
    return nftables_side(label, ruleset, snapshot_addresses(snapshot))


def snapshot_side(path: str, mode: ProxyMode | None = None) -> Side:
    """The side of one snapshot in `mode` (default: the mode kube-proxy runs in there)."""
    snapshot = read_snapshot(path)
    if mode is None:
        mode, _ = default_mode(snapshot)
    label = f"{path} ({mode.value})"
    if mode is ProxyMode.NFTABLES:
        return _snapshot_nftables(snapshot, label)
    return _snapshot_iptables(snapshot, label)


def snapshot_both_modes(path: str) -> tuple[Side, Side]:
    """Its iptables side and its nftables side, for a snapshot holding both (mid-migration)."""
    snapshot = read_snapshot(path)
    has_iptables = bool(iptables_choice(snapshot).with_state)
    ruleset = nftables_ruleset(snapshot)
    has_nftables = nftables_holds_state(ruleset)
    if not (has_iptables and has_nftables):
        held = "iptables" if has_iptables else "nftables" if has_nftables else "neither mode's"
        raise InputError(
            path,
            f"holds only {held} state: one snapshot is compared with itself only when it holds both modes "
            "(give a second snapshot, or use --predict for an iptables-only node)",
        )
    assert ruleset is not None
    addresses = snapshot_addresses(snapshot)
    left = _snapshot_iptables(snapshot, f"{path} (iptables)")
    return left, nftables_side(f"{path} (nftables)", ruleset, addresses)


def files_side(
    label: str,
    iptables_save: str | None,
    ip6tables_save: str | None,
    nft_json: str | None,
    addresses: tuple[str, ...] | None,
) -> Side:
    """A side from raw files: iptables-save (IPv4 and/or IPv6) or `nft -j list ruleset`."""
    iptables_files = [f for f in (iptables_save, ip6tables_save) if f]
    if bool(iptables_files) == bool(nft_json):
        raise InputError(label, "give --*-iptables-save/--*-ip6tables-save FILE, or --*-nft-json FILE (one mode)")
    for path in (*iptables_files, nft_json):
        if path and path != "-" and not Path(path).exists():
            raise InputError(path, "no such file")
    if nft_json:
        return nftables_side(f"{label} ({nft_json})", read_nft_json(nft_json), addresses)
    dumps = []
    if iptables_save:
        dumps.append(read_iptables_save(iptables_save))
    if ip6tables_save:
        dumps.append(read_iptables_save(ip6tables_save, ipv6=True))
    return iptables_side(f"{label} ({', '.join(iptables_files)})", dumps, addresses)


def share_addresses(left: Side, right: Side, given: tuple[str, ...]) -> tuple[Side, Side]:
    """Rule files record no node addresses: each side also counts those given on the command
    line and those the other side's NodePort rules name (the same node, other mode)."""
    from dataclasses import replace

    merged = tuple(dict.fromkeys((*given, *left.local_addresses, *right.local_addresses)))
    sides = []
    for side in (left, right):
        tracer = side.tracer
        if isinstance(tracer, IptablesTracer):
            tracer = IptablesTracer(list(tracer.dumps.values()), merged)
        elif isinstance(tracer, NftTracer):
            tracer = NftTracer(tracer.ruleset, merged)
        sides.append(replace(side, tracer=tracer, local_addresses=merged))
    return sides[0], sides[1]


__all__ = [
    "files_side",
    "iptables_side",
    "nftables_side",
    "share_addresses",
    "snapshot_addresses",
    "snapshot_both_modes",
    "snapshot_side",
]
