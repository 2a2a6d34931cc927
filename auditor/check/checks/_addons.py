"""Known CNIs and add-ons, recognised from their chains, tables and addresses.

Used by KPA-013 (are they ready for nftables kube-proxy?) and KPA-026 (which of them
depend on iptables on a host without legacy iptables). Recognition is by name only:
chain prefixes in every iptables dump, nft table names, and the NodeLocal DNSCache
address/interface. A component whose chains exist but are all empty is reported as a
probable leftover, at info level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from auditor.check.checks._netfilter import FoundChain, find_chains, nft_table_evidence, nft_tables
from auditor.check.context import CheckContext
from auditor.findings import Evidence, Severity

#: kube-router's chains (they share kube-proxy's KUBE- prefix)
KUBE_ROUTER_PREFIXES = ("KUBE-ROUTER-", "KUBE-NWPLCY-", "KUBE-POD-FW-")
NODELOCALDNS_ADDRESS = "169.254.20.10"
NODELOCALDNS_INTERFACE = "nodelocaldns"
#: evidence items kept per component (the details carry the counts)
_SHOWN = 3


@dataclass(frozen=True)
class Addon:
    """A component seen on the node, how ready it is for nftables kube-proxy, and why we think so."""

    key: str
    name: str
    severity: Severity
    note: str
    evidence: tuple[Evidence, ...]
    #: it programs iptables rules (breaks where iptables does not work)
    uses_iptables: bool

    def to_details(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "severity": self.severity.value,
            "uses_iptables": self.uses_iptables,
            "note": self.note,
            "evidence": [f"{e.source}: {e.value}" for e in self.evidence],
        }


@dataclass(frozen=True)
class _Known:
    key: str
    name: str
    chain_prefixes: tuple[str, ...]
    table_prefixes: tuple[str, ...]
    #: severity and note when its iptables chains carry rules
    iptables_severity: Severity
    iptables_note: str
    #: severity and note when only its nft tables are seen
    nft_severity: Severity = Severity.INFO
    nft_note: str = ""


_KNOWN = (
    _Known(
        "calico",
        "Calico",
        ("cali-",),
        ("calico",),
        Severity.BLOCKER,
        "Calico runs its iptables data plane: Felix failed once kube-proxy's native nftables tables existed"
        " (projectcalico/calico#8025, #8403). Move Calico to its nftables data plane (Calico 3.29+,"
        " Kubernetes 1.31+) before switching kube-proxy.",
        Severity.INFO,
        "Calico runs its nftables data plane, which is supported with nftables kube-proxy from Kubernetes 1.31.",
    ),
    _Known(
        "flannel",
        "flannel",
        ("FLANNEL-",),
        ("flannel",),
        Severity.WARNING,
        "flannel masquerades and forwards with iptables unless EnableNFTables is set in net-conf.json"
        " (experimental); on hosts without legacy iptables it needs EnableNFTables (kubespray PR #13291).",
        Severity.INFO,
        "flannel uses its nftables tables (EnableNFTables).",
    ),
    _Known(
        "kube-router",
        "kube-router",
        KUBE_ROUTER_PREFIXES,
        (),
        Severity.WARNING,
        "kube-router's network-policy controller is iptables-based (its nftables mode, PR"
        " cloudnativelabs/kube-router#2058, was closed) and has mixed legacy/nft backends before (#1069).",
    ),
    _Known(
        "cilium",
        "Cilium",
        ("CILIUM_",),
        ("cilium",),
        Severity.INFO,
        "Cilium: if it replaces kube-proxy (kubeProxyReplacement), switching kube-proxy's mode may be moot;"
        " otherwise its rules coexist with kube-proxy's own tables.",
        Severity.INFO,
        "Cilium: if it replaces kube-proxy (kubeProxyReplacement), switching kube-proxy's mode may be moot.",
    ),
    _Known(
        "istio",
        "Istio",
        ("ISTIO_",),
        (),
        Severity.WARNING,
        "Istio redirects traffic with iptables (istio/istio#47821) unless its nftables backend is enabled;"
        " check the istio-cni / ztunnel configuration.",
    ),
    _Known(
        "aws-node",
        "Amazon VPC CNI (aws-node)",
        ("AWS-",),
        (),
        Severity.INFO,
        "The Amazon VPC CNI works with nftables kube-proxy from v1.23.0"
        " (docs.aws.amazon.com/eks/latest/best-practices/nftables); check the aws-node image version.",
    ),
)


def detect_addons(ctx: CheckContext) -> list[Addon]:
    """Every known component the snapshot shows, in a fixed order."""
    found: list[Addon] = []
    for known in _KNOWN:
        addon = _detect(ctx, known)
        if addon is not None:
            found.append(addon)
    nodelocal = _nodelocaldns(ctx)
    if nodelocal is not None:
        found.append(nodelocal)
    return found


def _detect(ctx: CheckContext, known: _Known) -> Addon | None:
    chains = list(find_chains(ctx, lambda _table, name: name.startswith(known.chain_prefixes)))
    tables = (
        nft_tables(ctx, lambda _family, name: name.startswith(known.table_prefixes)) if known.table_prefixes else []
    )
    if not chains and not tables:
        return None
    evidence = _chain_evidence(chains) + tuple(nft_table_evidence(ctx, f, n) for f, n in tables[:_SHOWN])
    active = [c for c in chains if c.chain.lines]
    if active and tables:
        # both: a data plane switched to nftables, with the old iptables rules left behind, or
        # one still half on iptables; the snapshot cannot tell which is live
        severity = min(known.iptables_severity, Severity.WARNING, key=lambda s: s.rank)
        note = (
            f"{known.name} has both iptables chains with rules and nftables tables: either its iptables rules are"
            f" leftovers of a move to nftables, or it still uses iptables. {known.iptables_note}"
        )
        return Addon(known.key, known.name, severity, note, evidence, True)
    if active:
        return Addon(known.key, known.name, known.iptables_severity, known.iptables_note, evidence, True)
    if tables:
        return Addon(known.key, known.name, known.nft_severity, known.nft_note or known.iptables_note, evidence, False)
    prefixes = "/".join(f"{p}*" for p in known.chain_prefixes)
    note = (
        f"only empty {prefixes} chains: probably left over from an earlier install; nothing to do unless it still runs"
    )
    return Addon(known.key, f"{known.name} (leftover chains)", Severity.INFO, note, evidence, False)


def _chain_evidence(chains: list[FoundChain]) -> tuple[Evidence, ...]:
    shown = sorted(chains, key=lambda c: (not c.chain.lines, c.file, c.table, c.chain.name))[:_SHOWN]
    items = [c.evidence() for c in shown]
    if len(chains) > _SHOWN:
        items.append(Evidence("more chains of the same component", str(len(chains) - _SHOWN), "iptables dumps"))
    return tuple(items)


def _nodelocaldns(ctx: CheckContext) -> Addon | None:
    """NodeLocal DNSCache: its link-local address or dummy interface, and its NOTRACK rules."""
    evidence: list[Evidence] = []
    for addr in ctx.addresses:
        if addr.get("address") == NODELOCALDNS_ADDRESS or addr.get("interface") == NODELOCALDNS_INTERFACE:
            evidence.append(
                Evidence(
                    "NodeLocal DNSCache address",
                    f"{addr.get('interface')} {addr.get('address')}",
                    "host.json: addresses",
                )
            )
    rules = 0
    for found in find_chains(ctx, lambda table, _name: table in ("raw", "filter")):
        for line, text in found.chain.lines:
            if _is_node_cache_rule(text):
                rules += 1
                if rules <= _SHOWN:
                    evidence.append(Evidence("node-cache rule", text, f"{found.file}:{line}"))
    if not evidence:
        return None
    return Addon(
        "nodelocaldns",
        "NodeLocal DNSCache",
        Severity.WARNING,
        "node-cache programs only iptables rules (NOTRACK/ACCEPT for its address) and documents iptables and ipvs"
        " kube-proxy only; support for nftables kube-proxy is an open question (kubernetes/dns#682).",
        tuple(evidence),
        True,
    )


def _is_node_cache_rule(text: str) -> bool:
    lowered = text.lower()
    if "nodelocal dns" in lowered or "node-cache" in lowered:
        return True
    return NODELOCALDNS_ADDRESS in text and ("NOTRACK" in text or "--notrack" in text)
