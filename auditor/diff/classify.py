"""Expected versus unexpected: the deliberate differences between iptables and nftables mode.

Each expected kind has a name, the reason, and where the fact comes from
(docs/migration-checklist.md items, FORMATS.md sections). Anything not listed here is
unexpected. Only a comparison of an iptables side with an nftables side has deliberate
mode differences, except the model's own blind spots (a kind the rules cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from auditor.diff.types import Classification, Difference
from auditor.model import ProxyMode


@dataclass(frozen=True, slots=True)
class Expected:
    name: str
    reason: str
    source: str


EXPECTED: dict[str, Expected] = {
    e.name: e
    for e in (
        Expected(
            "node-port-addresses",
            "nftables mode answers NodePorts only on nodePortAddresses, whose default there is `primary` "
            "(iptables mode: every local address); loopback never",
            "migration-checklist.md item 11 (kube-proxy config API nodePortAddresses; k/k PR #122724)",
        ),
        Expected(
            "localhost-node-ports",
            "nftables mode does not serve NodePorts on 127.0.0.1 (iptables mode does with localhostNodePorts "
            "and route_localnet)",
            "migration-checklist.md item 13 (virtual-ips docs; KEP-3866 'Localhost NodePorts')",
        ),
        Expected(
            "health-check-accept",
            "iptables mode ACCEPTs healthCheckNodePorts in filter KUBE-NODEPORTS; nftables mode adds no rule "
            "(an accept cannot bypass another table's firewall)",
            "migration-checklist.md item 16 (k/k#97225, PR #97824); FORMATS.md 3.4",
        ),
        Expected(
            "cluster-ips-check",
            "nftables mode rejects traffic to unused ports of ClusterIPs and drops traffic to unallocated "
            "IPs of the service CIDRs (chain cluster-ips-check); iptables mode does neither",
            "migration-checklist.md item 28 (KEP-3866 'Behavior of service IPs'; pkg/proxy/nftables)",
        ),
        Expected(
            "kind-ambiguous-in-nftables",
            "nftables sends external IPs and load-balancer IPs without source ranges through the same "
            "service-ips element and external- chain: the rules cannot tell the two kinds apart",
            "FORMATS.md 3.3 (service-ips map)",
        ),
        Expected(
            "kind-ambiguous-in-iptables",
            "a Service without (local) endpoints has only a filter REJECT/DROP for its external IPs and "
            "load-balancer IPs (KUBE-EXTERNAL-SERVICES), which does not say which kind it is",
            "FORMATS.md 2.4 (no endpoints)",
        ),
        Expected(
            "lb-firewall-without-endpoints",
            "nftables mode keeps the loadBalancerSourceRanges firewall for a Service without endpoints "
            "(iptables mode writes KUBE-FW only with endpoints): sources outside the ranges are dropped "
            "before the REJECT",
            "FORMATS.md 2.4 and 3.4; migration-checklist.md item 30",
        ),
    )
}


def mode_pair(left: ProxyMode, right: ProxyMode) -> bool:
    """One side is iptables mode and the other nftables mode."""
    return {left, right} == {ProxyMode.IPTABLES, ProxyMode.NFTABLES}


def mark_expected(diff: Difference, name: str) -> Difference:
    """`diff` classified as the deliberate difference `name`."""
    found = EXPECTED[name]
    return replace(
        diff, classification=Classification.EXPECTED, expected=name, reason=found.reason, source=found.source
    )


def unexpected(diff: Difference, reason: str = "") -> Difference:
    return replace(diff, classification=Classification.UNEXPECTED, expected=None, reason=reason, source="")


__all__ = ["EXPECTED", "Expected", "mark_expected", "mode_pair", "unexpected"]
