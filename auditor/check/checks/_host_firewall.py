"""Where a host firewall sends Kubernetes traffic: a small evaluator for iptables and nft chains.

Both rule languages are read into the same shape: a `Step` per rule (its conditions, its
verdict) and a `Hook` per base chain on `input` or `forward` (its policy and the chains it
reaches). `evaluate` walks a hook for one kind of packet (`Packet`) and says whether it is
accepted, dropped or let through, with the rules that decided. Conditions it cannot judge
("maybe") never make a verdict certain: a drop counts only when every condition on the way
to it surely matches, and an allowance only covers the packet when every condition surely
matches; otherwise the result is "unclear". That keeps KPA-011 from failing on a firewall
that might allow the traffic.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from auditor.model import IPFamily
from auditor.parse.iptables_save import Rule
from auditor.parse.nft_json import NftRule, NftTable, Prefix, Range, Verdict, rule_text

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

YES, MAYBE, NO = "yes", "maybe", "no"
_PROTOCOL_NUMBERS = {"6": "tcp", "17": "udp", "132": "sctp"}
_MAX_DEPTH = 16


class Cond(NamedTuple):
    """One match: `kind` is proto, dport, ports, daddr, saddr, ctstate, ctstatus, iif, oif,
    dsttype, nfproto or other; `values` are normalized (lower-case names, port ranges,
    networks); None when they could not be read (a named set, an odd shape)."""

    kind: str
    values: tuple[Any, ...] | None
    negated: bool = False


@dataclass(frozen=True)
class Step:
    """One rule: conditions, then a verdict (accept, drop, reject, return, jump, goto, vmap)
    or None (a rule that only counts, logs or marks)."""

    conds: tuple[Cond, ...]
    verdict: str | None
    target: str | None
    where: str
    text: str
    #: vmap branches: (verdict, chain or None)
    branches: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Hook:
    """A base chain on the input or forward hook, and every chain of its table."""

    label: str
    hook: str
    families: frozenset[IPFamily]
    policy: str
    entry: str
    chains: Mapping[str, Sequence[Step]]
    where: str
    #: kube-proxy's iptables rules accept the traffic in this very chain today
    bypassed_today: bool = False
    product: str | None = None


@dataclass(frozen=True)
class Packet:
    """The first packet of a new connection kube-proxy's iptables rules accept today."""

    hook: str
    family: IPFamily
    protocol: str
    #: destination ports as the hook sees them (after DNAT on forward: the endpoints' ports)
    ports: frozenset[int]
    #: destination addresses as the hook sees them (empty: unknown)
    addresses: tuple[Address, ...]
    dnat: bool


@dataclass
class Result:
    """What a hook does with a packet: "accepted", "dropped", "unclear" or "passes"."""

    outcome: str
    drop: Step | None = None
    allows: list[tuple[Step, bool]] = field(default_factory=list)

    @property
    def deciding(self) -> Step | None:
        sure = [s for s, certain in self.allows if certain]
        return sure[0] if sure else (self.allows[0][0] if self.allows else None)


def evaluate(hook: Hook, packet: Packet) -> Result:
    """Walk `hook` for `packet`; see the module docstring for the rules of the walk."""
    walk = _Walk(hook, packet)
    end = walk.chain(hook.entry, True, ())
    if end == "accept":
        return Result("accepted", None, walk.allows)
    if end == "fall" and hook.policy != "drop":
        return Result("passes", None, walk.allows)
    drop = walk.drop if end == "drop" else None
    return Result("unclear" if walk.allows else "dropped", drop, walk.allows)


class _Walk:
    def __init__(self, hook: Hook, packet: Packet) -> None:
        self.hook = hook
        self.packet = packet
        self.allows: list[tuple[Step, bool]] = []
        self.drop: Step | None = None

    def chain(self, name: str, certain: bool, stack: tuple[str, ...]) -> str:
        """ "accept" or "drop" when a rule surely decides, else "fall" (end of chain or RETURN)."""
        if name in stack or len(stack) > _MAX_DEPTH:
            return "fall"
        for step in self.hook.chains.get(name, ()):
            match = _all(match_cond(c, self.packet) for c in step.conds)
            if match == NO:
                continue
            sure = certain and match == YES
            verdict = step.verdict
            if verdict == "accept":
                self.allows.append((step, sure))
                if sure:
                    return "accept"
            elif verdict in ("drop", "reject"):
                if sure:
                    self.drop = step
                    return "drop"
            elif verdict == "return":
                if sure:
                    return "fall"
                certain = False  # the rest of the chain runs only for some packets
            elif verdict in ("jump", "goto") and step.target:
                end = self.chain(step.target, sure, (*stack, name))
                if sure and end != "fall":
                    return end
                if sure and verdict == "goto":
                    return "fall"
            elif verdict == "vmap":
                for kind, target in step.branches:
                    if kind == "accept":
                        self.allows.append((step, False))
                    elif kind in ("jump", "goto") and target:
                        self.chain(target, False, (*stack, name))
        return "fall"


def _all(results: Iterable[str]) -> str:
    out = YES
    for r in results:
        if r == NO:
            return NO
        if r == MAYBE:
            out = MAYBE
    return out


def match_cond(cond: Cond, packet: Packet) -> str:
    """Does `cond` hold for `packet`: yes, no or maybe."""
    result = _positive(cond, packet)
    if cond.negated and result != MAYBE:
        return NO if result == YES else YES
    return result


def _positive(cond: Cond, packet: Packet) -> str:
    values = cond.values
    if values is None or cond.kind == "other":
        return MAYBE
    kind = cond.kind
    if kind == "proto":
        return YES if packet.protocol in values or "all" in values else NO
    if kind in ("dport", "ports"):
        if not packet.ports:
            return MAYBE
        inside = [any(low <= p <= high for low, high in values) for p in packet.ports]
        if all(inside):
            return YES
        return MAYBE if any(inside) or kind == "ports" else NO
    if kind in ("daddr", "saddr"):
        return _address_match(kind, values, packet)
    if kind == "ctstate":
        states = {"new", "dnat"} if packet.dnat else {"new"}
        return YES if states & set(values) else NO
    if kind == "ctstatus":
        if "dnat" in values:
            return YES if packet.dnat else NO
        return NO if set(values) <= {"snat"} else MAYBE
    if kind in ("iif", "oif"):
        return NO if set(values) == {"lo"} else MAYBE
    if kind == "dsttype":
        if set(values) == {"local"}:
            return YES if packet.hook == "input" else NO
        return MAYBE
    if kind == "nfproto":
        name = "ipv6" if packet.family is IPFamily.IPV6 else "ipv4"
        return YES if name in values else NO
    return MAYBE


def _address_match(kind: str, networks: tuple[Any, ...], packet: Packet) -> str:
    nets = [n for n in networks if isinstance(n, Network)]
    if len(nets) != len(networks):
        return MAYBE
    if not nets or all(n.is_loopback for n in nets):
        return NO
    if any(n.prefixlen == 0 and n.version == (6 if packet.family is IPFamily.IPV6 else 4) for n in nets):
        return YES
    if kind == "saddr" or not packet.addresses:
        return MAYBE
    inside = [any(a in n for n in nets if n.version == a.version) for a in packet.addresses]
    return YES if all(inside) else MAYBE if any(inside) else NO


# --- iptables ---------------------------------------------------------------------------------


def iptables_step(rule: Rule, chains: Iterable[str], where: str) -> Step:
    """A parsed iptables rule as a Step; targets that are neither verdicts nor chains count as none."""
    conds: list[Cond] = []
    if rule.protocol:
        conds.append(Cond("proto", (_protocol(rule.protocol),), rule.protocol_negated))
    for kind, value, negated in (("saddr", rule.src, rule.src_negated), ("daddr", rule.dst, rule.dst_negated)):
        if value:
            conds.append(Cond(kind, _networks([value]), negated))
    for kind, iface, negated in (
        ("iif", rule.in_interface, rule.in_interface_negated),
        ("oif", rule.out_interface, rule.out_interface_negated),
    ):
        if iface:
            conds.append(Cond(kind, (iface,) if not iface.endswith("+") else None, negated))
    for opt in rule.options:
        conds.extend(_iptables_option(opt.module, opt.name, opt.value, opt.negated))
    if rule.other:
        conds.append(Cond("other", None))
    target = rule.target
    verdict: str | None = None
    if target in ("ACCEPT", "DROP", "REJECT", "RETURN"):
        verdict = target.lower()
    elif target is not None and target in chains:
        verdict = "goto" if rule.goto else "jump"
    return Step(tuple(conds), verdict, target if verdict in ("jump", "goto") else None, where, rule.text)


def _iptables_option(module: str, name: str, value: str, negated: bool) -> list[Cond]:
    if module == "comment":
        return []
    if name in ("--dport", "--destination-port", "--dports", "--destination-ports"):
        return [Cond("dport", _port_ranges(value.replace(":", "-").split(",")), negated)]
    if name == "--ports":
        return [Cond("ports", _port_ranges(value.replace(":", "-").split(",")), negated)]
    if name in ("--ctstate", "--state"):
        return [Cond("ctstate", tuple(v.lower() for v in value.split(",")), negated)]
    if name == "--ctstatus":
        return [Cond("ctstatus", tuple(v.lower() for v in value.split(",")), negated)]
    if module == "addrtype" and name == "--dst-type":
        return [Cond("dsttype", tuple(v.lower() for v in value.split(",")), negated)]
    return [Cond("other", None, negated)]


def _protocol(text: str) -> str:
    text = text.lower()
    return _PROTOCOL_NUMBERS.get(text, text)


def _port_ranges(items: Iterable[Any]) -> tuple[tuple[int, int], ...] | None:
    out: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, Range) or (isinstance(item, dict) and "range" in item):
            low, high = (item.low, item.high) if isinstance(item, Range) else item["range"]
        elif isinstance(item, int) or (isinstance(item, str) and "-" not in item):
            low = high = item
        elif isinstance(item, str):
            low, _, high = item.partition("-")
        else:
            return None
        try:
            out.append((int(str(low)), int(str(high))))
        except (TypeError, ValueError):
            return None
    return tuple(out)


def _networks(items: Iterable[Any]) -> tuple[Any, ...] | None:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict) and "prefix" in item:
            item = Prefix(str(item["prefix"].get("addr")), int(item["prefix"].get("len", 0)))
        text = str(item)
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if isinstance(item, dict) and "range" in item:
                low, high = (ipaddress.ip_address(str(v)) for v in item["range"])
                out.extend(ipaddress.summarize_address_range(low, high))
            else:
                return None
    return tuple(out)


# --- nft --------------------------------------------------------------------------------------


def nft_step(rule: NftRule, table: NftTable, where: str) -> Step:
    """An nft rule (JSON expressions) as a Step."""
    conds: list[Cond] = []
    verdict: str | None = None
    target: str | None = None
    branches: tuple[tuple[str, str | None], ...] = ()
    resolve = _set_resolver(table)
    for expr in rule.expr:
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        key, body = next(iter(expr.items()))
        if key == "match" and isinstance(body, dict):
            conds.extend(_nft_match(body, resolve))
        elif key in ("accept", "drop", "return"):
            verdict = key
        elif key == "reject":
            verdict = "reject"
        elif key in ("jump", "goto") and isinstance(body, dict):
            verdict, target = key, body.get("target")
        elif key == "vmap" and isinstance(body, dict):
            verdict, branches = "vmap", _vmap_branches(body.get("data"), table)
        elif key == "limit":
            conds.append(Cond("other", None))
    return Step(tuple(conds), verdict, target, where, rule_text(rule), branches)


def _set_resolver(table: NftTable) -> Callable[[Any], list[Any] | None]:
    """The items of a set literal, a list, a single value, or a named set (`@name`) of `table`."""

    def resolve(right: Any) -> list[Any] | None:
        if isinstance(right, str) and right.startswith("@"):
            named = table.sets.get(right[1:])
            if named is None or named.is_map:
                return None
            return [element.key for element in named.elements]
        if isinstance(right, dict) and "set" in right:
            right = right["set"]
        if isinstance(right, list):
            out: list[Any] = []
            for item in right:
                values = resolve(item)
                if values is None:
                    return None
                out.extend(values)
            return out
        return [right]

    return resolve


def _nft_match(body: Mapping[str, Any], resolve: Callable[[Any], list[Any] | None]) -> list[Cond]:
    op = body.get("op", "==")
    negated = op == "!="
    if op not in ("==", "!=", "in"):
        return [Cond("other", None)]
    left, right = body.get("left"), body.get("right")
    items = resolve(right)
    if not isinstance(left, dict) or len(left) != 1:
        return [Cond("other", None)]
    kind, spec = next(iter(left.items()))
    spec = spec if isinstance(spec, dict) else {}
    if kind == "payload":
        proto, field_ = spec.get("protocol"), spec.get("field")
        if field_ == "dport":
            ports = Cond("dport", _port_ranges(items) if items is not None else None, negated)
            return [Cond("proto", (proto,)), ports] if proto in ("tcp", "udp", "sctp") else [ports]
        if field_ in ("daddr", "saddr") and proto in ("ip", "ip6"):
            return [Cond(field_, _networks(items) if items is not None else None, negated)]
        if (proto, field_) in (("ip", "protocol"), ("ip6", "nexthdr")):
            return [Cond("proto", _names(items), negated)]
    elif kind == "meta":
        meta = spec.get("key")
        if meta == "l4proto":
            return [Cond("proto", _names(items), negated)]
        if meta in ("iifname", "iif", "oifname", "oif"):
            return [Cond(meta[:3], _names(items), negated)]
        if meta == "nfproto":
            return [Cond("nfproto", _names(items), negated)]
    elif kind == "ct" and spec.get("key") in ("state", "status") and "dir" not in spec:
        return [Cond("ct" + spec["key"], _names(items), negated)]
    elif kind == "fib" and spec.get("result") == "type" and spec.get("flags") in ("daddr", ["daddr"]):
        return [Cond("dsttype", _names(items), negated)]
    return [Cond("other", None, negated)]


def _names(items: list[Any] | None) -> tuple[str, ...] | None:
    if items is None or not all(isinstance(i, str | int) for i in items):
        return None
    return tuple(_protocol(str(i)) for i in items)


def _vmap_branches(data: Any, table: NftTable) -> tuple[tuple[str, str | None], ...]:
    """The verdicts of a verdict map: literal (`{"set": [[key, {"goto": {"target": ...}}], ...]}`)
    or named (`"@name"`, read from the table's map elements)."""
    if isinstance(data, str):
        found = table.sets.get(data.lstrip("@"))
        elements = found.elements if found is not None else ()
        return tuple((v.kind, v.target) for e in elements if isinstance(v := e.value, Verdict))
    out: list[tuple[str, str | None]] = []
    if isinstance(data, dict) and isinstance(data.get("set"), list):
        for pair in data["set"]:
            verdict = pair[1] if isinstance(pair, list) and len(pair) == 2 else None
            if isinstance(verdict, dict) and len(verdict) == 1:
                kind, body = next(iter(verdict.items()))
                out.append((kind, body.get("target") if isinstance(body, dict) else None))
    return tuple(out)
