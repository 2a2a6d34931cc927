"""KPA-026: the host has no legacy iptables: iptables-based components are at risk.

What it checks: whether `ip_tables` / `ip6_tables` are loaded or built in and whether a
legacy iptables backend exists (`iptables --version`, the iptables-legacy-save source);
on such a host, which components that program iptables are present (the add-ons of
KPA-013 that use iptables, and rules "not written by kube-proxy" in the dumps).

Why it matters: RHEL 10 and its rebuilds (and some new kernels) removed the legacy
iptables kernel modules (kubernetes/kops PR #18179, canonical/microk8s#5525). There only
iptables-nft works, and where no iptables userspace is installed at all iptables mode
fails outright; nftables mode is then the way forward for kube-proxy (info). Anything
else that shells out to `iptables` (CNIs, flannel without EnableNFTables, node-cache)
may break: a warning per component found (kubespray PR #13291: "iptables-nft shim is
not capable for flannel needs").

Remediation: switch kube-proxy to nftables mode; move each listed component to its
nftables mode (flannel EnableNFTables, Calico nftables data plane) or make sure it works
with iptables-nft.

References: canonical/microk8s#5525 and PR #5567, kubernetes/kops#17915 and PR #18179,
kubernetes-sigs/kubespray PR #13291
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._addons import detect_addons
from auditor.check.checks._netfilter import host_iptables_backend, is_foreign, where
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity

MODULES = ("ip_tables", "ip6_tables")
LEGACY_SOURCE = "iptables-legacy-save"


class NftablesOnlyHost(Check):
    id = CheckID("KPA-026")
    title = "No legacy iptables on the host: iptables-based components are at risk"
    severity = Severity.WARNING
    remediation = (
        "Switch kube-proxy to nftables mode, and move each listed component to its nftables mode (flannel"
        " EnableNFTables, Calico's nftables data plane) or verify it with iptables-nft."
    )
    docs = "https://github.com/canonical/microk8s/issues/5525"

    def run(self, ctx: CheckContext) -> Outcome:
        modules = ctx.host.get("modules") or {}
        if modules.get("loaded") is None:
            return self.not_applicable(
                "the snapshot has no module list: cannot tell whether legacy iptables is available"
            )
        present = [m for m in MODULES if m in ctx.modules_loaded or m in ctx.modules_builtin]
        backend = host_iptables_backend(ctx)
        legacy_dump = any("legacy" in name for name in ctx.iptables)
        module_evidence = Evidence(
            "ip_tables / ip6_tables loaded or built in", ", ".join(present) or "neither", "host.json: modules"
        )
        backend_evidence = Evidence("iptables --version backend", backend, "host.json: iptables_version")
        if present or backend == "legacy" or legacy_dump:
            return self.passed("legacy iptables is available on this host", module_evidence, backend_evidence)
        record = ctx.sources.get(LEGACY_SOURCE)
        if record is None:
            return self.not_applicable(
                f"{LEGACY_SOURCE} was not collected: cannot tell whether legacy iptables works here", module_evidence
            )
        legacy_evidence = Evidence(
            LEGACY_SOURCE,
            "ok"
            if record.get("ok")
            else ("not installed" if record.get("absent") else str(record.get("error") or "failed")),
            f"meta.json: sources.{LEGACY_SOURCE}",
        )
        if record.get("ok"):
            return self.passed(f"{LEGACY_SOURCE} works on this host", module_evidence, legacy_evidence)
        no_userspace = ctx.iptables_version is None
        kube_proxy = (
            "no iptables binary either: iptables mode cannot run here"
            if no_userspace
            else "only iptables-nft works here (iptables mode depends on it)"
        )
        components = [a for a in detect_addons(ctx) if a.uses_iptables]
        foreign = [u for m in ctx.models.values() for u in m.unmodelled if is_foreign(u)]
        details: dict[str, Any] = {
            "components": [a.to_details() for a in components],
            "foreign_iptables_rules": len(foreign),
            "iptables_userspace": not no_userspace,
        }
        evidence = [module_evidence, backend_evidence, legacy_evidence] + [
            e for a in components for e in a.evidence[:1]
        ]
        if foreign:
            evidence.append(Evidence("rules not written by kube-proxy", foreign[0].rule, where(foreign[0])))
        found = [a.name for a in components] + ([f"{len(foreign)} other iptables rules"] if foreign else [])
        if not found:
            return self.info(
                f"ip_tables/ip6_tables are neither loaded nor built in and there is no legacy backend ({kube_proxy});"
                " no iptables-based component was found (a module list cannot tell what could load on demand)",
                *evidence,
                **details,
            )
        return self.warn(
            f"no legacy iptables on this host ({kube_proxy}), and these depend on iptables: {', '.join(found)}",
            *evidence,
            **details,
        )
