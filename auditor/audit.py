"""The whole offline pipeline for one snapshot: context -> checks -> waivers -> verdict -> report document."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from auditor.check.load import context_from_snapshot
from auditor.check.registry import CATALOGUE_VERSION, REGISTRY
from auditor.check.runner import node_verdict, run_checks
from auditor.check.waivers import WaiverRule, WaiverUse, apply_waivers_with_uses
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
    waivers: tuple[WaiverRule, ...] = ()
    #: the day waiver expiry is judged against (default: today, UTC)
    today: date | None = None
    #: exit 0 whatever the verdict (the report still says it): for Jobs that only report
    exit_zero: bool = False
    #: the diff, the predicted nftables side and the rule-path chart (off: findings only)
    sections: bool = True
    created: datetime | None = None


@dataclass(frozen=True)
class AuditResult:
    report: dict[str, Any]
    exit_code: int
    findings: tuple[Finding, ...] = field(default=())


def audit_snapshot(snapshot: Snapshot, options: AuditOptions = AuditOptions()) -> AuditResult:
    """Run every check on a snapshot, apply the waivers and build the report document."""
    ctx = context_from_snapshot(snapshot, options.target_version)
    findings = tuple(run_checks(ctx, REGISTRY, options.only))
    uses: tuple[WaiverUse, ...] = ()
    today = options.today or datetime.now(UTC).date()
    if options.waivers:
        findings, uses = apply_waivers_with_uses(findings, options.waivers, node=ctx.node, today=today)
    verdict = node_verdict(findings, ctx)
    code = 0 if options.exit_zero else exit_code_for(verdict, findings, options.fail_on)
    diff = paths = predicted = None
    if options.sections:
        from auditor.sections import diff_section, paths_section, predicted_side

        diff = diff_section(ctx, snapshot.host)
        predicted = predicted_side(ctx.models, diff)
        paths = paths_section(ctx)
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
        exit_zero=options.exit_zero,
        cluster=options.cluster,
        diff=diff,
        predicted=predicted,
        paths=paths,
        waivers=[waiver_use_data(u) for u in uses],
        target_version=str(options.target_version) if options.target_version else None,
        created=options.created,
    )
    return AuditResult(report, code, findings)


def waiver_use_data(use: WaiverUse) -> dict[str, Any]:
    rule = use.rule
    return {
        "check": rule.check,
        "reason": rule.reason,
        "owner": rule.owner,
        "expires": rule.expires.isoformat(),
        "scope": rule.scope.as_dict(),
        "origin": rule.origin,
        "state": "active" if use.active else "expired",
        "waived": list(use.waived),
        "expired_on": list(use.expired_on),
        "not_applied": list(use.not_covered),
    }
