"""Read `iptables-save` / `ip6tables-save` text into tables, chains and rules.

It reads both what kube-proxy writes (`iptables-restore` input) and what a real
`iptables-save` prints back (FORMATS.md 2.5): reordered matches, `/32` host prefixes,
always-quoted comments, `--set-xmark`, `[packets:bytes]` counters, `-g` gotos. Every match
module and option is kept as written, unknown ones included, so the normalizer can tell
what it does not understand instead of guessing.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from auditor.errors import InputError
from auditor.gc_pause import paused_gc
from auditor.parse.source import read_source

# Options of the rule itself (not of a -m module), as iptables-save prints them.
_ADDRESS_OPTIONS = {"-s": "src", "--source": "src", "-d": "dst", "--destination": "dst"}
_INTERFACE_OPTIONS = {"-i": "in", "--in-interface": "in", "-o": "out", "--out-interface": "out"}
_PROTOCOL_OPTIONS = ("-p", "--protocol")
_TARGET_OPTIONS = {"-j": False, "--jump": False, "-g": True, "--goto": True}


class Option(NamedTuple):
    """One `--name args...` of a match module or target, e.g. ("tcp", "--dport", False, ("80",))."""

    module: str
    name: str
    negated: bool
    args: tuple[str, ...]

    @property
    def value(self) -> str:
        return " ".join(self.args)


class Rule(NamedTuple):
    """One `-A` line. Addresses are kept as printed (`10.0.0.1/32`); `text` is the whole line."""

    table: str
    chain: str
    line: int
    text: str
    src: str | None = None
    src_negated: bool = False
    dst: str | None = None
    dst_negated: bool = False
    protocol: str | None = None
    protocol_negated: bool = False
    in_interface: str | None = None
    in_interface_negated: bool = False
    out_interface: str | None = None
    out_interface_negated: bool = False
    modules: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    target: str | None = None
    goto: bool = False
    target_options: tuple[Option, ...] = ()
    #: fragment matches (`-f`) and other rule-level flags, verbatim
    other: tuple[str, ...] = ()

    def option(self, name: str) -> Option | None:
        """The first match option called `name` (e.g. "--dport"), or None."""
        for opt in self.options:
            if opt.name == name:
                return opt
        return None

    def target_option(self, name: str) -> Option | None:
        for opt in self.target_options:
            if opt.name == name:
                return opt
        return None

    @property
    def comment(self) -> str | None:
        opt = self.option("--comment")
        return opt.args[0] if opt is not None and opt.args else None


class Chain:
    """A chain with its policy (built-in chains) or None (user chains), and its rules.

    Rules are kept as text and parsed on first use: the normalizer reads kube-proxy's own
    rule shapes straight from the text, which is much faster. iptables-save prints a chain's
    rules on consecutive lines, so usually only the first line number is stored. (A plain
    slotted class: a dump can declare 50,000 chains.)
    """

    __slots__ = ("_lines", "_rules", "first_line", "line_numbers", "name", "policy", "source", "table", "texts")

    def __init__(self, name: str, policy: str | None, table: str = "", source: str = "") -> None:
        self.name = name
        self.policy = policy
        self.table = table
        self.source = source
        #: the text of every rule, in order
        self.texts: list[str] = []
        #: the line of texts[0]; with `line_numbers` None, rule i is on line first_line + i
        self.first_line = 0
        #: the line of every rule, once they are not all on consecutive lines
        self.line_numbers: list[int] | None = None
        self._lines: list[tuple[int, str]] | None = None
        self._rules: list[Rule] | None = None

    def __repr__(self) -> str:
        return f"Chain({self.name!r}, policy={self.policy!r}, rules={len(self.texts)})"

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def add(self, lineno: int, text: str) -> None:
        """Append a rule found on line `lineno`."""
        texts, numbers = self.texts, self.line_numbers
        if numbers is not None:
            numbers.append(lineno)
        elif not texts:
            self.first_line = lineno
        elif self.first_line + len(texts) != lineno:
            self.line_numbers = [*range(self.first_line, self.first_line + len(texts)), lineno]
        texts.append(text)
        self._lines = self._rules = None

    def line_at(self, index: int) -> int:
        """The line number of rule `index`."""
        return self.first_line + index if self.line_numbers is None else self.line_numbers[index]

    @property
    def lines(self) -> list[tuple[int, str]]:
        """(line number, text) of every rule."""
        if self._lines is None:
            numbers = self.line_numbers or range(self.first_line, self.first_line + len(self.texts))
            self._lines = list(zip(numbers, self.texts, strict=True))
        return self._lines

    @property
    def rules(self) -> list[Rule]:
        """Every rule, parsed (raises `InputError` on a malformed rule)."""
        if self._rules is None:
            self._rules = [parse_rule(text, self.table, lineno, self.source) for lineno, text in self.lines]
        return self._rules


@dataclass
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)
    #: the line of the `*table` header
    line: int = 0


@dataclass
class IptablesDump:
    """The tables of one `iptables-save` run, for one address family."""

    source: str
    ipv6: bool = False
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def rule_count(self) -> int:
        return sum(len(c.texts) for t in self.tables.values() for c in t.chains.values())

    def chain(self, table: str, chain: str) -> Chain | None:
        t = self.tables.get(table)
        return None if t is None else t.chains.get(chain)


def read_iptables_save(path: str, *, ipv6: bool = False, allow_empty: bool = False) -> IptablesDump:
    """Parse the file at `path`; `-` reads standard input. Raises `InputError` naming FILE:LINE."""
    return parse_iptables_save(read_source(path), source=path, ipv6=ipv6, allow_empty=allow_empty)


def decode_text(data: bytes, source: str) -> str:
    """Bytes of a text dump as str; binary data is an `InputError` naming the offset."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputError(source, f"binary data (NUL byte at offset {nul}), not iptables-save text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(source, f"not UTF-8 text (byte {exc.start})", line) from exc


def parse_iptables_save(
    data: bytes | str, *, source: str = "<input>", ipv6: bool = False, allow_empty: bool = False
) -> IptablesDump:
    """Parse iptables-save output. `allow_empty` accepts a dump with no tables at all."""
    with paused_gc():
        return _parse(data, source, ipv6, allow_empty)


def _parse(data: bytes | str, source: str, ipv6: bool, allow_empty: bool) -> IptablesDump:
    text = decode_text(data, source) if isinstance(data, bytes) else data
    dump = IptablesDump(source=source, ipv6=ipv6)
    table: Table | None = None
    lineno = 0
    chains: dict[str, Chain] = {}
    # iptables-save prints each chain's rules on consecutive lines: while lines keep
    # starting with `run_prefix` they extend the chain the previous line extended, and the
    # loop does almost nothing for the 100,000s of rule lines. Lines that need cleaning up
    # (trailing blanks, counters) take the long way.
    run_prefix = "\n"  # no line starts with it: no run is open
    run_append: Callable[[str], None] = _no_run
    for lineno, raw in enumerate(text.splitlines(), 1):
        if raw.startswith(run_prefix) and raw[-1] > " ":
            if '"' in raw:
                _check_quotes(raw, source, lineno)
            run_append(raw)
            continue
        run_prefix = "\n"
        if raw[:3] == "-A " and raw[-1] > " ":
            end = raw.find(" ", 3)
            chain = chains.get(raw[3:end]) if end > 3 else None
            if chain is not None:
                if '"' in raw:
                    _check_quotes(raw, source, lineno)
                chain.add(lineno, raw)
                if chain.line_numbers is None:
                    run_prefix, run_append = raw[: end + 1], chain.texts.append
                continue
        elif raw[:1] == ":" and table is not None:
            # the other hot path: one declaration per kube-proxy chain (tens of thousands)
            parts = raw[1:].split(" ", 2)
            if len(parts) == 3 and parts[1] in _POLICIES and parts[0] not in chains:
                name, policy = parts[0], parts[1]
                chains[name] = Chain(name, None if policy == "-" else policy, table.name, source)
                continue
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        first = line[0]
        if first == "-" or first == "[":
            if table is None:
                raise InputError(source, "rule outside a table (no *table line before it)", lineno)
            line = _strip_counters(line, source, lineno)
            words = line.split(None, 2)
            if len(words) < 2 or words[0] not in ("-A", "--append"):
                raise InputError(source, f"expected '-A CHAIN ...', got {_clip(line)}", lineno)
            owner = chains.get(words[1])
            if owner is None:
                raise InputError(
                    source, f"rule for chain {words[1]!r}, which table {table.name} does not declare", lineno
                )
            _check_quotes(line, source, lineno)
            owner.add(lineno, line)
        elif first == ":":
            if table is None:
                raise InputError(source, "chain declaration outside a table", lineno)
            name, policy = _parse_chain_line(line, source, lineno)
            chains[name] = Chain(name, None if policy == "-" else policy, table.name, source)
        elif first == "*":
            if table is not None:
                raise InputError(source, f"table {line[1:]} starts before table {table.name} was committed", lineno)
            name = line[1:].strip()
            if not name or " " in name:
                raise InputError(source, f"bad table header {line!r}", lineno)
            if name in dump.tables:
                raise InputError(source, f"table {name} appears twice", lineno)
            table = Table(name, line=lineno)
            chains = table.chains
        elif line == "COMMIT":
            if table is None:
                raise InputError(source, "COMMIT without a table", lineno)
            dump.tables[table.name] = table
            table = None
            chains = {}
        else:
            raise InputError(source, f"not iptables-save syntax: {_clip(line)}", lineno)
    if table is not None:
        raise InputError(source, f"table {table.name} (line {table.line}) has no COMMIT: the dump is cut short", lineno)
    if not dump.tables and not allow_empty:
        raise InputError(source, "no tables: empty or not iptables-save output", max(lineno, 1))
    return dump


def _check_quotes(line: str, source: str, lineno: int) -> None:
    if line.count('"') & 1 and "\\" not in line:
        raise InputError(source, "unbalanced double quote (line cut short?)", lineno)


def _no_run(text: str) -> None:
    raise AssertionError("no run of rules is open")


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


_POLICIES = frozenset(("-", "ACCEPT", "DROP", "RETURN", "QUEUE"))


def _parse_chain_line(line: str, source: str, lineno: int) -> tuple[str, str]:
    parts = line[1:].split()
    if len(parts) < 2 or parts[1] not in _POLICIES:
        raise InputError(source, f"bad chain declaration {_clip(line)}", lineno)
    return parts[0], parts[1]


def tokenize(text: str, source: str = "<input>", lineno: int = 0) -> list[str]:
    """Split a rule into words; a double-quoted string is one word, quotes removed."""
    if '"' not in text:
        return text.split()
    if "\\" not in text:
        parts = text.split('"')
        if len(parts) % 2 == 0:
            raise InputError(source, "unbalanced double quote", lineno)
        tokens: list[str] = []
        for i, part in enumerate(parts):
            if i & 1:
                tokens.append(part)
            else:
                tokens.extend(part.split())
        return tokens
    try:
        return shlex.split(text, posix=True)
    except ValueError as exc:
        raise InputError(source, f"cannot split rule: {exc}", lineno) from exc


def _strip_counters(line: str, source: str, lineno: int) -> str:
    """Drop the "[packets:bytes] " prefix that `iptables-save -c` puts before a rule."""
    if line[0] != "[":
        return line
    end = line.find("]")
    if end < 0:
        raise InputError(source, "unterminated [packets:bytes] counter", lineno)
    return line[end + 1 :].lstrip()


def parse_rule(line: str, table: str = "", lineno: int = 0, source: str = "<input>") -> Rule:
    """Parse one "-A CHAIN ..." line into a `Rule`; raises `InputError` naming the line."""
    tokens = tokenize(line, source, lineno)
    if len(tokens) < 2 or tokens[0] not in ("-A", "--append"):
        raise InputError(source, f"expected '-A CHAIN ...', got {_clip(line)}", lineno)
    chain = tokens[1]
    fields: dict[str, str | None] = {"src": None, "dst": None, "in": None, "out": None}
    negated: dict[str, bool] = {"src": False, "dst": False, "in": False, "out": False}
    protocol: str | None = None
    protocol_negated = False
    modules: list[str] = []
    options: list[Option] = []
    target: str | None = None
    goto = False
    target_options: list[Option] = []
    other: list[str] = []
    module = ""
    in_target = False
    negate = False
    i, n = 2, len(tokens)
    while i < n:
        tok = tokens[i]
        if tok == "!":
            negate = True
            i += 1
            continue
        if tok == "-m" or tok == "--match":
            if i + 1 >= n:
                raise InputError(source, "-m without a module name", lineno)
            module = tokens[i + 1]
            modules.append(module)
            in_target = False
            i += 2
            continue
        key = _ADDRESS_OPTIONS.get(tok) or _INTERFACE_OPTIONS.get(tok)
        if key is not None and not in_target:
            if i + 1 >= n:
                raise InputError(source, f"{tok} without a value", lineno)
            fields[key] = tokens[i + 1]
            negated[key] = negate
            negate = False
            i += 2
            continue
        if tok in _PROTOCOL_OPTIONS and not in_target:
            if i + 1 >= n:
                raise InputError(source, f"{tok} without a value", lineno)
            protocol, protocol_negated, negate = tokens[i + 1], negate, False
            i += 2
            continue
        if tok in _TARGET_OPTIONS:
            if i + 1 >= n:
                raise InputError(source, f"{tok} without a target", lineno)
            target, goto = tokens[i + 1], _TARGET_OPTIONS[tok]
            in_target = True
            i += 2
            continue
        if tok[0] != "-":
            raise InputError(source, f"unexpected word {tok!r} in rule", lineno)
        j = i + 1
        while j < n and tokens[j] != "!" and not _is_option(tokens[j]):
            j += 1
        opt = Option(module if not in_target else target or "", tok, negate, tuple(tokens[i + 1 : j]))
        (target_options if in_target else options).append(opt)
        if tok in ("-f", "--fragment"):
            other.append(("! " if negate else "") + tok)
        negate = False
        i = j
    return Rule(
        table=table,
        chain=chain,
        line=lineno,
        text=line,
        src=fields["src"],
        src_negated=negated["src"],
        dst=fields["dst"],
        dst_negated=negated["dst"],
        protocol=protocol,
        protocol_negated=protocol_negated,
        in_interface=fields["in"],
        in_interface_negated=negated["in"],
        out_interface=fields["out"],
        out_interface_negated=negated["out"],
        modules=tuple(modules),
        options=tuple(options),
        target=target,
        goto=goto,
        target_options=tuple(target_options),
        other=tuple(other),
    )


def _is_option(token: str) -> bool:
    # "--name" or a short "-x" flag; "-1" style numbers and "-" alone are values
    if len(token) < 2 or token[0] != "-":
        return False
    return token[1] == "-" or token[1].isalpha()
