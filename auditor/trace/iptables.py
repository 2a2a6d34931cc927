"""Trace a packet through iptables-save dumps the way the kernel walks them.

Tables run in the kernel's priority order on each hook (raw, mangle, nat, filter,
security); after nat PREROUTING the routing decision sends the packet to INPUT (a local
destination) or FORWARD, then POSTROUTING, where kube-proxy's mark turns into MASQUERADE.
Rules are read with the normalizer's vocabulary (`auditor.normalize.iptables_facts`):

- `-m statistic --mode random --probability p`: both branches are followed, with p and 1-p;
- `-m recent --rcheck`: no entry yet (a first packet), so no match; the timeout is noted;
- `-m conntrack --ctstate`: NEW, plus DNAT once the destination was rewritten;
- `-m addrtype --src-type/--dst-type LOCAL`: against the node's addresses (a parameter);
- `-m mark`, `-j MARK`, jumps, gotos, RETURN, chain policies, DNAT, MASQUERADE;
- anything else that could decide the packet's fate ends the branch as `unknown`, naming
  the rule: never a guessed match. A rule whose known matches already fail is skipped.

Restore input (kube-proxy's own dumps, the reference test data) has no jumps from the
built-in chains: kube-proxy inserts them one by one. When a built-in chain lacks one of
kube-proxy's jumps to a chain the dump has, the tracer adds it at the top, marked
"implied", and says so in the result's notes.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence

from auditor.model import IPFamily, ProxyMode
from auditor.normalize.iptables_facts import (
    CTSTATE,
    DPORT,
    DST,
    DST_TYPE,
    IN_IFACE,
    MARK,
    PROBABILITY,
    PROTO,
    RECENT,
    SRC,
    SRC_TYPE,
    UNKNOWN,
    Facts,
    host_port,
    read_facts,
)
from auditor.parse.iptables_save import IptablesDump
from auditor.trace.outcome import Branch, Step, TraceResult, Verdict
from auditor.trace.packet import Hook, Packet, canonical_ip, in_network, protocol_name
from auditor.trace.state import MAX_DEPTH, LocalAddresses, State, settle

# (table, built-in chain) in the order the kernel runs them on each hook
_PREROUTING = (("raw", "PREROUTING"), ("mangle", "PREROUTING"), ("nat", "PREROUTING"))
_INPUT = (("mangle", "INPUT"), ("filter", "INPUT"), ("security", "INPUT"), ("nat", "INPUT"))
_FORWARD = (("mangle", "FORWARD"), ("filter", "FORWARD"), ("security", "FORWARD"))
_OUTPUT = (("raw", "OUTPUT"), ("mangle", "OUTPUT"), ("nat", "OUTPUT"), ("filter", "OUTPUT"), ("security", "OUTPUT"))
_POSTROUTING = (("mangle", "POSTROUTING"), ("nat", "POSTROUTING"))

_BUILTIN_NAMES = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
_NEW = "-m conntrack --ctstate NEW "
# kube-proxy's and kubelet's jumps from built-in chains (FORMATS.md 2.1), in the order they
# end up in the chain (each is inserted at the top, so the last inserted comes first)
_IMPLIED_JUMPS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("filter", "INPUT"): (
        ("KUBE-FIREWALL", ""),
        ("KUBE-PROXY-FIREWALL", _NEW + '-m comment --comment "kubernetes load balancer firewall"'),
        ("KUBE-NODEPORTS", '-m comment --comment "kubernetes health check service ports"'),
        ("KUBE-EXTERNAL-SERVICES", _NEW + '-m comment --comment "kubernetes externally-visible service portals"'),
    ),
    ("filter", "FORWARD"): (
        ("KUBE-PROXY-FIREWALL", _NEW + '-m comment --comment "kubernetes load balancer firewall"'),
        ("KUBE-FORWARD", '-m comment --comment "kubernetes forwarding rules"'),
        ("KUBE-SERVICES", _NEW + '-m comment --comment "kubernetes service portals"'),
        ("KUBE-EXTERNAL-SERVICES", _NEW + '-m comment --comment "kubernetes externally-visible service portals"'),
    ),
    ("filter", "OUTPUT"): (
        ("KUBE-FIREWALL", ""),
        ("KUBE-PROXY-FIREWALL", _NEW + '-m comment --comment "kubernetes load balancer firewall"'),
        ("KUBE-SERVICES", _NEW + '-m comment --comment "kubernetes service portals"'),
    ),
    ("nat", "PREROUTING"): (("KUBE-SERVICES", '-m comment --comment "kubernetes service portals"'),),
    ("nat", "OUTPUT"): (("KUBE-SERVICES", '-m comment --comment "kubernetes service portals"'),),
    ("nat", "POSTROUTING"): (("KUBE-POSTROUTING", '-m comment --comment "kubernetes postrouting rules"'),),
}
_IMPLIED_NOTE = "implied: kube-proxy inserts this jump; the dump has none"
_RESTORE_NOTE = (
    "restore input (no jumps from built-in chains): kube-proxy's jumps are implied and marked on the path; "
    "missing built-in chains are empty with policy ACCEPT"
)

_CT_STATES = {"NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"}
_NON_TERMINATING = {"LOG", "NFLOG", "TRACE"}
_DNAT_FLAGS = {"--random", "--persistent", "--random-fully"}
#: a chain shorter than this is scanned whole; longer ones are indexed by destination and port
_INDEX_MIN = 32
_QUOTED = re.compile(r'"[^"]*"')
_DST_OPT = re.compile(r"(?:^|\s)(!\s+)?(?:-d|--destination)\s+(\S+)")
_DPORT_OPT = re.compile(r"(?:^|\s)(!\s+)?(?:--dport|--destination-port)\s+(\S+)")

#: what walking a chain gives back for each branch: (state, outcome, reason for unknown)
_Out = tuple[State, str, str]
_Key = tuple[str | None, int | None]


class _Chain:
    """A chain's rules as the tracer reads them: (line, text, note), plus a lazy index."""

    __slots__ = ("index", "name", "policy", "rules", "table")

    def __init__(self, table: str, name: str, policy: str | None, rules: list[tuple[int, str, str]]) -> None:
        self.table = table
        self.name = name
        self.policy = policy
        self.rules = rules
        self.index: dict[_Key, list[int]] | None = None

    def candidates(self, dst: str, dport: int) -> Iterable[int]:
        """Positions of the rules that can match a packet to dst:dport, in order.

        Only a plain `-d HOST` or `--dport N` narrows a rule down; every other rule is a
        candidate, so skipping never changes a result.
        """
        if len(self.rules) < _INDEX_MIN:
            return range(len(self.rules))
        if self.index is None:
            self.index = _build_index(self.rules)
        lists = [self.index.get(k) for k in ((dst, dport), (dst, None), (None, dport), (None, None))]
        present = [x for x in lists if x]
        if len(present) == 1:
            return present[0]
        return heapq.merge(*present)


def _build_index(rules: list[tuple[int, str, str]]) -> dict[_Key, list[int]]:
    index: dict[_Key, list[int]] = {}
    for pos, (_, text, _) in enumerate(rules):
        plain = _QUOTED.sub('""', text) if '"' in text else text
        dst: str | None = None
        dport: int | None = None
        found = _DST_OPT.findall(plain)
        if len(found) == 1 and not found[0][0]:
            address, _, length = found[0][1].partition("/")
            if not length or length in ("32", "128"):
                dst = canonical_ip(address)
        ports = _DPORT_OPT.findall(plain)
        if len(ports) == 1 and not ports[0][0] and ports[0][1].isdigit():
            dport = int(ports[0][1])
        index.setdefault((dst, dport), []).append(pos)
    return index


class IptablesTracer:
    """Traces packets through one node's iptables-save dumps (one per family)."""

    mode = ProxyMode.IPTABLES

    def __init__(
        self, dumps: Sequence[IptablesDump], local_addresses: Iterable[str] = (), *, imply_jumps: bool = True
    ) -> None:
        self.dumps = {IPFamily.IPV6 if d.ipv6 else IPFamily.IPV4: d for d in dumps}
        self.local = LocalAddresses(local_addresses)
        self.imply_jumps = imply_jumps
        self._chains: dict[tuple[IPFamily, str, str], _Chain | None] = {}
        self._facts: dict[tuple[IPFamily, str, str, int], Facts] = {}
        self._implied: dict[IPFamily, str] = {}

    # -- rules ---------------------------------------------------------------------------------

    def _chain(self, family: IPFamily, table: str, name: str) -> _Chain | None:
        key = (family, table, name)
        if key in self._chains:
            return self._chains[key]
        dump = self.dumps[family]
        found = dump.chain(table, name)
        chain: _Chain | None = None
        builtin = name in _BUILTIN_NAMES
        if found is None and builtin and table in dump.tables and self.imply_jumps and _restore_input(dump):
            # restore input may leave the built-in chains out: they exist, empty, policy ACCEPT
            self._implied[family] = _RESTORE_NOTE
            chain = _Chain(table, name, "ACCEPT", self._implied_rules(family, table, name, []))
        elif found is not None:
            rules = [(line, text, "") for line, text in found.lines]
            if builtin and self.imply_jumps:
                rules = self._implied_rules(family, table, name, rules) + rules
            chain = _Chain(table, name, found.policy or ("ACCEPT" if builtin else None), rules)
        self._chains[key] = chain
        return chain

    def _implied_rules(
        self, family: IPFamily, table: str, name: str, rules: list[tuple[int, str, str]]
    ) -> list[tuple[int, str, str]]:
        dump = self.dumps[family]
        implied: list[tuple[int, str, str]] = []
        if not _restore_input(dump):
            return implied
        for target, matches in _IMPLIED_JUMPS.get((table, name), ()):
            if dump.chain(table, target) is None:
                continue
            text = f"-A {name} {matches} -j {target}".replace("  ", " ")
            implied.append((0, text, _IMPLIED_NOTE))
            self._implied[family] = _RESTORE_NOTE
        return implied

    def _read(self, family: IPFamily, chain: _Chain, pos: int) -> Facts:
        key = (family, chain.table, chain.name, pos)
        facts = self._facts.get(key)
        if facts is None:
            line, text, _ = chain.rules[pos]
            prefix = ""
            if chain.name.startswith("KUBE-SEP-"):
                prefix = "SEP"
            elif chain.name.startswith(("KUBE-SVC-", "KUBE-SVL-")):
                prefix = "SVC"
            elif chain.name == "KUBE-SERVICES":
                prefix = "SERVICES"
            facts = self._facts[key] = read_facts(text, line, chain.table, self.dumps[family].source, prefix)
        return facts

    # -- the trace -----------------------------------------------------------------------------

    def trace(self, packet: Packet) -> TraceResult:
        """Every branch of `packet` through the dump of its family."""
        family = packet.family
        if family not in self.dumps:
            state = State(packet)
            branch = state.branch(Verdict.UNKNOWN, reason=f"no {family.value} iptables-save dump to trace")
            return TraceResult(packet, self.mode, (branch,))
        done: list[Branch] = []
        first = _OUTPUT if packet.hook is Hook.OUTPUT else _PREROUTING
        alive = self._stages(family, packet, [State(packet)], first, done)
        for state in alive:
            local = state.dst in self.local
            if packet.hook is Hook.OUTPUT:
                after = self._stages(family, packet, [state], _POSTROUTING, done)
                if local:
                    after = self._stages(family, packet, after, _INPUT, done)
            else:
                after = self._stages(family, packet, [state], _INPUT if local else _FORWARD, done)
                if not local:
                    after = self._stages(family, packet, after, _POSTROUTING, done)
            for s in after:
                verdict = Verdict.DNAT if s.dnat is not None else Verdict.ACCEPT
                done.append(s.branch(verdict, delivery="local" if local else "forward"))
        notes: tuple[str, ...] = (self._implied[family],) if family in self._implied else ()
        if not self.local.addresses:
            notes += ("no node addresses given: only loopback counts as local",)
        return TraceResult(packet, self.mode, tuple(done), notes)

    def _stages(
        self,
        family: IPFamily,
        packet: Packet,
        states: list[State],
        stages: Sequence[tuple[str, str]],
        done: list[Branch],
    ) -> list[State]:
        """Run `states` through built-in chains in order; finished branches go to `done`."""
        for table, name in stages:
            chain = self._chain(family, table, name)
            if chain is None:
                continue
            alive: list[State] = []
            for state in states:
                for s, outcome, reason in self._walk(family, packet, chain, state, 0):
                    if outcome == "return":
                        policy = chain.policy or "ACCEPT"
                        step = Step(table, name, 0, f"policy {policy}", "chain policy", self.dumps[family].source)
                        s.step(step)
                        if table in ("filter", "security") or policy != "ACCEPT":
                            s.deciding = step
                        outcome = "accept" if policy == "ACCEPT" else "drop" if policy == "DROP" else "unknown"
                        reason = reason or f"chain policy {policy}"
                    settle(s, outcome, reason, alive, done)
            states = alive
        return states

    def _walk(self, family: IPFamily, packet: Packet, chain: _Chain, state: State, depth: int) -> list[_Out]:
        """Every branch of `state` through one chain: (state, outcome, reason). Outcomes:
        "return" (fell off the end or RETURN), "accept", "drop", "reject", "dnat", "unknown"."""
        if depth > MAX_DEPTH:
            return [(state, "unknown", f"jumps nest deeper than {MAX_DEPTH} at {chain.table} {chain.name}")]
        source = self.dumps[family].source
        results: list[_Out] = []
        candidates = list(chain.candidates(canonical_ip(state.dst), state.dport))
        work: list[tuple[State, int]] = [(state, 0)]
        while work:
            s, i = work.pop()
            while True:
                if i >= len(candidates):
                    results.append((s, "return", ""))
                    break
                pos = candidates[i]
                line, text, note = chain.rules[pos]
                facts = self._read(family, chain, pos)
                matched = self._match(facts, s, packet)
                if matched is False:
                    i += 1
                    continue
                step = Step(chain.table, chain.name, line, text, note, source)
                if isinstance(matched, str):
                    s.step(step)
                    s.deciding = step
                    results.append((s, "unknown", f"{matched} in {chain.table} {chain.name}: {text}"))
                    break
                if isinstance(matched, float):
                    if matched < 1.0:
                        work.append((s.split(1.0 - matched), i + 1))
                        s = s.split(matched)
                    step = Step(chain.table, chain.name, line, text, f"probability {matched:.6g} taken", source)
                outcome = self._target(family, packet, chain, facts, s, step, depth)
                if outcome is None:
                    i += 1
                    continue
                if isinstance(outcome, list):
                    for s2, out, reason in outcome:
                        if out == "return" and not facts.goto:
                            work.append((s2, i + 1))
                        else:
                            results.append((s2, out, reason))
                    break
                results.append((s, outcome[0], outcome[1]))
                break
        return results

    def _target(
        self, family: IPFamily, packet: Packet, chain: _Chain, f: Facts, s: State, step: Step, depth: int
    ) -> tuple[str, str] | list[_Out] | None:
        """Apply a matched rule's target: None to go on with the next rule, (outcome, reason)
        to end the chain, or the branches of a jump/goto."""
        target = f.target
        if target is None:
            return None
        if target in ("ACCEPT", "DROP", "REJECT"):
            s.step(step)
            s.deciding = step
            return (target.lower(), "")
        if target == "RETURN":
            s.step(step)
            return ("return", "")
        if target == "DNAT":
            return self._dnat(f, s, step)
        if target == "MARK":
            mark = _apply_mark(s.mark, f.target_args)
            if mark is None:
                s.step(step)
                return ("unknown", f"MARK target kp-audit does not evaluate: {step.rule}")
            s.mark = mark
            s.step(step)
            return None
        if target in ("MASQUERADE", "SNAT"):
            s.step(step)
            s.masquerade = True
            return ("accept", "")
        if target in _NON_TERMINATING:
            s.step(step)
            return None
        sub = self._chain(family, chain.table, target)
        if sub is None:
            s.step(step)
            s.deciding = step
            return ("unknown", f"target {target} kp-audit does not evaluate: {step.rule}")
        s.step(step)
        return self._walk(family, packet, sub, s, depth + 1)

    def _dnat(self, f: Facts, s: State, step: Step) -> tuple[str, str]:
        s.step(step)
        extra = [a for a in f.target_args if a not in _DNAT_FLAGS]
        destination = f.to_destination or ""
        parsed = host_port(destination)
        if parsed is None and destination and ":" not in destination.strip("[]") and "-" not in destination:
            parsed = (destination.strip("[]"), s.dport)  # an address without a port keeps the port
        if parsed is None or extra:
            s.deciding = step
            return ("unknown", f"DNAT kp-audit does not evaluate: {step.rule}")
        address, port = canonical_ip(parsed[0]), parsed[1]
        s.dst, s.dport, s.dnat = address, port, (address, port)
        s.dnat_step = step
        if f.recent is not None and f.recent[0] == "set" and s.affinity is None:
            s.affinity = f.recent[2]
        return ("dnat", "")

    def _match(self, f: Facts, s: State, packet: Packet) -> bool | float | str:
        """False (no match), True, a probability (a random match), or why it cannot be told.

        A rule matches when all its conditions do: one condition known to fail settles it,
        whatever the others are; otherwise an unevaluable one makes the rule unknown.
        """
        c = f.conditions
        unknown: list[str] = []
        if c & PROTO:
            name = f.protocol if f.protocol in ("all", "0") else protocol_name(f.protocol)
            if name is None:
                unknown.append(f"protocol {f.protocol}")
            elif name not in ("all", "0") and name != packet.protocol:
                return False
        if c & DPORT and f.dport != s.dport:
            return False
        for bit, address, net, negated in ((DST, s.dst, f.dst, f.dst_negated), (SRC, s.src, f.src, f.src_negated)):
            if c & bit:
                inside = in_network(address, net or "")
                if inside is None:
                    unknown.append(f"address {net}")
                elif inside == negated:
                    return False
        if c & RECENT and f.recent is not None:
            op, _, seconds = f.recent
            if op == "rcheck":
                s.affinity = seconds  # a first packet: no entry yet, so no match
                return False
        for bit, address, kind in ((DST_TYPE, s.dst, f.dst_type), (SRC_TYPE, s.src, f.src_type)):
            if c & bit:
                if kind != "LOCAL":
                    unknown.append(f"addrtype {kind}")
                elif (address in self.local) is False:
                    return False
        if c & CTSTATE:
            state = _ctstate(f.ctstate or "", s)
            if state is None:
                unknown.append(f"ctstate {f.ctstate}")
            elif not state:
                return False
        if c & MARK:
            marked = _mark_match(f.mark or "", s.mark)
            if marked is None:
                unknown.append(f"mark {f.mark}")
            elif not marked:
                return False
        if c & IN_IFACE:
            iface = _iface_match(f.in_iface or "", packet.in_iface)
            if iface is None:
                unknown.append(f"input interface {f.in_iface} (the packet's is not known)")
            elif not iface:
                return False
        if c & UNKNOWN:
            unknown += f.unknown
        if unknown:
            return "cannot evaluate " + ", ".join(unknown)
        if c & PROBABILITY and f.probability is not None:
            return max(0.0, min(1.0, f.probability))
        return True


def _restore_input(dump: IptablesDump) -> bool:
    """No built-in chain jumps to any of kube-proxy's chains: restore input, not a node's dump.

    On a node kube-proxy's jumps are there; if some are missing there, that is the node's
    state and is traced as it is.
    """
    for (table, name), jumps in _IMPLIED_JUMPS.items():
        chain = dump.chain(table, name)
        targets = {target for target, _ in jumps}
        for _, text in chain.lines if chain is not None else ():
            if text.rsplit(" -j ", 1)[-1].split(" ", 1)[0] in targets:
                return False
    return True


def _ctstate(spec: str, s: State) -> bool | None:
    negated = spec.startswith("!")
    states = set(spec.lstrip("!").split(","))
    if not states <= _CT_STATES:
        return None
    current = {"NEW"} | ({"DNAT"} if s.dnat is not None else set())
    return bool(states & current) != negated


def _mark_match(spec: str, mark: int) -> bool | None:
    negated = spec.startswith("!")
    value_text, _, mask_text = spec.lstrip("!").partition("/")
    try:
        value = int(value_text, 0)
        mask = int(mask_text, 0) if mask_text else 0xFFFFFFFF
    except ValueError:
        return None
    return ((mark & mask) == value) != negated


def _iface_match(spec: str, iface: str | None) -> bool | None:
    if iface is None:
        return None
    negated = spec.startswith("!")
    name = spec.lstrip("!")
    found = iface.startswith(name[:-1]) if name.endswith("+") else iface == name
    return found != negated


def _apply_mark(mark: int, args: tuple[str, ...]) -> int | None:
    """`--set-xmark V/M`, `--set-mark V[/M]`, `--or-mark V`, `--xor-mark V`, `--and-mark V`."""
    if len(args) != 2:
        return None
    name, spec = args
    value_text, _, mask_text = spec.partition("/")
    try:
        value = int(value_text, 0)
        mask = int(mask_text, 0) if mask_text else 0xFFFFFFFF
    except ValueError:
        return None
    if name == "--set-xmark":
        return (mark & ~mask & 0xFFFFFFFF) ^ value
    if name == "--set-mark":
        return (mark & ~mask & 0xFFFFFFFF) | value
    if name == "--or-mark":
        return mark | value
    if name == "--xor-mark":
        return mark ^ value
    if name == "--and-mark":
        return mark & value
    return None


__all__ = ["IptablesTracer"]
