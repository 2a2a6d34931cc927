"""Prediction before switching: what behaves differently once a node that has only iptables
state runs kube-proxy in nftables mode.

From the iptables model, the node's addresses (host.json) and kube-proxy's configuration
(`nodePortAddresses`, default `primary` in nftables mode; `bindAddress`), it lists the
deliberate mode differences that apply to this node, each with an example packet and the
iptables rule that handles it today. The address reasoning is shared with KPA-008
(`auditor.check.nodeports`), so the prediction and the check agree.
"""

from __future__ import annotations

from auditor.check.context import CheckContext
from auditor.check.nodeports import (
    LocalAddress,
    local_addresses,
    node_ports,
    planned_node_port_addresses,
    primary_addresses,
    served_after,
    served_today,
    summarize,
)
from auditor.collect.facts import HostFacts, host_to_json
from auditor.diff.classify import mark_expected
from auditor.diff.types import Difference, DifferenceKind
from auditor.model import FrontendKind, IPFamily, ProxyMode, ServiceModel
from auditor.trace import Tracer
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, Packet

_NFTABLES = "nftables (predicted)"


def predict_nftables(model: ServiceModel, host: HostFacts | None = None, tracer: Tracer | None = None) -> list[Difference]:
    """The differences nftables mode will make on this node, all of them deliberate.

    `model` is the node's iptables model; `host` supplies its addresses and kube-proxy's
    configuration; `tracer` (over the same iptables rules) supplies today's deciding rule.
    """
    ctx = CheckContext(
        node="",
        host=host_to_json(host or HostFacts()),
        sources={},
        iptables={},
        nft=None,
        models={ProxyMode.IPTABLES: model},
        current_mode=ProxyMode.IPTABLES,
    )
    out: list[Difference] = []
    addresses = local_addresses(ctx)
    if addresses is not None:
        out += _node_port_addresses(ctx, model, addresses)
    elif any(np.kind == "node-port" for np in node_ports(model)):
        out.append(
            Difference(
                DifferenceKind.NODE_PORT_ADDRESSES,
                "NodePorts will answer only on nodePortAddresses (default `primary`); the snapshot records no "
                "node addresses, so which ones stop answering cannot be told",
                left=model.node_port_addresses,
                right=None,
                packet_note="no node addresses recorded",
            )
        )
    out += _localhost(model)
    out += _health_checks(model, addresses)
    out += _cluster_ips(model)
    classified = [mark_expected(d, _EXPECTED_NAME[d.kind]) for d in out]
    return [_with_trace(d, tracer) for d in classified]


_EXPECTED_NAME = {
    DifferenceKind.NODE_PORT_ADDRESSES: "node-port-addresses",
    DifferenceKind.LOCALHOST_NODE_PORTS: "localhost-node-ports",
    DifferenceKind.HEALTH_CHECK_NODE_PORTS: "health-check-accept",
    DifferenceKind.CLUSTER_IP_UNUSED_PORT: "cluster-ips-check",
    DifferenceKind.UNALLOCATED_SERVICE_IP: "cluster-ips-check",
}


def _with_trace(d: Difference, tracer: Tracer | None) -> Difference:
    from dataclasses import replace

    if tracer is None or d.packet is None:
        return d
    result = tracer.trace(d.packet)
    step = result.deciding
    return replace(
        d,
        left_rule=None if step is None else step.ref,
        left_outcome=result.summary,
        rule_note=d.rule_note or "the right side is a prediction: nftables rules are not on the node yet",
    )


def _node_port_addresses(ctx: CheckContext, model: ServiceModel, addresses: list[LocalAddress]) -> list[Difference]:
    planned = planned_node_port_addresses(ctx)
    primary, _ = primary_addresses(ctx, addresses)
    after, _ = served_after(planned.value if planned else None, addresses, primary)
    today = served_today(model, addresses)
    setting = f"{planned.name} = {', '.join(planned.value)}" if planned else "nodePortAddresses unset (default `primary`)"
    out: list[Difference] = []
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        ports = sorted({np.port for np in node_ports(model) if np.family is family and np.kind == "node-port"})
        if not ports:
            continue
        now = [a for a in today if a.family is family]
        later = [a for a in after if a.family is family]
        stops = [a for a in now if a not in later]
        if not stops and len(later) == len(now):
            continue
        keeps = [a for a in now if a in later]
        port_text = f"NodePort {ports[0]}" + (f" (and {len(ports) - 1} more)" if len(ports) > 1 else "")
        message = f"{port_text} on {_join([a.text for a in stops]) or 'no address'} stops answering"
        message += f"; {_join([a.text for a in keeps])} keeps answering" if keeps else "; no address keeps answering"
        message += f" ({setting})"
        target = stops[0] if stops else None
        packet = None
        if target is not None:
            hook = Hook.OUTPUT if target.ip.is_loopback else Hook.PREROUTING
            client = target.text if hook is Hook.OUTPUT else EXTERNAL_CLIENT[family]
            packet = Packet(family, _node_port_protocol(model, ports[0]), client, target.text, ports[0], hook)
        out.append(
            Difference(
                DifferenceKind.NODE_PORT_ADDRESSES,
                message,
                left=tuple(a.text for a in now),
                right=tuple(a.text for a in later),
                packet=packet,
                packet_note="" if packet else "no address stops answering",
            )
        )
    return out


def _node_port_protocol(model: ServiceModel, port: int) -> str:
    for svc in model.services:
        for frontend in svc.frontends:
            if frontend.kind is FrontendKind.NODE_PORT and frontend.port == port:
                return svc.protocol.value
    return "tcp"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return summarize(items[:-1]) + " and " + items[-1] if len(items) <= 5 else summarize(items)


def _localhost(model: ServiceModel) -> list[Difference]:
    if not model.localhost_node_ports:
        return []
    ports = sorted(
        {f.port for s in model.services if s.family is IPFamily.IPV4 for f in s.frontends if f.kind is FrontendKind.NODE_PORT}
    )
    packet = Packet(IPFamily.IPV4, _node_port_protocol(model, ports[0]), "127.0.0.1", "127.0.0.1", ports[0], Hook.OUTPUT) if ports else None
    return [
        Difference(
            DifferenceKind.LOCALHOST_NODE_PORTS,
            f"NodePorts on 127.0.0.1 ({len(ports)} port(s)) stop answering: nftables mode has no localhost NodePorts",
            left=True,
            right=False,
            packet=packet,
            packet_note="" if packet else "no IPv4 NodePort",
        )
    ]


def _health_checks(model: ServiceModel, addresses: list[LocalAddress] | None) -> list[Difference]:
    out = []
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        ports = sorted(h.port for h in model.health_check_node_ports if h.family is family)
        if not ports:
            continue
        node = next((a.text for a in addresses or () if a.family is family and not a.ip.is_loopback), None)
        packet = Packet(family, "tcp", EXTERNAL_CLIENT[family], node, ports[0], Hook.PREROUTING) if node else None
        out.append(
            Difference(
                DifferenceKind.HEALTH_CHECK_NODE_PORTS,
                f"{family.value} healthCheckNodePorts {summarize(map(str, ports))} lose their explicit ACCEPT: "
                "a host firewall must allow them",
                left=tuple(ports),
                right=(),
                packet=packet,
                packet_note="" if packet else "no node address recorded",
            )
        )
    return out


def _cluster_ips(model: ServiceModel) -> list[Difference]:
    out = []
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        for svc in model.services:
            if svc.family is not family:
                continue
            cluster = next((f for f in svc.frontends if f.kind is FrontendKind.CLUSTER_IP and f.address), None)
            if cluster is None or cluster.address is None:
                continue
            used = {f.port for s in model.services for f in s.frontends if f.address == cluster.address}
            port = next(p for p in range(1, 65536) if p not in used)
            packet = Packet(family, svc.protocol.value, EXTERNAL_CLIENT[family], cluster.address, port, Hook.PREROUTING)
            out.append(
                Difference(
                    DifferenceKind.CLUSTER_IP_UNUSED_PORT,
                    f"traffic to cluster IP {cluster.address} on port {port} (no Service port there) will be rejected, "
                    "and traffic to unallocated IPs of the service CIDRs dropped",
                    left="no rule",
                    right="reject",
                    packet=packet,
                )
            )
            break
    return out


__all__ = ["predict_nftables"]
