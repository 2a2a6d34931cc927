"""KPA-017: nf_conntrack is not loaded and its sysctls are missing.

What it checks: whether `nf_conntrack` is loaded or built in, whether the sysctl
`net.netfilter.nf_conntrack_max` exists, and kube-proxy's `conntrack.maxPerCore`
(`--conntrack-max-per-core`; default 32768, 0 = leave the limit alone).

Why it matters: in iptables mode the iptables modules pull nf_conntrack in; on a host
where only nf_tables is used it may not be loaded when kube-proxy starts, and kube-proxy
exits with "open /proc/sys/net/netfilter/nf_conntrack_max: no such file or directory"
(kubernetes/kops#17915 on RHEL 10 and Rocky 9). A blocker when kube-proxy will write the
limit (maxPerCore != 0); a warning otherwise, since Service NAT needs conntrack anyway.

Remediation: load nf_conntrack at boot (`echo nf_conntrack > /etc/modules-load.d/
nf_conntrack.conf; modprobe nf_conntrack`), or set `conntrack.maxPerCore: 0` if the limit
is managed elsewhere.

References: kubernetes/kops#17915, kops PRs #17968, #18179,
https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.check.settings import as_int, setting
from auditor.findings import CheckID, Evidence, Severity

SYSCTL = "net.netfilter.nf_conntrack_max"
MODULE = "nf_conntrack"
DEFAULT_MAX_PER_CORE = 32768


class ConntrackNotLoaded(Check):
    id = CheckID("KPA-017")
    title = "nf_conntrack is not loaded: kube-proxy cannot set nf_conntrack_max"
    severity = Severity.BLOCKER
    remediation = (
        "Load nf_conntrack at boot (echo nf_conntrack > /etc/modules-load.d/nf_conntrack.conf; modprobe nf_conntrack),"
        " or set conntrack.maxPerCore: 0 when the limit is managed elsewhere."
    )
    docs = "https://github.com/kubernetes/kops/issues/17915"

    def run(self, ctx: CheckContext) -> Outcome:
        sysctls = ctx.host.get("sysctls") or {}
        value = ctx.sysctl(SYSCTL)
        sysctl = Evidence(SYSCTL, value, "host.json: sysctls")
        module = _module_state(ctx)
        module_evidence = Evidence(
            f"{MODULE} loaded or built in", {True: "yes", False: "no", None: "unknown"}[module], "host.json: modules"
        )
        if value is not None:
            boot = f"; {MODULE} is loaded now, make sure it is loaded at boot too" if module else ""
            return self.passed(f"{SYSCTL} = {value}: conntrack is available{boot}", sysctl, module_evidence)
        if SYSCTL not in sysctls and module is None:
            return self.not_applicable(f"neither {SYSCTL} nor the module list is in the snapshot")
        if module:
            return self.warn(
                f"{MODULE} is loaded but {SYSCTL} was not readable (collected from another network namespace?)",
                sysctl,
                module_evidence,
            )
        per_core, per_core_evidence = _max_per_core(ctx)
        if per_core != 0:
            return self.failed(
                f"{MODULE} is not loaded and {SYSCTL} is missing, while kube-proxy will set the limit"
                f" (conntrack.maxPerCore = {per_core}): kube-proxy in nftables mode exits at startup",
                sysctl,
                module_evidence,
                per_core_evidence,
            )
        return self.warn(
            f"{MODULE} is not loaded and {SYSCTL} is missing; conntrack.maxPerCore is 0 so kube-proxy will not"
            " write it,"
            " but Service NAT needs conntrack",
            sysctl,
            module_evidence,
            per_core_evidence,
        )


def _module_state(ctx: CheckContext) -> bool | None:
    """True loaded or built in, False surely neither, None when the kernel's lists are unknown."""
    modules = ctx.host.get("modules") or {}
    if MODULE in ctx.modules_loaded or MODULE in ctx.modules_builtin:
        return True
    if modules.get("loaded") is not None and modules.get("builtin") is not None:
        return False
    return None


def _max_per_core(ctx: CheckContext) -> tuple[int | None, Evidence]:
    """conntrack.maxPerCore as kube-proxy uses it (config file, else --conntrack-max-per-core), else the default."""
    configured = setting(ctx, "conntrack.maxPerCore", "conntrack-max-per-core")
    if configured is not None:
        return as_int(configured.value), configured.evidence()
    return DEFAULT_MAX_PER_CORE, Evidence(
        "conntrack.maxPerCore", f"unset (default {DEFAULT_MAX_PER_CORE})", "kube-proxy defaults"
    )
