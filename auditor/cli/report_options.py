"""The options `check`, `scan` and `demo` share (formats, output directory, CI gate, waivers),
each with its `KP_AUDIT_*` environment variable, and writing the reports.

Formats: `--format` is repeatable and takes comma-separated lists (`KP_AUDIT_FORMAT=json,html`).
Without `--output-dir` one format goes to stdout (html and junit need a directory); with it,
every format but `console` is written to DIR/report.{json,html,xml,md} and `console` still
prints to stdout; `--output-dir` without `--format` writes all four files. Reports are
rendered in memory first and each file is written to a temporary name and renamed, so a
failed run leaves no half-written report.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from auditor.audit import AuditOptions
from auditor.check.registry import REGISTRY
from auditor.check.waivers import WaiverRule, load_waivers
from auditor.errors import InputError
from auditor.findings import FailOn
from auditor.report.formats import FORMATS
from auditor.report.text import headline
from auditor.versions import Version, parse_version

FILE_FORMATS = tuple(name for name, f in FORMATS.items() if f.filename)

FORMAT = typer.Option(
    [],
    "--format",
    "-f",
    envvar="KP_AUDIT_FORMAT",
    metavar="FORMAT",
    help=f"Report format, repeatable or comma-separated: {', '.join(FORMATS)} (default: console).",
)
OUTPUT_DIR = typer.Option(
    None,
    "--output-dir",
    "-o",
    envvar="KP_AUDIT_OUTPUT_DIR",
    metavar="DIR",
    help="Write the reports here (report.json, report.html, report.xml, report.md); needed for html, junit or several formats.",
)
FAIL_ON = typer.Option(
    FailOn.BLOCKER,
    "--fail-on",
    envvar="KP_AUDIT_FAIL_ON",
    help="Lowest severity that fails the run: blocker (exit 2), warning (exit 1 or 2), never.",
)
EXIT_ZERO = typer.Option(
    False,
    "--exit-zero",
    envvar="KP_AUDIT_EXIT_ZERO",
    help="Exit 0 whatever the verdict (a Job that only reports); bad input still exits 3.",
)
WAIVERS = typer.Option(
    None,
    "--waivers",
    envvar="KP_AUDIT_WAIVERS",
    metavar="FILE",
    help="YAML waiver file: check, reason, owner, expires, optional scope (node, service, chain globs).",
)
TODAY = typer.Option(
    None,
    "--today",
    envvar="KP_AUDIT_TODAY",
    metavar="YYYY-MM-DD",
    help="Judge waiver expiry as of this date (default: today, UTC).",
)
CLUSTER = typer.Option(
    None, "--cluster", envvar="KP_AUDIT_CLUSTER", metavar="NAME", help="The cluster's name, for the report."
)
TARGET_VERSION = typer.Option(
    None,
    "--target-version",
    envvar="KP_AUDIT_TARGET_VERSION",
    metavar="VERSION",
    help="The kube-proxy version the node will run after the switch (default: the one found).",
)
ONLY = typer.Option(
    [],
    "--only",
    envvar="KP_AUDIT_ONLY",
    metavar="KPA-NNN",
    help="Run only these checks (repeatable or comma-separated).",
)
NO_COLOR = typer.Option(False, "--no-color", envvar="KP_AUDIT_NO_COLOR", help="No colour in the console report.")


def split_list(values: Iterable[str]) -> list[str]:
    """`["json,html", "markdown"]` -> `["json", "html", "markdown"]` (order kept, no repeats)."""
    out: list[str] = []
    for value in values:
        for item in re.split(r"[,\s]+", value.strip()):
            if item and item not in out:
                out.append(item)
    return out


def target_version_option(value: str | None) -> Version | None:
    if not value:
        return None
    version = parse_version(value)
    if version is None:
        raise InputError("--target-version", f"not a version: {value!r} (expected e.g. 1.33 or v1.33.2)")
    return version


def today_option(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("--today", f"not a date: {value!r} (expected YYYY-MM-DD)") from None


def waivers_option(path: str | None) -> tuple[WaiverRule, ...]:
    return load_waivers(path, known_checks=set(REGISTRY)) if path else ()


def only_option(values: Iterable[str]) -> tuple[str, ...]:
    checks = tuple(c.upper() for c in split_list(values))
    unknown = [c for c in checks if c not in REGISTRY]
    if unknown:
        raise InputError("--only", f"no such check: {', '.join(unknown)} (see `kp-audit checks`)")
    return checks


@dataclass(frozen=True)
class OutputRequest:
    formats: tuple[str, ...]
    output_dir: Path | None = None
    no_color: bool = False


def audit_options(
    *,
    fail_on: FailOn,
    target_version: str | None,
    only: Iterable[str],
    cluster: str | None,
    waivers: str | None,
    today: str | None,
    exit_zero: bool,
) -> AuditOptions:
    """The audit's options from the shared flags of `check` and `scan`, validated."""
    return AuditOptions(
        fail_on=fail_on,
        target_version=target_version_option(target_version),
        only=only_option(only),
        cluster=cluster or None,
        waivers=waivers_option(waivers),
        today=today_option(today),
        exit_zero=exit_zero,
    )


def output_request(formats: Iterable[str], output_dir: str | None, no_color: bool = False) -> OutputRequest:
    """Validate `--format`/`--output-dir` before any work is done."""
    names = [n.lower() for n in split_list(formats)]
    unknown = [n for n in names if n not in FORMATS]
    if unknown:
        raise InputError("--format", f"unknown format {', '.join(unknown)} (one of {', '.join(FORMATS)})")
    if not names:
        names = ["console", *FILE_FORMATS] if output_dir else ["console"]
    if output_dir is None:
        if len(names) > 1:
            raise InputError("--format", f"{', '.join(names)}: several formats need --output-dir DIR")
        if FORMATS[names[0]].file_only:
            raise InputError("--format", f"{names[0]} is written to a file: give --output-dir DIR")
        return OutputRequest(tuple(names), None, no_color)
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise InputError(str(out), "--output-dir is not a directory")
    return OutputRequest(tuple(names), out, no_color)


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit_reports(report: Mapping[str, Any], request: OutputRequest) -> list[Path]:
    """Render every requested format, then write the files and print to stdout; returns the files."""
    from auditor.report.console import print_report

    files = {
        FORMATS[name].filename or "": FORMATS[name].render(report)
        for name in request.formats
        if request.output_dir is not None and name != "console"
    }
    written: list[Path] = []
    if request.output_dir is not None:
        try:
            request.output_dir.mkdir(parents=True, exist_ok=True)
            for filename, text in files.items():
                target = request.output_dir / filename
                write_atomic(target, text)
                written.append(target)
        except OSError as exc:
            raise InputError(str(request.output_dir), f"cannot write the reports: {exc.strerror or exc}") from exc
    if "console" in request.formats:
        print_report(report, Console(no_color=request.no_color, highlight=False))
    elif request.output_dir is None:
        typer.echo(FORMATS[request.formats[0]].render(report), nl=False)
    else:
        sys.stderr.write(f"kp-audit: {headline(report)}\n")
    if written:
        sys.stderr.write(f"kp-audit: wrote {', '.join(str(p) for p in written)}\n")
    return written


__all__ = [
    "CLUSTER",
    "EXIT_ZERO",
    "FAIL_ON",
    "FILE_FORMATS",
    "FORMAT",
    "NO_COLOR",
    "ONLY",
    "OUTPUT_DIR",
    "TARGET_VERSION",
    "TODAY",
    "WAIVERS",
    "OutputRequest",
    "emit_reports",
    "only_option",
    "output_request",
    "split_list",
    "target_version_option",
    "today_option",
    "waivers_option",
    "write_atomic",
]
