"""KPA-023: `route_localnet` stays on after the switch.

What it checks: `net.ipv4.conf.all.route_localnet`, and whether the iptables-mode rules
serve NodePorts on 127.0.0.0/8 (the reason kube-proxy turned it on).

Why it matters: iptables mode sets route_localnet=1 so NodePorts answer on 127.0.0.1
(`iptables.localhostNodePorts`, default true). That lets packets with loopback
addresses be routed off the host, the CVE-2020-8558 hazard that kubelet's
"block incoming localnet connections" rule mitigates. nftables mode never sets it and,
as far as the sources show, nothing turns it back off, so it stays on after the switch.

Remediation: once nothing needs NodePorts on localhost, reset it:
`sysctl -w net.ipv4.conf.all.route_localnet=0` (and drop it from /etc/sysctl.d).

References: KEP-3866 Goals and "Localhost NodePorts", kubernetes#90259,
pkg/kubelet/kubelet_network_linux.go (localnet rule)
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import KEP_3866
from auditor.check.checks._netfilter import find_chains
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import ProxyMode

SYSCTL = "net.ipv4.conf.all.route_localnet"


class RouteLocalnetLeftOn(Check):
    id = CheckID("KPA-023")
    title = "route_localnet stays on after the switch"
    severity = Severity.INFO
    remediation = (
        "Once nothing needs NodePorts on localhost, run sysctl -w net.ipv4.conf.all.route_localnet=0 and remove"
        " it from /etc/sysctl.d."
    )
    docs = f"{KEP_3866}#localhost-nodeports"

    def run(self, ctx: CheckContext) -> Outcome:
        value = ctx.sysctl(SYSCTL)
        evidence = [Evidence(SYSCTL, value, "host.json: sysctls")]
        if value is None:
            return self.not_applicable(f"{SYSCTL} is not in the snapshot", *evidence)
        if value != "1":
            return self.passed(f"{SYSCTL} = {value}: nothing is left on", *evidence)
        model = ctx.models.get(ProxyMode.IPTABLES)
        why = ""
        if model is not None and model.localhost_node_ports:
            why = " (iptables mode serves NodePorts on 127.0.0.1 today)"
            evidence += _nodeport_jumps(ctx)
        return self.info(
            f"{SYSCTL} = 1{why}: nftables mode neither needs nor resets it, so loopback-addressed packets stay routable"
            " (CVE-2020-8558); reset it once localhost NodePorts are not needed",
            *evidence,
        )


def _nodeport_jumps(ctx: CheckContext) -> list[Evidence]:
    """kube-proxy's KUBE-SERVICES -> KUBE-NODEPORTS jumps that do not exclude 127.0.0.0/8."""
    found = []
    for chain in find_chains(ctx, lambda table, name: table == "nat" and name == "KUBE-SERVICES"):
        for line, text in chain.chain.lines:
            if "-j KUBE-NODEPORTS" in text and "127.0.0.0/8" not in text and not chain.file.startswith("ip6"):
                found.append(Evidence("NodePorts answer on 127.0.0.1", text, f"{chain.file}:{line}"))
    return found[:2]
