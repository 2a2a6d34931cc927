"""KPA-008: NodePorts stop answering on addresses outside nodePortAddresses (default `primary`).

What it checks: the addresses NodePorts (and healthCheckNodePorts) answer on today, from
the iptables rules (`-m addrtype --dst-type LOCAL`: every local address, plus 127.0.0.0/8
with localhost NodePorts; or `-d <ip>` per configured address), against the addresses
they will answer on in nftables mode: `nodePortAddresses` / `--nodeport-addresses` when set
(CIDRs matched against the local addresses in host.json; loopback is never served), else
`primary`: the node's primary IPv4/IPv6. `primary` comes from `bindAddress` when set, else
the first global address on a non-virtual interface (an assumption the evidence states: the
snapshot has neither the Node object nor the routing table). Every NodePort x address that
answers today and will not is listed in `details["nodeports"]`.

Why it matters: an unset nodePortAddresses means "all local IPs" in iptables mode but
"primary" in nftables mode (kubernetes#111863, PR #122724). Secondary NICs, VIPs
(keepalived, kube-vip), host-bound load-balancer IPs, bridge addresses pods use and extra
IPv6 addresses stop answering NodePorts, and so do the load-balancer health checks sent to
them, since the health-check server listens on the same addresses.

Remediation: set `nodePortAddresses: ["0.0.0.0/0", "::/0"]` in the KubeProxyConfiguration
(`--nodeport-addresses=0.0.0.0/0,::/0` without a config file; the keyword `all` in 1.37+)
to keep answering on every local address, or list the CIDRs that must keep answering.

References: https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables,
kube-proxy config v1alpha1 types.go (nodePortAddresses), kubernetes#111863, PR #122724
"""

from __future__ import annotations

from collections.abc import Sequence

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.check.nodeports import (
    ADDRESSES_SOURCE,
    IPAddress,
    LocalAddress,
    NodePort,
    cidr_of,
    local_addresses,
    no_iptables_state,
    node_ports,
    nodeports_jump_evidence,
    planned_node_port_addresses,
    primary_addresses,
    served_after,
    served_today,
    summarize,
)
from auditor.check.settings import CONFIG_SOURCE, FLAGS_SOURCE, config_file_in_use
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import IPFamily, ProxyMode

KEEP_ALL = 'nodePortAddresses: ["0.0.0.0/0", "::/0"]'


class NodePortsStopAnswering(Check):
    id = CheckID("KPA-008")
    title = "NodePorts stop answering on non-primary addresses (nodePortAddresses defaults to primary)"
    severity = Severity.BLOCKER
    remediation = (
        f"Set {KEEP_ALL} in the KubeProxyConfiguration (--nodeport-addresses=0.0.0.0/0,::/0 without a config "
        "file) to keep today's behaviour, or list the CIDRs whose addresses must keep answering NodePorts."
    )
    docs = "https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables"

    def run(self, ctx: CheckContext) -> Outcome:
        model = ctx.models.get(ProxyMode.IPTABLES)
        if model is None:
            missing, why = no_iptables_state(ctx)
            return self.warn(why) if missing else self.not_applicable(why)
        ports = node_ports(model)
        if not ports:
            return self.not_applicable("no NodePort or health-check node port in kube-proxy's iptables rules")
        evidence = nodeports_jump_evidence(ctx)
        addresses = local_addresses(ctx)
        if addresses is None:
            return self.warn(
                f"{len(ports)} NodePort(s) exist, but the snapshot has no local address list, so it cannot tell "
                "which addresses stop answering when nodePortAddresses becomes primary",
                *evidence,
                Evidence("local addresses", None, ADDRESSES_SOURCE),
            )
        configured = planned_node_port_addresses(ctx)
        primary, primary_evidence = primary_addresses(ctx, addresses)
        evidence.append(
            configured.evidence("nodePortAddresses in nftables mode")
            if configured
            else Evidence(
                "nodePortAddresses in nftables mode",
                "unset: defaults to primary",
                CONFIG_SOURCE if config_file_in_use(ctx) else FLAGS_SOURCE,
            )
        )
        if configured is None or "primary" in configured.value:
            evidence += primary_evidence
        today = served_today(model, addresses)
        after, notes = served_after(configured.value if configured else None, addresses, primary)
        evidence += [Evidence("note", note, configured.source if configured else "") for note in notes]
        lost = sorted((a for a in today if a not in after), key=lambda a: a.ip.is_loopback)
        rows = _rows(ports, lost)
        if not rows:
            return self.passed(
                f"every address that answers NodePorts today ({summarize(a.label for a in today)}) keeps answering",
                *evidence,
                nodeports=[],
            )
        evidence += [Evidence("stops answering NodePorts", a.label, ADDRESSES_SOURCE) for a in lost]
        remediation = _remediation(primary, today)
        pairs = summarize(f"{r['service']} {r['protocol']}/{r['port']} on {r['address']}" for r in rows)
        message = (
            f"NodePorts stop answering on {summarize(a.label for a in lost)} in nftables mode: "
            f"{pairs} ({len(rows)} NodePort x address pairs)"
        )
        lost_routable = [a for a in lost if not a.ip.is_loopback]
        if not lost_routable:
            return self.warn(
                message + "; only localhost is lost (KPA-009 covers it in depth)",
                *evidence,
                remediation=remediation,
                nodeports=rows,
            )
        if any(_routable_count(addresses, a.family) > 1 for a in lost_routable):
            return self.failed(message, *evidence, remediation=remediation, nodeports=rows)
        return self.warn(
            message + "; this is the node's only address in its family, so the primary-address assumption may be wrong",
            *evidence,
            remediation=remediation,
            nodeports=rows,
        )


def _rows(ports: Sequence[NodePort], lost: Sequence[LocalAddress]) -> list[dict[str, object]]:
    """One row per NodePort x lost address of the same family (health checks: not on loopback)."""
    rows: list[dict[str, object]] = []
    for address in lost:
        for np in ports:
            if address.family is not np.family or (np.kind == "health-check" and address.ip.is_loopback):
                continue
            rows.append(
                {
                    "service": np.service,
                    "port": np.port,
                    "protocol": np.protocol,
                    "address": address.text,
                    "interface": address.interface,
                    "kind": np.kind,
                    "today": True,
                    "after": False,
                }
            )
    return rows


def _routable_count(addresses: Sequence[LocalAddress], family: IPFamily) -> int:
    return sum(1 for a in addresses if a.family is family and not a.ip.is_loopback)


def _remediation(primary: dict[IPFamily, IPAddress], today: Sequence[LocalAddress]) -> str:
    keep = sorted({cidr_of(a.ip) for a in today if not a.ip.is_loopback} | {cidr_of(ip) for ip in primary.values()})
    listed = ", ".join(f'"{c}"' for c in keep)
    return (
        f"Set {KEEP_ALL} in the KubeProxyConfiguration (--nodeport-addresses=0.0.0.0/0,::/0 without a config file) "
        f"to keep answering on every local address, or list the addresses that must keep answering: "
        f"nodePortAddresses: [{listed}] (CIDRs work too). Loopback cannot be kept: see KPA-009."
    )
