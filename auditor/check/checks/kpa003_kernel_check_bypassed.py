"""KPA-003: kube-proxy's kernel-version check is switched off.

What it checks: `KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK` (any non-empty value) in
kube-proxy's environment.

Why it matters: the check protects *other* nft users on the host: kube-proxy uses kernel
5.13 as a stand-in for "the host's nft is new enough". Bypassed on an old kernel with an
old host nft, the host `nft` can crash on kube-proxy's table. It is a blocker when the
kernel is below 5.13 and the host nft below 1.0.1.

Remediation: remove the variable once the kernel is 5.13+, or make sure every nft on the
host is 1.0.1 or later.

References: pkg/proxy/nftables/supported.go (getNFTablesInterface), kubernetes PR #124152
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

VARIABLE = "KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK"


class KernelCheckBypassed(Check):
    id = CheckID("KPA-003")
    title = "kube-proxy's nftables kernel-version check is bypassed"
    severity = Severity.BLOCKER
    remediation = f"Remove {VARIABLE} from kube-proxy's environment, or upgrade the kernel to 5.13+ and nft to 1.0.1+."
    docs = "https://github.com/kubernetes/kubernetes/blob/master/pkg/proxy/nftables/supported.go"

    def run(self, ctx: CheckContext) -> Outcome:
        if not ctx.kube_proxy_running and not ctx.kube_proxy_environment:
            return self.not_applicable("kube-proxy is not running here, so its environment could not be read")
        value = ctx.kube_proxy_environment.get(VARIABLE)
        if not value:
            return self.passed(f"{VARIABLE} is not set")
        evidence = (
            Evidence(VARIABLE, value, "host.json: kube_proxy.environment"),
            Evidence("kernel release", ctx.kernel_release, "host.json: kernel_release"),
            Evidence("host nft", ctx.host.get("nft_version"), "host.json: nft_version"),
        )
        kernel, nft = ctx.kernel_version, ctx.nft_version
        if kernel is not None and kernel < Version(5, 13) and (nft is None or nft < Version(1, 0, 1)):
            return self.failed(
                f"{VARIABLE} is set on kernel {ctx.kernel_release} with host nft {nft or 'missing'}: kube-proxy's table can break the host nft",
                *evidence,
            )
        return self.warn(f"{VARIABLE}={value} bypasses kube-proxy's safety check for host nft users", *evidence)
