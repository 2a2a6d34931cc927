"""Trace a packet through an nftables ruleset (`nft -j list ruleset`) the way the kernel walks it.

Every base chain of every traced table on the hook runs, in priority order (`accept` ends
only that base chain; `drop` and `reject` end the packet). After prerouting the routing
decision picks input (a local destination) or forward, then postrouting. Within a chain:
jumps, gotos, returns, verdict maps (`vmap`) keyed by any expression kube-proxy or a host
firewall uses, named and anonymous set lookups with concatenations, prefixes and ranges,
`numgen random mod N` (each index 1/N, every branch followed), `fib saddr/daddr type
local` (against the node's addresses, a parameter), `ct state` (new, for a first packet),
the mark, DNAT, masquerade. Sets a packet path fills at run time (`flags dynamic` or
`timeout`, such as kube-proxy's `affinity-*`) are empty for a first packet. A nat chain
on a hook is skipped once an earlier one has translated the packet, as the kernel does.

Anything else that could decide the packet's fate ends the branch as `unknown` with the
rule: never a guessed match. Tables written by iptables-nft (xt expressions) are left to
the iptables tracer by default; the result's notes say which tables were not traced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from auditor.model import IPFamily, ProxyMode
from auditor.parse.nft_json import (
    Concat,
    NftChain,
    NftRule,
    NftRuleset,
    NftSet,
    NftTable,
    Opaque,
    Prefix,
    Range,
    Value,
    decode_value,
    rule_text,
)
from auditor.parse.nft_json import (
    Verdict as NftVerdict,
)
from auditor.trace.outcome import Branch, Step, TraceResult, Verdict
from auditor.trace.packet import Hook, Packet, canonical_ip, in_network, in_range, protocol_name
from auditor.trace.state import MAX_DEPTH, LocalAddresses, State, settle

_FAMILIES = {IPFamily.IPV4: ("ip", "inet"), IPFamily.IPV6: ("ip6", "inet")}
_IPX = {IPFamily.IPV4: "ip", IPFamily.IPV6: "ip6"}
_IPTABLES_TABLES = {"filter", "nat", "mangle", "raw", "security"}
_IPTABLES_CHAINS = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
_L4 = {"tcp", "udp", "sctp", "th"}
_NOTE_DYNAMIC = "sets filled at run time (dynamic/timeout, e.g. affinity-*) are empty for a first packet"

_Out = tuple[State, str, str]


class _NoMatch:
    """An expression that does not apply to this packet (`tcp dport` of a UDP packet)."""


class _Unknown:
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Fib:
    """`fib ... type`: only "local" versus "not local" is known."""

    def __init__(self, local: bool) -> None:
        self.local = local


NO_MATCH = _NoMatch()


def native_tables(ruleset: NftRuleset) -> list[NftTable]:
    """The tables written by nft itself, not iptables-nft's `ip filter`, `ip nat`, ... (those
    hold iptables rules as xt expressions: trace them from iptables-save instead)."""
    return [t for t in ruleset.tables if not is_iptables_nft_table(t)]


def is_iptables_nft_table(table: NftTable) -> bool:
    if table.name in _IPTABLES_TABLES and _IPTABLES_CHAINS & set(table.chains):
        return True
    return any(_has_xt(rule.expr) for chain in table.chains.values() for rule in chain.rules[:4])


def _has_xt(expr: list[Any]) -> bool:
    return any(type(e) is dict and "xt" in e for e in expr)


class _SetIndex:
    """A named set or map, ready for lookups: exact keys in a dict, the rest in a list."""

    def __init__(self, found: NftSet) -> None:
        self.set = found
        self.dynamic = "dynamic" in found.flags or "timeout" in found.flags
        self.exact: dict[Any, Value | None] = {}
        self.others: list[tuple[Value, Value | None]] = []
        for element in found.elements:
            key = _exact_key(element.key)
            if key is None:
                self.others.append((element.key, element.value))
            else:
                self.exact.setdefault(key, element.value)

    def lookup(self, value: Any) -> tuple[bool, Value | None] | _Unknown:
        """(found, the map value); dynamic sets hold nothing for a first packet."""
        if self.dynamic:
            return (False, None)
        key = _packet_key(value)
        if key in self.exact:
            return (True, self.exact[key])
        for element, data in self.others:
            matched = _element_match(value, element)
            if matched is None:
                return _Unknown(f"element {element} of @{self.set.name}")
            if matched:
                return (True, data)
        return (False, None)


def _exact_key(key: Value) -> Any:
    if type(key) is str:
        return canonical_ip(key)
    if type(key) is int:
        return key
    if isinstance(key, Concat):
        parts = [_exact_key(p) for p in key.parts]
        return None if any(p is None for p in parts) else tuple(parts)
    return None


def _packet_key(value: Any) -> Any:
    if type(value) is str:
        return canonical_ip(value)
    if type(value) is tuple:
        return tuple(_packet_key(v) for v in value)
    return value


def _element_match(value: Any, element: Value) -> bool | None:
    """Does a packet value (str, int, tuple for a concatenation) fall under a set element?"""
    if isinstance(element, Concat):
        if type(value) is not tuple or len(value) != len(element.parts):
            return None
        result = True
        for v, e in zip(value, element.parts, strict=True):
            one = _element_match(v, e)
            if one is None:
                return None
            result = result and one
        return result
    if type(element) is str:
        if type(value) is str:
            return canonical_ip(value) == canonical_ip(element)
        if type(value) is int:
            name = protocol_name(value)
            return name is not None and name == element
        return None
    if type(element) is int:
        if type(value) is int:
            return value == element
        if type(value) is str and protocol_name(element) is not None:
            return protocol_name(element) == value
        return None
    if isinstance(element, Prefix):
        return in_network(value, str(element)) if type(value) is str else None
    if isinstance(element, Range):
        low, high = element.low, element.high
        if type(value) is int and type(low) is int and type(high) is int:
            return low <= value <= high
        if type(value) is str and type(low) is str and type(high) is str:
            return in_range(value, low, high)
        return None
    return None


class NftTracer:
    """Traces packets through the native tables of one `nft -j list ruleset`."""

    mode = ProxyMode.NFTABLES

    def __init__(
        self, ruleset: NftRuleset, local_addresses: Iterable[str] = (), *, tables: Sequence[NftTable] | None = None
    ) -> None:
        self.ruleset = ruleset
        self.tables = list(native_tables(ruleset) if tables is None else tables)
        self.local = LocalAddresses(local_addresses)
        self.skipped = [t.label for t in ruleset.tables if all(t is not u for u in self.tables)]
        self._sets: dict[tuple[str, str, str], _SetIndex | None] = {}
        self._hooks: dict[tuple[IPFamily, str], list[tuple[NftTable, NftChain]]] = {}
        self._used_dynamic = False

    # -- structure -------------------------------------------------------------------------------

    def _base_chains(self, family: IPFamily, hook: str) -> list[tuple[NftTable, NftChain]]:
        key = (family, hook)
        found = self._hooks.get(key)
        if found is None:
            items = []
            for order, table in enumerate(self.tables):
                if table.family.value not in _FAMILIES[family]:
                    continue
                for chain in table.chains.values():
                    if chain.hook == hook and chain.type in ("filter", "nat", "route"):
                        items.append((chain.prio or 0, order, table, chain))
            items.sort(key=lambda x: (x[0], x[1]))
            found = self._hooks[key] = [(t, c) for _, _, t, c in items]
        return found

    def _set(self, table: NftTable, name: str) -> _SetIndex | None:
        key = (table.family.value, table.name, name)
        if key not in self._sets:
            found = table.sets.get(name)
            self._sets[key] = None if found is None else _SetIndex(found)
        return self._sets[key]

    # -- the trace -------------------------------------------------------------------------------

    def trace(self, packet: Packet) -> TraceResult:
        """Every branch of `packet` through the traced tables."""
        done: list[Branch] = []
        self._used_dynamic = False
        first = "output" if packet.hook is Hook.OUTPUT else "prerouting"
        for state in self._hook(packet, first, [State(packet)], done):
            local = state.dst in self.local
            if packet.hook is Hook.OUTPUT:
                after = self._hook(packet, "postrouting", [state], done)
                if local:
                    after = self._hook(packet, "input", after, done)
            else:
                after = self._hook(packet, "input" if local else "forward", [state], done)
                if not local:
                    after = self._hook(packet, "postrouting", after, done)
            for s in after:
                verdict = Verdict.DNAT if s.dnat is not None else Verdict.ACCEPT
                done.append(s.branch(verdict, delivery="local" if local else "forward"))
        notes: list[str] = []
        if self._used_dynamic:
            notes.append(_NOTE_DYNAMIC)
        if self.skipped:
            notes.append("tables not traced (iptables-nft; trace them with --mode iptables): " + ", ".join(self.skipped))
        if not self.local.addresses:
            notes.append("no node addresses given: only loopback counts as local")
        return TraceResult(packet, self.mode, tuple(done), tuple(notes))

    def _hook(self, packet: Packet, hook: str, states: list[State], done: list[Branch]) -> list[State]:
        for table, chain in self._base_chains(packet.family, hook):
            alive: list[State] = []
            for state in states:
                if chain.type == "nat" and (state.masquerade if hook == "postrouting" else state.dnat is not None):
                    alive.append(state)  # the connection is already translated on this hook
                    continue
                for s, outcome, reason in self._walk(packet, table, chain, state, 0):
                    if outcome == "return":
                        policy = chain.policy or "accept"
                        step = Step(table.label, chain.name, 0, f"policy {policy}", "chain policy", self.ruleset.source)
                        s.step(step)
                        if chain.type == "filter" or policy != "accept":
                            s.deciding = step
                        outcome = "accept" if policy == "accept" else "drop"
                    settle(s, outcome, reason, alive, done)
            states = alive
        return states

    def _walk(self, packet: Packet, table: NftTable, chain: NftChain, state: State, depth: int) -> list[_Out]:
        """Every branch of `state` through one chain: (state, outcome, reason), outcome one of
        "return", "accept", "drop", "reject", "dnat", "unknown"."""
        if depth > MAX_DEPTH:
            return [(state, "unknown", f"jumps nest deeper than {MAX_DEPTH} at {table.label} {chain.name}")]
        results: list[_Out] = []
        work: list[tuple[State, int]] = [(state, 0)]
        rules = chain.rules
        while work:
            s, i = work.pop()
            while True:
                if i >= len(rules):
                    results.append((s, "return", ""))
                    break
                rule = rules[i]
                branches = self._rule(packet, table, rule, s)
                if len(branches) == 1 and branches[0][1] == "next":
                    s = branches[0][0]
                    i += 1
                    continue
                for s2, action, arg in branches:
                    if action == "next":
                        work.append((s2, i + 1))
                    elif action in ("jump", "goto"):
                        target = table.chains.get(arg)
                        if target is None:
                            results.append((s2, "unknown", f"{action} to a chain the table lacks: {arg}"))
                            continue
                        for s3, out, reason in self._walk(packet, table, target, s2, depth + 1):
                            if out == "return" and action == "jump":
                                work.append((s3, i + 1))
                            else:
                                results.append((s3, out, reason))
                    else:
                        results.append((s2, action, arg))
                break
        return results

    # -- one rule ----------------------------------------------------------------------------------

    def _rule(self, packet: Packet, table: NftTable, rule: NftRule, s: State) -> list[tuple[State, str, str]]:
        """A rule's expressions in order. Actions: "next", "jump"/"goto" (arg: chain), or a
        chain-ending outcome ("accept", "drop", "reject", "return", "dnat", "unknown": arg is why)."""
        step = Step(table.label, rule.chain, rule.handle, rule_text(rule), "", self.ruleset.source)
        for expr in rule.expr:
            if type(expr) is not dict or len(expr) != 1:
                return self._unknown(s, step, "an expression kp-audit does not read")
            kind, body = next(iter(expr.items()))
            if kind == "match":
                matched = self._match(packet, table, body, s)
                if isinstance(matched, _Unknown):
                    return self._unknown(s, step, matched.reason)
                if not matched:
                    return [(s, "next", "")]
            elif kind in ("counter", "log", "comment"):
                continue
            elif kind in ("accept", "drop", "return", "continue", "jump", "goto"):
                target = body.get("target") if type(body) is dict else None
                return [self._verdict(s, step, NftVerdict(kind, target))]
            elif kind == "vmap":
                return self._vmap(packet, table, body, s, step)
            elif kind == "dnat":
                return [self._dnat(s, step, body)]
            elif kind in ("masquerade", "snat"):
                s.step(step)
                s.masquerade = True
                return [(s, "accept", "")]
            elif kind == "reject":
                s.step(step)
                s.deciding = step
                return [(s, "reject", "")]
            elif kind == "mangle":
                mark = self._mangle(packet, body, s)
                if isinstance(mark, _Unknown):
                    return self._unknown(s, step, mark.reason)
                s.mark = mark
                s.step(step)
            elif kind == "set" and type(body) is dict and body.get("op") in ("add", "update", "delete"):
                self._remember(table, body, s)
            else:
                return self._unknown(s, step, f"statement `{kind}` kp-audit does not evaluate")
        return [(s, "next", "")]

    @staticmethod
    def _unknown(s: State, step: Step, reason: str) -> list[tuple[State, str, str]]:
        s.step(step)
        s.deciding = step
        return [(s, "unknown", f"{reason} in {step.table} {step.chain}: {step.rule}")]

    @staticmethod
    def _verdict(s: State, step: Step, verdict: NftVerdict, note: str = "") -> tuple[State, str, str]:
        if note:
            step = Step(step.table, step.chain, step.line, step.rule, note, step.source)
        kind = verdict.kind
        if kind == "continue":
            return (s, "next", "")
        s.step(step)
        if kind in ("jump", "goto"):
            return (s, kind, verdict.target or "")
        if kind in ("accept", "drop"):
            s.deciding = step
        return (s, kind, "")

    def _vmap(
        self, packet: Packet, table: NftTable, body: Any, s: State, step: Step
    ) -> list[tuple[State, str, str]]:
        if type(body) is not dict:
            return self._unknown(s, step, "a vmap kp-audit does not read")
        key, data = body.get("key"), body.get("data")
        gen = key.get("numgen") if type(key) is dict and len(key) == 1 else None
        if gen is not None:
            mod, offset = (gen.get("mod"), gen.get("offset", 0)) if type(gen) is dict else (None, None)
            if type(gen) is not dict or gen.get("mode") != "random" or type(mod) is not int or mod < 1:
                return self._unknown(s, step, "numgen other than `random mod N`")
            out = []
            for n in range(mod):
                branch = s.split(1.0 / mod)
                found = self._lookup(table, data, (offset or 0) + n)
                if isinstance(found, _Unknown):
                    out += self._unknown(branch, step, found.reason)
                elif not found[0]:
                    out.append((branch, "next", ""))
                else:
                    out.append(self._map_verdict(branch, step, found[1], f"numgen {n} of {mod} (p={1 / mod:.6g})"))
            return out
        value = self._value(packet, key, s)
        if isinstance(value, _Unknown):
            return self._unknown(s, step, value.reason)
        if isinstance(value, _NoMatch):
            return [(s, "next", "")]
        found = self._lookup(table, data, value)
        if isinstance(found, _Unknown):
            return self._unknown(s, step, found.reason)
        if not found[0]:
            return [(s, "next", "")]
        return [self._map_verdict(s, step, found[1], "")]

    def _map_verdict(self, s: State, step: Step, value: Value | None, note: str) -> tuple[State, str, str]:
        if not isinstance(value, NftVerdict):
            s.step(step)
            return (s, "unknown", f"map value {value} is not a verdict in {step.table} {step.chain}: {step.rule}")
        return self._verdict(s, step, value, (note + "; " if note else "") + f"-> {value}")

    def _lookup(self, table: NftTable, data: Any, value: Any) -> tuple[bool, Value | None] | _Unknown:
        """Find `value` in `@name` or an anonymous `{"set": [...]}` (map pairs or set elements)."""
        if type(data) is str and data.startswith("@"):
            found = self._set(table, data[1:])
            if found is None:
                return _Unknown(f"lookup in {data}, which the table lacks")
            if found.dynamic:
                self._used_dynamic = True
            return found.lookup(value)
        if type(data) is dict and type(data.get("set")) is list:
            for item in data["set"]:
                pair = type(item) is list and len(item) == 2
                element = decode_value(item[0] if pair else item)
                matched = _element_match(value, element)
                if matched is None:
                    return _Unknown(f"set element {element}")
                if matched:
                    return (True, decode_value(item[1]) if pair else None)
            return (False, None)
        single = decode_value(data)
        if isinstance(single, Opaque):
            return _Unknown(f"set {single}")
        matched = _element_match(value, single)
        return _Unknown(f"value {single}") if matched is None else (matched, None)

    def _match(self, packet: Packet, table: NftTable, body: Any, s: State) -> bool | _Unknown:
        if type(body) is not dict:
            return _Unknown("a match kp-audit does not read")
        op = body.get("op", "==")
        left = self._value(packet, body.get("left"), s)
        if isinstance(left, _Unknown):
            return left
        if isinstance(left, _NoMatch):
            return False
        right = body.get("right")
        if isinstance(left, _Fib):
            types = right if type(right) is list else [right]
            if types != ["local"] or op not in ("==", "!=", "in"):
                return _Unknown(f"fib type {right}")
            return bool(left.local != (op == "!="))
        if isinstance(left, frozenset):  # ct state / ct status flags
            flags: set[Any] = set(right) if type(right) is list else {right}
            if op in ("==", "in"):
                return bool(left & flags)
            if op == "!=":
                return not (left & flags)
            return _Unknown(f"ct comparison {op}")
        if op in ("<", ">", "<=", ">="):
            if type(left) is not int or type(right) is not int:
                return _Unknown(f"comparison {op} {right}")
            return bool({"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op])
        if op not in ("==", "!=", "in"):
            return _Unknown(f"operator {op}")
        if type(right) is str and right.startswith("@"):
            named = self._set(table, right[1:])
            if named is not None and named.dynamic and named.set.timeout is not None:
                s.affinity = named.set.timeout  # an affinity check a first packet passes unmatched
        found = self._lookup(table, right, left)
        if isinstance(found, _Unknown):
            return found
        return bool(found[0] != (op == "!="))

    def _value(self, packet: Packet, expr: Any, s: State) -> Any:
        """A packet value for an nft expression: str (address, protocol), int (port, mark),
        tuple (concatenation), flags (ct), `_Fib`; `NO_MATCH` or `_Unknown` otherwise."""
        if type(expr) in (str, int):
            return expr
        if type(expr) is not dict or len(expr) != 1:
            return _Unknown(f"expression {expr!r}")
        kind, body = next(iter(expr.items()))
        if kind == "payload" and type(body) is dict:
            protocol, field = body.get("protocol"), body.get("field")
            if protocol in ("ip", "ip6") and field in ("saddr", "daddr"):
                if protocol != _IPX[packet.family]:
                    return NO_MATCH
                return s.src if field == "saddr" else s.dst
            if protocol in _L4 and field == "dport":
                return s.dport if protocol in ("th", packet.protocol) else NO_MATCH
            return _Unknown(f"payload {protocol} {field}")
        if kind == "meta" and type(body) is dict:
            key = body.get("key")
            if key == "l4proto":
                return packet.protocol
            if key == "nfproto":
                return "ipv6" if packet.family is IPFamily.IPV6 else "ipv4"
            if key == "mark":
                return s.mark
            if key in ("iifname", "iif") and packet.in_iface is not None and key == "iifname":
                return packet.in_iface
            return _Unknown(f"meta {key}")
        if kind == "fib" and type(body) is dict and body.get("result") == "type":
            flags = body.get("flags")
            flags = [flags] if type(flags) is str else flags
            if flags == ["daddr"]:
                return _Fib(s.dst in self.local)
            if flags == ["saddr"]:
                return _Fib(s.src in self.local)
            return _Unknown(f"fib {flags} type")
        if kind == "ct" and type(body) is dict and "dir" not in body:
            if body.get("key") == "state":
                return frozenset({"new"})
            if body.get("key") == "status":
                return frozenset({"dnat"} if s.dnat is not None else ())
            return _Unknown(f"ct {body.get('key')}")
        if kind == "concat" and type(body) is list:
            parts = [self._value(packet, part, s) for part in body]
            for part in parts:
                if isinstance(part, (_Unknown, _NoMatch)):
                    return part
            return tuple(parts)
        if kind in ("&", "|", "^") and type(body) is list and len(body) == 2:
            a, b = (self._value(packet, part, s) for part in body)
            if isinstance(a, (_Unknown, _NoMatch)):
                return a
            if type(a) is not int or type(b) is not int:
                return _Unknown(f"bitwise {kind} on {body!r}")
            return a & b if kind == "&" else a | b if kind == "|" else a ^ b
        return _Unknown(f"expression `{kind}`")

    def _dnat(self, s: State, step: Step, body: Any) -> tuple[State, str, str]:
        s.step(step)
        s.deciding = step
        addr = body.get("addr") if type(body) is dict else None
        port = body.get("port", s.dport) if type(body) is dict else None
        if type(addr) is not str or type(port) is not int or set(body) - {"addr", "port", "family", "flags"}:
            return (s, "unknown", f"dnat kp-audit does not evaluate in {step.table} {step.chain}: {step.rule}")
        address = canonical_ip(addr)
        s.dst, s.dport, s.dnat, s.dnat_step = address, port, (address, port), step
        return (s, "dnat", "")

    def _mangle(self, packet: Packet, body: Any, s: State) -> int | _Unknown:
        if type(body) is not dict or body.get("key") != {"meta": {"key": "mark"}}:
            return _Unknown("a mangle statement other than `meta mark set`")
        value = self._value(packet, body.get("value"), s)
        if type(value) is not int:
            return value if isinstance(value, _Unknown) else _Unknown("meta mark set to a value kp-audit cannot compute")
        return value & 0xFFFFFFFF

    def _remember(self, table: NftTable, body: dict[str, Any], s: State) -> None:
        """`update @affinity-X { ip saddr }`: later packets stick; note the set's timeout."""
        name = body.get("set")
        found = self._set(table, name[1:]) if type(name) is str and name.startswith("@") else None
        if found is not None and found.set.timeout is not None and s.affinity is None:
            s.affinity = found.set.timeout


__all__ = ["NftTracer", "is_iptables_nft_table", "native_tables"]
