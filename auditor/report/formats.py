"""Every report format, by name: a new format is one module with a `render(report) -> str`
and one entry here. Renderers take the `kp-audit.report/v1` document, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.report.console import render_console
from auditor.report.html import render_html
from auditor.report.json_report import render_json
from auditor.report.junit import render_junit
from auditor.report.markdown import render_markdown

Renderer = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class ReportFormat:
    name: str
    #: the file it is written to in `--output-dir` (None: never a file, always stdout)
    filename: str | None
    render: Renderer
    description: str
    #: only written to a file (too big or not meant for a terminal)
    file_only: bool = False


FORMATS: dict[str, ReportFormat] = {
    f.name: f
    for f in (
        ReportFormat("console", None, render_console, "verdict banner, findings by severity, services summary (stdout)"),
        ReportFormat("json", "report.json", render_json, "the kp-audit.report/v1 document: the source of truth"),
        ReportFormat("html", "report.html", render_html, "one self-contained page for operators", file_only=True),
        ReportFormat("junit", "report.xml", render_junit, "JUnit XML: one test case per check", file_only=True),
        ReportFormat("markdown", "report.md", render_markdown, "for a pull-request comment"),
    )
}


def format_names() -> list[str]:
    return list(FORMATS)


__all__ = ["FORMATS", "Renderer", "ReportFormat", "format_names"]
