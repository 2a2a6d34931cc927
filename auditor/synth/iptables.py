"""Write a generated node's iptables-mode state as `iptables-restore` input.

The lines follow kube-proxy's `syncProxyRules` (iptables proxier): the same chains, rule
order, matches and comments, including large-cluster mode (no comments on endpoint
rules). With `jump_rules`, the built-in chains get kube-proxy's and kubelet's jump rules
too, as on a real node (kube-proxy adds those with `iptables -I`, not in its restore).
"""

from __future__ import annotations

import ipaddress

from auditor.model import IPFamily
from auditor.naming import endpoint_string, iptables_endpoint_chain, iptables_service_hash
from auditor.synth.spec import EndpointSpec, NodeSpec, ServiceSpec

# (table, chain that is jumped to, built-in chain, comment, extra matches), in kube-proxy's
# order; each is inserted at the top of its built-in chain, so later entries end up first.
_NEW = "-m conntrack --ctstate NEW"
_JUMPS = (
    ("filter", "KUBE-EXTERNAL-SERVICES", "INPUT", "kubernetes externally-visible service portals", _NEW),
    ("filter", "KUBE-EXTERNAL-SERVICES", "FORWARD", "kubernetes externally-visible service portals", _NEW),
    ("filter", "KUBE-NODEPORTS", "INPUT", "kubernetes health check service ports", ""),
    ("filter", "KUBE-SERVICES", "FORWARD", "kubernetes service portals", _NEW),
    ("filter", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", _NEW),
    ("filter", "KUBE-FORWARD", "FORWARD", "kubernetes forwarding rules", ""),
    ("filter", "KUBE-PROXY-FIREWALL", "INPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", "KUBE-PROXY-FIREWALL", "OUTPUT", "kubernetes load balancer firewall", _NEW),
    ("filter", "KUBE-PROXY-FIREWALL", "FORWARD", "kubernetes load balancer firewall", _NEW),
    ("nat", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", ""),
    ("nat", "KUBE-SERVICES", "PREROUTING", "kubernetes service portals", ""),
    ("nat", "KUBE-POSTROUTING", "POSTROUTING", "kubernetes postrouting rules", ""),
)
_BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
}


class _Tables:
    """Chain declarations and rules per table, in the order kube-proxy writes them."""

    def __init__(self) -> None:
        self.chains: dict[str, list[str]] = {"filter": [], "nat": []}
        self.rules: dict[str, list[str]] = {"filter": [], "nat": []}

    def chain(self, table: str, name: str) -> None:
        self.chains[table].append(name)

    def rule(self, table: str, chain: str, *args: str) -> None:
        self.rules[table].append(" ".join(("-A", chain, *tuple(a for a in args if a))))


def render_iptables(node: NodeSpec, family: IPFamily, *, jump_rules: bool = True) -> str:
    """`iptables-restore` (or `ip6tables-restore`) input for `node`'s `family` services."""
    v6 = family is IPFamily.IPV6
    mark = node.masquerade_mark
    out = _Tables()
    for chain in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL"):
        out.chain("filter", chain)
    for chain in ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"):
        out.chain("nat", chain)
    out.rule("nat", "KUBE-POSTROUTING", "-m mark ! --mark", f"{mark}/{mark}", "-j RETURN")
    out.rule("nat", "KUBE-POSTROUTING", "-j MARK --xor-mark", mark)
    out.rule(
        "nat", "KUBE-POSTROUTING", '-m comment --comment "kubernetes service traffic requiring SNAT"', "-j MASQUERADE"
    )
    out.rule("nat", "KUBE-MARK-MASQ", "-j MARK --or-mark", mark)
    localhost = not v6 and node.localhost_node_ports_active
    if localhost:
        out.chain("filter", "KUBE-FIREWALL")
        out.rule(
            "filter",
            "KUBE-FIREWALL",
            '-m comment --comment "block incoming localnet connections"',
            "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        )
    large_cluster = node.large_cluster
    for svc in node.services_of(family):
        _service(out, node, svc, large_cluster)
    _nodeports_jump(out, node, family)
    if not node.conntrack_tcp_be_liberal:
        nfacct = "-m nfacct --nfacct-name ct_state_invalid_dropped_pkts" if node.nfacct else ""
        out.rule("filter", "KUBE-FORWARD", "-m conntrack --ctstate INVALID", nfacct, "-j DROP")
    out.rule(
        "filter",
        "KUBE-FORWARD",
        '-m comment --comment "kubernetes forwarding rules"',
        f"-m mark --mark {mark}/{mark}",
        "-j ACCEPT",
    )
    out.rule(
        "filter",
        "KUBE-FORWARD",
        '-m comment --comment "kubernetes forwarding conntrack rule"',
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    )
    return _dump(out, jump_rules=jump_rules, kubelet_firewall=localhost)


def _nodeports_jump(out: _Tables, node: NodeSpec, family: IPFamily) -> None:
    comment = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"'
    if node.node_port_addresses is None:
        extra = (
            "! -d ::1/128"
            if family is IPFamily.IPV6
            else ("" if node.localhost_node_ports_active else "! -d 127.0.0.0/8")
        )
        out.rule("nat", "KUBE-SERVICES", comment, "-m addrtype --dst-type LOCAL", extra, "-j KUBE-NODEPORTS")
        return
    for address in node.node_port_addresses:
        if (":" in address) != (family is IPFamily.IPV6):
            continue
        if ipaddress.ip_address(address).is_loopback and (
            family is IPFamily.IPV6 or not node.localhost_node_ports_active
        ):
            continue
        out.rule("nat", "KUBE-SERVICES", comment, f"-d {address}", "-j KUBE-NODEPORTS")


def _service(out: _Tables, node: NodeSpec, svc: ServiceSpec, large_cluster: bool) -> None:
    """The rules `syncProxyRules` writes for one service port."""
    name = svc.port_name_string
    proto = svc.protocol.value
    h = iptables_service_hash(name, proto)
    svc_chain, svl_chain, ext_chain, fw_chain = (f"KUBE-{p}-{h}" for p in ("SVC", "SVL", "EXT", "FW"))
    has_endpoints = bool(svc.endpoints)
    local_eps = svc.local_endpoints
    internal_chain = svl_chain if svc.internal_local else svc_chain
    has_internal = has_endpoints and (bool(local_eps) or not svc.internal_local)
    has_external = has_endpoints and (bool(local_eps) or not svc.external_local)
    external_policy_chain = svl_chain if svc.external_local else svc_chain
    uses_ext = has_endpoints and svc.externally_accessible
    uses_fw = has_endpoints and bool(svc.load_balancer_ips) and bool(svc.source_ranges)
    lb_chain = fw_chain if uses_fw else ext_chain
    uses_cluster_chain = has_endpoints and (
        not svc.internal_local or (svc.externally_accessible and not svc.external_local)
    )
    uses_local_chain = bool(local_eps) and (svc.internal_local or (svc.externally_accessible and svc.external_local))
    if not has_endpoints:
        filter_target = internal_target = external_target = "REJECT"
        internal_comment = external_comment = f'"{name} has no endpoints"'
    else:
        internal_target = "DROP" if not has_internal else ""
        external_target = "DROP" if not has_external else ""
        internal_comment = external_comment = f'"{name} has no local endpoints"'
        filter_target = internal_target
    match = f"-m {proto} -p {proto}"
    port = str(svc.port)

    if has_internal:
        out.rule(
            "nat",
            "KUBE-SERVICES",
            f'-m comment --comment "{name} cluster IP"',
            match,
            f"-d {svc.cluster_ip} --dport {port}",
            f"-j {internal_chain}",
        )
    else:
        out.rule(
            "filter",
            "KUBE-SERVICES",
            f"-m comment --comment {internal_comment}",
            match,
            f"-d {svc.cluster_ip} --dport {port}",
            f"-j {filter_target}",
        )
    for ip in svc.external_ips:
        if has_endpoints:
            out.rule(
                "nat",
                "KUBE-SERVICES",
                f'-m comment --comment "{name} external IP"',
                match,
                f"-d {ip} --dport {port}",
                f"-j {ext_chain}",
            )
        if not has_external:
            out.rule(
                "filter",
                "KUBE-EXTERNAL-SERVICES",
                f"-m comment --comment {external_comment}",
                match,
                f"-d {ip} --dport {port}",
                f"-j {external_target}",
            )
    for ip in svc.load_balancer_ips:
        if has_endpoints:
            out.rule(
                "nat",
                "KUBE-SERVICES",
                f'-m comment --comment "{name} loadbalancer IP"',
                match,
                f"-d {ip} --dport {port}",
                f"-j {lb_chain}",
            )
        if uses_fw:
            out.rule(
                "filter",
                "KUBE-PROXY-FIREWALL",
                f'-m comment --comment "{name} traffic not accepted by {fw_chain}"',
                match,
                f"-d {ip} --dport {port}",
                "-j DROP",
            )
    if not has_external:
        for ip in svc.load_balancer_ips:
            out.rule(
                "filter",
                "KUBE-EXTERNAL-SERVICES",
                f"-m comment --comment {external_comment}",
                match,
                f"-d {ip} --dport {port}",
                f"-j {external_target}",
            )
    if svc.node_port:
        if has_endpoints:
            if node.localhost_node_ports_active and svc.family is IPFamily.IPV4 and node.nfacct:
                out.rule(
                    "nat",
                    "KUBE-NODEPORTS",
                    f"-m comment --comment {name}",
                    match,
                    f"-d 127.0.0.0/8 --dport {svc.node_port}",
                    "-m nfacct --nfacct-name localhost_nps_accepted_pkts",
                    f"-j {ext_chain}",
                )
            out.rule(
                "nat",
                "KUBE-NODEPORTS",
                f"-m comment --comment {name}",
                match,
                f"--dport {svc.node_port}",
                f"-j {ext_chain}",
            )
        if not has_external:
            out.rule(
                "filter",
                "KUBE-EXTERNAL-SERVICES",
                f"-m comment --comment {external_comment}",
                "-m addrtype --dst-type LOCAL",
                match,
                f"--dport {svc.node_port}",
                f"-j {external_target}",
            )
    if svc.health_check_node_port:
        out.rule(
            "filter",
            "KUBE-NODEPORTS",
            f'-m comment --comment "{name} health check node port"',
            "-m tcp -p tcp",
            f"--dport {svc.health_check_node_port}",
            "-j ACCEPT",
        )
    if not has_endpoints:
        return

    cluster_ip_args = (f'-m comment --comment "{name} cluster IP"', match, f"-d {svc.cluster_ip} --dport {port}")
    if has_internal:
        if node.masquerade_all:
            out.rule("nat", internal_chain, *cluster_ip_args, "-j KUBE-MARK-MASQ")
        else:
            out.rule("nat", internal_chain, *cluster_ip_args, f"! -s {node.pod_cidrs[svc.family]}", "-j KUBE-MARK-MASQ")
    if uses_ext:
        out.chain("nat", ext_chain)
        if not svc.external_local:
            out.rule(
                "nat",
                ext_chain,
                f'-m comment --comment "masquerade traffic for {name} external destinations"',
                "-j KUBE-MARK-MASQ",
            )
        else:
            out.rule(
                "nat",
                ext_chain,
                f'-m comment --comment "pod traffic for {name} external destinations"',
                f"-s {node.pod_cidrs[svc.family]}",
                f"-j {svc_chain}",
            )
            out.rule(
                "nat",
                ext_chain,
                f'-m comment --comment "masquerade LOCAL traffic for {name} external destinations"',
                "-m addrtype --src-type LOCAL",
                "-j KUBE-MARK-MASQ",
            )
            out.rule(
                "nat",
                ext_chain,
                f'-m comment --comment "route LOCAL traffic for {name} external destinations"',
                "-m addrtype --src-type LOCAL",
                f"-j {svc_chain}",
            )
        if has_external:
            out.rule("nat", ext_chain, f"-j {external_policy_chain}")
    if uses_fw:
        out.chain("nat", fw_chain)
        fw_comment = f'-m comment --comment "{name} loadbalancer IP"'
        node_ip = ipaddress.ip_address(node.node_ips[svc.family])
        allow_from_node = False
        for cidr in svc.source_ranges:
            out.rule("nat", fw_chain, fw_comment, f"-s {cidr}", f"-j {ext_chain}")
            allow_from_node = allow_from_node or node_ip in ipaddress.ip_network(cidr, strict=False)
        if allow_from_node:
            for ip in svc.load_balancer_ips:
                out.rule("nat", fw_chain, fw_comment, f"-s {ip}", f"-j {ext_chain}")
        out.rule(
            "nat", fw_chain, f'-m comment --comment "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"'
        )
    if uses_cluster_chain:
        out.chain("nat", svc_chain)
        _service_to_endpoints(out, svc, svc_chain, svc.endpoints, large_cluster)
    if uses_local_chain:
        out.chain("nat", svl_chain)
        _service_to_endpoints(out, svc, svl_chain, local_eps, large_cluster)
    reachable = svc.endpoints if uses_cluster_chain else local_eps
    for ep in reachable:
        sep = iptables_endpoint_chain(name, proto, endpoint_string(ep.address, ep.port))
        out.chain("nat", sep)
        comment = "" if large_cluster else f"-m comment --comment {name}"
        out.rule("nat", sep, comment, f"-s {ep.address}", "-j KUBE-MARK-MASQ")
        recent = f"-m recent --name {sep} --set" if svc.affinity_seconds else ""
        out.rule("nat", sep, comment, recent, match, f"-j DNAT --to-destination {endpoint_string(ep.address, ep.port)}")


def _service_to_endpoints(
    out: _Tables, svc: ServiceSpec, chain: str, endpoints: tuple[EndpointSpec, ...], large_cluster: bool
) -> None:
    """`writeServiceToEndpointRules`: affinity checks, then the probability ladder."""
    name = svc.port_name_string
    proto = svc.protocol.value

    def comment(ep_str: str) -> str:
        return "" if large_cluster else f'-m comment --comment "{name} -> {ep_str}"'

    if svc.affinity_seconds:
        for ep in endpoints:
            ep_str = endpoint_string(ep.address, ep.port)
            sep = iptables_endpoint_chain(name, proto, ep_str)
            out.rule(
                "nat",
                chain,
                comment(ep_str),
                f"-m recent --name {sep} --rcheck --seconds {svc.affinity_seconds} --reap",
                f"-j {sep}",
            )
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        ep_str = endpoint_string(ep.address, ep.port)
        sep = iptables_endpoint_chain(name, proto, ep_str)
        statistic = f"-m statistic --mode random --probability {1.0 / (n - i):0.10f}" if i < n - 1 else ""
        out.rule("nat", chain, comment(ep_str), statistic, f"-j {sep}")


def _dump(out: _Tables, *, jump_rules: bool, kubelet_firewall: bool) -> str:
    lines: list[str] = []
    jumps: dict[tuple[str, str], list[str]] = {}
    if jump_rules:
        entries = list(_JUMPS)
        if kubelet_firewall:
            entries += [("filter", "KUBE-FIREWALL", "INPUT", "", ""), ("filter", "KUBE-FIREWALL", "OUTPUT", "", "")]
        for table, target, builtin, comment, extra in entries:
            parts = ["-A", builtin] + ([extra] if extra else [])
            if comment:
                parts.append(f'-m comment --comment "{comment}"')
            parts.append(f"-j {target}")
            jumps.setdefault((table, builtin), []).insert(0, " ".join(parts))
        lines += ["*mangle"] + [f":{c} ACCEPT [0:0]" for c in _BUILTIN["mangle"]]
        lines += [":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-PROXY-CANARY - [0:0]", "COMMIT"]
    for table in ("filter", "nat"):
        lines.append(f"*{table}")
        if jump_rules:
            lines += [f":{c} ACCEPT [0:0]" for c in _BUILTIN[table]]
            lines += [":KUBE-KUBELET-CANARY - [0:0]", ":KUBE-PROXY-CANARY - [0:0]"]
        lines += [f":{c} - [0:0]" for c in out.chains[table]]
        if jump_rules:
            for builtin in _BUILTIN[table]:
                lines += jumps.get((table, builtin), [])
        lines += out.rules[table]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"
