"""Read `nft -j list ruleset` (libnftables JSON, schema version 1) into tables, chains, rules and sets.

Every table of every family is kept (firewalld's, iptables-nft's `ip nat` / `ip filter`, a
CNI's), so later checks can look at them; only the normalizers decide what a table means.
Rules keep their expression list exactly as nft printed it (parsed JSON): the normalizer
reads kube-proxy's rule shapes from it and reports anything else instead of guessing.

The envelope is checked before any object is read (`_envelope`), and every field is read
through one typed accessor (`_Reader.get`), so bad input is one `InputError` naming the
file and, where it helps, the line and column (invalid JSON) or the object's position.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from auditor.errors import InputError
from auditor.gc_pause import paused_gc
from auditor.parse.source import read_source

#: the libnftables JSON schema this reader understands (`metainfo.json_schema_version`)
SUPPORTED_SCHEMA_VERSION = 1

_T = TypeVar("_T")


class NftFamily(StrEnum):
    """nftables address families (`nft(8)`, ADDRESS FAMILIES). kube-proxy uses ip and ip6."""

    IP = "ip"
    IP6 = "ip6"
    INET = "inet"
    ARP = "arp"
    BRIDGE = "bridge"
    NETDEV = "netdev"


# --- element values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prefix:
    """`10.0.0.0/8`: JSON `{"prefix": {"addr": "10.0.0.0", "len": 8}}`."""

    addr: str
    length: int

    def __str__(self) -> str:
        return f"{self.addr}/{self.length}"


@dataclass(frozen=True, slots=True)
class Range:
    """`1000-2000`: JSON `{"range": [1000, 2000]}`."""

    low: Value
    high: Value

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"


@dataclass(frozen=True, slots=True)
class Concat:
    """`1.2.3.4 . tcp . 80`: JSON `{"concat": ["1.2.3.4", "tcp", 80]}` (ports are ints)."""

    parts: tuple[Value, ...]

    def __str__(self) -> str:
        return " . ".join(map(str, self.parts))


@dataclass(frozen=True, slots=True)
class Verdict:
    """A verdict as a map value: `{"goto": {"target": "chain"}}`, `{"drop": null}`, ..."""

    kind: str
    target: str | None = None

    def __str__(self) -> str:
        return self.kind if self.target is None else f"{self.kind} {self.target}"


@dataclass(frozen=True, slots=True)
class Opaque:
    """A value shape this reader does not decode; kept verbatim so nothing is lost."""

    data: Any = field(compare=False)
    text: str = ""

    def __str__(self) -> str:
        return self.text


#: what an element key or map value can be
Value = str | int | Prefix | Range | Concat | Verdict | Opaque

_VERDICTS_PLAIN = ("accept", "drop", "continue", "return")
_VERDICTS_TARGET = ("jump", "goto")


def value_text(value: Value) -> str:
    """A value as nft's text syntax writes it."""
    return str(value)


# --- the ruleset --------------------------------------------------------------------------------


class NftElement(NamedTuple):
    """One set or map element; `value` is None for a set. Comments come from the
    `{"elem": {"val": ..., "comment": ...}}` wrapper, as do per-element timeouts."""

    key: Value
    value: Value | None = None
    comment: str | None = None
    timeout: int | None = None
    expires: int | None = None


class NftRule(NamedTuple):
    """One rule: its expression list exactly as nft printed it, plus handle and comment."""

    family: str
    table: str
    chain: str
    handle: int
    expr: list[Any]
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class NftChain:
    """A chain; `hook` is set for a base chain (with `type`, `prio` and `policy`)."""

    family: str
    table: str
    name: str
    handle: int
    type: str | None = None
    hook: str | None = None
    prio: int | None = None
    policy: str | None = None
    devices: tuple[str, ...] = ()
    comment: str | None = None
    rules: tuple[NftRule, ...] = ()

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True, slots=True)
class NftSet:
    """A set or, when `map_type` is set, a map. `key_type` has one entry per concatenated
    field (`("ipv4_addr", "inet_proto", "inet_service")`); `timeout` is in seconds."""

    family: str
    table: str
    name: str
    handle: int
    key_type: tuple[str, ...]
    map_type: str | None = None
    flags: tuple[str, ...] = ()
    timeout: int | None = None
    size: int | None = None
    policy: str | None = None
    comment: str | None = None
    elements: tuple[NftElement, ...] = ()

    @property
    def is_map(self) -> bool:
        return self.map_type is not None


@dataclass(frozen=True, slots=True)
class NftObject:
    """Any other object (counter, quota, ct helper, flowtable, ...), kept verbatim."""

    kind: str
    family: str | None
    table: str | None
    name: str | None
    data: Mapping[str, Any] = field(compare=False)


@dataclass(frozen=True, slots=True)
class NftTable:
    """A table with everything in it; chains and sets (maps included) by name, in nft's order."""

    family: NftFamily
    name: str
    handle: int
    flags: tuple[str, ...] = ()
    comment: str | None = None
    chains: Mapping[str, NftChain] = field(default_factory=lambda: MappingProxyType({}))
    sets: Mapping[str, NftSet] = field(default_factory=lambda: MappingProxyType({}))
    objects: tuple[NftObject, ...] = ()

    @property
    def label(self) -> str:
        """`ip kube-proxy`: how nft names the table."""
        return f"{self.family.value} {self.name}"

    @property
    def rule_count(self) -> int:
        return sum(len(chain.rules) for chain in self.chains.values())


@dataclass(frozen=True, slots=True)
class NftRuleset:
    """One `nft -j list ruleset` run."""

    source: str
    nft_version: str | None
    schema_version: int
    tables: tuple[NftTable, ...] = ()
    #: objects outside any table (none in `list ruleset` output today)
    others: tuple[NftObject, ...] = ()

    def table(self, family: str, name: str) -> NftTable | None:
        for table in self.tables:
            if table.family == family and table.name == name:
                return table
        return None


# --- reading ------------------------------------------------------------------------------------


def read_nft_json(path: str) -> NftRuleset:
    """Parse the file at `path`; `-` reads standard input. Raises `InputError` naming the file."""
    return parse_nft_json(read_source(path), path)


def parse_nft_json(data: bytes | str, source: str) -> NftRuleset:
    """Parse `nft -j list ruleset` output; raises `InputError` on anything else."""
    with paused_gc():
        document = _decode(data, source)
        reader = _Reader(source)
        version, schema, objects = reader.envelope(document)
        return reader.ruleset(objects, version, schema)


def _decode(data: bytes | str, source: str) -> Any:
    """The JSON document; invalid JSON names the line and column."""
    if isinstance(data, bytes):
        nul = data.find(b"\0")
        if nul >= 0:
            line = data.count(b"\n", 0, nul) + 1
            raise InputError(source, f"binary data (NUL byte at offset {nul}), not nft JSON", line)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(source, f"not UTF-8 text (byte {exc.start}), not nft JSON", line) from exc
    else:
        text = data
        nul = text.find("\0")
        if nul >= 0:
            raise InputError(source, f"binary data (NUL at offset {nul}), not nft JSON", text.count("\n", 0, nul) + 1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise InputError(source, "empty input: expected the output of `nft -j list ruleset`") from exc
        raise InputError(source, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from exc
    except RecursionError as exc:
        raise InputError(source, "invalid JSON: nested too deeply") from exc


def _typename(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


_KIND_NAMES: dict[type, str] = {str: "a string", int: "an integer", list: "an array", dict: "an object"}


class _Reader:
    """Turns the validated object list into a `NftRuleset`; errors name the object."""

    def __init__(self, source: str) -> None:
        self.source = source

    # -- the one typed accessor ---------------------------------------------------------------

    def get(self, obj: Mapping[str, Any], key: str, kind: type[_T], where: str, *, required: bool = True) -> _T | None:
        """`obj[key]` if it has type `kind`; None when absent and not `required`."""
        value = obj.get(key)
        if value is None:
            if required:
                raise self.error(where, f"has no {key!r}")
            return None
        if not isinstance(value, kind) or (type(value) is bool and kind is not bool):
            raise self.error(where, f"{key!r} is {_typename(value)}, expected {_KIND_NAMES.get(kind, kind.__name__)}")
        return value

    def need(self, obj: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T:
        value = self.get(obj, key, kind, where)
        assert value is not None
        return value

    def error(self, where: str, problem: str) -> InputError:
        return InputError(self.source, f"{where} {problem}")

    # -- envelope -------------------------------------------------------------------------------

    def envelope(self, document: Any) -> tuple[str | None, int, list[Any]]:
        """`{"nftables": [{"metainfo": {... "json_schema_version": 1}}, ...]}`: version and objects.

        Checked before any object is read: a top-level object, an `nftables` array, a
        `metainfo` object first, and a schema version this reader knows.
        """
        if not isinstance(document, dict):
            raise InputError(
                self.source, f'not nft JSON: the top level is {_typename(document)}, expected {{"nftables": [...]}}'
            )
        objects = document.get("nftables")
        if objects is None:
            keys = ", ".join(repr(k) for k in list(document)[:5]) or "none"
            raise InputError(self.source, f'not nft JSON: no "nftables" key (keys: {keys})')
        if not isinstance(objects, list):
            raise InputError(self.source, f'not nft JSON: "nftables" is {_typename(objects)}, expected an array')
        first = objects[0] if objects else None
        meta = first.get("metainfo") if isinstance(first, dict) else None
        if not isinstance(meta, dict):
            raise InputError(self.source, 'not nft JSON: no "metainfo" object first in the "nftables" array')
        schema = meta.get("json_schema_version")
        if schema is None:
            raise InputError(self.source, "metainfo has no json_schema_version (nft too old for JSON output?)")
        if type(schema) is not int:
            raise InputError(self.source, f"metainfo json_schema_version is {_typename(schema)}, expected an integer")
        if schema > SUPPORTED_SCHEMA_VERSION:
            raise InputError(
                self.source,
                f"json_schema_version {schema} is newer than the supported {SUPPORTED_SCHEMA_VERSION} "
                f"(nft {meta.get('version', '?')}); kp-audit needs updating to read it",
            )
        if schema < 1:
            raise InputError(self.source, f"json_schema_version {schema} is not a valid libnftables schema version")
        version = meta.get("version")
        return (version if isinstance(version, str) else None), schema, objects

    # -- objects --------------------------------------------------------------------------------

    def ruleset(self, objects: list[Any], version: str | None, schema: int) -> NftRuleset:
        tables: dict[tuple[str, str], _TableParts] = {}
        others: list[NftObject] = []
        rules: dict[tuple[str, str, str], list[NftRule]] = {}
        # nft lists a chain's rules together: remember the last chain to skip the dict lookup
        last: tuple[str, str, str] = ("", "", "")
        bucket: list[NftRule] = []
        new_rule = tuple.__new__
        for index in range(1, len(objects)):
            item = objects[index]
            if type(item) is not dict or len(item) != 1:
                raise self.error(
                    f"nftables[{index}]", 'is not an object with one key ({"table": ...}, {"rule": ...}, ...)'
                )
            body = item.get("rule")
            if body is not None:
                # the hot path, inline: a well-formed rule; anything unusual goes through `_rule`,
                # which checks each field with the accessor and names what is wrong
                if type(body) is dict:
                    family, table, chain = body.get("family"), body.get("table"), body.get("chain")
                    handle, expr, comment = body.get("handle"), body.get("expr"), body.get("comment")
                    if not (
                        type(family) is str
                        and type(table) is str
                        and type(chain) is str
                        and type(handle) is int
                        and type(expr) is list
                        and (comment is None or type(comment) is str)
                        and family in _FAMILIES
                    ):
                        family, table, chain, handle, expr, comment = self._rule(body, f"nftables[{index}] (rule)")
                else:
                    family, table, chain, handle, expr, comment = self._rule(body, f"nftables[{index}] (rule)")
                if chain != last[2] or table != last[1] or family != last[0]:
                    last = (family, table, chain)
                    bucket = rules.setdefault(last, [])
                bucket.append(new_rule(NftRule, (family, table, chain, handle, expr, comment)))
                continue
            kind, body = next(iter(item.items()))
            where = f"nftables[{index}] ({kind})"
            if type(body) is not dict:
                raise self.error(where, f"is {_typename(body)}, expected an object")
            if kind == "chain":
                fields = _fast_chain(body) or self._chain(body, where)
                self._owner(tables, fields[0], fields[1], where).chains.append(fields)
            elif kind == "table":
                family = self._family(body, where)
                name = self.need(body, "name", str, where)
                if (family, name) in tables:
                    raise self.error(where, f"repeats table {family} {name}")
                tables[(family, name)] = _TableParts(
                    family=NftFamily(family),
                    name=name,
                    handle=self.need(body, "handle", int, where),
                    flags=self._strings(body, "flags", where),
                    comment=self.get(body, "comment", str, where, required=False),
                )
            elif kind in ("set", "map"):
                found = self._set(body, where, kind == "map")
                self._owner(tables, found.family, found.table, where).sets.append(found)
            elif kind == "element":
                owner = self._owner(tables, self._family(body, where), self.need(body, "table", str, where), where)
                owner.extra_elements.append((self.need(body, "name", str, where), body, where))
            else:
                obj_family, obj_table, obj_name = body.get("family"), body.get("table"), body.get("name")
                obj = NftObject(
                    kind,
                    obj_family if isinstance(obj_family, str) else None,
                    obj_table if isinstance(obj_table, str) else None,
                    obj_name if isinstance(obj_name, str) else None,
                    MappingProxyType(body),
                )
                parts = tables.get((obj.family, obj.table)) if obj.family and obj.table else None
                (parts.objects if parts is not None else others).append(obj)
        built = tuple(self._table(parts, rules) for parts in tables.values())
        for (family, table, chain), leftover in rules.items():
            raise self.error(
                f"rule handle {leftover[0].handle}",
                f"is in chain {chain!r} of table {family} {table}, which is not listed",
            )
        return NftRuleset(self.source, version, schema, built, tuple(others))

    def _table(self, parts: _TableParts, rules: dict[tuple[str, str, str], list[NftRule]]) -> NftTable:
        family = parts.family.value
        chains = {}
        pop = rules.pop
        for fields in parts.chains:
            name = fields[2]
            if name in chains:
                raise self.error(f"chain {name!r}", f"appears twice in table {family} {parts.name}")
            found = pop((family, parts.name, name), None)
            chains[name] = NftChain(*fields, tuple(found) if found else ())
        sets: dict[str, NftSet] = {s.name: s for s in parts.sets}
        for name, body, where in parts.extra_elements:
            target = sets.get(name)
            if target is None:
                raise self.error(where, f"adds elements to {name!r}, which table {family} {parts.name} does not list")
            more = self._elements(body.get("elem"), target.is_map, where)
            sets[name] = _with_elements(target, target.elements + more)
        return NftTable(
            parts.family,
            parts.name,
            parts.handle,
            parts.flags,
            parts.comment,
            MappingProxyType(chains),
            MappingProxyType(sets),
            tuple(parts.objects),
        )

    def _owner(self, tables: dict[tuple[str, str], _TableParts], family: str, table: str, where: str) -> _TableParts:
        parts = tables.get((family, table))
        if parts is None:
            raise self.error(where, f"belongs to table {family} {table}, which is not listed before it")
        return parts

    def _family(self, body: Mapping[str, Any], where: str) -> str:
        family = self.need(body, "family", str, where)
        if family not in _FAMILIES:
            raise self.error(where, f"has unknown family {family!r}")
        return family

    def _strings(self, body: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        """A field nft prints as one string or as an array of strings (flags, devices)."""
        value = body.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise self.error(where, f"{key!r} is {_typename(value)}, expected a string or an array of strings")

    def _rule(self, body: Any, where: str) -> NftRule:
        """`{"family": "ip", "table": "kube-proxy", "chain": "services", "handle": 61,
        "comment": "...", "expr": [{"match": ...}, {"vmap": ...}]}`."""
        if type(body) is not dict:
            raise self.error(where, f"is {_typename(body)}, expected an object")
        return NftRule(
            self._family(body, where),
            self.need(body, "table", str, where),
            self.need(body, "chain", str, where),
            self.need(body, "handle", int, where),
            self.need(body, "expr", list, where),
            self.get(body, "comment", str, where, required=False),
        )

    def _chain(self, body: Mapping[str, Any], where: str) -> _ChainFields:
        """`{"family": "ip", "table": "kube-proxy", "name": "nat-prerouting", "handle": 19,
        "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}`; a regular
        chain has only family, table, name and handle. Returns `NftChain`'s fields but rules."""
        devices = self._strings(body, "dev", where) if "dev" in body else self._strings(body, "devices", where)
        return (
            self._family(body, where),
            self.need(body, "table", str, where),
            self.need(body, "name", str, where),
            self.need(body, "handle", int, where),
            self.get(body, "type", str, where, required=False),
            self.get(body, "hook", str, where, required=False),
            self.get(body, "prio", int, where, required=False),
            self.get(body, "policy", str, where, required=False),
            devices,
            self.get(body, "comment", str, where, required=False),
        )

    def _set(self, body: Mapping[str, Any], where: str, is_map: bool) -> NftSet:
        """`{"family": "ip", "name": "service-ips", "table": "kube-proxy", "type": ["ipv4_addr",
        "inet_proto", "inet_service"], "handle": 6, "map": "verdict", "comment": "...", "elem":
        [[{"concat": ["172.30.0.41", "tcp", 80]}, {"goto": {"target": "service-..."}}], ...]}`;
        a set has no "map" and its elements are plain values; an affinity set is
        `{"type": "ipv4_addr", "size": 65535, "flags": ["timeout"], "timeout": 10800}`."""
        name = self.need(body, "name", str, where)
        where = f"{where} {name!r}"
        map_type = body.get("map")
        if map_type is not None and not isinstance(map_type, str):
            map_type = _type_text(map_type)
        if is_map and map_type is None:
            raise self.error(where, "is a map without a 'map' (data) type")
        return NftSet(
            family=self._family(body, where),
            table=self.need(body, "table", str, where),
            name=name,
            handle=self.need(body, "handle", int, where),
            key_type=_key_type(body.get("type")),
            map_type=map_type,
            flags=self._strings(body, "flags", where),
            timeout=self.get(body, "timeout", int, where, required=False),
            size=self.get(body, "size", int, where, required=False),
            policy=self.get(body, "policy", str, where, required=False),
            comment=self.get(body, "comment", str, where, required=False),
            elements=self._elements(body.get("elem"), map_type is not None, where),
        )

    def _elements(self, items: Any, is_map: bool, where: str) -> tuple[NftElement, ...]:
        """Set elements are values, map elements `[key, value]`; either key may be wrapped as
        `{"elem": {"val": <value>, "comment": "ns/svc:port", "timeout": 10800, "expires": 9000}}`."""
        if items is None:
            return ()
        if not isinstance(items, list):
            raise self.error(where, f"'elem' is {_typename(items)}, expected an array")
        out: list[NftElement] = []
        append = out.append
        for item in items:
            value: Value | None = None
            if is_map:
                if type(item) is not list or len(item) != 2:
                    raise self.error(where, f"has a map element that is not a [key, value] pair: {_clip(item)}")
                item, raw_value = item
                value = decode_value(raw_value)
            if type(item) is dict and "elem" in item and len(item) == 1:
                wrapper = item["elem"]
                if type(wrapper) is not dict or "val" not in wrapper:
                    raise self.error(where, f"has an element wrapper without 'val': {_clip(item)}")
                comment = wrapper.get("comment")
                timeout = wrapper.get("timeout")
                expires = wrapper.get("expires")
                append(
                    NftElement(
                        decode_value(wrapper["val"]),
                        value,
                        comment if isinstance(comment, str) else None,
                        timeout if type(timeout) is int else None,
                        expires if type(expires) is int else None,
                    )
                )
            else:
                append(NftElement(decode_value(item), value))
        return tuple(out)


_FAMILIES = frozenset(f.value for f in NftFamily)


#: `NftChain`'s fields but its rules, while the rules are being collected
_ChainFields = tuple[str, str, str, int, str | None, str | None, int | None, str | None, tuple[str, ...], str | None]


def _fast_chain(body: dict[str, Any]) -> _ChainFields | None:
    """A regular chain (`{"family", "table", "name", "handle"}` and nothing else) without the
    accessor; anything else goes through `_Reader._chain`."""
    if len(body) != 4:
        return None
    family, table, name, handle = body.get("family"), body.get("table"), body.get("name"), body.get("handle")
    if type(family) is str and family in _FAMILIES and type(table) is str and type(name) is str and type(handle) is int:
        return (family, table, name, handle, None, None, None, None, (), None)
    return None


@dataclass
class _TableParts:
    """A table while its objects are being collected."""

    family: NftFamily
    name: str
    handle: int
    flags: tuple[str, ...]
    comment: str | None
    chains: list[_ChainFields] = field(default_factory=list)
    sets: list[NftSet] = field(default_factory=list)
    objects: list[NftObject] = field(default_factory=list)
    extra_elements: list[tuple[str, Mapping[str, Any], str]] = field(default_factory=list)


def _with_elements(s: NftSet, elements: tuple[NftElement, ...]) -> NftSet:
    return NftSet(
        s.family,
        s.table,
        s.name,
        s.handle,
        s.key_type,
        s.map_type,
        s.flags,
        s.timeout,
        s.size,
        s.policy,
        s.comment,
        elements,
    )


def _key_type(raw: Any) -> tuple[str, ...]:
    """`"ipv4_addr"` or `["ipv4_addr", "inet_proto", "inet_service"]`; anything else verbatim."""
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return tuple(raw)
    return () if raw is None else (_type_text(raw),)


def _type_text(raw: Any) -> str:
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return " . ".join(raw)
    return json.dumps(raw, separators=(",", ":"), sort_keys=True)


def _clip(item: Any, limit: int = 80) -> str:
    text = json.dumps(item, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "..."


def decode_value(raw: Any) -> Value:
    """An element key or map value:

    - `"172.30.0.41"`, `"tcp"`, `80`: plain values (ports are ints);
    - `{"concat": ["1.2.3.4", "tcp", 80]}`, `{"prefix": {"addr": "10.0.0.0", "len": 8}}`,
      `{"range": [1000, 2000]}`;
    - verdicts `{"goto": {"target": "reject-chain"}}`, `{"jump": {...}}`, `{"drop": null}`,
      `{"accept": null}`, `{"return": null}`, `{"continue": null}`.

    Any other shape is kept as `Opaque` (its compact JSON), never dropped.
    """
    kind = type(raw)
    if kind is str or kind is int:
        return raw  # type: ignore[no-any-return]
    if kind is dict and len(raw) == 1:
        key, body = next(iter(raw.items()))
        if key == "concat" and type(body) is list:
            return Concat(tuple(decode_value(p) for p in body))
        if key in _VERDICTS_TARGET and type(body) is dict and type(body.get("target")) is str:
            return Verdict(key, body["target"])
        if key in _VERDICTS_PLAIN and body is None:
            return Verdict(key)
        if key == "prefix" and type(body) is dict and type(body.get("addr")) is str and type(body.get("len")) is int:
            return Prefix(body["addr"], body["len"])
        if key == "range" and type(body) is list and len(body) == 2:
            return Range(decode_value(body[0]), decode_value(body[1]))
    return Opaque(raw, json.dumps(raw, separators=(",", ":"), sort_keys=True))


# --- readable one-line rendering of rules (for reports and `unmodelled`) -----------------------


def rule_text(rule: NftRule) -> str:
    """A rule as one line of nft syntax, close to what `nft list ruleset` prints, e.g.
    `ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade`."""
    text = " ".join(expr_text(e) for e in rule.expr)
    if rule.comment:
        text += f' comment "{rule.comment}"'
    return text


def element_text(element: NftElement) -> str:
    """`172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain`."""
    text = value_text(element.key)
    if element.comment:
        text += f' comment "{element.comment}"'
    if element.value is not None:
        text += f" : {value_text(element.value)}"
    return text


def expr_text(expr: Any) -> str:
    """One statement or expression of a rule in nft syntax; unknown shapes as compact JSON."""
    if type(expr) is dict and len(expr) == 1:
        key, body = next(iter(expr.items()))
        render = _RENDER.get(key)
        if render is not None:
            try:
                return render(body)
            except (KeyError, TypeError, ValueError, AttributeError, StopIteration):
                pass
    if isinstance(expr, str):
        return expr
    if type(expr) is int:
        return str(expr)
    if isinstance(expr, list):
        return "{ " + ", ".join(expr_text(e) for e in expr) + " }"
    return json.dumps(expr, separators=(",", ":"))


def _match(body: Mapping[str, Any]) -> str:
    op = body.get("op", "==")
    left, right = expr_text(body["left"]), expr_text(body["right"])
    binary = isinstance(body["left"], dict) and next(iter(body["left"]), "") in ("&", "|", "^")
    if op in ("==", "in") and not binary:
        return f"{left} {right}"
    return f"{left} {op} {right}"


def _payload(body: Mapping[str, Any]) -> str:
    if "base" in body:
        return f"@{body['base']},{body['offset']},{body['len']}"
    return f"{body['protocol']} {body['field']}"


def _meta(body: Mapping[str, Any]) -> str:
    key = body["key"]
    return f"meta {key}" if key in ("l4proto", "mark", "protocol", "nfproto", "length") else key


def _fib(body: Mapping[str, Any]) -> str:
    flags = body.get("flags", [])
    flags = [flags] if isinstance(flags, str) else flags
    return f"fib {' . '.join(flags)} {body['result']}"


def _numgen(body: Mapping[str, Any]) -> str:
    offset = body.get("offset", 0)
    return f"numgen {body['mode']} mod {body['mod']}" + (f" offset {offset}" if offset else "")


def _vmap(body: Mapping[str, Any]) -> str:
    return f"{expr_text(body['key'])} vmap {_mapping(body['data'])}"


def _map(body: Mapping[str, Any]) -> str:
    return f"{expr_text(body['key'])} map {_mapping(body['data'])}"


def _mapping(data: Any) -> str:
    if isinstance(data, dict) and "set" in data:
        pairs = data["set"]
        return (
            "{ "
            + ", ".join(
                f"{expr_text(p[0])} : {expr_text(p[1])}" if isinstance(p, list) and len(p) == 2 else expr_text(p)
                for p in pairs
            )
            + " }"
        )
    return expr_text(data)


def _set_literal(body: Any) -> str:
    if isinstance(body, list):
        return "{ " + ", ".join(expr_text(e) for e in body) + " }"
    return expr_text(body)


def _nat(kind: str) -> Callable[[Mapping[str, Any]], str]:
    def render(body: Mapping[str, Any] | None) -> str:
        if not body:
            return kind
        text = kind
        if "addr" in body or "port" in body:
            addr = expr_text(body["addr"]) if "addr" in body else ""
            if ":" in addr and "port" in body:
                addr = f"[{addr}]"
            port = f":{expr_text(body['port'])}" if "port" in body else ""
            text += f" to {addr}{port}"
        flags = body.get("flags")
        if flags:
            text += " " + (flags if isinstance(flags, str) else ",".join(flags))
        return text

    return render


def _verdict(kind: str) -> Callable[[Any], str]:
    def render(body: Any) -> str:
        if isinstance(body, dict) and "target" in body:
            return f"{kind} {body['target']}"
        return kind

    return render


def _binop(op: str) -> Callable[[list[Any]], str]:
    return lambda body: f" {op} ".join(expr_text(e) for e in body)


def _mangle(body: Mapping[str, Any]) -> str:
    return f"{expr_text(body['key'])} set {expr_text(body['value'])}"


def _set_stmt(body: Mapping[str, Any]) -> str:
    return f"{body['op']} {body['set']} {{ {expr_text(body['elem'])} }}"


def _reject(body: Mapping[str, Any] | None) -> str:
    if not body:
        return "reject"
    kind = body.get("type")
    detail = body.get("expr")
    if kind == "tcp reset":
        return "reject with tcp reset"
    if kind in ("icmp", "icmpv6", "icmpx") and detail == "port-unreachable":
        return "reject"
    return f"reject with {kind} {detail}".rstrip()


def _ct(body: Mapping[str, Any]) -> str:
    direction = f" {body['dir']}" if "dir" in body else ""
    return f"ct{direction} {body['key']}"


def _prefix(body: Mapping[str, Any]) -> str:
    return f"{expr_text(body['addr'])}/{body['len']}"


_RENDER: dict[str, Callable[[Any], str]] = {
    "match": _match,
    "payload": _payload,
    "meta": _meta,
    "ct": _ct,
    "fib": _fib,
    "numgen": _numgen,
    "vmap": _vmap,
    "map": _map,
    "set": lambda body: _set_stmt(body) if isinstance(body, dict) and "op" in body else _set_literal(body),
    "concat": lambda body: " . ".join(expr_text(e) for e in body),
    "prefix": _prefix,
    "range": lambda body: f"{expr_text(body[0])}-{expr_text(body[1])}",
    "elem": lambda body: expr_text(body["val"]),
    "dnat": _nat("dnat"),
    "snat": _nat("snat"),
    "masquerade": _nat("masquerade"),
    "redirect": _nat("redirect"),
    "mangle": _mangle,
    "reject": _reject,
    "counter": lambda body: "counter",
    "limit": lambda body: f"limit rate {'over ' if body.get('inv') else ''}{body['rate']}/{body.get('per', 'second')}",
    "log": lambda body: "log",
    "notrack": lambda body: "notrack",
    "&": _binop("&"),
    "|": _binop("|"),
    "^": _binop("^"),
    "<<": _binop("<<"),
    ">>": _binop(">>"),
    "xt": lambda body: f"xt {body.get('type', '')} {body.get('name', '')}".rstrip(),
    **{v: _verdict(v) for v in (*_VERDICTS_PLAIN, *_VERDICTS_TARGET)},
}


def iter_rules(table: NftTable) -> Iterable[NftRule]:
    """Every rule of a table, chain by chain in nft's order."""
    for chain in table.chains.values():
        yield from chain.rules


__all__ = [
    "SUPPORTED_SCHEMA_VERSION",
    "Concat",
    "NftChain",
    "NftElement",
    "NftFamily",
    "NftObject",
    "NftRule",
    "NftRuleset",
    "NftSet",
    "NftTable",
    "Opaque",
    "Prefix",
    "Range",
    "Value",
    "Verdict",
    "decode_value",
    "element_text",
    "expr_text",
    "iter_rules",
    "parse_nft_json",
    "read_nft_json",
    "rule_text",
    "value_text",
]
