"""The keyed diff of two Service models: matched by key, never by list position.

Service ports are matched by (name, protocol, family), frontends by (kind, address, port),
endpoints by (address, port). Where one side cannot tell an external IP from a
load-balancer IP (`kind_certain` False), the frontends are matched by address and port.
Service ports that are equal once probabilities are rounded are set aside first (a
dictionary comparison); DeepDiff, with `math_epsilon` = PROBABILITY_TOLERANCE, then
compares the rest as nested dicts keyed by those keys. Each DeepDiff change becomes a
typed `Difference` with an example packet and the deciding rule on each side as the
model records them (`Frontend.origin`); `auditor.diff.compare` replaces them with traces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from deepdiff import DeepDiff

from auditor.diff.classify import mark_expected, mode_pair
from auditor.diff.types import Difference, DifferenceKind, FrontendKey, ServiceKey
from auditor.model import (
    PROBABILITY_TOLERANCE,
    Frontend,
    FrontendKind,
    IPFamily,
    ProxyMode,
    Result,
    RuleRef,
    ServiceModel,
    ServicePort,
)
from auditor.trace.examples import client_for, frontend_packet, node_address
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, Packet, family_of, host_port_text, in_network, is_loopback

_EXTERNAL_KINDS = (FrontendKind.EXTERNAL_IP, FrontendKind.LOAD_BALANCER)
_FIELD_KINDS = {
    "result": DifferenceKind.RESULT,
    "affinity_seconds": DifferenceKind.AFFINITY,
    "masquerade": DifferenceKind.MASQUERADE,
    "local_only": DifferenceKind.LOCAL_POLICY,
    "short_circuit": DifferenceKind.LOCAL_POLICY,
    "source_ranges": DifferenceKind.SOURCE_RANGES,
}


def frontend_key(frontend: Frontend) -> FrontendKey:
    return (frontend.kind.value, frontend.address, frontend.port)


def _fields(frontend: Frontend) -> dict[str, Any]:
    """A frontend as DeepDiff sees it: sets and endpoint lists as dicts keyed by their keys."""
    return {
        "result": frontend.result.value,
        "endpoints": {(e.address, e.port): e.probability for e in frontend.endpoints},
        "affinity_seconds": frontend.affinity_seconds,
        "source_ranges": dict.fromkeys(frontend.source_ranges, True),
        "local_only": frontend.local_only,
        "short_circuit": frontend.short_circuit,
        "masquerade": frontend.masquerade.value,
    }


def _canonical(svc: ServicePort) -> tuple[Any, ...]:
    """A service port with probabilities rounded: equal values need no closer look."""
    return tuple(
        (
            frontend_key(f),
            f.result,
            tuple((e.address, e.port, round(e.probability, 6)) for e in f.endpoints),
            f.affinity_seconds,
            frozenset(f.source_ranges),
            f.local_only,
            f.short_circuit,
            f.masquerade,
        )
        for f in svc.frontends
    )


class _Sides:
    """Both models, the node addresses known, and lookups the conversion needs."""

    def __init__(self, left: ServiceModel, right: ServiceModel, local_addresses: Iterable[str]) -> None:
        self.left, self.right = left, right
        self.modes = (left.mode, right.mode)
        self.local = tuple(local_addresses)
        self.services: dict[ServiceKey, tuple[ServicePort | None, ServicePort | None]] = {}
        self.frontends: dict[tuple[ServiceKey, FrontendKey], tuple[Frontend | None, Frontend | None]] = {}

    def node(self, family: IPFamily) -> str | None:
        """A node address both sides answer NodePorts on, else one either side does."""
        a = node_address(self.left, family, self.local)
        b = node_address(self.right, family, self.local)
        if a is not None and b is not None and a != b:
            if _serves(self.right, a, self.local):
                return a
            if _serves(self.left, b, self.local):
                return b
        return a or b

    def iptables_side(self) -> int | None:
        """0 (left) or 1 (right) when the sides are one iptables and one nftables model."""
        if not mode_pair(*self.modes):
            return None
        return 0 if self.modes[0] is ProxyMode.IPTABLES else 1


def diff_models(
    left: ServiceModel,
    right: ServiceModel,
    left_label: str = "left",
    right_label: str = "right",
    *,
    local_addresses: Iterable[str] = (),
) -> list[Difference]:
    """Every difference between two models, classified, each with an example packet.

    `local_addresses` are the node's addresses (for NodePort example packets); the labels
    name the sides in messages.
    """
    sides = _Sides(left, right, local_addresses)
    out = _node_differences(sides, (left_label, right_label))
    out += _service_differences(sides)
    return sorted(out, key=lambda d: d.sort_key)


# --- node-level facts ---------------------------------------------------------------------------


def _serves(model: ServiceModel, address: str, local: Sequence[str]) -> bool:
    """Do the model's NodePorts answer on `address`?"""
    if is_loopback(address):
        return model.localhost_node_ports and family_of(address) is IPFamily.IPV4
    for entry in model.node_port_addresses:
        if entry == "local" and address in {a.split("/", 1)[0] for a in local}:
            return True
        if entry != "local" and in_network(address, entry):
            return True
    return False


def _first_node_port(sides: _Sides, family: IPFamily) -> tuple[ServicePort, Frontend] | None:
    for model in (sides.left, sides.right):
        for svc in model.services:
            if svc.family is family:
                for frontend in svc.frontends:
                    if frontend.kind is FrontendKind.NODE_PORT:
                        return svc, frontend
    return None


def _node_differences(sides: _Sides, labels: tuple[str, str]) -> list[Difference]:
    out: list[Difference] = []
    left, right = sides.left, sides.right
    ipt = sides.iptables_side()
    if left.node_port_addresses != right.node_port_addresses:
        out.append(_node_port_addresses(sides, labels))
    if left.localhost_node_ports != right.localhost_node_ports:
        found = _first_node_port(sides, IPFamily.IPV4)
        packet = None if found is None else Packet(IPFamily.IPV4, found[0].protocol.value, "127.0.0.1", "127.0.0.1", found[1].port, Hook.OUTPUT)
        d = Difference(
            DifferenceKind.LOCALHOST_NODE_PORTS,
            f"NodePorts on 127.0.0.1: {labels[0]} {_yes(left.localhost_node_ports)}, {labels[1]} {_yes(right.localhost_node_ports)}",
            left=left.localhost_node_ports,
            right=right.localhost_node_ports,
            packet=packet,
            packet_note="" if packet else "no IPv4 NodePort to show it with",
        )
        iptables_has = (left, right)[ipt].localhost_node_ports if ipt is not None else False
        out.append(mark_expected(d, "localhost-node-ports") if ipt is not None and iptables_has else d)
    for family in (IPFamily.IPV4, IPFamily.IPV6):
        lh = {h.port: h for h in left.health_check_node_ports if h.family is family}
        rh = {h.port: h for h in right.health_check_node_ports if h.family is family}
        if set(lh) == set(rh):
            continue
        only = sorted(set(lh) ^ set(rh))
        node = sides.node(family)
        packet = None if node is None else Packet(family, "tcp", EXTERNAL_CLIENT[family], node, only[0], Hook.PREROUTING)
        first = lh.get(only[0]) or rh.get(only[0])
        d = Difference(
            DifferenceKind.HEALTH_CHECK_NODE_PORTS,
            f"{family.value} healthCheckNodePorts accepted explicitly: {labels[0]} {_ports(lh)}, {labels[1]} {_ports(rh)}",
            left=tuple(sorted(lh)),
            right=tuple(sorted(rh)),
            packet=packet,
            packet_note="" if packet else "no node address known for a health-check packet",
            left_rule=lh[only[0]].origin if only[0] in lh else None,
            right_rule=rh[only[0]].origin if only[0] in rh else None,
            rule_note=f"port {only[0]} ({first.service if first else '?'}) has no ACCEPT rule on one side",
        )
        nft_ports = (rh, lh)[ipt] if ipt is not None else None
        out.append(mark_expected(d, "health-check-accept") if nft_ports is not None and not nft_ports else d)
    if left.local_traffic != right.local_traffic:
        out.append(
            Difference(
                DifferenceKind.LOCAL_TRAFFIC,
                f"local-traffic detector: {labels[0]} {', '.join(left.local_traffic) or 'none'}, "
                f"{labels[1]} {', '.join(right.local_traffic) or 'none'}",
                left=left.local_traffic,
                right=right.local_traffic,
                packet_note="a node-level setting: its effect shows as masquerade differences of frontends",
            )
        )
    return out


def _node_port_addresses(sides: _Sides, labels: tuple[str, str]) -> Difference:
    left, right = sides.left, sides.right
    candidates: list[str] = []
    for entry in (*left.node_port_addresses, *right.node_port_addresses, *sides.local):
        address = entry.split("/", 1)[0] if "/" not in entry or entry.endswith(("/32", "/128")) else ""
        if address and address != "local" and address not in candidates:
            candidates.append(address)
    packet: Packet | None = None
    note = ""
    for address in candidates:
        if _serves(left, address, sides.local) != _serves(right, address, sides.local):
            found = _first_node_port(sides, family_of(address))
            if found is not None:
                hook = Hook.OUTPUT if is_loopback(address) else Hook.PREROUTING
                client = address if hook is Hook.OUTPUT else EXTERNAL_CLIENT[family_of(address)]
                packet = Packet(found[0].family, found[0].protocol.value, client, address, found[1].port, hook)
                break
    if packet is None:
        note = (
            "no NodePort, or no node address known that only one side serves "
            "(give the node's addresses: a snapshot, or --local-address)"
        )
    d = Difference(
        DifferenceKind.NODE_PORT_ADDRESSES,
        f"NodePorts answer on: {labels[0]} {', '.join(left.node_port_addresses) or 'nothing'}; "
        f"{labels[1]} {', '.join(right.node_port_addresses) or 'nothing'}",
        left=left.node_port_addresses,
        right=right.node_port_addresses,
        packet=packet,
        packet_note=note,
    )
    return mark_expected(d, "node-port-addresses") if sides.iptables_side() is not None else d


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _ports(ports: dict[int, Any]) -> str:
    return ", ".join(str(p) for p in sorted(ports)) or "none"


# --- services -------------------------------------------------------------------------------------


def _pair_frontends(
    skey: ServiceKey, lsvc: ServicePort, rsvc: ServicePort, sides: _Sides
) -> tuple[dict[FrontendKey, Frontend], dict[FrontendKey, Frontend], list[Difference]]:
    """Frontends of both sides keyed for DeepDiff; uncertain kinds matched by address and port."""
    lmap = {frontend_key(f): f for f in lsvc.frontends}
    rmap = {frontend_key(f): f for f in rsvc.frontends}
    kinds: list[Difference] = []
    only_left = [k for k in lmap if k not in rmap]
    only_right = {(k[1], k[2]): k for k in rmap if k not in lmap and k[0] in _EXTERNAL_KINDS}
    for lkey in only_left:
        lf = lmap[lkey]
        rkey = only_right.get((lkey[1], lkey[2]))
        if lf.kind not in _EXTERNAL_KINDS or rkey is None:
            continue
        rf = rmap[rkey]
        if lf.kind_certain and rf.kind_certain:
            continue
        del only_right[(lkey[1], lkey[2])]
        # key both by the certain side's kind (the left one when neither is certain)
        key = lkey if lf.kind_certain or not rf.kind_certain else rkey
        del lmap[lkey], rmap[rkey]
        lmap[key], rmap[key] = lf, rf
        kinds.append(_kind_difference(skey, key, lsvc, lf, rf, sides))
    return lmap, rmap, kinds


def _kind_difference(
    skey: ServiceKey, key: FrontendKey, svc: ServicePort, lf: Frontend, rf: Frontend, sides: _Sides
) -> Difference:
    uncertain = (lf, rf)[0 if not lf.kind_certain else 1]
    mode = sides.modes[0 if uncertain is lf else 1]
    d = Difference(
        DifferenceKind.FRONTEND_KIND,
        f"{host_port_text(key[1] or '?', key[2])} is {lf.kind.value} on the left, {rf.kind.value} on the right "
        f"({'left' if uncertain is lf else 'right'} side cannot tell)",
        skey,
        key,
        left=lf.kind.value,
        right=rf.kind.value,
        packet=frontend_packet(svc, lf, sides.node(svc.family)),
        left_rule=_origin(lf),
        right_rule=_origin(rf),
        left_outcome=_model_outcome(lf),
        right_outcome=_model_outcome(rf),
    )
    return mark_expected(d, "kind-ambiguous-in-nftables" if mode is ProxyMode.NFTABLES else "kind-ambiguous-in-iptables")


def _service_differences(sides: _Sides) -> list[Difference]:
    lsvcs = {s.key: s for s in sides.left.services}
    rsvcs = {s.key: s for s in sides.right.services}
    left_doc: dict[ServiceKey, dict[FrontendKey, Any]] = {}
    right_doc: dict[ServiceKey, dict[FrontendKey, Any]] = {}
    out: list[Difference] = []
    for skey in sorted(set(lsvcs) | set(rsvcs)):
        lsvc, rsvc = lsvcs.get(skey), rsvcs.get(skey)
        if lsvc is not None and rsvc is not None:
            if _canonical(lsvc) == _canonical(rsvc):
                continue
            lmap, rmap, kinds = _pair_frontends(skey, lsvc, rsvc, sides)
            out += kinds
        else:
            lmap = {frontend_key(f): f for f in lsvc.frontends} if lsvc else {}
            rmap = {frontend_key(f): f for f in rsvc.frontends} if rsvc else {}
        sides.services[skey] = (lsvc, rsvc)
        for fkey in set(lmap) | set(rmap):
            sides.frontends[(skey, fkey)] = (lmap.get(fkey), rmap.get(fkey))
        if lsvc is not None:
            left_doc[skey] = {k: _fields(f) for k, f in lmap.items()}
        if rsvc is not None:
            right_doc[skey] = {k: _fields(f) for k, f in rmap.items()}
    if left_doc or right_doc:
        tree = DeepDiff(left_doc, right_doc, math_epsilon=PROBABILITY_TOLERANCE, view="tree")
        out += _convert(tree, sides)
    return out


def _convert(tree: Any, sides: _Sides) -> list[Difference]:
    """DeepDiff's changes as Differences: one per service or frontend on one side only, per
    endpoint, and per changed field (source ranges and Local policy folded per frontend)."""
    out: list[Difference] = []
    folded: dict[tuple[ServiceKey, FrontendKey, DifferenceKind], None] = {}
    changed_result: set[tuple[ServiceKey, FrontendKey]] = set()
    items = [(report, level, level.path(output_format="list")) for report, levels in tree.items() for level in levels]
    for _, _, path in items:
        if len(path) == 3 and path[2] == "result":
            changed_result.add((path[0], path[1]))
    for _report, level, path in items:
        skey = path[0]
        if len(path) == 1:
            out.append(_service_only(skey, sides))
            continue
        fkey = path[1]
        if len(path) == 2:
            out.append(_frontend_only(skey, fkey, sides))
            continue
        field = path[2]
        if field == "endpoints" and len(path) == 4:
            if (skey, fkey) in changed_result:
                continue  # the result difference carries both endpoint lists
            out.append(_endpoint(skey, fkey, path[3], level.t1, level.t2, sides))
            continue
        kind = _FIELD_KINDS.get(field)
        if kind is None:
            continue
        if kind in (DifferenceKind.AFFINITY, DifferenceKind.MASQUERADE) and (skey, fkey) in changed_result:
            continue
        if (skey, fkey, kind) not in folded:
            folded[(skey, fkey, kind)] = None
            out.append(_field(skey, fkey, kind, sides))
    return out


def _origin(frontend: Frontend | None) -> RuleRef | None:
    """The rule that decides a frontend's outcome as the model recorded it: the filter
    REJECT/DROP for a blocked one, the dispatch for a DNATed one."""
    if frontend is None or not frontend.origin:
        return None
    return frontend.origin[-1] if frontend.result is not Result.DNAT else frontend.origin[0]


def _model_outcome(frontend: Frontend | None) -> str:
    if frontend is None:
        return "no such frontend"
    if frontend.result is not Result.DNAT:
        return frontend.result.value
    shares = ", ".join(f"{host_port_text(e.address, e.port)} (p={e.probability:.4g})" for e in frontend.endpoints)
    return f"dnat {shares}"


def _with_frontends(
    d: Difference, svc: ServicePort, lf: Frontend | None, rf: Frontend | None, sides: _Sides, packet: Packet | None = None
) -> Difference:
    from dataclasses import replace

    either = lf or rf
    assert either is not None
    if packet is None:
        packet = frontend_packet(svc, either, sides.node(svc.family))
    missing = "left" if lf is None else "right" if rf is None else ""
    return replace(
        d,
        packet=packet,
        packet_note="" if packet else "a NodePort, and no node address is known",
        left_rule=_origin(lf),
        right_rule=_origin(rf),
        left_outcome=_model_outcome(lf),
        right_outcome=_model_outcome(rf),
        rule_note=f"the {missing} side has no such frontend" if missing else "",
    )


def _service_only(skey: ServiceKey, sides: _Sides) -> Difference:
    lsvc, rsvc = sides.services[skey]
    svc = lsvc or rsvc
    assert svc is not None
    where = "left" if lsvc is not None else "right"
    kind = DifferenceKind.SERVICE_ONLY_LEFT if lsvc is not None else DifferenceKind.SERVICE_ONLY_RIGHT
    frontend = svc.frontends[0] if svc.frontends else None
    d = Difference(
        kind,
        f"Service port {svc.name} ({svc.protocol.value}, {svc.family.value}) only on the {where} side "
        f"({len(svc.frontends)} frontend(s))",
        skey,
        frontend_key(frontend) if frontend else None,
        left=len(lsvc.frontends) if lsvc else None,
        right=len(rsvc.frontends) if rsvc else None,
    )
    if frontend is None:
        return d
    lf = frontend if lsvc is not None else None
    rf = frontend if rsvc is not None else None
    return _with_frontends(d, svc, lf, rf, sides)


def _frontend_only(skey: ServiceKey, fkey: FrontendKey, sides: _Sides) -> Difference:
    lf, rf = sides.frontends[(skey, fkey)]
    svc = _service_of(skey, sides)
    where = "left" if lf is not None else "right"
    kind = DifferenceKind.FRONTEND_ONLY_LEFT if lf is not None else DifferenceKind.FRONTEND_ONLY_RIGHT
    d = Difference(
        kind,
        f"{svc.name}: {_frontend_text(fkey)} only on the {where} side",
        skey,
        fkey,
        left=_model_outcome(lf) if lf else None,
        right=_model_outcome(rf) if rf else None,
    )
    return _with_frontends(d, svc, lf, rf, sides)


def _endpoint(skey: ServiceKey, fkey: FrontendKey, endpoint: Any, t1: Any, t2: Any, sides: _Sides) -> Difference:
    lf, rf = sides.frontends[(skey, fkey)]
    svc = _service_of(skey, sides)
    address, port = endpoint
    where = host_port_text(address, port)
    left = t1 if isinstance(t1, float) else None
    right = t2 if isinstance(t2, float) else None
    if left is None:
        kind, text = DifferenceKind.ENDPOINT_ADDED, f"endpoint {where} only on the right (p={right:.4g})"
    elif right is None:
        kind, text = DifferenceKind.ENDPOINT_REMOVED, f"endpoint {where} only on the left (p={left:.4g})"
    else:
        kind, text = DifferenceKind.PROBABILITY, f"endpoint {where}: p={left:.6g} on the left, p={right:.6g} on the right"
    d = Difference(
        kind, f"{svc.name} {_frontend_text(fkey)}: {text}", skey, fkey, endpoint=(address, port), left=left, right=right
    )
    return _with_frontends(d, svc, lf, rf, sides)


def _field(skey: ServiceKey, fkey: FrontendKey, kind: DifferenceKind, sides: _Sides) -> Difference:
    lf, rf = sides.frontends[(skey, fkey)]
    assert lf is not None and rf is not None
    svc = _service_of(skey, sides)
    packet: Packet | None = None
    left: Any
    right: Any
    if kind is DifferenceKind.RESULT:
        left, right = lf.result.value, rf.result.value
    elif kind is DifferenceKind.AFFINITY:
        left, right = lf.affinity_seconds, rf.affinity_seconds
    elif kind is DifferenceKind.MASQUERADE:
        left, right = lf.masquerade.value, rf.masquerade.value
    elif kind is DifferenceKind.LOCAL_POLICY:
        left = ("local-only" if lf.local_only else "all") + (", short-circuit" if lf.short_circuit else "")
        right = ("local-only" if rf.local_only else "all") + (", short-circuit" if rf.short_circuit else "")
    else:
        left, right = lf.source_ranges, rf.source_ranges
        packet = _source_range_packet(svc, lf, rf)
    d = Difference(
        kind,
        f"{svc.name} {_frontend_text(fkey)}: {kind.value} {_show(left)} on the left, {_show(right)} on the right",
        skey,
        fkey,
        left=left,
        right=right,
    )
    d = _with_frontends(d, svc, lf, rf, sides, packet)
    if kind is DifferenceKind.SOURCE_RANGES and _firewall_without_endpoints(lf, rf, sides):
        d = mark_expected(d, "lb-firewall-without-endpoints")
    return d


def _firewall_without_endpoints(lf: Frontend, rf: Frontend, sides: _Sides) -> bool:
    """nftables keeps the source ranges of an LB without endpoints; iptables has none there."""
    ipt = sides.iptables_side()
    if ipt is None:
        return False
    ipt_fe, nft_fe = (lf, rf) if ipt == 0 else (rf, lf)
    return (
        ipt_fe.result is Result.REJECT
        and nft_fe.result is Result.REJECT
        and not ipt_fe.source_ranges
        and bool(nft_fe.source_ranges)
    )


def _source_range_packet(svc: ServicePort, lf: Frontend, rf: Frontend) -> Packet | None:
    """A client one side admits and the other does not."""
    family = svc.family

    def admits(frontend: Frontend, client: str) -> bool:
        return not frontend.source_ranges or any(in_network(client, r) for r in frontend.source_ranges)

    candidates = [EXTERNAL_CLIENT[family]]
    for frontend in (lf, rf):
        for r in frontend.source_ranges:
            candidates.append(client_for(Frontend(frontend.kind, None, 0, Result.DROP, source_ranges=(r,)), family))
    for client in candidates:
        if admits(lf, client) != admits(rf, client):
            dst = lf.address or rf.address
            if dst is not None:
                return Packet(family, svc.protocol.value, client, dst, lf.port, Hook.PREROUTING)
    return None


def _service_of(skey: ServiceKey, sides: _Sides) -> ServicePort:
    lsvc, rsvc = sides.services[skey]
    svc = lsvc or rsvc
    assert svc is not None
    return svc


def _frontend_text(fkey: FrontendKey) -> str:
    kind, address, port = fkey
    if address is None:
        return f"{kind} {port}"
    return f"{kind} {host_port_text(address, port)}"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return "none" if value is None else str(value)


__all__ = ["diff_models", "frontend_key"]
