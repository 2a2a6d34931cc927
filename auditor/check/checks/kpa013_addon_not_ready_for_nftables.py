"""KPA-013: a CNI or add-on on the node is not ready for nftables kube-proxy.

What it checks: known components, recognised from their iptables chains, nft tables and
addresses: Calico (`cali-*` chains: iptables data plane; `calico*` nft tables: nftables
data plane), flannel (`FLANNEL-*` chains; `flannel-ipv4`/`flannel-ipv6` tables with
EnableNFTables), kube-router (`KUBE-ROUTER-*`), Cilium (`CILIUM_*`, `cilium*` tables),
Istio (`ISTIO_*`), NodeLocal DNSCache (169.254.20.10 or a `nodelocaldns` interface, its
NOTRACK rules) and the Amazon VPC CNI (`AWS-*`). Every component found is listed in
details["addons"] with its level and evidence.

Why it matters: Calico's Felix in its iptables data plane failed once kube-proxy's native
nftables tables existed (`iptables-nft-save` refused them: projectcalico/calico#8025,
#8403), so Service and pod networking broke. flannel, kube-router, Istio and node-cache
program iptables rules and were written with iptables kube-proxy in mind; Cilium may
replace kube-proxy altogether; the VPC CNI is compatible from v1.23.0.

Remediation: move Calico to its nftables data plane first; enable flannel's
EnableNFTables; check kube-router, Istio and node-cache against nftables kube-proxy on one
node; upgrade aws-node to v1.23.0+.

References: https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/ ("Why not
nftables?"), projectcalico/calico#8025, #8403, kubernetes/dns#682, istio/istio#47821,
cloudnativelabs/kube-router#1069, docs.aws.amazon.com/eks/latest/best-practices/nftables
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._addons import detect_addons
from auditor.check.checks._netfilter import what_was_not_seen
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Severity


class AddonNotReadyForNftables(Check):
    id = CheckID("KPA-013")
    title = "A CNI or add-on on the node is not ready for nftables kube-proxy"
    severity = Severity.BLOCKER
    remediation = (
        "Move Calico to its nftables data plane, enable flannel's EnableNFTables, and verify kube-router, Istio and"
        " NodeLocal DNSCache with nftables kube-proxy on one node before switching the rest."
    )
    docs = "https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/"

    def run(self, ctx: CheckContext) -> Outcome:
        missing = what_was_not_seen(ctx)
        addons = detect_addons(ctx)
        if len(missing) == 2 and not addons:
            return self.not_applicable("no iptables dump and no nft ruleset: CNIs and add-ons cannot be seen")
        blind = f" ({', '.join(missing)}: components seen only there were missed)" if missing else ""
        details: dict[str, Any] = {"addons": [a.to_details() for a in addons]}
        if not addons:
            return self.passed(f"no known CNI or add-on that depends on kube-proxy's mode{blind}", **details)
        evidence = tuple(e for a in addons for e in a.evidence)
        ranked = sorted(addons, key=lambda a: -a.severity.rank)
        found = ", ".join(f"{a.name} ({a.severity.value})" for a in ranked)
        advice = " ".join(f"{a.name}: {a.note}" for a in ranked)
        worst = ranked[0].severity
        if worst is Severity.BLOCKER:
            return self.failed(f"found {found}{blind}", *evidence, remediation=advice, **details)
        if worst is Severity.WARNING:
            return self.warn(f"found {found}{blind}", *evidence, remediation=advice, **details)
        return self.info(f"found {found}{blind}. {advice}", *evidence, **details)
