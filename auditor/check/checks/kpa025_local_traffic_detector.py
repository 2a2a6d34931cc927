"""KPA-025: no local-traffic detector: masquerade and short-circuit rules are not generated.

What it checks: the local-traffic detector the model sees in kube-proxy's masquerade and
short-circuit rules (a pod CIDR such as `10.0.0.0/8`, or `iif <interface>`), next to the
configuration that produces it: `detectLocalMode`, `clusterCIDR`, `detectLocal.*`
(`--detect-local-mode`, `--cluster-cidr`, `--pod-bridge-interface`,
`--pod-interface-name-prefix`).

Why it matters: both modes use the detector the same way, but without one kube-proxy
writes neither the rule that masquerades off-cluster traffic to ClusterIPs nor the pod
"short-circuit" for `externalTrafficPolicy: Local` (nftables proxier:
`localDetector.IsImplemented()`). A config rewritten for nftables mode that drops
`clusterCIDR` or `detectLocalMode` silently changes source NAT. It is a warning when the
model shows Services with endpoints but no detector at all.

Remediation: carry `detectLocalMode` and `clusterCIDR` (or `detectLocal.bridgeInterface`
/ `interfaceNamePrefix`) over into the nftables configuration; set them if they are
missing today.

References: pkg/proxy/nftables/proxier.go, kube-proxy config API (DetectLocalMode,
ClusterCIDR, DetectLocalConfiguration), KEP-3866 Goals
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import model_source, service_model
from auditor.check.context import CheckContext
from auditor.check.settings import Setting, setting
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import FrontendKind, Masquerade

#: the detector's config keys and their flags
SETTINGS = (
    ("detectLocalMode", "detect-local-mode"),
    ("clusterCIDR", "cluster-cidr"),
    ("detectLocal.bridgeInterface", "pod-bridge-interface"),
    ("detectLocal.interfaceNamePrefix", "pod-interface-name-prefix"),
)


class LocalTrafficDetectorMissing(Check):
    id = CheckID("KPA-025")
    title = "No local-traffic detector: off-cluster masquerade and pod short-circuit rules are not generated"
    severity = Severity.WARNING
    remediation = (
        "Carry detectLocalMode and clusterCIDR (or detectLocal.bridgeInterface / interfaceNamePrefix) over into the"
        " nftables configuration, and set them if they are missing today."
    )
    docs = "https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/"

    def run(self, ctx: CheckContext) -> Outcome:
        model = service_model(ctx)
        if model is None:
            return self.not_applicable("no kube-proxy state in the snapshot: the local-traffic detector cannot be seen")
        settings = _settings(ctx)
        evidence = [s.evidence() for s in settings]
        configured = ", ".join(f"{s.name}={s.text}" for s in settings) or "none of detectLocalMode/clusterCIDR set"
        details: dict[str, Any] = {"detector": list(model.local_traffic), "config": {s.name: s.text for s in settings}}
        if model.local_traffic:
            seen = ", ".join(model.local_traffic)
            return self.info(
                f"{model_source(model)} detect local traffic by {seen} ({configured}): keep these settings in the"
                " nftables configuration",
                Evidence("local-traffic detector", seen, model_source(model)),
                *evidence,
                **details,
            )
        frontends = [f for svc in model.services for f in svc.frontends if f.endpoints]
        if not frontends:
            return self.info(
                f"no Service has endpoints, so the rules cannot show a local-traffic detector ({configured})",
                *evidence,
                **details,
            )
        cluster = [f for f in frontends if f.kind is FrontendKind.CLUSTER_IP]
        local_policy = any(f.local_only for f in frontends if f.kind.is_external)
        if cluster and all(f.masquerade is Masquerade.ALL for f in cluster) and not local_policy:
            return self.info(
                f"masqueradeAll masquerades every ClusterIP connection, which hides the detector from the rules"
                f" ({configured}); keep these settings in the nftables configuration",
                *evidence,
                **details,
            )
        return self.warn(
            f"{len(frontends)} Service frontends have endpoints but {model_source(model)} show no local-traffic"
            " detector"
            f" ({configured}): off-cluster traffic to ClusterIPs is not masqueraded and pods get no short-circuit for"
            " externalTrafficPolicy: Local, in nftables mode as today",
            *evidence,
            **details,
        )


def _settings(ctx: CheckContext) -> list[Setting]:
    """The detector settings kube-proxy uses (config file, else flags), the empty ones left out."""
    found = [setting(ctx, key, flag) for key, flag in SETTINGS]
    return [s for s in found if s is not None and s.text]
