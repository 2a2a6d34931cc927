"""What one iptables rule says, in the vocabulary kube-proxy uses.

`facts_from_rule` reads a parsed `Rule` and is the definition. `read_facts` first tries
exact, anchored patterns for the rule shapes kube-proxy writes by the ten thousand
(endpoint picks, endpoint DNATs, service dispatch), in both kube-proxy's spelling and
iptables-save's, and falls back to the parser for everything else. A pattern matches the
whole line or not at all, so a rule with one extra match never takes the fast path;
tests check that both paths agree on every rule of every fixture.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from auditor.naming import canonical_address
from auditor.parse.iptables_save import Rule, parse_rule

# Conditions a rule puts on a packet, as bits, so callers can ask "only these?" cheaply.
SRC = 1
DST = 2
PROTO = 4
DPORT = 8
PROBABILITY = 16
RECENT = 32
SRC_TYPE = 64
DST_TYPE = 128
CTSTATE = 256
NFACCT = 512
MARK = 1024
IN_IFACE = 2048
UNKNOWN = 4096


class Facts(NamedTuple):
    """The packet conditions and action of one rule; unset conditions are None."""

    line: int
    text: str
    target: str | None
    conditions: int = 0
    goto: bool = False
    src: str | None = None
    src_negated: bool = False
    dst: str | None = None
    dst_negated: bool = False
    protocol: str | None = None
    dport: int | None = None
    comment: str | None = None
    probability: float | None = None
    #: ("rcheck" | "set", list name, seconds or None)
    recent: tuple[str, str, int | None] | None = None
    src_type: str | None = None
    dst_type: str | None = None
    #: conntrack states, "!" in front when negated
    ctstate: str | None = None
    nfacct: str | None = None
    #: mark match value, "!" in front when negated
    mark: str | None = None
    #: input interface, "!" in front when negated ("veth+" style prefixes kept)
    in_iface: str | None = None
    to_destination: str | None = None
    #: target options other than --to-destination, verbatim
    target_args: tuple[str, ...] = ()
    #: matches and options kp-audit does not model, verbatim
    unknown: tuple[str, ...] = ()


_DEFAULT_MASKS = {"255.255.255.255", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
_L4 = {"tcp", "udp", "sctp"}


def facts_from_rule(rule: Rule) -> Facts:
    """The definition: every option of a parsed rule, sorted into facts or `unknown`."""
    conditions = 0
    unknown: list[str] = []
    values: dict[str, object] = {}
    if rule.src is not None:
        conditions |= SRC
        values["src"], values["src_negated"] = canonical_address(rule.src), rule.src_negated
    if rule.dst is not None:
        conditions |= DST
        values["dst"], values["dst_negated"] = canonical_address(rule.dst), rule.dst_negated
    if rule.protocol is not None:
        if rule.protocol_negated:
            unknown.append(f"! -p {rule.protocol}")
        else:
            conditions |= PROTO
            values["protocol"] = rule.protocol.lower()
    if rule.in_interface is not None:
        conditions |= IN_IFACE
        values["in_iface"] = ("!" if rule.in_interface_negated else "") + rule.in_interface
    if rule.out_interface is not None:
        unknown.append(("! " if rule.out_interface_negated else "") + f"-o {rule.out_interface}")
    unknown += rule.other
    recent: dict[str, object] = {}
    for opt in rule.options:
        bit = _read_option(opt.module, opt.name, opt.negated, opt.args, values, recent)
        if bit is None:
            unknown.append(f"-m {opt.module} {'! ' if opt.negated else ''}{opt.name} {opt.value}".rstrip())
        else:
            conditions |= bit
    if recent:
        op, name = recent.get("op"), recent.get("name")
        if op is None or name is None or recent.get("bad"):
            unknown.append(f"-m recent {recent}")
        else:
            conditions |= RECENT
            seconds = recent.get("seconds")
            values["recent"] = (op, name, seconds)
    for module in rule.modules:
        if module not in _KNOWN_MODULES:
            unknown.append(f"-m {module}")
    target_args: list[str] = []
    for opt in rule.target_options:
        if rule.target == "DNAT" and opt.name == "--to-destination" and len(opt.args) == 1:
            values["to_destination"] = opt.args[0]
        else:
            target_args += [opt.name, *opt.args]
    if unknown:
        conditions |= UNKNOWN
    return Facts(
        line=rule.line,
        text=rule.text,
        target=rule.target,
        conditions=conditions,
        goto=rule.goto,
        target_args=tuple(target_args),
        unknown=tuple(unknown),
        **values,  # type: ignore[arg-type]
    )


_KNOWN_MODULES = {"comment", "tcp", "udp", "sctp", "statistic", "recent", "addrtype", "conntrack", "nfacct", "mark"}


def _read_option(
    module: str, name: str, negated: bool, args: tuple[str, ...], values: dict[str, object], recent: dict[str, object]
) -> int | None:
    """Store one match option into `values`; its condition bit, 0 for no condition, None if unknown."""
    arg = args[0] if len(args) == 1 else None
    if module == "comment" and name == "--comment" and arg is not None and not negated:
        values["comment"] = arg
        return 0
    if (
        module in _L4
        and name in ("--dport", "--destination-port")
        and arg is not None
        and arg.isdigit()
        and not negated
    ):
        values["dport"] = int(arg)
        return DPORT
    if module == "statistic" and not negated:
        if name == "--mode" and arg == "random":
            return 0
        if name == "--probability" and arg is not None:
            try:
                values["probability"] = float(arg)
            except ValueError:
                return None
            return PROBABILITY
        return None
    if module == "recent" and not negated:
        if name in ("--rcheck", "--set") and not args:
            recent["op"] = name[2:]
        elif name == "--name" and arg is not None:
            recent["name"] = arg
        elif name == "--seconds" and arg is not None and arg.isdigit():
            recent["seconds"] = int(arg)
        elif (name == "--mask" and arg in _DEFAULT_MASKS) or name in ("--reap", "--rsource"):
            pass
        else:
            recent["bad"] = True
        return 0
    if module == "addrtype" and name in ("--src-type", "--dst-type") and arg is not None and not negated:
        values["src_type" if name == "--src-type" else "dst_type"] = arg
        return SRC_TYPE if name == "--src-type" else DST_TYPE
    if module == "conntrack" and name == "--ctstate" and arg is not None:
        values["ctstate"] = ("!" if negated else "") + arg
        return CTSTATE
    if module == "nfacct" and name == "--nfacct-name" and arg is not None and not negated:
        values["nfacct"] = arg
        return NFACCT
    if module == "mark" and name == "--mark" and arg is not None:
        values["mark"] = ("!" if negated else "") + arg
        return MARK
    return None


# --- fast paths: exact shapes kube-proxy writes in bulk -------------------------------------

_COMMENT = r'(?: -m comment --comment (?:"([^"\\]*)"|([^\s"]+)))?'
_IP = r"([0-9a-fA-F.:]+)"
_HOST = r"(?:/(?:32|128))"
_MASK = r"--mask (?:255\.255\.255\.255|ffff(?::ffff){7})"


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(r"-A \S+" + pattern)


# (pattern, builder) per shape; each builder maps match groups to Facts fields.
#: an endpoint pick exactly: groups 3 (probability, or None) and 4 (the KUBE-SEP chain); see `pick_of`
PICK = _compile(_COMMENT + r"(?: -m statistic --mode random --probability ([0-9.]+))? -j (KUBE-SEP-[A-Z0-9]+)")
_STICKY_KP = _compile(_COMMENT + r" -m recent --name (\S+) --rcheck --seconds (\d+) --reap -j (KUBE-SEP-[A-Z0-9]+)")
_STICKY_SAVE = _compile(
    _COMMENT
    + r" -m recent --rcheck --seconds (\d+) --reap --name (\S+) "
    + _MASK
    + r" --rsource -j (KUBE-SEP-[A-Z0-9]+)"
)
_HAIRPIN_KP = _compile(_COMMENT + r" -s " + _IP + r" -j KUBE-MARK-MASQ")
_HAIRPIN_SAVE = _compile(r" -s " + _IP + _HOST + _COMMENT + r" -j KUBE-MARK-MASQ")
_DNAT_KP = _compile(
    _COMMENT + r"(?: -m recent --name (\S+) --set)? -m (tcp|udp|sctp) -p \4 -j DNAT --to-destination (\S+)"
)
_DNAT_SAVE = _compile(
    r" -p (tcp|udp|sctp)"
    + _COMMENT
    + r"(?: -m recent --set --name (\S+) "
    + _MASK
    + r" --rsource)? -m \1 -j DNAT --to-destination (\S+)"
)
_DISPATCH_KP = _compile(_COMMENT + r" -m (tcp|udp|sctp) -p \3 -d " + _IP + r" --dport (\d+) -j (KUBE-[A-Z]+-[A-Z0-9]+)")
_DISPATCH_SAVE = _compile(
    r" -d " + _IP + _HOST + r" -p (tcp|udp|sctp)" + _COMMENT + r" -m \2 --dport (\d+) -j (KUBE-[A-Z]+-[A-Z0-9]+)"
)
_MASQ_KP = _compile(
    _COMMENT + r" -m (tcp|udp|sctp) -p \3 -d " + _IP + r" --dport (\d+)(?: (!) -s (\S+))? -j KUBE-MARK-MASQ"
)
_MASQ_SAVE = _compile(
    r"(?: (!) -s (\S+))? -d "
    + _IP
    + _HOST
    + r" -p (tcp|udp|sctp)"
    + _COMMENT
    + r" -m \4 --dport (\d+) -j KUBE-MARK-MASQ"
)


def _fast(text: str, line: int, prefix: str) -> Facts | None:
    """Facts for the bulk shapes of the chain family `prefix`, or None to use the parser.

    iptables-save's spelling is tried first (that is what a node prints), then kube-proxy's.
    """
    if prefix == "SEP":
        if " -j DNAT " in text:
            m = _DNAT_SAVE.fullmatch(text)
            if m:
                recent = ("set", m[4], None) if m[4] else None
                return Facts(
                    line,
                    text,
                    "DNAT",
                    PROTO | (RECENT if recent else 0),
                    protocol=m[1],
                    comment=m[2] or m[3],
                    recent=recent,
                    to_destination=m[5],
                )
            m = _DNAT_KP.fullmatch(text)
            if m:
                recent = ("set", m[3], None) if m[3] else None
                return Facts(
                    line,
                    text,
                    "DNAT",
                    PROTO | (RECENT if recent else 0),
                    protocol=m[4],
                    comment=m[1] or m[2],
                    recent=recent,
                    to_destination=m[5],
                )
            return None
        m = _HAIRPIN_SAVE.fullmatch(text)
        if m:
            return Facts(line, text, "KUBE-MARK-MASQ", SRC, src=m[1], comment=m[2] or m[3])
        m = _HAIRPIN_KP.fullmatch(text)
        if m:
            return Facts(line, text, "KUBE-MARK-MASQ", SRC, src=m[3], comment=m[1] or m[2])
        return None
    if prefix == "SVC":
        if text.endswith(" -j KUBE-MARK-MASQ"):
            m = _MASQ_SAVE.fullmatch(text)
            if m:
                return _masq(text, line, m[5] or m[6], m[4], m[3], m[7], m[1], m[2])
            m = _MASQ_KP.fullmatch(text)
            if m:
                return _masq(text, line, m[1] or m[2], m[3], m[4], m[5], m[6], m[7])
            return None
        if " -m recent " in text:
            m = _STICKY_SAVE.fullmatch(text)
            if m:
                return Facts(line, text, m[5], RECENT, comment=m[1] or m[2], recent=("rcheck", m[4], int(m[3])))
            m = _STICKY_KP.fullmatch(text)
            if m:
                return Facts(line, text, m[5], RECENT, comment=m[1] or m[2], recent=("rcheck", m[3], int(m[4])))
            return None
        m = PICK.fullmatch(text)
        if m:
            if m[3] is None:
                return Facts(line, text, m[4], 0, comment=m[1] or m[2])
            return Facts(line, text, m[4], PROBABILITY, comment=m[1] or m[2], probability=float(m[3]))
        return None
    if prefix == "SERVICES":
        m = _DISPATCH_SAVE.fullmatch(text)
        if m:
            return Facts(
                line, text, m[6], PROTO | DST | DPORT, comment=m[3] or m[4], protocol=m[2], dst=m[1], dport=int(m[5])
            )
        m = _DISPATCH_KP.fullmatch(text)
        if m:
            return Facts(
                line, text, m[6], PROTO | DST | DPORT, comment=m[1] or m[2], protocol=m[3], dst=m[4], dport=int(m[5])
            )
    return None


def _masq(
    text: str, line: int, comment: str | None, proto: str, dst: str, dport: str, bang: str | None, src: str | None
) -> Facts:
    conditions = PROTO | DST | DPORT | (SRC if src else 0)
    return Facts(
        line,
        text,
        "KUBE-MARK-MASQ",
        conditions,
        comment=comment,
        protocol=proto,
        dst=dst,
        dport=int(dport),
        src=canonical_address(src) if src else None,
        src_negated=bang is not None,
    )


def pick_of(text: str) -> tuple[float | None, str] | None:
    """(probability or None, endpoint chain) when the rule is exactly an endpoint pick.

    Same meaning as `facts_from_rule` giving target KUBE-SEP-* with no condition but the
    probability; None means "not that shape", never "no match".
    """
    if text.endswith(" -j KUBE-MARK-MASQ"):  # the masquerade rule that heads every service chain
        return None
    m = PICK.fullmatch(text)
    if m is None:
        return None
    return (None if m[3] is None else float(m[3])), m[4]


def host_port(destination: str) -> tuple[str, int] | None:
    """'10.0.0.1:80' or '[fd00::1]:80' as (address, port); None for ranges or no port."""
    host, sep, port = destination.rpartition(":")
    if not sep or not port.isdigit() or not host or "-" in host:
        return None
    if host[0] == "[":
        host = host[1:-1]
    return host, int(port)


def endpoint_of(texts: Sequence[str]) -> tuple[str, int] | None:
    """(address, port) when a KUBE-SEP chain is exactly kube-proxy's two rules (hairpin
    masquerade, then DNAT to one address:port); None otherwise (use `facts_from_rule`)."""
    if len(texts) != 2:
        return None
    first, second = texts
    if not (_HAIRPIN_SAVE.fullmatch(first) or _HAIRPIN_KP.fullmatch(first)):
        return None
    m = _DNAT_SAVE.fullmatch(second) or _DNAT_KP.fullmatch(second)
    return None if m is None else host_port(m[5])


#: a KUBE-SEP DNAT as iptables-save prints it: protocol, the comment words (with their
#: " -m comment --comment"), IPv4 address or IPv6 address, port
_SEP_DNAT_SAVE = re.compile(
    r"-A \S+ -p (tcp|udp|sctp)( -m comment --comment (?:\"[^\"\\]*\"|[^\s\"]+))?(?: -m recent --set --name \S+ "
    + _MASK
    + r" --rsource)? -m \1 -j DNAT --to-destination (?:([0-9.]+)|\[([0-9a-fA-F:.]+)\]):(\d+)"
)


def endpoints_in_bulk(chains: Mapping[str, Any]) -> dict[str, tuple[str, int]]:
    """`endpoint_of` for every KUBE-SEP chain at once (a dump can hold tens of thousands);
    chains of any other shape are left out for the careful path. `chains` maps names to
    objects with `.texts` (the rules' text).

    The DNAT is read with one pattern; the hairpin rule before it must then be exactly
    the text iptables-save prints for that address and comment, which a string comparison
    checks far faster than a second pattern would. Other spellings take `endpoint_of`.
    """
    dnat_save = _SEP_DNAT_SAVE.fullmatch
    found: dict[str, tuple[str, int]] = {}
    for name, chain in chains.items():
        texts = chain.texts
        if len(texts) != 2 or not name.startswith("KUBE-SEP-"):
            continue
        m = dnat_save(texts[1])
        if m is not None:
            address = m[3] or m[4]
            host = "/32" if m[3] else "/128"
            if texts[0] == f"-A {name} -s {address}{host}{m[2] or ''} -j KUBE-MARK-MASQ":
                found[name] = (address, int(m[5]))
                continue
        destination = endpoint_of(texts)
        if destination is not None:
            found[name] = destination
    return found


def read_facts(text: str, line: int, table: str, source: str, prefix: str = "") -> Facts:
    """Facts of one rule line; `prefix` names the chain family ("SEP", "SVC", "SERVICES")."""
    if prefix:
        fast = _fast(text, line, prefix)
        if fast is not None:
            return fast
    return facts_from_rule(parse_rule(text, table, line, source))
