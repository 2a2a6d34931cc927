"""The semantic diff of two Service models, its classification, and the nftables prediction.

`diff_models` compares two models by key; `compare` adds traced evidence and the mode
probes; `predict_nftables` lists what an iptables-only node will do differently in
nftables mode. Every `Difference` is `expected` (a deliberate mode difference, with reason
and source) or `unexpected`.
"""

from __future__ import annotations

from auditor.diff.classify import EXPECTED
from auditor.diff.compare import Side, compare
from auditor.diff.keyed import diff_models
from auditor.diff.predict import predict_nftables
from auditor.diff.types import Classification, Difference, DifferenceKind, DiffResult, SideInfo

__all__ = [
    "EXPECTED",
    "Classification",
    "DiffResult",
    "Difference",
    "DifferenceKind",
    "Side",
    "SideInfo",
    "compare",
    "diff_models",
    "predict_nftables",
]
