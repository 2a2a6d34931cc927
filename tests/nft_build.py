"""Hand-written `nft -j list ruleset` documents for check tests: tables with base chains and
rules, in the JSON shapes nft 1.0.6 prints (checked against a real `nft -j` in a namespace)."""

from __future__ import annotations

import json
from typing import Any

ACCEPT: dict[str, Any] = {"accept": None}
DROP: dict[str, Any] = {"drop": None}
REJECT: dict[str, Any] = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}


def match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def ct(key: str) -> dict[str, Any]:
    return {"ct": {"key": key}}


def jump(target: str) -> dict[str, Any]:
    return {"jump": {"target": target}}


class Table:
    """One table; `chain` and `rule` add objects, `objects` lists them in nft's order."""

    def __init__(self, family: str, name: str, handle: int = 1) -> None:
        self.family, self.name, self.handle = family, name, handle
        self.chains: list[dict[str, Any]] = []
        self.rules: list[dict[str, Any]] = []

    def chain(
        self, name: str, hook: str | None = None, *, type: str = "filter", prio: int = 0, policy: str = "accept"
    ) -> Table:
        body: dict[str, Any] = {"family": self.family, "table": self.name, "name": name, "handle": len(self.chains) + 1}
        if hook is not None:
            body.update(type=type, hook=hook, prio=prio, policy=policy)
        self.chains.append({"chain": body})
        return self

    def rule(self, chain: str, *expr: dict[str, Any], comment: str | None = None) -> Table:
        body: dict[str, Any] = {
            "family": self.family,
            "table": self.name,
            "chain": chain,
            "handle": 100 + len(self.rules),
        }
        body["expr"] = list(expr)
        if comment is not None:
            body["comment"] = comment
        self.rules.append({"rule": body})
        return self

    def objects(self) -> list[dict[str, Any]]:
        return [{"table": {"family": self.family, "name": self.name, "handle": self.handle}}, *self.chains, *self.rules]


def ruleset(*tables: Table) -> str:
    """The JSON text of a ruleset holding `tables`."""
    objects: list[dict[str, Any]] = [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}
    ]
    for t in tables:
        objects += t.objects()
    return json.dumps({"nftables": objects})
