"""Compare two sides (a model, its rules' tracer, the node's addresses) the way the CLI does.

1. `diff_models`: the keyed model diff, classified.
2. Evidence: every difference's example packet is traced on both sides; the deciding rule
   and the outcome of each side come from the trace (the model's record when a side has
   no tracer).
3. Mode probes (an iptables side against an nftables side): a cluster IP on an unused port
   and an unallocated service IP, which only nftables' `cluster-ips-check` handles.
4. Rules outside the model: when a side has rules its normalizer did not model (a third
   party's DNAT, a host firewall table), the frontends those rules can reach are traced
   and checked against the model (all of them when a rule's reach cannot be bounded by
   destination); where the rules decide otherwise than the model says and the other
   side behaves differently, that is an `outcome` difference.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from auditor.diff.classify import mark_expected, mode_pair
from auditor.diff.keyed import diff_models, frontend_key
from auditor.diff.types import Difference, DifferenceKind, DiffResult, SideInfo
from auditor.model import Frontend, FrontendKind, IPFamily, ProxyMode, RuleRef, ServiceModel
from auditor.parse.nft_json import NftRuleset, Prefix, decode_value
from auditor.trace import Packet, Tracer, TraceResult, Verdict
from auditor.trace.examples import frontend_packet, model_mismatches, node_address
from auditor.trace.nftables import native_tables
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, host_port_text

#: unmodelled rules with these reasons cannot change what a packet does
_HARMLESS = ("stale", "unreachable", "shadowed")
_KUBE_PROXY_TABLE = "kube-proxy"


@dataclass(frozen=True)
class Side:
    """One side of a comparison: its model, and what is needed to trace its rules."""

    label: str
    model: ServiceModel
    tracer: Tracer | None = None
    local_addresses: tuple[str, ...] = ()
    #: the nft ruleset of an nftables side (for the service CIDRs of the cluster-ips-check probe)
    ruleset: NftRuleset | None = None

    @property
    def info(self) -> SideInfo:
        return SideInfo(self.label, self.model.mode)


def compare(left: Side, right: Side) -> DiffResult:
    """Every difference between two sides, unexpected first, with packets and deciding rules."""
    local = tuple(dict.fromkeys((*left.local_addresses, *right.local_addresses)))
    diffs = diff_models(left.model, right.model, left.label, right.label, local_addresses=local)
    notes: list[str] = []
    if mode_pair(left.model.mode, right.model.mode) and left.tracer is not None and right.tracer is not None:
        diffs += _mode_probes(left, right, local)
    reported = {(d.service, d.frontend) for d in diffs}
    for side, other, flip in ((left, right, False), (right, left, True)):
        if side.tracer is not None and _needs_verification(side):
            reach = _reach(side, local)
            found, checked = _verify(side, other, local, reported, flip, reach)
            diffs += found
            scope = "all" if reach is None else "the"
            notes.append(f"{side.label}: rules outside the model, so {scope} {checked} frontends they can reach were traced")
    traced = [_with_traces(d, left, right) for d in diffs]
    ordered = tuple(sorted(traced, key=lambda d: d.sort_key))
    return DiffResult(left.info, right.info, ordered, tuple(notes))


# --- evidence from traces -------------------------------------------------------------------------


def _with_traces(d: Difference, left: Side, right: Side) -> Difference:
    if d.packet is None:
        return d
    endpoint = d.endpoint
    changes: dict[str, object] = {}
    for side, prefix in ((left, "left"), (right, "right")):
        if side.tracer is None:
            continue
        result = side.tracer.trace(d.packet)
        changes[f"{prefix}_outcome"] = _outcome_text(result)
        changes[f"{prefix}_rule"] = _deciding(result, endpoint)
    return replace(d, **changes)  # type: ignore[arg-type]


def _outcome_text(result: TraceResult) -> str:
    unknown = [b for b in result.branches if b.verdict is Verdict.UNKNOWN]
    if unknown:
        return f"{result.summary}: {unknown[0].reason}"
    return result.summary


def _deciding(result: TraceResult, endpoint: tuple[str, int] | None = None) -> RuleRef | None:
    if endpoint is not None:
        for branch in result.branches:
            if branch.endpoint == endpoint and branch.deciding is not None:
                return branch.deciding.ref
    step = result.deciding
    return None if step is None else step.ref


# --- nftables-only behaviour: cluster-ips-check -----------------------------------------------------


def _mode_probes(left: Side, right: Side, local: Sequence[str]) -> list[Difference]:
    out: list[Difference] = []
    nft = left if left.model.mode is ProxyMode.NFTABLES else right
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        cluster = _cluster_frontend(left.model, right.model, family)
        if cluster is None:
            continue
        svc_address, protocol = cluster
        used = _ports_of(left.model, svc_address) | _ports_of(right.model, svc_address)
        port = next(p for p in range(1, 65536) if p not in used)
        packet = Packet(family, protocol, EXTERNAL_CLIENT[family], svc_address, port, Hook.PREROUTING)
        d = _probe(left, right, packet, DifferenceKind.CLUSTER_IP_UNUSED_PORT, f"cluster IP {svc_address} on unused port {port}", Verdict.REJECT)
        if d is not None:
            out.append(d)
        unallocated = _unallocated_address(nft, family, left.model, right.model)
        if unallocated is not None:
            packet = Packet(family, protocol, EXTERNAL_CLIENT[family], unallocated, 80, Hook.PREROUTING)
            d = _probe(left, right, packet, DifferenceKind.UNALLOCATED_SERVICE_IP, f"unallocated service IP {unallocated}", Verdict.DROP)
            if d is not None:
                out.append(d)
    return out


def _probe(left: Side, right: Side, packet: Packet, kind: DifferenceKind, what: str, nft_verdict: Verdict) -> Difference | None:
    assert left.tracer is not None and right.tracer is not None
    lres, rres = left.tracer.trace(packet), right.tracer.trace(packet)
    if lres.distribution() == rres.distribution():
        return None
    d = Difference(
        kind,
        f"{what}: {left.label} {lres.summary}, {right.label} {rres.summary}",
        left=lres.summary,
        right=rres.summary,
        packet=packet,
    )
    nft_res, ipt_res = (lres, rres) if left.model.mode is ProxyMode.NFTABLES else (rres, lres)
    if nft_res.verdicts() == {nft_verdict} and nft_verdict not in ipt_res.verdicts() and not ipt_res.unknown:
        return mark_expected(d, "cluster-ips-check")
    return d


def _cluster_frontend(a: ServiceModel, b: ServiceModel, family: IPFamily) -> tuple[str, str] | None:
    """A cluster IP both models have (address, protocol)."""
    theirs = {
        (f.address, svc.protocol.value)
        for svc in b.services
        if svc.family is family
        for f in svc.frontends
        if f.kind is FrontendKind.CLUSTER_IP
    }
    for svc in a.services:
        if svc.family is not family:
            continue
        for f in svc.frontends:
            if f.kind is FrontendKind.CLUSTER_IP and f.address is not None and (f.address, svc.protocol.value) in theirs:
                return f.address, svc.protocol.value
    return None


def _ports_of(model: ServiceModel, address: str) -> set[int]:
    return {f.port for svc in model.services for f in svc.frontends if f.address == address}


def _unallocated_address(nft: Side, family: IPFamily, *models: ServiceModel) -> str | None:
    """An address in a service CIDR that kube-proxy's nftables rules drop (`ip daddr
    <service CIDRs> drop`, in the chain that rejects `@cluster-ips`) and no Service uses."""
    if nft.ruleset is None:
        return None
    ipx = "ip6" if family is IPFamily.IPV6 else "ip"
    used = {f.address for m in models for svc in m.services for f in svc.frontends if f.address}
    for table in nft.ruleset.tables:
        if table.name != _KUBE_PROXY_TABLE or table.family.value != ipx:
            continue
        for chain in table.chains.values():
            if not any("@cluster-ips" in str(rule.expr) for rule in chain.rules):
                continue
            for rule in chain.rules:
                for prefix in _dropped_prefixes(rule.expr, ipx):
                    net = ipaddress.ip_network(str(prefix), strict=False)
                    for n in range(1, min(net.num_addresses - 1, 4096)):
                        candidate = str(net.network_address + n)
                        if candidate not in used:
                            return candidate
    return None


def _dropped_prefixes(expr: list[object], ipx: str) -> list[Prefix]:
    """The prefixes of `ip daddr { P, ... } drop` (or a bare prefix); none for any other rule."""
    if len(expr) != 2 or expr[1] != {"drop": None} or not isinstance(expr[0], dict):
        return []
    match = expr[0].get("match")
    if not isinstance(match, dict) or match.get("left") != {"payload": {"protocol": ipx, "field": "daddr"}}:
        return []
    if match.get("op", "==") not in ("==", "in"):
        return []
    right = match.get("right")
    items = right["set"] if isinstance(right, dict) and isinstance(right.get("set"), list) else [right]
    found = [decode_value(item) for item in items]
    return [p for p in found if isinstance(p, Prefix)]


# --- rules the model does not account for ------------------------------------------------------------


def _needs_verification(side: Side) -> bool:
    """Can rules outside the model change a packet's fate on this side?"""
    if any(not any(word in u.reason for word in _HARMLESS) for u in side.model.unmodelled):
        return True
    if side.ruleset is not None:
        others = [t for t in native_tables(side.ruleset) if t.name != _KUBE_PROXY_TABLE]
        return any(chain.is_base and chain.rules for t in others for chain in t.chains.values())
    return False


#: iptables chains a packet enters without a jump: a foreign rule elsewhere is only reached
#: through a foreign rule in one of these (or one placed inside kube-proxy's own chains)
_ENTRY_CHAINS = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}


@dataclass(frozen=True)
class _Reach:
    """Which frontends the rules outside the model can touch: by destination, or local ones."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    ports: frozenset[int]
    local: bool

    def touches(self, frontend: Frontend, local: Sequence[str]) -> bool:
        if frontend.port in self.ports:
            return True
        # a NodePort's packet goes to one of the node's addresses
        targets = list(local) if frontend.address is None else [frontend.address]
        for text in targets:
            if self.local and text in local:
                return True
            ip = ipaddress.ip_address(text.split("/", 1)[0])
            if any(ip in net for net in self.networks if net.version == ip.version):
                return True
        return frontend.address is None and self.local


def _reach(side: Side, local: Sequence[str]) -> _Reach | None:
    """Bound the reach of an iptables side's foreign rules by their destination matches;
    None when some rule could touch any frontend (or the side is not iptables)."""
    if side.model.mode is not ProxyMode.IPTABLES or side.ruleset is not None:
        return None
    from auditor.normalize.iptables_facts import DPORT, DST, DST_TYPE, facts_from_rule
    from auditor.parse.iptables_save import parse_rule

    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    ports: set[int] = set()
    local_only = False
    for item in side.model.unmodelled:
        if any(word in item.reason for word in _HARMLESS):
            continue
        if item.chain not in _ENTRY_CHAINS and not item.chain.startswith("KUBE-"):
            continue  # reached only through a foreign rule in an entry chain
        facts = facts_from_rule(parse_rule(item.rule, item.table, item.line, item.source))
        if facts.conditions & DST and facts.dst and not facts.dst_negated:
            networks.append(ipaddress.ip_network(facts.dst, strict=False))
        elif facts.conditions & DPORT and facts.dport is not None:
            ports.add(facts.dport)
        elif facts.conditions & DST_TYPE and facts.dst_type == "LOCAL":
            local_only = True
        else:
            return None
    return _Reach(tuple(networks), frozenset(ports), local_only)


def _verify(
    side: Side,
    other: Side,
    local: Sequence[str],
    reported: set[tuple[Any, Any]],
    flip: bool,
    reach: _Reach | None = None,
) -> tuple[list[Difference], int]:
    """Trace the frontends of `side` that `reach` allows (all when None); where a trace
    contradicts the model, compare with the other side's trace of the same packet."""
    assert side.tracer is not None
    out: list[Difference] = []
    others = {(s.key, frontend_key(f)): f for s in other.model.services for f in s.frontends}
    checked = 0
    for svc in side.model.services:
        node = node_address(side.model, svc.family, local)
        for frontend in svc.frontends:
            key = (svc.key, frontend_key(frontend))
            if key in reported or key not in others or (reach is not None and not reach.touches(frontend, local)):
                continue
            packet = frontend_packet(svc, frontend, node)
            if packet is None:
                continue
            checked += 1
            result = side.tracer.trace(packet)
            problems = model_mismatches(result, frontend)
            if not problems:
                continue
            other_result = other.tracer.trace(packet) if other.tracer is not None else None
            d = _outcome_difference(svc.key, frontend, packet, side, other, result, other_result, problems, flip)
            if d is not None:
                out.append(d)
    return out, checked


def _outcome_difference(
    skey: tuple[str, str, str],
    frontend: Frontend,
    packet: Packet,
    side: Side,
    other: Side,
    result: TraceResult,
    other_result: TraceResult | None,
    problems: list[str],
    flip: bool,
) -> Difference | None:
    if other_result is not None and other_result.distribution() == result.distribution():
        return None  # both sides' rules do the same thing: no difference between them
    mine = _outcome_text(result)
    theirs = _outcome_text(other_result) if other_result is not None else "(not traced) model: " + frontend.result.value
    where = frontend.address or f"NodePort {frontend.port}"
    d = Difference(
        DifferenceKind.OUTCOME,
        f"{skey[0]} {frontend.kind.value} {host_port_text(where, frontend.port) if frontend.address else where}: "
        f"{side.label}'s rules decide otherwise than its model ({problems[0]})",
        skey,
        frontend_key(frontend),
        left=theirs if flip else mine,
        right=mine if flip else theirs,
        packet=packet,
        reason="a rule the normalizer does not model (see the deciding rule) changes what this packet does",
    )
    return d


def side_addresses(model: ServiceModel, recorded: Iterable[str] | None) -> tuple[str, ...]:
    """The node's addresses: as recorded (host.json), else those the model's NodePort rules name."""
    if recorded is not None:
        return tuple(a.split("/", 1)[0] for a in recorded)
    return tuple(a for a in model.node_port_addresses if a != "local" and "/" not in a)


__all__ = ["Side", "compare", "side_addresses"]
