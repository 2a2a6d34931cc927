"""What one rule of a kube-proxy nftables table says, in the vocabulary kube-proxy uses.

`read_facts` sorts each expression of an `nft -j` rule into conditions (what it tests) and
actions (what it does); anything else lands in `unknown`, so the walk can tell what it does
not understand instead of guessing. A fast path recognises, by exact JSON shape, the rules
kube-proxy writes by the ten thousand; tests check that it agrees with the careful reader.
"""

from __future__ import annotations

from typing import Any

from auditor.parse.nft_json import NftRule, Prefix, expr_text

#: key shapes of the dispatch-map lookups (`ip daddr . meta l4proto . th dport`, `meta l4proto . th dport`)
ADDR_KEY = "daddr . l4proto . dport"
PORT_KEY = "l4proto . dport"

# What a rule tests (conditions) and does (actions), as bits, so a shape check is one compare.
DADDR, SADDR, DPORT, L4PROTO, IIF, FIB_SADDR, FIB_DADDR, CTSTATE, MARK_TEST = (1 << i for i in range(9))
VERDICT, LOOKUP, NUMGEN, DNAT, UPDATE, MARK_OR, MARK_XOR, MASQ, REJECT = (1 << i for i in range(9))


class Facts:
    """The conditions and actions of one rule; anything else is listed in `unknown`.

    Attributes not set on an instance read as the class defaults below.
    """

    cond = 0
    acts = 0
    daddr: Any = None
    daddr_neg = False
    saddr: Any = None
    saddr_neg = False
    dport: int | None = None
    l4proto: str | None = None
    iif: str | None = None
    iif_neg = False
    ct_state: Any = None
    ct_neg = False
    mark_test: tuple[int, int] | None = None
    verdict: str | None = None
    target: str | None = None
    lookup: tuple[str, str] | None = None
    numgen: tuple[Any, Any, Any, Any] | None = None
    dnat: tuple[str, int] | None = None
    update: str | None = None
    mark: int | None = None
    unknown: tuple[str, ...] = ()


def read_facts(rule: NftRule, ipx: str, *, fast: bool = True) -> Facts:
    """Sort each expression of `rule` into facts; `ipx` is the table's "ip" or "ip6".

    With `fast`, the shapes kube-proxy writes by the ten thousand (endpoint chains' two
    rules, the numgen dispatch) are recognised by exact comparison first; tests check that
    both paths give the same facts for every rule of every fixture.
    """
    if fast and len(rule.expr) <= 2:
        quick = _fast_facts(rule.expr, ipx)
        if quick is not None:
            return quick
    facts = Facts()
    unknown: list[str] | None = None
    for expr in rule.expr:
        ok = False
        if type(expr) is dict and len(expr) == 1:
            key, body = next(iter(expr.items()))
            if key == "match":
                ok = type(body) is dict and _read_match(body, facts, ipx)
            elif key in ("jump", "goto"):
                ok = type(body) is dict and type(body.get("target")) is str and facts.verdict is None
                if ok:
                    facts.verdict, facts.target = key, body["target"]
                    facts.acts |= VERDICT
            elif key in ("drop", "accept", "return", "continue"):
                ok = facts.verdict is None
                if ok:
                    facts.verdict = key
                    facts.acts |= VERDICT
            elif key == "vmap":
                ok = type(body) is dict and _read_vmap(body, facts, ipx)
            elif key == "dnat":
                ok = type(body) is dict and _read_dnat(body, facts)
            elif key == "set":
                ok = type(body) is dict and _read_update(body, facts, ipx)
            elif key == "mangle":
                ok = type(body) is dict and _read_mangle(body, facts)
            elif key == "masquerade":
                ok = True
                facts.acts |= MASQ
            elif key == "reject":
                ok = True
                facts.acts |= REJECT
            elif key == "counter":
                ok = True  # counts packets, changes nothing
        if not ok:
            if unknown is None:
                unknown = []
            unknown.append(expr_text(expr))
    if unknown:
        facts.unknown = tuple(unknown)
    return facts


_SADDR = {ipx: {"payload": {"protocol": ipx, "field": "saddr"}} for ipx in ("ip", "ip6")}
_META_L4PROTO = {"meta": {"key": "l4proto"}}


def _fast_facts(expr: list[Any], ipx: str) -> Facts | None:
    """Facts of `ip saddr A jump C`, `meta l4proto P dnat to A:P` and `numgen ... vmap {...}`
    when the rule is exactly that; None sends it through the general reader."""
    first = expr[0]
    if type(first) is not dict or len(first) != 1:
        return None
    if len(expr) == 1:
        vmap = first.get("vmap")
        if type(vmap) is not dict or len(vmap) != 2:
            return None
        key, data = vmap.get("key"), vmap.get("data")
        if type(key) is not dict or len(key) != 1 or type(data) is not dict or len(data) != 1:
            return None
        gen, pairs = key.get("numgen"), data.get("set")
        if type(gen) is not dict or type(pairs) is not list:
            return None
        facts = Facts()
        facts.acts = NUMGEN
        facts.numgen = (gen.get("mode"), gen.get("mod"), gen.get("offset", 0), pairs)
        return facts
    match, second = first.get("match"), expr[1]
    if (
        type(match) is not dict
        or len(match) != 3
        or match.get("op") != "=="
        or type(second) is not dict
        or len(second) != 1
    ):
        return None
    left, right = match.get("left"), match.get("right")
    if type(right) is not str:
        return None
    jump = second.get("jump")
    if jump is not None:
        if left != _SADDR[ipx] or type(jump) is not dict or len(jump) != 1 or type(jump.get("target")) is not str:
            return None
        facts = Facts()
        facts.cond, facts.saddr = SADDR, right
        facts.acts, facts.verdict, facts.target = VERDICT, "jump", jump["target"]
        return facts
    dnat = second.get("dnat")
    if left != _META_L4PROTO or type(dnat) is not dict or len(dnat) != 2:
        return None
    addr, port = dnat.get("addr"), dnat.get("port")
    if type(addr) is not str or type(port) is not int:
        return None
    facts = Facts()
    facts.cond, facts.l4proto = L4PROTO, right
    facts.acts, facts.dnat = DNAT, (addr, port)
    return facts


def _address(right: Any) -> Any:
    """A match's right side as an address value: "10.0.0.1", "@set", Prefix, or a tuple (anonymous set)."""
    if type(right) is str:
        return right
    if type(right) is dict and len(right) == 1:
        key, body = next(iter(right.items()))
        if key == "prefix" and type(body) is dict and type(body.get("addr")) is str and type(body.get("len")) is int:
            return Prefix(body["addr"], body["len"])
        if key == "set" and type(body) is list:
            items = tuple(_address(v) for v in body)
            if all(type(v) is str or type(v) is Prefix for v in items):
                return items
    return None


def _read_match(body: dict[str, Any], f: Facts, ipx: str) -> bool:
    """`{"match": {"op": "==", "left": <expr>, "right": <value>}}` for the tests kube-proxy writes:
    ip/ip6 saddr and daddr, th/tcp/udp/sctp dport, meta l4proto, iifname, fib type local,
    ct state, and `meta mark & M == V`."""
    left, right, op = body.get("left"), body.get("right"), body.get("op", "==")
    if type(left) is not dict or len(left) != 1 or op not in ("==", "!=", "in"):
        return False
    kind, spec = next(iter(left.items()))
    negated = op == "!="
    if kind == "payload" and type(spec) is dict:
        proto, fld = spec.get("protocol"), spec.get("field")
        if proto == ipx and fld in ("daddr", "saddr") and op != "in":
            value = _address(right)
            if value is None:
                return False
            if fld == "daddr" and not f.cond & DADDR:
                f.daddr, f.daddr_neg = value, negated
                f.cond |= DADDR
                return True
            if fld == "saddr" and not f.cond & SADDR:
                f.saddr, f.saddr_neg = value, negated
                f.cond |= SADDR
                return True
            return False
        if (
            fld == "dport"
            and proto in ("th", "tcp", "udp", "sctp")
            and type(right) is int
            and op == "=="
            and not f.cond & DPORT
        ):
            f.dport = right
            f.cond |= DPORT
            return True
        return False
    if kind == "meta" and type(spec) is dict:
        key = spec.get("key")
        if key == "l4proto" and type(right) is str and op == "==" and not f.cond & L4PROTO:
            f.l4proto = right
            f.cond |= L4PROTO
            return True
        if key == "iifname" and type(right) is str and op != "in" and not f.cond & IIF:
            f.iif, f.iif_neg = right, negated
            f.cond |= IIF
            return True
        return False
    if kind == "fib" and type(spec) is dict and spec.get("result") == "type" and right == "local" and op == "==":
        flags = spec.get("flags")
        if flags == ["saddr"] or flags == "saddr":
            f.cond |= FIB_SADDR
            return True
        if flags == ["daddr"] or flags == "daddr":
            f.cond |= FIB_DADDR
            return True
        return False
    if (
        kind == "ct"
        and type(spec) is dict
        and spec.get("key") == "state"
        and "dir" not in spec
        and not f.cond & CTSTATE
    ):
        if type(right) is str or (type(right) is list and all(type(s) is str for s in right)):
            f.ct_state, f.ct_neg = right, negated
            f.cond |= CTSTATE
            return True
        return False
    mark_test = kind == "&" and type(spec) is list and len(spec) == 2 and spec[0] == {"meta": {"key": "mark"}}
    if mark_test and op == "==" and type(spec[1]) is int and type(right) is int:
        f.mark_test = (spec[1], right)
        f.cond |= MARK_TEST
        return True
    return False


def _key_shape(key: Any, ipx: str) -> str | None:
    """`ip daddr . meta l4proto . th dport` or `meta l4proto . th dport` (a vmap key)."""
    if type(key) is not dict or type(key.get("concat")) is not list:
        return None
    parts = key["concat"]
    names = []
    for part in parts:
        if part == {"meta": {"key": "l4proto"}}:
            names.append("l4proto")
        elif part == {"payload": {"protocol": "th", "field": "dport"}}:
            names.append("dport")
        elif part == {"payload": {"protocol": ipx, "field": "daddr"}}:
            names.append("daddr")
        else:
            return None
    return " . ".join(names)


def _read_vmap(body: dict[str, Any], f: Facts, ipx: str) -> bool:
    """`{"vmap": {"key": <concat>, "data": "@service-ips"}}` (a map lookup) or
    `{"vmap": {"key": {"numgen": {"mode": "random", "mod": 2, "offset": 0}},
    "data": {"set": [[0, {"goto": {"target": "endpoint-..."}}], [1, ...]]}}}`."""
    key, data = body.get("key"), body.get("data")
    if f.acts & (VERDICT | LOOKUP | NUMGEN):
        return False
    if type(data) is str and data.startswith("@"):
        shape = _key_shape(key, ipx)
        if shape is None:
            return False
        f.lookup = (shape, data[1:])
        f.acts |= LOOKUP
        return True
    if type(key) is dict and type(key.get("numgen")) is dict and type(data) is dict and type(data.get("set")) is list:
        gen = key["numgen"]
        f.numgen = (gen.get("mode"), gen.get("mod"), gen.get("offset", 0), data["set"])
        f.acts |= NUMGEN
        return True
    return False


def _read_dnat(body: dict[str, Any], f: Facts) -> bool:
    """`{"dnat": {"addr": "10.180.0.3", "port": 80}}` (IPv6 addresses without brackets)."""
    addr, port = body.get("addr"), body.get("port")
    extra = set(body) - {"addr", "port", "family"}
    if type(addr) is not str or type(port) is not int or extra or f.acts & DNAT:
        return False
    f.dnat = (addr, port)
    f.acts |= DNAT
    return True


def _read_update(body: dict[str, Any], f: Facts, ipx: str) -> bool:
    """`{"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}},
    "set": "@affinity-..."}}`: remember the client address in an affinity set."""
    name = body.get("set")
    if body.get("op") not in ("update", "add") or type(name) is not str or not name.startswith("@"):
        return False
    if body.get("elem") != {"payload": {"protocol": ipx, "field": "saddr"}} or f.acts & UPDATE:
        return False
    f.update = name[1:]
    f.acts |= UPDATE
    return True


def _read_mangle(body: dict[str, Any], f: Facts) -> bool:
    """`{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"|": [{"meta": {"key": "mark"}}, 16384]}}}`
    (`mark set mark or 0x4000`), or the same with "^" (`xor`)."""
    value = body.get("value")
    if body.get("key") != {"meta": {"key": "mark"}} or type(value) is not dict or len(value) != 1:
        return False
    op, args = next(iter(value.items()))
    if op not in ("|", "^") or type(args) is not list or len(args) != 2 or args[0] != {"meta": {"key": "mark"}}:
        return False
    if type(args[1]) is not int:
        return False
    f.mark = args[1]
    f.acts |= MARK_OR if op == "|" else MARK_XOR
    return True
