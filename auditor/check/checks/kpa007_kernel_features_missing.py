"""KPA-007: the kernel lacks an nf_tables feature kube-proxy's nftables mode uses.

What it checks: a functional probe run at collection time: `nft --check` of small
kube-proxy-shaped tables, one per feature (verdict maps with concatenations, sets,
numgen, fib, ct state, dnat, masquerade, reject, dynamic sets with timeout, marks,
comments, the ip6 family), inside a private network namespace. Also lists the relevant
modules that are neither loaded nor built in.

Why it matters: a missing feature makes kube-proxy's whole transaction fail ("Could not
process rule: No such file or directory"), e.g. kernels without CONFIG_NFT_FIB_IPV4/6
(siderolabs/pkgs#951), CONFIG_NFT_NUMGEN (Docker Desktop 4.35), or nft_ct (kops on RHEL 10).

Remediation: enable the named kernel options or load the modules (modprobe nft_fib_ipv4
nft_numgen nft_ct ...), then collect again.

References: pkg/proxy/nftables/proxier.go, KEP-3866 "Versioning and compatibility",
siderolabs/pkgs#951, kubernetes/kops PR #17920
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity, Status

#: modules kube-proxy's nftables ruleset exercises (built in or loaded is fine; loadable on
#: demand is fine too, which a module list cannot tell: the probe decides, this only informs)
MODULES = ("nf_tables", "nft_ct", "nft_fib_ipv4", "nft_fib_ipv6", "nft_numgen", "nft_masq", "nft_chain_nat", "nf_nat", "nf_conntrack")


class KernelFeaturesMissing(Check):
    id = CheckID("KPA-007")
    title = "Kernel is missing nf_tables features kube-proxy needs"
    severity = Severity.BLOCKER
    remediation = "Enable the missing nf_tables options in the kernel (or load their modules) and collect again."
    docs = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/3866-nftables-proxy#versioning-and-compatibility"

    def run(self, ctx: CheckContext) -> Outcome:
        present = ctx.modules_loaded | ctx.modules_builtin
        absent = [m for m in MODULES if m not in present]
        module_note = Evidence("modules neither loaded nor built in", ", ".join(absent) or "none", "host.json: modules")
        probe = ctx.probe
        if probe is None or not probe.ran:
            reason = probe.reason if probe else "no probe results in the snapshot"
            return Outcome(
                Status.WARN if ctx.modules_loaded else Status.ERROR,
                f"the functional probe did not run ({reason}); module lists alone cannot prove support",
                (module_note,),
            )
        evidence = [Evidence(f"nft --check: {f.name}", "ok" if f.ok else f.error, "probe.json") for f in probe.features]
        evidence.append(module_note)
        missing = probe.missing
        if missing:
            names = ", ".join(f"{f.name} ({f.provides})" for f in missing)
            return self.failed(f"the kernel rejected: {names}", *evidence, missing=[f.name for f in missing])
        return self.passed(f"all {len(probe.features)} nf_tables features kube-proxy uses work on this kernel", *evidence)
