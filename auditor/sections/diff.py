"""The report's diff section and the predicted nftables side.

A node holding both modes' state (mid-migration) gets the semantic diff of its iptables side
against its nftables side; a node holding only iptables state gets the prediction of what
nftables mode will do differently. Every difference is marked expected or unexpected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.check.context import CheckContext
from auditor.collect.facts import HostFacts
from auditor.diff.types import DifferenceKind, DiffResult, SideInfo
from auditor.model import ProxyMode
from auditor.report.diff_json import diff_document
from auditor.sections.sides import iptables_side, nftables_side

PREDICTION_NOTE = "the nftables side is a prediction from the iptables rules and host.json"


def diff_section(ctx: CheckContext, host: HostFacts | None) -> dict[str, Any] | None:
    """{"kind": "compare"|"prediction", ...kp-audit.diff/v1 fields}; None without iptables or
    nftables state; {"kind": ..., "error": ...} when the diff itself failed (the findings stand)."""
    left = iptables_side(ctx)
    right = nftables_side(ctx)
    kind = "compare" if left is not None and right is not None else "prediction"
    try:
        if left is not None and right is not None:
            from auditor.diff.compare import compare

            result = compare(left, right)
        elif left is not None:
            from auditor.diff.predict import predict_nftables

            differences = predict_nftables(left.model, host, left.tracer)
            result = DiffResult(
                left.info,
                SideInfo(f"{ctx.node} (nftables, predicted)", ProxyMode.NFTABLES),
                tuple(sorted(differences, key=lambda d: d.sort_key)),
                (PREDICTION_NOTE,),
            )
        else:
            return None
    except Exception as exc:  # a diff bug must not hide the findings
        return {"kind": kind, "error": f"{type(exc).__name__}: {exc}"}
    return {"kind": kind, **diff_document(result)}


def predicted_side(models: Mapping[ProxyMode, Any], diff: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the nftables side will look like on an iptables-only node: the same Service ports,
    frontends and endpoints (kube-proxy programs the same EndpointSlices), NodePorts answering
    only where the prediction says, no localhost NodePorts. None when there is nothing to predict."""
    iptables = models.get(ProxyMode.IPTABLES)
    if iptables is None or ProxyMode.NFTABLES in models or diff is None or diff.get("kind") != "prediction":
        return None
    answering: list[str] | None = []
    changed = False
    for d in diff.get("differences", ()):
        if d["kind"] != DifferenceKind.NODE_PORT_ADDRESSES.value:
            continue
        changed = True
        if isinstance(d.get("right"), list) and answering is not None:
            answering += [str(a) for a in d["right"]]
        else:  # no node addresses recorded: where NodePorts will answer cannot be told
            answering = None
    return {
        "mode": ProxyMode.NFTABLES.value,
        "basis": ProxyMode.IPTABLES.value,
        "node_port_addresses": answering if changed else list(iptables.node_port_addresses),
        "localhost_node_ports": False,
        "note": "predicted: the same Service ports, frontends and endpoints as iptables mode; NodePorts answer only "
        "on the addresses above",
    }


__all__ = ["PREDICTION_NOTE", "diff_section", "predicted_side"]
