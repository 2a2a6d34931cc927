"""`kp-audit diff --format markdown`: a table per classification; everything from the node escaped."""

from __future__ import annotations

from auditor.diff.types import Difference, DiffResult
from auditor.model import RuleRef

_SPECIAL = set("\\`*_{}[]<>()#+-.!|~")


def escape(text: str) -> str:
    """Text from the node (names, rules, comments) as literal Markdown, safe inside a table cell."""
    out = []
    for ch in text.replace("\r", " ").replace("\n", " "):
        out.append("\\" + ch if ch in _SPECIAL else ch)
    return "".join(out).replace("&", "&amp;")


def _rule(rule: RuleRef | None, outcome: str) -> str:
    if rule is None:
        return escape(outcome) if outcome else "none"
    where = f"{rule.table} {rule.chain}" + (f" #{rule.line}" if rule.line else "")
    return escape(f"{where}: {rule.rule}") + (f" → {escape(outcome)}" if outcome else "")


def _row(d: Difference) -> str:
    packet = escape(d.packet.text) if d.packet else escape(d.packet_note or "none")
    why = escape(f"{d.expected}: {d.reason} ({d.source})") if d.expected else escape(d.reason)
    cells = [escape(d.kind.value), escape(d.message), packet, _rule(d.left_rule, d.left_outcome), _rule(d.right_rule, d.right_outcome), why]
    return "| " + " | ".join(cells) + " |"


def render_diff_markdown(result: DiffResult) -> str:
    lines = [
        "# kp-audit diff",
        "",
        f"- left: {escape(result.left.label)} ({result.left.mode.value})",
        f"- right: {escape(result.right.label)} ({result.right.mode.value})",
        f"- unexpected: {result.unexpected}, expected: {result.expected}",
    ]
    lines += [f"- note: {escape(n)}" for n in result.notes]
    for title, items in (
        ("Unexpected differences", [d for d in result.differences if not d.is_expected]),
        ("Expected differences", [d for d in result.differences if d.is_expected]),
    ):
        lines += ["", f"## {title} ({len(items)})", ""]
        if not items:
            lines.append("None.")
            continue
        lines.append("| kind | difference | example packet | left: deciding rule | right: deciding rule | why |")
        lines.append("|---|---|---|---|---|---|")
        lines += [_row(d) for d in items]
    return "\n".join(lines) + "\n"


__all__ = ["escape", "render_diff_markdown"]
