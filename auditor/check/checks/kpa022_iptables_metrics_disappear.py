"""KPA-022: kube-proxy's iptables-only metrics go silent in nftables mode.

What it checks: which iptables-only kube-proxy metrics the snapshot's metrics show
(`kubeproxy_sync_proxy_rules_iptables_total`, `..._iptables_last`,
`..._iptables_restore_failures_total`, `..._iptables_partial_restore_failures_total`,
`kubeproxy_iptables_ct_state_invalid_dropped_packets_total`,
`kubeproxy_iptables_localhost_nodeports_accepted_packets_total`), and the nftables
metrics that replace them.

Why it matters: in nftables mode the iptables metrics are not registered, so dashboards
and alerts keyed on them go silent rather than red. The new failure counters are
`kubeproxy_sync_proxy_rules_nftables_sync_failures_total` and
`kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total`; rule-count metrics have
no meaningful nftables equivalent.

Remediation: move alerts and dashboards to the nftables metric names (and the
mode-independent `kubeproxy_sync_proxy_rules_*` ones) before switching.

References: pkg/proxy/metrics/metrics.go (RegisterMetrics), KEP-3866 "Monitoring
Requirements", https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity

IPTABLES_METRICS = (
    "kubeproxy_sync_proxy_rules_iptables_total",
    "kubeproxy_sync_proxy_rules_iptables_last",
    "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
    "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
    "kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
    "kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
)
NFTABLES_METRICS = (
    "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
    "kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total",
)


class IptablesMetricsDisappear(Check):
    id = CheckID("KPA-022")
    title = "kube-proxy's iptables-only metrics go silent in nftables mode"
    severity = Severity.INFO
    remediation = (
        "Move alerts and dashboards to kubeproxy_sync_proxy_rules_nftables_sync_failures_total and"
        " kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total before switching."
    )
    docs = "https://github.com/kubernetes/kubernetes/blob/master/pkg/proxy/metrics/metrics.go"

    def run(self, ctx: CheckContext) -> Outcome:
        metrics = ctx.kube_proxy.get("metrics")
        details: dict[str, Any] = {
            "iptables_metrics": list(IPTABLES_METRICS),
            "nftables_metrics": list(NFTABLES_METRICS),
        }
        replacement = f"their nftables replacements are {' and '.join(NFTABLES_METRICS)}"
        if not isinstance(metrics, Mapping):
            reason = ctx.kube_proxy.get("metrics_error") or "not in the snapshot"
            return self.info(
                f"kube-proxy's metrics could not be read ({reason}); in nftables mode {len(IPTABLES_METRICS)}"
                f" iptables-only metrics stop being exported, {replacement}",
                Evidence("kube-proxy metrics", None, "host.json: kube_proxy.metrics"),
                **details,
            )
        shown = [name for name in IPTABLES_METRICS if ctx.metric(name) is not None]
        evidence = [Evidence(name, f"{ctx.metric(name):g}", f"metrics: {name}") for name in shown]
        details["exported_now"] = shown
        if not shown:
            return self.passed(
                "kube-proxy exports none of the iptables-only metrics: nothing keyed on them goes silent;"
                f" {replacement}",
                **details,
            )
        return self.info(
            f"kube-proxy exports {len(shown)} iptables-only metrics that disappear in nftables mode"
            f" ({', '.join(shown)}): dashboards and alerts on them go silent; {replacement}",
            *evidence,
            **details,
        )
