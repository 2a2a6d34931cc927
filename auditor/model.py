"""What a node does with Service traffic, independent of kube-proxy's mode.

Both normalizers (iptables mode and nftables mode) produce a `ServiceModel`; everything
downstream (checks, diff, reports) reads only this module's types. It imports nothing
from the rest of the package.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from enum import StrEnum

#: Probabilities from the two modes are compared with this tolerance: real iptables-save
#: prints the kernel's fixed-point value (0.3333333333 comes back as 0.33333333349).
PROBABILITY_TOLERANCE = 1e-6


class ProxyMode(StrEnum):
    """kube-proxy's data-plane mode."""

    IPTABLES = "iptables"
    NFTABLES = "nftables"


class IPFamily(StrEnum):
    """Address family of a Service port; kube-proxy keeps one rule set per family."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"


class Protocol(StrEnum):
    """Service port protocol, lower-cased as kube-proxy writes it."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"


class FrontendKind(StrEnum):
    """How traffic reaches a Service port on this node."""

    CLUSTER_IP = "cluster-ip"
    EXTERNAL_IP = "external-ip"
    LOAD_BALANCER = "load-balancer"
    NODE_PORT = "node-port"

    @property
    def is_external(self) -> bool:
        """External traffic policy (eTP) applies to every kind but the cluster IP."""
        return self is not FrontendKind.CLUSTER_IP


class Result(StrEnum):
    """What happens to the first packet of a new connection."""

    DNAT = "dnat"
    REJECT = "reject"
    DROP = "drop"


class Masquerade(StrEnum):
    """Which new connections to a frontend get source NAT (the 0x4000 mark in iptables)."""

    #: no rule marks traffic for this frontend (no local-traffic detector configured)
    NONE = "none"
    #: every connection (externalTrafficPolicy Cluster, or masqueradeAll)
    ALL = "all"
    #: connections from outside the pod network (the local-traffic detector's "not local")
    OFF_CLUSTER = "off-cluster"
    #: only connections the node itself originates (externalTrafficPolicy Local)
    NODE_SOURCES = "node-sources"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Where a modelled fact came from: enough to show an operator the exact rule."""

    table: str
    chain: str
    line: int
    rule: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A DNAT destination and the share of new connections it receives."""

    address: str
    port: int
    probability: float


@dataclass(frozen=True, slots=True)
class Frontend:
    """One address:port (or NodePort) of a Service port, and its outcome for a new connection.

    For a frontend whose outcome depends on where traffic comes from (Local traffic
    policy), `result` and `endpoints` are the outcome for traffic from outside the
    cluster, and `local_only` is set.
    """

    kind: FrontendKind
    #: None for a NodePort (it answers on `ServiceModel.node_port_addresses`)
    address: str | None
    port: int
    result: Result
    endpoints: tuple[Endpoint, ...] = ()
    affinity_seconds: int | None = None
    source_ranges: tuple[str, ...] = ()
    local_only: bool = False
    masquerade: Masquerade = Masquerade.NONE
    #: traffic from pods and from the node skips the Local policy and uses every endpoint
    short_circuit: bool = False
    #: False where the rules cannot tell the kind apart (nftables sends external IPs and
    #: load-balancer IPs without source ranges through the same map entry)
    kind_certain: bool = True
    #: the rules that dispatch this frontend (for evidence; not compared)
    origin: tuple[RuleRef, ...] = field(default=(), compare=False)

    @property
    def sort_key(self) -> tuple[str, tuple[int, bytes], int]:
        return (self.kind.value, address_sort_key(self.address), self.port)


@dataclass(frozen=True, slots=True)
class ServicePort:
    """A Service port as kube-proxy names it: `namespace/name:port-name` (no colon if unnamed)."""

    name: str
    protocol: Protocol
    family: IPFamily
    frontends: tuple[Frontend, ...]

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.protocol.value, self.family.value)

    @property
    def namespace(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def port_name(self) -> str:
        tail = self.name.split("/", 1)[-1]
        return tail.split(":", 1)[1] if ":" in tail else ""


@dataclass(frozen=True, slots=True)
class HealthCheckNodePort:
    """A healthCheckNodePort that iptables mode explicitly ACCEPTs in the filter table."""

    port: int
    service: str | None
    family: IPFamily
    origin: RuleRef | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Unmodelled:
    """A rule the normalizer saw but did not turn into model facts, and why."""

    table: str
    chain: str
    line: int
    rule: str
    reason: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class ServiceModel:
    """Everything a normalizer learned from one node's rules in one mode."""

    mode: ProxyMode
    services: tuple[ServicePort, ...]
    #: ["local"] when NodePorts answer on every local address, else the addresses
    node_port_addresses: tuple[str, ...] = ()
    #: NodePorts also answer on 127.0.0.0/8 (iptables mode with route_localnet)
    localhost_node_ports: bool = False
    health_check_node_ports: tuple[HealthCheckNodePort, ...] = ()
    #: the local-traffic detector seen in the masquerade rules, e.g. "10.0.0.0/8" or "iif cbr0"
    local_traffic: tuple[str, ...] = ()
    families: tuple[IPFamily, ...] = ()
    unmodelled: tuple[Unmodelled, ...] = ()
    rules_seen: int = 0
    rules_modelled: int = 0

    @property
    def coverage(self) -> float:
        """Share of the rules seen that the model accounts for (1.0 when there were none)."""
        return 1.0 if self.rules_seen == 0 else self.rules_modelled / self.rules_seen

    def service(self, name: str, protocol: str = "tcp", family: str = "ipv4") -> ServicePort:
        """Look a service port up by its key; KeyError when absent."""
        for svc in self.services:
            if svc.key == (name, protocol, family):
                return svc
        raise KeyError((name, protocol, family))


def address_sort_key(address: str | None) -> tuple[int, bytes]:
    """Numeric order for addresses and prefixes (None first, then IPv4, then IPv6)."""
    if address is None:
        return (0, b"")
    if ":" not in address and "/" not in address:  # the common case: a plain IPv4 address
        try:
            return (4, socket.inet_pton(socket.AF_INET, address) + b"\x20")
        except OSError:
            return (9, address.encode())
    text, _, prefix = address.partition("/")
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        packed = socket.inet_pton(family, text)
    except OSError:
        return (9, address.encode())
    length = int(prefix) if prefix.isdigit() else 8 * len(packed)
    return (4 if family == socket.AF_INET else 6, packed + bytes((length,)))


def sorted_endpoints(endpoints: list[Endpoint] | tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """Endpoints in the contract's order: address, then port."""
    return tuple(sorted(endpoints, key=lambda e: (address_sort_key(e.address), e.port)))


def sorted_frontends(frontends: list[Frontend] | tuple[Frontend, ...]) -> tuple[Frontend, ...]:
    """Frontends in the contract's order: kind, address, port."""
    return tuple(sorted(frontends, key=lambda f: f.sort_key))


def sorted_services(services: list[ServicePort] | tuple[ServicePort, ...]) -> tuple[ServicePort, ...]:
    """Service ports in the contract's order: name, protocol, family."""
    return tuple(sorted(services, key=lambda s: s.key))
