"""KPA-024: the host's iptables is older than 1.8.8 and cannot dump next to native nftables tables.

What it checks: `iptables --version` against 1.8.8 and its backend, and whether one of
the snapshot's `*-save` commands already failed with "Table `X' is incompatible, use
'nft' tool.".

Why it matters: once kube-proxy's native `table ip kube-proxy` exists, iptables-nft
older than 1.8.8 can refuse to dump ("Table `X' is incompatible, use 'nft' tool."):
Calico's Felix failed readiness this way (projectcalico/calico#8403, fixed with iptables
1.8.8 per the reporter), and monitoring or backup scripts that count or diff
`iptables-save` output lose all their data. CNI and add-on images carry their own
iptables, which this check cannot see.

Remediation: upgrade the host's iptables to 1.8.8 or later; check the iptables version
inside CNI/add-on images (calico-node, flannel, node-cache) and any script that parses
`iptables-save`.

References: projectcalico/calico#8403, #8025,
https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/ (observability tools)
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.checks._netfilter import host_iptables_backend
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

FIXED = Version(1, 8, 8)
INCOMPATIBLE = "is incompatible, use 'nft' tool"


class OldIptablesSave(Check):
    id = CheckID("KPA-024")
    title = "iptables older than 1.8.8 cannot dump once native nftables tables exist"
    severity = Severity.WARNING
    remediation = (
        "Upgrade the host's iptables to 1.8.8 or later, and check the iptables inside CNI/add-on images and any"
        " script that parses iptables-save."
    )
    docs = "https://github.com/projectcalico/calico/issues/8403"

    def run(self, ctx: CheckContext) -> Outcome:
        version = ctx.iptables_version
        backend = host_iptables_backend(ctx)
        raw = ctx.host.get("iptables_version_text") or ctx.host.get("iptables_version")
        evidence = [Evidence("iptables --version", str(raw) if raw else None, "host.json: iptables_version")]
        refused = [
            (name, str(record.get("error")))
            for name, record in sorted(ctx.sources.items())
            if INCOMPATIBLE in str(record.get("error") or "")
        ]
        evidence += [Evidence(f"{name} failed", error, f"meta.json: sources.{name}") for name, error in refused]
        if refused:
            return self.warn(
                f'{", ".join(n for n, _ in refused)} already refused to dump a table ("{INCOMPATIBLE}"):'
                " tools that parse iptables-save see nothing",
                *evidence,
            )
        if version is None:
            return self.not_applicable(
                "no iptables on the host (or its version is unreadable): check the iptables inside CNI/add-on"
                " images instead",
                *evidence,
            )
        if version >= FIXED:
            return self.passed(
                f"host iptables {version} is 1.8.8 or later (CNI/add-on images carry their own)", *evidence
            )
        if backend == "legacy":
            return self.info(
                f"host iptables {version} uses the legacy backend, which never reads nftables tables; its"
                " iptables-nft-save and the iptables in CNI images may still be older than 1.8.8",
                *evidence,
            )
        return self.warn(
            f"host iptables {version} is older than 1.8.8: once kube-proxy's nftables table exists, iptables-save can"
            " refuse to dump (\"Table `X' is incompatible, use 'nft' tool.\") and scripts or CNIs that parse it break",
            *evidence,
        )
