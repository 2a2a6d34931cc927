"""KPA-004: the host's nft is missing or older than 1.0.1.

What it checks: `nft --version` on the host.

Why it matters: nft before 1.0.0 misbehaves alongside kube-proxy's table (it parses the
whole ruleset, so kube-proxy's newer rules can lock it out), and knftables refuses
anything before 1.0.1. A kube-proxy that runs on the host (k3s, rke2, k0s, systemd units)
needs an nft binary on the host PATH to start nftables mode at all.

Remediation: install or upgrade the nftables package to 1.0.1 or later (Debian 12 ships
1.0.6, Ubuntu 22.04 1.0.2, RHEL 9 1.0.4).

References: knftables README, pkg/proxy/nftables/supported.go, kubernetes#122743,
k3s-io/k3s#11292, https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version


class HostNftMissingOrOld(Check):
    id = CheckID("KPA-004")
    title = "Host nft is missing or older than 1.0.1"
    severity = Severity.BLOCKER
    remediation = "Install nftables 1.0.1 or later on the host (apt-get install nftables / dnf install nftables)."
    docs = "https://github.com/kubernetes-sigs/knftables#requirements"

    def run(self, ctx: CheckContext) -> Outcome:
        raw = ctx.host.get("nft_version")
        version = ctx.nft_version
        evidence = Evidence("nft --version", raw, "host.json: nft_version")
        if version is None:
            return self.warn(
                "no nft binary on the host: fine for a containerized kube-proxy (its image carries nft),"
                " fatal for one that runs on the host",
                evidence,
            )
        if version < Version(1, 0, 0):
            return self.failed(f"host nft {version} is older than 1.0.0 and misbehaves next to kube-proxy's table", evidence)
        if version < Version(1, 0, 1):
            return self.warn(f"host nft {version}: kube-proxy asks for 1.0.1 or later", evidence)
        return self.passed(f"host nft {version} is 1.0.1 or later", evidence)
