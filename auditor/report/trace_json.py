"""`kp-audit trace --format json`: schema kp-audit.trace/v1."""

from __future__ import annotations

import json
from typing import Any

from auditor.report.diff_json import packet_json
from auditor.trace.outcome import Step, TraceResult

SCHEMA = "kp-audit.trace/v1"


def _step(step: Step | None) -> dict[str, Any] | None:
    if step is None:
        return None
    return {"table": step.table, "chain": step.chain, "line": step.line, "rule": step.rule, "note": step.note}


def trace_document(result: TraceResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "mode": result.mode.value,
        "packet": packet_json(result.packet),
        "distribution": {label: round(p, 6) for label, p in result.distribution().items()},
        "branches": [
            {
                "probability": round(b.probability, 6),
                "verdict": b.verdict.value,
                "endpoint": None if b.endpoint is None else {"address": b.endpoint[0], "port": b.endpoint[1]},
                "delivery": b.delivery or None,
                "masquerade": b.masquerade,
                "affinity_seconds": b.affinity_seconds,
                "reason": b.reason or None,
                "deciding": _step(b.deciding),
                "path": [_step(s) for s in b.path],
            }
            for b in result.branches
        ],
        "notes": list(result.notes),
    }


def render_trace_json(result: TraceResult) -> str:
    return json.dumps(trace_document(result), indent=2) + "\n"


__all__ = ["SCHEMA", "render_trace_json", "trace_document"]
