"""Small builders for check tests: generated kube-proxy dumps, extra chains spliced into a
dump the way another component would add them, and `nft -j` rulesets with extra tables."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from auditor.model import IPFamily
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node


@cache
def generated_iptables(services: int = 12, **options: Any) -> str:
    """kube-proxy's iptables-mode state for a generated IPv4 node (every Service shape at 12)."""
    return render_iptables(generate_node(services, **options), IPFamily.IPV4)


def with_chain(dump: str, table: str, chain: str, *rules: str) -> str:
    """`dump` with `chain` declared in `table` (created if missing) and `rules` ("-A CHAIN ..." lines) added."""
    lines = dump.rstrip("\n").split("\n")
    block = [f":{chain} - [0:0]", *rules]
    if f"*{table}" not in lines:
        return "\n".join([*lines, f"*{table}", *block, "COMMIT"]) + "\n"
    start = lines.index(f"*{table}")
    commit = lines.index("COMMIT", start)
    if any(line.startswith(f":{chain} ") for line in lines[start:commit]):
        block = list(rules)  # already declared (a built-in chain): only add the rules
    return "\n".join(lines[:commit] + block + lines[commit:]) + "\n"


def without_lines(dump: str, needle: str) -> str:
    """`dump` without the lines that contain `needle`."""
    return "".join(line for line in dump.splitlines(keepends=True) if needle not in line)


def nft_ruleset(*tables: tuple[str, str], base: str | None = None) -> str:
    """`nft -j list ruleset` text: `base` (another ruleset's JSON) plus empty tables (family, name)."""
    document: dict[str, list[Any]] = (
        json.loads(base) if base else {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}
    )
    handle = 100
    for family, name in tables:
        handle += 1
        document["nftables"].append({"table": {"family": family, "name": name, "handle": handle}})
    return json.dumps(document)
