"""iptables mode: from `iptables-save` tables to the Service model.

The walk starts where kube-proxy dispatches Service traffic (nat KUBE-SERVICES and
KUBE-NODEPORTS) and follows jumps: KUBE-FW (source ranges) -> KUBE-EXT (external policy)
-> KUBE-SVC / KUBE-SVL (endpoint choice, affinity, masquerade) -> KUBE-SEP (DNAT). The
filter table supplies what happens to traffic nat leaves alone: REJECT (no endpoints),
DROP (no local endpoints, or outside loadBalancerSourceRanges). Semantics never come from
comments: comments only name Services and tell external IPs from load-balancer IPs.
Every rule ends up either in the model or in `unmodelled`, with the reason.

Older layouts: the masquerade rules kube-proxy wrote in KUBE-SERVICES / KUBE-NODEPORTS before
v1.24 are modelled; KUBE-XLB chains (before v1.24) and KUBE-MARK-DROP "drops" (before v1.26,
which only kubelet's KUBE-FIREWALL on INPUT/OUTPUT turns into drops) are not, and every rule and
frontend that depends on them is reported in `unmodelled` as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from auditor.gc_pause import paused_gc
from auditor.model import (
    PROBABILITY_TOLERANCE,
    Endpoint,
    Frontend,
    FrontendKind,
    HealthCheckNodePort,
    IPFamily,
    Masquerade,
    Protocol,
    ProxyMode,
    Result,
    RuleRef,
    ServiceModel,
    ServicePort,
    Unmodelled,
    address_sort_key,
    sorted_endpoints,
    sorted_frontends,
    sorted_services,
)
from auditor.naming import canonical_address, iptables_service_hash
from auditor.normalize.iptables_facts import (
    CTSTATE,
    DPORT,
    DST,
    DST_TYPE,
    IN_IFACE,
    MARK,
    NFACCT,
    PROTO,
    RECENT,
    SRC,
    SRC_TYPE,
    Facts,
    endpoints_in_bulk,
    host_port,
    pick_of,
    read_facts,
)
from auditor.parse.iptables_save import Chain, IptablesDump

_KIND_SUFFIXES = (
    (" cluster IP", FrontendKind.CLUSTER_IP),
    (" external IP", FrontendKind.EXTERNAL_IP),
    (" loadbalancer IP", FrontendKind.LOAD_BALANCER),
)
_BLOCK_SUFFIXES = (" has no endpoints", " has no local endpoints")
_HEALTH_SUFFIX = " health check node port"

_PROTOCOLS = {p.value: p for p in Protocol}
_CANARIES = {"KUBE-PROXY-CANARY", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"}
#: kube-proxy before v1.24 sent eTP=Local traffic through KUBE-XLB chains, and before v1.26 it
#: "dropped" by marking packets (KUBE-MARK-DROP) for kubelet's KUBE-FIREWALL to drop, which only
#: sees INPUT/OUTPUT traffic: kp-audit does not model either, and says so.
_LEGACY_REASON = (
    "older kube-proxy layout (KUBE-XLB chains before v1.24, KUBE-MARK-DROP before v1.26): "
    "kp-audit does not model it"
)
# Jumps kube-proxy and kubelet insert into built-in chains (FORMATS.md 2.1).
_BUILTIN_JUMPS = {
    ("filter", "INPUT"): {"KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"},
    ("filter", "FORWARD"): {"KUBE-EXTERNAL-SERVICES", "KUBE-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"},
    ("filter", "OUTPUT"): {"KUBE-SERVICES", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"},
    ("nat", "PREROUTING"): {"KUBE-SERVICES"},
    ("nat", "OUTPUT"): {"KUBE-SERVICES"},
    ("nat", "POSTROUTING"): {"KUBE-POSTROUTING"},
}


def normalize_iptables(dumps: Sequence[IptablesDump]) -> ServiceModel:
    """The Service model of one node from its iptables-save dumps (one per family)."""
    walks = [_FamilyWalk(dump) for dump in dumps]
    with paused_gc():
        for walk in walks:
            walk.run()
    services: list[ServicePort] = []
    node_port_addresses: list[str] = []
    unmodelled: list[Unmodelled] = []
    health: list[HealthCheckNodePort] = []
    local_traffic: list[str] = []
    families: list[IPFamily] = []
    for walk in walks:
        services += walk.services
        node_port_addresses += [a for a in walk.node_port_addresses if a not in node_port_addresses]
        unmodelled += walk.unmodelled.values()
        health += walk.health
        local_traffic += [t for t in walk.local_traffic if t not in local_traffic]
        if walk.has_state and walk.family not in families:
            families.append(walk.family)
    node_port_addresses = sorted(node_port_addresses, key=lambda a: (a != "local", address_sort_key(a)))
    rules_seen = sum(dump.rule_count for dump in dumps)
    return ServiceModel(
        mode=ProxyMode.IPTABLES,
        services=sorted_services(services),
        node_port_addresses=tuple(node_port_addresses),
        localhost_node_ports=any(walk.localhost_node_ports for walk in walks),
        health_check_node_ports=tuple(sorted(health, key=lambda h: (h.family.value, h.port))),
        local_traffic=tuple(local_traffic),
        families=tuple(sorted(families)),
        unmodelled=tuple(sorted(unmodelled, key=lambda u: (u.source, u.line))),
        rules_seen=rules_seen,
        rules_modelled=rules_seen - len(unmodelled),
    )


#: (protocol, address or None for a NodePort, port): one frontend within a family
_Key = tuple[str, str | None, int]


class _Dispatch(NamedTuple):
    """A frontend as KUBE-SERVICES or KUBE-NODEPORTS (nat) captures it."""

    chain: str
    kind: FrontendKind
    kind_certain: bool
    protocol: str
    address: str | None
    port: int
    target: str
    name: str | None
    rule: Facts


class _Block(NamedTuple):
    """A filter-table REJECT/DROP for one frontend."""

    chain: str
    verdict: Result
    kind: FrontendKind
    protocol: str
    address: str | None
    port: int
    name: str | None
    rule: Facts


@dataclass
class _Policy:
    """What a KUBE-SVC / KUBE-SVL chain does: endpoint shares, affinity, masquerade rules."""

    endpoints: tuple[Endpoint, ...] = ()
    affinity_seconds: int | None = None
    masquerade: list[Facts] = field(default_factory=list)


@dataclass
class _External:
    """What a KUBE-EXT chain does before handing traffic to a policy chain."""

    masquerade_all: bool = False
    masquerade_node: bool = False
    short_circuit: bool = False
    policy_chain: str | None = None


@dataclass
class _Firewall:
    """A KUBE-FW chain: the allowed source ranges and the chain they lead to."""

    ranges: list[str] = field(default_factory=list)
    next_chain: str | None = None
    #: the chain ends in KUBE-MARK-DROP (before v1.26), a layout kp-audit does not model
    legacy: bool = False


class _FamilyWalk:
    """Walks one family's dump; results are left on the instance."""

    def __init__(self, dump: IptablesDump) -> None:
        self.dump = dump
        self._tables = {name: table.chains for name, table in dump.tables.items()}
        self.family = IPFamily.IPV6 if dump.ipv6 else IPFamily.IPV4
        self.unmodelled: dict[tuple[str, int], Unmodelled] = {}
        #: chains whose rules were accounted for, by table
        self.visited: dict[str, set[str]] = {name: set() for name in ("nat", "filter", *dump.tables)}
        self.services: list[ServicePort] = []
        self.node_port_addresses: list[str] = []
        self.localhost_node_ports = False
        self.health: list[HealthCheckNodePort] = []
        self.local_traffic: list[str] = []
        self.has_state = False
        self._policies: dict[str, _Policy] = {}
        self._externals: dict[str, _External] = {}
        self._firewalls: dict[str, _Firewall] = {}
        #: masquerade rules written next to the dispatch (KUBE-SERVICES, KUBE-NODEPORTS; before v1.24),
        #: by (chain, destination or None, port)
        self._dispatch_masq: dict[tuple[str, str | None, int | None], list[Facts]] = {}
        nat = self._tables.get("nat", {})
        self._endpoints: dict[str, tuple[str, int] | None] = dict(endpoints_in_bulk(nat))

    # -- bookkeeping -----------------------------------------------------------------------

    def _chain(self, table: str, chain: str) -> Chain | None:
        """A chain of the dump (None when absent), marked as accounted for."""
        self.visited.setdefault(table, set()).add(chain)
        return self._tables.get(table, {}).get(chain)

    def _lines(self, table: str, chain: str) -> list[tuple[int, str]]:
        """The (line, text) of every rule in a chain, marking the chain as accounted for."""
        found = self._chain(table, chain)
        return found.lines if found is not None else []

    def _facts(self, table: str, chain: str, prefix: str = "") -> list[Facts]:
        """Facts of every rule in a chain, marking the chain as accounted for."""
        source = self.dump.source
        return [read_facts(text, line, table, source, prefix) for line, text in self._lines(table, chain)]

    def _skip(self, table: str, chain: str, rule: Facts, reason: str) -> None:
        key = (self.dump.source, rule.line)
        if key not in self.unmodelled:
            self.unmodelled[key] = Unmodelled(table, chain, rule.line, rule.text, reason, self.dump.source)

    def _ref(self, table: str, chain: str, rule: Facts) -> RuleRef:
        return RuleRef(table, chain, rule.line, rule.text, self.dump.source)

    def _unknown(self, table: str, chain: str, rule: Facts, what: str) -> None:
        if _is_legacy(rule.target):
            self._skip(table, chain, rule, _LEGACY_REASON)
            return
        detail = f": {', '.join(rule.unknown)}" if rule.unknown else ""
        self._skip(table, chain, rule, f"{what}{detail}")

    def _add_local_traffic(self, detector: str) -> None:
        if detector not in self.local_traffic:
            self.local_traffic.append(detector)

    # -- the walk --------------------------------------------------------------------------

    def run(self) -> None:
        blocks, firewall_blocks = self._filter_blocks()
        dispatches = self._nat_dispatches()
        self.has_state = bool(blocks or dispatches or self.dump.chain("nat", "KUBE-SERVICES"))
        names = self._names_by_hash(dispatches)
        frontends: dict[tuple[str, str], list[Frontend]] = {}
        claimed: set[_Key] = set()
        for d in dispatches:
            name = d.name or names.get(d.target[-16:]) or d.target
            key = (d.protocol, d.address, d.port)
            frontend = self._frontend(d, blocks.get(key) or firewall_blocks.get(key), name)
            claimed.add(key)
            if frontend is not None:
                frontends.setdefault((name, d.protocol), []).append(frontend)
        for key, block in firewall_blocks.items():
            if key not in claimed:
                self._skip("filter", block.chain, block.rule, "firewall DROP for an address nat does not dispatch")
        for key, block in blocks.items():
            if key in claimed:
                continue
            name = block.name or f"<unnamed {block.protocol}/{block.port}>"
            frontends.setdefault((name, block.protocol), []).append(
                Frontend(
                    kind=block.kind,
                    address=block.address,
                    port=block.port,
                    result=block.verdict,
                    local_only=block.verdict is Result.DROP,
                    kind_certain=block.kind in (FrontendKind.CLUSTER_IP, FrontendKind.NODE_PORT),
                    origin=(self._ref("filter", block.chain, block.rule),),
                )
            )
        for (name, protocol), items in frontends.items():
            ordered = (items[0],) if len(items) == 1 else sorted_frontends(items)
            self.services.append(ServicePort(name, _PROTOCOLS[protocol], self.family, ordered))
        self._fixed_chains()
        self._leftovers()

    def _names_by_hash(self, dispatches: Iterable[_Dispatch]) -> dict[str, str]:
        """Service names for chain hashes, so a dispatch without a comment still gets a name."""
        names: dict[str, str] = {}
        for d in dispatches:
            if d.name:
                names.setdefault(d.target[-16:], d.name)
        return names

    def _nat_dispatches(self) -> list[_Dispatch]:
        chain = "KUBE-SERVICES"
        found: dict[_Key, _Dispatch] = {}
        for rule in self._facts("nat", chain, "SERVICES"):
            target = rule.target or ""
            if target == "KUBE-NODEPORTS":
                self._nodeports_jump(rule)
            elif (
                target.startswith(("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-"))
                and rule.conditions == PROTO | DST | DPORT
                and not rule.dst_negated
            ):
                self._add_dispatch(found, chain, rule, rule.dst)
            elif target == "KUBE-MARK-MASQ" and self._dispatch_masquerade(chain, rule, PROTO | DST | DPORT):
                pass
            else:
                self._unknown("nat", chain, rule, "not a Service dispatch rule kube-proxy writes")
        chain = "KUBE-NODEPORTS"
        for rule in self._facts("nat", chain):
            target = rule.target or ""
            if target == "KUBE-MARK-MASQ" and self._dispatch_masquerade(chain, rule, PROTO | DPORT):
                pass
            elif target == "KUBE-MARK-MASQ" and rule.conditions & SRC and rule.src == "127.0.0.0/8":
                self._skip("nat", chain, rule, "masquerades only localhost sources of an eTP=Local NodePort (before v1.24)")
            elif not target.startswith(("KUBE-EXT-", "KUBE-SVC-", "KUBE-SVL-")):
                self._unknown("nat", chain, rule, "not a NodePort dispatch rule kube-proxy writes")
            elif rule.conditions == PROTO | DPORT:
                self._add_dispatch(found, chain, rule, None)
            elif (
                rule.conditions & ~NFACCT == PROTO | DPORT | DST and rule.dst == "127.0.0.0/8" and not rule.dst_negated
            ):
                pass  # the localhost twin of the next rule, there to count localhost NodePort traffic
            else:
                self._unknown("nat", chain, rule, "NodePort rule with conditions kp-audit does not model")
        return list(found.values())

    def _dispatch_masquerade(self, chain: str, rule: Facts, needed: int) -> bool:
        """Before v1.24 kube-proxy marked for masquerade in KUBE-SERVICES / KUBE-NODEPORTS, just
        before the dispatch: `[! -s <podCIDR>] -d <IP> -p P --dport N -j KUBE-MARK-MASQ` (no source
        match: masqueradeAll, or any NodePort traffic). Returns whether the rule is that shape."""
        if rule.conditions & ~SRC != needed or rule.dst_negated or (rule.conditions & SRC and not rule.src_negated):
            return False
        self._dispatch_masq.setdefault((chain, rule.dst, rule.dport), []).append(rule)
        if rule.src:
            self._add_local_traffic(rule.src)
        return True

    def _add_dispatch(self, found: dict[_Key, _Dispatch], chain: str, rule: Facts, address: str | None) -> None:
        assert rule.protocol is not None and rule.dport is not None and rule.target is not None
        if rule.protocol not in _PROTOCOLS:
            self._skip("nat", chain, rule, f"protocol {rule.protocol!r} is not one kube-proxy proxies")
            return
        key = (rule.protocol, address, rule.dport)
        if key in found:
            self._skip(
                "nat", chain, rule, f"shadowed by line {found[key].rule.line}, which matches the same traffic first"
            )
            return
        kind, certain, name = _dispatch_kind(rule.target, rule.comment, address is None)
        if name is not None and iptables_service_hash(name, rule.protocol) != rule.target[-16:]:
            name, certain = None, False  # the comment does not belong to this chain
        name = _canonical_name(name)
        found[key] = _Dispatch(chain, kind, certain, rule.protocol, address, rule.dport, rule.target, name, rule)

    def _nodeports_jump(self, rule: Facts) -> None:
        """The last rule of nat KUBE-SERVICES: where NodePorts answer."""
        if rule.conditions == DST_TYPE and rule.dst_type == "LOCAL":
            self._add_node_port_address("local")
            self.localhost_node_ports = self.localhost_node_ports or not self.dump.ipv6
        elif rule.conditions == DST_TYPE | DST and rule.dst_type == "LOCAL" and rule.dst_negated:
            self._add_node_port_address("local")  # "! -d 127.0.0.0/8" or "! -d ::1/128": no localhost
        elif rule.conditions == DST and not rule.dst_negated and rule.dst is not None:
            self._add_node_port_address(rule.dst)
            self.localhost_node_ports = self.localhost_node_ports or rule.dst.startswith("127.")
        else:
            self._unknown("nat", "KUBE-SERVICES", rule, "NodePort jump with conditions kp-audit does not model")

    def _add_node_port_address(self, address: str) -> None:
        if address not in self.node_port_addresses:
            self.node_port_addresses.append(address)

    def _filter_blocks(self) -> tuple[dict[_Key, _Block], dict[_Key, _Block]]:
        """REJECT / DROP rules for Service frontends (and, apart, the load-balancer firewall
        DROPs); the health-check ACCEPTs are recorded on the way."""
        blocks: dict[_Key, _Block] = {}
        firewall: dict[_Key, _Block] = {}
        for chain in ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-PROXY-FIREWALL"):
            found = firewall if chain == "KUBE-PROXY-FIREWALL" else blocks
            for rule in self._facts("filter", chain):
                block = self._block(chain, rule)
                if block is None:
                    self._unknown("filter", chain, rule, "not a Service REJECT/DROP rule kube-proxy writes")
                    continue
                key = (block.protocol, block.address, block.port)
                if key in found:
                    self._skip("filter", chain, rule, f"shadowed by line {found[key].rule.line}")
                    continue
                found[key] = block
        for rule in self._facts("filter", "KUBE-NODEPORTS"):
            if rule.target == "ACCEPT" and rule.conditions == PROTO | DPORT and rule.dport is not None:
                name = _canonical_name(_strip_suffix(rule.comment, _HEALTH_SUFFIX))
                ref = self._ref("filter", "KUBE-NODEPORTS", rule)
                self.health.append(HealthCheckNodePort(rule.dport, name, self.family, ref))
            else:
                self._unknown("filter", "KUBE-NODEPORTS", rule, "not a health-check ACCEPT rule kube-proxy writes")
        return blocks, firewall

    def _block(self, chain: str, rule: Facts) -> _Block | None:
        verdict = {"REJECT": Result.REJECT, "DROP": Result.DROP}.get(rule.target or "")
        if verdict is None or rule.protocol is None or rule.dport is None:
            return None
        name = None
        for suffix in _BLOCK_SUFFIXES:
            name = name or _strip_suffix(rule.comment, suffix)
        if chain == "KUBE-PROXY-FIREWALL":
            name = rule.comment.split(" traffic not accepted by ", 1)[0] if rule.comment else None
        name = _canonical_name(name)
        if rule.conditions == PROTO | DST | DPORT and not rule.dst_negated:
            if chain == "KUBE-SERVICES":
                kind = FrontendKind.CLUSTER_IP
            else:
                kind = FrontendKind.LOAD_BALANCER if chain == "KUBE-PROXY-FIREWALL" else FrontendKind.EXTERNAL_IP
            return _Block(chain, verdict, kind, rule.protocol, rule.dst, rule.dport, name, rule)
        if (
            chain == "KUBE-EXTERNAL-SERVICES"
            and rule.conditions == PROTO | DPORT | DST_TYPE
            and rule.dst_type == "LOCAL"
        ):
            return _Block(chain, verdict, FrontendKind.NODE_PORT, rule.protocol, None, rule.dport, name, rule)
        return None

    # -- one frontend ----------------------------------------------------------------------

    def _frontend(self, d: _Dispatch, block: _Block | None, name: str) -> Frontend | None:
        chain = d.target
        ranges: tuple[str, ...] = ()
        ext: _External | None = None
        origin = [self._ref("nat", d.chain, d.rule)]
        if chain.startswith("KUBE-FW-"):
            fw = self._firewall(chain)
            if fw.legacy:
                self._skip("nat", d.chain, d.rule, _LEGACY_REASON)
                return None
            ranges = tuple(fw.ranges)
            chain = fw.next_chain or ""
        if chain.startswith("KUBE-EXT-"):
            ext = self._external(chain)
            chain = ext.policy_chain or ""
        policy = self._policy(chain) if chain.startswith(("KUBE-SVC-", "KUBE-SVL-")) else None
        if block is not None:
            origin.append(self._ref("filter", block.chain, block.rule))
        short_circuit = ext is not None and ext.short_circuit
        local_only = short_circuit or chain.startswith("KUBE-SVL-")
        if policy is None or not policy.endpoints:
            if block is None:
                self._skip("nat", d.chain, d.rule, "dispatched, but no DNAT follows and no filter rule drops it")
                return None
            return Frontend(
                d.kind,
                d.address,
                d.port,
                block.verdict,
                source_ranges=ranges,
                local_only=local_only or block.verdict is Result.DROP,
                short_circuit=short_circuit,
                kind_certain=d.kind_certain,
                origin=tuple(origin),
            )
        return Frontend(
            d.kind,
            d.address,
            d.port,
            Result.DNAT,
            endpoints=tuple(policy.endpoints),
            affinity_seconds=policy.affinity_seconds,
            source_ranges=ranges,
            local_only=local_only,
            masquerade=self._masquerade(d, ext, policy),
            short_circuit=short_circuit,
            kind_certain=d.kind_certain,
            origin=tuple(origin),
        )

    def _masquerade(self, d: _Dispatch, ext: _External | None, policy: _Policy) -> Masquerade:
        if ext is not None and ext.masquerade_all:
            return Masquerade.ALL
        if ext is not None and ext.masquerade_node:
            return Masquerade.NODE_SOURCES
        for rule in policy.masquerade:
            if (rule.dst is not None and rule.dst != d.address) or (rule.dport is not None and rule.dport != d.port):
                continue
            if rule.conditions & (SRC | IN_IFACE) == 0:
                return Masquerade.ALL
            return Masquerade.OFF_CLUSTER
        for rule in self._dispatch_masq.get((d.chain, d.address, d.port), ()):
            if rule.line < d.rule.line:  # rules after the dispatch never see the packet (the DNAT ends it)
                return Masquerade.OFF_CLUSTER if rule.conditions & SRC else Masquerade.ALL
        return Masquerade.NONE

    def _firewall(self, chain: str) -> _Firewall:
        if chain in self._firewalls:
            return self._firewalls[chain]
        fw = self._firewalls[chain] = _Firewall()
        rules = self._facts("nat", chain)
        fw.legacy = any(rule.target == "KUBE-MARK-DROP" for rule in rules)
        for rule in rules:
            target = rule.target or ""
            if fw.legacy and not (target.startswith("KUBE-EXT-") and rule.conditions == SRC):
                self._skip("nat", chain, rule, _LEGACY_REASON)
            elif target.startswith("KUBE-EXT-") and rule.conditions == SRC and not rule.src_negated and rule.src:
                fw.ranges.append(canonical_address(rule.src))
                fw.next_chain = fw.next_chain or target
            elif rule.target is None and rule.conditions == 0:
                pass  # "other traffic ... will be dropped by KUBE-PROXY-FIREWALL"
            else:
                self._unknown("nat", chain, rule, "not a loadBalancerSourceRanges rule kube-proxy writes")
        return fw

    def _external(self, chain: str) -> _External:
        if chain in self._externals:
            return self._externals[chain]
        ext = self._externals[chain] = _External()
        for rule in self._facts("nat", chain):
            target = rule.target or ""
            if ext.policy_chain is not None:
                self._skip("nat", chain, rule, "unreachable: follows an unconditional jump")
            elif target == "KUBE-MARK-MASQ" and rule.conditions == 0:
                ext.masquerade_all = True
            elif target == "KUBE-MARK-MASQ" and rule.conditions == SRC_TYPE and rule.src_type == "LOCAL":
                ext.masquerade_node = True
            elif target.startswith(("KUBE-SVC-", "KUBE-SVL-")) and rule.conditions == 0:
                ext.policy_chain = target
            elif target.startswith("KUBE-SVC-") and rule.conditions == SRC_TYPE and rule.src_type == "LOCAL":
                ext.short_circuit = True
                self._policy(target)
            elif target.startswith("KUBE-SVC-") and rule.conditions in (SRC, IN_IFACE) and not rule.src_negated:
                ext.short_circuit = True
                self._add_local_traffic(rule.src if rule.conditions == SRC else f"iif {rule.in_iface}")  # type: ignore[arg-type]
                self._policy(target)
            else:
                self._unknown("nat", chain, rule, "not an external-traffic rule kube-proxy writes")
        return ext

    def _policy(self, chain: str) -> _Policy:
        """A KUBE-SVC or KUBE-SVL chain: walk the probability ladder."""
        if chain in self._policies:
            return self._policies[chain]
        policy = self._policies[chain] = _Policy()
        found = self._chain("nat", chain)
        if found is None:
            return policy
        remaining = 1.0
        shares: dict[tuple[str, int], float] = {}
        endpoints, visited_nat = self._endpoints, self.visited["nat"]
        for index, text in enumerate(found.texts):
            pick = pick_of(text) if remaining > PROBABILITY_TOLERANCE else None
            if pick is not None:  # the bulk of every dump: one endpoint's share
                probability, target = pick
                if target in endpoints:  # read in bulk up front
                    endpoint = endpoints[target]
                    visited_nat.add(target)
                else:
                    endpoint = self._endpoint(target)
                share = remaining if probability is None else remaining * probability
                remaining -= share
                if endpoint is None:  # its share is lost: the endpoints' probabilities add up to less than 1
                    rule = read_facts(text, found.line_at(index), "nat", self.dump.source)
                    self._skip("nat", chain, rule, "endpoint chain has no DNAT kp-audit understands")
                else:
                    shares[endpoint] = shares.get(endpoint, 0.0) + share
                continue
            rule = read_facts(text, found.line_at(index), "nat", self.dump.source, "SVC")
            target = rule.target or ""
            if remaining <= PROBABILITY_TOLERANCE:
                self._skip("nat", chain, rule, "unreachable: follows the last endpoint rule")
            elif target == "KUBE-MARK-MASQ" and rule.conditions & ~(PROTO | DST | DPORT | SRC | IN_IFACE) == 0:
                self._policy_masquerade(chain, rule, policy)
            elif (
                target.startswith("KUBE-SEP-")
                and rule.conditions == RECENT
                and rule.recent
                and rule.recent[0] == "rcheck"
            ):
                self._policy_affinity(chain, rule, policy)
            else:
                self._unknown("nat", chain, rule, "not an endpoint-selection rule kube-proxy writes")
        policy.endpoints = sorted_endpoints([Endpoint(a, p, s) for (a, p), s in shares.items()])
        return policy

    def _policy_masquerade(self, chain: str, rule: Facts, policy: _Policy) -> None:
        if rule.conditions & (SRC | IN_IFACE) and not (rule.src_negated or (rule.in_iface or "").startswith("!")):
            self._unknown("nat", chain, rule, "masquerade rule with a source match kp-audit does not model")
            return
        policy.masquerade.append(rule)
        if rule.conditions & SRC and rule.src:
            self._add_local_traffic(rule.src)
        elif rule.conditions & IN_IFACE:
            self._add_local_traffic("iif " + (rule.in_iface or "").lstrip("!"))

    def _policy_affinity(self, chain: str, rule: Facts, policy: _Policy) -> None:
        assert rule.recent is not None and rule.target is not None
        if self._endpoint(rule.target) is None:
            self._skip("nat", chain, rule, "affinity rule for an endpoint chain without a DNAT")
            return
        seconds = rule.recent[2]
        if policy.affinity_seconds not in (None, seconds):
            self._skip("nat", chain, rule, f"affinity timeout {seconds}s differs from {policy.affinity_seconds}s")
            return
        policy.affinity_seconds = seconds

    def _endpoint(self, chain: str) -> tuple[str, int] | None:
        """The DNAT destination of a KUBE-SEP chain (most were read in bulk up front)."""
        self.visited["nat"].add(chain)
        if chain in self._endpoints:
            return self._endpoints[chain]
        destination: tuple[str, int] | None = None
        for line, text in self._lines("nat", chain):
            rule = read_facts(text, line, "nat", self.dump.source, "SEP")
            if rule.target == "KUBE-MARK-MASQ" and rule.conditions == SRC and not rule.src_negated:
                continue  # hairpin: an endpoint talking to its own Service is masqueraded
            if rule.target == "DNAT" and rule.conditions & ~RECENT == PROTO and destination is None:
                parsed = host_port(rule.to_destination or "")
                if parsed is not None and (rule.recent is None or rule.recent[0] == "set"):
                    destination = parsed
                    continue
            self._unknown("nat", chain, rule, "not an endpoint rule kube-proxy writes")
        self._endpoints[chain] = destination
        return destination

    # -- everything else -------------------------------------------------------------------

    def _fixed_chains(self) -> None:
        """kube-proxy's plumbing: jumps from built-in chains, masquerade and forward chains."""
        for (table, builtin), targets in _BUILTIN_JUMPS.items():
            for rule in self._facts(table, builtin):
                if rule.target in targets and rule.conditions & ~CTSTATE == 0 and rule.ctstate in (None, "NEW"):
                    continue
                self._skip(table, builtin, rule, "not written by kube-proxy")
        checks = {
            ("nat", "KUBE-MARK-MASQ"): lambda r: r.target == "MARK" and r.conditions == 0,
            ("nat", "KUBE-POSTROUTING"): lambda r: (
                (r.target in ("RETURN", "MARK") and r.conditions & ~MARK == 0)
                or (r.target == "MASQUERADE" and r.conditions == 0)
            ),
            ("filter", "KUBE-FORWARD"): lambda r: (
                r.target in ("DROP", "ACCEPT") and r.conditions & ~(CTSTATE | NFACCT | MARK) == 0
            ),
            ("filter", "KUBE-FIREWALL"): lambda r: (
                r.target == "DROP" and (r.conditions & ~(SRC | DST | CTSTATE) == 0 or r.conditions == MARK)
            ),
        }
        for (table, chain), ok in checks.items():
            for rule in self._facts(table, chain):
                if not ok(rule):
                    self._unknown(table, chain, rule, "not a rule kube-proxy writes in this chain")

    def _leftovers(self) -> None:
        """Rules in chains the walk never reached."""
        for table in self.dump.tables.values():
            for chain in table.chains.values():
                if chain.name in self.visited.get(table.name, ()) or not chain.lines:
                    continue
                owned = chain.name.startswith("KUBE-") and table.name in ("nat", "filter")
                if owned and _is_legacy(chain.name):
                    reason = _LEGACY_REASON
                elif owned and chain.name not in _CANARIES:
                    reason = "no rule jumps to this kube-proxy chain (stale)"
                else:
                    reason = "not written by kube-proxy"
                for line, text in chain.lines:
                    key = (self.dump.source, line)
                    self.unmodelled.setdefault(
                        key, Unmodelled(table.name, chain.name, line, text, reason, self.dump.source)
                    )


def _dispatch_kind(target: str, comment: str | None, node_port: bool) -> tuple[FrontendKind, bool, str | None]:
    """Frontend kind and Service name of a dispatch rule.

    The target chain decides what it can: KUBE-SVC/SVL serve cluster IPs, KUBE-FW load
    balancers with source ranges. KUBE-EXT serves external and load-balancer IPs alike;
    only the comment tells them apart, and without one the kind is uncertain.
    """
    if node_port:
        return FrontendKind.NODE_PORT, True, comment if comment and " " not in comment else None
    structural: FrontendKind | None = None
    if target.startswith(("KUBE-SVC-", "KUBE-SVL-")):
        structural = FrontendKind.CLUSTER_IP
    elif target.startswith("KUBE-FW-"):
        structural = FrontendKind.LOAD_BALANCER
    named, name = None, None
    for suffix, kind in _KIND_SUFFIXES:
        if comment and comment.endswith(suffix):
            named, name = kind, comment[: -len(suffix)]
    if named is not None and (named is structural or (structural is None and named.is_external)):
        return named, True, name
    if structural is not None:
        return structural, True, name
    return FrontendKind.EXTERNAL_IP, False, name


def _is_legacy(chain: str | None) -> bool:
    return chain is not None and (chain == "KUBE-MARK-DROP" or chain.startswith("KUBE-XLB-"))


def _canonical_name(name: str | None) -> str | None:
    """`ns/svc` for an unnamed port: kube-proxy before v1.24 wrote `ns/svc:` (and hashed it so)."""
    return name[:-1] if name and name.endswith(":") and "/" in name else name


def _strip_suffix(comment: str | None, suffix: str) -> str | None:
    if comment and comment.endswith(suffix):
        return comment[: -len(suffix)]
    return None


__all__ = ["normalize_iptables"]
