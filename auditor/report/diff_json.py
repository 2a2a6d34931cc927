"""`kp-audit diff --format json`: schema kp-audit.diff/v1, built by hand so it is all here."""

from __future__ import annotations

import json
from typing import Any

from auditor.diff.types import Difference, DiffResult, SideInfo
from auditor.model import RuleRef
from auditor.trace.packet import Packet

SCHEMA = "kp-audit.diff/v1"


def diff_document(result: DiffResult) -> dict[str, Any]:
    """{"schema", "left", "right", "differences", "summary", "notes"}."""
    return {
        "schema": SCHEMA,
        "left": _side(result.left),
        "right": _side(result.right),
        "differences": [difference_json(d) for d in result.differences],
        "summary": {"expected": result.expected, "unexpected": result.unexpected},
        "notes": list(result.notes),
    }


def render_diff_json(result: DiffResult) -> str:
    return json.dumps(diff_document(result), indent=2) + "\n"


def _side(side: SideInfo) -> dict[str, Any]:
    return {"label": side.label, "mode": side.mode.value}


def difference_json(d: Difference) -> dict[str, Any]:
    return {
        "kind": d.kind.value,
        "classification": d.classification.value,
        "expected_kind": d.expected,
        "reason": d.reason,
        "source": d.source,
        "message": d.message,
        "service": None if d.service is None else {"name": d.service[0], "protocol": d.service[1], "family": d.service[2]},
        "frontend": None
        if d.frontend is None
        else {"kind": d.frontend[0], "address": d.frontend[1], "port": d.frontend[2]},
        "endpoint": None if d.endpoint is None else {"address": d.endpoint[0], "port": d.endpoint[1]},
        "left": _value(d.left),
        "right": _value(d.right),
        "packet": packet_json(d.packet),
        "packet_note": d.packet_note,
        "left_rule": rule_json(d.left_rule),
        "right_rule": rule_json(d.right_rule),
        "left_outcome": d.left_outcome,
        "right_outcome": d.right_outcome,
        "rule_note": d.rule_note,
    }


def packet_json(packet: Packet | None) -> dict[str, Any] | None:
    if packet is None:
        return None
    return {
        "family": packet.family.value,
        "protocol": packet.protocol,
        "src": packet.src,
        "dst": packet.dst,
        "port": packet.dport,
        "hook": packet.hook.value,
    }


def rule_json(rule: RuleRef | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"table": rule.table, "chain": rule.chain, "line": rule.line, "rule": rule.rule, "source": rule.source}


def _value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


__all__ = ["SCHEMA", "diff_document", "difference_json", "packet_json", "render_diff_json", "rule_json"]
