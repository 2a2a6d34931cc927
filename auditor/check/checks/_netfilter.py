"""Shared readers for the checks: chains of the iptables dumps, tables of the nft ruleset, and
where the normalizers' unmodelled rules came from.

Evidence for a chain names the dump file and the line of its first rule (a chain without
rules has no line of its own in iptables-save, so it is named by table and chain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

from auditor.check.context import CheckContext
from auditor.findings import Evidence
from auditor.model import Unmodelled
from auditor.parse.iptables_save import Chain

#: the normalizers' reason for rules other components wrote
FOREIGN = "not written by kube-proxy"
_IPTABLES_TABLES = ("nat", "filter", "mangle", "raw", "security")


class FoundChain(NamedTuple):
    """A chain of one iptables dump."""

    file: str
    table: str
    chain: Chain

    @property
    def backend(self) -> str:
        return backend_of(self.file)

    @property
    def where(self) -> str:
        """`iptables-nft-save.txt:123` (first rule) or `iptables-nft-save.txt: nat :CHAIN`."""
        if self.chain.lines:
            return f"{self.file}:{self.chain.lines[0][0]}"
        return f"{self.file}: {self.table} :{self.chain.name}"

    def evidence(self, what: str = "") -> Evidence:
        rules = len(self.chain.lines)
        value = f"{self.table} {self.chain.name} ({rules} rule{'s' if rules != 1 else ''})"
        return Evidence(what or "iptables chain", value, self.where)


def backend_of(file: str) -> str:
    """The backend ("legacy" or "nft") of a snapshot dump, from its file name."""
    return "legacy" if "legacy" in file else "nft"


def find_chains(ctx: CheckContext, wanted: Callable[[str, str], bool]) -> Iterator[FoundChain]:
    """Every chain (table, name) of every iptables dump for which `wanted(table, name)` holds."""
    for file in sorted(ctx.iptables):
        for table in ctx.iptables[file].tables.values():
            for name, chain in table.chains.items():
                if wanted(table.name, name):
                    yield FoundChain(file, table.name, chain)


def nft_tables(ctx: CheckContext, wanted: Callable[[str, str], bool]) -> list[tuple[str, str]]:
    """(family, name) of every nft table for which `wanted(family, name)` holds."""
    if ctx.nft is None:
        return []
    return [(t.family.value, t.name) for t in ctx.nft.tables if wanted(t.family.value, t.name)]


def nft_table_evidence(ctx: CheckContext, family: str, name: str, what: str = "nft table") -> Evidence:
    source = ctx.nft.source if ctx.nft is not None else "nft-ruleset.json"
    table = ctx.nft.table(family, name) if ctx.nft is not None else None
    rules = table.rule_count if table is not None else 0
    value = f"table {family} {name} ({rules} rule{'s' if rules != 1 else ''})"
    return Evidence(what, value, f"{source}: table {family} {name}")


def host_iptables_backend(ctx: CheckContext) -> str | None:
    """The backend the host's `iptables` binary uses ("nft" / "legacy"), None when unknown."""
    for key in ("iptables_backend", "iptables_version_text", "iptables_version"):
        text = str(ctx.host.get(key) or "").lower()
        if "nf_tables" in text or text == "nft":
            return "nft"
        if "legacy" in text:
            return "legacy"
    return None


def what_was_not_seen(ctx: CheckContext) -> list[str]:
    """The rule sources the snapshot lacks, in words ("no iptables dump", "no nft ruleset")."""
    missing = []
    if not ctx.iptables:
        missing.append("no iptables dump")
    if ctx.nft is None:
        missing.append("no nft ruleset")
    return missing


def where(u: Unmodelled) -> str:
    """file:line for iptables rules; file, table, chain and handle for nftables rules (elements have no handle)."""
    if u.table in _IPTABLES_TABLES:
        return f"{u.source}:{u.line}"
    if u.line:
        return f"{u.source}: {u.table} chain {u.chain} handle {u.line}"
    return f"{u.source}: {u.table} {u.chain}"


def is_foreign(u: Unmodelled) -> bool:
    """A rule the normalizer attributes to another component, not to kube-proxy."""
    return u.reason.startswith(FOREIGN)
