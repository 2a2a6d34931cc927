"""The `kp-audit.report/v1` JSON document: the source of truth every other format renders.

Built from plain inputs (findings, verdict, models, snapshot metadata), so the report layer
depends on the model and the findings only, never on collectors, parsers or checks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from auditor import __version__
from auditor.findings import Evidence, FailOn, Finding, Verdict, Waiver
from auditor.model import ProxyMode, ServiceModel
from auditor.report.services_json import services_document

SCHEMA = "kp-audit.report/v1"


def evidence_data(evidence: Evidence) -> dict[str, Any]:
    return {"what": evidence.what, "value": evidence.value, "source": evidence.source}


def waiver_data(waiver: Waiver | None) -> dict[str, Any] | None:
    if waiver is None:
        return None
    return {
        "check": waiver.check,
        "reason": waiver.reason,
        "owner": waiver.owner,
        "expires": waiver.expires,
        "scope": dict(waiver.scope),
        "expired": waiver.expired,
    }


def finding_data(finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.id,
        "severity": finding.severity.value,
        "status": finding.status.value,
        "title": finding.title,
        "message": finding.message,
        "evidence": [evidence_data(e) for e in finding.evidence],
        "remediation": finding.remediation,
        "docs": finding.docs,
        "details": finding.details,
        "waiver": waiver_data(finding.waiver),
    }


def model_summary(model: ServiceModel) -> dict[str, Any]:
    frontends = [f for s in model.services for f in s.frontends]
    return {
        "mode": model.mode.value,
        "families": [f.value for f in model.families],
        "service_ports": len(model.services),
        "frontends": len(frontends),
        "endpoints": len({(e.address, e.port) for f in frontends for e in f.endpoints}),
        "results": dict(sorted(Counter(f.result.value for f in frontends).items())),
        "node_port_addresses": list(model.node_port_addresses),
        "coverage": {
            "rules_seen": model.rules_seen,
            "rules_modelled": model.rules_modelled,
            "ratio": round(model.coverage, 6),
            "unmodelled": len(model.unmodelled),
        },
    }


def build_report(
    *,
    node: str,
    findings: Sequence[Finding],
    verdict: Verdict,
    catalogue_version: str,
    models: Mapping[ProxyMode, ServiceModel],
    current_mode: ProxyMode | None,
    snapshot: Mapping[str, Any] | None = None,
    fail_on: FailOn = FailOn.BLOCKER,
    exit_code: int = 0,
    cluster: str | None = None,
    diff: Mapping[str, Any] | None = None,
    predicted: Mapping[str, Any] | None = None,
    paths: Mapping[str, Any] | None = None,
    waivers: Sequence[Mapping[str, Any]] = (),
    exit_zero: bool = False,
    target_version: str | None = None,
    created: datetime | None = None,
    include_services: bool = True,
) -> dict[str, Any]:
    """The whole report; `include_services` puts every Service of every mode in it (for HTML).

    Sections: `services.predicted` is the nftables side of an iptables-only node (None when
    the node holds nftables state); `diff` is {"kind": "compare"|"prediction", ...the
    kp-audit.diff/v1 fields}; `paths` the rule counts of the chart; `waivers` what each waiver did.
    """
    counts = Counter(f.status.value for f in findings)
    levels = Counter(f.level.value for f in findings if f.level is not None)
    return {
        "schema": SCHEMA,
        "tool": {"name": "kp-audit", "version": __version__},
        "catalogue_version": catalogue_version,
        "node": node,
        "cluster": cluster,
        "created": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target_version": target_version,
        "snapshot": dict(snapshot) if snapshot is not None else None,
        "verdict": verdict.value,
        "fail_on": fail_on.value,
        "exit_zero": exit_zero,
        "exit_code": exit_code,
        "summary": {
            "blockers": levels.get("blocker", 0),
            "warnings": levels.get("warning", 0),
            "skipped": counts.get("skipped", 0),
            "errors": counts.get("error", 0),
            "checks": len(findings),
            "by_status": dict(sorted(counts.items())),
        },
        "findings": [finding_data(f) for f in findings],
        "waivers": [dict(w) for w in waivers],
        "services": {
            "current_mode": current_mode.value if current_mode else None,
            "models": {mode.value: model_summary(m) for mode, m in sorted(models.items())},
            "detail": {mode.value: services_document(m) for mode, m in sorted(models.items())} if include_services else {},
            "predicted": dict(predicted) if predicted is not None else None,
        },
        "diff": dict(diff) if diff is not None else None,
        "paths": dict(paths) if paths is not None else None,
    }


def findings_by_level(findings: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Report findings grouped for display: blockers, warnings, errors (not evaluated), waived, info, ok."""
    groups: dict[str, list[Mapping[str, Any]]] = {
        "blocker": [], "warning": [], "error": [], "skipped": [], "info": [], "ok": []
    }
    for f in findings:
        status = f["status"]
        if status == "fail":
            groups["blocker" if f["severity"] == "blocker" else "warning" if f["severity"] == "warning" else "info"].append(f)
        elif status == "warn" and f["severity"] != "info":
            groups["warning"].append(f)
        elif status == "error":
            groups["error"].append(f)
        elif status == "skipped":
            groups["skipped"].append(f)
        elif status in ("info", "warn"):
            groups["info"].append(f)
        else:
            groups["ok"].append(f)
    return groups


#: display order and headings of `findings_by_level` groups, shared by every renderer
GROUP_HEADINGS: dict[str, str] = {
    "blocker": "Blockers",
    "warning": "Warnings",
    "error": "Not evaluated",
    "skipped": "Waived (skipped)",
    "info": "For your information",
    "ok": "Passed or not applicable",
}
