"""KPA-019: nftables mode rejects unused ports of ClusterIPs and drops unallocated ClusterIPs.

What it checks: the ClusterIPs of the iptables-mode model and the ports each one serves,
listed in details["cluster_ips"] (address, "protocol/port" list, Service port names).

Why it matters: nftables mode adds a `cluster-ips-check` chain: a new connection to an
active ClusterIP on a port no Service defines is rejected, and traffic to an address in
the Service CIDRs that no Service holds is dropped. iptables mode let such packets go
wherever routing sent them. Monitoring that pings ClusterIPs or probes undefined ports,
and clients that relied on that leak, see ICMP rejects or timeouts after the switch.

Remediation: nothing in the common case. Check monitoring (ICMP/TCP probes to ClusterIPs)
and anything that connects to ClusterIPs on ports the Service does not list.

References: KEP-3866 "Behavior of service IPs", pkg/proxy/nftables/README.md,
pkg/proxy/nftables/proxier.go (cluster-ips-check)
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import KEP_3866
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import FrontendKind, ProxyMode, address_sort_key

SHOWN = 5


class ClusterIPHardening(Check):
    id = CheckID("KPA-019")
    title = "nftables mode rejects unused ClusterIP ports and drops unallocated ClusterIPs"
    severity = Severity.INFO
    remediation = "Make sure monitoring and clients reach ClusterIPs only on the ports their Services define."
    docs = f"{KEP_3866}#behavior-of-service-ips"

    def run(self, ctx: CheckContext) -> Outcome:
        model = ctx.models.get(ProxyMode.IPTABLES)
        if model is None:
            if ProxyMode.NFTABLES in ctx.models:
                return self.not_applicable("no iptables-mode state: the node already proxies in nftables mode")
            return self.not_applicable("no iptables-mode state in the snapshot to list ClusterIPs from")
        ports: dict[str, set[str]] = {}
        names: dict[str, set[str]] = {}
        evidence: list[Evidence] = []
        for svc in model.services:
            for frontend in svc.frontends:
                if frontend.kind is not FrontendKind.CLUSTER_IP or frontend.address is None:
                    continue
                ports.setdefault(frontend.address, set()).add(f"{svc.protocol.value}/{frontend.port}")
                names.setdefault(frontend.address, set()).add(svc.name)
                if len(evidence) < SHOWN and frontend.origin:
                    ref = frontend.origin[0]
                    evidence.append(
                        Evidence(
                            f"ClusterIP of {svc.name}",
                            f"{frontend.address} {svc.protocol.value}/{frontend.port}",
                            f"{ref.source}:{ref.line}",
                        )
                    )
        listed = [
            {"address": address, "ports": sorted(ports[address]), "services": sorted(names[address])}
            for address in sorted(ports, key=address_sort_key)
        ]
        if not listed:
            return self.passed("no ClusterIPs in the iptables-mode rules: nothing is affected", cluster_ips=[])
        total = sum(len(p) for p in ports.values())
        return self.info(
            f"{len(listed)} ClusterIPs with {total} ports: after the switch, new connections to any other port of"
            " these addresses are rejected and traffic to unallocated addresses in the Service CIDRs is dropped",
            *evidence,
            cluster_ips=listed,
        )
