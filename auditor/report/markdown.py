"""The Markdown report, for a pull-request comment: verdict, findings that need action with
their evidence and remediation, the rest folded away, services and the diff in short.

Everything from the node goes through `escape` (text) or `code` (a code span): no HTML, no
link, no emphasis can come from a rule comment or a chain name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.report.document import GROUP_HEADINGS, findings_by_level
from auditor.report.text import counts_line, evidence_text, verdict_word

_ICON = {"ready": "✅", "ready-with-warnings": "⚠️", "blocked": "⛔", "incomplete": "❔"}
#: what makes inline Markdown syntax; `#`, `+`, `(` only matter at a line start or after `]`
_PUNCTUATION = set("\\`*_[]|~")
#: evidence items shown per finding (the JSON report has them all)
SHOWN_EVIDENCE = 6
SHOWN_DIFFERENCES = 25


def escape(text: object) -> str:
    """Node text as literal Markdown inline text (safe in a table cell, on one line)."""
    out = []
    for ch in str(text).replace("\r", " ").replace("\n", " "):
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == "@":
            out.append("&#64;")  # no @-mentions from the node
        elif ch in _PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def code(text: object) -> str:
    """Node text as a code span (a table-safe one: `|` escaped, backticks fenced)."""
    body = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    fence = "`"
    while fence in body:
        fence += "`"
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def _finding(f: Mapping[str, Any], detailed: bool) -> list[str]:
    lines = [f"- **{escape(f['id'])}** {escape(f['title'])}  ", f"  {escape(f['message'])}"]
    if not detailed:
        return lines
    evidence = f["evidence"][:SHOWN_EVIDENCE]
    for e in evidence:
        lines.append(f"  - {code(evidence_text(e))}")
    if len(f["evidence"]) > SHOWN_EVIDENCE:
        lines.append(f"  - … {len(f['evidence']) - SHOWN_EVIDENCE} more in the JSON report")
    if f.get("remediation") and f["status"] != "error":
        lines.append(f"  - **Fix:** {escape(f['remediation'])}")
    if f.get("docs"):
        lines.append(f"  - Docs: {code(f['docs'])}")
    return lines


def _services(report: Mapping[str, Any]) -> list[str]:
    models = report["services"]["models"]
    if not models:
        return []
    lines = ["", "### Services", "", "| mode | service ports | frontends | endpoints | results | rules modelled |", "|---|---:|---:|---:|---|---|"]
    for mode, m in models.items():
        cov = m["coverage"]
        results = ", ".join(f"{k} {v}" for k, v in m["results"].items())
        lines.append(
            f"| {escape(mode)} | {m['service_ports']} | {m['frontends']} | {m['endpoints']} | {escape(results)} | "
            f"{cov['rules_modelled']}/{cov['rules_seen']} ({cov['ratio']:.1%}) |"
        )
    predicted = report["services"].get("predicted")
    if predicted:
        where = predicted.get("node_port_addresses")
        answered = ", ".join(where) if where else "unknown (no node addresses recorded)" if where is None else "none"
        lines.append(f"| nftables (predicted) | same | same | same | same | NodePorts answer on: {escape(answered)} |")
    return lines


def _diff(report: Mapping[str, Any]) -> list[str]:
    diff = report.get("diff")
    if not diff:
        return []
    title = "Differences iptables → nftables" + (" (predicted)" if diff.get("kind") == "prediction" else "")
    if diff.get("error"):
        return ["", f"### {title}", "", f"The diff could not be computed: {escape(diff['error'])}"]
    s = diff["summary"]
    lines = ["", f"### {title}", "", f"{s['unexpected']} unexpected, {s['expected']} expected.", ""]
    items = diff["differences"]
    if not items:
        return [*lines, "No difference."]
    lines += ["| | kind | difference | example packet |", "|---|---|---|---|"]
    for d in items[:SHOWN_DIFFERENCES]:
        mark = "unexpected" if d["classification"] == "unexpected" else "expected"
        packet = code(_packet(d["packet"])) if d.get("packet") else escape(d.get("packet_note") or "")
        lines.append(f"| **{mark}** | {escape(d['kind'])} | {escape(d['message'])} | {packet} |")
    if len(items) > SHOWN_DIFFERENCES:
        lines.append(f"\n… {len(items) - SHOWN_DIFFERENCES} more in the JSON report.")
    return lines


def _packet(p: Mapping[str, Any]) -> str:
    dst = f"[{p['dst']}]" if ":" in str(p["dst"]) else p["dst"]
    return f"{p['protocol']} {p['src']} -> {dst}:{p['port']} ({p['hook']})"


def _paths(report: Mapping[str, Any]) -> list[str]:
    paths = report.get("paths")
    if not paths or not paths.get("samples"):
        return []
    lines = ["", "### Rules a packet crosses", "", "| Service (position in KUBE-SERVICES) | iptables | nftables |", "|---|---:|---:|"]
    for s in paths["samples"]:
        nft = f"{s['nftables']['rules']}" + (" (predicted)" if s["nftables"].get("predicted") else "")
        lines.append(f"| {code(s['service'])} ({s['position']} of {s['of']}) | {s['iptables']['rules']} | {nft} |")
    return [*lines, "", escape(paths.get("note", ""))]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The whole Markdown report."""
    verdict = str(report["verdict"])
    cluster = f", cluster {code(report['cluster'])}" if report.get("cluster") else ""
    lines = [
        f"## {_ICON.get(verdict, '')} kp-audit: {escape(verdict_word(verdict))} — node {code(report['node'])}{cluster}",
        "",
        f"**{escape(counts_line(report))}** · kube-proxy iptables → nftables · kp-audit {escape(report['tool']['version'])}, "
        f"checks {escape(report['catalogue_version'])} · {escape(report['created'])} · exit code {report['exit_code']}",
    ]
    for reason in (report.get("snapshot") or {}).get("incomplete_reasons") or ():
        lines.append(f"\n> **Incomplete:** {escape(reason)}")
    groups = findings_by_level(report["findings"])
    for level in ("blocker", "warning", "error", "skipped"):
        if groups[level]:
            lines += ["", f"### {GROUP_HEADINGS[level]} ({len(groups[level])})", ""]
            for f in groups[level]:
                lines += _finding(f, detailed=level != "skipped")
                if level == "skipped" and f.get("waiver"):
                    w = f["waiver"]
                    lines.append(f"  - waiver: owner {escape(w['owner'])}, expires {escape(w['expires'])}")
    rest = groups["info"] + groups["ok"]
    if rest:
        lines += ["", f"<details><summary>{len(groups['info'])} for information, {len(groups['ok'])} passed or not applicable</summary>", ""]
        for f in rest:
            lines.append(f"- {escape(f['id'])} ({escape(f['status'])}) {escape(f['title'])}: {escape(f['message'])}")
        lines += ["", "</details>"]
    lines += _services(report)
    lines += _diff(report)
    lines += _paths(report)
    return "\n".join(lines) + "\n"


__all__ = ["code", "escape", "render_markdown"]
