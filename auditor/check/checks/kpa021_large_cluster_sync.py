"""KPA-021: a large cluster with a kube-proxy whose nftables full syncs are slow.

What it checks: the number of Service ports and endpoints kube-proxy programs on this
node (from the iptables-mode model, else the nftables one), against roughly 5,000
Services or 100,000 endpoints, and the kube-proxy version that will run nftables mode.

Why it matters: cold full syncs in nftables mode were slow in large clusters: 5,006
Services / 250,011 endpoints took 13 minutes on a 6.1 kernel, up to about 20
(kubernetes#135639); sync time grew super-linearly around 44k Services (#139513); new
nodes started slowly (#139328). Partial fixes: PR #135800 (fewer jumps, 1.35) and
listing over netlink instead of parsing `nft` output (PR #137536, gate NFTablesNetlink,
beta and on by default in 1.37). Steady-state data-plane latency is much better than
iptables mode's, and nftables mode does not need a large minSyncPeriod.

Remediation: run kube-proxy 1.37+ before switching a large cluster, give kube-proxy
enough CPU, and switch one node first while watching
`kubeproxy_sync_proxy_rules_duration_seconds` and readiness after a restart.

References: https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/, kubernetes#135639,
#139513, #139328, PRs #135800, #137536, KEP-5343 "Stability and performance"
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import model_source, planned_version, service_model
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

LARGE_SERVICES = 5_000
LARGE_ENDPOINTS = 100_000
FEWER_JUMPS = Version(1, 35)  # PR #135800
NETLINK = Version(1, 37)  # PR #137536, NFTablesNetlink beta


class LargeClusterSlowSync(Check):
    id = CheckID("KPA-021")
    title = "Large cluster: nftables full syncs are slow before kube-proxy 1.37"
    severity = Severity.WARNING
    remediation = (
        "Run kube-proxy 1.37+ (NFTablesNetlink) before switching, give kube-proxy enough CPU, and switch one node"
        " first while watching kubeproxy_sync_proxy_rules_duration_seconds."
    )
    docs = "https://github.com/kubernetes/kubernetes/issues/135639"

    def run(self, ctx: CheckContext) -> Outcome:
        model = service_model(ctx)
        if model is None:
            return self.not_applicable("no kube-proxy state in the snapshot: cannot count Services and endpoints")
        ports = {(svc.name, svc.protocol.value) for svc in model.services}
        services = {svc.name.split(":", 1)[0] for svc in model.services}
        endpoints = sum(
            len({(e.address, e.port) for f in svc.frontends for e in f.endpoints}) for svc in model.services
        )
        counts: dict[str, Any] = {
            "service_ports": len(ports),
            "services": len(services),
            "endpoints": endpoints,
            "source": model.mode.value,
        }
        scale = Evidence("Service ports / endpoints", f"{len(ports)} / {endpoints}", model_source(model))
        size = f"{len(ports)} Service ports ({len(services)} Services) and {endpoints} endpoints"
        if len(ports) < LARGE_SERVICES and endpoints < LARGE_ENDPOINTS:
            return self.passed(f"{size}: below the sizes where nftables syncs were slow", scale, **counts)
        version, version_evidence = planned_version(ctx)
        if version is None:
            return self.warn(
                f"{size}, and the kube-proxy version is unknown (pass --target-version): before 1.37 full syncs of this"
                " size took many minutes",
                scale,
                version_evidence,
                **counts,
            )
        if version >= NETLINK:
            return self.info(
                f"{size}; kube-proxy {version} has the sync fixes (netlink listing), but super-linear growth was"
                " still reported at ~44k Services (kubernetes#139513): switch one node first",
                scale,
                version_evidence,
                **counts,
            )
        has = " (it has PR #135800's fewer jumps, not the netlink listing)" if version >= FEWER_JUMPS else ""
        return self.warn(
            f"{size}; with kube-proxy {version}{has} full syncs at this scale take many minutes"
            " (5,006 Services / 250,011 endpoints: 13 minutes, kubernetes#135639)",
            scale,
            version_evidence,
            **counts,
        )
