"""KPA-016: some of kube-proxy's rules could not be interpreted by kp-audit.

What it checks: the rules each normalizer left out of its Service model (`unmodelled`,
with the reason), per mode, and the coverage figure (rules modelled / rules seen),
which is always in details["coverage"]. Rules the normalizer marks "not written by
kube-proxy" belong to other components (CNI, firewall, Docker) and are counted apart:
they alone are info. Rules kube-proxy wrote that kp-audit could not read (unknown match
modules, shapes of a newer release, stale chains) are the warning: every conclusion
drawn from the model (the Service diff, NodePort and ClusterIP checks) is blind to them.

Why it matters: a check that passes on a partial model is not a clean bill of health.
Showing exactly which rules were skipped lets an operator judge whether they matter
(a kube-proxy release with new rule shapes, hand-made edits in kube-proxy's chains, a
third-party component hooking into them).

Remediation: read the listed rules. Stale kube-proxy chains go away with a kube-proxy
restart; rules in kube-proxy's chains that kube-proxy did not write should be removed;
shapes from a newer kube-proxy need a newer kp-audit (please report them).

References: https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/,
kubernetes/kubernetes pkg/proxy/nftables/README.md
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._netfilter import is_foreign, where
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity, Status
from auditor.model import ServiceModel, Unmodelled

SHOWN = 20


class RulesNotModelled(Check):
    id = CheckID("KPA-016")
    title = "Some of kube-proxy's rules could not be interpreted"
    severity = Severity.WARNING
    remediation = (
        "Review the listed rules: restart kube-proxy to drop stale chains, remove hand-made edits from kube-proxy's"
        " chains, and report rule shapes kp-audit does not know."
    )
    docs = "https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/"

    def run(self, ctx: CheckContext) -> Outcome:
        coverage = {mode.value: _coverage(model) for mode, model in sorted(ctx.models.items())}
        if not ctx.models:
            return Outcome(
                Status.NOT_APPLICABLE,
                "no kube-proxy state in any dump: nothing was modelled",
                details={"coverage": coverage},
            )
        ours = [u for m in ctx.models.values() for u in m.unmodelled if not is_foreign(u)]
        foreign = [u for m in ctx.models.values() for u in m.unmodelled if is_foreign(u)]
        figures = ", ".join(
            f"{mode} {c['rules_modelled']}/{c['rules_seen']} rules ({c['percent']}%)" for mode, c in coverage.items()
        )
        details: dict[str, Any] = {
            "coverage": coverage,
            "uninterpreted": [_row(u) for u in ours],
            "foreign": [_row(u) for u in foreign],
            "reasons": dict(Counter(u.reason for u in ours).most_common()),
        }
        evidence = tuple(Evidence(u.reason, u.rule, where(u)) for u in (ours or foreign)[:SHOWN])
        others = f"; rules of other components: {len(foreign)}" if foreign else ""
        if ours:
            reasons = Counter(_short(u.reason) for u in ours).most_common()
            listed = "; ".join(f"{n} x {reason}" for reason, n in reasons[:5])
            more = f"; {len(reasons) - 5} more reasons" if len(reasons) > 5 else ""
            shown = f" (the first {SHOWN} are in the evidence)" if len(ours) > SHOWN else ""
            return self.warn(
                f"rules kube-proxy wrote that could not be interpreted: {len(ours)}{shown}: {listed}{more};"
                f" coverage {figures}{others}",
                *evidence,
                **details,
            )
        if foreign:
            return self.info(
                f"every kube-proxy rule was modelled; rules of other components left aside: {len(foreign)}"
                f" (coverage: {figures})",
                *evidence,
                **details,
            )
        return self.passed(f"every rule was modelled (coverage: {figures})", **details)


def _coverage(model: ServiceModel) -> dict[str, object]:
    foreign = sum(1 for u in model.unmodelled if is_foreign(u))
    return {
        "rules_seen": model.rules_seen,
        "rules_modelled": model.rules_modelled,
        "ratio": round(model.coverage, 4),
        "percent": round(100 * model.coverage, 1),
        "foreign_rules": foreign,
        #: coverage of the rules kube-proxy wrote, other components' rules left out
        "kube_proxy_ratio": round(
            1.0 if model.rules_seen - foreign <= 0 else model.rules_modelled / (model.rules_seen - foreign), 4
        ),
    }


def _short(reason: str) -> str:
    """A reason without its per-rule detail ("...: -m foo" -> "...")."""
    return reason.split(": ", 1)[0]


def _row(u: Unmodelled) -> dict[str, object]:
    return {"where": where(u), "table": u.table, "chain": u.chain, "line": u.line, "rule": u.rule, "reason": u.reason}
