"""KPA-005: a host nft of 1.1.3 or later next to a kube-proxy without the fix.

What it checks: the host's nft version against the kube-proxy version that will run
nftables mode (`--target-version`, else the one found).

Why it matters: with host nft 1.1.3+ (Fedora 43, RHEL/AlmaLinux 10) creating sets kube-
proxy's older bundled nft cannot parse, kube-proxy's `nft list` segfaulted, every sync
failed and Service routing died (kubernetes#136786, k0s#7293). The fix (PR #137501, `nft
list --terse`) is in 1.36.0 and was cherry-picked to 1.33, 1.34 and 1.35 on 2026-03-17
(PRs #137807-#137809); the image moved to nft 1.0.6.1 later (PR #140405). A similar crash
was still reported on 1.36 (kubernetes#140898).

Remediation: run kube-proxy 1.36+ (or a 1.33-1.35 patch release from after 2026-03-17),
or keep newer-nft objects off the node.

References: kubernetes#136786, PRs #137501, #137807, #137808, #137809, #140405, #140898
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

NEWER_NFT = Version(1, 1, 3)
FIXED = Version(1, 36, 0)
BACKPORTED_MINORS = ((1, 33), (1, 34), (1, 35))


class HostNftNewerThanKubeProxy(Check):
    id = CheckID("KPA-005")
    title = "Host nft 1.1.3+ with a kube-proxy that crashes on its objects"
    severity = Severity.BLOCKER
    remediation = "Run kube-proxy 1.36 or later (or a 1.33-1.35 patch release with PR #137501's backport)."
    docs = "https://github.com/kubernetes/kubernetes/issues/136786"

    def run(self, ctx: CheckContext) -> Outcome:
        nft = ctx.nft_version
        nft_evidence = Evidence("host nft", ctx.host.get("nft_version"), "host.json: nft_version")
        if nft is None or nft < NEWER_NFT:
            return self.passed(f"host nft is {nft or 'absent'}, older than 1.1.3: no crash risk", nft_evidence)
        planned = ctx.planned_version
        source = "--target-version" if ctx.target_version else "host.json: kube_proxy.version"
        kp_evidence = Evidence("kube-proxy version", str(planned) if planned else None, source)
        if planned is None:
            return self.warn(
                f"host nft {nft} is 1.1.3+ and the kube-proxy version is unknown (pass --target-version)",
                nft_evidence,
                kp_evidence,
            )
        if planned >= FIXED:
            return self.warn(
                f"host nft {nft} with kube-proxy {planned}: fixed, but a similar crash was reported on 1.36 (kubernetes#140898)",
                nft_evidence,
                kp_evidence,
            )
        if (planned.major, planned.minor) in BACKPORTED_MINORS:
            return self.warn(
                f"host nft {nft} with kube-proxy {planned}: the fix was backported to {planned.minor_version} on"
                " 2026-03-17; make sure this patch release is newer",
                nft_evidence,
                kp_evidence,
            )
        return self.failed(f"host nft {nft} with kube-proxy {planned}: kube-proxy's nft crashes on the host's objects", nft_evidence, kp_evidence)
