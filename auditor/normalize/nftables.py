"""nftables mode: from `table ip kube-proxy` / `table ip6 kube-proxy` to the Service model.

kube-proxy's nftables proxier dispatches Service traffic through maps, so the walk starts
there, never at base chain names (those changed between v1.29, v1.31 and v1.34):

- `service-ips` (addr . proto . port) and `service-nodeports` (proto . port) send a frontend
  to `service-` / `local-` (endpoint choice) or `external-` (external policy) chains;
- `firewall-ips` sends load-balancer destinations to `firewall-` chains (source ranges);
- `no-endpoint-services` / `no-endpoint-nodeports` drop or reject what has no endpoints;
- the `cluster-ips` set tells cluster IPs apart; `nodeport-ips` (or `fib daddr type local`)
  says where NodePorts answer.

A map counts only if a rule reachable from a base chain of the right type (nat for
dispatch, filter for the checks) looks it up with kube-proxy's key. Per-service chains are
read rule by rule: `numgen random mod N vmap` (each index 1/N), affinity sets
(`ip saddr @affinity-X goto endpoint-X` + the set's timeout), `jump mark-for-masquerade`
(checked by the target chain's content, not its name), `dnat to`. Names come from chain
names (`service-HASH-ns/svc/proto/port`) or, when a name was cut (`...`), from element
comments. Every rule of the kube-proxy tables ends up in the model or in `unmodelled` with
the reason; map elements that cannot be used are listed there too (line 0), but coverage
counts rules only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.errors import InputError
from auditor.gc_pause import paused_gc
from auditor.model import (
    Endpoint,
    Frontend,
    FrontendKind,
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
from auditor.naming import canonical_address, nft_service_chain_base, service_port_name
from auditor.normalize.nftables_facts import (
    ADDR_KEY,
    CTSTATE,
    DADDR,
    DNAT,
    DPORT,
    FIB_DADDR,
    FIB_SADDR,
    IIF,
    L4PROTO,
    LOOKUP,
    MARK_OR,
    MARK_TEST,
    MARK_XOR,
    MASQ,
    NUMGEN,
    PORT_KEY,
    REJECT,
    SADDR,
    UPDATE,
    VERDICT,
    Facts,
    read_facts,
)
from auditor.parse.nft_json import (
    Concat,
    NftElement,
    NftRule,
    NftRuleset,
    NftTable,
    Prefix,
    Verdict,
    element_text,
    rule_text,
)

KUBE_PROXY_TABLE = "kube-proxy"
_FAMILIES = {"ip": IPFamily.IPV4, "ip6": IPFamily.IPV6}
_LOOPBACK = {"ip": "127.0.0.0/8", "ip6": "::1"}

# the dispatch maps and sets (pkg/proxy/nftables/proxier.go); key shapes of their lookups
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
FIREWALL_IPS = "firewall-ips"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
CLUSTER_IPS = "cluster-ips"
NODEPORT_IPS = "nodeport-ips"
#: map -> (key shape of its lookup, hook type that must reach the lookup)
_MAPS = {
    SERVICE_IPS: (ADDR_KEY, "nat"),
    SERVICE_NODEPORTS: (PORT_KEY, "nat"),
    FIREWALL_IPS: (ADDR_KEY, "filter"),
    NO_ENDPOINT_SERVICES: (ADDR_KEY, "filter"),
    NO_ENDPOINT_NODEPORTS: (PORT_KEY, "filter"),
}
_POLICY = ("service-", "local-")
_SERVICE_CHAIN_PREFIXES = ("service-", "local-", "external-", "firewall-")


def normalize_nftables(ruleset: NftRuleset, *, require_table: bool = False) -> ServiceModel:
    """The Service model of one node from `nft -j list ruleset` (both kube-proxy tables).

    Without a `table ip kube-proxy` or `table ip6 kube-proxy`: an `InputError` when
    `require_table`, else an empty model.
    """
    tables = sorted(
        (t for t in ruleset.tables if t.name == KUBE_PROXY_TABLE and t.family.value in _FAMILIES),
        key=lambda t: t.family.value,
    )
    if not tables:
        if require_table:
            raise InputError(ruleset.source, _no_table_problem(ruleset))
        return ServiceModel(mode=ProxyMode.NFTABLES, services=())
    with paused_gc():
        return _merge([_TableWalk(table, ruleset.source) for table in tables])


def _merge(walks: list[_TableWalk]) -> ServiceModel:
    """Run each table's walk and put the families together."""
    services: list[ServicePort] = []
    unmodelled: list[Unmodelled] = []
    addresses: dict[str, None] = {}
    local_traffic: list[str] = []
    rules_seen = rules_bad = 0
    for walk in walks:
        walk.run()
        services += walk.services
        unmodelled += walk.unmodelled.values()
        addresses.update(dict.fromkeys(walk.node_port_addresses))
        local_traffic += [t for t in walk.local_traffic if t not in local_traffic]
        rules_seen += walk.table.rule_count
        rules_bad += walk.bad_rules
    local = ["local"] if "local" in addresses else []
    return ServiceModel(
        mode=ProxyMode.NFTABLES,
        services=sorted_services(services),
        node_port_addresses=tuple(local + sorted((a for a in addresses if a != "local"), key=address_sort_key)),
        localhost_node_ports=False,
        health_check_node_ports=(),
        local_traffic=tuple(local_traffic),
        families=tuple(sorted({walk.family for walk in walks})),
        unmodelled=tuple(unmodelled),
        rules_seen=rules_seen,
        rules_modelled=rules_seen - rules_bad,
    )


def _no_table_problem(ruleset: NftRuleset) -> str:
    problem = f"no kube-proxy table (table ip/ip6 kube-proxy) in {ruleset.source}"
    for table in ruleset.tables:
        if table.name in ("nat", "filter") and any(name.startswith("KUBE-") for name in table.chains):
            return (
                problem
                + f" (table {table.label} has KUBE-* chains: kube-proxy runs in iptables mode; read iptables-save instead)"
            )
    return problem


@dataclass
class _Masq:
    """A masquerade rule of a policy chain: which destination it covers and from where."""

    daddr: str
    dport: int | None
    everyone: bool


@dataclass
class _Policy:
    """A `service-` or `local-` chain: endpoint shares, affinity, masquerade rules."""

    local: bool
    shares: dict[tuple[str, int], float] = field(default_factory=dict)
    affinity_seconds: int | None = None
    masquerade: list[_Masq] = field(default_factory=list)
    _endpoints: tuple[Endpoint, ...] | None = None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints in the contract's order (computed once the chain has been read)."""
        if self._endpoints is None:
            self._endpoints = sorted_endpoints([Endpoint(a, p, s) for (a, p), s in self.shares.items()])
        return self._endpoints


@dataclass
class _External:
    """An `external-` chain: masquerading, short-circuits, and the policy chain it ends in."""

    masquerade_all: bool = False
    masquerade_node: bool = False
    short_circuit: bool = False
    policy_chain: str | None = None


@dataclass
class _Dispatch:
    """One map element that sends a frontend somewhere."""

    map: str
    element: NftElement
    index: int
    target: Verdict


#: (protocol, address or None for a NodePort, port)
_Key = tuple[str, str | None, int]


@dataclass
class _Pending:
    """A frontend whose Service name may still need a comment from another element."""

    key: _Key
    frontend: Frontend
    name: str | None
    base: str | None


@dataclass
class _Route:
    """What the dispatch elements already settled for a frontend, before its chains are read."""

    key: _Key
    dispatch: _Dispatch
    #: what the no-endpoint maps do with it (None: nothing)
    verdict: Result | None
    kind: FrontendKind
    certain: bool
    ranges: tuple[str, ...]
    origin: tuple[RuleRef, ...]
    name: str | None
    base: str | None

    def frontend(self, result: Result, **fields: Any) -> _Pending:
        _, address, port = self.key
        frontend = Frontend(
            self.kind,
            address,
            port,
            result,
            source_ranges=self.ranges,
            kind_certain=self.certain,
            origin=self.origin,
            **fields,
        )
        return _Pending(self.key, frontend, self.name, self.base)


class _TableWalk:
    """Walks one kube-proxy table; results are left on the instance."""

    def __init__(self, table: NftTable, source: str) -> None:
        self.table = table
        self.source = source
        self.ipx = table.family.value
        self.family = _FAMILIES[self.ipx]
        self.label = table.label
        self.services: list[ServicePort] = []
        self.unmodelled: dict[tuple[str, str, int], Unmodelled] = {}
        self.bad_rules = 0
        self.node_port_addresses: list[str] = []
        self.local_traffic: list[str] = []
        self.visited: set[str] = set()
        self._policies: dict[str, _Policy] = {}
        self._externals: dict[str, _External] = {}
        self._firewalls: dict[str, tuple[str, ...]] = {}
        self._endpoints: dict[str, tuple[str, int] | None] = {}
        self._marks: dict[str, bool] = {}
        #: map name -> [(chain, extra condition kind)] of the rules that look it up
        self._lookups: dict[str, list[tuple[str, str]]] = {}
        self._edges: dict[str, set[str]] = {}
        self._skipped: list[NftRule] = []

    # -- bookkeeping -------------------------------------------------------------------------

    def _skip(self, chain: str, rule: NftRule, reason: str, facts: Facts | None = None) -> None:
        key = ("rule", chain, rule.handle)
        if key in self.unmodelled:
            return
        if facts is not None and facts.unknown:
            reason += ": " + ", ".join(facts.unknown)
        self.unmodelled[key] = Unmodelled(self.label, chain, rule.handle, rule_text(rule), reason, self.source)
        self.bad_rules += 1
        self._skipped.append(rule)

    def _skip_element(self, d: _Dispatch | tuple[str, NftElement, int], reason: str) -> None:
        name, element, index = (d.map, d.element, d.index) if isinstance(d, _Dispatch) else d
        key = ("element", name, index)
        if key not in self.unmodelled:
            self.unmodelled[key] = Unmodelled(
                self.label, name, 0, "element " + element_text(element), reason, self.source
            )

    def _ref(self, d: _Dispatch) -> RuleRef:
        return RuleRef(self.label, d.map, 0, "element " + element_text(d.element), self.source)

    def _add_local_traffic(self, detector: Any) -> None:
        text = _detector_text(detector)
        if text not in self.local_traffic:
            self.local_traffic.append(text)

    def _rules(self, chain: str) -> tuple[NftRule, ...]:
        self.visited.add(chain)
        found = self.table.chains.get(chain)
        return found.rules if found is not None else ()

    # -- the walk --------------------------------------------------------------------------------

    def run(self) -> None:
        self._plumbing()
        reach = self._reach()
        live = {name: self._live(name, reach) for name in _MAPS}
        self.node_port_addresses = self._node_port_addresses(live[SERVICE_NODEPORTS])
        dispatch = self._dispatch(SERVICE_IPS, live, 3)
        dispatch.update(self._dispatch(SERVICE_NODEPORTS, live, 2))
        blocks = self._dispatch(NO_ENDPOINT_SERVICES, live, 3)
        blocks.update(self._dispatch(NO_ENDPOINT_NODEPORTS, live, 2))
        firewalls = self._dispatch(FIREWALL_IPS, live, 3)
        cluster_ips = self._cluster_ips()
        pending: list[_Pending] = []
        for key in list(dispatch) + [k for k in blocks if k not in dispatch]:
            block = blocks.get(key)
            item = self._frontend(key, dispatch.get(key), block, firewalls.get(key), cluster_ips)
            if item is not None:
                pending.append(item)
                if block is not None and item.frontend.result is Result.DNAT:
                    self._skip_element(
                        block, f"unreachable: @{item.frontend.origin[0].chain} DNATs this destination first"
                    )
        claimed = set(dispatch) | set(blocks)
        for key, d in firewalls.items():
            if key not in claimed:
                self._skip_element(d, "load-balancer firewall for a destination no map dispatches")
        self._group(pending)
        self._leftovers()

    def _group(self, pending: list[_Pending]) -> None:
        """Group frontends into Service ports; a frontend without a name takes the name of
        another frontend with the same chain base."""
        by_base = {p.base: p.name for p in pending if p.base and p.name}
        groups: dict[tuple[str, str], list[Frontend]] = {}
        for p in pending:
            protocol, _, port = p.key
            name = p.name or (by_base.get(p.base) if p.base else None) or (p.base or f"<unnamed {protocol}/{port}>")
            groups.setdefault((name, protocol), []).append(p.frontend)
        for (name, protocol), frontends in groups.items():
            self.services.append(ServicePort(name, Protocol(protocol), self.family, sorted_frontends(frontends)))

    # -- fixed chains --------------------------------------------------------------------------------

    def _plumbing(self) -> None:
        """Every chain without "/" in its name (kube-proxy's own, `isServiceChainName`): jumps,
        map lookups and the fixed helper rules; anything else is unmodelled."""
        for name, chain in self.table.chains.items():
            if "/" in name:
                continue
            self.visited.add(name)
            for rule in chain.rules:
                facts = read_facts(rule, self.ipx)
                if facts.unknown:
                    self._skip(name, rule, "not a rule kube-proxy writes", facts)
                elif not self._plumbing_rule(name, facts):
                    self._skip(name, rule, "not a rule kube-proxy writes in its fixed chains")

    def _plumbing_rule(self, chain: str, f: Facts) -> bool:
        cond, acts = f.cond, f.acts
        if acts == VERDICT and f.verdict in ("jump", "goto") and cond & ~CTSTATE == 0:
            target = f.target or ""
            if target not in self.table.chains or "/" in target:
                return False
            if cond and not (f.ct_state in ("new", ["new"]) and not f.ct_neg):
                return False
            self._edges.setdefault(chain, set()).add(target)
            return True
        if acts == LOOKUP and f.lookup is not None:
            return self._lookup_rule(chain, f)
        if acts == REJECT and (cond == 0 or (cond == DADDR and f.daddr == "@" + CLUSTER_IPS and not f.daddr_neg)):
            return True  # reject-chain; traffic to a cluster IP on a port it does not serve
        if acts == VERDICT and f.verdict == "drop":
            # unallocated cluster IPs (the service CIDRs), or `ct state invalid drop` (v1.29)
            if cond == DADDR and not f.daddr_neg and isinstance(f.daddr, (Prefix, tuple)):
                return True
            return cond == CTSTATE and f.ct_state in ("invalid", ["invalid"]) and not f.ct_neg
        if cond == 0 and acts in (MARK_OR, MARK_XOR, MASQ):
            return True  # mark-for-masquerade and masquerading
        return (
            acts == VERDICT
            and f.verdict == "return"
            and cond == MARK_TEST
            and f.mark_test is not None
            and f.mark_test[1] == 0
        )

    def _lookup_rule(self, chain: str, f: Facts) -> bool:
        """`ip daddr . meta l4proto . th dport vmap @MAP`, or for NodePorts `meta l4proto . th
        dport vmap @MAP` behind `ip daddr @nodeport-ips` or `fib daddr type local` (optionally
        `ip daddr != 127.0.0.0/8`); v1.34's no-endpoint NodePort check has only the latter."""
        assert f.lookup is not None
        shape, name = f.lookup
        expected = _MAPS.get(name)
        if expected is None or expected[0] != shape:
            return False
        if shape == ADDR_KEY:
            if f.cond:
                return False
            self._lookups.setdefault(name, []).append((chain, ""))
            return True
        not_loopback = f.cond & DADDR and f.daddr_neg and _is_loopback(f.daddr, self.ipx)
        if f.cond == DADDR and f.daddr == "@" + NODEPORT_IPS and not f.daddr_neg:
            mode = "set"
        elif f.cond in (FIB_DADDR, FIB_DADDR | DADDR) and (f.cond == FIB_DADDR or not_loopback):
            mode = "local"
        elif f.cond == DADDR and not_loopback and name == NO_ENDPOINT_NODEPORTS:
            mode = "local"  # reached from the input hook only: local by construction
        else:
            return False
        self._lookups.setdefault(name, []).append((chain, mode))
        return True

    def _reach(self) -> dict[str, set[str]]:
        """Chain -> the types ("nat", "filter") of the base chains that reach it by jump/goto."""
        reach: dict[str, set[str]] = {}
        for name, chain in self.table.chains.items():
            if chain.is_base and chain.type in ("nat", "filter"):
                stack = [name]
                seen = {name}
                while stack:
                    current = stack.pop()
                    reach.setdefault(current, set()).add(chain.type)
                    for nxt in self._edges.get(current, ()):
                        if nxt not in seen:
                            seen.add(nxt)
                            stack.append(nxt)
        return reach

    def _live(self, name: str, reach: dict[str, set[str]]) -> list[str]:
        """The modes of the lookups of map `name` that a hook of the right type reaches."""
        need = _MAPS[name][1]
        return [mode for chain, mode in self._lookups.get(name, ()) if need in reach.get(chain, ())]

    def _node_port_addresses(self, modes: list[str]) -> list[str]:
        found: list[str] = []
        if "local" in modes:
            found.append("local")
        if "set" in modes:
            ips = self.table.sets.get(NODEPORT_IPS)
            for index, element in enumerate(ips.elements if ips is not None else ()):
                if type(element.key) is str:
                    found.append(element.key)
                else:
                    self._skip_element((NODEPORT_IPS, element, index), "not a node IP address")
        return found

    def _cluster_ips(self) -> set[str] | None:
        """The `cluster-ips` set (v1.31+); None when the table has none (v1.29)."""
        found = self.table.sets.get(CLUSTER_IPS)
        if found is None:
            return None
        return {e.key for e in found.elements if type(e.key) is str}

    # -- map elements -----------------------------------------------------------------------------

    def _dispatch(self, name: str, live: dict[str, list[str]], width: int) -> dict[_Key, _Dispatch]:
        """Elements of one dispatch map by frontend key; unusable elements go to `unmodelled`."""
        found: dict[_Key, _Dispatch] = {}
        table_map = self.table.sets.get(name)
        if table_map is None:
            return found
        usable = bool(live[name])
        why = f"no rule that a {_MAPS[name][1]} hook reaches looks up @{name} with kube-proxy's key"
        for index, element in enumerate(table_map.elements):
            key = _element_key(element.key, width)
            value = element.value
            if not usable:
                self._skip_element((name, element, index), why)
            elif key is None:
                self._skip_element(
                    (name, element, index), f"key is not {'addr . proto . port' if width == 3 else 'proto . port'}"
                )
            elif key[0] not in _PROTOCOLS:
                self._skip_element((name, element, index), f"protocol {key[0]!r} kp-audit does not model")
            elif not isinstance(value, Verdict):
                self._skip_element((name, element, index), "value is not a verdict")
            else:
                found[key] = _Dispatch(name, element, index, value)
        return found

    def _block(self, d: _Dispatch) -> Result | None:
        """What a no-endpoint element does: `drop`, or `goto` a chain that only rejects."""
        if d.target.kind == "drop":
            return Result.DROP
        if d.target.kind in ("goto", "jump") and d.target.target is not None:
            rules = self.table.chains.get(d.target.target)
            if rules is not None and len(rules.rules) == 1:
                facts = read_facts(rules.rules[0], self.ipx)
                if facts.acts == REJECT and facts.cond == 0 and not facts.unknown:
                    return Result.REJECT
        self._skip_element(d, "verdict is neither drop nor a goto to a chain that rejects")
        return None

    # -- one frontend -------------------------------------------------------------------------------

    def _frontend(
        self,
        key: _Key,
        d: _Dispatch | None,
        block: _Dispatch | None,
        fw: _Dispatch | None,
        cluster_ips: set[str] | None,
    ) -> _Pending | None:
        protocol, address, port = key
        verdict = self._block(block) if block is not None else None
        if block is not None and verdict is None:
            block = None
        ranges: tuple[str, ...] = ()
        if fw is not None:
            ranges = self._firewall_of(fw)
        origin = tuple(self._ref(x) for x in (d, block, fw) if x is not None)
        comment = next((x.element.comment for x in (block, fw) if x is not None and x.element.comment), None)
        if address is None:
            kind, certain = FrontendKind.NODE_PORT, True
        elif fw is not None:
            kind, certain = FrontendKind.LOAD_BALANCER, True
        elif cluster_ips is not None:
            kind, certain = (
                (FrontendKind.CLUSTER_IP, True) if address in cluster_ips else (FrontendKind.EXTERNAL_IP, False)
            )
        else:
            # v1.29 has no cluster-ips set: a lone drop is an internal-policy Local cluster IP
            # (kube-proxy's only case); for anything else the rules cannot tell
            lone_drop = d is None and verdict is Result.DROP
            kind, certain = (FrontendKind.CLUSTER_IP if lone_drop else FrontendKind.EXTERNAL_IP), False
        chain = d.target.target if d is not None and d.target.kind == "goto" else None
        if d is not None and chain is None:
            self._skip_element(d, "dispatch verdict is not a goto")
            d = None
        if d is None:
            if verdict is None:
                return None
            name, base = self._name(protocol, None, comment)
            frontend = Frontend(
                kind,
                address,
                port,
                verdict,
                source_ranges=ranges,
                local_only=verdict is Result.DROP,
                kind_certain=certain,
                origin=origin,
            )
            return _Pending(key, frontend, name, base)
        assert chain is not None
        name, base = self._name(protocol, chain, comment)
        if chain.startswith(_POLICY):
            if address is not None and fw is None:
                kind, certain = FrontendKind.CLUSTER_IP, True
            return self._through_policy(_Route(key, d, verdict, kind, certain, ranges, origin, name, base), chain)
        if chain.startswith("external-") and chain in self.table.chains:
            if address is not None and kind is FrontendKind.CLUSTER_IP:
                kind, certain = FrontendKind.EXTERNAL_IP, False  # a cluster IP never goes to external-
            return self._through_external(_Route(key, d, verdict, kind, certain, ranges, origin, name, base), chain)
        self._skip_element(d, f"dispatches to {chain!r}, not a service-, local- or external- chain of this table")
        return None

    def _through_policy(self, route: _Route, chain: str) -> _Pending | None:
        """A frontend dispatched straight to a service- or local- chain (cluster IPs)."""
        if chain not in self.table.chains:
            self._skip_element(route.dispatch, f"dispatches to {chain!r}, which does not exist")
            return None
        policy = self._policy(chain)
        if not policy.endpoints:
            if route.verdict is None:
                self._skip_element(
                    route.dispatch, "dispatched, but no DNAT follows and no no-endpoint element drops it"
                )
                return None
            return route.frontend(route.verdict, local_only=route.verdict is Result.DROP)
        _, address, port = route.key
        return route.frontend(
            Result.DNAT,
            endpoints=policy.endpoints,
            affinity_seconds=policy.affinity_seconds,
            local_only=policy.local,
            masquerade=self._masquerade(policy, address, port),
        )

    def _through_external(self, route: _Route, chain: str) -> _Pending | None:
        """A frontend dispatched to an external- chain (external, load-balancer IPs, NodePorts)."""
        ext = self._external(chain)
        policy = self._policy(ext.policy_chain) if ext.policy_chain else None
        if policy is None or not policy.endpoints:
            if route.verdict is None:
                self._skip_element(
                    route.dispatch, "dispatched, but no DNAT follows and no no-endpoint element drops it"
                )
                return None
            return route.frontend(
                route.verdict,
                local_only=ext.short_circuit or route.verdict is Result.DROP,
                short_circuit=ext.short_circuit,
            )
        if ext.masquerade_all:
            masquerade = Masquerade.ALL
        elif ext.masquerade_node:
            masquerade = Masquerade.NODE_SOURCES
        else:
            masquerade = Masquerade.NONE
        return route.frontend(
            Result.DNAT,
            endpoints=policy.endpoints,
            affinity_seconds=policy.affinity_seconds,
            local_only=ext.short_circuit or policy.local,
            masquerade=masquerade,
            short_circuit=ext.short_circuit,
        )

    @staticmethod
    def _masquerade(policy: _Policy, address: str | None, port: int) -> Masquerade:
        for rule in policy.masquerade:
            if rule.daddr != address or (rule.dport is not None and rule.dport != port):
                continue
            return Masquerade.ALL if rule.everyone else Masquerade.OFF_CLUSTER
        return Masquerade.NONE

    def _name(self, protocol: str, chain: str | None, comment: str | None) -> tuple[str | None, str | None]:
        """The Service port name and the chain base (`HASH-ns/svc/proto/port`) it came from.

        The chain name decides; a cut one (ending in "...") gives way to an element comment
        whose hash matches the cut name, or to a comment when there is no chain at all.
        """
        base = _chain_base(chain) if chain else None
        if base is not None:
            name = _name_from_base(base)
            if name is not None:
                return name, base
            if comment and _comment_matches(comment, protocol, base):
                return comment, base
            return None, base
        return (comment or None), None

    # -- per-service chains -------------------------------------------------------------------------

    def _policy(self, chain: str) -> _Policy:
        """`service-`/`local-` chain: masquerade rule, affinity gotos, then the numgen vmap."""
        cached = self._policies.get(chain)
        if cached is not None:
            return cached
        policy = self._policies[chain] = _Policy(local=chain.startswith("local-"))
        done = False
        for rule in self._rules(chain):
            f = read_facts(rule, self.ipx)
            if done:
                self._skip(chain, rule, "unreachable: follows the numgen dispatch")
            elif f.unknown:
                self._skip(chain, rule, "not an endpoint-selection rule kube-proxy writes", f)
            elif f.acts == VERDICT and f.verdict == "jump" and self._is_mark(f.target):
                self._masquerade_rule(chain, rule, f, policy)
            elif (
                f.acts == VERDICT
                and f.verdict == "goto"
                and f.cond == SADDR
                and not f.saddr_neg
                and _is_set_ref(f.saddr)
            ):
                self._affinity_rule(chain, rule, f, policy)
            elif f.acts == NUMGEN and f.cond == 0:
                done = self._numgen_rule(chain, rule, f, policy)
            else:
                self._skip(chain, rule, "not an endpoint-selection rule kube-proxy writes")
        return policy

    def _masquerade_rule(self, chain: str, rule: NftRule, f: Facts, policy: _Policy) -> None:
        """`ip daddr <clusterIP> [tcp dport <port>] [ip saddr != <podCIDR> | iifname != X] jump
        mark-for-masquerade`; without a source test it is masqueradeAll."""
        source = f.cond & (SADDR | IIF)
        shape_ok = (
            f.cond & DADDR and not f.daddr_neg and _is_address(f.daddr) and f.cond & ~(DADDR | DPORT | SADDR | IIF) == 0
        )
        if not shape_ok or source == SADDR | IIF:
            self._skip(chain, rule, "masquerade rule kp-audit does not model")
            return
        if source == SADDR and not (f.saddr_neg and _is_network(f.saddr)):
            self._skip(chain, rule, "masquerade rule with a source test kp-audit does not model")
            return
        if source == IIF and not f.iif_neg:
            self._skip(chain, rule, "masquerade rule with an interface test kp-audit does not model")
            return
        if source == SADDR:
            self._add_local_traffic(f.saddr)
        elif source == IIF:
            self._add_local_traffic(("iif", f.iif))
        policy.masquerade.append(_Masq(f.daddr, f.dport, everyone=not source))

    def _affinity_rule(self, chain: str, rule: NftRule, f: Facts, policy: _Policy) -> None:
        """`ip saddr @affinity-X goto endpoint-X`: the set's timeout is the affinity timeout."""
        name = f.saddr[1:]
        found = self.table.sets.get(name)
        target = f.target or ""
        if found is None or found.timeout is None or found.is_map:
            self._skip(chain, rule, f"affinity set {name!r} is missing or has no timeout")
        elif not target.startswith("endpoint-") or self._endpoint(target) is None:
            self._skip(chain, rule, "affinity goto to a chain without a DNAT kp-audit understands")
        elif policy.affinity_seconds not in (None, found.timeout):
            self._skip(chain, rule, f"affinity timeout {found.timeout}s differs from {policy.affinity_seconds}s")
        else:
            policy.affinity_seconds = found.timeout

    def _numgen_rule(self, chain: str, rule: NftRule, f: Facts, policy: _Policy) -> bool:
        """`numgen random mod N vmap { 0 : goto endpoint-A, ... }`: each index gets 1/N.
        Returns whether the rule decides every packet (so later rules are unreachable)."""
        assert f.numgen is not None
        mode, mod, offset, pairs = f.numgen
        if mode != "random" or type(mod) is not int or mod < 1 or offset != 0:
            self._skip(chain, rule, "numgen that is not `random mod N` from 0")
            return False
        targets: dict[int, str] = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not int:
                self._skip(chain, rule, "numgen map entry kp-audit does not read")
                return False
            index, verdict = pair
            goto = verdict.get("goto") if type(verdict) is dict and len(verdict) == 1 else None
            if type(goto) is not dict or type(goto.get("target")) is not str or index in targets:
                self._skip(chain, rule, "numgen map entry is not one `goto` per index")
                return False
            targets[index] = goto["target"]
        if set(targets) != set(range(mod)):
            self._skip(chain, rule, f"numgen map does not cover 0..{mod - 1} once each")
            return False
        missing = []
        share = 1.0 / mod
        for index in range(mod):
            target = targets[index]
            endpoint = self._endpoint(target) if target.startswith("endpoint-") else None
            if endpoint is None:
                missing.append(target)
            else:
                policy.shares[endpoint] = policy.shares.get(endpoint, 0.0) + share
        if missing:
            self._skip(chain, rule, "endpoint chain(s) without a DNAT kp-audit understands: " + ", ".join(missing))
        return True

    def _endpoint(self, chain: str) -> tuple[str, int] | None:
        """`endpoint-` chain: hairpin masquerade, affinity update, `meta l4proto P dnat to IP:PORT`."""
        if chain in self._endpoints:
            return self._endpoints[chain]
        rules = self._rules(chain)
        if len(rules) == 2:  # the bulk shape: hairpin masquerade, then the DNAT
            hairpin, dnat = read_facts(rules[0], self.ipx), read_facts(rules[1], self.ipx)
            if (
                hairpin.acts == VERDICT
                and hairpin.cond == SADDR
                and hairpin.verdict == "jump"
                and not hairpin.saddr_neg
                and _is_address(hairpin.saddr)
                and self._is_mark(hairpin.target)
                and dnat.acts == DNAT
                and dnat.cond & ~L4PROTO == 0
                and not dnat.unknown
                and not hairpin.unknown
            ):
                self._endpoints[chain] = dnat.dnat
                return dnat.dnat
        destination: tuple[str, int] | None = None
        for rule in rules:
            f = read_facts(rule, self.ipx)
            if destination is not None:
                self._skip(chain, rule, "unreachable: follows the DNAT")
            elif f.unknown:
                self._skip(chain, rule, "not an endpoint rule kube-proxy writes", f)
            elif (
                f.acts == VERDICT
                and f.verdict == "jump"
                and f.cond == SADDR
                and not f.saddr_neg
                and _is_address(f.saddr)
            ):
                if not self._is_mark(f.target):
                    self._skip(chain, rule, "not an endpoint rule kube-proxy writes")
            elif f.acts == UPDATE and f.cond == 0:
                pass  # affinity: remember the client
            elif f.acts == DNAT and f.cond & ~L4PROTO == 0 and f.dnat is not None:
                destination = f.dnat
            else:
                self._skip(chain, rule, "not an endpoint rule kube-proxy writes")
        self._endpoints[chain] = destination
        return destination

    def _external(self, chain: str) -> _External:
        """`external-` chain: eTP Cluster `jump mark-for-masquerade; goto service-...`; eTP Local
        the pod and node short-circuits, `fib saddr type local` masquerade, `goto local-...`."""
        cached = self._externals.get(chain)
        if cached is not None:
            return cached
        ext = self._externals[chain] = _External()
        for rule in self._rules(chain):
            f = read_facts(rule, self.ipx)
            target = f.target or ""
            if ext.policy_chain is not None:
                self._skip(chain, rule, "unreachable: follows an unconditional goto")
            elif f.unknown:
                self._skip(chain, rule, "not an external-traffic rule kube-proxy writes", f)
            elif f.acts != VERDICT:
                self._skip(chain, rule, "not an external-traffic rule kube-proxy writes")
            elif f.verdict == "jump" and self._is_mark(target) and f.cond in (0, FIB_SADDR):
                if f.cond == 0:
                    ext.masquerade_all = True
                else:
                    ext.masquerade_node = True
            elif f.verdict == "goto" and target.startswith(_POLICY) and target in self.table.chains:
                if f.cond == 0:
                    ext.policy_chain = target
                elif f.cond == FIB_SADDR:
                    ext.short_circuit = True
                elif f.cond == SADDR and not f.saddr_neg and _is_network(f.saddr):
                    ext.short_circuit = True
                    self._add_local_traffic(f.saddr)
                elif f.cond == IIF and not f.iif_neg:
                    ext.short_circuit = True
                    self._add_local_traffic(("iif", f.iif))
                else:
                    self._skip(chain, rule, "not an external-traffic rule kube-proxy writes")
                    continue
                self._policy(target)
            else:
                self._skip(chain, rule, "not an external-traffic rule kube-proxy writes")
        return ext

    def _firewall_of(self, d: _Dispatch) -> tuple[str, ...]:
        target = d.target.target if d.target.kind == "goto" else None
        if target is None or not target.startswith("firewall-") or target not in self.table.chains:
            self._skip_element(d, "not a goto to a firewall- chain of this table")
            return ()
        return self._firewall(target)

    def _firewall(self, chain: str) -> tuple[str, ...]:
        """`firewall-` chain: `ip saddr != { <ranges>[, <lbIP>] } drop`; the allowed sources,
        canonical and in address order (nft prints anonymous interval sets sorted)."""
        cached = self._firewalls.get(chain)
        if cached is not None:
            return cached
        ranges: list[str] = []
        for rule in self._rules(chain):
            f = read_facts(rule, self.ipx)
            allowed = f.saddr if type(f.saddr) is tuple else (f.saddr,)
            if f.unknown:
                self._skip(chain, rule, "not a loadBalancerSourceRanges rule kube-proxy writes", f)
            elif ranges or not (f.acts == VERDICT and f.verdict == "drop" and f.cond == SADDR and f.saddr_neg):
                self._skip(chain, rule, "not a loadBalancerSourceRanges rule kube-proxy writes")
            elif not all(_is_network(v) for v in allowed):
                self._skip(chain, rule, "source set kp-audit does not read")
            else:
                ranges += [canonical_address(str(v)) for v in allowed]
        result = self._firewalls[chain] = tuple(sorted(set(ranges), key=address_sort_key))
        return result

    def _is_mark(self, chain: str | None) -> bool:
        """Does `chain` set the masquerade mark (`mark set mark or 0x4000` and nothing else)?"""
        if chain is None:
            return False
        cached = self._marks.get(chain)
        if cached is None:
            found = self.table.chains.get(chain)
            cached = False
            if found is not None and "/" not in chain and len(found.rules) == 1:
                f = read_facts(found.rules[0], self.ipx)
                cached = f.acts == MARK_OR and f.cond == 0 and not f.unknown
            self._marks[chain] = cached
        return cached

    # -- leftovers -----------------------------------------------------------------------------------

    def _leftovers(self) -> None:
        """Rules in chains the walk never read. Flushed stale chains are empty and say nothing;
        a chain reached only from a rule kp-audit could not model says so."""
        behind_unmodelled: set[str] = set()
        for rule in self._skipped:
            behind_unmodelled.update(_targets(rule.expr))
        for name, chain in self.table.chains.items():
            if name in self.visited or not chain.rules:
                continue
            if name in behind_unmodelled:
                reason = "reached only through a rule kp-audit does not model"
            elif name.startswith((*_SERVICE_CHAIN_PREFIXES, "endpoint-")) and "/" in name:
                reason = "no map element or rule leads to this chain (stale, but not flushed)"
            else:
                reason = "not a chain kube-proxy writes"
            for rule in chain.rules:
                self._skip(name, rule, reason)


_PROTOCOLS = frozenset(p.value for p in Protocol)


def _targets(expr: Any) -> set[str]:
    """Every chain a rule's expressions jump or go to, however deeply nested (vmaps included)."""
    found: set[str] = set()
    stack = [expr]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            for key, value in item.items():
                if key in ("jump", "goto") and type(value) is dict and type(value.get("target")) is str:
                    found.add(value["target"])
                else:
                    stack.append(value)
        elif type(item) is list:
            stack.extend(item)
    return found


def _element_key(key: Any, width: int) -> _Key | None:
    """(protocol, address or None, port) from `addr . proto . port` or `proto . port`."""
    if not isinstance(key, Concat) or len(key.parts) != width:
        return None
    parts = key.parts
    if width == 3:
        addr, proto, port = parts
        if type(addr) is not str or type(proto) is not str or type(port) is not int:
            return None
        return (proto, addr, port)
    proto, port = parts
    if type(proto) is not str or type(port) is not int:
        return None
    return (proto, None, port)


def _chain_base(chain: str) -> str | None:
    """`ULMVA6XW-ns1/svc1/tcp/p80` from `service-ULMVA6XW-ns1/svc1/tcp/p80` (any per-service prefix)."""
    for prefix in _SERVICE_CHAIN_PREFIXES:
        if chain.startswith(prefix):
            base = chain[len(prefix) :]
            return base if len(base) > 9 and base[8] == "-" else None
    return None


def _name_from_base(base: str) -> str | None:
    """`ns/svc:port` (or `ns/svc` for an unnamed port) from `HASH-ns/svc/proto/port`; None if cut."""
    if base.endswith("..."):
        return None
    parts = base[9:].split("/")
    if len(parts) != 4 or not parts[0] or not parts[1]:
        return None
    return service_port_name(parts[0], parts[1], parts[3])


def _comment_matches(comment: str, protocol: str, base: str) -> bool:
    """Does the element comment `ns/svc:port` hash to the (cut) chain base? Hashes confirm, never guess."""
    namespace, sep, rest = comment.partition("/")
    if not sep:
        return False
    name, _, port = rest.partition(":")
    return nft_service_chain_base(namespace, name, protocol, port) == base


def _is_set_ref(value: Any) -> bool:
    return type(value) is str and value.startswith("@")


def _is_address(value: Any) -> bool:
    return type(value) is str and not value.startswith("@")


def _is_network(value: Any) -> bool:
    return type(value) is Prefix or _is_address(value)


def _is_loopback(value: Any, ipx: str) -> bool:
    return canonical_address(str(value)) == _LOOPBACK[ipx]


def _detector_text(detector: Any) -> str:
    """`10.0.0.0/8`, or `iif cbr0` / `iif veth+` (iptables' spelling of a name prefix, as the
    iptables normalizer reports it) for the interface detectors."""
    if type(detector) is tuple and detector[0] == "iif":
        name = str(detector[1])
        return "iif " + (name[:-1] + "+" if name.endswith("*") else name)
    return canonical_address(str(detector))


__all__ = ["KUBE_PROXY_TABLE", "normalize_nftables"]
