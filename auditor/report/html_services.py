"""The HTML report's services table data: one row per Service port, both modes side by side.

Rows are built once from the report (linear in the number of Service ports) and embedded as
JSON; the page renders them 50 at a time with a search box, so 10,000 Service ports stay usable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

MODES = ("iptables", "nftables")
#: endpoints listed per frontend line (the JSON report has them all)
SHOWN_ENDPOINTS = 6


def _addr(address: str | None, port: int) -> str:
    if address is None:
        return f"*:{port}"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def frontend_line(f: Mapping[str, Any], node_port_addresses: Sequence[str] | None) -> str:
    """`cluster-ip 172.30.0.10:80 -> dnat 10.0.0.1:80 (50%), 10.0.0.2:80 (50%); affinity 10800s`."""
    where = _addr(f["address"], f["port"])
    if f["kind"] == "node-port":
        answering = "unknown addresses" if node_port_addresses is None else ", ".join(node_port_addresses) or "no address"
        where += f" on {answering}"
    text = f"{f['kind']} {where} -> {f['result']}"
    eps = f.get("endpoints") or []
    if eps:
        shown = ", ".join(f"{_addr(e['address'], e['port'])} ({e['probability']:.0%})" for e in eps[:SHOWN_ENDPOINTS])
        more = f" and {len(eps) - SHOWN_ENDPOINTS} more" if len(eps) > SHOWN_ENDPOINTS else ""
        text += f" {shown}{more}"
    extras = []
    if f.get("affinity_seconds"):
        extras.append(f"affinity {f['affinity_seconds']}s")
    if f.get("local_only"):
        extras.append("local endpoints only")
    if f.get("source_ranges"):
        extras.append("from " + ", ".join(f["source_ranges"]))
    if f.get("masquerade") not in (None, "none"):
        extras.append(f"masquerade {f['masquerade']}")
    return text + (f"; {'; '.join(extras)}" if extras else "")


def service_rows(report: Mapping[str, Any]) -> dict[str, Any]:
    """{"modes": [...], "labels": {mode: label}, "rows": [{name, protocol, family, sides, changed}]}."""
    services = report["services"]
    detail: Mapping[str, Any] = services.get("detail") or {}
    predicted = services.get("predicted")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for mode in MODES:
        doc = detail.get(mode)
        if doc is None:
            continue
        addresses = list(doc.get("node_port_addresses") or [])
        for s in doc["services"]:
            key = (s["name"], s["protocol"], s["family"])
            row = rows.setdefault(key, {"name": s["name"], "protocol": s["protocol"], "family": s["family"], "sides": {}})
            row["sides"][mode] = [frontend_line(f, addresses) for f in s["frontends"]]
            if predicted and mode == "iptables" and "nftables" not in detail:
                after = predicted.get("node_port_addresses")
                row["sides"]["nftables"] = [frontend_line(f, after) for f in s["frontends"]]
    changed = _diff_keys(report)
    for key, row in rows.items():
        sides = row["sides"]
        row["changed"] = key in changed or (len(sides) == 2 and sides.get("iptables") != sides.get("nftables"))
    labels = {"iptables": "iptables mode", "nftables": "nftables mode"}
    if predicted and "nftables" not in detail:
        labels["nftables"] = "nftables mode (predicted)"
    for mode in MODES:
        if mode == services.get("current_mode"):
            labels[mode] += " (today)"
    return {"modes": list(MODES), "labels": labels, "rows": list(rows.values())}


def _diff_keys(report: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    diff = report.get("diff") or {}
    keys = set()
    for d in diff.get("differences") or ():
        s = d.get("service")
        if s:
            keys.add((s["name"], s["protocol"], s["family"]))
    return keys


def embedded_json(data: Any) -> str:
    """JSON safe inside a <script type="application/json"> element: no `<`, `>` or `&` survive."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


__all__ = ["MODES", "embedded_json", "frontend_line", "service_rows"]
