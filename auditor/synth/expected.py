"""The model a normalizer must produce for a generated node, in each mode.

This encodes kube-proxy's behaviour (`syncProxyRules` in both proxiers) from the
Services' point of view, independently of any rule text, so a normalizer reading the
rules back from a kernel can be checked against it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from auditor.model import (
    Endpoint,
    Frontend,
    FrontendKind,
    HealthCheckNodePort,
    IPFamily,
    Masquerade,
    ProxyMode,
    Result,
    ServiceModel,
    ServicePort,
    address_sort_key,
    sorted_endpoints,
    sorted_frontends,
    sorted_services,
)
from auditor.naming import canonical_address
from auditor.synth.spec import EndpointSpec, NodeSpec, ServiceSpec


def expected_model(node: NodeSpec, mode: ProxyMode) -> ServiceModel:
    """The `ServiceModel` kube-proxy's rules for `node` describe in `mode`.

    Counters (`rules_seen`, `rules_modelled`) and `unmodelled` are left empty: they depend
    on the rule text, not on the Services.
    """
    services = [
        ServicePort(
            name=svc.port_name_string,
            protocol=svc.protocol,
            family=svc.family,
            frontends=sorted_frontends(_frontends(node, svc, mode)),
        )
        for svc in node.services
    ]
    health: tuple[HealthCheckNodePort, ...] = ()
    if mode is ProxyMode.IPTABLES:
        health = tuple(
            sorted(
                (
                    HealthCheckNodePort(svc.health_check_node_port, svc.port_name_string, svc.family)
                    for svc in node.services
                    if svc.health_check_node_port
                ),
                key=lambda h: (h.family.value, h.port),
            )
        )
    families = node.families
    if node.node_port_addresses is None:
        node_port_addresses: tuple[str, ...] = ("local",)
    else:
        node_port_addresses = tuple(sorted(node.node_port_addresses, key=_ip_key))
        if mode is ProxyMode.NFTABLES:
            # setupNFTables leaves loopback addresses out of nodeport-ips: "localhost
            # NodePorts are not supported" in nftables mode
            node_port_addresses = tuple(a for a in node_port_addresses if not ipaddress.ip_address(a).is_loopback)
    return ServiceModel(
        mode=mode,
        services=sorted_services(services),
        node_port_addresses=node_port_addresses,
        localhost_node_ports=mode is ProxyMode.IPTABLES
        and node.localhost_node_ports_active
        and IPFamily.IPV4 in families,
        health_check_node_ports=health,
        local_traffic=_local_traffic(node),
        families=families,
    )


def _ip_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


def _local_traffic(node: NodeSpec) -> tuple[str, ...]:
    """Pod CIDRs that show up in masquerade or short-circuit rules."""
    seen = []
    for family in node.families:
        for svc in node.services_of(family):
            internal = _internal_pool(svc)
            shows_in_masquerade = not node.masquerade_all and bool(internal)
            shows_in_short_circuit = svc.external_local and bool(svc.endpoints) and svc.externally_accessible
            if shows_in_masquerade or shows_in_short_circuit:
                seen.append(canonical_address(node.pod_cidrs[family]))
                break
    return tuple(seen)


def _internal_pool(svc: ServiceSpec) -> tuple[EndpointSpec, ...]:
    return svc.local_endpoints if svc.internal_local else svc.endpoints


def _external_pool(svc: ServiceSpec) -> tuple[EndpointSpec, ...]:
    return svc.local_endpoints if svc.external_local else svc.endpoints


def _endpoints(pool: tuple[EndpointSpec, ...]) -> tuple[Endpoint, ...]:
    share = 1.0 / len(pool)
    return sorted_endpoints([Endpoint(ep.address, ep.port, share) for ep in pool])


def _source_ranges(node: NodeSpec, svc: ServiceSpec, lb_ip: str) -> tuple[str, ...]:
    """loadBalancerSourceRanges, plus the LB IP itself when a range holds the node's IP."""
    ranges = [canonical_address(r) for r in svc.source_ranges]
    node_ip = ipaddress.ip_address(node.node_ips[svc.family])
    if any(node_ip in ipaddress.ip_network(r, strict=False) for r in svc.source_ranges):
        ranges.append(lb_ip)
    return tuple(ranges)


def _frontends(node: NodeSpec, svc: ServiceSpec, mode: ProxyMode) -> list[Frontend]:
    frontends = [_cluster_ip_frontend(node, svc)]
    external: list[tuple[FrontendKind, str | None, int]] = [
        (FrontendKind.EXTERNAL_IP, ip, svc.port) for ip in svc.external_ips
    ]
    external += [(FrontendKind.LOAD_BALANCER, ip, svc.port) for ip in svc.load_balancer_ips]
    if svc.node_port:
        external.append((FrontendKind.NODE_PORT, None, svc.node_port))
    for kind, address, port in external:
        frontends.append(_external_frontend(node, svc, mode, kind, address, port))
    return frontends


def _cluster_ip_frontend(node: NodeSpec, svc: ServiceSpec) -> Frontend:
    kind, address, port = FrontendKind.CLUSTER_IP, svc.cluster_ip, svc.port
    if not svc.endpoints:
        return Frontend(kind, address, port, Result.REJECT)
    pool = _internal_pool(svc)
    if not pool:
        return Frontend(kind, address, port, Result.DROP, local_only=True)
    return Frontend(
        kind,
        address,
        port,
        Result.DNAT,
        endpoints=_endpoints(pool),
        affinity_seconds=svc.affinity_seconds,
        local_only=svc.internal_local,
        masquerade=Masquerade.ALL if node.masquerade_all else Masquerade.OFF_CLUSTER,
    )


def _external_frontend(
    node: NodeSpec,
    svc: ServiceSpec,
    mode: ProxyMode,
    kind: FrontendKind,
    address: str | None,
    port: int,
) -> Frontend:
    # nftables mode writes the LB firewall even for a Service without endpoints
    # (iptables mode only with endpoints), so the ranges apply to its REJECT too.
    firewalled = kind is FrontendKind.LOAD_BALANCER and bool(svc.source_ranges)
    if mode is ProxyMode.IPTABLES:
        firewalled = firewalled and bool(svc.endpoints)
    ranges = _source_ranges(node, svc, address) if firewalled and address else ()
    if mode is ProxyMode.NFTABLES:
        # the ranges are one anonymous interval set (`ip saddr != { ... } drop`), which nft
        # keeps, and prints back, sorted by address: kube-proxy's order cannot be read back
        ranges = tuple(sorted(ranges, key=address_sort_key))
    kind_certain = True
    if mode is ProxyMode.NFTABLES and kind is not FrontendKind.NODE_PORT and not firewalled:
        # service-ips sends both kinds to the same external- chain: nothing tells them apart
        kind, kind_certain = FrontendKind.EXTERNAL_IP, False
    if not svc.endpoints:
        return Frontend(kind, address, port, Result.REJECT, source_ranges=ranges, kind_certain=kind_certain)
    pool = _external_pool(svc)
    dropped = Frontend(
        kind,
        address,
        port,
        Result.DROP,
        source_ranges=ranges,
        local_only=svc.external_local,
        short_circuit=svc.external_local,
        kind_certain=kind_certain,
    )
    if not pool:
        return dropped
    return replace(
        dropped,
        result=Result.DNAT,
        endpoints=_endpoints(pool),
        affinity_seconds=svc.affinity_seconds,
        masquerade=Masquerade.NODE_SOURCES if svc.external_local else Masquerade.ALL,
    )
