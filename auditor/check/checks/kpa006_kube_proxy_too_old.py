"""KPA-006: the kube-proxy version predates a usable nftables mode.

What it checks: the kube-proxy version that will run nftables mode (`--target-version`,
else the one found) against the feature's stages: none before 1.29, alpha 1.29-1.30
(feature gate `NFTablesProxyMode`), beta 1.31 (on by default), GA 1.33.

Why it matters: before 1.29 there is no nftables mode; in 1.29-1.30 it needs a feature
gate and several behaviour bugs were fixed only later.

Remediation: upgrade kube-proxy to 1.33 or later before switching (1.31+ at least).

References: KEP-3866 kep.yaml, https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

ALPHA, BETA, GA = Version(1, 29), Version(1, 31), Version(1, 33)


class KubeProxyTooOld(Check):
    id = CheckID("KPA-006")
    title = "kube-proxy is older than nftables mode's beta (1.31) or GA (1.33)"
    severity = Severity.BLOCKER
    remediation = "Upgrade kube-proxy to 1.33 or later (GA) before switching; 1.31 at the very least."
    docs = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/3866-nftables-proxy"

    def run(self, ctx: CheckContext) -> Outcome:
        planned = ctx.planned_version
        source = "--target-version" if ctx.target_version else "host.json: kube_proxy.version"
        evidence = Evidence("kube-proxy version", str(planned) if planned else None, source)
        if planned is None:
            return self.warn("the kube-proxy version is unknown: pass --target-version to check the planned one", evidence)
        if planned < ALPHA:
            return self.failed(f"kube-proxy {planned} has no nftables mode (alpha in 1.29)", evidence)
        if planned < BETA:
            gate = (ctx.kube_proxy_config or {}).get("featureGates") or {}
            note = "" if gate.get("NFTablesProxyMode") else "; the NFTablesProxyMode feature gate is not enabled"
            return self.warn(f"kube-proxy {planned}: nftables mode is alpha{note}", evidence)
        if planned < GA:
            return self.info(f"kube-proxy {planned}: nftables mode is beta (GA in 1.33)", evidence)
        return self.passed(f"kube-proxy {planned}: nftables mode is GA", evidence)
