"""KPA-001: the kernel is older than kube-proxy's nftables floor (5.13).

What it checks: the running kernel release against 5.13, the version kube-proxy compares
with (`utilkernel.NFTablesKubeProxyKernelVersion`).

Why it matters: below 5.13 kube-proxy refuses to start in nftables mode ("kube-proxy in
nftables mode requires kernel 5.13 or later") and the node loses all Service proxying.
The number stands in for "the host's nft is at least 1.0.1" (kubernetes#122743). Vendor
kernels that backport features still report their base version (RHEL 8's 4.18).

Remediation: upgrade the node's kernel (Debian 12, Ubuntu 22.04 and RHEL 9 meet it), or
stay in iptables mode on this node.

References: pkg/util/kernel/constants.go, pkg/proxy/nftables/supported.go, KEP-3866,
https://kubernetes.io/docs/reference/networking/virtual-ips/#proxy-mode-nftables
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity, Status
from auditor.versions import Version

FLOOR = Version(5, 13)


class KernelTooOld(Check):
    id = CheckID("KPA-001")
    title = "Kernel is older than 5.13"
    severity = Severity.BLOCKER
    remediation = "Upgrade the kernel to 5.13 or later (6.1+ recommended), or keep this node in iptables mode."
    docs = "https://kubernetes.io/docs/reference/networking/virtual-ips/#proxy-mode-nftables"

    def run(self, ctx: CheckContext) -> Outcome:
        version = ctx.kernel_version
        evidence = Evidence("kernel release", ctx.kernel_release, "host.json: kernel_release")
        if version is None:
            return Outcome(Status.ERROR, "the kernel release could not be read", (evidence,))
        if version < FLOOR:
            return self.failed(f"kernel {ctx.kernel_release} is older than 5.13: kube-proxy will not start in nftables mode", evidence)
        return self.passed(f"kernel {ctx.kernel_release} is 5.13 or later", evidence)
