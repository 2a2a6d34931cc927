"""A node's models: which of its dumps hold kube-proxy state, normalized per mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.model import ProxyMode, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import IptablesDump


def holds_kube_proxy_state(dump: IptablesDump) -> bool:
    """kube-proxy's iptables mode always creates nat KUBE-SERVICES."""
    return dump.chain("nat", "KUBE-SERVICES") is not None


def iptables_backends(dumps: Mapping[str, IptablesDump]) -> dict[str, list[str]]:
    """Dump file names grouped by backend ("legacy" / "nft"), only those with kube-proxy state."""
    backends: dict[str, list[str]] = {}
    for name, dump in dumps.items():
        if holds_kube_proxy_state(dump):
            backends.setdefault("legacy" if "legacy" in name else "nft", []).append(name)
    return backends


def node_models(
    dumps: Mapping[str, IptablesDump], nft: Any | None, preferred_backend: str | None = None
) -> dict[ProxyMode, ServiceModel]:
    """The model of each mode that holds kube-proxy state on the node.

    When both iptables backends hold kube-proxy chains, the one `preferred_backend` names
    (what `iptables --version` says the node uses) wins, else the one with more rules.
    """
    models: dict[ProxyMode, ServiceModel] = {}
    backends = iptables_backends(dumps)
    if backends:
        if preferred_backend in backends:
            chosen = backends[preferred_backend]
        else:
            chosen = max(backends.values(), key=lambda names: sum(dumps[n].rule_count for n in names))
        models[ProxyMode.IPTABLES] = normalize_iptables([dumps[n] for n in sorted(chosen)])
    if nft is not None:
        from auditor.normalize.nftables import normalize_nftables

        model = normalize_nftables(nft, require_table=False)
        if model.families:
            models[ProxyMode.NFTABLES] = model
    return models
