"""Small text helpers every renderer shares: plural counts, evidence lines, verdict words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VERDICT_WORDS = {
    "ready": "Ready",
    "ready-with-warnings": "Ready with warnings",
    "blocked": "Blocked",
    "incomplete": "Incomplete",
}


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def counts_line(report: Mapping[str, Any]) -> str:
    """`1 blocker, 2 warnings, 1 waived, 0 not evaluated`."""
    s = report["summary"]
    return ", ".join(
        (
            plural(s["blockers"], "blocker"),
            plural(s["warnings"], "warning"),
            f"{s.get('skipped', 0)} waived",
            f"{s.get('errors', 0)} not evaluated",
        )
    )


def evidence_text(e: Mapping[str, Any]) -> str:
    """`what: value (source)`."""
    value = f": {e['value']}" if e.get("value") is not None else ""
    source = f" ({e['source']})" if e.get("source") else ""
    return f"{e['what']}{value}{source}"


def verdict_word(verdict: str) -> str:
    return VERDICT_WORDS.get(verdict, verdict)


def headline(report: Mapping[str, Any]) -> str:
    """`BLOCKED: node vm (cluster prod): 1 blocker, 2 warnings, 0 waived, 0 not evaluated`."""
    cluster = f" (cluster {report['cluster']})" if report.get("cluster") else ""
    return f"{str(report['verdict']).upper()}: node {report['node']}{cluster}: {counts_line(report)}"


__all__ = ["VERDICT_WORDS", "counts_line", "evidence_text", "headline", "plural", "verdict_word"]
