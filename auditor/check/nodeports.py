"""NodePorts and the node's addresses: where NodePorts answer today (iptables mode) and after.

Shared by KPA-008 (nodePortAddresses narrowing), KPA-009 (localhost NodePorts) and KPA-011
(host firewalls). Today's answer comes from the iptables model (`node_port_addresses`,
`localhost_node_ports`); the answer in nftables mode from kube-proxy's `nodePortAddresses`
(default `primary`) resolved against the addresses in host.json.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from auditor.check.context import CheckContext
from auditor.check.settings import Setting, setting
from auditor.findings import Evidence
from auditor.model import FrontendKind, IPFamily, ServiceModel
from auditor.normalize.node import holds_kube_proxy_state

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ADDRESSES_SOURCE = "host.json: addresses"
#: interfaces that are rarely what the Node object calls its primary IP (CNI, container and
#: tunnel devices); skipped when guessing the primary address
VIRTUAL_INTERFACES = (
    "lo", "docker", "cni", "cbr", "br-", "veth", "flannel", "cali", "cilium", "lxc", "vxlan", "tunl", "weave",
    "kube-", "nodelocaldns", "virbr", "genev", "tun", "tap", "wg",
)  # fmt: skip


@dataclass(frozen=True)
class LocalAddress:
    """One address of a local interface, from host.json."""

    interface: str
    ip: IPAddress

    @property
    def family(self) -> IPFamily:
        return IPFamily.IPV6 if self.ip.version == 6 else IPFamily.IPV4

    @property
    def text(self) -> str:
        return str(self.ip)

    @property
    def label(self) -> str:
        return f"{self.ip} ({self.interface})"


@dataclass(frozen=True)
class NodePort:
    """A port kube-proxy serves on node addresses: a Service's NodePort or a healthCheckNodePort."""

    service: str
    port: int
    protocol: str
    family: IPFamily
    #: "node-port" or "health-check"
    kind: str

    @property
    def label(self) -> str:
        what = " (health check)" if self.kind == "health-check" else ""
        return f"{self.service} {self.protocol}/{self.port}{what}"


def local_addresses(ctx: CheckContext) -> list[LocalAddress] | None:
    """Every parseable address in host.json; None when the snapshot has no address list.

    IPv6 link-local addresses (fe80::/10) are left out: nobody reaches a NodePort on them.
    """
    raw = ctx.host.get("addresses")
    if raw is None:
        return None
    out: list[LocalAddress] = []
    for item in raw:
        ip = parse_ip(item.get("address") if isinstance(item, dict) else None)
        if ip is None or (ip.version == 6 and ip.is_link_local):
            continue
        out.append(LocalAddress(str(item.get("interface") or "?"), ip))
    return out


def parse_ip(text: Any) -> IPAddress | None:
    try:
        return ipaddress.ip_address(str(text).split("/", 1)[0].split("%", 1)[0])
    except ValueError:
        return None


def parse_network(text: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def node_ports(model: ServiceModel) -> list[NodePort]:
    """Every NodePort frontend and every healthCheckNodePort of the model, each once."""
    found: dict[tuple[str, int, str, IPFamily, str], NodePort] = {}
    for svc in model.services:
        for frontend in svc.frontends:
            if frontend.kind is FrontendKind.NODE_PORT:
                np = NodePort(svc.name, frontend.port, svc.protocol.value, svc.family, "node-port")
                found.setdefault((np.service, np.port, np.protocol, np.family, np.kind), np)
    for hc in model.health_check_node_ports:
        np = NodePort(hc.service or f"<health check {hc.port}>", hc.port, "tcp", hc.family, "health-check")
        found.setdefault((np.service, np.port, np.protocol, np.family, np.kind), np)
    return sorted(found.values(), key=lambda n: (n.family.value, n.port, n.protocol, n.kind))


def served_today(model: ServiceModel, addresses: Sequence[LocalAddress]) -> list[LocalAddress]:
    """The addresses NodePorts answer on in iptables mode ("local": every local address;
    IPv4 loopback only with localhost NodePorts; never ::1)."""
    out: list[LocalAddress] = []
    for address in addresses:
        if address.ip.is_loopback:
            if address.ip.version == 4 and model.localhost_node_ports:
                out.append(address)
            continue
        for entry in model.node_port_addresses:
            network = None if entry == "local" else parse_network(entry)
            if entry == "local" or (network is not None and address.ip in network):
                out.append(address)
                break
    return out


def planned_node_port_addresses(ctx: CheckContext) -> Setting | None:
    """`nodePortAddresses` (config) or `--nodeport-addresses` (no config), as a list; None when unset."""
    found = setting(ctx, "nodePortAddresses", "nodeport-addresses")
    if found is None:
        return None
    value = found.value
    items = [str(v).strip() for v in value] if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
    items = [v for v in items if v]
    return Setting(found.name, items, found.source) if items else None


def primary_addresses(
    ctx: CheckContext, addresses: Sequence[LocalAddress]
) -> tuple[dict[IPFamily, IPAddress], list[Evidence]]:
    """What `primary` resolves to, per family, and how it was decided.

    kube-proxy takes the Node object's primary IPs unless `bindAddress` overrides them
    (types.go). The snapshot has neither the Node object nor the routing table, so without
    `bindAddress` the first global address on a non-virtual interface stands in, and the
    evidence says so.
    """
    primary: dict[IPFamily, IPAddress] = {}
    evidence: list[Evidence] = []
    bind = setting(ctx, "bindAddress", "bind-address")
    bind_ip = parse_ip(bind.value) if bind is not None else None
    if bind is not None and bind_ip is not None and not bind_ip.is_unspecified:
        family = IPFamily.IPV6 if bind_ip.version == 6 else IPFamily.IPV4
        primary[family] = bind_ip
        evidence.append(bind.evidence("primary IP override"))
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        if family in primary:
            continue
        candidates = [a for a in addresses if a.family is family and _is_global(a.ip)]
        if not candidates:
            continue
        physical = [a for a in candidates if not a.interface.startswith(VIRTUAL_INTERFACES)]
        chosen = (physical or candidates)[0]
        primary[family] = chosen.ip
        evidence.append(
            Evidence(
                f"assumed primary {family.value} address (first global address on a non-virtual interface; "
                "the snapshot records neither the Node object's addresses nor the default route)",
                chosen.label,
                ADDRESSES_SOURCE,
            )
        )
    return primary, evidence


def served_after(
    values: Sequence[str] | None, addresses: Sequence[LocalAddress], primary: dict[IPFamily, IPAddress]
) -> tuple[list[LocalAddress], list[str]]:
    """The addresses NodePorts answer on in nftables mode, and notes on entries that serve
    nothing (loopback is never served there; unparseable entries are ignored)."""
    notes: list[str] = []
    wanted: list[IPNetwork] = []
    keywords: set[str] = set()
    for value in values if values is not None else ["primary"]:
        if value in ("primary", "all", "localhost"):
            keywords.add(value)
            continue
        network = parse_network(value)
        if network is None:
            notes.append(f"{value!r} is neither a CIDR nor a keyword kube-proxy knows")
        else:
            wanted.append(network)
    if "localhost" in keywords or any(n.is_loopback for n in wanted):
        notes.append("loopback entries serve nothing in nftables mode (see KPA-009)")
    out: list[LocalAddress] = []
    for address in addresses:
        if address.ip.is_loopback:
            continue
        if (
            "all" in keywords
            or ("primary" in keywords and primary.get(address.family) == address.ip)
            or any(address.ip in n for n in wanted if n.version == address.ip.version)
        ):
            out.append(address)
    return out, notes


def no_iptables_state(ctx: CheckContext) -> tuple[bool, str]:
    """Why the snapshot has no iptables-mode model: (whether data is missing, the reason).

    Missing data when kube-proxy is said to run in iptables mode; otherwise there is simply
    nothing iptables mode does here (already nftables, ipvs, no kube-proxy).
    """
    mode = ctx.current_mode.value if ctx.current_mode else ctx.kube_proxy.get("mode")
    if mode != "iptables":
        return False, f"no iptables-mode kube-proxy state in the snapshot (kube-proxy mode: {mode or 'unknown'})"
    if not ctx.iptables:
        errors = [e for n in ("iptables-nft-save", "iptables-legacy-save") if (e := ctx.source_error(n))]
        why = f" ({'; '.join(errors)})" if errors else ""
        return True, f"kube-proxy runs in iptables mode, but the snapshot has no iptables dump{why}"
    return True, (
        f"kube-proxy runs in iptables mode, but no dump ({', '.join(sorted(ctx.iptables))}) holds its nat "
        "KUBE-SERVICES chain (not synced yet, or its backend was not collected)"
    )


def kube_proxy_dumps(ctx: CheckContext) -> list[str]:
    """Snapshot file names of the iptables dumps that hold kube-proxy's state."""
    return sorted(name for name, dump in ctx.iptables.items() if holds_kube_proxy_state(dump))


def nodeports_jump_evidence(ctx: CheckContext) -> list[Evidence]:
    """The nat KUBE-SERVICES -> KUBE-NODEPORTS rules: they say where NodePorts answer today."""
    evidence = []
    for name in kube_proxy_dumps(ctx):
        chain = ctx.iptables[name].chain("nat", "KUBE-SERVICES")
        for line, text in chain.lines if chain else ():
            if text.endswith("-j KUBE-NODEPORTS"):
                evidence.append(Evidence("where NodePorts answer today", text, f"{name}:{line}"))
    return evidence


def cidr_of(ip: IPAddress) -> str:
    return f"{ip}/{ip.max_prefixlen}"


def summarize(labels: Iterable[str], limit: int = 4) -> str:
    """The first few items, then a count of the rest."""
    items = list(labels)
    head = ", ".join(items[:limit])
    return head if len(items) <= limit else f"{head} and {len(items) - limit} more"


def _is_global(ip: IPAddress) -> bool:
    return not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified)
