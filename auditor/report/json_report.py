"""The JSON report: the `kp-audit.report/v1` document as built by `auditor.report.document`,
written out. It validates against auditor/report/schema/report-v1.schema.json."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


__all__ = ["render_json"]
