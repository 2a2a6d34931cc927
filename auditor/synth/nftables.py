"""Write a generated node's nftables-mode state as `nft -f` input.

The lines follow kube-proxy's nftables proxier (`setupNFTables` and `syncProxyRules`) in the
v1.34 layout (FORMATS.md 3.2-3.4): the same table, base chains, fixed chains, maps, sets,
per-service chains, affinity sets and element comments. They come in the order knftables'
`Fake.Dump()` uses and nft needs to resolve references: the table, then every set, map
and chain, then the rules, then the elements.
"""

from __future__ import annotations

import ipaddress

from auditor.model import IPFamily
from auditor.naming import nft_endpoint_chain_base, nft_service_chain_base
from auditor.synth.spec import EndpointSpec, NodeSpec, ServiceSpec

MARK_CHAIN = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"

# (name, type, hook, priority) of the v1.34 base chains, and the jumps kube-proxy adds to them
_BASE_CHAINS = (
    ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
    ("filter-output-pre-dnat", "filter", "output", -110),
    ("filter-forward", "filter", "forward", 0),
    ("filter-input", "filter", "input", 0),
    ("filter-output", "filter", "output", 0),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
_JUMPS = (
    ("filter-prerouting-pre-dnat", "ct state new", "firewall-check"),
    ("filter-output-pre-dnat", "ct state new", "firewall-check"),
    ("filter-forward", "ct state new", "service-endpoints-check"),
    ("filter-forward", "ct state new", "cluster-ips-check"),
    ("filter-input", "ct state new", "nodeport-endpoints-check"),
    ("filter-input", "ct state new", "service-endpoints-check"),
    ("filter-output", "ct state new", "service-endpoints-check"),
    ("filter-output", "ct state new", "cluster-ips-check"),
    ("nat-prerouting", "", "services"),
    ("nat-output", "", "services"),
    ("nat-postrouting", "", "masquerading"),
)
_FIXED_CHAINS = (
    "cluster-ips-check",
    "firewall-check",
    MARK_CHAIN,
    "masquerading",
    "nodeport-endpoints-check",
    "services",
    "service-endpoints-check",
)


class _Dump:
    """Declarations, rules and elements of one table, each kept in kube-proxy's order."""

    def __init__(self, ipx: str) -> None:
        self.prefix = f"ip{'6' if ipx == 'ip6' else ''} kube-proxy"
        self.objects: list[str] = []
        self.rules: list[str] = []
        self.elements: list[str] = []

    def chain(self, name: str, spec: str = "") -> None:
        self.objects.append(f"add chain {self.prefix} {name}{spec}\n")

    def declare(self, kind: str, name: str, spec: str) -> None:
        self.objects.append(f"add {kind} {self.prefix} {name} {{ {spec} ; }}\n")

    def rule(self, chain: str, text: str) -> None:
        self.rules.append(f"add rule {self.prefix} {chain} {text}\n")

    def element(self, name: str, text: str) -> None:
        self.elements.append(f"add element {self.prefix} {name} {{ {text} }}\n")

    def text(self) -> str:
        return f'add table {self.prefix} {{ comment "rules for kube-proxy" ; }}\n' + "".join(
            self.objects + self.rules + self.elements
        )


def render_nft(node: NodeSpec, family: IPFamily) -> str:
    """`nft -f` input for `node`'s `family` services: `table ip kube-proxy` or `table ip6 kube-proxy`."""
    ipx = "ip6" if family is IPFamily.IPV6 else "ip"
    out = _Dump(ipx)
    _setup(out, node, family, ipx)
    for svc in node.services_of(family):
        _service(out, node, svc, ipx)
    return out.text()


def load_batches(text: str, max_lines: int = 10_000) -> list[str]:
    """`render_nft` output cut into consecutive pieces, each for its own `nft -f` run.

    Every line of the rendered text refers only to objects declared on earlier lines, so
    the pieces load in order. One transaction is what kube-proxy does, but the kernel's
    cost per object grows with the size of the transaction: 10,000 services x 4 endpoints
    took about 125 s as one `nft -f` and about 40 s in pieces of 10,000 lines (kernel 6.18,
    nft 1.0.6; most of the rest is the kernel naming each `numgen` vmap's anonymous set).
    """
    lines = text.splitlines(keepends=True)
    return ["".join(lines[i : i + max_lines]) for i in range(0, len(lines), max_lines)]


def _setup(out: _Dump, node: NodeSpec, family: IPFamily, ipx: str) -> None:
    """`setupNFTables`: sets, maps, base and fixed chains and their rules."""
    addr_type = "ipv6_addr" if ipx == "ip6" else "ipv4_addr"
    no_localhost = "ip6 daddr != ::1" if ipx == "ip6" else "ip daddr != 127.0.0.0/8"
    match_all = node.node_port_addresses is None
    out.declare("set", "cluster-ips", f'type {addr_type} ; comment "Active ClusterIPs"')
    if not match_all:
        out.declare("set", "nodeport-ips", f'type {addr_type} ; comment "IPs that accept NodePort traffic"')
    for name, key, comment in (
        (
            "firewall-ips",
            f"{addr_type} . inet_proto . inet_service",
            "destinations that are subject to LoadBalancerSourceRanges",
        ),
        (
            "no-endpoint-nodeports",
            "inet_proto . inet_service",
            "vmap to drop or reject packets to service nodeports with no endpoints",
        ),
        (
            "no-endpoint-services",
            f"{addr_type} . inet_proto . inet_service",
            "vmap to drop or reject packets to services with no endpoints",
        ),
        (
            "service-ips",
            f"{addr_type} . inet_proto . inet_service",
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        ),
        ("service-nodeports", "inet_proto . inet_service", "NodePort traffic"),
    ):
        out.declare("map", name, f'type {key} : verdict ; comment "{comment}"')
    for name, kind, hook, priority in _BASE_CHAINS:
        out.chain(name, f" {{ type {kind} hook {hook} priority {priority} ; }}")
    for name in _FIXED_CHAINS:
        out.chain(name)
    out.chain(REJECT_CHAIN, ' { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }')
    for chain, condition, target in _JUMPS:
        out.rule(chain, f"{condition} jump {target}".lstrip())
    mark = node.masquerade_mark
    out.rule(MARK_CHAIN, f"mark set mark or {mark}")
    out.rule("masquerading", f"mark and {mark} == 0 return")
    out.rule("masquerading", f"mark set mark xor {mark}")
    out.rule("masquerading", "masquerade fully-random")
    out.rule(
        "cluster-ips-check", f'{ipx} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'
    )
    out.rule(
        "cluster-ips-check",
        f'{ipx} daddr {{ {node.service_cidrs[family]} }} drop comment "Drop traffic to unallocated ClusterIPs"',
    )
    out.rule(REJECT_CHAIN, "reject")
    out.rule("firewall-check", f"{ipx} daddr . meta l4proto . th dport vmap @firewall-ips")
    out.rule("service-endpoints-check", f"{ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services")
    out.rule("services", f"{ipx} daddr . meta l4proto . th dport vmap @service-ips")
    if match_all:
        out.rule("nodeport-endpoints-check", f"{no_localhost} meta l4proto . th dport vmap @no-endpoint-nodeports")
        out.rule("services", f"fib daddr type local {no_localhost} meta l4proto . th dport vmap @service-nodeports")
        return
    out.rule(
        "nodeport-endpoints-check", f"{ipx} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"
    )
    out.rule("services", f"{ipx} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
    for address in node.node_port_addresses or ():
        ip = ipaddress.ip_address(address)
        if (ip.version == 6) == (ipx == "ip6") and not ip.is_loopback:  # kube-proxy skips localhost
            out.element("nodeport-ips", address)


def _service(out: _Dump, node: NodeSpec, svc: ServiceSpec, ipx: str) -> None:
    """The sets, chains, rules and elements `syncProxyRules` writes for one service port."""
    name = svc.port_name_string
    proto = svc.protocol.value
    base = nft_service_chain_base(svc.namespace, svc.name, proto, svc.port_name)
    cluster_chain, local_chain, ext_chain, fw_chain = (
        p + base for p in ("service-", "local-", "external-", "firewall-")
    )
    # CategorizeEndpoints / UsesClusterEndpoints / UsesLocalEndpoints (pkg/proxy)
    uses_cluster_eps = not svc.internal_local or svc.externally_accessible
    uses_local_eps = svc.internal_local or (svc.externally_accessible and svc.external_local)
    cluster_eps = svc.endpoints if uses_cluster_eps else ()
    local_eps = svc.local_endpoints if uses_local_eps else ()
    reachable = cluster_eps if uses_cluster_eps else local_eps
    has_endpoints = bool(svc.endpoints)
    uses_cluster_chain = bool(cluster_eps)
    uses_local_chain = bool(local_eps)
    internal_chain = local_chain if svc.internal_local else cluster_chain
    has_internal = has_endpoints and (not svc.internal_local or bool(local_eps))
    external_policy_chain = local_chain if svc.external_local else cluster_chain
    has_external = has_endpoints and (not svc.external_local or bool(local_eps))
    uses_ext = has_endpoints and svc.externally_accessible
    uses_fw = bool(svc.load_balancer_ips) and bool(svc.source_ranges)
    if not has_endpoints:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        internal_verdict = external_verdict = "drop"

    chains = {ep: "endpoint-" + _endpoint_base(svc, ep) for ep in reachable}
    for chain in chains.values():
        out.chain(chain)
    if uses_cluster_chain:
        out.chain(cluster_chain)
    if uses_local_chain:
        out.chain(local_chain)
    if uses_ext:
        out.chain(ext_chain)
    if uses_fw:
        out.chain(fw_chain)

    def key(address: str) -> str:
        return f"{address} . {proto} . {svc.port}"

    out.element("cluster-ips", svc.cluster_ip)
    if has_internal:
        out.element("service-ips", f"{key(svc.cluster_ip)} : goto {internal_chain}")
    else:
        out.element("no-endpoint-services", f'{key(svc.cluster_ip)} comment "{name}" : {internal_verdict}')
    for ip in svc.external_ips:
        if has_endpoints:
            out.element("service-ips", f"{key(ip)} : goto {ext_chain}")
        if not has_external:
            out.element("no-endpoint-services", f'{key(ip)} comment "{name}" : {external_verdict}')
    for ip in svc.load_balancer_ips:
        if has_endpoints:
            out.element("service-ips", f"{key(ip)} : goto {ext_chain}")
        if uses_fw:
            out.element("firewall-ips", f"{key(ip)} : goto {fw_chain}")
    if not has_external:
        for ip in svc.load_balancer_ips:
            out.element("no-endpoint-services", f'{key(ip)} comment "{name}" : {external_verdict}')
    if svc.node_port:
        if has_endpoints:
            out.element("service-nodeports", f"{proto} . {svc.node_port} : goto {ext_chain}")
        if not has_external:
            out.element("no-endpoint-nodeports", f'{proto} . {svc.node_port} comment "{name}" : {external_verdict}')

    pod_cidr = node.pod_cidrs[svc.family]
    if has_internal:
        source = "" if node.masquerade_all else f" {ipx} saddr != {pod_cidr}"
        out.rule(internal_chain, f"{ipx} daddr {svc.cluster_ip}{source} jump {MARK_CHAIN}")
    if uses_ext:
        if not svc.external_local:
            out.rule(ext_chain, f"jump {MARK_CHAIN}")
        else:
            out.rule(ext_chain, f'{ipx} saddr {pod_cidr} goto {cluster_chain} comment "short-circuit pod traffic"')
            out.rule(ext_chain, f'fib saddr type local jump {MARK_CHAIN} comment "masquerade local traffic"')
            out.rule(ext_chain, f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"')
        if has_external:
            out.rule(ext_chain, f"goto {external_policy_chain}")
    if uses_fw:
        node_ip = ipaddress.ip_address(node.node_ips[svc.family])
        sources = list(svc.source_ranges)
        if any(node_ip in ipaddress.ip_network(cidr, strict=False) for cidr in svc.source_ranges):
            sources += svc.load_balancer_ips
        out.rule(fw_chain, f"{ipx} saddr != {{ {', '.join(sources)} }} drop")
    if svc.affinity_seconds:
        addr_type = "ipv6_addr" if ipx == "ip6" else "ipv4_addr"
        for ep in reachable:
            out.declare(
                "set",
                "affinity-" + chains[ep][len("endpoint-") :],
                f"type {addr_type} ; flags dynamic,timeout ; timeout {svc.affinity_seconds}s",
            )
    if uses_cluster_chain:
        _service_to_endpoints(out, svc, cluster_chain, cluster_eps, chains, ipx)
    if uses_local_chain:
        _service_to_endpoints(out, svc, local_chain, local_eps, chains, ipx)
    for ep, chain in chains.items():
        out.rule(chain, f"{ipx} saddr {ep.address} jump {MARK_CHAIN}")
        if svc.affinity_seconds:
            out.rule(chain, f"update @affinity-{chain[len('endpoint-') :]} {{ {ipx} saddr }}")
        destination = f"[{ep.address}]:{ep.port}" if ipx == "ip6" else f"{ep.address}:{ep.port}"
        out.rule(chain, f"meta l4proto {proto} dnat to {destination}")


def _endpoint_base(svc: ServiceSpec, ep: EndpointSpec) -> str:
    return nft_endpoint_chain_base(svc.namespace, svc.name, svc.protocol.value, svc.port_name, ep.address, ep.port)


def _service_to_endpoints(
    out: _Dump,
    svc: ServiceSpec,
    chain: str,
    endpoints: tuple[EndpointSpec, ...],
    chains: dict[EndpointSpec, str],
    ipx: str,
) -> None:
    """`writeServiceToEndpointRules`: affinity lookups, then one numgen vmap over the endpoints."""
    if svc.affinity_seconds:
        for ep in endpoints:
            target = chains[ep]
            out.rule(chain, f"{ipx} saddr @affinity-{target[len('endpoint-') :]} goto {target}")
    picks = " , ".join(f"{i} : goto {chains[ep]}" for i, ep in enumerate(endpoints))
    out.rule(chain, f"numgen random mod {len(endpoints)} vmap {{ {picks} }}")


__all__ = ["load_batches", "render_nft"]
