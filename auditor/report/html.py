"""The HTML report for operators: one self-contained file (inline CSS, JS and SVG; no network).

Sections: verdict banner with counts; findings by severity with evidence, remediation and
their detail tables; the NodePort x address table of what stops answering; the services of
both modes side by side (searchable, paged); the diff with expected/unexpected marked; the
rules-per-packet chart; waivers; snapshot sources and coverage.

Every string from the report goes through `html.escape` (or, for the services table, into
JSON that the page's script writes with `textContent`). A Content-Security-Policy allows
only this page's own style and script (by hash) and no connection of any kind.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from importlib import resources
from typing import Any

from auditor.report.document import GROUP_HEADINGS, findings_by_level
from auditor.report.html_chart import rules_chart
from auditor.report.html_services import embedded_json, service_rows
from auditor.report.text import plural, verdict_word

#: rows shown per details table inside a finding (the JSON report has them all)
DETAIL_ROWS = 200
_LEVEL_OPEN = {"blocker", "warning", "error"}
#: the check whose details["nodeports"] rows are the NodePort x address table
NODEPORTS_CHECK = "KPA-008"


def _asset(name: str) -> str:
    return resources.files("auditor.report").joinpath("assets", name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def e(value: object) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return escape("" if value is None else str(value), quote=True)


def _badge(text: str, kind: str | None = None) -> str:
    return f'<span class="badge badge-{e(kind or text)}">{e(text)}</span>'


# -- banner ------------------------------------------------------------------------------------


def _banner(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    verdict = str(report["verdict"])
    by_status = s.get("by_status", {})
    passed = by_status.get("pass", 0) + by_status.get("not-applicable", 0)
    counts = [
        ("blocker", plural(s["blockers"], "blocker")),
        ("warning", plural(s["warnings"], "warning")),
        ("error", f"{s.get('errors', 0)} not evaluated"),
        ("skipped", f"{s.get('skipped', 0)} waived"),
        ("ok", f"{passed} passed"),
    ]
    chips = "".join(f'<span class="count count-{k}" data-count="{k}">{e(t)}</span>' for k, t in counts)
    gate = f"fail on {report['fail_on']}" + (", --exit-zero" if report.get("exit_zero") else "")
    return (
        f'<section id="verdict" class="banner verdict-{e(verdict)}" data-verdict="{e(verdict)}">'
        f'<div class="verdict">{e(verdict_word(verdict).upper())}</div>'
        f'<div class="counts">{chips}</div>'
        f'<div class="exit">exit code {e(report["exit_code"])} ({e(gate)})</div></section>'
    )


def _meta(report: Mapping[str, Any]) -> str:
    snap = report.get("snapshot") or {}
    items = [
        ("node", report["node"]),
        ("cluster", report.get("cluster") or "not given"),
        ("created", report["created"]),
        ("kp-audit", report["tool"]["version"]),
        ("checks", report["catalogue_version"]),
        ("target kube-proxy", report.get("target_version") or "as found"),
        ("snapshot", snap.get("location")),
    ]
    spans = "".join(f"<span><b>{e(k)}</b> {e(v)}</span>" for k, v in items if v is not None)
    reasons = "".join(f'<div class="incomplete">Incomplete: {e(r)}</div>' for r in snap.get("incomplete_reasons") or ())
    return f'<p class="meta">{spans}</p>{reasons}'


# -- findings ----------------------------------------------------------------------------------


def _evidence(items: Sequence[Mapping[str, Any]]) -> str:
    if not items:
        return ""
    rows = "".join(
        f'<tr><td>{e(x["what"])}</td><td class="mono">{e(x["value"]) if x.get("value") is not None else "—"}</td>'
        f'<td class="mono">{e(x.get("source"))}</td></tr>'
        for x in items
    )
    return f'<table class="evidence"><thead><tr><th>evidence</th><th>value</th><th>source</th></tr></thead><tbody>{rows}</tbody></table>'


def _scalar(v: object) -> bool:
    return v is None or isinstance(v, str | int | float | bool)


def _detail_tables(details: Mapping[str, Any]) -> str:
    """A table for every details entry that is a list of flat rows."""
    out = []
    for key, value in details.items():
        if not isinstance(value, list) or not value or not all(isinstance(r, Mapping) for r in value):
            continue
        columns = list(dict.fromkeys(k for r in value for k, v in r.items() if _scalar(v)))
        if not columns:
            continue
        head = "".join(f"<th>{e(c)}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f'<td class="mono">{e(_cell(r.get(c)))}</td>' for c in columns) + "</tr>"
            for r in value[:DETAIL_ROWS]
        )
        more = f'<p class="note">{len(value) - DETAIL_ROWS} more rows in the JSON report</p>' if len(value) > DETAIL_ROWS else ""
        out.append(f"<h4>{e(key.replace('_', ' '))} ({len(value)})</h4><table class=\"details\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}")
    return "".join(out)


def _cell(v: object) -> str:
    if v is True:
        return "yes"
    if v is False:
        return "no"
    return "" if v is None else str(v)


def _waiver(f: Mapping[str, Any]) -> str:
    w = f.get("waiver")
    if not w:
        return ""
    state = "expired" if w.get("expired") else "active"
    scope = ", ".join(f"{k} {v}" for k, v in (w.get("scope") or {}).items()) or "every node"
    return (
        f'<div class="waiver">{_badge("waiver " + state, state)} owner {e(w["owner"])}, '
        f"{'expired on' if state == 'expired' else 'expires'} {e(w['expires'])}, scope {e(scope)}: {e(w['reason'])}</div>"
    )


def _finding(f: Mapping[str, Any], level: str) -> str:
    status = str(f["status"])
    fix = f'<div class="fix"><b>Fix:</b> {e(f["remediation"])}</div>' if f.get("remediation") and status not in ("pass", "not-applicable") else ""
    docs = f'<p class="note">Docs: <code>{e(f["docs"])}</code></p>' if f.get("docs") else ""
    is_open = " open" if level in _LEVEL_OPEN else ""
    return (
        f'<details class="finding level-{e(level)}" data-id="{e(f["id"])}" data-status="{e(status)}"{is_open}>'
        f'<summary><span class="id">{e(f["id"])}</span>{_badge(status)}{_badge(f["severity"]) if status == "fail" else ""}'
        f'<span class="title">{e(f["title"])}</span></summary><div class="body">'
        f'<p class="message">{e(f["message"])}</p>{_waiver(f)}{_evidence(f["evidence"])}'
        f'{_detail_tables(f.get("details") or {})}{fix}{docs}</div></details>'
    )


def _findings(report: Mapping[str, Any]) -> str:
    groups = findings_by_level(report["findings"])
    out = ['<section id="findings"><h2>Findings</h2>']
    for level, heading in GROUP_HEADINGS.items():
        items = groups[level]
        if not items:
            continue
        out.append(f'<div class="group" id="group-{level}"><h3>{e(heading)} ({len(items)})</h3>')
        out += [_finding(f, level) for f in items]
        out.append("</div>")
    return "".join(out) + "</section>"


# -- tables ------------------------------------------------------------------------------------


def _nodeports(report: Mapping[str, Any]) -> str:
    rows = [
        r
        for f in report["findings"]
        if f["id"] == NODEPORTS_CHECK
        for r in (f.get("details") or {}).get("nodeports") or ()
        if isinstance(r, Mapping)
    ]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{e(r.get('service'))}</td><td>{e(r.get('protocol'))}/{e(r.get('port'))}</td>"
        f"<td class=\"mono\">{e(r.get('address'))}</td><td>{e(r.get('interface'))}</td><td>{e(r.get('kind'))}</td>"
        f"<td>{'answers' if r.get('today') else 'no'}</td><td>{_badge('stops answering', 'blocker') if not r.get('after') else 'answers'}</td></tr>"
        for r in rows
    )
    return (
        '<section id="nodeports"><h2>NodePorts that stop answering</h2>'
        '<p class="note">Every NodePort x node address that answers in iptables mode today and will not in nftables mode (KPA-008).</p>'
        "<table><thead><tr><th>Service</th><th>port</th><th>address</th><th>interface</th><th>kind</th>"
        f"<th>iptables (today)</th><th>nftables</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def _services(report: Mapping[str, Any]) -> str:
    data = service_rows(report)
    models = report["services"]["models"]
    summary = "".join(
        f"<tr><td>{e(mode)}</td><td class=\"num\">{m['service_ports']}</td><td class=\"num\">{m['frontends']}</td>"
        f"<td class=\"num\">{m['endpoints']}</td><td>{e(', '.join(f'{k} {v}' for k, v in m['results'].items()))}</td>"
        f"<td>{m['coverage']['rules_modelled']}/{m['coverage']['rules_seen']} ({m['coverage']['ratio']:.1%})</td></tr>"
        for mode, m in models.items()
    )
    predicted = report["services"].get("predicted")
    note = f'<p class="note">{_badge("predicted")} {e(predicted["note"])}</p>' if predicted else ""
    heads = "".join(f"<th>{e(data['labels'][m])}</th>" for m in data["modes"])
    return (
        '<section id="services"><h2>Services</h2>'
        "<table><thead><tr><th>mode</th><th class=\"num\">Service ports</th><th class=\"num\">frontends</th>"
        f"<th class=\"num\">endpoints</th><th>results</th><th>rules modelled</th></tr></thead><tbody>{summary}</tbody></table>{note}"
        '<div class="toolbar"><input type="search" id="services-search" placeholder="Search Services, addresses, ports…" '
        'aria-label="Search Services"><label><input type="checkbox" id="services-changed"> only those that change</label>'
        '<button type="button" id="services-prev">previous</button><button type="button" id="services-next">next</button>'
        '<span class="status" id="services-status"></span></div>'
        f'<table id="services-table"><thead><tr><th>Service port</th><th>protocol / family</th>{heads}</tr></thead>'
        "<tbody></tbody></table><noscript><p>The services table needs JavaScript; the JSON report holds the same data.</p></noscript>"
        f'<script type="application/json" id="services-data">{embedded_json(data)}</script></section>'
    )


def _rule(rule: Mapping[str, Any] | None, outcome: str) -> str:
    if not rule:
        return e(outcome or "none")
    where = f"{rule['table']} {rule['chain']}" + (f" #{rule['line']}" if rule.get("line") else "")
    text = f'<span class="line mono">{e(where)}: {e(rule["rule"])}</span>'
    return text + (f'<span class="line">→ {e(outcome)}</span>' if outcome else "")


def _packet(p: Mapping[str, Any] | None, note: str) -> str:
    if not p:
        return e(note or "none")
    dst = f"[{p['dst']}]" if ":" in str(p["dst"]) else str(p["dst"])
    return f'<span class="mono">{e(p["protocol"])} {e(p["src"])} → {e(dst)}:{e(p["port"])} ({e(p["hook"])})</span>'


def _diff(report: Mapping[str, Any]) -> str:
    diff = report.get("diff")
    if not diff:
        return ""
    predicted = diff.get("kind") == "prediction"
    title = "Differences: iptables mode → nftables mode" + (" (predicted)" if predicted else "")
    if diff.get("error"):
        return f'<section id="diff"><h2>{e(title)}</h2><p>The diff could not be computed: {e(diff["error"])}</p></section>'
    s = diff["summary"]
    notes = "".join(f'<p class="note">{e(n)}</p>' for n in diff.get("notes") or ())
    rows = "".join(
        f'<tr class="row-{e(d["classification"])}"><td>{_badge(d["classification"])}</td><td>{e(d["kind"])}</td>'
        f"<td>{e(d['message'])}</td><td>{_packet(d.get('packet'), d.get('packet_note', ''))}</td>"
        f"<td>{_rule(d.get('left_rule'), d.get('left_outcome', ''))}</td><td>{_rule(d.get('right_rule'), d.get('right_outcome', ''))}</td>"
        f"<td>{e((d.get('expected_kind') or '') + (': ' if d.get('expected_kind') else '') + (d.get('reason') or ''))}"
        f"{'<br><span class=note>' + e(d['source']) + '</span>' if d.get('source') else ''}</td></tr>"
        for d in diff["differences"]
    )
    table = (
        "<table><thead><tr><th></th><th>kind</th><th>difference</th><th>example packet</th>"
        f"<th>{e(diff['left']['label'])}</th><th>{e(diff['right']['label'])}</th><th>why</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>No difference.</p>"
    )
    return (
        f'<section id="diff"><h2>{e(title)}</h2><p><b>{s["unexpected"]} unexpected</b>, {s["expected"]} expected '
        f"(a deliberate difference between the modes, with its reason and source).</p>{notes}{table}</section>"
    )


def _chart(report: Mapping[str, Any]) -> str:
    paths = report.get("paths")
    if not paths or not paths.get("samples"):
        return ""
    rows = "".join(
        f"<tr><td>{e(s['service'])}</td><td class=\"num\">{s['position']} of {s['of']}</td><td class=\"mono\">{e(s['packet'])}</td>"
        f"<td class=\"num\">{s['iptables']['rules']}</td><td class=\"num\">{s['nftables']['rules']}"
        f"{' (predicted)' if s['nftables'].get('predicted') else ''}</td><td>{e(s['iptables']['outcome'])}</td></tr>"
        for s in paths["samples"]
    )
    return (
        '<section id="chart"><h2>Rules a packet crosses</h2>'
        f'<p class="note">{e(paths.get("note", ""))}</p>{rules_chart(paths)}'
        "<table><thead><tr><th>Service</th><th class=\"num\">position in KUBE-SERVICES</th><th>packet</th>"
        f"<th class=\"num\">iptables rules</th><th class=\"num\">nftables rules</th><th>outcome</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _waivers(report: Mapping[str, Any]) -> str:
    waivers = report.get("waivers") or []
    if not waivers:
        return ""
    rows = "".join(
        f"<tr><td>{e(w['check'])}</td><td>{_badge(w['state'])}</td><td>{e(w['expires'])}</td><td>{e(w['owner'])}</td>"
        f"<td>{e(', '.join(f'{k} {v}' for k, v in w['scope'].items()) or 'every node')}</td><td>{e(w['reason'])}</td>"
        f"<td>{e(', '.join(w['waived']) or '—')}</td><td>{e('; '.join(w['not_applied']))}</td></tr>"
        for w in waivers
    )
    return (
        '<section id="waivers"><h2>Waivers</h2><table><thead><tr><th>check</th><th>state</th><th>expires</th><th>owner</th>'
        f"<th>scope</th><th>reason</th><th>waived here</th><th>not applied</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _sources(report: Mapping[str, Any]) -> str:
    snap = report.get("snapshot") or {}
    sources: Mapping[str, Any] = snap.get("sources") or {}
    if not sources:
        return ""
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{'absent' if s.get('absent') else 'ok' if s.get('ok') else 'failed'}</td><td>{e(s.get('error') or '')}</td></tr>"
        for name, s in sorted(sources.items())
    )
    return (
        '<section id="sources"><h2>Snapshot sources</h2>'
        f"<table><thead><tr><th>source</th><th>state</th><th>error</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _nav(sections: Iterable[tuple[str, str]]) -> str:
    return "<nav>" + "".join(f'<a href="#{anchor}">{e(label)}</a>' for anchor, label in sections) + "</nav>"


def render_html(report: Mapping[str, Any]) -> str:
    """The whole page."""
    css, js = _asset("report.css"), _asset("report.js")
    csp = f"default-src 'none'; style-src {_hash(css)}; script-src {_hash(js)}; img-src data:; base-uri 'none'; form-action 'none'"
    parts = [
        ("verdict", "Verdict", _banner(report)),
        ("findings", "Findings", _findings(report)),
        ("nodeports", "NodePorts", _nodeports(report)),
        ("services", "Services", _services(report)),
        ("diff", "Diff", _diff(report)),
        ("chart", "Rules per packet", _chart(report)),
        ("waivers", "Waivers", _waivers(report)),
        ("sources", "Sources", _sources(report)),
    ]
    nav = _nav((anchor, label) for anchor, label, html in parts if html)
    title = f"kp-audit: {verdict_word(str(report['verdict']))}: node {report['node']}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{css}</style></head><body><main>"
        f"<h1>kp-audit report: node {e(report['node'])}</h1>"
        "<p class=\"meta\">Is this node safe to move kube-proxy from iptables mode to nftables mode, and what will change?</p>"
        f"{_meta(report)}{nav}{''.join(html for _, _, html in parts)}"
        f"<footer>kp-audit {e(report['tool']['version'])} · {e(report['schema'])} · generated {e(report['created'])} · "
        "this file is self-contained and makes no network request</footer>"
        f"</main><script>{js}</script></body></html>\n"
    )


__all__ = ["render_html"]
