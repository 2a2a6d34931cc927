"""Report sections computed from a node beyond the checks: the diff of its two modes (or the
prediction for an iptables-only node), the predicted nftables side, and the rule paths a
packet crosses in each mode. Each returns plain data for `auditor.report.document`.
"""

from __future__ import annotations

from auditor.sections.diff import diff_section, predicted_side
from auditor.sections.paths import paths_section

__all__ = ["diff_section", "paths_section", "predicted_side"]
