"""KPA-020: pods calling `externalTrafficPolicy: Local` external/LB IPs are dropped (kubernetes#131765).

What it checks: Service ports with external IPs or load-balancer IPs under
`externalTrafficPolicy: Local` whose pod and node traffic is short-circuited to all
endpoints today (frontends with `local_only` and `short_circuit` in the model), against
the kube-proxy version that will run nftables mode (`--target-version`, else today's).

Why it matters: until the fix, nftables mode put such IPs in its no-endpoint map with
`drop` on every node without a local endpoint, so pods there calling the Service through
its external or load-balancer IP were black-holed, while iptables and ipvs modes sent
them to endpoints elsewhere (kubernetes#131765). Fixed by PR #132456 (1.34.0) and its
cherry-pick PR #133969 (1.33.6); the reporter said in January 2026 that it was not fully
resolved.

Remediation: run kube-proxy 1.34+ (or 1.33.6+) in nftables mode, or have pods use the
Service's ClusterIP or DNS name instead of its external address.

References: kubernetes#131765, kubernetes PRs #132456, #133969
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import model_source, planned_version, service_model
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import FrontendKind, Result
from auditor.versions import Version

FIXED = Version(1, 34, 0)
#: PR #133969 shipped in v1.33.6
FIXED_1_33 = Version(1, 33, 6)
SHOWN = 5


def has_fix(version: Version) -> bool:
    if version >= FIXED:
        return True
    return (version.major, version.minor) == (1, 33) and version >= FIXED_1_33


class EtpLocalPodTrafficDropped(Check):
    id = CheckID("KPA-020")
    title = "Pods calling externalTrafficPolicy: Local external/LB IPs are dropped on nodes without local endpoints"
    severity = Severity.WARNING
    remediation = (
        "Run kube-proxy 1.34+ (or 1.33.6+) before switching, or make pods call these Services by ClusterIP or DNS name."
    )
    docs = "https://github.com/kubernetes/kubernetes/issues/131765"

    def run(self, ctx: CheckContext) -> Outcome:
        model = service_model(ctx)
        if model is None:
            return self.not_applicable(
                "no kube-proxy state in the snapshot: cannot see externalTrafficPolicy: Local Services"
            )
        affected = []
        evidence: list[Evidence] = []
        for svc in model.services:
            for f in svc.frontends:
                if f.kind not in (FrontendKind.EXTERNAL_IP, FrontendKind.LOAD_BALANCER) or not (
                    f.local_only and f.short_circuit
                ):
                    continue
                here = f.result is not Result.DROP
                affected.append(
                    {
                        "service": svc.name,
                        "kind": f.kind.value,
                        "address": f.address,
                        "port": f.port,
                        "local_endpoints_here": here,
                    }
                )
                if len(evidence) < SHOWN and f.origin:
                    ref = f.origin[0]
                    evidence.append(
                        Evidence(
                            f"{f.kind.value} of {svc.name} (eTP Local)",
                            f"{f.address}:{f.port}",
                            f"{ref.source}:{ref.line}",
                        )
                    )
        if not affected:
            return self.passed(
                f"no externalTrafficPolicy: Local Service with external or load-balancer IPs in {model_source(model)}"
            )
        version, version_evidence = planned_version(ctx)
        services = len({a["service"] for a in affected})
        without = sum(1 for a in affected if not a["local_endpoints_here"])
        what = (
            f"{_count(services, 'externalTrafficPolicy: Local Service')} with {_count(len(affected), 'external/LB IP')}"
            f" ({without} without a local endpoint on this node)"
        )
        details: dict[str, Any] = {"frontends": affected, "fixed_in": [str(FIXED_1_33), str(FIXED)]}
        if version is None:
            return self.warn(
                f"{what}, and the kube-proxy version is unknown (pass --target-version): before 1.34 / 1.33.6 pods on"
                " nodes without a local endpoint cannot reach them",
                version_evidence,
                *evidence,
                **details,
            )
        if has_fix(version):
            return self.info(
                f"{what}; kube-proxy {version} has the fix for kubernetes#131765 (reported as not fully resolved in"
                " January 2026): test pod access to these IPs on a node without local endpoints",
                version_evidence,
                *evidence,
                **details,
            )
        return self.warn(
            f"{what}; kube-proxy {version} in nftables mode drops pod traffic to them on nodes without a local"
            " endpoint (kubernetes#131765, fixed in 1.34.0 and 1.33.6)",
            version_evidence,
            *evidence,
            **details,
        )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
