"""The whole offline pipeline for one snapshot: context -> checks -> verdict -> report document."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from auditor.check.load import context_from_snapshot
from auditor.check.registry import CATALOGUE_VERSION, REGISTRY
from auditor.check.runner import node_verdict, run_checks
from auditor.collect.snapshot import Snapshot
from auditor.findings import FailOn, Finding, exit_code_for
from auditor.report.document import build_report
from auditor.versions import Version


@dataclass(frozen=True)
class AuditOptions:
    fail_on: FailOn = FailOn.BLOCKER
    target_version: Version | None = None
    only: tuple[str, ...] = ()
    cluster: str | None = None
    #: applied after the checks ran (see auditor.check.waivers)
    waivers: tuple[Any, ...] = ()
    today: date | None = None
    exit_zero: bool = False


@dataclass(frozen=True)
class AuditResult:
    report: dict[str, Any]
    exit_code: int
    findings: tuple[Finding, ...] = field(default=())


def audit_snapshot(snapshot: Snapshot, options: AuditOptions = AuditOptions()) -> AuditResult:
    """Run every check on a snapshot and build the report document."""
    ctx = context_from_snapshot(snapshot, options.target_version)
    findings: Iterable[Finding] = run_checks(ctx, REGISTRY, options.only)
    if options.waivers:
        from auditor.check.waivers import apply_waivers

        findings = apply_waivers(findings, options.waivers, node=ctx.node, today=options.today)
    findings = tuple(findings)
    verdict = node_verdict(findings, ctx)
    code = 0 if options.exit_zero else exit_code_for(verdict, findings, options.fail_on)
    meta = snapshot.meta
    report = build_report(
        node=ctx.node,
        findings=findings,
        verdict=verdict,
        catalogue_version=CATALOGUE_VERSION,
        models=ctx.models,
        current_mode=ctx.current_mode,
        snapshot={
            "location": snapshot.location,
            "created": meta.created,
            "tool_version": meta.tool_version,
            "complete": not ctx.incomplete,
            "incomplete_reasons": list(ctx.incomplete),
            "sources": {name: {"ok": r.ok, "error": r.error, "absent": r.absent} for name, r in meta.sources.items()},
        },
        fail_on=options.fail_on,
        exit_code=code,
        cluster=options.cluster,
    )
    return AuditResult(report, code, findings)
