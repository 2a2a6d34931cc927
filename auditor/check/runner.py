"""Run the registered checks over one node and turn their outcomes into findings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from auditor.check.base import Check
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Finding, Status, Verdict, verdict_of


def run_check(check: Check, ctx: CheckContext) -> Finding:
    """One check, never raising: a missing required source or a crash is an ERROR finding."""
    missing = [name for name in check.needs if name not in ctx.models and not _source_present(ctx, name)]
    if missing:
        outcome_status, message = Status.ERROR, f"cannot evaluate: {', '.join(missing)} state is missing"
        return _finding(check, outcome_status, message)
    try:
        outcome = check.run(ctx)
    except Exception as exc:  # a check bug must not hide the other findings
        return _finding(check, Status.ERROR, f"check failed: {type(exc).__name__}: {exc}")
    return Finding(
        id=check.id,
        severity=check.severity,
        status=outcome.status,
        title=check.title,
        message=outcome.message,
        evidence=outcome.evidence,
        remediation=outcome.remediation or check.remediation,
        docs=check.docs,
        details=dict(outcome.details),
    )


def _source_present(ctx: CheckContext, name: str) -> bool:
    if name == "iptables":
        return bool(ctx.iptables)
    if name == "nftables":
        return ctx.nft is not None
    return ctx.source_ok(name)


def _finding(check: Check, status: Status, message: str) -> Finding:
    return Finding(check.id, check.severity, status, check.title, message, remediation=check.remediation, docs=check.docs)


def run_checks(ctx: CheckContext, registry: Mapping[CheckID, type[Check]], only: Iterable[str] = ()) -> list[Finding]:
    """Every registered check (or only the IDs in `only`), in ID order."""
    wanted = set(only)
    return [run_check(cls(), ctx) for cid, cls in sorted(registry.items()) if not wanted or cid in wanted]


def node_verdict(findings: Iterable[Finding], ctx: CheckContext) -> Verdict:
    return verdict_of(findings, incomplete=bool(ctx.incomplete))
