"""The two sides of a node (iptables, nftables) built from what the checks already parsed."""

from __future__ import annotations

from auditor.check.context import CheckContext
from auditor.diff.compare import Side, side_addresses
from auditor.model import ProxyMode
from auditor.parse.iptables_save import IptablesDump
from auditor.trace import IptablesTracer, NftTracer

_BACKEND_FILES = {
    "nft": ("iptables-nft-save.txt", "ip6tables-nft-save.txt"),
    "legacy": ("iptables-legacy-save.txt", "ip6tables-legacy-save.txt"),
}


def recorded_addresses(ctx: CheckContext) -> tuple[str, ...] | None:
    """The node's addresses as host.json recorded them; None when it did not."""
    if ctx.host.get("addresses") is None:
        return None
    return tuple(str(a.get("address")) for a in ctx.addresses if a.get("address"))


def iptables_dumps_of(ctx: CheckContext) -> list[IptablesDump]:
    """The dumps of the backend that holds kube-proxy's state (IPv4 first)."""
    backend = ctx.extras.get("iptables_backend")
    files = _BACKEND_FILES.get(str(backend), ())
    return [ctx.iptables[f] for f in files if f in ctx.iptables]


def iptables_side(ctx: CheckContext) -> Side | None:
    model = ctx.models.get(ProxyMode.IPTABLES)
    dumps = iptables_dumps_of(ctx)
    if model is None or not dumps:
        return None
    local = side_addresses(model, recorded_addresses(ctx))
    return Side(f"{ctx.node} (iptables)", model, IptablesTracer(dumps, local), local)


def nftables_side(ctx: CheckContext) -> Side | None:
    model = ctx.models.get(ProxyMode.NFTABLES)
    if model is None or ctx.nft is None:
        return None
    local = side_addresses(model, recorded_addresses(ctx))
    return Side(f"{ctx.node} (nftables)", model, NftTracer(ctx.nft, local), local, ctx.nft)


__all__ = ["iptables_dumps_of", "iptables_side", "nftables_side", "recorded_addresses"]
