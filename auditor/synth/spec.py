"""The Services a generated node carries, as kube-proxy sees them after its own filtering.

A `NodeSpec` is the generator's single source of truth: the iptables writer, the nftables
writer and the expected model are all computed from it, so a test can load the rules
into a real kernel, read them back, normalize them and compare with what was meant.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field, replace

from auditor.model import IPFamily, Protocol
from auditor.naming import service_port_name

#: kube-proxy leaves comments out of endpoint rules above this many endpoints in total
LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000


@dataclass(frozen=True)
class EndpointSpec:
    """A ready endpoint; `local` when it runs on this node."""

    address: str
    port: int
    local: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """One Service port, with every field that shapes kube-proxy's rules."""

    namespace: str
    name: str
    port_name: str
    protocol: Protocol
    family: IPFamily
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    source_ranges: tuple[str, ...] = ()
    external_local: bool = False
    internal_local: bool = False
    affinity_seconds: int | None = None
    health_check_node_port: int = 0
    endpoints: tuple[EndpointSpec, ...] = ()

    @property
    def port_name_string(self) -> str:
        """``ns/svc:port`` as kube-proxy prints it."""
        return service_port_name(self.namespace, self.name, self.port_name)

    @property
    def local_endpoints(self) -> tuple[EndpointSpec, ...]:
        return tuple(ep for ep in self.endpoints if ep.local)

    @property
    def externally_accessible(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


@dataclass(frozen=True)
class NodeSpec:
    """A node's kube-proxy configuration and the Service ports it proxies."""

    name: str = "kpa-node"
    services: tuple[ServiceSpec, ...] = ()
    node_ips: dict[IPFamily, str] = field(
        default_factory=lambda: {IPFamily.IPV4: "192.168.0.2", IPFamily.IPV6: "2001:db8::1"}
    )
    pod_cidrs: dict[IPFamily, str] = field(
        default_factory=lambda: {IPFamily.IPV4: "10.0.0.0/8", IPFamily.IPV6: "fd00:10::/64"}
    )
    service_cidrs: dict[IPFamily, str] = field(
        default_factory=lambda: {IPFamily.IPV4: "172.30.0.0/16", IPFamily.IPV6: "fd00:10:96::/112"}
    )
    #: None: NodePorts on every local address; else only these addresses
    node_port_addresses: tuple[str, ...] | None = None
    localhost_node_ports: bool = True
    masquerade_all: bool = False
    masquerade_bit: int = 14
    #: nfacct counters exist (kube-proxy then adds `-m nfacct` matches)
    nfacct: bool = True
    conntrack_tcp_be_liberal: bool = False

    @property
    def families(self) -> tuple[IPFamily, ...]:
        present = {svc.family for svc in self.services}
        return tuple(f for f in (IPFamily.IPV4, IPFamily.IPV6) if f in present)

    @property
    def large_cluster(self) -> bool:
        total = sum(len(svc.endpoints) for svc in self.services)
        return total > LARGE_CLUSTER_ENDPOINTS_THRESHOLD

    @property
    def masquerade_mark(self) -> str:
        return f"{1 << self.masquerade_bit:#08x}"

    @property
    def localhost_node_ports_active(self) -> bool:
        """kube-proxy turns localhost NodePorts off unless nodePortAddresses covers 127.0.0.0/8."""
        if not self.localhost_node_ports:
            return False
        if self.node_port_addresses is None:
            return True
        return any(ipaddress.ip_address(a).is_loopback for a in self.node_port_addresses if ":" not in a)

    def services_of(self, family: IPFamily) -> tuple[ServiceSpec, ...]:
        return tuple(svc for svc in self.services if svc.family == family)


def _nth_address(cidr: str, n: int) -> str:
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + n)


def generate_node(
    services: int,
    endpoints_per_service: int = 4,
    *,
    seed: int = 1,
    families: tuple[IPFamily, ...] = (IPFamily.IPV4,),
    variety: bool = True,
    **node_options: object,
) -> NodeSpec:
    """A deterministic node with `services` Service ports per family.

    With `variety`, the ports cycle through every shape kube-proxy writes: ClusterIP,
    NodePort, external IPs, load balancers with and without source ranges, affinity,
    external and internal Local policies (with and without local endpoints), no endpoints,
    UDP and SCTP, and an unnamed port. Without it every port is a plain ClusterIP (for
    benchmarks). Large-cluster mode follows from the endpoint count, as in kube-proxy.
    """
    rng = random.Random(seed)
    stride = max(64, endpoints_per_service)
    specs: list[ServiceSpec] = []
    for family in families:
        v6 = family is IPFamily.IPV6
        svc_net = "fd00:10:96::/108" if v6 else "172.30.0.0/16"
        pod_net = "fd00:10::/64" if v6 else "10.128.0.0/9"
        ext_net = "2001:db8:100::/64" if v6 else "100.64.0.0/11"
        lb_net = "2001:db8:200::/64" if v6 else "100.96.0.0/11"
        for i in range(services):
            shape = i % 12 if variety else 0
            eps = tuple(
                EndpointSpec(
                    _nth_address(pod_net, 1 + i * stride + j),
                    8080 if shape % 3 else 80,
                    local=(j == 0 and shape in (5, 6, 9)),
                )
                for j in range(endpoints_per_service)
            )
            spec = ServiceSpec(
                namespace=f"ns{i % 7}",
                name=f"svc{i}",
                port_name="" if shape == 11 else ("dns" if shape == 7 else "http"),
                protocol=Protocol.UDP if shape == 7 else Protocol.SCTP if shape == 10 else Protocol.TCP,
                family=family,
                cluster_ip=_nth_address(svc_net, 10 + i),
                port=53 if shape == 7 else 80,
                endpoints=eps,
            )
            spec = _shape(spec, shape, i, ext_net, lb_net, rng)
            specs.append(spec)
    return NodeSpec(services=tuple(specs), **node_options)  # type: ignore[arg-type]


def _source_ranges(family: IPFamily, contains_node: bool) -> tuple[str, ...]:
    """loadBalancerSourceRanges; with `contains_node`, one range holds the node's own IP."""
    if family is IPFamily.IPV6:
        return ("2001:db8:f00::/48", "2001:db8::/64") if contains_node else ("2001:db8:f00::/48",)
    return ("192.0.2.0/25", "192.168.0.0/16") if contains_node else ("192.0.2.0/25", "198.18.0.0/15")


def _shape(spec: ServiceSpec, shape: int, i: int, ext_net: str, lb_net: str, rng: random.Random) -> ServiceSpec:
    """Give service number `i` one of the twelve shapes listed in `generate_node`."""
    # NodePorts and health-check ports must be unique on a node; benchmarks go past the
    # default 30000-32767 range on purpose.
    node_port = 30000 + i if shape in (1, 2, 3, 4, 5, 9) else 0
    health_port = 50000 + i
    if shape == 1:  # NodePort
        return replace(spec, node_port=node_port)
    if shape == 2:  # external IP + NodePort
        return replace(spec, node_port=node_port, external_ips=(_nth_address(ext_net, 1 + i),))
    if shape == 3:  # load balancer, source ranges, affinity
        return replace(
            spec,
            node_port=node_port,
            load_balancer_ips=(_nth_address(lb_net, 1 + i),),
            source_ranges=_source_ranges(spec.family, contains_node=(i // 12) % 2 == 1),
            affinity_seconds=10800,
        )
    if shape == 4:  # load balancer, no source ranges
        return replace(spec, node_port=node_port, load_balancer_ips=(_nth_address(lb_net, 1 + i),))
    if shape == 5:  # eTP Local with a local endpoint, health check port
        return replace(
            spec,
            node_port=node_port,
            load_balancer_ips=(_nth_address(lb_net, 1 + i),),
            external_local=True,
            health_check_node_port=health_port,
        )
    if shape == 6:  # iTP Local with a local endpoint, affinity with a short timeout
        return replace(spec, internal_local=True, affinity_seconds=rng.choice((60, 300, 3600)))
    if shape == 8:  # no endpoints at all
        return replace(spec, endpoints=())
    if shape == 9:  # eTP Local with no local endpoints (drop), external IP
        remote = tuple(replace(ep, local=False) for ep in spec.endpoints)
        return replace(
            spec,
            node_port=node_port,
            external_ips=(_nth_address(ext_net, 1 + i),),
            external_local=True,
            health_check_node_port=health_port,
            endpoints=remote,
        )
    if shape == 10:  # iTP Local without local endpoints (drop)
        return replace(spec, internal_local=True)
    return spec
