"""Builders for the diff and trace tests: sides of generated nodes in either mode.

The iptables side is the generator's text, parsed (no kernel). The nftables side needs
`nft -j` output, so the generated text is loaded into a throwaway namespace and listed
back (root and nft required: `require_kernel("nft")`); listings are cached per text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from auditor.diff.compare import Side
from auditor.model import IPFamily
from auditor.normalize.iptables import normalize_iptables
from auditor.normalize.nftables import normalize_nftables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.parse.nft_json import parse_nft_json
from auditor.synth.iptables import render_iptables
from auditor.synth.nftables import render_nft
from auditor.synth.spec import NodeSpec
from auditor.trace import IptablesTracer, NftTracer
from tests.helpers import namespace, require_kernel

V4, V6 = IPFamily.IPV4, IPFamily.IPV6


def node_addresses(node: NodeSpec) -> tuple[str, ...]:
    return tuple(node.node_ips[f] for f in node.families)


def iptables_side(node: NodeSpec, label: str = "iptables", edit: Callable[[str], str] | None = None) -> Side:
    """`node` in iptables mode; `edit` changes the IPv4 dump's text first (a third party's rule)."""
    dumps = []
    for family in node.families:
        text = render_iptables(node, family)
        if edit is not None and family is V4:
            text = edit(text)
        dumps.append(parse_iptables_save(text, source=f"{label}-{family.value}", ipv6=family is V6))
    local = node_addresses(node)
    return Side(label, normalize_iptables(dumps), IptablesTracer(dumps, local), local)


@cache
def _listed(text: str) -> str:
    with namespace("kpa-diff") as ns:
        ns.run(["nft", "-f", "-"], stdin=text)
        return ns.run(["nft", "-j", "list", "ruleset"])


def nft_side(node: NodeSpec, label: str = "nftables") -> Side:
    """`node` in nftables mode, as a kernel lists it back (skips without root and nft)."""
    require_kernel("nft")
    text = "".join(render_nft(node, family) for family in node.families)
    ruleset = parse_nft_json(_listed(text), label)
    local = node_addresses(node)
    return Side(label, normalize_nftables(ruleset, require_table=True), NftTracer(ruleset, local), local, ruleset)


def insert_before(text: str, needle: str, line: str) -> str:
    """`text` with `line` inserted before the first line containing `needle`."""
    lines = text.split("\n")
    index = next(i for i, item in enumerate(lines) if needle in item)
    return "\n".join([*lines[:index], line, *lines[index:]])
